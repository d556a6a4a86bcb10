//! Abuse limits on the surfaces anyone can reach without a credential:
//! opening portal links, `/sso/authorize`, and failed bearer authentication
//! on the API and SCIM (per source address and per token prefix).
//!
//! Each limit is a GCRA bucket (`per_minute` sustained, `burst` at once) per
//! key, kept in this process's memory: with N replicas an abuser gets at most
//! N times the budget, which still bounds the work they cause (see
//! docs/decisions.md). A refused request gets `429` and `Retry-After`.
//!
//! Failure limits never lock out a working credential: a token that
//! authenticated recently is let through to authentication even while its
//! address or prefix is being refused, so a misconfigured neighbour behind the
//! same NAT (or an attacker guessing at a known prefix) cannot cause an outage.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{LimitSettings, Rate};
use crate::net::Cidr;

/// Keys kept per limiter before expired ones are dropped.
const MAX_KEYS: usize = 50_000;
/// How long a token that authenticated counts as known good.
const GOOD_FOR: Duration = Duration::from_secs(15 * 60);

/// A keyed GCRA limiter: per key, the theoretical arrival time of the next
/// request.
#[derive(Debug)]
pub struct Limiter {
    /// Time one request "costs" (60 s / per_minute); `None`: unlimited.
    emission: Option<Duration>,
    /// How far ahead of now the arrival time may run (the burst).
    tolerance: Duration,
    cells: Mutex<HashMap<String, Instant>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        let emission = (rate.per_minute > 0).then(|| Duration::from_secs(60) / rate.per_minute);
        let tolerance = emission.map(|e| e * rate.burst.saturating_sub(1)).unwrap_or_default();
        Self { emission, tolerance, cells: Mutex::new(HashMap::new()) }
    }

    /// Spends one request of `key`'s budget; `Err(retry_after)` when none is
    /// left (nothing is spent then).
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    /// When the next request of `key` would be refused: how long to wait.
    pub fn refusal(&self, key: &str) -> Option<Duration> {
        self.refusal_at(key, Instant::now())
    }

    fn take_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(emission) = self.emission else { return Ok(()) };
        let mut cells = self.cells.lock().expect("limiter lock");
        let arrival = cells.get(key).copied().unwrap_or(now).max(now);
        if let Some(wait) = self.wait(arrival, now) {
            return Err(wait);
        }
        if cells.len() >= MAX_KEYS && !cells.contains_key(key) {
            cells.retain(|_, t| *t > now);
            if cells.len() >= MAX_KEYS {
                // A flood of distinct keys: forget them rather than grow.
                tracing::warn!(keys = cells.len(), "rate limiter full; resetting");
                cells.clear();
            }
        }
        cells.insert(key.to_owned(), arrival + emission);
        Ok(())
    }

    fn refusal_at(&self, key: &str, now: Instant) -> Option<Duration> {
        self.emission?;
        let cells = self.cells.lock().expect("limiter lock");
        let arrival = cells.get(key).copied()?.max(now);
        self.wait(arrival, now)
    }

    fn wait(&self, arrival: Instant, now: Instant) -> Option<Duration> {
        let ahead = arrival - now;
        (ahead > self.tolerance).then(|| ahead - self.tolerance)
    }
}

/// Whole seconds for `Retry-After`, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Limits on failed bearer authentication.
#[derive(Debug)]
pub struct FailureGate {
    by_source: Limiter,
    by_token: Limiter,
    /// SHA-256 of tokens that authenticated recently, and when.
    good: Mutex<HashMap<[u8; 32], Instant>>,
}

/// One authentication attempt admitted by the gate; report how it ended.
#[must_use = "report the outcome with failed() or succeeded()"]
pub struct Attempt<'a> {
    gate: &'a FailureGate,
    source: String,
    prefix: Option<String>,
    hash: Option<[u8; 32]>,
}

/// Characters of a presented token that key the per-token limit: Portico's
/// tokens start with a 4-character type and a 12-character public lookup.
const TOKEN_PREFIX_LEN: usize = 16;

