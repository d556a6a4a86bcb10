//! Hardening 1 (server-side request forgery): every fetch Portico makes on
//! someone else's behalf goes through the egress-checked client. The
//! "internal" service here is a loopback server that is NOT on the
//! allow-list; a second loopback address (127.0.0.3) plays an allow-listed
//! IdP that misbehaves. Only loopback addresses are ever contacted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, spawn_app_with};

const SECRET: &str = "AWS_SECRET_ACCESS_KEY=internal-credentials-document-7f3a";

/// The internal service: counts every request it gets.
async fn internal_service() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            SECRET
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

fn discovery(base: &str, issuer_path: &str, authorization: &str, jwks: &str) -> Value {
    json!({
        "issuer": format!("{base}/{issuer_path}"),
        "authorization_endpoint": authorization,
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": jwks,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// The allow-listed but hostile IdP on 127.0.0.3.
async fn hostile_idp(internal: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.3:0").await.expect("127.0.0.3 is loopback on Linux");
    let base = format!("http://127.0.0.3:{}", listener.local_addr().unwrap().port());
    let b = base.clone();
    let app = axum::Router::new()
        .route("/redirect", get(move || async move { Redirect::temporary(&format!("https://127.0.0.1:{internal}/")) }))
        .route(
            "/redirect-by-name",
            get(move || async move { Redirect::temporary(&format!("https://localhost:{internal}/")) }),
        )
        .route("/not-metadata", get(|| async { SECRET }))
        .route("/jwks", get(|| async { axum::Json(json!({ "keys": [] })) }))
        .route(
            "/js/.well-known/openid-configuration",
            get({
                let b = b.clone();
                move || async move {
                    axum::Json(discovery(&b, "js", "javascript:alert(document.cookie)", &format!("{b}/jwks")))
                }
            }),
        )
        .route(
            "/internal-keys/.well-known/openid-configuration",
            get({
                let b = b.clone();
                move || async move {
                    let jwks = format!("https://127.0.0.1:{internal}/keys");
                    axum::Json(discovery(&b, "internal-keys", &format!("{b}/authorize"), &jwks)).into_response()
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn attempt(app: &TestApp, org: &str, body: Value) -> (u16, Value) {
    let r = app.api(Method::POST, &format!("/organizations/{org}/connections")).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn ssrf_targets_are_refused_and_never_echoed(backend: Backend) {
    let (internal, hits) = internal_service().await;
    let idp = hostile_idp(internal).await;
    let app = spawn_app_with(backend, |s| s.outbound.allow_private = vec!["127.0.0.3".into()]).await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let saml = |url: String| json!({ "type": "saml", "provider": "okta", "saml": { "metadata_url": url } });
    let oidc = |issuer: String| json!({ "type": "oidc", "provider": "generic", "oidc": { "issuer": issuer, "client_id": "c", "client_secret": "s" } });
    let cases = [
        (saml(format!("https://127.0.0.1:{internal}/latest/meta-data")), "saml.metadata_url", "loopback"),
        (saml(format!("http://127.0.0.1:{internal}/")), "saml.metadata_url", "must use https"),
        (saml(format!("https://localhost:{internal}/")), "saml.metadata_url", "loopback"),
        (saml(format!("https://[::1]:{internal}/")), "saml.metadata_url", "loopback"),
        (saml(format!("{idp}/redirect")), "saml.metadata_url", "redirect was refused"),
        (saml(format!("{idp}/redirect-by-name")), "saml.metadata_url", "loopback"),
        (saml(format!("{idp}/not-metadata")), "saml.metadata_url", "text/plain"),
        (oidc(format!("https://127.0.0.1:{internal}")), "oidc.issuer", "loopback"),
        (oidc(format!("{idp}/js")), "oidc.issuer", "authorization_endpoint is refused"),
        (oidc(format!("{idp}/internal-keys")), "oidc.issuer", "loopback"),
        (oidc("http://idp.example".into()), "oidc.issuer", "must use https"),
    ];
    for (body, field, reason) in cases {
        let (status, problem) = attempt(&app, org_id, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{body}: expected {reason:?} in {message:?}");
        assert!(!problem.to_string().contains("internal-credentials"), "the body is never echoed: {problem}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the internal service was never contacted");
    let listed: Value = app.get(&format!("/organizations/{org_id}/connections")).await.json().await.unwrap();
    assert_eq!(listed["data"], json!([]), "nothing stored");
}

/// With `outbound.check_webhooks`, deliveries obey the same rules.
async fn checked_webhooks_do_not_reach_internal_addresses(backend: Backend) {
    let (internal, hits) = internal_service().await;
    let app = spawn_app_with(backend, |s| {
        s.outbound.allow_private = vec!["127.0.0.3".into()];
        s.outbound.check_webhooks = true;
    })
    .await;
    let hook = app
        .api(Method::POST, "/webhooks")
        .json(&json!({ "url": format!("http://127.0.0.1:{internal}/hook"), "event_types": ["organization.*"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 201);
    let hook: Value = hook.json().await.unwrap();
    app.org("Acme").await;
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = app.get(&format!("/webhooks/{}/deliveries", hook["id"].as_str().unwrap())).await.json().await.unwrap();
        if seen.to_string().contains("loopback") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen.to_string().contains("loopback"), "the attempt records the refusal: {seen}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

both_backends!(ssrf_targets_are_refused_and_never_echoed, checked_webhooks_do_not_reach_internal_addresses);
