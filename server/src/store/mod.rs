//! Storage. One [`Store`] type serves SQLite (embedded default) and
//! PostgreSQL (scale-out). Queries are written once in the SQL both engines
//! accept (`$n` placeholders, `RETURNING`, `ON CONFLICT`) and each query is
//! compiled for both drivers by [`with_pool!`], so Rust types bind natively
//! on each (UUID as BLOB/uuid, time as TEXT/timestamptz). Schema differences
//! live in `migrations/sqlite` and `migrations/postgres`. The integration tests
//! run every store path against both engines.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::config::DatabaseKind;

pub mod api_keys;
pub mod connections;
pub mod deliveries;
pub mod directories;
pub mod domains;
pub mod events;
pub mod logins;
pub mod orgs;
pub mod portal;
pub mod scim_batch;
pub mod scim_groups;
pub mod scim_requests;
pub mod scim_resources;
pub mod scim_users;
pub mod webhooks;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Signalled after a transaction that recorded events commits, so this
    /// process's delivery worker and streams wake at once.
    pub(crate) events_committed: std::sync::Arc<tokio::sync::Notify>,
    /// Same signal for the delivery worker, but remembered while the worker
    /// is busy (`notify_one` stores a permit), so no commit is slept through.
    pub(crate) deliveries_queued: std::sync::Arc<tokio::sync::Notify>,
    /// Group commit for SCIM user writes (PostgreSQL only; always set there).
    pub(crate) scim_writer: Option<scim_batch::ScimWriter>,
    /// Recently verified SCIM tokens (see `directories::AUTH_CACHE_TTL`).
    pub(crate) scim_auth_cache: directories::AuthCache,
    /// "Now" for expiry decisions (portal links and sessions so far).
    clock: std::sync::Arc<dyn crate::clock::Clock>,
}

/// The connection pool of the configured engine.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of the configured
/// engine. The body is compiled once per engine.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Starts a transaction that will write.
///
/// On SQLite a deferred transaction that reads and then writes fails at once
/// with `SQLITE_BUSY` if another writer committed in between; `BEGIN
/// IMMEDIATE` takes the write lock up front, so concurrent writers queue on
/// the busy timeout instead. PostgreSQL needs nothing special.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, Self::Db>>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.begin().await
    }
}

/// A write transaction on the configured engine.
///
/// Store functions that change several rows take `&mut Tx` (the caller's
/// transaction) instead of opening their own. [`Tx::record`] writes an event
/// and its webhook fan-out in the same transaction, so an event exists
/// exactly when its change commits; [`Tx::commit`] then wakes this process's
/// delivery worker and streams, so no caller can forget to announce.
/// Dropping a `Tx` without committing rolls it back.
pub struct Tx<'s> {
    store: &'s Store,
    pub(crate) conn: TxConn,
    recorded: bool,
}

/// The transaction of the configured engine (see [`on_tx!`]).
pub(crate) enum TxConn {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the `&mut` connection of the
/// transaction `$tx`. The body is compiled once per engine, like
/// [`with_pool!`]; pass `&mut *$conn` to each query.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match &mut $tx.conn {
            $crate::store::TxConn::Sqlite(t) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::store::TxConn::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl Store {
    /// Starts a write transaction (on SQLite `BEGIN IMMEDIATE`, see
    /// [`BeginWrite`]).
    pub async fn write(&self) -> Result<Tx<'_>, StoreError> {
        let conn = match &self.pool {
            Pool::Sqlite(pool) => TxConn::Sqlite(pool.begin_write().await?),
            Pool::Postgres(pool) => TxConn::Postgres(pool.begin_write().await?),
        };
        Ok(Tx { store: self, conn, recorded: false })
    }

    /// Starts a transaction for reads that belong together (a row and its
    /// children). Dropping it ends it.
    pub async fn read(&self) -> Result<Tx<'_>, StoreError> {
        let conn = match &self.pool {
            Pool::Sqlite(pool) => TxConn::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => TxConn::Postgres(pool.begin().await?),
        };
        Ok(Tx { store: self, conn, recorded: false })
    }
}

