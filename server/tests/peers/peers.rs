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
