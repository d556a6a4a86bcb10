//! Storage of logins in flight (`sso_logins`), replayed SAML assertion IDs
//! (`sso_assertion_ids`) and one-time codes (`sso_codes`). Tokens are
//! stored only as hashes; each login state and code works once.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{BeginWrite, Store, StoreError, with_pool};
use crate::sso::Profile;
use crate::sso::error::LoginState;

/// How long a login may take at the IdP.
pub(crate) const LOGIN_TTL: Duration = Duration::minutes(10);
/// How long the vendor has to redeem a code.
pub(crate) const CODE_TTL: Duration = Duration::seconds(60);

/// A login in flight.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Login {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub purpose: String,
    pub redirect_uri: Option<String>,
    pub client_state: Option<String>,
    pub saml_request_id: Option<String>,
    pub oidc_nonce: Option<String>,
    pub oidc_verifier: Option<String>,
    pub expires_at: OffsetDateTime,
    pub consumed_at: Option<OffsetDateTime>,
    pub outcome: Option<String>,
    pub result: Option<String>,
}

const LOGIN_COLUMNS: &str = "id, connection_id, purpose, redirect_uri, client_state, saml_request_id, oidc_nonce, \
                             oidc_verifier, expires_at, consumed_at, outcome, result";

/// What a new login remembers.
pub struct NewLogin<'a> {
    pub connection_id: Uuid,
    pub purpose: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub client_state: Option<&'a str>,
    pub saml_request_id: Option<&'a str>,
    pub oidc_nonce: Option<&'a str>,
    pub oidc_verifier_sealed: Option<&'a str>,
}

impl Store {
    /// Stores a login under the hash of `state_hash`; returns its id.
    pub async fn create_login(&self, state_hash: &[u8], l: &NewLogin<'_>) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            sqlx::query(
                r#"
                INSERT INTO sso_logins (id, state_hash, connection_id, purpose, redirect_uri, client_state,
                                        saml_request_id, oidc_nonce, oidc_verifier, created_at, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                "#,
            )
            .bind(id)
            .bind(state_hash)
            .bind(l.connection_id)
            .bind(l.purpose)
            .bind(l.redirect_uri)
            .bind(l.client_state)
            .bind(l.saml_request_id)
            .bind(l.oidc_nonce)
            .bind(l.oidc_verifier_sealed)
            .bind(now)
            .bind(now + LOGIN_TTL)
            .execute(pool)
            .await?;
        });
        Ok(id)
    }

    /// Consumes the login whose state hashes to `state_hash`. Each state
    /// works once and only before it expires; the error says which rule failed.
    pub async fn take_login(&self, state_hash: &[u8]) -> Result<Result<Login, LoginState>, StoreError> {
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let login: Option<Login> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {LOGIN_COLUMNS} FROM sso_logins WHERE state_hash = $1"
            )))
            .bind(state_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(login) = login else { return Ok(Err(LoginState::Unknown)) };
            let taken = sqlx::query("UPDATE sso_logins SET consumed_at = $2 WHERE id = $1 AND consumed_at IS NULL")
                .bind(login.id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(if taken == 0 {
                Err(LoginState::Replayed)
            } else if login.expires_at <= now {
                Err(LoginState::Expired)
            } else {
                Ok(login)
            })
        })
    }

    /// The login whose SAML AuthnRequest had `request_id`, unconsumed.
    pub async fn login_for_saml_request(&self, request_id: &str) -> Result<Option<Login>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {LOGIN_COLUMNS} FROM sso_logins WHERE saml_request_id = $1"
            )))
            .bind(request_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// One login by id (test results for the portal).
    pub async fn get_login(&self, id: Uuid) -> Result<Option<Login>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {LOGIN_COLUMNS} FROM sso_logins WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Stores a test login's outcome.
    pub async fn finish_test_login(&self, id: Uuid, outcome: &str, result: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE sso_logins SET outcome = $2, result = $3 WHERE id = $1")
                .bind(id)
                .bind(outcome)
                .bind(result)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Remembers a SAML assertion ID; false when it was seen before (replay).
    pub async fn remember_assertion(
        &self,
        connection: Uuid,
        assertion_id: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM sso_assertion_ids WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
            let inserted = sqlx::query(
                r#"
                INSERT INTO sso_assertion_ids (connection_id, assertion_id, expires_at) VALUES ($1, $2, $3)
                ON CONFLICT DO NOTHING
                "#,
            )
            .bind(connection)
            .bind(assertion_id)
            .bind(until)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(inserted == 1)
        })
    }

    /// Stores a one-time code for `profile`.
    pub async fn create_code(&self, code_hash: &[u8], profile: &Profile) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO sso_codes (code_hash, connection_id, profile, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(code_hash)
            .bind(profile.connection_id)
            .bind(sqlx::types::Json(profile))
            .bind(now + CODE_TTL)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Redeems a code once; `None` when unknown, expired or used.
    pub async fn redeem_code(&self, code_hash: &[u8]) -> Result<Option<Profile>, StoreError> {
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<(sqlx::types::Json<Profile>, OffsetDateTime)> =
                sqlx::query_as("SELECT profile, expires_at FROM sso_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((profile, expires_at)) = row else { return Ok(None) };
            let taken = sqlx::query("UPDATE sso_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL")
                .bind(code_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok((taken == 1 && expires_at > now).then_some(profile.0))
        })
    }
}
