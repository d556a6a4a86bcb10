//! Webhook delivery benchmark (not a test): commit→delivery latency and
//! drain throughput to a local receiver, on PostgreSQL and SQLite.
//!
//! Run: `cargo bench -p portico-server --bench webhooks` (PostgreSQL from
//! `PORTICO_TEST_POSTGRES_URL`, default as in the tests). Optional args:
//! `LATENCY_EVENTS THROUGHPUT_EVENTS` (default 500 20000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use portico_server::config::Settings;
use portico_server::crypto::Cipher;
use portico_server::events::webhooks::EventPattern;
use portico_server::orgs::{NewOrganization, OrgName};
use portico_server::services::delivery::Worker;
use portico_server::store::Store;
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

mod common;
use common::{fresh_url, pct};

#[derive(Default)]
struct Receiver {
    arrivals: Vec<(String, Instant)>,
}

async fn start_receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let s = state.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, _body: Bytes| {
            let s = s.clone();
            async move {
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                s.lock().await.arrivals.push((id, Instant::now()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

async fn bench(postgres: bool, latency_events: usize, throughput_events: usize) {
    let engine = if postgres { "PostgreSQL" } else { "SQLite" };
    let (url, _dir) = fresh_url(postgres).await;
    let store = Store::connect(&url, 16).await.unwrap();
    let mut settings = Settings { database_url: url, ..Default::default() };
    settings.webhooks.poll_ms = 1000;
    let cipher = Arc::new(Cipher::from_base64(Cipher::generate_base64().expose_secret()).unwrap());
    let (receiver_url, receiver) = start_receiver().await;
    let secret = portico_server::events::signing::generate_secret();
    store
        .create_endpoint(
            &receiver_url,
            None,
            &[EventPattern::parse("organization.created").unwrap()],
            true,
            &cipher.seal(secret.expose_secret()),
        )
        .await
        .unwrap();
    let new_org = |i: usize| NewOrganization {
        name: OrgName::parse(&format!("Org {i}")).unwrap(),
        external_id: None,
        domains: vec![],
        branding: Default::default(),
    };

    // Latency: one event at a time while the worker idles, waiting for a
    // wake-up (commit notification), as in normal operation.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = Worker::new(store.clone(), settings.webhooks.clone(), cipher.clone(), &settings.outbound).unwrap();
    let mut rx = stop_rx.clone();
    let handle = tokio::spawn(worker.run(async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut committed = std::collections::HashMap::new();
    for i in 0..latency_events {
        let org = store.create_org(new_org(i)).await.unwrap();
        committed.insert(org.id, Instant::now());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = store.list_events(None, None, 100_000).await.unwrap();
    let by_event: std::collections::HashMap<String, uuid::Uuid> =
        events.iter().map(|e| (e.id.to_string(), e.organization_id.unwrap())).collect();
    let mut lat: Vec<f64> = receiver
        .lock()
        .await
        .arrivals
        .iter()
        .filter_map(|(id, at)| {
            by_event.get(id).and_then(|org| committed.get(org)).map(|c| at.duration_since(*c).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let _ = stop_tx.send(true);
    handle.await.unwrap();
    println!(
        "| {engine} | commit→delivery latency | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={}) |",
        pct(&lat, 50.0),
        pct(&lat, 99.0),
        lat.last().unwrap(),
        lat.len()
    );

    // Throughput: queue N events with the worker stopped, then time the drain.
    receiver.lock().await.arrivals.clear();
    let mut tasks = Vec::new();
    let per_task = throughput_events / 8;
    for t in 0..8 {
        let (store, new_org) = (store.clone(), new_org);
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                store.create_org(new_org(1_000_000 + t * per_task + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = per_task * 8;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = Worker::new(store.clone(), settings.webhooks.clone(), cipher.clone(), &settings.outbound).unwrap();
    let started = Instant::now();
    let mut rx = stop_rx.clone();
    let handle = tokio::spawn(worker.run(async move {
        let _ = rx.wait_for(|s| *s).await;
    }));
    loop {
        if receiver.lock().await.arrivals.len() >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            panic!("drain did not finish");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    handle.await.unwrap();
    let distinct: std::collections::HashSet<_> =
        receiver.lock().await.arrivals.iter().map(|(id, _)| id.clone()).collect();
    println!(
        "| {engine} | drain throughput (64 in flight) | {:.0} deliveries/s ({total} in {secs:.2} s, {} distinct) |",
        total as f64 / secs,
        distinct.len()
    );
    store.close().await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let latency_events = args.first().copied().unwrap_or(500);
    let throughput_events = args.get(1).copied().unwrap_or(20_000);
    println!("| engine | metric | result |");
    println!("|---|---|---|");
    bench(true, latency_events, throughput_events).await;
    bench(false, latency_events, throughput_events).await;
}
