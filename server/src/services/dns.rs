//! TXT lookups with hickory-resolver against configurable nameservers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::config::DomainSettings;
use crate::domains::Lookup;

/// Resolves challenge records. Caching is off: a re-check must see the zone
/// as it is now.
#[derive(Clone)]
pub struct DnsChecker {
    resolver: TokioResolver,
}

impl DnsChecker {
    pub fn from_settings(settings: &DomainSettings) -> anyhow::Result<Self> {
        let mut builder = if settings.nameservers.is_empty() {
            Resolver::builder_tokio().context("reading the system's DNS configuration")?
        } else {
            let mut servers = Vec::new();
            for raw in &settings.nameservers {
                let addr: SocketAddr = raw.parse().with_context(|| format!("nameserver {raw:?} is not ip:port"))?;
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut ns.connections {
                    connection.port = addr.port();
                }
                servers.push(ns);
            }
            Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), TokioRuntimeProvider::default())
        };
        let options = builder.options_mut();
        options.timeout = Duration::from_millis(settings.timeout_ms);
        options.attempts = 1;
        options.cache_size = 0;
        options.use_hosts_file = ResolveHosts::Never;
        Ok(Self { resolver: builder.build().context("building the DNS resolver")? })
    }

    /// TXT records at `name` (an absolute name without the trailing dot).
    pub async fn txt(&self, name: &str) -> Lookup {
        match self.resolver.txt_lookup(format!("{name}.")).await {
            Ok(lookup) => Lookup::Found(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(txt) => {
                            Some(txt.txt_data.iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
                        }
                        _ => None,
                    })
                    .collect(),
            ),
            Err(e) if e.is_nx_domain() => Lookup::NxDomain,
            Err(e) if e.is_no_records_found() => Lookup::Found(Vec::new()),
            Err(e) => Lookup::Failed(e.to_string()),
        }
    }
}
