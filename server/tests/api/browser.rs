//! Hardening 2 and 3 at the HTTP level: the portal's server functions refuse
//! cross-site requests, and every HTML response carries a strict CSP whose
//! nonce is on the page's scripts. (The browser tests check that the portal
//! still hydrates under it.)

use leptos::server_fn::ServerFn;
use reqwest::Method;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app};

/// A POST of `form` to server function `path` with the session `cookie` and
/// `headers`, as a browser (or an attacker's page) would send it.
async fn call(app: &TestApp, path: &str, cookie: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> u16 {
    let mut req = app.client.post(app.url(path)).header("cookie", cookie).form(form);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn cross_site_requests_to_server_functions_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let link = app.link(org_id, &["domain_verification", "dsync"]).await;
    let cookie = app.session_from(&link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address)).await;
    let add_domain = <app::pages::domains::AddDomain as ServerFn>::PATH;
    let create_directory = <app::pages::directories::CreateDirectory as ServerFn>::PATH;
    let own = app.address.clone();
    let host = own.trim_start_matches("http://").to_owned();
    let attacks: [&[(&str, &str)]; 5] = [
        // A plain HTML form on a sibling subdomain (same site).
        &[("origin", "http://blog.127.0.0.1.nip.example"), ("sec-fetch-site", "same-site")],
        // A page on the embedding vendor's site (SameSite=None cookie).
        &[("origin", "https://vendor.example"), ("sec-fetch-site", "cross-site")],
        // Even with the header (impossible without CORS), another origin.
        &[("origin", "https://vendor.example"), ("sec-fetch-site", "cross-site"), ("x-portico-csrf", "1")],
        // A same-origin form without the portal's client (no header).
        &[("origin", &own), ("sec-fetch-site", "same-origin")],
        // An old browser without Fetch Metadata, foreign Origin.
        &[("origin", "https://vendor.example"), ("host", &host), ("x-portico-csrf", "1")],
    ];
    for headers in attacks {
        assert_eq!(call(&app, add_domain, &cookie, headers, &[("domain", "evil.example")]).await, 403, "{headers:?}");
        let form = [("name", "Attacker"), ("provider", "okta")];
        assert_eq!(call(&app, create_directory, &cookie, headers, &form).await, 403, "{headers:?}");
    }
    let domains: Value = app.get(&format!("/organizations/{org_id}/domains")).await.json().await.unwrap();
    assert_eq!(domains["data"], serde_json::json!([]), "no domain was added: {domains}");
    let directories: Value = app.get(&format!("/organizations/{org_id}/directories")).await.json().await.unwrap();
    assert_eq!(directories["data"], serde_json::json!([]), "no directory was created: {directories}");

    // The portal's own client: same origin and the header.
    let legit = [("origin", own.as_str()), ("sec-fetch-site", "same-origin"), ("x-portico-csrf", "1")];
    assert_eq!(call(&app, add_domain, &cookie, &legit, &[("domain", "acme.example")]).await, 200);
    let domains: Value = app.get(&format!("/organizations/{org_id}/domains")).await.json().await.unwrap();
    assert_eq!(domains["data"][0]["domain"], "acme.example");
    // Reading pages (GET navigation) needs none of it.
    assert_eq!(app.page("/portal/domains", Some(&cookie)).await.status(), 200);
}

async fn html_responses_carry_a_strict_csp_with_a_fresh_nonce(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut nonces = Vec::new();
    for path in ["/", "/portal", "/no-such-page", "/portal/launch?token=nope"] {
        let r = app.client.request(Method::GET, app.url(path)).send().await.unwrap();
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        for part in [
            "script-src 'self' 'nonce-",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_owned();
        let html = r.text().await.unwrap();
        for script in html.split("<script").skip(1) {
            assert!(
                script.starts_with(&format!(" nonce=\"{nonce}\"")) || script.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: a script without the nonce: <script{}",
                &script[..script.len().min(120)]
            );
        }
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 4, "a fresh nonce per response");
    // JSON keeps the framing-only policy.
    let r = app.get("/organizations").await;
    assert!(!r.headers()["content-security-policy"].to_str().unwrap().contains("script-src"));
}

both_backends!(
    cross_site_requests_to_server_functions_are_refused,
    html_responses_carry_a_strict_csp_with_a_fresh_nonce
);
