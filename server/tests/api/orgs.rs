//! Organizations API.

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, assert_problem, spawn_app};

async fn create_then_get_round_trips(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .create_org(json!({ "name": "  Globex  ", "external_id": "tenant-1", "domains": ["Globex.COM", "globex.io."] }))
        .await;
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let org: Value = r.json().await.unwrap();
    assert_eq!(org["object"], "organization");
    assert_eq!(org["name"], "Globex");
    assert_eq!(org["external_id"], "tenant-1");
    assert_eq!(
        org["domains"],
        json!([{ "domain": "globex.com", "state": "pending" }, { "domain": "globex.io", "state": "pending" }])
    );
    assert_eq!(location, format!("/api/v1/organizations/{}", org["id"].as_str().unwrap()));

    let fetched: Value = app.get(&location.replace("/api/v1", "")).await.json().await.unwrap();
    assert_eq!(fetched, org);
}

async fn invalid_bodies_get_precise_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = assert_problem(app.create_org(json!({ "name": "" })).await, 422).await;
    assert_eq!(body["errors"][0]["field"], "name");

    let body = assert_problem(
        app.create_org(json!({ "name": "A", "domains": ["ok.com", "not a domain", "ok.com"] })).await,
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["domains[1]", "domains[2]"]);

    let body = assert_problem(app.create_org(json!({ "name": "A", "colour": "red" })).await, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("colour"), "{body}");

    assert_problem(app.create_org(json!({ "external_id": "x" })).await, 422).await;
    assert_problem(app.create_org(json!({ "name": 42 })).await, 422).await;

    let r = app
        .api(Method::POST, "/organizations")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    let body = assert_problem(r, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("malformed JSON"));

    let r = app.api(Method::POST, "/organizations").body("{\"name\":\"A\"}").send().await.unwrap();
    assert_problem(r, 415).await;

    // NUL (PostgreSQL text refuses it) is refused alike on both engines;
    // an escaped backslash before "u0000" is ordinary text.
    let body = assert_problem(app.create_org(json!({ "name": "A", "external_id": "A\u{0}B" })).await, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("NUL"), "{body}");
    let fine = app.create_org(json!({ "name": "C:\\u0000" })).await;
    assert_eq!(fine.status(), 201);
    let fine: Value = fine.json().await.unwrap();
    assert_eq!(fine["name"], "C:\\u0000");
    assert_eq!(
        app.api(Method::DELETE, &format!("/organizations/{}", fine["id"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_problem(app.get("/organizations?external_id=%00").await, 400).await;

    let huge = json!({ "name": "A", "domains": vec!["x".repeat(60); 5000] });
    assert_problem(app.create_org(huge).await, 413).await;

    // Nothing was stored by any of the rejected requests.
    let list: Value = app.get("/organizations").await.json().await.unwrap();
    assert_eq!(list["data"], json!([]));
}

async fn external_id_is_unique(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.create_org(json!({ "name": "One", "external_id": "dup" })).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let body = assert_problem(app.create_org(json!({ "name": "Two", "external_id": "dup" })).await, 409).await;
    assert!(body["detail"].as_str().unwrap().contains("external_id"));

    let second = app.org("Three").await;
    let id = second["id"].as_str().unwrap();
    let r = app
        .api(Method::PATCH, &format!("/organizations/{id}"))
        .json(&json!({ "external_id": "dup" }))
        .send()
        .await
        .unwrap();
    assert_problem(r, 409).await;
    // The failed update changed nothing.
    let unchanged: Value = app.get(&format!("/organizations/{id}")).await.json().await.unwrap();
    assert_eq!(unchanged, second);
    let list: Value = app.get("/organizations?external_id=dup").await.json().await.unwrap();
    assert_eq!(list["data"], json!([first]));
}

async fn list_paginates_with_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.org(&format!("Org {i}")).await["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut path = "/organizations?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page: Value = app.get(&path).await.json().await.unwrap();
        assert_eq!(page["object"], "list");
        pages += 1;
        for org in page["data"].as_array().unwrap() {
            seen.push(org["id"].as_str().unwrap().to_owned());
        }
        match page["list_metadata"]["after"].as_str() {
            Some(cursor) => path = format!("/organizations?limit=2&after={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "every organization once, in creation order");

    assert_problem(app.get("/organizations?after=not-a-cursor").await, 400).await;
    assert_problem(app.get("/organizations?limit=0").await, 422).await;
    assert_problem(app.get("/organizations?limit=101").await, 422).await;
    assert_problem(app.get("/organizations?limit=abc").await, 400).await;
    assert_problem(app.get("/organizations?colour=red").await, 400).await;
}

async fn list_filters_by_domain_and_external_id(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_org(json!({ "name": "A", "domains": ["a.com"], "external_id": "ea" })).await;
    let b: Value =
        app.create_org(json!({ "name": "B", "domains": ["b.com", "shared.com"] })).await.json().await.unwrap();
    let by_domain: Value = app.get("/organizations?domain=B.com").await.json().await.unwrap();
    assert_eq!(by_domain["data"], json!([b]));
    let by_ext: Value = app.get("/organizations?external_id=ea").await.json().await.unwrap();
    assert_eq!(by_ext["data"][0]["name"], "A");
    assert_eq!(by_ext["data"].as_array().unwrap().len(), 1);
    let none: Value = app.get("/organizations?domain=nobody.com").await.json().await.unwrap();
    assert_eq!(none["data"], json!([]));
    assert_problem(app.get("/organizations?domain=http://x").await, 422).await;
}

async fn update_changes_only_given_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let org: Value = app
        .create_org(json!({ "name": "Initech", "external_id": "i-1", "domains": ["initech.com", "initrode.com"] }))
        .await
        .json()
        .await
        .unwrap();
    let id = org["id"].as_str().unwrap();
    let path = format!("/organizations/{id}");

    let r = app.api(Method::PATCH, &path).json(&json!({ "name": "Initech Inc" })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let renamed: Value = r.json().await.unwrap();
    assert_eq!(renamed["name"], "Initech Inc");
    assert_eq!(renamed["external_id"], "i-1");
    assert_eq!(renamed["domains"], org["domains"]);
    assert_ne!(renamed["updated_at"], org["updated_at"]);
    assert_eq!(renamed["created_at"], org["created_at"]);

    let r = app
        .api(Method::PATCH, &path)
        .json(&json!({ "external_id": null, "domains": ["initech.com", "initech.io"] }))
        .send()
        .await
        .unwrap();
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["external_id"], Value::Null);
    assert_eq!(
        updated["domains"],
        json!([{ "domain": "initech.com", "state": "pending" }, { "domain": "initech.io", "state": "pending" }])
    );

    let r = app.api(Method::PATCH, &path).json(&json!({ "name": " " })).send().await.unwrap();
    assert_problem(r, 422).await;
    let r = app
        .api(Method::PATCH, &format!("/organizations/{}", uuid::Uuid::now_v7()))
        .json(&json!({ "name": "Ghost" }))
        .send()
        .await
        .unwrap();
    assert_problem(r, 404).await;
    let after: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(after, updated, "rejected updates leave the organization as it was");
}

async fn delete_removes_and_missing_is_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Hooli").await;
    let path = format!("/organizations/{}", org["id"].as_str().unwrap());
    let r = app.api(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_problem(app.get(&path).await, 404).await;
    assert_problem(app.api(Method::DELETE, &path).send().await.unwrap(), 404).await;
    let never = format!("/organizations/{}", uuid::Uuid::now_v7());
    let body = assert_problem(app.api(Method::DELETE, &never).send().await.unwrap(), 404).await;
    assert!(body["detail"].as_str().unwrap().contains("not found"));
    assert_problem(app.api(Method::DELETE, "/organizations/not-a-uuid").send().await.unwrap(), 404).await;
}

async fn changes_are_recorded_as_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.org("Umbrella").await;
    let id: uuid::Uuid = org["id"].as_str().unwrap().parse().unwrap();
    let path = format!("/organizations/{id}");
    app.api(Method::PATCH, &path).json(&json!({ "name": "Umbrella Corp" })).send().await.unwrap();
    // An empty PATCH changes nothing and records nothing.
    let same = app.api(Method::PATCH, &path).json(&json!({})).send().await.unwrap();
    assert_eq!(same.status(), 200);
    assert_eq!(same.json::<serde_json::Value>().await.unwrap()["name"], "Umbrella Corp");
    app.api(Method::DELETE, &path).send().await.unwrap();
    // A rejected request records nothing.
    app.create_org(json!({ "name": "" })).await;

    let events = app.store.list_events(Some(id), None, 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["organization.created", "organization.updated", "organization.deleted"]);
    assert_eq!(events[0].data.0, org);
    assert_eq!(events[1].data.0["name"], "Umbrella Corp");
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "ids are time-ordered");
    assert_eq!(events[0].id.get_version_num(), 7);
    let all = app.store.list_events(None, None, 100).await.unwrap();
    assert_eq!(all.len(), 3);
}

async fn unknown_routes_and_methods_are_problems(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_problem(app.get("/nothing-here").await, 404).await;
    assert_problem(app.api(Method::PUT, "/organizations").send().await.unwrap(), 405).await;
}

both_backends!(
    create_then_get_round_trips,
    invalid_bodies_get_precise_problems,
    external_id_is_unique,
    list_paginates_with_cursor,
    list_filters_by_domain_and_external_id,
    update_changes_only_given_fields,
    delete_removes_and_missing_is_404,
    changes_are_recorded_as_events,
    unknown_routes_and_methods_are_problems,
);
