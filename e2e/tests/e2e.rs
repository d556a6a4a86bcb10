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
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.database_url = format!("sqlite://{}", dir.path().join("e2e.db").display());
    settings.site_root = site_root;
    settings.vendor.name = "Acme Analytics".into();
    let app = Application::build(settings).await.expect("start portico");
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    (url, dir)
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
    page.wait_for_function("document.querySelector('main').dataset.hydrated === 'true'", None)
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
