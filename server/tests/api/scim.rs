//! SCIM groundwork: directories, their bearer tokens (hashed, rotatable,
//! isolated per directory), activation on the first authenticated request,
//! RFC 7644 errors.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, TestApp, assert_problem, spawn_app};

async fn directory(app: &TestApp, org: &str, provider: &str) -> Value {
    let r = app
        .api(Method::POST, &format!("/organizations/{org}/directories"))
        .json(&json!({ "name": "Staff", "provider": provider }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// GET on a SCIM path of `dir` (the base URL names the public URL; the
/// test server listens elsewhere).
async fn scim_get(app: &TestApp, dir: &Value, path: &str, token: Option<&str>) -> reqwest::Response {
    let base = dir["scim_base_url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let mut req = app.client.get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn assert_scim_error(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(body["status"], status.to_string(), "status is a string per RFC 7644 §3.12");
    body
}

async fn directory_events(app: &TestApp) -> Vec<(String, String)> {
    let events = app.store.list_events(None, None, 1000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.kind.starts_with("directory."))
        .map(|e| (e.kind, e.data.0["id"].as_str().unwrap().to_owned()))
        .collect()
}

async fn tokens_are_hashed_rotatable_and_activate_the_directory(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let dir = directory(&app, org["id"].as_str().unwrap(), "okta").await;
    let id = dir["id"].as_str().unwrap().to_owned();
    let token = dir["bearer_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("scim_") && token.len() > 50, "{token}");
    assert_eq!(dir["state"], "pending");
    assert!(dir["scim_base_url"].as_str().unwrap().ends_with(&format!("/scim/v2/{id}")));

    // Stored as a hash: a database dump does not contain the token.
    let (lookup, hash) = raw_token_row(&app.database_url).await;
    assert!(token.contains(&lookup), "the lookup is a prefix of the token");
    assert_eq!(hash.len(), 32);
    assert!(!String::from_utf8_lossy(&hash).contains(&token[5 + lookup.len()..]));
    assert!(!hash.windows(8).any(|w| token.as_bytes().windows(8).any(|t| t == w)));

    // Shown once: never again.
    let shown: Value = app.get(&format!("/directories/{id}")).await.json().await.unwrap();
    assert!(shown.get("bearer_token").is_none(), "{shown}");
    let listed: Value =
        app.get(&format!("/organizations/{}/directories", org["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&token[5..]));

    // No token, a wrong one, or a malformed header: 401 in SCIM form.
    let e = assert_scim_error(scim_get(&app, &dir, "/ServiceProviderConfig", None).await, 401).await;
    assert!(e["detail"].as_str().unwrap().contains("bearer token"));
    let wrong = format!("{}x", &token[..token.len() - 1]);
    assert_scim_error(scim_get(&app, &dir, "/ServiceProviderConfig", Some(&wrong)).await, 401).await;
    assert_eq!(directory_events(&app).await.len(), 0, "failed requests do not activate");

    // The right token works and activates the directory once.
    let r = scim_get(&app, &dir, "/ServiceProviderConfig", Some(&token)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/scim+json");
    let spc: Value = r.json().await.unwrap();
    assert_eq!(spc["schemas"], json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]));
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(scim_get(&app, &dir, "/ServiceProviderConfig", Some(&token)).await.status(), 200);
    let now: Value = app.get(&format!("/directories/{id}")).await.json().await.unwrap();
    assert_eq!(now["state"], "active");
    assert!(now["last_request_at"].is_string());
    assert_eq!(directory_events(&app).await, [("directory.enabled".to_owned(), id.clone())]);
    // Unknown SCIM paths are SCIM errors too.
    assert_scim_error(scim_get(&app, &dir, "/Nope", Some(&token)).await, 404).await;

    // Rotation: the old token stops working at once.
    let r = app.api(Method::POST, &format!("/directories/{id}/rotate-token")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    let new_token = rotated["bearer_token"].as_str().unwrap();
    assert_ne!(new_token, token);
    assert_scim_error(scim_get(&app, &dir, "/ServiceProviderConfig", Some(&token)).await, 401).await;
    assert_eq!(scim_get(&app, &dir, "/ServiceProviderConfig", Some(new_token)).await.status(), 200);

    // Deleting an active directory disables it.
    assert_eq!(app.api(Method::DELETE, &format!("/directories/{id}")).send().await.unwrap().status(), 204);
    assert_scim_error(scim_get(&app, &dir, "/ServiceProviderConfig", Some(new_token)).await, 401).await;
    assert_eq!(
        directory_events(&app).await,
        [("directory.enabled".to_owned(), id.clone()), ("directory.disabled".to_owned(), id.clone())]
    );
    assert_problem(app.get(&format!("/directories/{id}")).await, 404).await;
}

async fn a_token_opens_only_its_own_directory(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b) = (app.org("A").await, app.org("B").await);
    let dir_a = directory(&app, a["id"].as_str().unwrap(), "entra").await;
    let dir_b = directory(&app, b["id"].as_str().unwrap(), "generic").await;
    let token_a = dir_a["bearer_token"].as_str().unwrap();
    assert_scim_error(scim_get(&app, &dir_b, "/ServiceProviderConfig", Some(token_a)).await, 401).await;
    let b_now: Value = app.get(&format!("/directories/{}", dir_b["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(b_now["state"], "pending", "another directory's token does not activate it");
    // B has a user; A's token gets 401 on every route and verb of B.
    let b_user: Value =
        scim(&app, &dir_b, Method::POST, "/Users", Some(okta_user("b@b.io"))).await.json().await.unwrap();
    let b_user_path = format!("/Users/{}", b_user["id"].as_str().unwrap());
    let base_b = dir_b["scim_base_url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "/ServiceProviderConfig".into()),
        (Method::GET, "/Schemas".into()),
        (Method::GET, "/ResourceTypes".into()),
        (Method::GET, "/Users".into()),
        (Method::POST, "/Users".into()),
        (Method::GET, b_user_path.clone()),
        (Method::PUT, b_user_path.clone()),
        (Method::PATCH, b_user_path.clone()),
        (Method::DELETE, b_user_path.clone()),
        (Method::GET, "/Groups".into()),
        (Method::POST, "/Groups".into()),
        (Method::POST, "/.search".into()),
        (Method::POST, "/Users/.search".into()),
        (Method::GET, "/Nonexistent".into()),
    ];
    for (method, path) in routes {
        let r = app
            .client
            .request(method.clone(), format!("{base_b}{path}"))
            .bearer_auth(token_a)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_scim_error(r, 401).await;
    }
    let still: Value = scim(&app, &dir_b, Method::GET, &b_user_path, None).await.json().await.unwrap();
    assert_eq!(still["userName"], "b@b.io", "B's user untouched");
    // An API key is not a SCIM token, nor the reverse.
    assert_scim_error(scim_get(&app, &dir_a, "/ServiceProviderConfig", Some(&app.api_key)).await, 401).await;
    let r = app.client.get(app.url("/api/v1/organizations")).bearer_auth(token_a).send().await.unwrap();
    assert_problem(r, 401).await;
}

async fn bad_directory_requests_get_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Strict").await;
    let org_id = org["id"].as_str().unwrap();
    let r = app
        .api(Method::POST, &format!("/organizations/{org_id}/directories"))
        .json(&json!({ "name": " ", "provider": "myspace" }))
        .send()
        .await
        .unwrap();
    let p = assert_problem(r, 422).await;
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "provider"]);
    let missing = "01900000-0000-7000-8000-000000000000";
    let r = app
        .api(Method::POST, &format!("/organizations/{missing}/directories"))
        .json(&json!({ "name": "x", "provider": "okta" }))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404).await;
    assert_problem(app.get("/directories/not-a-uuid").await, 404).await;
    let r = app.api(Method::POST, &format!("/directories/{missing}/rotate-token")).send().await.unwrap();
    assert_problem(r, 404).await;
    let listed: Value = app.get(&format!("/organizations/{org_id}/directories")).await.json().await.unwrap();
    assert_eq!(listed["data"], json!([]));
}

/// The directory token columns, as an attacker with a database dump sees them.
async fn raw_token_row(url: &str) -> (String, Vec<u8>) {
    use sqlx::Connection;
    let sql = "SELECT token_lookup, token_hash FROM directories";
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// A SCIM request to `dir` with its token.
async fn scim(app: &TestApp, dir: &Value, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let base = dir["scim_base_url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let mut req =
        app.client.request(method, format!("{base}{path}")).bearer_auth(dir["bearer_token"].as_str().unwrap());
    if let Some(b) = body {
        req = req.header("content-type", "application/scim+json").body(b.to_string());
    }
    req.send().await.unwrap()
}

fn okta_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "externalId": "00u1abcd",
        "name": { "givenName": "Barbara", "familyName": "Jensen" },
        "emails": [{ "primary": true, "value": "bjensen@example.com", "type": "work" },
                   { "value": "babs@home.example", "type": "home" }],
        "displayName": "Barbara Jensen",
        "locale": "en-US",
        "groups": [],
        "password": "never-stored",
        "active": true
    })
}

async fn users_are_provisioned_found_and_deprovisioned(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let dir = directory(&app, org["id"].as_str().unwrap(), "okta").await;

    let r = scim(&app, &dir, Method::POST, "/Users", Some(okta_user("bjensen@example.com"))).await;
    assert_eq!(r.status(), 201);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "W/\"1\"");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(location.ends_with(&format!("/Users/{id}")));
    assert_eq!(created["meta"]["resourceType"], "User");
    assert_eq!(created["meta"]["version"], etag);
    assert_eq!(created["active"], true);
    assert!(created.get("password").is_none(), "passwords are never stored or returned");
    assert_eq!(created["name"]["familyName"], "Jensen");

    // Okta's lookups: userName (any case), and Entra's externalId / email shapes.
    for filter in [
        "userName eq \"BJENSEN@example.com\"",
        "externalId eq \"00u1abcd\"",
        "emails[type eq \"home\" and value eq \"BABS@home.example\"]",
        "name.givenName sw \"bar\" and not (active eq false)",
    ] {
        let r = scim(&app, &dir, Method::GET, &format!("/Users?filter={}", urlencode(filter)), None).await;
        assert_eq!(r.status(), 200, "{filter}");
        let list: Value = r.json().await.unwrap();
        assert_eq!(list["totalResults"], 1, "{filter}: {list}");
        assert_eq!(list["Resources"][0]["id"], id.as_str());
        assert_eq!(list["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));
    }
    let none: Value =
        scim(&app, &dir, Method::GET, &format!("/Users?filter={}", urlencode("userName eq \"nobody\"")), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(none["totalResults"], 0);
    assert_eq!(none["Resources"], json!([]));
    let e = assert_scim_error(scim(&app, &dir, Method::GET, "/Users?filter=userName%20eq", None).await, 400).await;
    assert_eq!(e["scimType"], "invalidFilter");

    // A second POST of the same userName is a uniqueness conflict.
    let e =
        assert_scim_error(scim(&app, &dir, Method::POST, "/Users", Some(okta_user("BJensen@example.com"))).await, 409)
            .await;
    assert_eq!(e["scimType"], "uniqueness");

    // Entra deprovisions with PUT active "False"; If-Match must be current.
    let mut off = okta_user("bjensen@example.com");
    off["active"] = json!("False");
    let stale = app
        .client
        .put(format!(
            "{}/Users/{id}",
            dir["scim_base_url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address)
        ))
        .bearer_auth(dir["bearer_token"].as_str().unwrap())
        .header("if-match", "W/\"7\"")
        .json(&off)
        .send()
        .await
        .unwrap();
    assert_scim_error(stale, 412).await;
    let r = scim(&app, &dir, Method::PUT, &format!("/Users/{id}"), Some(off)).await;
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["active"], false);
    assert_eq!(updated["meta"]["version"], "W/\"2\"");

    // Re-provisioning the deprovisioned user restores it, same id.
    let r = scim(&app, &dir, Method::POST, "/Users", Some(okta_user("bjensen@example.com"))).await;
    assert_eq!(r.status(), 201);
    let restored: Value = r.json().await.unwrap();
    assert_eq!(restored["id"], id.as_str());
    assert_eq!(restored["active"], true);

    assert_eq!(scim(&app, &dir, Method::DELETE, &format!("/Users/{id}"), None).await.status(), 204);
    assert_scim_error(scim(&app, &dir, Method::GET, &format!("/Users/{id}"), None).await, 404).await;

    let events = app.store.list_events(None, None, 1000).await.unwrap();
    let users: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind.starts_with("directory.user."))
        .map(|e| (e.kind.clone(), e.data.0["state"].as_str().unwrap().to_owned()))
        .collect();
    let expect = |k: &str, s: &str| (format!("directory.user.{k}"), s.to_owned());
    assert_eq!(
        users,
        [
            expect("created", "active"),
            expect("updated", "inactive"),
            expect("updated", "active"),
            expect("deleted", "active")
        ]
    );
    let first = events.iter().find(|e| e.kind == "directory.user.created").unwrap();
    assert_eq!(first.data.0["email"], "bjensen@example.com");
    assert_eq!(first.data.0["first_name"], "Barbara");
    assert_eq!(first.data.0["idp_id"], "00u1abcd");
    assert_eq!(first.data.0["directory_id"], dir["id"]);
}

async fn bad_scim_bodies_get_rfc_errors_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b) = (app.org("A").await, app.org("B").await);
    let dir = directory(&app, a["id"].as_str().unwrap(), "entra").await;
    let other = directory(&app, b["id"].as_str().unwrap(), "okta").await;
    let base = dir["scim_base_url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let raw =
        app.client.post(format!("{base}/Users")).bearer_auth(dir["bearer_token"].as_str().unwrap()).body("{not json");
    let e = assert_scim_error(raw.send().await.unwrap(), 400).await;
    assert_eq!(e["scimType"], "invalidSyntax");
    let mut nameless = okta_user("x");
    nameless.as_object_mut().unwrap().remove("userName");
    let e = assert_scim_error(scim(&app, &dir, Method::POST, "/Users", Some(nameless)).await, 400).await;
    assert_eq!(e["scimType"], "invalidValue");
    let mut no_schema = okta_user("x");
    no_schema.as_object_mut().unwrap().remove("schemas");
    assert_scim_error(scim(&app, &dir, Method::POST, "/Users", Some(no_schema)).await, 400).await;
    let huge = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "big", "nickName": "x".repeat(1_100_000) });
    let e = assert_scim_error(scim(&app, &dir, Method::POST, "/Users", Some(huge)).await, 413).await;
    assert!(e["detail"].as_str().unwrap().contains("larger than"), "{e}");
    // NUL in any string is refused alike on both engines (PostgreSQL text
    // cannot hold it), in bodies and in filters.
    let e =
        assert_scim_error(scim(&app, &dir, Method::POST, "/Users", Some(okta_user("nul\u{0}@a.io"))).await, 400).await;
    assert_eq!(e["scimType"], "invalidValue");
    assert!(e["detail"].as_str().unwrap().contains("NUL"), "{e}");
    let e =
        assert_scim_error(scim(&app, &dir, Method::GET, "/Users?filter=userName%20eq%20%22a%00%22", None).await, 400)
            .await;
    assert_eq!(e["scimType"], "invalidFilter");
    let e = assert_scim_error(
        scim(&app, &dir, Method::GET, "/Groups?filter=displayName%20eq%20%22a%00%22", None).await,
        400,
    )
    .await;
    assert_eq!(e["scimType"], "invalidFilter");
    let e = assert_scim_error(scim(&app, &dir, Method::GET, "/Users?count=lots", None).await, 400).await;
    assert_eq!(e["scimType"], "invalidValue");
    let list: Value = scim(&app, &dir, Method::GET, "/Users", None).await.json().await.unwrap();
    assert_eq!(list["totalResults"], 0, "nothing was stored");

    // Another directory's user is invisible: 404 with its own token.
    let created: Value =
        scim(&app, &dir, Method::POST, "/Users", Some(okta_user("a@a.io"))).await.json().await.unwrap();
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    assert_scim_error(scim(&app, &other, Method::GET, &path, None).await, 404).await;
    assert_scim_error(scim(&app, &other, Method::DELETE, &path, None).await, 404).await;
    let theirs: Value = scim(&app, &other, Method::GET, "/Users", None).await.json().await.unwrap();
    assert_eq!(theirs["totalResults"], 0);

    // Pagination: 1-based startIndex, count.
    for i in 0..4 {
        scim(&app, &dir, Method::POST, "/Users", Some(okta_user(&format!("u{i}@a.io")))).await;
    }
    let page: Value = scim(&app, &dir, Method::GET, "/Users?startIndex=2&count=2", None).await.json().await.unwrap();
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    assert_eq!(page["Resources"].as_array().unwrap().len(), 2);
}

async fn patch_applies_idp_shapes_atomically(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let dir = directory(&app, org["id"].as_str().unwrap(), "entra").await;
    let created: Value =
        scim(&app, &dir, Method::POST, "/Users", Some(okta_user("pat@acme.io"))).await.json().await.unwrap();
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let op = |ops: Value| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops });

    // Entra: several operations in one request, string booleans, URN keys.
    let r = scim(&app, &dir, Method::PATCH, &path, Some(op(json!([
        { "op": "Replace", "path": "displayName", "value": "Pat Q" },
        { "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-1" },
        { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "pat.q@acme.io" }
    ])))).await;
    assert_eq!(r.status(), 200);
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["displayName"], "Pat Q");
    assert_eq!(u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"], json!({ "value": "m-1" }));
    let found: Value = scim(
        &app,
        &dir,
        Method::GET,
        &format!("/Users?filter={}", urlencode("emails[value eq \"pat.q@acme.io\"]")),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(found["totalResults"], 1, "the email index follows PATCH");

    // A request with one bad operation changes nothing.
    let r = scim(
        &app,
        &dir,
        Method::PATCH,
        &path,
        Some(op(json!([
            { "op": "Replace", "path": "displayName", "value": "Should not stick" },
            { "op": "Frobnicate", "path": "title", "value": "x" }
        ]))),
    )
    .await;
    assert_scim_error(r, 400).await;
    let now: Value = scim(&app, &dir, Method::GET, &path, None).await.json().await.unwrap();
    assert_eq!(now["displayName"], "Pat Q");

    // Okta deactivates with a pathless replace.
    let r =
        scim(&app, &dir, Method::PATCH, &path, Some(op(json!([{ "op": "replace", "value": { "active": false } }]))))
            .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["active"], false);
    let events = app.store.list_events(None, None, 1000).await.unwrap();
    let last = events.iter().rev().find(|e| e.kind.starts_with("directory.user.")).unwrap();
    assert_eq!(last.kind, "directory.user.updated");
    assert_eq!(last.data.0["state"], "inactive");
}

async fn groups_track_membership_with_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let dir = directory(&app, org["id"].as_str().unwrap(), "okta").await;
    let mut ids = Vec::new();
    for name in ["ann@a.io", "bob@a.io", "cid@a.io"] {
        let u: Value = scim(&app, &dir, Method::POST, "/Users", Some(okta_user(name))).await.json().await.unwrap();
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Engineering",
        "members": [{ "value": ids[0] }, { "value": ids[1] }]
    });
    let r = scim(&app, &dir, Method::POST, "/Groups", Some(group)).await;
    assert_eq!(r.status(), 201);
    let g: Value = r.json().await.unwrap();
    let path = format!("/Groups/{}", g["id"].as_str().unwrap());
    assert_eq!(g["members"].as_array().unwrap().len(), 2);
    assert_eq!(g["members"][0]["display"], "ann@a.io");
    let op = |ops: Value| json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops });

    // Okta adds and removes members with PATCH.
    let r = scim(
        &app,
        &dir,
        Method::PATCH,
        &path,
        Some(op(json!([{ "op": "add", "path": "members", "value": [{ "value": ids[2] }] }]))),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = scim(
        &app,
        &dir,
        Method::PATCH,
        &path,
        Some(op(json!([{ "op": "remove", "path": format!("members[value eq \"{}\"]", ids[0]) }]))),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Entra removes with a value list; only those go.
    let r = scim(
        &app,
        &dir,
        Method::PATCH,
        &path,
        Some(op(json!([{ "op": "Remove", "path": "members", "value": [{ "value": ids[1] }] }]))),
    )
    .await;
    let g: Value = r.json().await.unwrap();
    let members: Vec<&str> = g["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(members, [ids[2].as_str()]);
    // Renames by pathless replace; filters see groups too.
    scim(&app, &dir, Method::PATCH, &path, Some(op(json!([{ "op": "Replace", "value": { "displayName": "Eng" } }]))))
        .await;
    let found: Value =
        scim(&app, &dir, Method::GET, &format!("/Groups?filter={}", urlencode("displayName eq \"eng\"")), None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(found["totalResults"], 1);
    // Unknown members are refused and change nothing.
    let r = scim(
        &app,
        &dir,
        Method::PATCH,
        &path,
        Some(op(
            json!([{ "op": "add", "path": "members", "value": [{ "value": "01900000-0000-7000-8000-000000000000" }] }]),
        )),
    )
    .await;
    assert_scim_error(r, 400).await;

    // The vendor sees normalized users with their groups, filtered and paged.
    let dir_id = dir["id"].as_str().unwrap();
    let users: Value = app.get(&format!("/directories/{dir_id}/users?limit=2")).await.json().await.unwrap();
    assert_eq!(users["data"].as_array().unwrap().len(), 2);
    let next = users["list_metadata"]["after"].as_str().unwrap();
    let rest: Value = app.get(&format!("/directories/{dir_id}/users?limit=2&after={next}")).await.json().await.unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert!(rest["list_metadata"]["after"].is_null());
    assert_eq!(rest["data"][0]["username"], "cid@a.io");
    assert_eq!(rest["data"][0]["groups"], json!([{ "id": g["id"], "name": "Eng" }]));
    assert_eq!(rest["data"][0]["email"], "bjensen@example.com", "primary email first");
    assert_eq!(rest["data"][0]["state"], "active");
    let by_name: Value = app.get(&format!("/directories/{dir_id}/users?username=ANN@a.io")).await.json().await.unwrap();
    assert_eq!(by_name["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_name["data"][0]["groups"], json!([]));
    let inactive: Value = app.get(&format!("/directories/{dir_id}/users?state=inactive")).await.json().await.unwrap();
    assert_eq!(inactive["data"], json!([]));
    let by_email: Value =
        app.get(&format!("/directories/{dir_id}/users?email=BABS@home.example")).await.json().await.unwrap();
    assert_eq!(by_email["data"].as_array().unwrap().len(), 3, "every test user shares that home email");
    assert_problem(app.get(&format!("/directories/{dir_id}/users?state=gone")).await, 422).await;
    let groups_page: Value = app.get(&format!("/directories/{dir_id}/groups")).await.json().await.unwrap();
    assert_eq!(groups_page["data"][0]["name"], "Eng");

    assert_eq!(scim(&app, &dir, Method::DELETE, &path, None).await.status(), 204);
    assert_scim_error(scim(&app, &dir, Method::GET, &path, None).await, 404).await;

    let events = app.store.list_events(None, None, 1000).await.unwrap();
    let groups: Vec<String> = events
        .iter()
        .filter(|e| e.kind.starts_with("directory.group."))
        .map(|e| match e.data.0.get("user") {
            Some(u) => format!("{} {}", e.kind, u["username"].as_str().unwrap()),
            None => e.kind.clone(),
        })
        .collect();
    assert_eq!(
        groups,
        [
            "directory.group.created",
            "directory.group.user_added ann@a.io",
            "directory.group.user_added bob@a.io",
            "directory.group.updated",
            "directory.group.user_added cid@a.io",
            "directory.group.updated",
            "directory.group.user_removed ann@a.io",
            "directory.group.updated",
            "directory.group.user_removed bob@a.io",
            "directory.group.updated",
            "directory.group.deleted",
        ]
    );
}

/// Group lookups (Okta and Entra search by displayName before every group
/// change) and listings with every group's members; PUT with a large member
/// list is checked as a whole.
async fn group_lookups_and_listings_carry_members(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Acme").await;
    let dir = directory(&app, org["id"].as_str().unwrap(), "entra").await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let u: Value = scim(&app, &dir, Method::POST, "/Users", Some(okta_user(&format!("u{i}@a.io"))))
            .await
            .json()
            .await
            .unwrap();
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let group = |name: &str, external: &str, members: &[String]| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "externalId": external,
            "members": members.iter().map(|m| json!({ "value": m })).collect::<Vec<_>>()
        })
    };
    let eng: Value = scim(&app, &dir, Method::POST, "/Groups", Some(group("Engineering", "G-eng", &ids[..50])))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eng["members"].as_array().unwrap().len(), 50);
    let sales: Value = scim(&app, &dir, Method::POST, "/Groups", Some(group("Sales", "G-sales", &ids[50..])))
        .await
        .json()
        .await
        .unwrap();
    scim(&app, &dir, Method::POST, "/Groups", Some(group("Empty", "G-empty", &[]))).await;

    let find = |filter: &str| {
        let path = format!("/Groups?filter={}", urlencode(filter));
        let (app, dir) = (&app, &dir);
        async move { scim(app, dir, Method::GET, &path, None).await.json::<Value>().await.unwrap() }
    };
    let member_count = |r: &Value| r["members"].as_array().map_or(0, Vec::len);
    let by_name = find("displayName eq \"ENGINEERING\"").await;
    assert_eq!(by_name["totalResults"], 1, "displayName is case-insensitive");
    assert_eq!(by_name["Resources"][0]["id"], eng["id"]);
    assert_eq!(member_count(&by_name["Resources"][0]), 50);
    let by_external = find("externalId eq \"G-sales\"").await;
    assert_eq!(by_external["Resources"][0]["id"], sales["id"]);
    assert_eq!(member_count(&by_external["Resources"][0]), 10);
    assert_eq!(find("externalId eq \"g-sales\"").await["totalResults"], 0, "externalId is case-exact");
    assert_eq!(find("displayName eq \"Sales\" and externalId eq \"G-eng\"").await["totalResults"], 0);
    assert_eq!(find("displayName eq \"Nobody\"").await["totalResults"], 0);
    assert_eq!(find("displayName sw \"E\"").await["totalResults"], 2, "non-indexed filters still work");

    // Every group with its own members, in one listing.
    let all: Value = scim(&app, &dir, Method::GET, "/Groups", None).await.json().await.unwrap();
    let counts: Vec<(String, usize)> = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["displayName"].as_str().unwrap().to_owned(), member_count(g)))
        .collect();
    assert_eq!(counts, [("Engineering".to_owned(), 50), ("Sales".to_owned(), 10), ("Empty".to_owned(), 0)]);
    // Pages are read from the database page by page, members included.
    let page: Value = scim(&app, &dir, Method::GET, "/Groups?startIndex=2&count=1", None).await.json().await.unwrap();
    assert_eq!((page["totalResults"].as_i64(), page["itemsPerPage"].as_i64()), (Some(3), Some(1)));
    assert_eq!(page["Resources"][0]["displayName"], "Sales");
    assert_eq!(member_count(&page["Resources"][0]), 10);
    let none: Value = scim(&app, &dir, Method::GET, "/Groups?count=0", None).await.json().await.unwrap();
    assert_eq!((none["totalResults"].as_i64(), none["Resources"].as_array().map(Vec::len)), (Some(3), Some(0)));
    let past: Value = scim(&app, &dir, Method::GET, "/Groups?startIndex=4", None).await.json().await.unwrap();
    assert_eq!((past["totalResults"].as_i64(), past["itemsPerPage"].as_i64()), (Some(3), Some(0)));
    let users: Value = scim(&app, &dir, Method::GET, "/Users?startIndex=59&count=5&attributes=userName", None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        users["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
    // Unfiltered user pages are in userName order (u0, u1, u10, …, u9, u58, u59).
    assert_eq!((users["totalResults"].as_i64(), names), (Some(60), vec!["u8@a.io", "u9@a.io"]));
    assert!(users["Resources"][0].get("name").is_none(), "attributes= projects the page");

    // PUT swapping most members: one unknown id refuses the whole change.
    let path = format!("/Groups/{}", eng["id"].as_str().unwrap());
    let mut swapped: Vec<String> = ids[20..].to_vec();
    swapped.push("01900000-0000-7000-8000-000000000000".into());
    let r = scim(&app, &dir, Method::PUT, &path, Some(group("Engineering", "G-eng", &swapped))).await;
    let err = assert_scim_error(r, 400).await;
    assert!(err["detail"].as_str().unwrap().contains("01900000-0000-7000-8000-000000000000"), "{err}");
    let same: Value = scim(&app, &dir, Method::GET, &path, None).await.json().await.unwrap();
    assert_eq!(member_count(&same), 50, "nothing changed");
    swapped.pop();
    let r = scim(&app, &dir, Method::PUT, &path, Some(group("Engineering", "G-eng", &swapped))).await;
    assert_eq!(r.status(), 200);
    let after: Value = r.json().await.unwrap();
    let mut members: Vec<String> =
        after["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect();
    members.sort();
    let mut expected = ids[20..].to_vec();
    expected.sort();
    assert_eq!(members, expected);
    let events = app.store.list_events(None, None, 1000).await.unwrap();
    let count = |kind: &str| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count("directory.group.user_removed"), 20, "u0..u19 left Engineering");
    assert_eq!(count("directory.group.user_added"), 50 + 10 + 10, "creates, then u50..u59 joined Engineering");
}

/// The external checker: PyPI `scim2-tester` through `scim2-cli`, written by
/// others against RFC 7643/7644, run against a live directory.
async fn scim2_tester_passes_every_check(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Conformance").await;
    let dir = directory(&app, org["id"].as_str().unwrap(), "generic").await;
    let base = dir["scim_base_url"].as_str().unwrap().replace("http://127.0.0.1:8080", &app.address);
    let scim2 = crate::helpers::python().with_file_name("scim2");
    let out = tokio::process::Command::new(&scim2)
        .args(["--url", &base, "test"])
        .env("SCIM_CLI_HEADERS", format!("Authorization: Bearer {}", dir["bearer_token"].as_str().unwrap()))
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} (./scripts/test installs scim2-cli): {e}", scim2.display()));
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let count = |kind: &str| report.lines().filter(|l| l.starts_with(kind)).count();
    let (passed, failed) =
        (count("SUCCESS"), report.lines().filter(|l| l.starts_with("ERROR") || l.starts_with("CRITICAL")).count());
    println!("scim2-tester ({backend:?}): {passed} checks passed, {failed} failed");
    assert_eq!(failed, 0, "scim2-tester failures:\n{report}");
    assert!(passed >= 100, "scim2-tester ran its full suite ({passed} checks):\n{report}");
}

