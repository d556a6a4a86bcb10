//! No secret reaches the logs: this test creates one of every kind of
//! secret Portico handles, uses each (and misuses some), then greps
//! everything the test process logged at debug level for them.

use reqwest::Method;
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app_with};
use crate::peers::{Browser, Landing, free_port, oidc_op, saml_idp};

const CALLBACK: &str = "http://127.0.0.1:9/sso/callback";

fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

async fn no_secret_is_ever_logged(backend: Backend) {
    let port = free_port();
    let app = spawn_app_with(backend, |s| {
        s.listen = format!("127.0.0.1:{port}").parse().unwrap();
        s.public_url = format!("http://127.0.0.1:{port}");
        s.sso.redirect_uris = vec![CALLBACK.into()];
    })
    .await;
    let mut secrets: Vec<(&str, String)> = vec![("API key", app.api_key.clone())];
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();

    // Portal link token and the session cookie it turns into.
    let link = app.link(org_id, &["sso", "dsync", "domain_verification"]).await;
    let url = link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    secrets.push(("link token", url.split("token=").nth(1).unwrap().to_owned()));
    let cookie = app.session_from(&url).await;
    secrets.push(("session token", cookie.split_once('=').unwrap().1.to_owned()));
    assert_eq!(app.page("/portal", Some(&cookie)).await.status(), 200);
    assert_eq!(app.open_link(&url, &[]).await.status(), 410, "a used link");

    // SCIM token, used well and badly.
    let body = json!({ "name": "Staff", "provider": "okta" });
    let (_, dir) = app.call(Method::POST, &format!("/organizations/{org_id}/directories"), Some(body)).await;
    let scim_token = dir["bearer_token"].as_str().expect("token shown once").to_owned();
    let scim = format!("{}/scim/v2/{}/Users", app.address, dir["id"].as_str().unwrap());
    let r = app.client.get(&scim).bearer_auth(&scim_token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let wrong = format!("{scim_token}x");
    assert_eq!(app.client.get(&scim).bearer_auth(&wrong).send().await.unwrap().status(), 401);
    secrets.push(("SCIM token", scim_token));
    let bad_key = format!("{}x", app.api_key);
    let r = app.client.get(app.url("/api/v1/organizations")).bearer_auth(&bad_key).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Webhook signing secret.
    let hook = json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["sso.*"] });
    let (_, hook) = app.call(Method::POST, "/webhooks", Some(hook)).await;
    secrets.push(("webhook secret", hook["secret"].as_str().expect("secret shown once").to_owned()));

    // OIDC client secret (sent to the OP's token endpoint) and the code the
    // vendor redeems; SAML the same way.
    let client_secret = "oidc-client-secret-never-logged-8d1e";
    let op = oidc_op(&app.address, client_secret).await;
    let idp = saml_idp().await;
    let connections = [
        json!({ "type": "oidc", "provider": "generic", "oidc": {
            "issuer": op.url, "client_id": "portico-test", "client_secret": client_secret } }),
        json!({ "type": "saml", "provider": "okta", "saml": { "metadata_url": format!("{}/metadata", idp.url) } }),
    ];
    for body in connections {
        let (_, c) = app.call(Method::POST, &format!("/organizations/{org_id}/connections"), Some(body)).await;
        let id = c["id"].as_str().unwrap();
        assert_eq!(app.api(Method::POST, &format!("/connections/{id}/activate")).send().await.unwrap().status(), 200);
        let authorize =
            format!("{}/sso/authorize?connection_id={id}&redirect_uri={CALLBACK}&state=vendor-state", app.address);
        let Landing::Vendor(back) = Browser::new(&app.client, CALLBACK).go(&authorize).await else { panic!("login") };
        let code = query(&back, "code").expect("a code");
        let r = app.redeem(&code).await;
        assert_eq!(r.status(), 200);
        let r = app.redeem(&code).await;
        assert_eq!(r.status(), 400, "codes work once");
        secrets.push(("SSO code", code));
        let deactivated = app.api(Method::POST, &format!("/connections/{id}/deactivate")).send().await.unwrap();
        assert_eq!(deactivated.status(), 200);
    }
    secrets.push(("OIDC client secret", client_secret.to_owned()));

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = portico_server::telemetry::captured_logs();
    assert!(logs.contains("portal session started") && logs.contains("/sso/token"), "the capture works");
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is a real secret");
        assert!(!logs.contains(secret.as_str()), "the {what} appears in the logs");
    }
}

both_backends!(no_secret_is_ever_logged);
