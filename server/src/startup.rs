//! The composition root: connects storage, builds the router
//! ([`crate::http::router`]), binds the listener and runs the workers. `Application::build` reports the bound port so tests use port 0.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::store::Store;

/// A built, bound, not yet serving Portico.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Store,
    port: u16,
    worker: Option<crate::services::delivery::Worker>,
    domains: Arc<crate::services::domains::DomainService>,
    domain_worker: bool,
    /// Writes the SCIM request log; ends after the router is dropped.
    scim_log_writer: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Application {
    /// Connects to the database (running migrations), builds the router and
    /// binds `settings.listen`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect(&settings.database_url, settings.database_max_connections).await?;
        Self::build_with_store(settings, store).await
    }

    /// As [`Application::build`] with an already connected store.
    pub async fn build_with_store(settings: Settings, store: Store) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(settings.listen).await.with_context(|| format!("Failed to bind {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let cipher = Arc::new(settings.cipher()?);
        let worker = if settings.webhooks.worker {
            Some(crate::services::delivery::Worker::new(
                store.clone(),
                settings.webhooks.clone(),
                cipher.clone(),
                &settings.outbound,
            )?)
        } else {
            None
        };
        let domains = Arc::new(crate::services::domains::DomainService::from_settings(&settings.domains)?);
        let domain_worker = settings.domains.worker;
        let (scim_log, scim_log_writer) = crate::services::scim_log::RequestLog::new(store.clone());
        let router = crate::http::router(settings, store.clone(), cipher, domains.clone(), scim_log)?;
        Ok(Self {
            listener,
            router,
            store,
            port,
            worker,
            domains,
            domain_worker,
            scim_log_writer: Box::pin(scim_log_writer),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The store this application uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let worker = self.worker.map(|w| tokio::spawn(w.run(stopped(stop_rx.clone()))));
        let domain_worker = self.domain_worker.then(|| {
            tokio::spawn(crate::services::domains::run_worker(
                self.store.clone(),
                self.domains.clone(),
                stopped(stop_rx.clone()),
            ))
        });
        let scim_log_writer = tokio::spawn(self.scim_log_writer);
        let certificates = tokio::spawn(crate::services::certificates::run_certificate_worker(
            self.store.clone(),
            stopped(stop_rx.clone()),
        ));
        let service = self.router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let serve = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            signal.await;
            let _ = stop_tx.send(true);
        });
        serve.await?;
        // The router (every log handle) is gone: the writer flushes and ends.
        let _ = scim_log_writer.await;
        let _ = certificates.await;
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        if let Some(worker) = domain_worker {
            let _ = worker.await;
        }
        self.store.close().await;
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received, draining");
}
