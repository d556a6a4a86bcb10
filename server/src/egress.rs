//! The one HTTP client for every fetch Portico makes on someone else's
//! behalf: SAML metadata URLs, OIDC discovery, JWKS, token and userinfo
//! endpoints (all chosen by a customer's IT admin or their IdP), and webhook
//! deliveries when the operator asks for it.
//!
//! Rules (see docs/security.md, "Server-side request forgery"):
//! - only `https` URLs, or `http` to a host the operator allow-listed;
//! - the name is resolved here and every address checked: loopback, private
//!   (RFC 1918), link-local, CGNAT, ULA, multicast, documentation, reserved
//!   and unspecified addresses are refused unless `outbound.allow_private`
//!   admits them; the connection goes to the checked addresses (reqwest asks
//!   [`CheckedResolver`]; there is no second resolution);
//! - IP-literal URLs (which never reach a resolver) are checked by
//!   [`Policy::check_url`] before sending and on every redirect;
//! - redirects: none, or a bounded number, each re-checked;
//! - bodies are capped and read with a deadline; errors describe the
//!   response (status, content type, size) and never carry its body.

use crate::config::OutboundSettings;
use crate::net::AllowEntry;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// What may be reached.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allowed: Vec<AllowEntry>,
}

/// Why a fetch did not happen or did not succeed. The text is safe to show
/// to whoever chose the URL: it never contains the response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("{0} is not a valid http(s) URL")]
    BadUrl(String),
    #[error("{0} must use https (http is only allowed for hosts on the operator's outbound.allow_private list)")]
    NotHttps(String),
    #[error(
        "{host} resolves to {address}, a {kind} address, which Portico does not fetch \
         (an operator can allow it with outbound.allow_private)"
    )]
    Refused { host: String, address: IpAddr, kind: &'static str },
    #[error("{0} could not be resolved")]
    Unresolved(String),
    #[error("the request to {host} failed: {reason}")]
    Failed { host: String, reason: &'static str },
    #[error("the response is larger than {0} KiB")]
    TooLarge(usize),
    #[error("{0}")]
    Redirect(String),
}

/// A response read in full (within the cap).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Fetched {
    /// "HTTP 200, text/html, 1234 bytes": what an error may say about a
    /// response.
    pub fn describe(&self) -> String {
        let ct = self.content_type.as_deref().map(|c| c.split(';').next().unwrap_or(c).trim()).unwrap_or("no type");
        let ct: String = ct.chars().filter(|c| c.is_ascii_graphic()).take(80).collect();
        format!("HTTP {}, {ct}, {} bytes", self.status, self.body.len())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Redirect handling of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// A redirect is an answer like any other (3xx status).
    None,
    /// Up to three, each checked like the first URL.
    Checked,
}

/// Largest accepted response unless the caller says otherwise.
pub const DEFAULT_MAX_BYTES: usize = 1024 * 1024;

/// How a non-public address is classified, `None` for public ones.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [0, ..] => "unspecified",
        [127, ..] => "loopback",
        [10, ..] | [172, 16..=31, ..] | [192, 168, ..] => "private",
        [100, 64..=127, ..] => "carrier-grade NAT",
        [169, 254, ..] => "link-local",
        [192, 0, 0, ..] => "reserved (IETF)",
        [192, 0, 2, ..] | [198, 51, 100, ..] | [203, 0, 113, ..] => "documentation",
        [198, 18..=19, ..] => "benchmarking",
        [224..=239, ..] => "multicast",
        [240..=255, ..] => "reserved",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    let s = ip.segments();
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        // IPv4-compatible (deprecated) and NAT64: judge the embedded address.
        [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            return v4_kind(v4).or(Some("IPv4-embedding"));
        }
        [x, ..] if x & 0xfe00 == 0xfc00 => "unique local",
        [x, ..] if x & 0xffc0 == 0xfe80 => "link-local",
        [x, ..] if x & 0xffc0 == 0xfec0 => "site-local",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0x0db8, ..] => "documentation",
        // 6to4: the embedded IPv4 address decides.
        [0x2002, a, b, ..] => {
            let v4 = Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8);
            return v4_kind(v4);
        }
        _ => return None,
    })
}