impl FailureGate {
    fn new(settings: &LimitSettings) -> Self {
        Self {
            by_source: Limiter::new(settings.auth_failures),
            by_token: Limiter::new(settings.auth_failures_per_token),
            good: Mutex::new(HashMap::new()),
        }
    }

    /// Admits an attempt from `source` with `presented`, or says how long to
    /// wait. A token that authenticated in the last 15 minutes is always
    /// admitted.
    pub fn begin(&self, source: String, presented: Option<&SecretString>) -> Result<Attempt<'_>, Duration> {
        let token = presented.map(|t| t.expose_secret());
        let prefix = token.and_then(|t| t.get(..TOKEN_PREFIX_LEN)).map(str::to_owned);
        let hash = token.map(crate::secrets::sha256);
        let refused =
            self.by_source.refusal(&source).or_else(|| prefix.as_deref().and_then(|p| self.by_token.refusal(p)));
        if let Some(wait) = refused
            && !hash.is_some_and(|h| self.known_good(&h))
        {
            return Err(wait);
        }
        Ok(Attempt { gate: self, source, prefix, hash })
    }

    fn known_good(&self, hash: &[u8; 32]) -> bool {
        let good = self.good.lock().expect("gate lock");
        good.get(hash).is_some_and(|at| at.elapsed() < GOOD_FOR)
    }
}

impl Attempt<'_> {
    /// The credential was refused: spend budget.
    pub fn failed(self) {
        let _ = self.gate.by_source.take(&self.source);
        if let Some(prefix) = &self.prefix {
            let _ = self.gate.by_token.take(prefix);
        }
    }

    /// The credential worked: remember it as good.
    pub fn succeeded(self) {
        let Some(hash) = self.hash else { return };
        let mut good = self.gate.good.lock().expect("gate lock");
        if good.len() >= MAX_KEYS && !good.contains_key(&hash) {
            good.retain(|_, at| at.elapsed() < GOOD_FOR);
            if good.len() >= MAX_KEYS {
                good.clear();
            }
        }
        good.insert(hash, Instant::now());
    }
}

/// Every limit of one process.
#[derive(Debug)]
pub struct Limits {
    trusted_proxies: Vec<Cidr>,
    pub portal_launch: Limiter,
    pub sso_authorize: Limiter,
    pub auth: FailureGate,
}

impl Limits {
    pub fn from_settings(settings: &LimitSettings) -> Self {
        Self {
            trusted_proxies: settings.trusted_proxies.iter().filter_map(|e| Cidr::parse(e)).collect(),
            portal_launch: Limiter::new(settings.portal_launch),
            sso_authorize: Limiter::new(settings.sso_authorize),
            auth: FailureGate::new(settings),
        }
    }

