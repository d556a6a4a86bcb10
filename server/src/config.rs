//! Configuration: built-in defaults, then an optional TOML file, then
//! `PORTICO_*` environment variables (`__` separates nested keys, e.g.
//! `PORTICO_LOG__FORMAT=json`). Invalid values stop the process at start with a
//! message naming the offending key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::ExposeSecret;

use crate::crypto::Cipher;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// All settings of a Portico process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server binds. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Public base URL of this deployment, used in links and metadata.
    pub public_url: String,
    /// `sqlite://path/to/file.db` (created on first run) or `postgres://…`.
    pub database_url: String,
    /// Maximum connections in the database pool.
    pub database_max_connections: u32,
    /// Directory holding the built site (`pkg/` with the wasm bundle and CSS).
    pub site_root: PathBuf,
    /// Logging options.
    pub log: LogSettings,
    /// The SaaS vendor operating this deployment (portal branding).
    pub vendor: VendorSettings,
    /// Portal links, sessions and embedding.
    pub portal: PortalSettings,
    /// Outgoing email (portal links). Disabled while `smtp.host` is unset.
    pub smtp: SmtpSettings,
    /// Webhook delivery.
    pub webhooks: WebhookSettings,
    /// Domain verification by DNS TXT.
    pub domains: DomainSettings,
    /// The vendor login API.
    pub sso: SsoSettings,
    /// Requests Portico makes on someone else's behalf (IdP metadata,
    /// discovery, JWKS, token, userinfo; webhooks optionally).
    pub outbound: OutboundSettings,
    /// Abuse limits on the unauthenticated surfaces.
    pub limits: LimitSettings,
    /// Base64 of 32 random bytes (`openssl rand -base64 32`): encrypts
    /// secrets at rest. Required with PostgreSQL (every replica needs the same
    /// key); with SQLite a key file beside the database is created if unset.
    #[serde(skip_serializing, default)]
    pub encryption_key: Option<secrecy::SecretString>,
}

/// Webhook delivery tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Run the delivery worker in this process.
    pub worker: bool,
    /// Deliveries in flight at once per process.
    pub concurrency: usize,
    /// Seconds before a delivery attempt times out.
    pub timeout_secs: u64,
    /// First retry delay (milliseconds); doubles per attempt, with ±20% jitter.
    pub retry_base_ms: u64,
    /// Longest delay between two attempts (seconds).
    pub retry_max_delay_secs: u64,
    /// Attempts before a delivery is given up (default spans about 3 days).
    pub max_attempts: u32,
    /// Seconds a worker owns a claimed delivery; a crashed worker's claims
    /// become available again after this.
    pub lease_secs: u64,
    /// Fallback poll interval when no wake-up arrives (milliseconds).
    pub poll_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            worker: true,
            concurrency: 64,
            timeout_secs: 10,
            retry_base_ms: 5_000,
            retry_max_delay_secs: 6 * 3600,
            max_attempts: 24,
            lease_secs: 60,
            poll_ms: 1_000,
        }
    }
}

/// The vendor login API (`/sso/authorize`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoSettings {
    /// Where `/sso/authorize` may send users back, exact match
    /// (`https://app.example.com/sso/callback`). The first one also receives
    /// IdP-initiated sign-ins.
    pub redirect_uris: Vec<String>,
}

/// Domain verification by DNS TXT.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSettings {
    /// Nameservers to ask, as `ip:port` (`127.0.0.1:5353`). Empty: the
    /// system's resolvers (`/etc/resolv.conf`).
    pub nameservers: Vec<String>,
    /// Per-query timeout (milliseconds).
    pub timeout_ms: u64,
    /// Label under the domain that holds the TXT record.
    pub txt_label: String,
    /// Run background re-checks of pending domains in this process.
    pub worker: bool,
    /// First background re-check delay (seconds); doubles per check.
    pub recheck_base_secs: u64,
    /// Longest delay between background re-checks (seconds).
    pub recheck_max_secs: u64,
    /// A domain still pending this long after it was added fails (seconds).
    pub pending_timeout_secs: u64,
    /// How often the worker looks for due re-checks (milliseconds).
    pub poll_ms: u64,
}

impl Default for DomainSettings {
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            timeout_ms: 5_000,
            txt_label: "_portico-verification".into(),
            worker: true,
            recheck_base_secs: 60,
            recheck_max_secs: 6 * 3600,
            pending_timeout_secs: 30 * 24 * 3600,
            poll_ms: 5_000,
        }
    }
}