impl Policy {
    /// The policy of `settings`; a bad entry is a configuration error.
    pub fn from_settings(settings: &OutboundSettings) -> Result<Self, String> {
        let allowed = settings.allow_private.iter().map(|e| AllowEntry::parse(e)).collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// The host (name or literal) is on the allow-list by name or address.
    pub fn lists_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.lists_ip(ip);
        }
        self.allowed.iter().any(|a| match a {
            AllowEntry::Host(h) => *h == host,
            AllowEntry::Suffix(s) => host.ends_with(s.as_str()),
            AllowEntry::Net(_) => false,
        })
    }

    fn lists_ip(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|a| matches!(a, AllowEntry::Net(cidr) if cidr.contains(ip)))
    }

    /// `Err` when `ip`, reached for `host`, may not be fetched.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), EgressError> {
        match non_public_kind(ip) {
            Some(kind) if !self.lists_ip(ip) && !self.lists_host(host) => {
                Err(EgressError::Refused { host: host.to_owned(), address: ip, kind })
            }
            _ => Ok(()),
        }
    }

    /// Checks a URL before anything is sent: scheme (`https`, or `http` for
    /// listed hosts when `require_https`) and, for IP literals, the address.
    /// Names are checked when they are resolved.
    pub fn check_url(&self, url: &url::Url, require_https: bool) -> Result<(), EgressError> {
        let shown = || url.as_str().chars().take(200).collect::<String>();
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| EgressError::BadUrl(shown()))?;
        match url.scheme() {
            "https" => {}
            "http" if !require_https || self.lists_host(host) => {}
            "http" => return Err(EgressError::NotHttps(shown())),
            _ => return Err(EgressError::BadUrl(shown())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EgressError::BadUrl(shown()));
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(host, IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(host, IpAddr::V6(ip)),
            _ => Ok(()),
        }
    }

    /// Parses and checks `raw` (see [`Policy::check_url`]).
    pub fn parse_url(&self, raw: &str, require_https: bool) -> Result<url::Url, EgressError> {
        let url = url::Url::parse(raw.trim()).map_err(|_| EgressError::BadUrl(raw.chars().take(200).collect()))?;
        self.check_url(&url, require_https)?;
        Ok(url)
    }
}