    /// The client of a request whose TCP peer is `peer`.
    fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        // Right to left: each trusted hop appended the address it saw.
        let mut client = peer;
        for hop in forwarded_for.unwrap_or_default().rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

/// The client address of a request, for limits and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The key limits count under: the address, or its /64 for IPv6 (one
    /// host usually owns a whole /64).
    pub fn key(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

impl ClientAddr {
    /// The address [`client_addr`] stored, or `0.0.0.0` outside it.
    pub fn of(extensions: &axum::http::Extensions) -> Self {
        extensions.get::<Self>().copied().unwrap_or(Self(IpAddr::from([0, 0, 0, 0])))
    }
}

/// Middleware: works out the client address (TCP peer, or the forwarded
/// address behind a trusted proxy) and stores it as a [`ClientAddr`]
/// extension. Requests served without connection info (in-process calls)
/// count as `0.0.0.0`.
pub async fn client_addr(State(limits): State<Arc<Limits>>, mut request: Request, next: Next) -> Response {
    let peer =
        request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = limits.client(peer, forwarded);
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let limiter = Limiter::new(Rate::new(60, 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.take_at("a", t0).unwrap();
        }
        let wait = limiter.take_at("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "one request per second after the burst");
        assert_eq!(limiter.refusal_at("a", t0), Some(Duration::from_secs(1)));
        limiter.take_at("b", t0).expect("keys are independent");
        limiter.take_at("a", t0 + Duration::from_secs(1)).expect("one cell back after a second");
        assert!(limiter.take_at("a", t0 + Duration::from_secs(1)).is_err());
        limiter.take_at("a", t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(limiter.refusal_at("a", t0 + Duration::from_secs(10)), None, "the burst refilled");
    }

    #[test]
    fn zero_per_minute_is_unlimited() {
        let limiter = Limiter::new(Rate::new(0, 0));
        let t0 = Instant::now();
        for _ in 0..1000 {
            limiter.take_at("a", t0).unwrap();
        }
        assert!(limiter.cells.lock().unwrap().is_empty());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn failures_close_the_gate_but_a_known_good_token_passes() {
        let settings = LimitSettings { auth_failures: Rate::new(1, 2), ..LimitSettings::default() };
        let gate = FailureGate::new(&settings);
        let good = SecretString::from("psk_AAAAAAAAAAAAgoodsecret");
        gate.begin("10.0.0.1".into(), Some(&good)).unwrap().succeeded();
        for i in 0..2 {
            let wrong = SecretString::from(format!("psk_BBBBBBBBBBB{i}wrong"));
            gate.begin("10.0.0.1".into(), Some(&wrong)).unwrap().failed();
        }
        let wrong = SecretString::from("psk_CCCCCCCCCCCCwrong");
        assert!(gate.begin("10.0.0.1".into(), Some(&wrong)).is_err(), "the address is refused");
        assert!(gate.begin("10.0.0.1".into(), None).is_err(), "with or without a token");
        assert!(gate.begin("10.0.0.1".into(), Some(&good)).is_ok(), "a working token still gets through");
        assert!(gate.begin("10.0.0.2".into(), Some(&wrong)).is_ok(), "other addresses are not affected");
    }

    #[test]
    fn failures_on_one_prefix_refuse_it_from_every_address() {
        let settings = LimitSettings { auth_failures_per_token: Rate::new(1, 2), ..LimitSettings::default() };
        let gate = FailureGate::new(&settings);
        for i in 0..2 {
            let guess = SecretString::from(format!("psk_TARGETLOOKUPguess{i}"));
            gate.begin(format!("10.0.0.{i}"), Some(&guess)).unwrap().failed();
        }
        let guess = SecretString::from("psk_TARGETLOOKUPguess9");
        assert!(gate.begin("10.9.9.9".into(), Some(&guess)).is_err());
        let other = SecretString::from("psk_OTHERLOOKUPPPguess");
        assert!(gate.begin("10.9.9.9".into(), Some(&other)).is_ok());
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_forwarded() {
        let settings =
            LimitSettings { trusted_proxies: vec!["10.0.0.0/8".into(), "192.0.2.7".into()], ..Default::default() };
        let limits = Limits::from_settings(&settings);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            limits.client(ip("203.0.113.5"), Some("1.2.3.4")),
            ip("203.0.113.5"),
            "untrusted peers cannot claim"
        );
        assert_eq!(limits.client(ip("10.1.1.1"), Some("1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(
            limits.client(ip("10.1.1.1"), Some("6.6.6.6, 1.2.3.4, 192.0.2.7")),
            ip("1.2.3.4"),
            "right-most untrusted hop; the left part is the client's own claim"
        );
        assert_eq!(limits.client(ip("10.1.1.1"), None), ip("10.1.1.1"));
        assert_eq!(limits.client(ip("10.1.1.1"), Some("garbage")), ip("10.1.1.1"));
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let a = ClientAddr("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddr("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), "2001:db8:1:2::/64");
        assert_eq!(ClientAddr("::ffff:1.2.3.4".parse().unwrap()).key(), "1.2.3.4");
    }
}
