//! SSO end to end against real identity providers on loopback: PyPI
//! `pysaml2` (signing with Debian `xmlsec1`) and npm `oidc-provider`. A small
//! cookie-keeping client plays the browser: it follows redirects and submits
//! the IdP's auto-posting forms, as a browser would.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, DnsPeer, TestApp, spawn_app_with};
use crate::peers::{Browser, Landing, free_port, oidc_op, saml_idp, saml_idp_expiring_in};

/// The vendor's callback: on the allow-list, never fetched.
const VENDOR_CALLBACK: &str = "http://127.0.0.1:9/sso/callback";

/// Portico listening where its public URL says (IdPs post back to it).
async fn portico(backend: Backend) -> TestApp {
    let port = free_port();
    spawn_app_with(backend, |s| {
        s.listen = format!("127.0.0.1:{port}").parse().unwrap();
        s.public_url = format!("http://127.0.0.1:{port}");
        s.sso.redirect_uris = vec![VENDOR_CALLBACK.into()];
    })
    .await
}

fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

async fn create_connection(app: &TestApp, org: &str, body: Value) -> Value {
    let r = app.api(Method::POST, &format!("/organizations/{org}/connections")).json(&body).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn activate(app: &TestApp, id: &str) {
    let r = app.api(Method::POST, &format!("/connections/{id}/activate")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

fn authorize_url(app: &TestApp, by: &str, id: &str, state: &str) -> String {
    format!("{}/sso/authorize?{by}={id}&redirect_uri={VENDOR_CALLBACK}&state={state}", app.address)
}

async fn redeem(app: &TestApp, code: &str) -> reqwest::Response {
    app.redeem(code).await
}

async fn event_types(app: &TestApp) -> Vec<String> {
    app.store.list_events(None, None, 1000).await.unwrap().into_iter().map(|e| e.kind).collect()
}

async fn saml_sp_initiated_login_returns_the_profile(backend: Backend) {
    let app = portico(backend).await;
    let idp = saml_idp().await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let c = create_connection(
        &app,
        org_id,
        json!({ "type": "saml", "provider": "okta", "saml": { "metadata_url": format!("{}/metadata", idp.url) } }),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["state"], "draft");
    assert_eq!(c["idp"]["idp_entity_id"], format!("{}/metadata", idp.url));
    assert_eq!(c["sp"]["acs_url"], format!("{}/sso/saml/{id}/acs", app.address));
    assert!(c["certificate_expires_at"].is_string(), "{c}");

    // The SP metadata names the ACS URL and entity ID.
    let metadata = app.client.get(c["sp"]["metadata_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(metadata.headers()["content-type"], "application/samlmetadata+xml");
    let xml = metadata.text().await.unwrap();
    assert!(xml.contains(c["sp"]["acs_url"].as_str().unwrap()) && xml.contains(c["sp"]["entity_id"].as_str().unwrap()));

    // Not active yet: the vendor cannot use it.
    let r = app.client.get(authorize_url(&app, "connection_id", id, "s1")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    activate(&app, id).await;

    let mut browser = Browser::new(&app.client, VENDOR_CALLBACK);
    let Landing::Vendor(back) = browser.go(&authorize_url(&app, "organization_id", org_id, "xyz")).await else {
        panic!("the login did not come back to the vendor");
    };
    assert_eq!(query(&back, "state").as_deref(), Some("xyz"));
    let code = query(&back, "code").expect("a code");
    let profile: Value = redeem(&app, &code).await.json().await.unwrap();
    assert_eq!(profile["email"], "ada@example.com");
    assert_eq!(profile["first_name"], "Ada");
    assert_eq!(profile["last_name"], "Lovelace");
    assert_eq!(profile["groups"], json!(["engineering", "admins"]));
    assert_eq!(profile["idp_id"], "ada@example.com");
    assert_eq!(profile["organization_id"], org_id);
    assert_eq!(profile["connection_id"], id);
    assert_eq!(profile["connection_type"], "saml");
    assert!(profile["raw_attributes"]["firstName"].is_array());

    // A code works once.
    let again = redeem(&app, &code).await;
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("invalid_grant"));

    // The same response posted again is refused (replay).
    let (acs, fields) = browser.last_form.clone().unwrap();
    let Landing::Page(status, body) = browser.post(&acs, fields).await else { panic!("replay accepted") };
    assert_eq!(status, 400);
    assert!(body.contains("replayed"), "{body}");

    let types = event_types(&app).await;
    for t in ["connection.created", "sso.enabled", "authentication.sso_succeeded", "authentication.sso_failed"] {
        assert!(types.iter().any(|k| k == t), "{t} in {types:?}");
    }
    let attempts: Value = app.get(&format!("/connections/{id}/attempts")).await.json().await.unwrap();
    let outcomes: Vec<&str> =
        attempts["data"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["failed", "succeeded"]);
}

/// Bad responses from the same real IdP are refused with the right reason.
async fn saml_bad_responses_are_refused_with_the_reason(backend: Backend) {
    let app = portico(backend).await;
    let idp = saml_idp().await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let metadata = app.client.get(format!("{}/metadata", idp.url)).send().await.unwrap().text().await.unwrap();
    let cert_start = metadata.find("X509Certificate>").unwrap() + "X509Certificate>".len();
    let cert = &metadata[cert_start..cert_start + metadata[cert_start..].find('<').unwrap()];
    let cases = [
        ("unsigned", "unsigned response"),
        ("wrong_cert", "bad signature"),
        ("expired", "expired"),
        ("wrong_audience", "wrong audience"),
        ("sha1", "RSA-SHA1"),
        ("no_email", "missing email attribute"),
        ("no_audience", "no audience"),
    ];
    for (mode, reason) in cases {
        let c = create_connection(
            &app,
            org_id,
            json!({ "type": "saml", "provider": "generic", "name": mode, "saml": {
                "idp_entity_id": format!("{}/metadata", idp.url),
                "idp_sso_url": format!("{}/sso/{mode}", idp.url),
                "idp_certificate": cert,
            }}),
        )
        .await;
        let id = c["id"].as_str().unwrap();
        activate(&app, id).await;
        let landing =
            Browser::new(&app.client, VENDOR_CALLBACK).go(&authorize_url(&app, "connection_id", id, "st")).await;
        let Landing::Vendor(back) = landing else { panic!("{mode}: {landing:?}") };
        assert_eq!(query(&back, "error").as_deref(), Some("access_denied"), "{mode}: {back}");
        assert_eq!(query(&back, "state").as_deref(), Some("st"));
        let description = query(&back, "error_description").unwrap();
        assert!(description.contains(reason), "{mode}: expected {reason:?} in {description:?}");
        assert!(query(&back, "code").is_none());
    }
    // Signed responses (not just assertions) are accepted too.
    let c = create_connection(
        &app,
        org_id,
        json!({ "type": "saml", "provider": "generic", "saml": {
            "idp_entity_id": format!("{}/metadata", idp.url),
            "idp_sso_url": format!("{}/sso/signed_response", idp.url),
            "idp_certificate": cert,
        }}),
    )
    .await;
    activate(&app, c["id"].as_str().unwrap()).await;
    let landing = Browser::new(&app.client, VENDOR_CALLBACK)
        .go(&authorize_url(&app, "connection_id", c["id"].as_str().unwrap(), "s"))
        .await;
    let Landing::Vendor(back) = landing else { panic!("{landing:?}") };
    assert!(query(&back, "code").is_some(), "{back}");
}

async fn saml_idp_initiated_logins_become_sp_initiated(backend: Backend) {
    let app = portico(backend).await;
    let idp = saml_idp().await;
    let org = app.org("Acme").await;
    let body = |allow: bool| {
        json!({ "type": "saml", "provider": "okta", "saml": {
            "metadata_url": format!("{}/metadata", idp.url), "allow_idp_initiated": allow } })
    };
    let c = create_connection(&app, org["id"].as_str().unwrap(), body(true)).await;
    let id = c["id"].as_str().unwrap();
    activate(&app, id).await;
    let start = format!(
        "{}/idp-initiated?sp={}&acs={}",
        idp.url,
        c["sp"]["entity_id"].as_str().unwrap(),
        c["sp"]["acs_url"].as_str().unwrap()
    );
    let mut browser = Browser::new(&app.client, VENDOR_CALLBACK);
    let Landing::Vendor(back) = browser.go(&start).await else { panic!("IdP-initiated login failed") };
    let profile: Value = redeem(&app, &query(&back, "code").unwrap()).await.json().await.unwrap();
    assert_eq!(profile["email"], "ada@example.com");

    // Off by default: refused with the reason.
    let off = create_connection(&app, org["id"].as_str().unwrap(), body(false)).await;
    activate(&app, off["id"].as_str().unwrap()).await;
    let start = format!(
        "{}/idp-initiated?sp={}&acs={}",
        idp.url,
        off["sp"]["entity_id"].as_str().unwrap(),
        off["sp"]["acs_url"].as_str().unwrap()
    );
    let Landing::Page(status, page) = Browser::new(&app.client, VENDOR_CALLBACK).go(&start).await else {
        panic!("accepted")
    };
    assert_eq!(status, 400);
    assert!(page.contains("IdP-initiated sign-in is not allowed"), "{page}");
}

async fn oidc_code_flow_with_pkce_returns_the_profile(backend: Backend) {
    let app = portico(backend).await;
    let secret = "oidc-secret-that-must-stay-encrypted";
    let op = oidc_op(&app.address, secret).await;
    let org = app.org("Acme").await;
    let c = create_connection(
        &app,
        org["id"].as_str().unwrap(),
        json!({ "type": "oidc", "provider": "generic", "oidc": {
            "issuer": op.url, "client_id": "portico-test", "client_secret": secret, "scopes": ["groups"] } }),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["sp"]["redirect_uri"], format!("{}/sso/oidc/callback", app.address));
    assert_eq!(c["has_client_secret"], true);
    assert!(!c.to_string().contains(secret));
    assert!(!raw_connection(&app.database_url).await.contains(secret), "the client secret is encrypted at rest");
    activate(&app, id).await;

    let login = |state: &'static str| {
        let url = authorize_url(&app, "connection_id", id, state);
        let app = &app;
        async move {
            let mut browser = Browser::new(&app.client, VENDOR_CALLBACK);
            let landing = browser.go(&url).await;
            let Landing::Vendor(back) = landing else { panic!("{landing:?}") };
            assert_eq!(query(&back, "state").as_deref(), Some(state));
            redeem(app, &query(&back, "code").unwrap_or_else(|| panic!("{back}"))).await.json::<Value>().await.unwrap()
        }
    };
    let profile = login("one").await;
    assert_eq!(profile["email"], "ada@example.com");
    assert_eq!(profile["first_name"], "Ada");
    assert_eq!(profile["last_name"], "Lovelace");
    assert_eq!(profile["idp_id"], "user-ada");
    assert_eq!(profile["groups"], json!(["engineering", "admins"]));
    assert_eq!(profile["connection_type"], "oidc");

    // The provider rotates its signing key: Portico refetches the JWKS.
    let rotated = app.client.post(format!("{}/rotate-keys", op.url)).send().await.unwrap();
    assert_eq!(rotated.status(), 200);
    let again = login("two").await;
    assert_eq!(again["id"], profile["id"], "the same user gets the same profile id");
}

async fn oidc_wrong_client_secret_is_reported(backend: Backend) {
    let app = portico(backend).await;
    let op = oidc_op(&app.address, "the-real-secret").await;
    let org = app.org("Acme").await;
    let c = create_connection(
        &app,
        org["id"].as_str().unwrap(),
        json!({ "type": "oidc", "provider": "okta", "oidc": {
            "issuer": op.url, "client_id": "portico-test", "client_secret": "a-wrong-secret" } }),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    activate(&app, id).await;
    let landing = Browser::new(&app.client, VENDOR_CALLBACK).go(&authorize_url(&app, "connection_id", id, "s")).await;
    let Landing::Vendor(back) = landing else { panic!("{landing:?}") };
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    let description = query(&back, "error_description").unwrap();
    assert!(description.contains("token request failed") && description.contains("client"), "{description}");
}

async fn bad_setup_and_authorize_requests_get_problems(backend: Backend) {
    let app = portico(backend).await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();
    // Unlisted redirect URI: never redirected to.
    let r = app
        .client
        .get(format!("{}/sso/authorize?organization_id={org_id}&redirect_uri=https://evil.example/cb", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.headers().get("location").is_none());
    // No active connection.
    let r = app.client.get(authorize_url(&app, "organization_id", org_id, "s")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Unverified domain.
    let r = app.client.get(authorize_url(&app, "domain", "acme.example", "s")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Bad connection bodies.
    for (body, field) in [
        (
            json!({ "type": "saml", "provider": "okta", "saml": { "metadata_xml": "<not-metadata/>" } }),
            "saml.metadata_xml",
        ),
        (
            json!({ "type": "saml", "provider": "okta", "saml": { "metadata_xml": "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>" } }),
            "saml.metadata_xml",
        ),
        (
            json!({ "type": "saml", "provider": "okta", "saml": { "idp_entity_id": "x", "idp_sso_url": "https://idp.example/sso", "idp_certificate": "nope" } }),
            "saml.idp_certificate",
        ),
        (
            json!({ "type": "oidc", "provider": "okta", "oidc": { "issuer": "http://127.0.0.1:9", "client_id": "a", "client_secret": "b" } }),
            "oidc.issuer",
        ),
        (json!({ "type": "ldap", "provider": "okta" }), "type"),
        (json!({ "type": "saml", "provider": "nobody" }), "provider"),
    ] {
        let r =
            app.api(Method::POST, &format!("/organizations/{org_id}/connections")).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 422, "{body}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let listed: Value = app.get(&format!("/organizations/{org_id}/connections")).await.json().await.unwrap();
    assert_eq!(listed["data"], json!([]), "nothing stored");
    // Unknown codes.
    let r = redeem(&app, "no-such-code").await;
    assert_eq!(r.status(), 400);
}

async fn expiring_idp_certificates_are_warned_once(backend: Backend) {
    let app = portico(backend).await;
    let idp = saml_idp_expiring_in(10).await;
    let org = app.org("Acme").await;
    let c = create_connection(
        &app,
        org["id"].as_str().unwrap(),
        json!({ "type": "saml", "provider": "okta", "saml": { "metadata_url": format!("{}/metadata", idp.url) } }),
    )
    .await;
    let expires = time::OffsetDateTime::parse(
        c["certificate_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!((expires - now).whole_days() >= 9 && (expires - now).whole_days() <= 10, "{expires}");
    let warning = portico_server::portal::certificate_warning(Some(expires), now).expect("a warning");
    assert!(warning.contains("expires on") && warning.contains("days"), "{warning}");
    assert_eq!(portico_server::portal::certificate_warning(Some(now + time::Duration::days(90)), now), None);

    // Recorded once per certificate, whoever checks.
    let within = portico_server::sso::CERTIFICATE_WARNING;
    assert_eq!(app.store.warn_expiring_certificates(now, within).await.unwrap(), 1);
    assert_eq!(app.store.warn_expiring_certificates(now, within).await.unwrap(), 0);
    let events = app.store.list_events(None, None, 1000).await.unwrap();
    let warned: Vec<_> = events.iter().filter(|e| e.kind == "connection.certificate_expiring").collect();
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0].data.0["connection"]["id"], c["id"]);
    assert!(matches!(warned[0].data.0["days_left"].as_i64(), Some(9 | 10)));
}

async fn raw_connection(url: &str) -> String {
    use sqlx::Connection;
    let sql = "SELECT COALESCE(client_secret, '') || CAST(config AS TEXT) FROM sso_connections";
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as::<_, (String,)>(sql).fetch_one(&mut c).await.unwrap().0
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as::<_, (String,)>(sql).fetch_one(&mut c).await.unwrap().0
    }
}

/// The URL the IdP is sent to by `/sso/authorize` (not followed).
async fn idp_redirect(app: &TestApp, connection: &str, state: &str) -> String {
    let r = app.client.get(authorize_url(app, "connection_id", connection, state)).send().await.unwrap();
    assert_eq!(r.status(), 303, "authorize redirects to the IdP");
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn deactivate(app: &TestApp, id: &str) {
    let r = app.api(Method::POST, &format!("/connections/{id}/deactivate")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Hardening 4 and 8: a connection that is a draft or was turned off signs
/// nobody in, whatever the entry point, even for a login already under way.
async fn draft_and_deactivated_connections_sign_nobody_in(backend: Backend) {
    let app = portico(backend).await;
    let idp = saml_idp().await;
    let org = app.org("Acme").await;
    let c = create_connection(
        &app,
        org["id"].as_str().unwrap(),
        json!({ "type": "saml", "provider": "okta", "saml": {
            "metadata_url": format!("{}/metadata", idp.url), "allow_idp_initiated": true } }),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let unsolicited = format!(
        "{}/idp-initiated?sp={}&acs={}",
        idp.url,
        c["sp"]["entity_id"].as_str().unwrap(),
        c["sp"]["acs_url"].as_str().unwrap()
    );
    // Draft: an unsolicited response is no login.
    let landing = Browser::new(&app.client, VENDOR_CALLBACK).go(&unsolicited).await;
    let Landing::Page(status, page) = landing else { panic!("a draft connection signed someone in: {landing:?}") };
    assert_eq!(status, 400);
    assert!(page.contains("draft"), "{page}");

    // Active: works; a code is issued.
    activate(&app, id).await;
    let Landing::Vendor(back) = Browser::new(&app.client, VENDOR_CALLBACK).go(&unsolicited).await else {
        panic!("active connection refused")
    };
    let early_code = query(&back, "code").expect("a code");
    // A login started now, completed after the deactivation.
    let at_idp = idp_redirect(&app, id, "midway").await;
    deactivate(&app, id).await;
    let Landing::Vendor(back) = Browser::new(&app.client, VENDOR_CALLBACK).go(&at_idp).await else {
        panic!("the login did not come back to the vendor")
    };
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"), "{back}");
    assert!(query(&back, "error_description").unwrap().contains("deactivated"), "{back}");
    assert!(query(&back, "code").is_none());
    // The code issued before the deactivation is no longer redeemable.
    let r = redeem(&app, &early_code).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("deactivated"));
    // Inactive: unsolicited responses are refused too.
    let Landing::Page(status, page) = Browser::new(&app.client, VENDOR_CALLBACK).go(&unsolicited).await else {
        panic!("an inactive connection signed someone in")
    };
    assert_eq!(status, 400);
    assert!(page.contains("deactivated"), "{page}");
    // Nothing succeeded after the deactivation.
    let attempts: Value = app.get(&format!("/connections/{id}/attempts")).await.json().await.unwrap();
    let outcomes: Vec<&str> =
        attempts["data"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["failed", "failed", "succeeded", "failed"], "newest first");
}

/// Hardening 5: the profile says whether the IdP vouches for the email and
/// whether its domain is one of the organization's verified domains.
async fn profiles_say_whether_email_and_domain_are_verified(backend: Backend) {
    let dns = DnsPeer::start().await;
    let port = free_port();
    let nameserver = dns.address.clone();
    let app = spawn_app_with(backend, move |s| {
        s.listen = format!("127.0.0.1:{port}").parse().unwrap();
        s.public_url = format!("http://127.0.0.1:{port}");
        s.sso.redirect_uris = vec![VENDOR_CALLBACK.into()];
        s.domains.nameservers = vec![nameserver];
        s.domains.timeout_ms = 500;
    })
    .await;
    let idp = saml_idp().await;
    let (acme, other) = (app.org("Acme").await, app.org("Other").await);
    let login = |org: Value| {
        let app = &app;
        let metadata = format!("{}/metadata", idp.url);
        async move {
            let org_id = org["id"].as_str().unwrap().to_owned();
            let c = create_connection(
                app,
                &org_id,
                json!({ "type": "saml", "provider": "okta", "saml": { "metadata_url": metadata } }),
            )
            .await;
            activate(app, c["id"].as_str().unwrap()).await;
            let landing = Browser::new(&app.client, VENDOR_CALLBACK)
                .go(&authorize_url(app, "organization_id", &org_id, "s"))
                .await;
            let Landing::Vendor(back) = landing else { panic!("{landing:?}") };
            redeem(app, &query(&back, "code").unwrap()).await.json::<Value>().await.unwrap()
        }
    };
    // Acme verifies example.com (the IdP signs in ada@example.com).
    let acme_id = acme["id"].as_str().unwrap();
    let (_, added) = app
        .call(Method::POST, &format!("/organizations/{acme_id}/domains"), Some(json!({ "domain": "example.com" })))
        .await;
    dns.publish(json!({ "_portico-verification.example.com": [[added["verification"]["value"]]] }), &[]);
    let (_, verified) =
        app.call(Method::POST, &format!("/organizations/{acme_id}/domains/example.com/verify"), None).await;
    assert_eq!(verified["state"], "verified");

    let profile = login(acme).await;
    assert_eq!(profile["email"], "ada@example.com");
    assert_eq!(profile["email_verified"], true, "SAML asserts the address");
    assert_eq!(profile["email_domain_verified"], true, "{profile}");
    // Another customer's IdP asserting the same address: not their domain.
    let profile = login(other).await;
    assert_eq!(profile["email"], "ada@example.com");
    assert_eq!(profile["email_domain_verified"], false, "{profile}");
}

/// Hardening 6 and 7 against a real OP: RFC 9207 `iss` is checked, a login
/// under way ends when the connection is deactivated, and changing the
/// issuer or client ID discards the stored client secret.
async fn oidc_mix_up_state_and_secret_rules(backend: Backend) {
    let app = portico(backend).await;
    let secret = "the-real-secret-for-this-issuer";
    let op = oidc_op(&app.address, secret).await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let c = create_connection(
        &app,
        org_id,
        json!({ "type": "oidc", "provider": "generic", "oidc": {
            "issuer": op.url, "client_id": "portico-test", "client_secret": secret } }),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    activate(&app, id).await;

    // A callback naming another issuer (or none, when the OP promises one)
    // is refused before any code is exchanged.
    for (iss, reason) in [(Some("https://attacker.example"), "mix-up"), (None, "RFC 9207")] {
        let at_op = url::Url::parse(&idp_redirect(&app, id, "mix").await).unwrap();
        let state = query(&at_op, "state").unwrap();
        let mut callback = url::Url::parse(&format!("{}/sso/oidc/callback", app.address)).unwrap();
        callback.query_pairs_mut().append_pair("code", "stolen-code").append_pair("state", &state);
        if let Some(iss) = iss {
            callback.query_pairs_mut().append_pair("iss", iss);
        }
        let r = app.client.get(callback.as_str()).send().await.unwrap();
        let back = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
        let description = query(&back, "error_description").unwrap();
        assert!(description.contains(reason), "{description}");
        assert!(query(&back, "code").is_none());
    }
    // The real OP sends the right `iss`: the login works.
    let mut browser = Browser::new(&app.client, VENDOR_CALLBACK);
    let Landing::Vendor(back) = browser.go(&authorize_url(&app, "connection_id", id, "ok")).await else {
        panic!("login failed")
    };
    let profile: Value = redeem(&app, &query(&back, "code").unwrap()).await.json().await.unwrap();
    assert_eq!(profile["email_verified"], true, "the OP says email_verified: true");
    assert_eq!(profile["email_domain_verified"], false, "no verified domains");

    // Deactivated while the user is at the OP: the callback yields no login.
    let at_op = idp_redirect(&app, id, "midway").await;
    deactivate(&app, id).await;
    let Landing::Vendor(back) = Browser::new(&app.client, VENDOR_CALLBACK).go(&at_op).await else {
        panic!("the login did not come back")
    };
    assert!(query(&back, "error_description").unwrap().contains("deactivated"), "{back}");
    assert!(query(&back, "code").is_none());

    // Changing the client ID (or issuer) without giving the secret again is
    // refused; the stored secret is never sent anywhere new.
    let changed = app
        .api(Method::PUT, &format!("/connections/{id}"))
        .json(&json!({ "type": "oidc", "provider": "generic", "oidc": {
            "issuer": op.url, "client_id": "attacker-client" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 422);
    let problem: Value = changed.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "oidc.client_secret", "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("required again"), "{problem}");
    let stored: Value = app.get(&format!("/connections/{id}")).await.json().await.unwrap();
    assert_eq!(stored["idp"]["client_id"], "portico-test", "nothing changed");
    // The same issuer and client ID may omit it (kept).
    let same = app
        .api(Method::PUT, &format!("/connections/{id}"))
        .json(&json!({ "type": "oidc", "provider": "generic", "name": "Renamed", "oidc": {
            "issuer": op.url, "client_id": "portico-test" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    assert_eq!(same.json::<Value>().await.unwrap()["has_client_secret"], true);
}

both_backends!(
    draft_and_deactivated_connections_sign_nobody_in,
    profiles_say_whether_email_and_domain_are_verified,
    oidc_mix_up_state_and_secret_rules,
    saml_sp_initiated_login_returns_the_profile,
    saml_bad_responses_are_refused_with_the_reason,
    saml_idp_initiated_logins_become_sp_initiated,
    oidc_code_flow_with_pkce_returns_the_profile,
    oidc_wrong_client_secret_is_reported,
    bad_setup_and_authorize_requests_get_problems,
    expiring_idp_certificates_are_warned_once,
);
