//! Spawns a real Portico on port 0 with an isolated database: a temp SQLite
//! file, or a freshly created PostgreSQL database.

use std::path::PathBuf;

use portico_server::clock::TestClock;
use portico_server::config::Settings;
use portico_server::startup::Application;
use portico_server::store::Store;
use secrecy::ExposeSecret;
use serde_json::Value;
use uuid::Uuid;

pub use crate::peers::{DnsPeer, python};

/// Which engine a test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Base URL of the PostgreSQL server used by tests; `scripts/test` provides it.
pub fn postgres_admin_url() -> String {
    std::env::var("PORTICO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://portico:portico@127.0.0.1:5432/postgres".into())
}

/// A test's database; dropping it removes it (the SQLite file's temp dir,
/// or the PostgreSQL database), so runs leave nothing behind.
pub struct TestDb {
    _dir: Option<tempfile::TempDir>,
    postgres: Option<String>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres.take() else { return };
        // Drop runs inside the test's runtime: do the async work on a thread
        // of its own. FORCE ends the connections the app still holds.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            // Not a test failure: scripts/test drops leftovers before each run.
            eprintln!("could not drop a test database: {e}");
        }
    }
}

/// A fresh, empty database URL for `backend`, plus the guard that removes
/// it when the test ends.
pub async fn fresh_database(backend: Backend) -> (String, TestDb) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("portico.db").display());
            (url, TestDb { _dir: Some(dir), postgres: None })
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                panic!("PostgreSQL tests need a server at {admin} (run ./scripts/test or set PORTICO_TEST_POSTGRES_URL): {e}")
            });
            let name = format!("portico_test_{}", Uuid::new_v4().simple());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            conn.close().await.ok();
            let (base, _) = admin.rsplit_once('/').expect("database URL has a path");
            (format!("{base}/{name}"), TestDb { _dir: None, postgres: Some(name) })
        }
    }
}

/// Settings for a test instance on `database_url`.
pub fn test_settings(database_url: String) -> Settings {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url,
        database_max_connections: 5,
        ..Default::default()
    };
    settings.vendor.name = "Acme Analytics".into();
    settings.site_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/site");
    settings.encryption_key = Some(portico_server::crypto::Cipher::generate_base64());
    // Fast retries and polling keep delivery tests short.
    settings.webhooks.retry_base_ms = 200;
    settings.webhooks.poll_ms = 100;
    // No test asks the outside world's DNS; domain tests start a DnsPeer.
    settings.domains.worker = false;
    settings.domains.nameservers = vec!["127.0.0.1:9".into()];
    settings.domains.timeout_ms = 300;
    // The test peers (IdPs, DNS, webhook receivers) live on loopback; the
    // SSRF tests narrow this explicitly.
    settings.outbound.allow_private = vec!["127.0.0.1".into()];
    settings
}

/// A running Portico with an API key and a typed HTTP client.
pub struct TestApp {
    pub address: String,
    pub api_key: String,
    pub store: Store,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The app's clock: real time, plus whatever the test skips.
    pub clock: TestClock,
    _db: TestDb,
}

/// Starts Portico for one test.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts Portico with settings adjusted by `configure`.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    portico_server::telemetry::init_for_tests();
    let (url, db) = fresh_database(backend).await;
    let mut settings = test_settings(url.clone());
    configure(&mut settings);
    let clock = TestClock::default();
    let store = Store::connect(&settings.database_url, settings.database_max_connections)
        .await
        .expect("connect store")
        .with_clock(std::sync::Arc::new(clock.clone()));
    let app = Application::build_with_store(settings, store).await.expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    let key = store.create_api_key("tests", false).await.expect("api key");
    TestApp {
        address,
        api_key: key.key.expose_secret().to_owned(),
        store,
        // A request that never answers fails its test (naming the URL)
        // instead of holding the whole run until CI's limit.
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap(),
        database_url: url,
        clock,
        _db: db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// An authenticated request to `/api/v1{path}`.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(&format!("/api/v1{path}"))).bearer_auth(&self.api_key)
    }

    pub async fn create_org(&self, body: Value) -> reqwest::Response {
        self.api(reqwest::Method::POST, "/organizations").json(&body).send().await.expect("request")
    }

    /// Creates an organization that must succeed; returns its JSON.
    pub async fn org(&self, name: &str) -> Value {
        let r = self.create_org(serde_json::json!({ "name": name })).await;
        assert_eq!(r.status(), 201, "creating {name}");
        r.json().await.unwrap()
    }

    /// Creates a portal link; returns the response.
    pub async fn create_link(&self, body: Value) -> reqwest::Response {
        self.api(reqwest::Method::POST, "/portal/links").json(&body).send().await.expect("request")
    }

    /// Creates a portal link that must succeed; returns its JSON.
    pub async fn link(&self, org_id: &str, intents: &[&str]) -> Value {
        let r = self.create_link(serde_json::json!({ "organization_id": org_id, "intents": intents })).await;
        assert_eq!(r.status(), 201, "creating a link");
        r.json().await.unwrap()
    }

    /// Opens a portal link like a browser would (no redirects followed).
    pub async fn open_link(&self, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("open link")
    }

    /// Opens `url` and returns the session cookie pair (`name=value`).
    pub async fn session_from(&self, url: &str) -> String {
        let r = self.open_link(url, &[]).await;
        assert_eq!(r.status(), 303, "link opens");
        let set_cookie = r.headers()["set-cookie"].to_str().unwrap();
        set_cookie.split(';').next().unwrap().to_owned()
    }

    /// GET a portal page with the session cookie.
    pub async fn page(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send().await.expect("page")
    }

    /// An API call with an optional JSON body; returns the status and the
    /// JSON answer (`Null` when there is none).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.api(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// `POST /sso/token` for `code`; returns the response.
    pub async fn redeem(&self, code: &str) -> reqwest::Response {
        self.client
            .post(self.url("/sso/token"))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.api(reqwest::Method::GET, path).send().await.expect("request")
    }
}

/// Asserts `response` is a problem document with `status`; returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("urn:portico:problem:"), "{body}");
    assert!(body["title"].is_string());
    body
}

/// Generates a `#[tokio::test]` per backend for each listed `async fn(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}
