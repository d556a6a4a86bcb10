//! Webhook endpoints and delivery: signatures checked by the Standard
//! Webhooks reference library (PyPI `standardwebhooks`), faults injected with
//! wiremock, events API and SSE stream.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_problem, python, spawn_app, spawn_app_with};

impl TestApp {
    /// Registers a webhook endpoint; returns (endpoint JSON, secret).
    pub async fn endpoint(&self, url: &str, types: &[&str]) -> (Value, String) {
        let r = self
            .api(Method::POST, "/webhooks")
            .json(&json!({ "url": url, "event_types": types }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        let secret = body["secret"].as_str().unwrap().to_owned();
        (body, secret)
    }
}

/// Waits until `server` has received at least `n` requests.
pub async fn received(server: &MockServer, n: usize, within: Duration) -> Vec<wiremock::Request> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = server.received_requests().await.unwrap_or_default();
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_delivery(app: &TestApp, endpoint: &str, status: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let list: Value =
            app.get(&format!("/webhooks/{endpoint}/deliveries?status={status}")).await.json().await.unwrap();
        if !list["data"].as_array().unwrap().is_empty() || tokio::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Verifies one request with the reference implementation; returns whether
/// it accepted.
async fn standardwebhooks_accepts(secret: &str, req: &wiremock::Request, body_override: Option<&[u8]>) -> bool {
    let header = |name: &str| req.headers.get(name).unwrap().to_str().unwrap().to_owned();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
secret, msg_id, ts, sig = sys.argv[1:5]
body = sys.stdin.buffer.read()
try:
    Webhook(secret).verify(body, {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig})
except Exception as e:
    print(f"rejected: {e}", file=sys.stderr)
    sys.exit(3)
"#;
    let mut child = tokio::process::Command::new(python())
        .args(["-c", script, secret, &header("webhook-id"), &header("webhook-timestamp"), &header("webhook-signature")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("python with standardwebhooks (./scripts/test installs it)");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(body_override.unwrap_or(&req.body)).await.unwrap();
    drop(stdin);
    let status = child.wait().await.unwrap();
    match status.code() {
        Some(0) => true,
        Some(3) => false,
        other => panic!("verifier crashed: {other:?}"),
    }
}

async fn endpoints_are_managed_and_secrets_never_shown_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let (created, secret) = app.endpoint("https://hooks.vendor.test/portico", &["directory.*", "sso.enabled"]).await;
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    assert_eq!(created["event_types"], json!(["directory.*", "sso.enabled"]));
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_str().unwrap();

    let shown: Value = app.get(&format!("/webhooks/{id}")).await.json().await.unwrap();
    assert!(shown.get("secret").is_none());
    let listed = app.get("/webhooks").await.text().await.unwrap();
    assert!(!listed.contains(&secret[6..]), "secret not listed");
    // Encrypted at rest.
    let stored = raw_secret(&app.database_url).await;
    assert!(stored.starts_with("v1:") && !stored.contains(&secret[6..]));

    let r = app.api(Method::POST, &format!("/webhooks/{id}/rotate-secret")).send().await.unwrap();
    let rotated: Value = r.json().await.unwrap();
    assert_ne!(rotated["secret"].as_str().unwrap(), secret);
    assert_ne!(raw_secret(&app.database_url).await, stored);

    let r = app
        .api(Method::PATCH, &format!("/webhooks/{id}"))
        .json(&json!({ "enabled": false, "event_types": ["*"], "description": "audit" }))
        .send()
        .await
        .unwrap();
    let patched: Value = r.json().await.unwrap();
    assert_eq!((patched["enabled"].clone(), patched["event_types"].clone()), (json!(false), json!(["*"])));
    assert_eq!(patched["description"], "audit");

    let body = assert_problem(
        app.api(Method::POST, "/webhooks")
            .json(&json!({ "url": "ftp://x", "event_types": ["foo.*", "sso.enabled", "sso.enable"] }))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["url", "event_types[0]", "event_types[2]"]);
    assert_problem(
        app.api(Method::POST, "/webhooks")
            .json(&json!({ "url": "https://x.test", "event_types": [] }))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;

    assert_eq!(app.api(Method::DELETE, &format!("/webhooks/{id}")).send().await.unwrap().status(), 204);
    assert_problem(app.get(&format!("/webhooks/{id}")).await, 404).await;
}

async fn raw_secret(url: &str) -> String {
    use sqlx::Connection;
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT secret_enc FROM webhook_endpoints").fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT secret_enc FROM webhook_endpoints").fetch_one(&mut c).await.unwrap()
    }
}

async fn deliveries_carry_signatures_the_reference_verifier_accepts(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&receiver).await;
    let app = spawn_app(backend).await;
    let (_, secret) = app.endpoint(&format!("{}/hooks", receiver.uri()), &["organization.*"]).await;
    let org = app.org("Signed Corp").await;

    let requests = received(&receiver, 1, Duration::from_secs(10)).await;
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["type"], "organization.created");
    assert_eq!(body["organization_id"], org["id"]);
    assert_eq!(body["data"]["name"], "Signed Corp");
    assert_eq!(req.headers.get("webhook-id").unwrap().to_str().unwrap(), body["id"].as_str().unwrap());
    assert_eq!(req.headers.get("content-type").unwrap(), "application/json");

    assert!(standardwebhooks_accepts(&secret, req, None).await, "reference verifier accepts our signature");
    let mut tampered = req.body.clone();
    tampered.extend_from_slice(b" ");
    assert!(!standardwebhooks_accepts(&secret, req, Some(&tampered)).await, "and rejects a modified body");
    let other_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(!standardwebhooks_accepts(other_secret, req, None).await, "and a wrong secret");
}

async fn a_failed_delivery_is_retried_until_it_succeeds(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("database on fire"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let app = spawn_app(backend).await;
    let (endpoint, _) = app.endpoint(&receiver.uri(), &["organization.created"]).await;
    let org = app.org("Retry Corp").await;
    let endpoint_id = endpoint["id"].as_str().unwrap();

    let done = wait_for_delivery(&app, endpoint_id, "succeeded", Duration::from_secs(15)).await;
    let delivery = &done["data"][0];
    assert_eq!(delivery["attempts"], 2, "{done}");
    assert_eq!(delivery["last_status"], 200);
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "delivered once more after the 500, then stopped");
    assert_eq!(
        requests[0].headers.get("webhook-id"),
        requests[1].headers.get("webhook-id"),
        "same message id on retry"
    );

    let event_id = delivery["event_id"].as_str().unwrap();
    let detail: Value = app.get(&format!("/events/{event_id}")).await.json().await.unwrap();
    assert_eq!(detail["organization_id"], org["id"]);
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!((attempts[0]["status_code"].clone(), attempts[1]["status_code"].clone()), (json!(500), json!(200)));
    assert_eq!(attempts[0]["response"], "database on fire");
    assert!(attempts[0]["error"].as_str().unwrap().contains("500"));
    assert!(attempts[0]["latency_ms"].as_i64().unwrap() >= 0);
}

async fn a_receiver_that_times_out_is_retried(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).with_priority(2).mount(&receiver).await;
    let app = spawn_app_with(backend, |s| {
        s.webhooks.timeout_secs = 1;
        s.webhooks.lease_secs = 5;
    })
    .await;
    let (endpoint, _) = app.endpoint(&receiver.uri(), &["organization.created"]).await;
    app.org("Slow Corp").await;
    let done = wait_for_delivery(&app, endpoint["id"].as_str().unwrap(), "succeeded", Duration::from_secs(15)).await;
    let event_id = done["data"][0]["event_id"].as_str().unwrap();
    let detail: Value = app.get(&format!("/events/{event_id}")).await.json().await.unwrap();
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{detail}");
    assert!(attempts[0]["status_code"].is_null());
    assert!(attempts[0]["error"].as_str().unwrap().contains("timed out"), "{}", attempts[0]);
    assert_eq!(attempts[1]["status_code"], 200);
}

