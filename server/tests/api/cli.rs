//! The `portico` binary: key and organization commands, config errors.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{Backend, fresh_database, test_settings};

fn portico(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .env("PORTICO_DATABASE_URL", database_url)
        .env("PORTICO_LOG__LEVEL", "warn")
        .env_remove("PORTICO_CONFIG")
        .output()
        .expect("run portico")
}

async fn cli_creates_keys_and_orgs_that_the_api_accepts(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let out = portico(&url, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = portico(&url, &["api-key", "create", "--name", "cli-test", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("psk_"));

    let out =
        portico(&url, &["org", "create", "--name", "Stark", "--external-id", "s-1", "--domain", "stark.com", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let org: Value = serde_json::from_slice(&out.stdout).unwrap();

    let org_id = org["id"].as_str().unwrap();
    let out = portico(&url, &["link", "create", "--org", org_id, "--intent", "sso", "--intent", "dsync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link_url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(link_url.starts_with("http://127.0.0.1:8080/portal/launch?token=plt_"), "{link_url}");
    // Revoking: by link id, then everything of the organization.
    let out = portico(&url, &["link", "create", "--org", org_id, "--intent", "sso", "--json"]);
    let link: Value = serde_json::from_slice(&out.stdout).unwrap();
    let link_id = link["id"].as_str().unwrap();
    let out = portico(&url, &["link", "revoke", link_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked; 0 session(s) ended"));
    let out = portico(&url, &["link", "revoke", link_id]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("already revoked"));
    let out = portico(&url, &["link", "revoke", &uuid::Uuid::now_v7().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    let out = portico(&url, &["org", "create", "--name", "Wayne", "--json"]);
    let wayne: Value = serde_json::from_slice(&out.stdout).unwrap();
    let wayne_id = wayne["id"].as_str().unwrap();
    assert!(portico(&url, &["link", "create", "--org", wayne_id, "--intent", "sso"]).status.success());
    let out = portico(&url, &["link", "revoke-sessions", "--org", wayne_id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0 portal session(s) ended, 1 unopened link(s) revoked");
    let out = portico(&url, &["link", "create", "--org", org_id, "--intent", "billing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown intent"));

    let out = portico(&url, &["org", "create", "--name", "Bad", "--domain", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--domain"));

    let out = portico(&url, &["org", "list"]);
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains("Stark") && listing.contains("stark.com") && !listing.contains("Bad"));

    let out = portico(&url, &["api-key", "list"]);
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains("cli-test") && !listing.contains(&key[4..]), "keys are never listed");

    let app = portico_server::startup::Application::build(test_settings(url.clone())).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{base}/api/v1/organizations/{}", org["id"].as_str().unwrap()))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["external_id"], "s-1");
    // The CLI-made link opens a session on the server.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(link_url.replace("http://127.0.0.1:8080", &base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn cli_sqlite() {
    cli_creates_keys_and_orgs_that_the_api_accepts(Backend::Sqlite).await;
}

#[tokio::test]
async fn cli_postgres() {
    cli_creates_keys_and_orgs_that_the_api_accepts(Backend::Postgres).await;
}

#[test]
fn bad_configuration_fails_fast_with_a_clear_message() {
    let out = portico("mysql://nope", &["migrate"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("database_url"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["--config", "/nonexistent/portico.toml", "migrate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn sqlite_database_file_and_directory_are_created_on_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/dir/portico.db");
    let out = portico(&format!("sqlite://{}", db.display()), &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db.is_file());
    // WAL mode: the -wal file appears while connections are open, and the
    // header says so permanently (bytes 18/19 == 2).
    let header = std::fs::read(&db).unwrap();
    assert_eq!((header[18], header[19]), (2, 2), "database is in WAL mode");
}

/// `portico events tail --type …` prints one line per matching event, in
/// order, as they happen in another process.
async fn events_tail_follows_a_running_server(backend: Backend) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::time::{Duration, timeout};

    let app = crate::helpers::spawn_app(backend).await;
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["events", "tail", "--type", "organization.created,organization.deleted"])
        .env("PORTICO_DATABASE_URL", &app.database_url)
        .env("PORTICO_LOG__LEVEL", "warn")
        .env_remove("PORTICO_CONFIG")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn events tail");
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();

    // The tail starts from "now" once it runs; probe until it prints.
    let mut probes = Vec::new();
    let mut started = false;
    for _ in 0..15 {
        probes.push(app.org("probe").await["id"].as_str().unwrap().to_owned());
        if let Ok(line) = timeout(Duration::from_secs(2), lines.next_line()).await {
            let line = line.unwrap().expect("tail exited early");
            assert!(probes.iter().any(|p| line.contains(p.as_str())), "{line}");
            started = true;
            break;
        }
    }
    assert!(started, "events tail printed nothing");

    let org = app.org("Tailed").await;
    let id = org["id"].as_str().unwrap();
    let r =
        app.api(reqwest::Method::PATCH, &format!("/organizations/{id}")).json(&serde_json::json!({"name": "Tailed 2"}));
    assert_eq!(r.send().await.unwrap().status(), 200);
    let r = app.api(reqwest::Method::DELETE, &format!("/organizations/{id}"));
    assert_eq!(r.send().await.unwrap().status(), 204);

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("tail line within 10 s")
            .unwrap()
            .expect("tail still running");
        let kind = line.split_whitespace().nth(1).unwrap().to_owned();
        assert!(kind == "organization.created" || kind == "organization.deleted", "filtered out: {line}");
        if line.contains(&format!("org={id}")) {
            assert!(line.contains("\"name\":\"Tailed"), "{line}");
            seen.push(kind);
        } else {
            assert!(probes.iter().any(|p| line.contains(p.as_str())), "unexpected line: {line}");
        }
    }
    assert_eq!(seen, ["organization.created", "organization.deleted"]);
    tail.kill().await.unwrap();
}

#[tokio::test]
async fn events_tail_sqlite() {
    events_tail_follows_a_running_server(Backend::Sqlite).await;
}

#[tokio::test]
async fn events_tail_postgres() {
    events_tail_follows_a_running_server(Backend::Postgres).await;
}