impl Tx<'_> {
    /// Writes `event` and one pending delivery per enabled webhook endpoint
    /// subscribed to its type, in this transaction.
    pub async fn record(&mut self, event: &events::NewEvent) -> Result<(), StoreError> {
        on_tx!(self, |conn| {
            sqlx::query(events::INSERT_EVENT)
                .bind(event.id)
                .bind(event.kind.as_str())
                .bind(event.organization_id)
                .bind(event.occurred_at)
                .bind(sqlx::types::Json(&event.data))
                .execute(&mut *conn)
                .await?;
            sqlx::query(events::FAN_OUT)
                .bind(event.id)
                .bind(event.kind.as_str())
                .bind(event.occurred_at)
                .execute(&mut *conn)
                .await
                .map(|_| ())
        })?;
        self.recorded = true;
        Ok(())
    }

    /// Commits; when events were recorded, announces them.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.conn {
            TxConn::Sqlite(t) => t.commit().await?,
            TxConn::Postgres(t) => t.commit().await?,
        }
        if self.recorded {
            self.store.announce_events();
        }
        Ok(())
    }
}

/// Errors callers branch on. Everything else is an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// Anything else: unreachable database, bug, corrupt row.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Other(anyhow::Error::new(e))
    }
}

/// Which uniqueness rule a write ran into. The message (`Display`) is what
/// the API, the portal and the CLI show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("external_id is already used by another organization")]
    ExternalIdTaken,
    #[error("{0} is already a domain of this organization")]
    DomainAlreadyAdded(String),
    #[error("{0} is verified by another organization")]
    DomainVerifiedElsewhere(String),
    /// A SCIM user with this `userName` exists in the directory.
    #[error("userName")]
    UserNameTaken,
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`] with
/// `conflict`; other errors pass through.
pub(crate) fn on_unique(e: sqlx::Error, conflict: Conflict) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict),
        _ => StoreError::from(e),
    }
}

impl Store {
    /// Connects to `url`, creating the SQLite file (and its directory) if
    /// needed, and runs pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let store = match DatabaseKind::of(url)? {
            DatabaseKind::Sqlite => Self::connect_sqlite(url, max_connections).await?,
            DatabaseKind::Postgres => {
                let options = PgConnectOptions::from_str(url).context("invalid PostgreSQL URL")?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .context("Failed to connect to PostgreSQL")?;
                Store {
                    scim_writer: Some(scim_batch::ScimWriter::start(pool.clone())),
                    scim_auth_cache: Default::default(),
                    pool: Pool::Postgres(pool),
                    events_committed: Default::default(),
                    deliveries_queued: Default::default(),
                    clock: std::sync::Arc::new(crate::clock::SystemClock),
                }
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn connect_sqlite(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .context("invalid SQLite URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            let path = options.get_filename();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("Failed to create database directory {}", dir.display()))?;
            }
        }
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists per connection: keep exactly one.
            .max_connections(if in_memory { 1 } else { max_connections })
            .connect_with(options)
            .await
            .with_context(|| format!("Failed to open SQLite database {url}"))?;
        Ok(Store {
            pool: Pool::Sqlite(pool),
            events_committed: Default::default(),
            deliveries_queued: Default::default(),
            scim_writer: None,
            scim_auth_cache: Default::default(),
            clock: std::sync::Arc::new(crate::clock::SystemClock),
        })
    }

    /// Applies migrations that have not run yet. Safe to run from several
    /// replicas at once on PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await,
            Pool::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await,
        }
        .context("Failed to run database migrations")
    }

    /// This store with `clock` as its source of "now" (tests).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The current time, from the store's clock.
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Which engine backs this store.
    pub fn kind(&self) -> DatabaseKind {
        match self.pool {
            Pool::Sqlite(_) => DatabaseKind::Sqlite,
            Pool::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    /// Round-trips a trivial query: readiness probe.
    pub async fn ping(&self) -> anyhow::Result<()> {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ())).context("database ping failed")
    }

    /// Tells local listeners that new events (and deliveries) are committed.
    pub(crate) fn announce_events(&self) {
        self.events_committed.notify_waiters();
        // PostgreSQL's trigger notifies every replica's worker, and only
        // when deliveries were queued; SQLite has one process to wake.
        if matches!(self.pool, Pool::Sqlite(_)) {
            self.deliveries_queued.notify_one();
        }
    }

    /// Wakes this process's delivery worker (deliveries reset by a replay
    /// fire no insert trigger).
    pub(crate) fn announce_deliveries(&self) {
        self.deliveries_queued.notify_one();
    }

    /// Completes when [`Store::announce_events`] is next called.
    pub fn events_announced(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.events_committed.notified()
    }

    /// Whether [`Store::close`] was called.
    pub fn is_closed(&self) -> bool {
        with_pool!(self, |pool| pool.is_closed())
    }

    /// Closes all connections (graceful shutdown, tests).
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}
