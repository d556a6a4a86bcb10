//! Test peers shared by the integration and browser tests (included with
//! `#[path]`): real programs written by others, run on loopback.

use std::path::PathBuf;

/// Python with the test peers (`aiosmtpd`, `standardwebhooks`):
/// `PORTICO_TEST_PYTHON`, else the venv `scripts/test` makes in `.tools/venv`.
pub fn python() -> PathBuf {
    std::env::var_os("PORTICO_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python"))
}

/// A real DNS server (`tests/peers/dns_server.py`, PyPI dnslib) on a
/// loopback UDP port, serving TXT records the test publishes.
pub struct DnsPeer {
    pub address: String,
    zone: PathBuf,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl DnsPeer {
    pub async fn start() -> Self {
        use tokio::io::AsyncBufReadExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let zone = dir.path().join("zone.json");
        std::fs::write(&zone, "{}").unwrap();
        let script = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/peers/dns_server.py"));
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg(&zone)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python with dnslib (./scripts/test installs it)");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines.next_line().await.unwrap().expect("DNS peer prints its port");
        Self { address: format!("127.0.0.1:{}", port.trim()), zone, _child: child, _dir: dir }
    }

    /// Replaces the zone: `records` maps names to lists of TXT records (each a
    /// list of strings); `silent` names never get an answer.
    pub fn publish(&self, records: serde_json::Value, silent: &[&str]) {
        let tmp = self.zone.with_extension("tmp");
        std::fs::write(&tmp, serde_json::json!({ "records": records, "silent": silent }).to_string()).unwrap();
        std::fs::rename(&tmp, &self.zone).unwrap();
    }
}

/// A free loopback port (for peers and servers whose URLs must be known
/// before they start).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A test peer process that printed `READY <url>`.
pub struct Peer {
    pub url: String,
    _child: tokio::process::Child,
}

fn peers_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../server/tests/peers"))
}

async fn start_peer(program: PathBuf, args: Vec<String>) -> Peer {
    use tokio::io::AsyncBufReadExt;
    let node_modules = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/npm/node_modules"));
    let mut child = tokio::process::Command::new(&program)
        .args(&args)
        .env("OIDC_PROVIDER_NODE_MODULES", node_modules)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} (./scripts/test installs the test peers): {e}", program.display()));
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("peer starts within 30 s")
        .unwrap()
        .expect("peer prints READY");
    let url = ready.strip_prefix("READY ").expect("READY line").trim().to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Peer { url, _child: child }
}

/// A SAML identity provider: PyPI pysaml2 signing with Debian xmlsec1
/// (`tests/peers/saml_idp.py`).
pub async fn saml_idp() -> Peer {
    let script = peers_dir().join("saml_idp.py").display().to_string();
    start_peer(python(), vec![script, free_port().to_string()]).await
}

/// An OpenID provider: npm oidc-provider (`tests/peers/oidc_provider.mjs`)
/// with client `portico-test` / `secret` redirecting to Portico at `portico`.
pub async fn oidc_op(portico: &str, secret: &str) -> Peer {
    let script = peers_dir().join("oidc_provider.mjs").display().to_string();
    let args = vec![
        script,
        free_port().to_string(),
        "portico-test".into(),
        secret.into(),
        format!("{portico}/sso/oidc/callback"),
    ];
    start_peer(PathBuf::from("node"), args).await
}
