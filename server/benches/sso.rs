//! SSO benchmark (not a test): SAML ACS verifications per second (signature,
//! XSW-safe reduction, conditions) on every core, and the full login round
//! trip — `/sso/authorize` → IdP → ACS or OIDC callback → vendor code →
//! `POST /sso/token` — against the real test IdPs (PyPI pysaml2 with
//! xmlsec1, npm oidc-provider) on loopback, SQLite.
//!
//! Run: `cargo bench -p portico-server --bench sso` (needs the peers
//! `./scripts/test` installs). Optional args: `SECONDS LOGINS` (default 5 200).

use std::time::Instant;

use portico_server::config::Settings;
use portico_server::startup::Application;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

#[allow(dead_code)]
mod common;
#[path = "../tests/peers/peers.rs"]
#[allow(dead_code)]
mod peers;
use common::pct;
use peers::{Browser, Landing};

const VENDOR: &str = "http://127.0.0.1:9/callback";

async fn api(client: &reqwest::Client, key: &str, url: String, body: Value) -> Value {
    let r = client.post(url).bearer_auth(key).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let seconds = args.first().copied().unwrap_or(5);
    let logins = args.get(1).copied().unwrap_or(200) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let port = peers::free_port();
        let mut settings = Settings {
            listen: format!("127.0.0.1:{port}").parse().unwrap(),
            public_url: format!("http://127.0.0.1:{port}"),
            database_url: format!("sqlite://{}", dir.path().join("bench.db").display()),
            ..Default::default()
        };
        settings.sso.redirect_uris = vec![VENDOR.into()];
        settings.log.level = "warn".into();
        settings.domains.worker = false;
        let app = Application::build(settings).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let store = app.store().clone();
        tokio::spawn(app.run_until(std::future::pending()));
        let key = store.create_api_key("bench", false).await.unwrap().key.expose_secret().to_owned();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let idp = peers::saml_idp().await;
        let op = peers::oidc_op(&base, "bench-secret").await;

        let org = api(&client, &key, format!("{base}/api/v1/organizations"), json!({ "name": "Bench" })).await;
        let org_id = org["id"].as_str().unwrap().to_owned();
        let connections = format!("{base}/api/v1/organizations/{org_id}/connections");
        let saml = api(
            &client,
            &key,
            connections.clone(),
            json!({ "type": "saml", "provider": "okta",
                    "saml": { "metadata_url": format!("{}/metadata", idp.url), "allow_idp_initiated": true } }),
        )
        .await;
        let oidc = api(
            &client,
            &key,
            connections,
            json!({ "type": "oidc", "provider": "generic",
                    "oidc": { "issuer": op.url, "client_id": "portico-test", "client_secret": "bench-secret" } }),
        )
        .await;
        for c in [&saml, &oidc] {
            api(&client, &key, format!("{base}/api/v1/connections/{}/activate", c["id"].as_str().unwrap()), json!({}))
                .await;
        }
        println!("| metric | result |\n|---|---|");

        // ACS verification: one signed response verified over and over on
        // every core (the replay cache is the handler's, not measured here).
        let form = client
            .get(format!(
                "{}/idp-initiated?sp={}&acs={}",
                idp.url,
                saml["sp"]["entity_id"].as_str().unwrap(),
                saml["sp"]["acs_url"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let start = form.find("name=\"SAMLResponse\" value=\"").unwrap() + "name=\"SAMLResponse\" value=\"".len();
        let response = form[start..start + form[start..].find('"').unwrap()].to_owned();
        let connection = store.get_connection(saml["id"].as_str().unwrap().parse().unwrap()).await.unwrap().unwrap();
        let portico_server::sso::IdpConfig::Saml(config) = connection.connection.idp.clone() else { unreachable!() };
        let urls = portico_server::sso::saml::SpUrls::new(&base, connection.connection.id);
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let started = Instant::now();
        let deadline = started + std::time::Duration::from_secs(seconds);
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (config, urls, response) = (config.clone(), urls.clone(), response.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        portico_server::sso::saml::verify_response(&config, &urls, &response, None).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| SAML ACS verifications ({threads} threads, {} KiB response) | {:.0}/s ({total} in {secs:.1} s) |",
            response.len() * 3 / 4 / 1024,
            total as f64 / secs
        );

        // Full round trips, sequential, as one browser would.
        for (label, c) in [("SAML (pysaml2 IdP)", &saml), ("OIDC (oidc-provider)", &oidc)] {
            let mut lat = Vec::with_capacity(logins);
            for i in 0..logins {
                let t = Instant::now();
                let mut browser = Browser::new(&client, VENDOR);
                let url = format!(
                    "{base}/sso/authorize?connection_id={}&redirect_uri={VENDOR}&state=s{i}",
                    c["id"].as_str().unwrap()
                );
                let Landing::Vendor(back) = browser.go(&url).await else { panic!("login {i} failed") };
                let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
                let profile: Value = client
                    .post(format!("{base}/sso/token"))
                    .bearer_auth(&key)
                    .json(&json!({ "code": code }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(profile["email"], "ada@example.com");
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "| {label} login round trip, IdP time included | p50 {:.1} ms, p99 {:.1} ms (n={logins}) |",
                pct(&lat, 50.0),
                pct(&lat, 99.0)
            );
        }
    });
}
