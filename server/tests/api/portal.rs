//! Portal links, sessions, embedding headers and link emails.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_problem, spawn_app, spawn_app_with};

fn text(html: String) -> String {
    html.replace("<!>", "")
}

async fn link_requests_are_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let id = org["id"].as_str().unwrap();

    let r = app
        .create_link(json!({ "organization_id": id, "intents": ["dsync", "sso"], "return_url": "https://app.vendor.test/settings" }))
        .await;
    assert_eq!(r.status(), 201);
    let link: Value = r.json().await.unwrap();
    assert_eq!(link["object"], "portal_link");
    assert_eq!(link["intents"], json!(["sso", "dsync"]));
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:8080/portal/launch?token=plt_"), "{url}");
    let created = time::OffsetDateTime::parse(
        link["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires = time::OffsetDateTime::parse(
        link["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((expires - created).whole_seconds(), 300, "default lifetime is five minutes");

    let body = assert_problem(
        app.create_link(
            json!({ "organization_id": id, "intents": [], "expires_in": 0, "return_url": "javascript:alert(1)" }),
        )
        .await,
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["intents", "expires_in", "return_url"]);

    let body = assert_problem(
        app.create_link(json!({ "organization_id": id, "intents": ["sso", "sso", "billing"] })).await,
        422,
    )
    .await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    // A day at most unless emailed (then a week).
    assert_problem(
        app.create_link(json!({ "organization_id": id, "intents": ["sso"], "expires_in": 86401 })).await,
        422,
    )
    .await;
    let body = assert_problem(
        app.create_link(json!({ "organization_id": uuid::Uuid::now_v7(), "intents": ["sso"] })).await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "organization_id");
    let body = assert_problem(
        app.create_link(json!({ "organization_id": id, "intents": ["sso"], "email": "it@acme.test" })).await,
        422,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("smtp"), "{body}");
    assert_problem(
        app.create_link(json!({ "organization_id": id, "intents": ["sso"], "email": "not-an-email" })).await,
        422,
    )
    .await;
    let r = app
        .client
        .post(app.url("/api/v1/portal/links"))
        .json(&json!({ "organization_id": id, "intents": ["sso"] }))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401).await;
}

async fn links_are_single_use(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let link = app.link(org["id"].as_str().unwrap(), &["sso"]).await;
    let url = link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);

    let first = app.open_link(&url, &[]).await;
    assert_eq!(first.status(), 303);
    assert_eq!(first.headers()["location"], "/portal", "redirects to a clean URL without the token");
    assert_eq!(first.headers()["cache-control"], "no-store");

    let second = app.open_link(&url, &[]).await;
    assert_eq!(second.status(), 410);
    assert!(second.headers().get("set-cookie").is_none());
    let page = second.text().await.unwrap();
    assert!(page.contains("already been used") && page.contains("Acme Analytics"), "{page}");

    // Concurrent opens of a fresh link: exactly one wins.
    let link = app.link(org["id"].as_str().unwrap(), &["sso"]).await;
    let url = link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let opens = futures_join(&app, &url, 8).await;
    assert_eq!(opens.iter().filter(|s| **s == 303).count(), 1, "{opens:?}");
    assert_eq!(opens.iter().filter(|s| **s == 410).count(), 7, "{opens:?}");
}

