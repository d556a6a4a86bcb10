//! Vendor API keys: bearer tokens for the REST API. Shown once at creation,
//! stored as SHA-256 hashes, revocable.

use secrecy::SecretString;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::secrets;
use crate::store::BeginWrite;
use crate::store::{Store, StoreError, with_pool};

/// Prefix of every API key, so leaked keys are recognisable by scanners.
pub const API_KEY_PREFIX: &str = "psk_";

/// Stored metadata of a key (never the key itself).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A newly created key: the only moment the plaintext exists.
pub struct CreatedApiKey {
    pub info: ApiKeyInfo,
    pub key: SecretString,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    secret_hash: Vec<u8>,
    last_used_at: Option<OffsetDateTime>,
}

/// How stale `last_used_at` may get before a request refreshes it; keeps
/// authenticated reads from turning into writes.
const LAST_USED_GRANULARITY: Duration = Duration::minutes(1);

impl Store {
    /// Creates a key named `name`. With `replace`, keys with the same name are
    /// revoked in the same transaction (used by `scripts/run`).
    #[tracing::instrument(skip_all)]
    pub async fn create_api_key(&self, name: &str, replace: bool) -> Result<CreatedApiKey, StoreError> {
        let minted = secrets::mint(API_KEY_PREFIX);
        let info = ApiKeyInfo {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            created_at: OffsetDateTime::now_utc(),
            last_used_at: None,
            revoked_at: None,
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if replace {
                sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL")
                    .bind(name)
                    .bind(info.created_at)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                r#"
                INSERT INTO api_keys (id, name, lookup, secret_hash, created_at)
                VALUES ($1, $2, $3, $4, $5)
                "#,
            )
            .bind(info.id)
            .bind(&info.name)
            .bind(&minted.lookup)
            .bind(minted.hash.as_slice())
            .bind(info.created_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(CreatedApiKey { info, key: minted.token })
    }

    /// Resolves a presented bearer token to the id of an active key.
    #[tracing::instrument(skip_all)]
    pub async fn authenticate_api_key(&self, presented: &SecretString) -> Result<Option<Uuid>, StoreError> {
        let Some(lookup) = secrets::lookup_of(API_KEY_PREFIX, presented) else {
            return Ok(None);
        };
        let row: Option<KeyRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, secret_hash, last_used_at FROM api_keys WHERE lookup = $1 AND revoked_at IS NULL",
            )
            .bind(lookup)
            .fetch_optional(pool)
            .await
        })?;
        let Some(row) = row.filter(|r| secrets::matches(presented, &r.secret_hash)) else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        if row.last_used_at.is_none_or(|t| now - t > LAST_USED_GRANULARITY) {
            with_pool!(self, |pool| {
                sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                    .bind(row.id)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })?;
        }
        Ok(Some(row.id))
    }

    /// All keys, newest first, without secrets.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, name, created_at, last_used_at, revoked_at FROM api_keys ORDER BY id DESC")
                .fetch_all(pool)
                .await
        })?)
    }

    /// Revokes key `id`; `false` if no active key has that id.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(OffsetDateTime::now_utc())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }
}
