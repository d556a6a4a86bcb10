//! SCIM directories: where an organization's IdP provisions users and
//! groups. Each has a bearer token (shown once, stored hashed, rotatable) and
//! a state: `pending` until the IdP's first authenticated request, then
//! `active` (`directory.enabled`); deleting an active directory records
//! `directory.disabled`.

use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub use app::dto::DirectoryState;

use crate::events::{EventKind, NewEvent};
use crate::secrets;
use crate::store::{BeginWrite, Store, StoreError, on_tx, with_pool};

/// Prefix of SCIM bearer tokens.
pub const SCIM_TOKEN_PREFIX: &str = "scim_";

/// Identity providers with documented setup steps; `generic` covers the rest.
pub const PROVIDERS: &[&str] = &["okta", "entra", "onelogin", "jumpcloud", "google", "generic"];

/// A directory as the API shows it (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = DirectoryFields)]
pub struct Directory {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    #[schema(schema_with = provider_schema)]
    pub provider: String,
    /// `pending` until the IdP's first request, then `active`; `disabled`
    /// once deleted.
    #[sqlx(try_from = "String")]
    #[schema(schema_with = crate::fields::schema::directory_state)]
    pub state: DirectoryState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Last authenticated SCIM request.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_request_at: Option<OffsetDateTime>,
}

fn provider_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(PROVIDERS)
}

/// A directory with its freshly minted token: on create and rotate only.
pub struct WithToken {
    pub directory: Directory,
    pub token: SecretString,
}

const COLUMNS: &str = "id, organization_id, name, provider, state, created_at, updated_at, last_request_at";

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    organization_id: Uuid,
    token_hash: Vec<u8>,
    #[sqlx(try_from = "String")]
    state: DirectoryState,
    last_request_at: Option<OffsetDateTime>,
}

/// How stale `last_request_at` may get before a request refreshes it: keeps
/// every SCIM request from also being a write.
const LAST_REQUEST_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// How long a verified SCIM token is trusted without asking the database.
/// Rotation and deletion clear this replica's entries at once; other
/// replicas stop accepting an old token within this time (decisions.md #35).
pub const AUTH_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// SHA-256 of a token → the principal it opened and when it was checked.
pub type AuthCache =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<[u8; 32], (ScimPrincipal, std::time::Instant)>>>;

/// What an authenticated SCIM request may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScimPrincipal {
    pub directory_id: Uuid,
    pub organization_id: Uuid,
}

/// Sizes of a directory and when its IdP last succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryCounts {
    pub users: i64,
    pub active_users: i64,
    pub groups: i64,
    /// Newest logged SCIM request that succeeded.
    pub last_success_at: Option<OffsetDateTime>,
}