/// Portal links, sessions and embedding.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// Lifetime of a link when the request does not say (seconds).
    pub link_ttl_secs: u64,
    /// Longest lifetime a link may ask for (seconds).
    pub max_link_ttl_secs: u64,
    /// Longest lifetime of a link sent by email (seconds).
    pub max_emailed_link_ttl_secs: u64,
    /// Hard limit on a portal session's life (seconds).
    pub session_ttl_secs: u64,
    /// A session unused for this long ends (seconds).
    pub session_idle_secs: u64,
    /// Origins (`https://app.example.com`) allowed to embed the portal in an
    /// iframe. Empty: framing is forbidden.
    pub embed_origins: Vec<String>,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            link_ttl_secs: 300,
            max_link_ttl_secs: 24 * 3600,
            max_emailed_link_ttl_secs: 7 * 24 * 3600,
            session_ttl_secs: 6 * 3600,
            session_idle_secs: 30 * 60,
            embed_origins: Vec::new(),
        }
    }
}

/// SMTP connection security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (local relays and tests only).
    None,
    /// Upgrade with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Outgoing mail server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Server host name; unset disables email.
    pub host: Option<String>,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    /// Never serialized or logged.
    #[serde(skip_serializing, default)]
    pub password: Option<secrecy::SecretString>,
    /// Sender, e.g. `Acme <no-reply@acme.com>`.
    pub from: String,
    /// Seconds before an SMTP attempt is abandoned.
    pub timeout_secs: u64,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: None,
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            from: "Portico <portico@localhost>".into(),
            timeout_secs: 10,
        }
    }
}

/// Logging output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` for humans, `json` for log pipelines.
    pub format: LogFormat,
    /// `tracing` env-filter directive, e.g. `info,portico_server=debug`.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Who runs this Portico, shown to IT admins in the portal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorSettings {
    /// Display name, e.g. "Acme Analytics".
    pub name: String,
    /// Vendor's own site, for "Back to …" links.
    pub url: Option<String>,
    /// Logo shown in the portal header (https URL).
    pub logo_url: Option<String>,
    /// Accent colour, `#rrggbb`.
    pub accent_color: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            database_url: "sqlite://data/portico.db".into(),
            database_max_connections: 16,
            site_root: PathBuf::from("target/site"),
            log: LogSettings { format: LogFormat::Text, level: "info".into() },
            vendor: VendorSettings { name: "Portico".into(), url: None, logo_url: None, accent_color: None },
            portal: PortalSettings::default(),
            smtp: SmtpSettings::default(),
            webhooks: WebhookSettings::default(),
            domains: DomainSettings::default(),
            sso: SsoSettings::default(),
            outbound: OutboundSettings::default(),
            limits: LimitSettings::default(),
            encryption_key: None,
        }
    }
}