async fn gone_disables_the_endpoint(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(410)).mount(&receiver).await;
    let app = spawn_app(backend).await;
    let (endpoint, _) = app.endpoint(&receiver.uri(), &["organization.*"]).await;
    let id = endpoint["id"].as_str().unwrap();
    app.org("Gone Corp").await;
    let failed = wait_for_delivery(&app, id, "failed", Duration::from_secs(10)).await;
    assert_eq!(failed["data"][0]["attempts"], 1, "410 is not retried");
    let shown: Value = app.get(&format!("/webhooks/{id}")).await.json().await.unwrap();
    assert_eq!(shown["enabled"], false);
    assert!(shown["disabled_reason"].as_str().unwrap().contains("410"));
    // Later events are not sent to a disabled endpoint.
    app.org("After Corp").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    // Re-enabling clears the reason.
    let r = app.api(Method::PATCH, &format!("/webhooks/{id}")).json(&json!({ "enabled": true })).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["disabled_reason"], Value::Null);
}

async fn subscriptions_filter_and_replays_resend(backend: Backend) {
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&receiver).await;
    let app = spawn_app(backend).await;
    let (endpoint, _) = app.endpoint(&receiver.uri(), &["portal.*"]).await;
    let org = app.org("Filter Corp").await;
    app.link(org["id"].as_str().unwrap(), &["sso"]).await;
    let requests = received(&receiver, 1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = if requests.len() == 1 { receiver.received_requests().await.unwrap() } else { requests };
    let types: Vec<String> = requests
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["portal.link.created"], "organization.created is not subscribed");

    let event_id = serde_json::from_slice::<Value>(&requests[0].body).unwrap()["id"].as_str().unwrap().to_owned();
    let r = app.api(Method::POST, &format!("/events/{event_id}/replay")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap()["queued"], 1);
    let again = received(&receiver, 2, Duration::from_secs(10)).await;
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].headers.get("webhook-id").unwrap().to_str().unwrap(), event_id);
    // The receiver has it, but the worker may not have recorded the outcome
    // yet; an in-flight delivery is left alone by a replay.
    let id = endpoint["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut busy = 0;
        for status in ["pending", "delivering"] {
            let list: Value =
                app.get(&format!("/webhooks/{id}/deliveries?status={status}")).await.json().await.unwrap();
            busy += list["data"].as_array().unwrap().len();
        }
        if busy == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "deliveries still in flight");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A time-range replay to one endpoint also covers events from before
    // the endpoint subscribed to them.
    app.api(Method::PATCH, &format!("/webhooks/{id}")).json(&json!({ "event_types": ["*"] })).send().await.unwrap();
    let from = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let to = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    let r = app
        .api(Method::POST, &format!("/webhooks/{id}/replay"))
        .json(&json!({ "from": fmt(from), "to": fmt(to) }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["queued"],
        2,
        "organization.created (new) + portal.link.created (again)"
    );
    assert_eq!(received(&receiver, 4, Duration::from_secs(10)).await.len(), 4);
}