async fn futures_join(app: &TestApp, url: &str, n: usize) -> Vec<u16> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let req = app.client.get(url);
        handles.push(tokio::spawn(async move { req.send().await.unwrap().status().as_u16() }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

async fn expired_tampered_and_incomplete_links_explain_themselves(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let r = app.create_link(json!({ "organization_id": org["id"], "intents": ["sso"], "expires_in": 1 })).await;
    let link: Value = r.json().await.unwrap();
    let url = link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    app.clock.advance(Duration::from_millis(1100));
    let r = app.open_link(&url, &[]).await;
    assert_eq!(r.status(), 410);
    let page = r.text().await.unwrap();
    assert!(page.contains("This link has expired") && page.contains("Ask Acme Analytics for a new link"), "{page}");

    let fresh = app.link(org["id"].as_str().unwrap(), &["sso"]).await;
    let good = fresh["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let mut tampered = good.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'x' { 'y' } else { 'x' });
    let r = app.open_link(&tampered, &[]).await;
    assert_eq!(r.status(), 404);
    let page = r.text().await.unwrap();
    assert!(page.contains("This link is not valid"));
    assert!(!page.to_lowercase().contains("panicked") && !page.contains("sqlx"));
    // The failed attempt with a tampered token did not burn the real link.
    assert_eq!(app.open_link(&good, &[]).await.status(), 303);

    let r = app.open_link(&app.url("/portal/launch"), &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("missing its token"));
    assert_eq!(app.open_link(&app.url("/portal/launch?token=garbage"), &[]).await.status(), 404);
}

async fn sessions_are_scoped_to_one_organization_and_its_intents(backend: Backend) {
    let app = spawn_app(backend).await;
    let acme = app.org("Acme Corp").await;
    app.org("Globex Corp").await;
    let link = app.link(acme["id"].as_str().unwrap(), &["sso"]).await;
    let url = link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let cookie = app.session_from(&url).await;

    let r = app.page("/portal", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    let html = text(r.text().await.unwrap());
    assert!(html.contains("Admin portal for <strong>Acme Corp</strong>"), "{html}");
    assert!(!html.contains("Globex"));
    assert!(html.contains("href=\"/portal/sso\""));
    assert!(!html.contains("href=\"/portal/directory-sync\"") && !html.contains("href=\"/portal/domains\""));

    assert_eq!(app.page("/portal/sso", Some(&cookie)).await.status(), 200);
    for other in ["/portal/directory-sync", "/portal/domains"] {
        let r = app.page(other, Some(&cookie)).await;
        assert_eq!(r.status(), 403, "{other}");
        assert!(text(r.text().await.unwrap()).contains("Not part of this link"));
    }

    for cookie in [None, Some("portico_session=pss_forgedforgedforgedforgedforgedforged"), Some("portico_session=x")] {
        let r = app.page("/portal", cookie).await;
        assert_eq!(r.status(), 401, "{cookie:?}");
        assert!(text(r.text().await.unwrap()).contains("Your portal session has ended"));
    }
    // A session of another organization never shows this one.
    let globex_link = app
        .link(
            app.get("/organizations?limit=2").await.json::<Value>().await.unwrap()["data"][1]["id"].as_str().unwrap(),
            &["dsync"],
        )
        .await;
    let globex_cookie =
        app.session_from(&globex_link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address)).await;
    let html = text(app.page("/portal", Some(&globex_cookie)).await.text().await.unwrap());
    assert!(html.contains("Globex Corp") && !html.contains("Acme Corp"));
    assert_eq!(app.page("/portal/sso", Some(&globex_cookie)).await.status(), 403);
    assert_eq!(app.page("/portal/directory-sync", Some(&globex_cookie)).await.status(), 200);
}

async fn session_cookies_have_safe_attributes(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let id = org["id"].as_str().unwrap();

    let link = app.link(id, &["sso"]).await;
    let r = app.open_link(&link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address), &[]).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("portico_session=pss_"), "{cookie}");
    assert!(cookie.contains("; Path=/; Max-Age=21600; HttpOnly; SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-http deployment: {cookie}");

    let link = app.link(id, &["sso"]).await;
    let url = link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let r = app.open_link(&url, &[("sec-fetch-dest", "iframe")]).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.ends_with("; HttpOnly; SameSite=None; Secure; Partitioned"), "embedded: {cookie}");

    let https = spawn_app_with(backend, |s| s.public_url = "https://portal.vendor.test".into()).await;
    let org = https.org("Acme").await;
    let link = https.link(org["id"].as_str().unwrap(), &["sso"]).await;
    assert!(link["url"].as_str().unwrap().starts_with("https://portal.vendor.test/portal/launch?token="));
    let url = link["url"].as_str().unwrap().replace("https://portal.vendor.test", &https.address);
    let cookie = https.open_link(&url, &[]).await.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.ends_with("SameSite=Lax; Secure"), "{cookie}");
}

async fn sessions_end_when_idle_or_too_old(backend: Backend) {
    let idle = spawn_app_with(backend, |s| s.portal.session_idle_secs = 1).await;
    let org = idle.org("Acme").await;
    let link = idle.link(org["id"].as_str().unwrap(), &["sso"]).await;
    let cookie =
        idle.session_from(&link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &idle.address)).await;
    assert_eq!(idle.page("/portal", Some(&cookie)).await.status(), 200);
    idle.clock.advance(Duration::from_millis(1200));
    assert_eq!(idle.page("/portal", Some(&cookie)).await.status(), 401);

    let short = spawn_app_with(backend, |s| s.portal.session_ttl_secs = 1).await;
    let org = short.org("Acme").await;
    let link = short.link(org["id"].as_str().unwrap(), &["sso"]).await;
    let r = short.open_link(&link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &short.address), &[]).await;
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=1;"));
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert_eq!(short.page("/portal", Some(&cookie)).await.status(), 200);
    short.clock.advance(Duration::from_millis(1200));
    assert_eq!(short.page("/portal", Some(&cookie)).await.status(), 401);
}

