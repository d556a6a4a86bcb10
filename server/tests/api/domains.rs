//! Domain verification against a real DNS server on loopback (PyPI dnslib):
//! the state machine, what each check finds, events, uniqueness across
//! organizations, timeouts, background re-checks and expiry.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, DnsPeer, TestApp, assert_problem, spawn_app_with};

async fn app_with_dns(
    backend: Backend,
    dns: &DnsPeer,
    configure: impl FnOnce(&mut portico_server::config::Settings),
) -> TestApp {
    let address = dns.address.clone();
    spawn_app_with(backend, move |s| {
        s.domains.nameservers = vec![address];
        s.domains.timeout_ms = 500;
        configure(s);
    })
    .await
}

async fn add_domain(app: &TestApp, org: &str, domain: &str) -> reqwest::Response {
    app.api(Method::POST, &format!("/organizations/{org}/domains"))
        .json(&json!({ "domain": domain }))
        .send()
        .await
        .unwrap()
}

async fn verify(app: &TestApp, org: &str, domain: &str) -> Value {
    let r = app.api(Method::POST, &format!("/organizations/{org}/domains/{domain}/verify")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn domain_events(app: &TestApp) -> Vec<(String, String)> {
    let events = app.store.list_events(None, None, 1000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.kind.starts_with("domain."))
        .map(|e| (e.kind, e.data.0["domain"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

async fn each_check_reports_what_dns_holds(backend: Backend) {
    let dns = DnsPeer::start().await;
    let app = app_with_dns(backend, &dns, |_| {}).await;
    let org = app.org("Acme").await;
    let org_id = org["id"].as_str().unwrap();

    let r = add_domain(&app, org_id, "Acme.COM.").await;
    assert_eq!(r.status(), 201);
    let added: Value = r.json().await.unwrap();
    assert_eq!(added["domain"], "acme.com");
    assert_eq!(added["state"], "pending");
    assert_eq!(added["verification"]["type"], "TXT");
    assert_eq!(added["verification"]["name"], "_portico-verification.acme.com");
    assert_eq!(added["verification"]["host"], "_portico-verification");
    let value = added["verification"]["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("portico-verification=") && value.len() > 40, "{value}");
    assert!(added["expires_at"].is_string());
    let name = "_portico-verification.acme.com";

    // Nothing published: NXDOMAIN.
    let d = verify(&app, org_id, "acme.com").await;
    assert_eq!(d["state"], "pending");
    assert_eq!(d["checks"], 1);
    assert!(d["last_result"].as_str().unwrap().contains("NXDOMAIN"), "{d}");
    assert!(d["last_checked_at"].is_string() && d["next_check_at"].is_string());

    // The name exists without TXT records.
    dns.publish(json!({ name: [] }), &[]);
    let d = verify(&app, org_id, "acme.com").await;
    assert!(d["last_result"].as_str().unwrap().contains("no TXT record"), "{d}");

    // A wrong token does not verify, and the admin sees what was found.
    dns.publish(json!({ name: [["portico-verification=0123456789abcdef"]] }), &[]);
    let d = verify(&app, org_id, "acme.com").await;
    assert_eq!(d["state"], "pending");
    assert!(d["last_result"].as_str().unwrap().contains("0123456789abcdef"), "{d}");
    // Nor does the right token on another name.
    dns.publish(json!({ "acme.com": [[value.clone()]] }), &[]);
    assert_eq!(verify(&app, org_id, "acme.com").await["state"], "pending");
    assert!(domain_events(&app).await.is_empty(), "no domain event before verification");

    // The right value split over two strings, beside other records.
    let (a, b) = value.split_at(25);
    dns.publish(json!({ name: [["v=spf1 -all"], [a, b]] }), &[]);
    let d = verify(&app, org_id, "acme.com").await;
    assert_eq!(d["state"], "verified", "{d}");
    assert_eq!(d["checks"], 5);
    assert!(d["verified_at"].is_string() && d["next_check_at"].is_null() && d["expires_at"].is_null());
    assert_eq!(domain_events(&app).await, [("domain.verified".to_owned(), "acme.com".to_owned())]);

    // Verified stays verified; checking again changes nothing.
    dns.publish(json!({}), &[]);
    let again = verify(&app, org_id, "acme.com").await;
    assert_eq!(again["state"], "verified");
    assert_eq!(again["checks"], 5);
    assert_eq!(domain_events(&app).await.len(), 1);

    // The organization shows it, and routing now finds it.
    let org: Value = app.get(&format!("/organizations/{org_id}")).await.json().await.unwrap();
    assert_eq!(org["domains"], json!([{ "domain": "acme.com", "state": "verified" }]));
    let found: Value = app.get("/domains/lookup?email=jane@ACME.com").await.json().await.unwrap();
    assert_eq!(found["organization_id"], org_id);
    assert_eq!(found["domain"], "acme.com");
    let list: Value = app.get(&format!("/organizations/{org_id}/domains")).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

async fn verified_domains_belong_to_one_organization(backend: Backend) {
    let dns = DnsPeer::start().await;
    let app = app_with_dns(backend, &dns, |_| {}).await;
    let (a, b) = (app.org("A").await, app.org("B").await);
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    // Both may claim while pending.
    let da: Value = add_domain(&app, a, "shared.io").await.json().await.unwrap();
    let db: Value = add_domain(&app, b, "shared.io").await.json().await.unwrap();
    assert_ne!(da["verification"]["value"], db["verification"]["value"], "tokens are per organization");
    assert_problem(app.get("/domains/lookup?domain=shared.io").await, 404).await;

    // Both records published; A verifies first and wins.
    let name = "_portico-verification.shared.io";
    dns.publish(json!({ name: [[da["verification"]["value"]], [db["verification"]["value"]]] }), &[]);
    assert_eq!(verify(&app, a, "shared.io").await["state"], "verified");
    let lost = verify(&app, b, "shared.io").await;
    assert_eq!(lost["state"], "pending");
    assert!(lost["last_result"].as_str().unwrap().contains("another organization"), "{lost}");

    // Nobody else may add it any more, by any route.
    let c = app.org("C").await;
    let c = c["id"].as_str().unwrap();
    let p = assert_problem(add_domain(&app, c, "shared.io").await, 409).await;
    assert!(p["detail"].as_str().unwrap().contains("another organization"), "{p}");
    assert_problem(app.create_org(json!({ "name": "D", "domains": ["shared.io"] })).await, 409).await;
    let r = app.api(Method::PATCH, &format!("/organizations/{c}")).json(&json!({ "domains": ["shared.io"] }));
    assert_problem(r.send().await.unwrap(), 409).await;

    // Once A lets go, B can verify.
    let r = app.api(Method::DELETE, &format!("/organizations/{a}/domains/shared.io")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(verify(&app, b, "shared.io").await["state"], "verified");
    let found: Value = app.get("/domains/lookup?domain=shared.io").await.json().await.unwrap();
    assert_eq!(found["organization_id"], b);
}

async fn timeouts_are_retried_and_pending_domains_expire(backend: Backend) {
    let dns = DnsPeer::start().await;
    let app = app_with_dns(backend, &dns, |s| {
        s.domains.worker = true;
        s.domains.poll_ms = 100;
        s.domains.recheck_base_secs = 1;
        s.domains.pending_timeout_secs = 3;
    })
    .await;
    let org = app.org("Slow").await;
    let org_id = org["id"].as_str().unwrap();
    dns.publish(json!({}), &["_portico-verification.slow.dev"]);
    assert_eq!(add_domain(&app, org_id, "slow.dev").await.status(), 201);
    let d = verify(&app, org_id, "slow.dev").await;
    assert_eq!(d["state"], "pending");
    assert!(d["last_result"].as_str().unwrap().contains("will retry"), "{d}");

    // The worker keeps checking with backoff and fails it after the timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let failed = loop {
        let d: Value = app.get(&format!("/organizations/{org_id}/domains/slow.dev")).await.json().await.unwrap();
        if d["state"] == "failed" {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(failed["checks"].as_i64().unwrap() >= 2, "background re-checks ran: {failed}");
    assert!(failed["failed_at"].is_string() && failed["next_check_at"].is_null());
    assert_eq!(domain_events(&app).await, [("domain.verification_failed".to_owned(), "slow.dev".to_owned())]);
}

async fn background_checks_verify_once_the_record_appears(backend: Backend) {
    let dns = DnsPeer::start().await;
    let app = app_with_dns(backend, &dns, |s| {
        s.domains.worker = true;
        s.domains.poll_ms = 100;
        s.domains.recheck_base_secs = 1;
    })
    .await;
    let org = app.org("Patient").await;
    let org_id = org["id"].as_str().unwrap();
    let d: Value = add_domain(&app, org_id, "patient.org").await.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    dns.publish(json!({ "_portico-verification.patient.org": [[d["verification"]["value"]]] }), &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let d: Value = app.get(&format!("/organizations/{org_id}/domains/patient.org")).await.json().await.unwrap();
        if d["state"] == "verified" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never verified: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(domain_events(&app).await, [("domain.verified".to_owned(), "patient.org".to_owned())]);
}

async fn bad_requests_get_problems_and_change_nothing(backend: Backend) {
    let dns = DnsPeer::start().await;
    let app = app_with_dns(backend, &dns, |_| {}).await;
    let org = app.org("Strict").await;
    let org_id = org["id"].as_str().unwrap();
    assert_problem(add_domain(&app, org_id, "not a domain").await, 422).await;
    assert_problem(add_domain(&app, org_id, "https://acme.com/x").await, 422).await;
    let r =
        app.api(Method::POST, &format!("/organizations/{org_id}/domains")).json(&json!({ "domain": "a.io", "x": 1 }));
    assert_problem(r.send().await.unwrap(), 422).await;
    let missing = "01900000-0000-7000-8000-000000000000";
    assert_problem(add_domain(&app, missing, "acme.com").await, 404).await;
    assert_problem(app.get(&format!("/organizations/{missing}/domains")).await, 404).await;
    assert_eq!(add_domain(&app, org_id, "strict.dev").await.status(), 201);
    assert_problem(add_domain(&app, org_id, "strict.dev").await, 409).await;
    let r = app.api(Method::POST, &format!("/organizations/{org_id}/domains/other.dev/verify")).send().await.unwrap();
    assert_problem(r, 404).await;
    assert_problem(app.get("/domains/lookup").await, 422).await;
    assert_problem(app.get("/domains/lookup?email=nobody").await, 422).await;
    assert_problem(app.get("/domains/lookup?domain=a.io&email=x@a.io").await, 422).await;
    let list: Value = app.get(&format!("/organizations/{org_id}/domains")).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let r = app.api(Method::DELETE, &format!("/organizations/{org_id}/domains/strict.dev")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = app.api(Method::DELETE, &format!("/organizations/{org_id}/domains/strict.dev")).send().await.unwrap();
    assert_problem(r, 404).await;
}

both_backends!(
    each_check_reports_what_dns_holds,
    verified_domains_belong_to_one_organization,
    timeouts_are_retried_and_pending_domains_expire,
    background_checks_verify_once_the_record_appears,
    bad_requests_get_problems_and_change_nothing,
);
