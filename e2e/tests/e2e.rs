//! Browser tests: Debian Chromium driven by playwright-rs against a real
//! Portico started in-process on a random port with a temp SQLite database.
//!
//! Needs the site built by Trunk (`target/site/pkg`) and
//! `PLAYWRIGHT_DRIVER_PATH`; `./scripts/test` provides both.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use playwright_rs::LaunchOptions;
use playwright_rs::{Browser, Playwright};
use portico_server::config::Settings;
use portico_server::startup::Application;

#[path = "../../server/tests/peers/peers.rs"]
#[allow(dead_code)]
mod peers;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where screenshots go: `target/e2e-output/`.
fn output_dir() -> PathBuf {
    let dir = workspace().join("target/e2e-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts Portico serving the site from `site_root`; returns its base URL.
async fn start_portico(site_root: PathBuf) -> (String, tempfile::TempDir) {
    let (url, dir, _) = start_portico_with(site_root, |_| {}).await;
    (url, dir)
}

/// As [`start_portico`], with adjusted settings; also returns an API key.
async fn start_portico_with(
    site_root: PathBuf,
    configure: impl FnOnce(&mut Settings),
) -> (String, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}", dir.path().join("e2e.db").display()),
        site_root,
        ..Default::default()
    };
    settings.vendor.name = "Acme Analytics".into();
    settings.outbound.allow_private = vec!["127.0.0.1".into()];
    configure(&mut settings);
    let app = Application::build(settings).await.expect("start portico");
    let url = format!("http://127.0.0.1:{}", app.port());
    let key = app.store().create_api_key("e2e", false).await.unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    (url, dir, secrecy_expose(&key.key))
}

fn secrecy_expose(s: &secrecy::SecretString) -> String {
    use secrecy::ExposeSecret;
    s.expose_secret().to_owned()
}

fn built_site() -> PathBuf {
    let site = workspace().join("target/site");
    assert!(
        site.join("pkg/portico-frontend_bg.wasm").is_file(),
        "the wasm bundle is missing: build it with `trunk build --release` (./scripts/test does)"
    );
    site
}

