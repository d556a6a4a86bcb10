//! Hardening 8 and 9: portal links and sessions can be revoked; the
//! unauthenticated surfaces answer abuse with 429 and `Retry-After`; bodies
//! are bounded everywhere.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_problem, spawn_app, spawn_app_with};
use portico_server::config::Rate;

fn local(app: &TestApp, link: &Value) -> String {
    link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address)
}

/// Events of `kind`, oldest first.
async fn events_of(app: &TestApp, kind: &str) -> Vec<Value> {
    let events = app.store.list_events(None, None, 1000).await.unwrap();
    events.into_iter().filter(|e| e.kind == kind).map(|e| e.data.0).collect()
}

async fn portal_links_and_sessions_can_be_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();

    // A link someone already opened: revoking it ends that session too.
    let opened = app.link(org_id, &["sso"]).await;
    let cookie = app.session_from(&local(&app, &opened)).await;
    assert_eq!(app.page("/portal", Some(&cookie)).await.status(), 200);
    let link_id = opened["id"].as_str().unwrap();
    assert_eq!(app.call(Method::DELETE, &format!("/portal/links/{link_id}"), None).await.0, 204);
    assert_eq!(app.page("/portal", Some(&cookie)).await.status(), 401, "the session it started has ended");
    assert_eq!(app.call(Method::DELETE, &format!("/portal/links/{link_id}"), None).await.0, 204, "idempotent");
    let revoked = events_of(&app, "portal.link.revoked").await;
    assert_eq!(revoked.len(), 1, "revoking twice records once: {revoked:?}");
    assert_eq!(revoked[0]["link_id"], opened["id"]);
    let ended = events_of(&app, "portal.session.revoked").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["reason"], "link_revoked");
    assert_eq!(revoked[0]["sessions_revoked"], json!([ended[0]["session_id"]]));

    // A link not yet opened cannot be opened once revoked.
    let unopened = app.link(org_id, &["dsync"]).await;
    assert_eq!(
        app.call(Method::DELETE, &format!("/portal/links/{}", unopened["id"].as_str().unwrap()), None).await.0,
        204
    );
    let r = app.open_link(&local(&app, &unopened), &[]).await;
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("This link has been revoked"));

    assert_problem(
        app.api(Method::DELETE, &format!("/portal/links/{}", uuid::Uuid::now_v7())).send().await.unwrap(),
        404,
    )
    .await;
    assert_problem(app.api(Method::DELETE, "/portal/links/not-an-id").send().await.unwrap(), 404).await;
    let stranger = app.client.delete(app.url(&format!("/api/v1/portal/links/{link_id}"))).send().await.unwrap();
    assert_eq!(stranger.status(), 401);

    // An IT admin left: every session of the organization ends and its
    // unopened links die; other organizations keep theirs.
    let other = app.org("Globex").await;
    let other_cookie = app.session_from(&local(&app, &app.link(other["id"].as_str().unwrap(), &["sso"]).await)).await;
    let live = app.link(org_id, &["sso"]).await;
    let live_cookie = app.session_from(&local(&app, &live)).await;
    let pending = app.link(org_id, &["sso"]).await;
    let (status, body) = app.call(Method::POST, &format!("/organizations/{org_id}/portal-sessions/revoke"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "portal_access_revocation");
    assert_eq!(body["sessions_revoked"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["links_revoked"], json!([pending["id"]]));
    assert_eq!(app.page("/portal", Some(&live_cookie)).await.status(), 401);
    assert_eq!(app.open_link(&local(&app, &pending), &[]).await.status(), 410);
    assert_eq!(app.page("/portal", Some(&other_cookie)).await.status(), 200, "another organization is untouched");
    let reasons: Vec<Value> =
        events_of(&app, "portal.session.revoked").await.iter().map(|e| e["reason"].clone()).collect();
    assert_eq!(reasons, [json!("link_revoked"), json!("organization_revoked")]);
    let (status, _) =
        app.call(Method::POST, &format!("/organizations/{}/portal-sessions/revoke", uuid::Uuid::now_v7()), None).await;
    assert_eq!(status, 404);
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().expect("whole seconds")
}

async fn opening_links_and_starting_sign_ins_are_rate_limited(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.limits.portal_launch = Rate { per_minute: 1, burst: 2 };
        s.limits.sso_authorize = Rate { per_minute: 1, burst: 2 };
    })
    .await;
    let org = app.org("Acme").await;
    let link = app.link(org["id"].as_str().unwrap(), &["sso"]).await;

    // Guessing at link tokens: the third attempt in a minute is refused.
    for _ in 0..2 {
        assert_eq!(
            app.open_link(&app.url("/portal/launch?token=plt_guessguessguessguessguess"), &[]).await.status(),
            404
        );
    }
    // A forged X-Forwarded-For does not buy a new budget (no trusted proxy).
    let r = app.open_link(&local(&app, &link), &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_eq!(r.status(), 429);
    assert!((1..=60).contains(&retry_after(&r)), "{:?}", r.headers());
    assert!(r.text().await.unwrap().contains("it has not been used up"));
    let events = events_of(&app, "portal.session.started").await;
    assert!(events.is_empty(), "the refused request did not open the link");

    let authorize = app.url(&format!(
        "/sso/authorize?organization_id={}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
        org["id"].as_str().unwrap()
    ));
    for _ in 0..2 {
        assert_ne!(app.client.get(&authorize).send().await.unwrap().status(), 429);
    }
    let r = app.client.get(&authorize).send().await.unwrap();
    assert!(retry_after(&r) >= 1);
    let problem = assert_problem(r, 429).await;
    assert!(problem["detail"].as_str().unwrap().contains("retry in"), "{problem}");
}