/// Waits for the batched request log of `dir` to hold `n` entries.
async fn logged(app: &TestApp, dir: uuid::Uuid, n: usize) -> Vec<portico_server::scim::requests::ScimRequest> {
    for _ in 0..100 {
        let log = app.store.scim_requests(dir, 100).await.unwrap();
        if log.len() >= n {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("request log of {dir} never reached {n} entries: {:?}", app.store.scim_requests(dir, 100).await.unwrap());
}

async fn every_request_is_logged_per_directory(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Logged").await;
    let dir = directory(&app, org["id"].as_str().unwrap(), "okta").await;
    let other = directory(&app, org["id"].as_str().unwrap(), "entra").await;
    let id: uuid::Uuid = dir["id"].as_str().unwrap().parse().unwrap();
    let other_id: uuid::Uuid = other["id"].as_str().unwrap().parse().unwrap();

    assert_eq!(scim(&app, &dir, Method::POST, "/Users", Some(okta_user("ann@a.io"))).await.status(), 201);
    let bad = scim(&app, &dir, Method::GET, "/Users?filter=userName%20eq", None).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(scim_get(&app, &dir, "/Users", Some("scim_wrong")).await.status(), 401);
    // Another directory's traffic and made-up directories stay out of it.
    assert_eq!(scim(&app, &other, Method::GET, "/Groups", None).await.status(), 200);
    let stranger = app.client.get(format!("{}/scim/v2/{}/Users", app.address, uuid::Uuid::now_v7())).send().await;
    assert_eq!(stranger.unwrap().status(), 401);

    let log = logged(&app, id, 3).await;
    assert_eq!(log.len(), 3, "{log:?}");
    // Newest first; paths relative to the SCIM base URL, with the query.
    let shape: Vec<(&str, &str, i32)> = log.iter().map(|r| (r.method.as_str(), r.path.as_str(), r.status)).collect();
    assert_eq!(shape, [("GET", "/Users", 401), ("GET", "/Users?filter=userName%20eq", 400), ("POST", "/Users", 201)]);
    assert!(log[0].detail.as_deref().unwrap().contains("bearer token"), "{:?}", log[0]);
    assert!(log[1].detail.as_deref().unwrap().to_lowercase().contains("filter"), "{:?}", log[1]);
    assert_eq!(log[2].detail, None);
    assert!(log.iter().all(|r| r.latency_us > 0 && r.latency_us < 5_000_000), "{log:?}");
    let other_log = logged(&app, other_id, 1).await;
    assert_eq!(other_log.len(), 1);
    assert_eq!(other_log[0].path, "/Groups");

    // Trimming keeps the newest entries of that directory only.
    let synthetic: Vec<_> = (0..30)
        .map(|i| {
            portico_server::scim::requests::ScimRequest::new(
                id,
                "GET",
                &format!("/Users/{i}"),
                200,
                std::time::Duration::from_millis(1),
            )
        })
        .collect();
    app.store.insert_scim_requests(&synthetic).await.unwrap();
    assert_eq!(app.store.trim_scim_requests(id, 10).await.unwrap(), 23);
    let kept = app.store.scim_requests(id, 100).await.unwrap();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[0].path, "/Users/29");
    assert_eq!(kept[9].path, "/Users/20");
    assert_eq!(app.store.scim_requests(other_id, 100).await.unwrap().len(), 1);
}

/// Concurrent creates (batched into shared commits on PostgreSQL): each is
/// answered for itself, duplicates in the same burst get 409, and every
/// created user has exactly one event.
async fn concurrent_creates_are_answered_one_by_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Burst").await;
    let dir = directory(&app, org["id"].as_str().unwrap(), "okta").await;
    let bodies: Vec<Value> = (0..60)
        .map(|i| {
            let name = format!("u{}@burst.example", i % 40); // 20 duplicates
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
                    "emails": [{ "value": name, "primary": true }] })
        })
        .collect();
    let requests = bodies.iter().map(|b| scim(&app, &dir, Method::POST, "/Users", Some(b.clone())));
    let statuses: Vec<u16> =
        futures_util::future::join_all(requests).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 40, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 20, "{statuses:?}");
    let listed: Value = scim(&app, &dir, Method::GET, "/Users?count=100", None).await.json().await.unwrap();
    assert_eq!(listed["totalResults"], 40);
    let created = directory_events(&app).await.iter().filter(|(k, _)| k == "directory.user.created").count();
    assert_eq!(created, 40);
    // Email lookups find each created user.
    let found: Value =
        scim(&app, &dir, Method::GET, "/Users?filter=emails%5Bvalue%20eq%20%22u7%40burst.example%22%5D", None)
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(found["totalResults"], 1, "{found}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

both_backends!(
    concurrent_creates_are_answered_one_by_one,
    every_request_is_logged_per_directory,
    users_are_provisioned_found_and_deprovisioned,
    patch_applies_idp_shapes_atomically,
    groups_track_membership_with_events,
    group_lookups_and_listings_carry_members,
    scim2_tester_passes_every_check,
    bad_scim_bodies_get_rfc_errors_and_change_nothing,
    tokens_are_hashed_rotatable_and_activate_the_directory,
    a_token_opens_only_its_own_directory,
    bad_directory_requests_get_problems,
);