async fn frame_ancestors_follow_the_embed_allow_list(backend: Backend) {
    let closed = spawn_app(backend).await;
    for path in ["/", "/portal", "/portal/launch?token=x", "/api/v1/openapi.json"] {
        let r = closed.page(path, None).await;
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.ends_with("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
    }
    let open = spawn_app_with(backend, |s| {
        s.portal.embed_origins = vec!["https://app.vendor.test".into(), "http://localhost:3000".into()]
    })
    .await;
    let r = open.page("/portal", None).await;
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.ends_with("; frame-ancestors https://app.vendor.test http://localhost:3000"), "{csp}");
    assert!(r.headers().get("x-frame-options").is_none(), "XFO would block the allowed embedders");
}

async fn link_and_session_events_are_recorded_without_secrets(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let id: uuid::Uuid = org["id"].as_str().unwrap().parse().unwrap();
    let link = app.link(&id.to_string(), &["sso", "domain_verification"]).await;
    let url = link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let r = app.open_link(&url, &[("sec-fetch-dest", "iframe")]).await;
    let session_token =
        r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap().1.to_owned();

    let events = app.store.list_events(Some(id), None, 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["organization.created", "portal.link.created", "portal.session.started"]);
    assert_eq!(events[1].data.0["link_id"], link["id"]);
    assert_eq!(events[1].data.0["intents"], json!(["sso", "domain_verification"]));
    assert_eq!(events[2].data.0["embedded"], true);
    let link_token = url.split("token=").nth(1).unwrap();
    for e in &events {
        let raw = e.data.0.to_string();
        assert!(!raw.contains(&link_token[4..20]) && !raw.contains(&session_token[4..20]), "no token in events: {raw}");
    }
}

async fn branding_comes_from_the_vendor_and_the_organization(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.vendor.accent_color = Some("#123456".into());
        s.vendor.logo_url = Some("https://cdn.vendor.test/logo.svg".into());
    })
    .await;
    let plain = app.org("Plain").await;
    let r = app
        .create_org(json!({ "name": "Branded", "branding": { "accent_color": "#AA3300", "logo_url": "https://cdn.branded.test/logo.png" } }))
        .await;
    assert_eq!(r.status(), 201);
    let branded: Value = r.json().await.unwrap();
    assert_eq!(
        branded["branding"],
        json!({ "logo_url": "https://cdn.branded.test/logo.png", "accent_color": "#aa3300" })
    );

    let page_of = |org: Value| {
        let app = &app;
        async move {
            let link = app.link(org["id"].as_str().unwrap(), &["sso"]).await;
            let cookie =
                app.session_from(&link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address)).await;
            text(app.page("/portal", Some(&cookie)).await.text().await.unwrap())
        }
    };
    let html = page_of(plain.clone()).await;
    assert!(html.contains("--portico-accent: #123456;"), "vendor accent: {html}");
    assert!(html.contains("src=\"https://cdn.vendor.test/logo.svg\" alt=\"Acme Analytics logo\""), "vendor logo");
    let html = page_of(branded.clone()).await;
    assert!(html.contains("--portico-accent: #aa3300;"), "organization accent wins");
    assert!(html.contains("src=\"https://cdn.branded.test/logo.png\""));

    let body = assert_problem(
        app.create_org(
            json!({ "name": "Bad", "branding": { "accent_color": "red", "logo_url": "javascript:alert(1)" } }),
        )
        .await,
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["branding.logo_url", "branding.accent_color"]);
    // Clearing the override falls back to the vendor again.
    let r = app
        .api(reqwest::Method::PATCH, &format!("/organizations/{}", branded["id"].as_str().unwrap()))
        .json(&json!({ "branding": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["branding"], json!({ "logo_url": null, "accent_color": null }));
}

both_backends!(
    branding_comes_from_the_vendor_and_the_organization,
    link_requests_are_validated,
    links_are_single_use,
    expired_tampered_and_incomplete_links_explain_themselves,
    sessions_are_scoped_to_one_organization_and_its_intents,
    session_cookies_have_safe_attributes,
    sessions_end_when_idle_or_too_old,
    frame_ancestors_follow_the_embed_allow_list,
    link_and_session_events_are_recorded_without_secrets,
);