async fn failed_bearer_authentication_is_rate_limited(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.auth_failures = Rate { per_minute: 1, burst: 3 }).await;
    let wrong = |i: usize| format!("psk_{i:012}wrongwrongwrong");
    // The vendor's backend is working with its key.
    assert_eq!(app.get("/organizations").await.status(), 200);
    for i in 0..3 {
        let r = app.client.get(app.url("/api/v1/organizations")).bearer_auth(wrong(i)).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = app.client.get(app.url("/api/v1/organizations")).bearer_auth(wrong(9)).send().await.unwrap();
    assert!(retry_after(&r) >= 1);
    assert_problem(r, 429).await;
    let r = app.client.get(app.url("/api/v1/organizations")).send().await.unwrap();
    assert_eq!(r.status(), 429, "no token at all counts the same");
    assert_eq!(app.get("/organizations").await.status(), 200, "a key that works is never locked out by others");
    // A key never seen before waits like everyone else from this address:
    // the gate refuses before any verification.
    let fresh = app.store.create_api_key("fresh", false).await.unwrap();
    let r = app
        .client
        .get(app.url("/api/v1/organizations"))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&fresh.key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    // Guesses at one key's prefix from many addresses: refused per prefix.
    let app = spawn_app_with(backend, |s| s.limits.auth_failures_per_token = Rate { per_minute: 1, burst: 2 }).await;
    for i in 0..2 {
        let guess = format!("psk_TARGETLOOKUPguess{i}");
        assert_eq!(
            app.client.get(app.url("/api/v1/organizations")).bearer_auth(guess).send().await.unwrap().status(),
            401
        );
    }
    let r =
        app.client.get(app.url("/api/v1/organizations")).bearer_auth("psk_TARGETLOOKUPguess2").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let r =
        app.client.get(app.url("/api/v1/organizations")).bearer_auth("psk_OTHERLOOKUPPguess2").send().await.unwrap();
    assert_eq!(r.status(), 401, "other prefixes are not affected");
}

async fn scim_authentication_failures_are_limited_per_directory(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.auth_failures = Rate { per_minute: 1, burst: 2 }).await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let create = |provider: &'static str| {
        app.api(Method::POST, &format!("/organizations/{org_id}/directories"))
            .json(&json!({ "name": provider, "provider": provider }))
            .send()
    };
    let a: Value = create("okta").await.unwrap().json().await.unwrap();
    let b: Value = create("entra").await.unwrap().json().await.unwrap();
    let get = |dir: &Value, token: String| {
        let base = dir["scim_base_url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
        app.client.get(format!("{base}/Users")).bearer_auth(token).send()
    };
    let token_a = a["bearer_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&a, token_a.clone()).await.unwrap().status(), 200);
    for i in 0..2 {
        assert_eq!(get(&a, format!("scim_wrong{i}")).await.unwrap().status(), 401);
    }
    let r = get(&a, "scim_wrong9".into()).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) >= 1);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(body["status"], "429");
    assert_eq!(get(&a, token_a).await.unwrap().status(), 200, "the IdP with the right token keeps syncing");
    assert_eq!(
        get(&b, "scim_wrong".into()).await.unwrap().status(),
        401,
        "another directory behind the same address has its own budget"
    );
}

async fn a_trusted_proxy_names_the_client(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.limits.portal_launch = Rate { per_minute: 1, burst: 1 };
        s.limits.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let guess = app.url("/portal/launch?token=plt_guessguessguessguessguess");
    assert_eq!(app.open_link(&guess, &[("x-forwarded-for", "203.0.113.1")]).await.status(), 404);
    assert_eq!(app.open_link(&guess, &[("x-forwarded-for", "203.0.113.1")]).await.status(), 429);
    assert_eq!(
        app.open_link(&guess, &[("x-forwarded-for", "203.0.113.2")]).await.status(),
        404,
        "behind the proxy, each client has its own budget"
    );
}

async fn request_bodies_are_bounded_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let big = "x".repeat(3 * 1024 * 1024);
    let own = app.address.clone();
    let r = app
        .client
        .post(app.url("/_portal/fn/anything"))
        .header("origin", &own)
        .header("sec-fetch-site", "same-origin")
        .header("x-portico-csrf", "1")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "portal server functions");
    let r = app
        .api(Method::POST, "/organizations")
        .header("content-type", "application/json")
        .body(format!("{{\"name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 413).await;
}

both_backends!(
    portal_links_and_sessions_can_be_revoked,
    opening_links_and_starting_sign_ins_are_rate_limited,
    failed_bearer_authentication_is_rate_limited,
    scim_authentication_failures_are_limited_per_directory,
    a_trusted_proxy_names_the_client,
    request_bodies_are_bounded_everywhere,
);
