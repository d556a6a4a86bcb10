//! Portal links by email, received by a real SMTP server process (PyPI
//! `aiosmtpd`, storing into a Maildir) and parsed with Python's `email`.

use std::process::Stdio;
use std::time::Duration;

use portico_server::config::SmtpTls;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_problem, python, spawn_app_with};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running aiosmtpd writing every message into `maildir`.
struct SmtpServer {
    port: u16,
    maildir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl SmtpServer {
    async fn start() -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = tokio::process::Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            // A path that does not exist yet: Maildir creates it with tmp/new/cur.
            .arg(maildir.path().join("box"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start aiosmtpd (./scripts/test installs it into .tools/venv)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { port, maildir, _child: child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// Every received message, decoded by Python's email package.
    async fn messages(&self) -> Vec<Value> {
        let script = r#"
import json, mailbox, os, sys
if not os.path.isdir(sys.argv[1]):
    print("[]")
    sys.exit()
box = mailbox.Maildir(sys.argv[1], create=False)
out = []
for msg in box:
    parts = {p.get_content_type(): p.get_payload(decode=True).decode(p.get_content_charset() or "utf-8")
             for p in msg.walk() if not p.is_multipart()}
    out.append({"to": msg["To"], "from": msg["From"], "subject": msg["Subject"],
                "text": parts.get("text/plain"), "html": parts.get("text/html")})
print(json.dumps(out))
"#;
        let out = tokio::process::Command::new(python())
            .args(["-c", script])
            .arg(self.maildir.path().join("box"))
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let m = self.messages().await;
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} message(s)");
    }
}

async fn emailed_links_arrive_and_open_the_portal(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(backend, |s| {
        s.smtp.host = Some("127.0.0.1".into());
        s.smtp.port = port;
        s.smtp.tls = SmtpTls::None;
        s.smtp.from = "Acme Analytics <portal@acme-analytics.test>".into();
    })
    .await;
    let org = app.org("Globex & Sons").await;
    let r = app
        .create_link(json!({
            "organization_id": org["id"], "intents": ["sso", "dsync"],
            "email": "it-admin@globex.test", "expires_in": 7 * 24 * 3600
        }))
        .await;
    assert_eq!(r.status(), 201);
    let link: Value = r.json().await.unwrap();
    assert_eq!(link["emailed_to"], "it-admin@globex.test");
    let url = link["url"].as_str().unwrap();

    let messages = smtp.wait_for(1).await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["to"], "it-admin@globex.test");
    assert_eq!(m["from"], "\"Acme Analytics\" <portal@acme-analytics.test>");
    assert_eq!(m["subject"], "Set up Acme Analytics for Globex & Sons");
    let text = m["text"].as_str().unwrap();
    assert!(text.contains(url), "plain text carries the link: {text}");
    assert!(text.contains("Acme Analytics invites you") && text.contains("Globex & Sons"));
    let html = m["html"].as_str().unwrap();
    assert!(html.contains(&format!("href=\"{url}\"")), "{html}");
    assert!(html.contains("Globex &amp; Sons"), "names are escaped in HTML");

    // The emailed link is the real thing.
    let local = url.replace("http://127.0.0.1:8080", &app.address);
    assert_eq!(app.open_link(&local, &[]).await.status(), 303);

    // Emailed links may live a week, not longer.
    let r = app
        .create_link(json!({ "organization_id": org["id"], "intents": ["sso"], "email": "it@globex.test", "expires_in": 7 * 24 * 3600 + 1 }))
        .await;
    assert_problem(r, 422).await;
}

async fn unreachable_smtp_gives_502_and_voids_the_link(backend: Backend) {
    let closed = free_port();
    let app = spawn_app_with(backend, |s| {
        s.smtp.host = Some("127.0.0.1".into());
        s.smtp.port = closed;
        s.smtp.tls = SmtpTls::None;
        s.smtp.timeout_secs = 2;
    })
    .await;
    let org = app.org("Globex").await;
    let r =
        app.create_link(json!({ "organization_id": org["id"], "intents": ["sso"], "email": "it@globex.test" })).await;
    let body = assert_problem(r, 502).await;
    assert!(body["detail"].as_str().unwrap().contains("voided"), "{body}");
    // Without email the same request works: the failure changed nothing else.
    let r = app.create_link(json!({ "organization_id": org["id"], "intents": ["sso"] })).await;
    assert_eq!(r.status(), 201);
}

both_backends!(emailed_links_arrive_and_open_the_portal, unreachable_smtp_gives_502_and_voids_the_link);