/// Resolves names for reqwest and drops the addresses the policy refuses;
/// when none is left the connection fails with the reason.
struct CheckedResolver {
    policy: Arc<Policy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| {
                    Box::new(EgressError::Unresolved(host.clone())) as Box<dyn std::error::Error + Send + Sync>
                })?
                .collect();
            let mut first_refusal = None;
            let admitted: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_ip(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        first_refusal.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if admitted.is_empty() {
                let e = first_refusal.unwrap_or_else(|| EgressError::Unresolved(host.clone()));
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(admitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A reqwest client builder that resolves through the policy and ignores
/// proxy environment variables (a proxy would resolve names itself).
pub fn checked_builder(policy: Arc<Policy>) -> reqwest::ClientBuilder {
    reqwest::Client::builder().no_proxy().dns_resolver(Arc::new(CheckedResolver { policy }))
}

/// The egress-checked client (cheap to clone).
#[derive(Clone)]
pub struct Egress {
    policy: Arc<Policy>,
    direct: reqwest::Client,
    following: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Egress").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// The checked error of a failed reqwest call, or a plain description.
fn classify(host: &str, e: &reqwest::Error) -> EgressError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(ours) = s.downcast_ref::<EgressError>() {
            return ours.clone();
        }
        source = s.source();
    }
    let reason = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "the connection failed"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "the request failed"
    };
    EgressError::Failed { host: host.to_owned(), reason }
}

impl Egress {
    /// A client with `policy`; each request ends after `timeout`.
    pub fn new(policy: Policy, timeout: Duration) -> Self {
        let policy = Arc::new(policy);
        let build = |redirect: reqwest::redirect::Policy| {
            checked_builder(policy.clone())
                .redirect(redirect)
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .user_agent(concat!("Portico/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("the HTTP client builds")
        };
        let checker = policy.clone();
        let following = build(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 3 {
                return attempt.error(EgressError::Redirect("more than 3 redirects".into()));
            }
            // A redirect may not downgrade to http for an unlisted host either.
            match checker.check_url(attempt.url(), true) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(EgressError::Redirect(format!("a redirect was refused: {e}"))),
            }
        }));
        let direct = build(reqwest::redirect::Policy::none());
        Self { policy, direct, following, timeout }
    }

    /// From the settings (10 s per request).
    pub fn from_settings(settings: &OutboundSettings) -> Result<Self, String> {
        Ok(Self::new(Policy::from_settings(settings)?, Duration::from_secs(10)))
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A request builder on the client without redirects; send it with
    /// [`Egress::send`].
    pub fn request(&self, method: reqwest::Method, url: url::Url) -> reqwest::RequestBuilder {
        self.direct.request(method, url)
    }

    /// Sends `request` (already checked URL) and reads at most `max_bytes`.
    pub async fn send(
        &self,
        request: reqwest::Request,
        redirects: Redirects,
        max_bytes: usize,
    ) -> Result<Fetched, EgressError> {
        self.policy.check_url(request.url(), true)?;
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let client = match redirects {
            Redirects::None => &self.direct,
            Redirects::Checked => &self.following,
        };
        let mut response = client.execute(request).await.map_err(|e| classify(&host, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type =
            headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::new();
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, response.chunk()).await {
                Err(_) => return Err(EgressError::Failed { host, reason: "timed out reading the response" }),
                Ok(Err(e)) => return Err(classify(&host, &e)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    if body.len() + chunk.len() > max_bytes {
                        return Err(EgressError::TooLarge(max_bytes / 1024));
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
        Ok(Fetched { status, content_type, headers, body })
    }

    /// `GET url` with `accept`.
    pub async fn get(
        &self,
        url: &url::Url,
        accept: &str,
        redirects: Redirects,
        max_bytes: usize,
    ) -> Result<Fetched, EgressError> {
        let request = self
            .direct
            .get(url.clone())
            .header(axum::http::header::ACCEPT, accept)
            .build()
            .map_err(|_| EgressError::BadUrl(url.to_string()))?;
        self.send(request, redirects, max_bytes).await
    }

    /// An OAuth 2.0 request made by the openidconnect crate (token endpoint):
    /// no redirects, 256 KiB.
    pub async fn oauth(&self, request: openidconnect::HttpRequest) -> Result<openidconnect::HttpResponse, EgressError> {
        let (parts, body) = request.into_parts();
        let url = url::Url::parse(&parts.uri.to_string()).map_err(|_| EgressError::BadUrl(parts.uri.to_string()))?;
        let mut built = reqwest::Request::new(parts.method, url);
        *built.headers_mut() = parts.headers;
        *built.body_mut() = Some(body.into());
        let fetched = self.send(built, Redirects::None, 256 * 1024).await?;
        let mut response = axum::http::Response::new(fetched.body);
        *response.status_mut() =
            axum::http::StatusCode::from_u16(fetched.status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
        *response.headers_mut() = fetched.headers;
        Ok(response)
    }
}

/// The openidconnect crate sends its token requests through [`Egress::oauth`].
impl<'c> openidconnect::AsyncHttpClient<'c> for Egress {
    type Error = EgressError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, EgressError>> + Send + 'c>,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(self.oauth(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> Policy {
        Policy::from_settings(&OutboundSettings {
            allow_private: entries.iter().map(|s| s.to_string()).collect(),
            check_webhooks: false,
        })
        .unwrap()
    }

    #[test]
    fn non_public_addresses_are_classified() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
        ] {
            assert_eq!(non_public_kind(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "8.8.8.8", "::ffff:8.8.8.8"] {
            assert_eq!(non_public_kind(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn the_allow_list_admits_networks_addresses_and_hosts() {
        let p = policy(&["127.0.0.1", "10.0.0.0/8", "::1/128", "idp.corp.internal", "*.lab.internal"]);
        assert!(p.check_ip("x", "127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check_ip("x", "127.0.0.2".parse().unwrap()).is_err());
        assert!(p.check_ip("x", "10.200.0.1".parse().unwrap()).is_ok());
        assert!(p.check_ip("x", "::1".parse().unwrap()).is_ok());
        assert!(p.check_ip("x", "::ffff:10.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check_ip("idp.corp.internal", "192.168.0.5".parse().unwrap()).is_ok());
        assert!(p.check_ip("a.lab.internal", "192.168.0.5".parse().unwrap()).is_ok());
        assert!(p.check_ip("lab.internal", "192.168.0.5".parse().unwrap()).is_err());
        assert!(p.check_ip("evil.example", "169.254.169.254".parse().unwrap()).is_err());
        assert!(p.check_ip("public.example", "93.184.216.34".parse().unwrap()).is_ok());
        assert!(
            Policy::from_settings(&OutboundSettings {
                allow_private: vec!["10.0.0.0/40".into()],
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            Policy::from_settings(&OutboundSettings { allow_private: vec!["bad host!".into()], ..Default::default() })
                .is_err()
        );
    }

    #[test]
    fn urls_are_checked_before_sending() {
        let p = policy(&["127.0.0.1"]);
        let check = |u: &str| p.parse_url(u, true);
        assert!(check("https://idp.example/metadata").is_ok());
        assert!(check("http://127.0.0.1:8080/x").is_ok(), "http to a listed host");
        assert!(matches!(check("http://idp.example/x"), Err(EgressError::NotHttps(_))));
        assert!(matches!(check("javascript:alert(1)"), Err(EgressError::BadUrl(_))));
        assert!(matches!(check("file:///etc/passwd"), Err(EgressError::BadUrl(_))));
        assert!(matches!(check("https://169.254.169.254/latest"), Err(EgressError::Refused { .. })));
        assert!(matches!(check("https://[::1]/"), Err(EgressError::Refused { .. })));
        assert!(matches!(check("https://127.0.0.2/"), Err(EgressError::Refused { .. })));
        assert!(matches!(check("https://user:pw@idp.example/"), Err(EgressError::BadUrl(_))));
        let e = check("https://10.0.0.1/").unwrap_err().to_string();
        assert!(e.contains("private") && e.contains("outbound.allow_private"), "{e}");
        // Webhooks (when checked) accept http to public hosts.
        assert!(p.parse_url("http://hooks.example/x", false).is_ok());
    }

    #[test]
    fn responses_are_described_without_their_body() {
        let f = Fetched {
            status: 200,
            content_type: Some("text/html; charset=utf-8".into()),
            headers: axum::http::HeaderMap::new(),
            body: b"AWS_SECRET_ACCESS_KEY=abc".to_vec(),
        };
        assert_eq!(f.describe(), "HTTP 200, text/html, 25 bytes");
    }
}