async fn events_api_pages_with_a_cursor_and_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.org("A").await;
    app.org("B").await;
    app.link(a["id"].as_str().unwrap(), &["sso"]).await;
    tokio::time::sleep(Duration::from_millis(700)).await; // events settle

    let all: Value = app.get("/events?limit=2").await.json().await.unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let cursor = all["list_metadata"]["after"].as_str().unwrap();
    let rest: Value = app.get(&format!("/events?after={cursor}")).await.json().await.unwrap();
    let kinds: Vec<&str> = rest["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["portal.link.created"]);
    assert_eq!(rest["list_metadata"]["after"], rest["data"][0]["id"]);
    let empty: Value =
        app.get(&format!("/events?after={}", rest["data"][0]["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["list_metadata"]["after"], rest["data"][0]["id"], "cursor never goes backwards");

    let orgs: Value = app.get("/events?types=organization.*").await.json().await.unwrap();
    assert_eq!(orgs["data"].as_array().unwrap().len(), 2);
    let for_a: Value =
        app.get(&format!("/events?organization_id={}", a["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(for_a["data"].as_array().unwrap().len(), 2);
    assert_problem(app.get("/events?types=nothing.*").await, 422).await;
    assert_problem(app.get("/events?after=zzz").await, 400).await;
    assert_problem(app.get(&format!("/events/{}", uuid::Uuid::now_v7())).await, 404).await;
}

async fn the_event_stream_is_live_and_resumable(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.org("Before").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let events: Value = app.get("/events").await.json().await.unwrap();
    let before_id = events["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(events["data"][0]["organization_id"], first["id"]);

    // Resume after the first event: the next ones arrive live, in order.
    let mut stream = app
        .api(Method::GET, "/events/stream?types=organization.*")
        .header("last-event-id", &before_id)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    app.org("Live One").await;
    app.org("Live Two").await;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while text.matches("event: organization.created").count() < 2 && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(1), stream.chunk()).await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(!text.contains("\"Before\""), "resumed after Last-Event-ID: {text}");
    let one = text.find("Live One").expect("first live event");
    let two = text.find("Live Two").expect("second live event");
    assert!(one < two);
    assert!(text.contains("id: "), "{text}");
}

both_backends!(
    endpoints_are_managed_and_secrets_never_shown_again,
    deliveries_carry_signatures_the_reference_verifier_accepts,
    a_failed_delivery_is_retried_until_it_succeeds,
    a_receiver_that_times_out_is_retried,
    gone_disables_the_endpoint,
    subscriptions_filter_and_replays_resend,
    events_api_pages_with_a_cursor_and_filters,
    the_event_stream_is_live_and_resumable,
);