impl Settings {
    /// Loads settings from defaults, `file` (if given; must exist) and the
    /// process environment, then validates them.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        // `PORTICO_CONFIG` names the file (read by the CLI) and
        // `PORTICO_TEST_*` belong to the test suite: neither is a setting.
        let env = Env::prefixed("PORTICO_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                key != "config" && !key.starts_with("test_")
            })
            .split("__");
        Self::load_from(file, env)
    }

    fn load_from(file: Option<&Path>, env: Env) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            if !file.is_file() {
                bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let settings: Settings =
            figment.merge(env).extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        DatabaseKind::of(&self.database_url)?;
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            bail!("invalid configuration: public_url must start with http:// or https://, got {:?}", self.public_url);
        }
        if self.database_max_connections == 0 {
            bail!("invalid configuration: database_max_connections must be at least 1");
        }
        if self.vendor.name.trim().is_empty() {
            bail!("invalid configuration: vendor.name must not be empty");
        }
        if let Some(color) = &self.vendor.accent_color
            && parse_hex_color(color).is_none()
        {
            bail!("invalid configuration: vendor.accent_color must look like #1a2b3c, got {color:?}");
        }
        for ns in &self.domains.nameservers {
            if ns.parse::<std::net::SocketAddr>().is_err() {
                bail!(
                    "invalid configuration: domains.nameservers entries must be ip:port like 127.0.0.1:53, got {ns:?}"
                );
            }
        }
        let label = &self.domains.txt_label;
        if label.is_empty()
            || label.len() > 63
            || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!(
                "invalid configuration: domains.txt_label must be one DNS label like _portico-verification, got {label:?}"
            );
        }
        for uri in &self.sso.redirect_uris {
            match url::Url::parse(uri) {
                Ok(u) if matches!(u.scheme(), "https" | "http") && u.fragment().is_none() => {}
                _ => bail!(
                    "invalid configuration: sso.redirect_uris entries must be absolute http(s) URLs without a fragment, got {uri:?}"
                ),
            }
        }
        for entry in &self.outbound.allow_private {
            crate::net::AllowEntry::parse(entry)
                .map_err(|e| anyhow::anyhow!("invalid configuration: outbound.allow_private: {e}"))?;
        }
        self.limits.validate().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        for origin in &self.portal.embed_origins {
            if !is_origin(origin) {
                bail!(
                    "invalid configuration: portal.embed_origins entries must be origins like https://app.example.com (no path), got {origin:?}"
                );
            }
        }
        let p = &self.portal;
        if p.link_ttl_secs == 0 || p.link_ttl_secs > p.max_link_ttl_secs {
            bail!("invalid configuration: portal.link_ttl_secs must be between 1 and portal.max_link_ttl_secs");
        }
        if p.session_idle_secs == 0 || p.session_ttl_secs == 0 {
            bail!("invalid configuration: portal.session_ttl_secs and portal.session_idle_secs must be positive");
        }
        if self.smtp.host.is_some() && !self.smtp.from.contains('@') {
            bail!("invalid configuration: smtp.from must be an email address, got {:?}", self.smtp.from);
        }
        if let Some(key) = &self.encryption_key {
            Cipher::from_base64(key.expose_secret()).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        }
        let w = &self.webhooks;
        if w.concurrency == 0 || w.timeout_secs == 0 || w.max_attempts == 0 || w.lease_secs <= w.timeout_secs {
            bail!(
                "invalid configuration: webhooks.concurrency, timeout_secs and max_attempts must be positive and lease_secs greater than timeout_secs"
            );
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .with_context(|| format!("invalid configuration: log.level {:?}", self.log.level))?;
        Ok(())
    }

    /// The key for this deployment: `encryption_key` if set; otherwise, with
    /// SQLite, a key file `portico.key` beside the database (created 0600 on
    /// first start). PostgreSQL deployments must set the key explicitly so
    /// every replica shares it.
    pub fn cipher(&self) -> anyhow::Result<Cipher> {
        if let Some(key) = &self.encryption_key {
            return Cipher::from_base64(key.expose_secret());
        }
        let url = &self.database_url;
        if DatabaseKind::of(url)? == DatabaseKind::Postgres {
            bail!(
                "encryption_key is required with PostgreSQL (every replica needs the same key): set PORTICO_ENCRYPTION_KEY to the output of `openssl rand -base64 32`"
            );
        }
        let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path.contains(":memory:") {
            tracing::warn!("in-memory database without encryption_key: using a throw-away key");
            return Cipher::from_base64(Cipher::generate_base64().expose_secret());
        }
        let key_path = std::path::Path::new(path).with_file_name("portico.key");
        if !key_path.exists() {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&key_path) {
                Ok(mut f) => {
                    f.write_all(Cipher::generate_base64().expose_secret().as_bytes())
                        .with_context(|| format!("Failed to write {}", key_path.display()))?;
                    tracing::info!(path = %key_path.display(), "created a new encryption key file; back it up with the database");
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).with_context(|| format!("Failed to create {}", key_path.display())),
            }
        }
        let encoded =
            std::fs::read_to_string(&key_path).with_context(|| format!("Failed to read {}", key_path.display()))?;
        Cipher::from_base64(&encoded).with_context(|| format!("invalid key file {}", key_path.display()))
    }

    /// Public base URL without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}

/// `#rrggbb` → the same string, validated.
pub fn parse_hex_color(s: &str) -> Option<&str> {
    let hex = s.strip_prefix('#')?;
    (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

/// `scheme://host[:port]` with an http(s) scheme and nothing after.
pub fn is_origin(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")) else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' ', '*', '\''])
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Operator settings for outbound requests (`[outbound]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSettings {
    /// Addresses and hosts that may be reached although they are not
    /// public: CIDRs (`10.0.0.0/8`, `127.0.0.1/32`, `::1/128`), single
    /// addresses (`127.0.0.1`) or host names (`idp.corp.internal`, matched
    /// exactly, or `*.corp.internal` for subdomains). `http` URLs are only
    /// accepted for these. Needed for self-hosted IdPs on internal networks
    /// and for the test suite's loopback peers.
    pub allow_private: Vec<String>,
    /// Also check webhook deliveries (off by default: webhook URLs are set
    /// by the vendor's own API key and self-hosted receivers often live on
    /// private networks; see docs/decisions.md).
    pub check_webhooks: bool,
}

/// A sustained rate with a burst allowance. `per_minute = 0` turns the
/// limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }
}

/// Operator settings (`[limits]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Proxies (CIDRs or addresses) whose `X-Forwarded-For` is believed. The
    /// client is the right-most address that is not one of them. Empty: the
    /// TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Portal links opened, per client address.
    pub portal_launch: Rate,
    /// Sign-ins started at `/sso/authorize`, per client address.
    pub sso_authorize: Rate,
    /// Failed API or SCIM bearer authentications per client address (SCIM:
    /// per address and directory, so one IdP tenant with a wrong token does
    /// not block others behind the same IdP egress address).
    pub auth_failures: Rate,
    /// Failed bearer authentications per token prefix (the public lookup part
    /// of a Portico token), from any address.
    pub auth_failures_per_token: Rate,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            portal_launch: Rate::new(30, 10),
            // A company's whole staff may sign in from one egress address at 9am.
            sso_authorize: Rate::new(600, 300),
            auth_failures: Rate::new(20, 20),
            auth_failures_per_token: Rate::new(20, 20),
        }
    }
}

impl LimitSettings {
    /// Configuration errors, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("portal_launch", self.portal_launch),
            ("sso_authorize", self.sso_authorize),
            ("auth_failures", self.auth_failures),
            ("auth_failures_per_token", self.auth_failures_per_token),
        ] {
            if rate.per_minute > 0 && rate.burst == 0 {
                return Err(format!("limits.{name}.burst must be at least 1 when per_minute is set"));
            }
        }
        for entry in &self.trusted_proxies {
            crate::net::Cidr::parse(entry)
                .ok_or_else(|| format!("limits.trusted_proxies: {entry:?} is not a CIDR or address"))?;
        }
        Ok(())
    }
}

