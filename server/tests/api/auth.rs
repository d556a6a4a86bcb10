//! API-key authentication.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::{Backend, assert_problem, spawn_app};

async fn missing_or_wrong_keys_get_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.url("/api/v1/organizations");
    let no_key = app.client.get(&url).send().await.unwrap();
    assert_eq!(no_key.headers()["www-authenticate"], "Bearer realm=\"portico\"");
    let body = assert_problem(no_key, 401).await;
    assert_eq!(body["type"], "urn:portico:problem:unauthorized");

    // Same lookup part, different secret: must not authenticate.
    let mut tampered = app.api_key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "psk_", "psk_short", "not-a-key", ""] {
        let r = app.client.get(&url).bearer_auth(bad).send().await.unwrap();
        assert_problem(r, 401).await;
    }
    let basic = app.client.get(&url).basic_auth("user", Some(&app.api_key)).send().await.unwrap();
    assert_problem(basic, 401).await;
    // Writes are protected too, and a rejected write changes nothing.
    let r = app.client.post(&url).json(&serde_json::json!({ "name": "X" })).send().await.unwrap();
    assert_problem(r, 401).await;
    assert_eq!(app.get("/organizations").await.status(), 200);
}

async fn keys_are_stored_hashed_and_cannot_be_read_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.store.create_api_key("ci", false).await.unwrap();
    let key = secrecy::ExposeSecret::expose_secret(&created.key).to_owned();
    assert!(key.starts_with("psk_") && key.len() >= 50, "high-entropy key");

    let rows = raw_key_rows(&app.database_url).await;
    assert_eq!(rows.len(), 2);
    let expected_hash = Sha256::digest(key.as_bytes()).to_vec();
    assert!(rows.iter().any(|(_, _, hash)| *hash == expected_hash), "SHA-256 of the key is stored");
    for (name, lookup, hash) in &rows {
        assert!(!key.contains(name.as_str()) || name.len() < 4);
        assert!(lookup.len() < 16, "only a short lookup id is stored in clear");
        assert!(!String::from_utf8_lossy(hash).contains(&key));
    }
    // The listing carries no secret material at all.
    let listed = serde_json::to_string(&app.store.list_api_keys().await.unwrap()).unwrap();
    assert!(!listed.contains(&key[4..20]));
    assert!(!listed.contains("hash"));

    // The key works until revoked.
    let url = app.url("/api/v1/organizations");
    assert_eq!(app.client.get(&url).bearer_auth(&key).send().await.unwrap().status(), 200);
    assert!(app.store.revoke_api_key(created.info.id).await.unwrap());
    assert_problem(app.client.get(&url).bearer_auth(&key).send().await.unwrap(), 401).await;
    assert!(!app.store.revoke_api_key(Uuid::now_v7()).await.unwrap());
    let listed = app.store.list_api_keys().await.unwrap();
    assert!(listed.iter().any(|k| k.id == created.info.id && k.revoked_at.is_some()));
}

async fn replace_revokes_keys_of_the_same_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.store.create_api_key("local-dev", true).await.unwrap();
    let second = app.store.create_api_key("local-dev", true).await.unwrap();
    let url = app.url("/api/v1/organizations");
    let status = |key: &secrecy::SecretString| {
        let req = app.client.get(&url).bearer_auth(secrecy::ExposeSecret::expose_secret(key));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&first.key).await, 401);
    assert_eq!(status(&second.key).await, 200);
    // Other names are untouched.
    assert_eq!(app.get("/organizations").await.status(), 200);
}

/// Reads the api_keys table directly, as an attacker with a database dump would.
async fn raw_key_rows(url: &str) -> Vec<(String, String, Vec<u8>)> {
    use sqlx::Connection;
    if url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as("SELECT name, lookup, secret_hash FROM api_keys").fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as("SELECT name, lookup, secret_hash FROM api_keys").fetch_all(&mut c).await.unwrap()
    }
}

both_backends!(
    missing_or_wrong_keys_get_401,
    keys_are_stored_hashed_and_cannot_be_read_back,
    replace_revokes_keys_of_the_same_name,
);
