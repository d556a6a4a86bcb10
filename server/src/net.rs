//! Address blocks and host allow-lists (pure; used by the egress checks,
//! the rate limits' trusted proxies and configuration validation).

use std::net::IpAddr;

/// An address block (`10.0.0.0/8`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `addr/bits`, or a bare address (`[::1]` brackets allowed).
    pub fn parse(entry: &str) -> Option<Self> {
        let e = entry.trim();
        if let Some((addr, bits)) = e.split_once('/') {
            let net: IpAddr = addr.parse().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits.parse().ok().filter(|b| *b <= max)?;
            return Some(Self { net, bits });
        }
        let net: IpAddr = e.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
        Some(Self { net, bits: if net.is_ipv4() { 32 } else { 128 } })
    }

    /// `ip` lies in this block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        in_net(ip, self.net, self.bits)
    }
}

/// One entry of an operator allow-list (`outbound.allow_private`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    Net(Cidr),
    Host(String),
    Suffix(String),
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => a.to_ipv4_mapped().is_some_and(|v4| in_net(IpAddr::V4(v4), net, bits)),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

impl AllowEntry {
    /// A CIDR, an address, a host name or `*.suffix`.
    pub fn parse(entry: &str) -> Result<AllowEntry, String> {
        let e = entry.trim();
        if e.contains('/') {
            return Cidr::parse(e).map(AllowEntry::Net).ok_or_else(|| format!("{entry:?} is not a CIDR"));
        }
        if let Some(cidr) = Cidr::parse(e) {
            return Ok(AllowEntry::Net(cidr));
        }
        let host = e.to_ascii_lowercase();
        let valid = |h: &str| {
            !h.is_empty() && h.len() <= 253 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        };
        match host.strip_prefix("*.") {
            Some(suffix) if valid(suffix) => Ok(AllowEntry::Suffix(format!(".{suffix}"))),
            None if valid(&host) => Ok(AllowEntry::Host(host)),
            _ => Err(format!("{entry:?} is neither a CIDR, an address nor a host name")),
        }
    }
}
