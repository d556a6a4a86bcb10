//! Health probes, SSR pages, headers, OpenAPI.

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{Backend, assert_problem, spawn_app};

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ready");

    // With the database gone, readiness fails (503) while liveness holds.
    app.store.close().await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let body = assert_problem(r, 503).await;
    assert!(body.get("detail").is_none(), "no internal error text leaks: {body}");
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

async fn landing_page_is_server_rendered(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self' 'nonce-") && csp.ends_with("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    // `<!>` are hydration markers between text nodes.
    let html = r.text().await.unwrap().replace("<!>", "");
    assert!(html.contains("A portal link is required"), "{html}");
    // Async SSR: the content is inline, not in a streamed <template>.
    assert!(!html.contains("<template"), "{html}");
    assert!(html.contains("Acme Analytics admin portal"), "vendor branding rendered on the server");
    assert!(html.contains("/pkg/portico-frontend.js"), "hydration script referenced");
    assert!(html.contains("/pkg/portico.css"));

    let r = app.client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Page not found"));
}

async fn request_ids_are_returned_and_propagated(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&generated).unwrap().get_version_num(), 4);
    let r = app.client.get(app.url("/healthz")).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42");
}

async fn openapi_document_describes_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, methods) in [
        ("/organizations", &["get", "post"][..]),
        ("/organizations/{id}", &["get", "patch", "delete"][..]),
        ("/portal/links", &["post"][..]),
        ("/webhooks", &["get", "post"][..]),
        ("/webhooks/{id}", &["get", "patch", "delete"][..]),
        ("/webhooks/{id}/rotate-secret", &["post"][..]),
        ("/webhooks/{id}/deliveries", &["get"][..]),
        ("/webhooks/{id}/replay", &["post"][..]),
        ("/events", &["get"][..]),
        ("/events/stream", &["get"][..]),
        ("/events/{id}", &["get"][..]),
        ("/events/{id}/replay", &["post"][..]),
        ("/organizations/{id}/domains", &["get", "post"][..]),
        ("/organizations/{id}/domains/{domain}", &["get", "delete"][..]),
        ("/organizations/{id}/domains/{domain}/verify", &["post"][..]),
        ("/domains/lookup", &["get"][..]),
        ("/organizations/{id}/directories", &["get", "post"][..]),
        ("/directories/{id}", &["get", "delete"][..]),
        ("/directories/{id}/rotate-token", &["post"][..]),
        ("/directories/{id}/users", &["get"][..]),
        ("/directories/{id}/groups", &["get"][..]),
    ] {
        for m in methods {
            assert!(doc["paths"][path][m].is_object(), "{m} {path} documented");
        }
    }
    // What is served is what the handlers generate.
    let generated = serde_json::to_value(portico_server::http::api::document()).unwrap();
    assert_eq!(doc, generated);
}

/// The live server routes exactly the documented methods of each documented
/// path: a documented operation reaches its handler (no "no such endpoint"
/// 404, no 405), any other method is a 405. (The unit test beside the router
/// also catches routes at undocumented paths.)
async fn the_server_routes_what_the_document_describes(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "{:?}", paths.keys());
    let any_id = uuid::Uuid::now_v7().to_string();
    for (template, item) in paths {
        let path = template.replace("{id}", &any_id).replace("{domain}", "unknown.example");
        for method in ["get", "post", "put", "patch", "delete"] {
            let r = app
                .api(method.to_uppercase().parse().unwrap(), &path)
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            if item.get(method).is_some() {
                // The event stream answers 200 and stays open: dropping `r` ends it.
                let detail =
                    if status == 404 { r.json::<Value>().await.unwrap()["detail"].clone() } else { Value::Null };
                assert!(status != 405 && detail != "no such API endpoint", "{method} {template} is routed: {status}");
            } else {
                assert_eq!(status, 405, "{method} {template} is not documented, so not routed");
            }
        }
    }
}

both_backends!(
    health_and_readiness,
    landing_page_is_server_rendered,
    request_ids_are_returned_and_propagated,
    openapi_document_describes_the_api,
    the_server_routes_what_the_document_describes,
);
