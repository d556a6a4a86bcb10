//! SCIM benchmark (not a test): POST /Users throughput with 8 concurrent
//! clients over real HTTP, then filtered GET latency (`userName eq`,
//! `emails[value eq]`) and unfiltered paging latency with the directory at
//! N users, on SQLite and PostgreSQL.
//!
//! Run: `cargo bench -p portico-server --bench scim` (PostgreSQL from
//! `PORTICO_TEST_POSTGRES_URL`). Optional args: `USERS LOOKUPS` (default
//! 100000 2000); `PORTICO_BENCH_ENGINES=postgres` runs one engine.

use std::time::Instant;

use portico_server::config::Settings;
use portico_server::orgs::{NewOrganization, OrgName};
use portico_server::startup::Application;
use secrecy::ExposeSecret;
use serde_json::json;

mod common;
use common::{fresh_url, pct};

const CLIENTS: usize = 8;

async fn bench(postgres: bool, users: usize, lookups: usize) {
    let engine = if postgres { "PostgreSQL" } else { "SQLite" };
    let (url, _dir) = fresh_url(postgres).await;
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: url,
        database_max_connections: 16,
        ..Default::default()
    };
    settings.domains.worker = false;
    settings.log.level = "warn".into();
    settings.encryption_key = Some(portico_server::crypto::Cipher::generate_base64());
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let org = store
        .create_org(NewOrganization {
            name: OrgName::parse("Bench").unwrap(),
            external_id: None,
            domains: vec![],
            branding: Default::default(),
        })
        .await
        .unwrap();
    let dir = store.create_directory(org.id, "bench", "generic").await.unwrap().unwrap();
    let scim = format!("{base}/scim/v2/{}", dir.directory.id);
    let token = dir.token.expose_secret().to_owned();
    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().unwrap();

    let user = |i: usize| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("user{i}@bench.example"),
            "externalId": format!("ext-{i}"),
            "name": { "givenName": "Bench", "familyName": format!("User {i}") },
            "emails": [{ "value": format!("user{i}@bench.example"), "type": "work", "primary": true }],
            "active": true
        })
    };

    // Creates: 8 clients, each POSTing its share one after another.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, scim, token) = (client.clone(), scim.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < users {
                let r = client.post(format!("{scim}/Users")).bearer_auth(&token).json(&user(i)).send().await.unwrap();
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
                i += CLIENTS;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| {engine} | POST /Users, {CLIENTS} clients | {:.0} creates/s ({users} in {secs:.1} s) |",
        users as f64 / secs
    );

    // Lookups at `users` users: what Okta and Entra send before each change.
    for (label, filter) in [
        ("GET /Users?filter=userName eq", "userName eq \"user{}@bench.example\""),
        ("GET /Users?filter=emails[value eq]", "emails[value eq \"user{}@bench.example\"]"),
    ] {
        let mut lat = Vec::with_capacity(lookups);
        for n in 0..lookups {
            let f = filter.replace("{}", &((n * 7919) % users).to_string());
            let (ms, body) = timed_list(&client, &scim, &token, &[("filter", f.clone())]).await;
            lat.push(ms);
            assert_eq!(body["totalResults"], 1, "{f}");
        }
        report(engine, &format!("{label} at {users} users"), lat);
    }

    // Paging without a filter: an IdP's import walks the whole directory
    // 100 at a time; pages anywhere in it.
    let pages = (lookups / 4).max(1);
    let mut lat = Vec::with_capacity(pages);
    for n in 0..pages {
        let start = 1 + (n * 7919) % users;
        let query = [("startIndex", start.to_string()), ("count", "100".to_owned())];
        let (ms, body) = timed_list(&client, &scim, &token, &query).await;
        lat.push(ms);
        assert_eq!(body["totalResults"], users);
        assert_eq!(body["Resources"].as_array().unwrap().len(), 100.min(users + 1 - start));
    }
    report(engine, &format!("GET /Users?startIndex=…&count=100 (no filter) at {users} users"), lat);
}

/// One `GET /Users` with `query`: its latency in ms and its body.
async fn timed_list(
    client: &reqwest::Client,
    scim: &str,
    token: &str,
    query: &[(&str, String)],
) -> (f64, serde_json::Value) {
    let t = Instant::now();
    let r = client.get(format!("{scim}/Users")).query(query).bearer_auth(token).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    (t.elapsed().as_secs_f64() * 1000.0, body)
}

/// A result row: p50 and p99 of `lat` (ms).
fn report(engine: &str, metric: &str, mut lat: Vec<f64>) {
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "| {engine} | {metric} | p50 {:.2} ms, p99 {:.2} ms (n={}) |",
        pct(&lat, 50.0),
        pct(&lat, 99.0),
        lat.len()
    );
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let users = args.first().copied().unwrap_or(100_000);
    let lookups = args.get(1).copied().unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        println!("| engine | metric | result |\n|---|---|---|");
        // `PORTICO_BENCH_ENGINES=postgres` (or `sqlite`) runs one engine.
        let engines = std::env::var("PORTICO_BENCH_ENGINES").unwrap_or_else(|_| "postgres,sqlite".into());
        for engine in engines.split(',') {
            bench(engine.trim() == "postgres", users, lookups).await;
        }
    });
}
