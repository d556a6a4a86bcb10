//! Configuration: built-in defaults, then an optional TOML file, then
//! `PORTICO_*` environment variables (`__` separates nested keys, e.g.
//! `PORTICO_LOG__FORMAT=json`). Invalid values stop the process at start with a
//! message naming the offending key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
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
            vendor: VendorSettings { name: "Portico".into(), url: None },
        }
    }
}

impl Settings {
    /// Loads settings from defaults, `file` (if given; must exist) and the
    /// process environment, then validates them.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_from(file, Env::prefixed("PORTICO_").split("__"))
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
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .with_context(|| format!("invalid configuration: log.level {:?}", self.log.level))?;
        Ok(())
    }

    /// Public base URL without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
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
    fn missing_config_file_is_an_error() {
        let err = Settings::load(Some(Path::new("/nonexistent/portico.toml"))).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