impl Store {
    /// Counts for the portal overview.
    pub async fn directory_counts(&self, id: Uuid) -> Result<DirectoryCounts, StoreError> {
        with_pool!(self, |pool| {
            let (users, active_users): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), SUM(CASE WHEN active THEN 1 ELSE 0 END) FROM directory_users WHERE directory_id = $1",
            )
            .bind(id)
            .fetch_one(pool)
            .await?;
            let (groups,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM directory_groups WHERE directory_id = $1")
                .bind(id)
                .fetch_one(pool)
                .await?;
            let last: Option<(OffsetDateTime,)> = sqlx::query_as(
                "SELECT occurred_at FROM scim_requests WHERE directory_id = $1 AND status < 400 ORDER BY id DESC LIMIT 1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(DirectoryCounts {
                users,
                active_users: active_users.unwrap_or(0),
                groups,
                last_success_at: last.map(|l| l.0),
            })
        })
    }

    /// Creates a pending directory for `org_id`; `None` when the organization
    /// does not exist.
    pub async fn create_directory(
        &self,
        org_id: Uuid,
        name: &str,
        provider: &str,
    ) -> Result<Option<WithToken>, StoreError> {
        let minted = secrets::mint(SCIM_TOKEN_PREFIX);
        let now = OffsetDateTime::now_utc();
        let id = Uuid::now_v7();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let org: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM organizations WHERE id = $1")
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?;
            if org.is_none() {
                return Ok(None);
            }
            sqlx::query(
                r#"
                INSERT INTO directories
                    (id, organization_id, name, provider, state, token_lookup, token_hash, created_at, updated_at)
                VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $7)
                "#,
            )
            .bind(id)
            .bind(org_id)
            .bind(name)
            .bind(provider)
            .bind(&minted.lookup)
            .bind(minted.hash.as_slice())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(WithToken {
                directory: Directory {
                    id,
                    organization_id: org_id,
                    name: name.to_owned(),
                    provider: provider.to_owned(),
                    state: DirectoryState::Pending,
                    created_at: now,
                    updated_at: now,
                    last_request_at: None,
                },
                token: minted.token,
            }))
        })
    }

    /// Directories of `org_id`, oldest first.
    pub async fn list_directories(&self, org_id: Uuid) -> Result<Vec<Directory>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM directories WHERE organization_id = $1 ORDER BY id"
            )))
            .bind(org_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// One directory.
    pub async fn get_directory(&self, id: Uuid) -> Result<Option<Directory>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM directories WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Replaces the bearer token; the old one stops working at once.
    pub async fn rotate_directory_token(&self, id: Uuid) -> Result<Option<WithToken>, StoreError> {
        let minted = secrets::mint(SCIM_TOKEN_PREFIX);
        let now = OffsetDateTime::now_utc();
        self.forget_scim_tokens(id);
        let changed = with_pool!(self, |pool| {
            sqlx::query("UPDATE directories SET token_lookup = $2, token_hash = $3, updated_at = $4 WHERE id = $1")
                .bind(id)
                .bind(&minted.lookup)
                .bind(minted.hash.as_slice())
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        // Again after the write: a request racing the update may have cached
        // the old token in between.
        self.forget_scim_tokens(id);
        if changed == 0 {
            return Ok(None);
        }
        Ok(self.get_directory(id).await?.map(|directory| WithToken { directory, token: minted.token }))
    }

    /// Deletes a directory; records `directory.disabled` when it was active.
    pub async fn delete_directory(&self, id: Uuid) -> Result<bool, StoreError> {
        let Some(dir) = self.get_directory(id).await? else { return Ok(false) };
        self.forget_scim_tokens(id);
        let mut tx = self.write().await?;
        let gone = on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM directories WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        if gone == 0 {
            return Ok(false);
        }
        if dir.state == DirectoryState::Active {
            let data = Directory { state: DirectoryState::Disabled, updated_at: OffsetDateTime::now_utc(), ..dir };
            tx.record(&NewEvent::new(EventKind::DirectoryDisabled, Some(data.organization_id), &data)).await?;
        }
        tx.commit().await?;
        self.forget_scim_tokens(id);
        Ok(true)
    }

    /// Checks a SCIM bearer token for directory `directory_id`. The first
    /// successful request activates a pending directory and records
    /// `directory.enabled`. `None`: wrong token, another directory's token,
    /// or a disabled directory.
    pub async fn authenticate_scim(
        &self,
        directory_id: Uuid,
        presented: &SecretString,
    ) -> Result<Option<ScimPrincipal>, StoreError> {
        let Some(lookup) = secrets::lookup_of(SCIM_TOKEN_PREFIX, presented) else { return Ok(None) };
        let key = secrets::sha256(secrecy::ExposeSecret::expose_secret(presented));
        let cached = self.scim_auth_cache.lock().expect("auth cache lock").get(&key).copied();
        if let Some((principal, at)) = cached
            && at.elapsed() < AUTH_CACHE_TTL
            && principal.directory_id == directory_id
        {
            return Ok(Some(principal));
        }
        let principal = self.authenticate_scim_in_db(directory_id, presented, lookup).await?;
        if let Some(p) = principal {
            let mut cache = self.scim_auth_cache.lock().expect("auth cache lock");
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, (p, std::time::Instant::now()));
        }
        Ok(principal)
    }

    /// Forgets cached tokens of `directory` (rotation, deletion).
    fn forget_scim_tokens(&self, directory: Uuid) {
        self.scim_auth_cache.lock().expect("auth cache lock").retain(|_, (p, _)| p.directory_id != directory);
    }

    async fn authenticate_scim_in_db(
        &self,
        directory_id: Uuid,
        presented: &SecretString,
        lookup: &str,
    ) -> Result<Option<ScimPrincipal>, StoreError> {
        let row: Option<TokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, organization_id, token_hash, state, last_request_at FROM directories WHERE token_lookup = $1",
            )
                .bind(lookup)
                .fetch_optional(pool)
                .await?
        });
        let Some(row) = row else { return Ok(None) };
        if !secrets::matches(presented, &row.token_hash)
            || row.id != directory_id
            || row.state == DirectoryState::Disabled
        {
            return Ok(None);
        }
        let now = OffsetDateTime::now_utc();
        let fresh = row.last_request_at.is_some_and(|t| now - t < LAST_REQUEST_GRANULARITY);
        if row.state == DirectoryState::Active && fresh {
            return Ok(Some(ScimPrincipal { directory_id, organization_id: row.organization_id }));
        }
        let mut tx = self.write().await?;
        let dir: Option<Directory> = on_tx!(tx, |conn| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM directories WHERE id = $1")))
                .bind(directory_id)
                .fetch_optional(&mut *conn)
                .await
        })?;
        let Some(dir) = dir else { return Ok(None) };
        let activate = dir.state == DirectoryState::Pending;
        on_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE directories SET last_request_at = $2, state = CASE WHEN state = 'pending' THEN 'active' ELSE state END WHERE id = $1",
            )
            .bind(directory_id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|_| ())
        })?;
        if activate {
            let data =
                Directory { state: DirectoryState::Active, updated_at: now, last_request_at: Some(now), ..dir.clone() };
            tx.record(&NewEvent::new(EventKind::DirectoryEnabled, Some(dir.organization_id), &data)).await?;
        }
        tx.commit().await?;
        if activate {
            tracing::info!(directory_id = %directory_id, org_id = %dir.organization_id, "directory enabled");
        }
        Ok(Some(ScimPrincipal { directory_id, organization_id: dir.organization_id }))
    }
}