/// Which storage backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl DatabaseKind {
    /// Classifies `url`, rejecting schemes Portico does not support.
    pub fn of(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            bail!("invalid configuration: database_url must start with sqlite:// or postgres://")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // figment's Jail closure returns figment's own (large) error type.
    #[allow(clippy::result_large_err)]
    fn load(toml: Option<&str>, env: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let file = toml.map(|t| {
            let p = dir.path().join("portico.toml");
            std::fs::write(&p, t).unwrap();
            p
        });
        let mut result = None;
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            for (k, v) in env {
                jail.set_env(k, v);
            }
            result = Some(Settings::load(file.as_deref()));
            Ok(())
        });
        result.unwrap()
    }

    #[test]
    fn defaults_use_embedded_sqlite() {
        let s = load(None, &[]).unwrap();
        assert_eq!(DatabaseKind::of(&s.database_url).unwrap(), DatabaseKind::Sqlite);
        assert_eq!(s.listen.port(), 8080);
    }

    #[test]
    fn env_overrides_file_and_nested_keys_use_double_underscore() {
        let s = load(
            Some("listen = \"127.0.0.1:9000\"\n[log]\nformat = \"text\"\n"),
            &[("PORTICO_LOG__FORMAT", "json"), ("PORTICO_VENDOR__NAME", "Acme")],
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.vendor.name, "Acme");
    }

    #[test]
    fn bad_values_fail_with_the_key_named() {
        let err = load(None, &[("PORTICO_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
        let err = load(None, &[("PORTICO_LISTEN", "not-an-address")]).unwrap_err();
        assert!(err.to_string().to_lowercase().contains("listen"), "{err}");
        let err = load(Some("unknown_key = 1\n"), &[]).unwrap_err();
        assert!(err.to_string().contains("unknown_key"), "{err}");
    }

    #[test]
    fn non_setting_variables_are_ignored() {
        let s = load(None, &[("PORTICO_CONFIG", "/x.toml"), ("PORTICO_TEST_POSTGRES_URL", "postgres://x")]).unwrap();
        assert_eq!(s.listen.port(), 8080);
        let err = load(None, &[("PORTICO_LISTN", "127.0.0.1:1")]).unwrap_err();
        assert!(err.to_string().to_lowercase().contains("listn"), "typos still fail: {err}");
    }

    #[test]
    fn embed_origins_and_colours_are_checked() {
        assert!(is_origin("https://app.example.com"));
        assert!(is_origin("http://127.0.0.1:3000"));
        for bad in ["https://app.example.com/", "app.example.com", "https://*.example.com", "javascript:x", "https://"]
        {
            assert!(!is_origin(bad), "{bad}");
        }
        let err = load(None, &[("PORTICO_PORTAL__EMBED_ORIGINS", "[\"https://a.com/path\"]")]).unwrap_err();
        assert!(err.to_string().contains("embed_origins"), "{err}");
        let err = load(None, &[("PORTICO_VENDOR__ACCENT_COLOR", "red")]).unwrap_err();
        assert!(err.to_string().contains("accent_color"), "{err}");
        let ok =
            load(None, &[("PORTICO_PORTAL__EMBED_ORIGINS", "[\"https://a.com\", \"http://localhost:3000\"]")]).unwrap();
        assert_eq!(ok.portal.embed_origins.len(), 2);
    }

    #[test]
    fn smtp_password_is_never_serialized_or_debug_printed() {
        let s = load(None, &[("PORTICO_SMTP__HOST", "mail"), ("PORTICO_SMTP__PASSWORD", "hunter2-secret")]).unwrap();
        assert!(s.smtp.password.is_some());
        assert!(!format!("{s:?}").contains("hunter2-secret"));
        assert!(!toml_string(&s).contains("hunter2-secret"));
    }

    fn toml_string(s: &Settings) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/portico.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
