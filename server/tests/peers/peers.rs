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
    start_peer_with(program, args, &[]).await
}

async fn start_peer_with(program: PathBuf, args: Vec<String>, env: &[(&str, String)]) -> Peer {
    use tokio::io::AsyncBufReadExt;
    let node_modules = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/npm/node_modules"));
    let mut child = tokio::process::Command::new(&program)
        .args(&args)
        .env("OIDC_PROVIDER_NODE_MODULES", node_modules)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} (./scripts/test installs the test peers): {e}", program.display()));
    // The peer's stderr is kept so a peer that dies or hangs says why.
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut err_lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = stderr.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err_lines.next_line().await {
            eprintln!("[peer] {line}");
            sink.lock().unwrap().push_str(&line);
            sink.lock().unwrap().push('\n');
        }
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Generous: on a loaded 2-core CI machine a cold Node or Python start
    // (loading oidc-provider or pysaml2 from disk) has taken over 30 s.
    let ready = tokio::time::timeout(std::time::Duration::from_secs(120), lines.next_line()).await;
    let line = match ready {
        Ok(Ok(Some(line))) => line,
        other => panic!(
            "{} {args:?} did not print READY ({other:?}); its stderr:\n{}",
            program.display(),
            stderr.lock().unwrap()
        ),
    };
    let url = line.strip_prefix("READY ").expect("READY line").trim().to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Peer { url, _child: child }
}

/// A SAML identity provider: PyPI pysaml2 signing with Debian xmlsec1
/// (`tests/peers/saml_idp.py`).
pub async fn saml_idp() -> Peer {
    let script = peers_dir().join("saml_idp.py").display().to_string();
    start_peer(python(), vec![script, free_port().to_string()]).await
}

/// The same SAML identity provider, its signing certificate valid for `days`.
pub async fn saml_idp_expiring_in(days: u32) -> Peer {
    let script = peers_dir().join("saml_idp.py").display().to_string();
    start_peer_with(python(), vec![script, free_port().to_string()], &[("IDP_CERT_DAYS", days.to_string())]).await
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

/// Where the browser ended.
#[derive(Debug)]
pub enum Landing {
    /// Redirected to the vendor's callback (full URL).
    Vendor(url::Url),
    /// Stopped on a page (status, body).
    Page(u16, String),
}

/// A browser without JavaScript beyond auto-posting forms: keeps cookies,
/// follows redirects, submits `<form method="post">` pages.
pub struct Browser<'a> {
    client: &'a reqwest::Client,
    /// Where the vendor's app receives the login: the walk stops there.
    stop: &'a str,
    cookies: std::collections::HashMap<String, String>,
    /// The last form posted (action, fields): for replays.
    pub last_form: Option<(String, Vec<(String, String)>)>,
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The auto-posting form of an IdP page, if any.
fn post_form(body: &str) -> Option<(String, Vec<(String, String)>)> {
    let form_start = body.find("<form")?;
    let form_tag = &body[form_start..form_start + body[form_start..].find('>')?];
    if !form_tag.to_ascii_lowercase().contains("method=\"post\"") {
        return None;
    }
    let action = attr(form_tag, "action")?;
    let mut fields = Vec::new();
    let mut rest = &body[form_start..];
    while let Some(i) = rest.find("<input") {
        let end = rest[i..].find('>').unwrap() + i;
        let tag = &rest[i..end];
        if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
            fields.push((n, v));
        }
        rest = &rest[end..];
    }
    Some((action, fields))
}

impl<'a> Browser<'a> {
    /// `client` must not follow redirects.
    pub fn new(client: &'a reqwest::Client, stop: &'a str) -> Self {
        Self { client, stop, cookies: Default::default(), last_form: None }
    }

    pub async fn go(&mut self, url: &str) -> Landing {
        self.request(reqwest::Method::GET, url, None).await
    }

    pub async fn post(&mut self, url: &str, fields: Vec<(String, String)>) -> Landing {
        self.request(reqwest::Method::POST, url, Some(fields)).await
    }

    async fn request(
        &mut self,
        mut method: reqwest::Method,
        url: &str,
        mut form: Option<Vec<(String, String)>>,
    ) -> Landing {
        let mut url = url::Url::parse(url).unwrap();
        for _ in 0..20 {
            if url.as_str().starts_with(self.stop) {
                return Landing::Vendor(url);
            }
            let mut req = self.client.request(method.clone(), url.clone());
            let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            if !cookie.is_empty() {
                req = req.header("cookie", cookie);
            }
            if let Some(fields) = form.take() {
                self.last_form = Some((url.to_string(), fields.clone()));
                req = req.form(&fields);
            }
            let r = req.send().await.unwrap();
            for c in r.headers().get_all("set-cookie") {
                let pair = c.to_str().unwrap().split(';').next().unwrap();
                if let Some((k, v)) = pair.split_once('=') {
                    self.cookies.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
            let status = r.status().as_u16();
            if (300..400).contains(&status) {
                let location = r.headers()["location"].to_str().unwrap().to_owned();
                url = url.join(&location).unwrap();
                method = reqwest::Method::GET;
                continue;
            }
            let body = r.text().await.unwrap();
            match post_form(&body) {
                Some((action, fields)) if status == 200 => {
                    url = url.join(&action).unwrap();
                    method = reqwest::Method::POST;
                    form = Some(fields);
                }
                _ => return Landing::Page(status, body),
            }
        }
        panic!("too many redirects");
    }
}