async fn chromium(pw: &Playwright) -> Browser {
    let executable = std::env::var("PORTICO_E2E_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let options = LaunchOptions::new()
        .executable_path(executable)
        .headless(true)
        .args(args.iter().map(|a| a.to_string()).collect());
    pw.chromium().launch_with_options(options).await.expect("launch Debian Chromium")
}

/// Collects Content-Security-Policy violations the page reports (Chromium
/// logs each as a console error): the portal must hydrate under its CSP.
async fn watch_csp(page: &playwright_rs::Page) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    page.on_console(move |msg| {
        let sink = sink.clone();
        async move {
            let text = msg.text().to_owned();
            if text.contains("Content Security Policy") || text.contains("Content-Security-Policy") {
                sink.lock().unwrap().push(text);
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    seen
}

/// Waits until `condition` (a JavaScript expression) is true in `page`.
/// Polls from here: Playwright's own `wait_for_function` evaluates strings
/// inside the page, which the portal's CSP (no `unsafe-eval`) forbids.
async fn wait_until(page: &playwright_rs::Page, condition: &str) -> Result<(), String> {
    let expression = format!("(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()");
    for _ in 0..300 {
        if let Ok(serde_json::Value::Bool(true)) = page.evaluate::<(), serde_json::Value>(&expression, None).await {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(format!("timed out after 30 s waiting for {condition}"))
}

fn assert_no_csp_violation(seen: &Mutex<Vec<String>>) {
    let seen = seen.lock().unwrap();
    assert!(seen.is_empty(), "CSP violations: {seen:?}");
}

#[tokio::test]
async fn landing_page_hydrates_and_responds_to_clicks() {
    let (base, _db) = start_portico(built_site()).await;
    let pw = Playwright::launch().await.expect("playwright driver (PLAYWRIGHT_DRIVER_PATH)");
    let browser = chromium(&pw).await;
    let page = browser.new_page().await.unwrap();
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = errors.clone();
    page.on_console(move |msg| {
        let sink = sink.clone();
        async move {
            if msg.type_() == "error" {
                sink.lock().unwrap().push(msg.text().to_owned());
            }
            Ok(())
        }
    })
    .await
    .unwrap();

    let response = page.goto(&format!("{base}/"), None).await.unwrap().expect("navigation response");
    assert_eq!(response.status(), 200);

    let heading = page.locator("h1");
    assert_eq!(heading.text_content().await.unwrap().as_deref(), Some("A portal link is required"));
    let eyebrow = page.locator(".eyebrow");
    assert_eq!(eyebrow.text_content().await.unwrap().as_deref(), Some("Acme Analytics admin portal"));

    // Only the wasm sets this (an Effect), so it proves hydration ran.
    wait_until(&page, "document.querySelector('main').dataset.hydrated === 'true'")
        .await
        .expect("the wasm bundle loaded and hydrated the page");

    let button = page.locator("button[aria-controls=link-help]");
    assert_eq!(button.get_attribute("aria-expanded").await.unwrap().as_deref(), Some("false"));
    assert_eq!(page.locator("#link-help").count().await.unwrap(), 0);
    button.click(None).await.unwrap();
    let help = page.locator("#link-help");
    assert!(help.inner_text().await.unwrap().contains("Getting a portal link"));
    assert_eq!(button.get_attribute("aria-expanded").await.unwrap().as_deref(), Some("true"));
    assert_eq!(button.inner_text().await.unwrap(), "Hide help");

    let shot = output_dir().join("landing.png");
    let png = page.screenshot_to_file(&shot, None).await.unwrap();
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "screenshot written to {}", shot.display());

    button.click(None).await.unwrap();
    assert_eq!(page.locator("#link-help").count().await.unwrap(), 0);

    assert!(errors.lock().unwrap().is_empty(), "console errors: {:?}", errors.lock().unwrap());
    browser.close().await.unwrap();
}

/// The CSP really is enforced (and `watch_csp` really sees violations): a
/// script injected into the page is refused, while the page still hydrated.
#[tokio::test]
async fn injected_scripts_are_refused_by_the_csp() {
    let (base, _db) = start_portico(built_site()).await;
    let pw = Playwright::launch().await.expect("playwright driver (PLAYWRIGHT_DRIVER_PATH)");
    let browser = chromium(&pw).await;
    let page = browser.new_page().await.unwrap();
    let csp = watch_csp(&page).await;
    page.goto(&format!("{base}/"), None).await.unwrap();
    wait_until(&page, "document.querySelector('main').dataset.hydrated === 'true'")
        .await
        .expect("hydrated under the CSP");
    assert_no_csp_violation(&csp);
    let _: serde_json::Value = page
        .evaluate::<(), _>(
            "(() => { const s = document.createElement('script'); s.textContent = 'window.__injected = 1'; \
             document.body.appendChild(s); return null; })()",
            None,
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let injected: serde_json::Value = page.evaluate::<(), _>("window.__injected ?? null", None).await.unwrap();
    assert_eq!(injected, serde_json::Value::Null, "the injected script did not run");
    assert!(!csp.lock().unwrap().is_empty(), "the violation was reported");
    browser.close().await.unwrap();
}

/// Negative control: with no wasm to load, the page renders but never
/// hydrates, so the hydration check above can really fail.
#[tokio::test]
async fn without_the_wasm_bundle_the_page_does_not_hydrate() {
    let empty_site = tempfile::tempdir().unwrap();
    let (base, _db) = start_portico(empty_site.path().to_path_buf()).await;
    let pw = Playwright::launch().await.expect("playwright driver (PLAYWRIGHT_DRIVER_PATH)");
    let browser = chromium(&pw).await;
    let page = browser.new_page().await.unwrap();
    page.goto(&format!("{base}/"), None).await.unwrap();
    assert_eq!(
        page.locator("h1").text_content().await.unwrap().as_deref(),
        Some("A portal link is required"),
        "server rendering works without JS"
    );
    page.locator("button[aria-controls=link-help]").click(None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(page.locator("#link-help").count().await.unwrap(), 0, "no wasm, no interactivity");
    let hydrated: String = page.evaluate_value("document.querySelector('main').dataset.hydrated").await.unwrap();
    assert_eq!(hydrated, "false");
    browser.close().await.unwrap();
}

/// A vendor page on its own origin that frames `portal_url` and records every
/// message from the portal in `window.__portico`.
async fn vendor_page(listener: tokio::net::TcpListener, portal_url: String) {
    let html = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Vendor settings</title></head>
<body style="font-family:sans-serif;margin:16px"><h1>Vendor settings</h1>
<script>
  window.__portico = [];
  window.addEventListener("message", (e) => {{
    if (e.data && e.data.source === "portico") window.__portico.push({{ origin: e.origin, ...e.data }});
  }});
</script>
<iframe id="portal" title="Admin portal" src="{portal_url}" style="width:1000px;height:560px;border:1px solid #ccc"></iframe>
</body></html>"#
    );
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(html) }));
    axum::serve(listener, app).await.unwrap();
}

/// Creates an organization and a portal link with `intents` for it; returns
/// the organization id and the link on the test server.
async fn create_link(base: &str, key: &str, org_name: &str, intents: &[&str]) -> (String, String) {
    let client = reqwest::Client::new();
    let org: serde_json::Value = client
        .post(format!("{base}/api/v1/organizations"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "name": org_name }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org_id = org["id"].as_str().unwrap().to_owned();
    let link: serde_json::Value = client
        .post(format!("{base}/api/v1/portal/links"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "organization_id": org_id, "intents": intents, "return_url": "https://vendor.test/settings" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Links name the configured public URL; the test server listens elsewhere.
    (org_id, link["url"].as_str().unwrap().replace("http://127.0.0.1:8080", base))
}

#[tokio::test]
async fn portal_embeds_in_an_allowed_origin_and_is_refused_elsewhere() {
    let allowed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed_origin = format!("http://127.0.0.1:{}", allowed.local_addr().unwrap().port());
    let refused_origin = format!("http://127.0.0.1:{}", refused.local_addr().unwrap().port());
    let embed = allowed_origin.clone();
    let (base, _db, key) = start_portico_with(built_site(), move |s| s.portal.embed_origins = vec![embed]).await;

    let (org_id, link) = create_link(&base, &key, "Globex", &["sso", "dsync"]).await;
    tokio::spawn(vendor_page(allowed, link));
    let (_, other_link) = create_link(&base, &key, "Initech", &["sso", "dsync"]).await;
    tokio::spawn(vendor_page(refused, other_link));

    let pw = Playwright::launch().await.expect("playwright driver (PLAYWRIGHT_DRIVER_PATH)");
    let browser = chromium(&pw).await;

    // Allowed: the portal loads inside the iframe and announces itself.
    let page = browser.new_page().await.unwrap();
    let csp = watch_csp(&page).await;
    page.goto(&format!("{allowed_origin}/"), None).await.unwrap();
    wait_until(&page, "window.__portico.some(m => m.type === 'portal.loaded')")
        .await
        .expect("the parent received portal.loaded");
    let messages: serde_json::Value = page.evaluate::<(), _>("window.__portico", None).await.unwrap();
    let loaded = messages.as_array().unwrap().iter().find(|m| m["type"] == "portal.loaded").unwrap();
    assert_eq!(loaded["origin"], base, "sent by the portal's origin");
    assert_eq!(loaded["organization_id"], org_id);
    assert_eq!(loaded["version"], 1);
    assert_eq!(loaded["data"]["path"], "/portal");
    assert_eq!(loaded["data"]["intents"], serde_json::json!(["sso", "dsync"]));
    let frame = page.frame_locator("#portal");
    let org_line = frame.locator(".org-name");
    assert_eq!(org_line.text_content().await.unwrap().as_deref(), Some("Admin portal for Globex"));
    assert_eq!(frame.locator(".portal-nav a").count().await.unwrap(), 3, "overview + the two intents of the link");
    // Navigation inside the frame keeps the (partitioned) session.
    frame.locator(".portal-nav a[href='/portal/directory-sync']").click(None).await.unwrap();
    wait_until(
        &page,
        "window.__portico.some(m => m.type === 'portal.loaded' && m.data.path === '/portal/directory-sync')",
    )
    .await
    .expect("second page in the frame is still in the session");
    assert_eq!(frame.locator("h1").text_content().await.unwrap().as_deref(), Some("Directory sync"));
    let shot = output_dir().join("embedded-portal.png");
    page.screenshot_to_file(&shot, None).await.unwrap();
    assert_no_csp_violation(&csp);

    // Refused: another origin may not frame the portal.
    let page = browser.new_page().await.unwrap();
    let console = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = console.clone();
    page.on_console(move |msg| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().push(msg.text().to_owned());
            Ok(())
        }
    })
    .await
    .unwrap();
    page.goto(&format!("{refused_origin}/"), None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let messages: serde_json::Value = page.evaluate::<(), _>("window.__portico", None).await.unwrap();
    assert_eq!(messages, serde_json::json!([]), "a refused embedder hears nothing");
    assert_eq!(page.frame_locator("#portal").locator(".org-name").count().await.unwrap(), 0, "portal not rendered");
    let logged = console.lock().unwrap().join("\n");
    assert!(logged.contains("frame-ancestors"), "blocked by CSP frame-ancestors: {logged}");
    page.screenshot_to_file(&output_dir().join("embedding-refused.png"), None).await.unwrap();
    browser.close().await.unwrap();
}

/// Domain verification end to end: the IT admin adds a domain in the portal,
/// the record goes live on a real DNS server, Verify now shows Verified.
#[tokio::test]
async fn domain_is_verified_from_the_portal() {
    let dns = peers::DnsPeer::start().await;
    let nameserver = dns.address.clone();
    let (base, _db, key) = start_portico_with(built_site(), move |s| {
        s.domains.nameservers = vec![nameserver];
        s.domains.timeout_ms = 500;
        s.domains.worker = false;
    })
    .await;
    let (org_id, link) = create_link(&base, &key, "Hooli", &["domain_verification"]).await;

    let pw = Playwright::launch().await.expect("playwright driver (PLAYWRIGHT_DRIVER_PATH)");
    let browser = chromium(&pw).await;
    let page = browser.new_page().await.unwrap();
    let csp = watch_csp(&page).await;
    page.goto(&link, None).await.unwrap();
    page.goto(&format!("{base}/portal/domains"), None).await.unwrap();
    wait_until(&page, "document.querySelector('.domains-panel')?.dataset.hydrated === 'true'")
        .await
        .expect("the portal hydrated");
    assert_eq!(page.locator("h1").text_content().await.unwrap().as_deref(), Some("Domain verification"));

    // A bad name gets a readable error and adds nothing.
    page.locator("#domain-input").fill("not a domain", None).await.unwrap();
    page.locator(".add-domain button[type=submit]").click(None).await.unwrap();
    wait_until(&page, "document.querySelector('[role=alert].error')?.textContent.includes('Enter a domain name')")
        .await
        .expect("a readable error for a bad domain");
    assert_eq!(page.locator(".domain-card").count().await.unwrap(), 0);

    page.locator("#domain-input").fill("hooli.xyz", None).await.unwrap();
    page.locator(".add-domain button[type=submit]").click(None).await.unwrap();
    let card = page.locator(".domain-card[data-domain='hooli.xyz']");
    card.wait_for(None).await.expect("the domain card appears");
    wait_until(&page, "document.querySelector('#domain-input').value === ''")
        .await
        .expect("the field is cleared after adding");
    assert_eq!(card.get_attribute("data-state").await.unwrap().as_deref(), Some("pending"));
    let codes = card.locator(".record code");
    assert_eq!(codes.nth(1).text_content().await.unwrap().as_deref(), Some("_portico-verification"));
    let value = codes.nth(2).text_content().await.unwrap().unwrap();
    assert!(value.starts_with("portico-verification="), "{value}");

    // Not published yet: Verify now reports what DNS said.
    card.locator("button.verify").click(None).await.unwrap();
    wait_until(&page, "document.querySelector(\".domain-card[data-domain='hooli.xyz'] [data-testid=last-result]\").textContent.includes('NXDOMAIN')").await
    .expect("the failed check is explained");

    dns.publish(serde_json::json!({ "_portico-verification.hooli.xyz": [[value]] }), &[]);
    card.locator("button.verify").click(None).await.unwrap();
    wait_until(
        &page,
        "document.querySelector(\".domain-card[data-domain='hooli.xyz']\")?.dataset.state === 'verified'",
    )
    .await
    .expect("the domain shows as verified");
    assert_eq!(card.locator(".badge").text_content().await.unwrap().as_deref(), Some("Verified"));
    page.screenshot_to_file(&output_dir().join("domain-verified.png"), None).await.unwrap();

    // The vendor's API agrees.
    let found: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/domains/lookup?email=gavin@hooli.xyz"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["organization_id"], org_id);
    assert_no_csp_violation(&csp);
    browser.close().await.unwrap();
}

/// Directory sync end to end: the IT admin creates a directory in the
/// portal, copies its URL and token; the IdP's first SCIM request activates
/// it; the token is shown only once.
#[tokio::test]
async fn directory_is_created_in_the_portal_and_activated_by_the_idp() {
    let (base, _db, key) = start_portico_with(built_site(), |_| {}).await;
    let (_, link) = create_link(&base, &key, "Pied Piper", &["dsync"]).await;
    let pw = Playwright::launch().await.expect("playwright driver (PLAYWRIGHT_DRIVER_PATH)");
    let browser = chromium(&pw).await;
    let page = browser.new_page().await.unwrap();
    let csp = watch_csp(&page).await;
    page.goto(&link, None).await.unwrap();
    page.goto(&format!("{base}/portal/directory-sync"), None).await.unwrap();
    wait_until(&page, "document.querySelector('.directories-panel')?.dataset.hydrated === 'true'")
        .await
        .expect("the portal hydrated");

    page.locator("#directory-name").fill("Employees", None).await.unwrap();
    page.locator("#directory-provider").select_option("entra", None).await.unwrap();
    page.locator(".add-domain button[type=submit]").click(None).await.unwrap();
    let card = page.locator(".directory-card");
    card.wait_for(None).await.expect("the directory card appears");
    assert_eq!(card.get_attribute("data-state").await.unwrap().as_deref(), Some("pending"));
    assert!(card.inner_text().await.unwrap().contains("Microsoft Entra ID"));
    let token = page.locator(".fresh-token code").text_content().await.unwrap().unwrap();
    assert!(token.starts_with("scim_"), "{token}");
    let scim_base = card.locator(".record code").first().text_content().await.unwrap().unwrap();
    let scim_base = scim_base.replace("http://127.0.0.1:8080", &base);

    // The IdP connects with what the admin copied.
    let r = reqwest::Client::new()
        .get(format!("{scim_base}/ServiceProviderConfig"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // It provisions a user and a group, and sends one bad request.
    let scim = |method: reqwest::Method, path: &str| {
        reqwest::Client::new()
            .request(method, format!("{scim_base}{path}"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
    };
    let user = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@piedpiper.example",
        "name": { "givenName": "Ada", "familyName": "Lovelace" },
        "emails": [{ "value": "ada@piedpiper.example", "primary": true }],
        "active": true
    });
    let created: serde_json::Value =
        scim(reqwest::Method::POST, "/Users").body(user.to_string()).send().await.unwrap().json().await.unwrap();
    let group = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Engineering",
        "members": [{ "value": created["id"] }]
    });
    assert_eq!(scim(reqwest::Method::POST, "/Groups").body(group.to_string()).send().await.unwrap().status(), 201);
    let bad = scim(reqwest::Method::GET, "/Users?filter=userName%20zz%20%22x%22").send().await.unwrap();
    assert_eq!(bad.status(), 400);

    // After a reload: active, and the token is not shown again.
    page.reload(None).await.unwrap();
    wait_until(&page, "document.querySelector('.directory-card')?.dataset.state === 'active'")
        .await
        .expect("the directory shows as active");
    assert_eq!(page.locator(".fresh-token").count().await.unwrap(), 0);
    assert!(!page.content().await.unwrap().contains(&token), "the token is never shown twice");

    // The directory page shows what the IdP did: users, groups, last sync and
    // the request log with the failed request's reason (the log is written in
    // batches: refresh until it is there).
    card.locator("tr[data-user='ada@piedpiper.example']").wait_for(None).await.expect("the user is listed");
    let user_row = card.locator("tr[data-user='ada@piedpiper.example']").inner_text().await.unwrap();
    assert!(user_row.contains("Ada Lovelace") && user_row.contains("active"), "{user_row}");
    let group_row = card.locator("tr[data-group='Engineering']").inner_text().await.unwrap();
    assert!(group_row.contains('1'), "one member: {group_row}");
    for _ in 0..20 {
        if card.locator("tr.request.client-error").count().await.unwrap() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        card.locator("button.refresh").click(None).await.unwrap();
    }
    let requests = card.locator("table.requests").inner_text().await.unwrap();
    assert!(card.locator("tr.request.client-error").count().await.unwrap() > 0, "no failed request in {requests}");
    let failed = card.locator("tr.request.client-error").first().inner_text().await.unwrap();
    assert!(failed.contains("GET /Users?filter=") && failed.contains("400"), "{failed}");
    assert!(requests.contains("POST /Users") && requests.contains("POST /Groups"), "{requests}");
    // Refresh shows new activity without a reload.
    let bob = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bob@piedpiper.example",
        "active": true
    });
    assert_eq!(scim(reqwest::Method::POST, "/Users").body(bob.to_string()).send().await.unwrap().status(), 201);
    wait_until(&page, "document.querySelector('.directories-panel')?.dataset.hydrated === 'true'").await.unwrap();
    card.locator("button.refresh").click(None).await.unwrap();
    card.locator("tr[data-user='bob@piedpiper.example']").wait_for(None).await.expect("refresh lists the new user");
    let last_sync = card.locator("[data-testid=last-sync]").inner_text().await.unwrap();
    assert!(last_sync.starts_with("Last sync: "), "{last_sync}");
    page.screenshot_to_file(&output_dir().join("directory-active.png"), None).await.unwrap();
    assert_no_csp_violation(&csp);
    browser.close().await.unwrap();
}

/// Collects webhook deliveries (event types) posted to it.
async fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                sink.lock().unwrap().push(event["type"].as_str().unwrap_or_default().to_owned());
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn wait_for_events(seen: &std::sync::Mutex<Vec<String>>, kind: &str, n: usize) {
    for _ in 0..100 {
        if seen.lock().unwrap().iter().filter(|k| *k == kind).count() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("expected {n} × {kind}, received {:?}", seen.lock().unwrap());
}

/// The SSO wizard end to end against real IdPs (npm oidc-provider, PyPI
/// pysaml2): configure OIDC and SAML connections in the portal, Test sign-in
/// shows the profile, Activate; the vendor's webhook receives `sso.enabled`
/// and, after deactivation, `sso.disabled`.
#[tokio::test]
async fn sso_connections_are_configured_tested_and_activated_in_the_portal() {
    let port = peers::free_port();
    let public = format!("http://127.0.0.1:{port}");
    let (base, _db, key) = start_portico_with(built_site(), |s| {
        s.listen = format!("127.0.0.1:{port}").parse().unwrap();
        s.public_url = format!("http://127.0.0.1:{port}");
        s.sso.redirect_uris = vec!["http://127.0.0.1:9/callback".into()];
    })
    .await;
    assert_eq!(base, public);
    let (hook, seen) = webhook_receiver().await;
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "url": hook, "event_types": ["sso.*"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let op = peers::oidc_op(&base, "e2e-oidc-secret").await;
    let idp = peers::saml_idp().await;

    let (_, link) = create_link(&base, &key, "Hooli", &["sso"]).await;
    let link = link.replace("http://127.0.0.1:8080", &base);
    let pw = Playwright::launch().await.expect("playwright driver (PLAYWRIGHT_DRIVER_PATH)");
    let browser = chromium(&pw).await;
    let page = browser.new_page().await.unwrap();
    let csp = watch_csp(&page).await;
    page.goto(&link, None).await.unwrap();
    page.goto(&format!("{base}/portal/sso"), None).await.unwrap();
    let hydrated = || async {
        wait_until(&page, "document.querySelector('.sso-panel')?.dataset.hydrated === 'true'")
            .await
            .expect("the portal hydrated");
    };
    hydrated().await;

    // OIDC: start, paste the provider's values, save.
    page.locator("#connection-choice").select_option("generic-oidc", None).await.unwrap();
    page.locator(".new-connection button[type=submit]").click(None).await.unwrap();
    let oidc = page.locator(".connection-card[data-kind=oidc]");
    oidc.wait_for(None).await.expect("the OIDC connection card appears");
    let redirect = oidc.locator(".sp-values code").first().text_content().await.unwrap().unwrap();
    assert_eq!(redirect, format!("{base}/sso/oidc/callback"));
    oidc.locator("input[name='form[issuer]']").fill(&op.url, None).await.unwrap();
    oidc.locator("input[name='form[client_id]']").fill("portico-test", None).await.unwrap();
    oidc.locator("input[name='form[client_secret]']").fill("e2e-oidc-secret", None).await.unwrap();
    oidc.locator("input[name='form[scopes]']").fill("groups", None).await.unwrap();
    oidc.locator("button.save").click(None).await.unwrap();
    wait_until(&page, "!document.querySelector('.connection-card[data-kind=oidc] button.test').disabled")
        .await
        .expect("saved: Test sign-in becomes possible");

    // Test sign-in: a real login at the provider, back to the portal.
    oidc.locator("button.test").click(None).await.unwrap();
    page.locator(".test-result").wait_for(None).await.expect("the test result is shown");
    let result = page.locator(".test-result").inner_text().await.unwrap();
    assert_eq!(
        page.locator(".test-result").get_attribute("data-outcome").await.unwrap().as_deref(),
        Some("succeeded"),
        "{result}"
    );
    assert!(result.contains("ada@example.com") && result.contains("Lovelace"), "{result}");
    assert!(result.contains("engineering, admins"), "groups from the groups scope: {result}");
    page.screenshot_to_file(&output_dir().join("sso-oidc-test.png"), None).await.unwrap();
    hydrated().await;
    oidc.locator("button.activate").click(None).await.unwrap();
    wait_until(&page, "document.querySelector('.connection-card[data-kind=oidc]')?.dataset.state === 'active'")
        .await
        .expect("the OIDC connection is active");

    // SAML: metadata by URL, then the same.
    page.locator("#connection-choice").select_option("okta-saml", None).await.unwrap();
    page.locator(".new-connection button[type=submit]").click(None).await.unwrap();
    let saml = page.locator(".connection-card[data-kind=saml]");
    saml.wait_for(None).await.expect("the SAML connection card appears");
    let values = saml.locator(".sp-values").inner_text().await.unwrap();
    assert!(values.contains("/acs") && values.contains("/sso/saml/"), "{values}");
    saml.locator("input[name='form[metadata_url]']").fill(&format!("{}/metadata", idp.url), None).await.unwrap();
    saml.locator("button.save").click(None).await.unwrap();
    wait_until(&page, "!document.querySelector('.connection-card[data-kind=saml] button.test').disabled")
        .await
        .expect("saved: Test sign-in becomes possible");
    assert!(saml.inner_text().await.unwrap().contains("Certificate:"), "the IdP certificate is shown");
    saml.locator("button.test").click(None).await.unwrap();
    page.locator(".test-result").wait_for(None).await.expect("the SAML test result is shown");
    let result = page.locator(".test-result").inner_text().await.unwrap();
    assert!(result.contains("ada@example.com") && result.contains("engineering"), "{result}");
    hydrated().await;
    saml.locator("button.activate").click(None).await.unwrap();
    wait_until(&page, "document.querySelector('.connection-card[data-kind=saml]')?.dataset.state === 'active'")
        .await
        .expect("the SAML connection is active");
    let attempts = saml.locator("table.attempts").inner_text().await.unwrap();
    assert!(attempts.contains("test") && attempts.contains("succeeded"), "{attempts}");
    wait_for_events(&seen, "sso.enabled", 2).await;

    // Deactivate the OIDC connection: sso.disabled.
    oidc.locator("button.deactivate").click(None).await.unwrap();
    wait_until(&page, "document.querySelector('.connection-card[data-kind=oidc]')?.dataset.state === 'inactive'")
        .await
        .expect("the OIDC connection is inactive");
    wait_for_events(&seen, "sso.disabled", 1).await;
    page.screenshot_to_file(&output_dir().join("sso-connections.png"), None).await.unwrap();
    assert_no_csp_violation(&csp);
    browser.close().await.unwrap();
}
