//! `sso_connections` and `sso_attempts`: connections between an
//! organization and its IdP (types in `sso/mod.rs`), the sign-in attempts
//! recorded against them, and the events both record.

use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, Tx, on_tx, with_pool};
use crate::events::{EventKind, NewEvent};
use crate::sso::error::LoginError;
use crate::sso::{
    AttributeMap, Connection, ConnectionInput, ConnectionState, ConnectionWithSecret, IdpConfig, Profile,
};

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: Uuid,
    organization_id: Uuid,
    provider: String,
    name: String,
    #[sqlx(try_from = "String")]
    state: ConnectionState,
    config: Json<IdpConfig>,
    client_secret: Option<String>,
    attribute_map: Json<AttributeMap>,
    cert_expires_at: Option<OffsetDateTime>,
    tested_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// Re-reads connection `id` inside `tx`.
async fn fetch(tx: &mut Tx<'_>, id: Uuid) -> Result<ConnectionRow, StoreError> {
    Ok(on_tx!(tx, |conn| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM sso_connections WHERE id = $1")))
            .bind(id)
            .fetch_one(&mut *conn)
            .await
    })?)
}

const COLUMNS: &str = "id, organization_id, provider, name, state, config, client_secret, attribute_map, \
                       cert_expires_at, tested_at, created_at, updated_at";

impl ConnectionRow {
    fn connection(self) -> (Connection, Option<String>) {
        let connection = Connection {
            id: self.id,
            organization_id: self.organization_id,
            connection_type: self.config.0.kind(),
            provider: self.provider,
            name: self.name,
            state: self.state,
            idp: self.config.0,
            has_client_secret: self.client_secret.is_some(),
            attribute_map: self.attribute_map.0,
            certificate_expires_at: self.cert_expires_at,
            tested_at: self.tested_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        (connection, self.client_secret)
    }
}

/// One recorded sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = SignInAttempt)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// `login` (a user signing in) or `test` (an admin's test sign-in).
    #[schema(schema_with = attempt_purpose_schema)]
    pub purpose: String,
    /// `succeeded` or `failed`.
    #[schema(schema_with = attempt_outcome_schema)]
    pub outcome: String,
    pub reason: Option<String>,
    pub email: Option<String>,
}

fn attempt_purpose_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(&["login", "test"])
}

fn attempt_outcome_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(&["succeeded", "failed"])
}

/// Event payload of `connection.certificate_expiring`.
#[derive(serde::Serialize)]
struct CertificateExpiring<'a> {
    connection: &'a Connection,
    #[serde(with = "time::serde::rfc3339")]
    certificate_expires_at: OffsetDateTime,
    /// Negative once expired.
    days_left: i64,
}

/// Event payload of `authentication.sso_*`.
#[derive(serde::Serialize)]
struct AttemptEvent<'a> {
    connection_id: Uuid,
    connection_type: &'a str,
    purpose: &'a str,
    email: Option<&'a str>,
    reason: Option<&'a str>,
}

impl Store {
    /// Creates a draft connection; `None` when the organization is gone.
    pub async fn create_connection(
        &self,
        org: Uuid,
        input: &ConnectionInput,
    ) -> Result<Option<Connection>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let id = Uuid::now_v7();
        let mut tx = self.write().await?;
        if !super::orgs::exists(&mut tx, org).await? {
            return Ok(None);
        }
        on_tx!(tx, |conn| {
            sqlx::query(
                r#"
                INSERT INTO sso_connections (id, organization_id, kind, provider, name, state, config, client_secret,
                                             attribute_map, cert_expires_at, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7, $8, $9, $10, $10)
                "#,
            )
            .bind(id)
            .bind(org)
            .bind(input.idp.kind())
            .bind(&input.provider)
            .bind(&input.name)
            .bind(Json(&input.idp))
            .bind(input.sealed_client_secret.as_deref())
            .bind(Json(&input.attribute_map))
            .bind(input.certificate_expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        let (connection, _) = fetch(&mut tx, id).await?.connection();
        tx.record(&NewEvent::new(EventKind::ConnectionCreated, Some(org), &connection)).await?;
        tx.commit().await?;
        Ok(Some(connection))
    }

    /// One connection with its sealed secret.
    pub async fn get_connection(&self, id: Uuid) -> Result<Option<ConnectionWithSecret>, StoreError> {
        let row: Option<ConnectionRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM sso_connections WHERE id = $1")))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|r| {
            let (connection, sealed_client_secret) = r.connection();
            ConnectionWithSecret { connection, sealed_client_secret }
        }))
    }

    /// Connections of `org`, oldest first.
    pub async fn list_connections(&self, org: Uuid) -> Result<Vec<Connection>, StoreError> {
        let rows: Vec<ConnectionRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM sso_connections WHERE organization_id = $1 ORDER BY id"
            )))
            .bind(org)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|r| r.connection().0).collect())
    }

    /// Replaces a connection's settings; records `connection.updated`.
    pub async fn update_connection(&self, id: Uuid, input: &ConnectionInput) -> Result<Option<Connection>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.write().await?;
        let changed = on_tx!(tx, |conn| {
            sqlx::query(
                r#"
                UPDATE sso_connections
                SET provider = $2, name = $3, kind = $4, config = $5, client_secret = COALESCE($6, client_secret),
                    attribute_map = $7, cert_expires_at = $8, updated_at = $9
                WHERE id = $1
                "#,
            )
            .bind(id)
            .bind(&input.provider)
            .bind(&input.name)
            .bind(input.idp.kind())
            .bind(Json(&input.idp))
            .bind(input.sealed_client_secret.as_deref())
            .bind(Json(&input.attribute_map))
            .bind(input.certificate_expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        if changed == 0 {
            return Ok(None);
        }
        let (connection, _) = fetch(&mut tx, id).await?.connection();
        let org = connection.organization_id;
        tx.record(&NewEvent::new(EventKind::ConnectionUpdated, Some(org), &connection)).await?;
        tx.commit().await?;
        Ok(Some(connection))
    }

    /// Moves a connection to `active` or `inactive`; records `sso.enabled` /
    /// `sso.disabled` when the state changes. `None`: no such connection.
    pub async fn set_connection_active(&self, id: Uuid, active: bool) -> Result<Option<Connection>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let target = if active { ConnectionState::Active } else { ConnectionState::Inactive };
        let mut tx = self.write().await?;
        let changes = on_tx!(tx, |conn| {
            let before: Option<(String,)> = sqlx::query_as("SELECT state FROM sso_connections WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some((before,)) = before else { return Ok(None) };
            let before = ConnectionState::try_from(before).map_err(anyhow::Error::new)?;
            let was_active = before == ConnectionState::Active;
            if before != target && (active || was_active) {
                sqlx::query("UPDATE sso_connections SET state = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(target.as_str())
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
            was_active != active
        });
        let (connection, _) = fetch(&mut tx, id).await?.connection();
        if changes {
            let kind = if active { EventKind::SsoEnabled } else { EventKind::SsoDisabled };
            tx.record(&NewEvent::new(kind, Some(connection.organization_id), &connection)).await?;
        }
        tx.commit().await?;
        Ok(Some(connection))
    }

    /// Deletes a connection (`sso.disabled` first if it was active, then
    /// `connection.deleted`).
    pub async fn delete_connection(&self, id: Uuid) -> Result<bool, StoreError> {
        let Some(current) = self.get_connection(id).await? else { return Ok(false) };
        let c = current.connection;
        let mut tx = self.write().await?;
        let gone = on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM sso_connections WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        if gone == 0 {
            return Ok(false);
        }
        if c.state == ConnectionState::Active {
            let disabled = Connection { state: ConnectionState::Inactive, ..c.clone() };
            tx.record(&NewEvent::new(EventKind::SsoDisabled, Some(c.organization_id), &disabled)).await?;
        }
        tx.record(&NewEvent::new(EventKind::ConnectionDeleted, Some(c.organization_id), &c)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a sign-in attempt and its `authentication.sso_*` event.
    pub async fn record_attempt(
        &self,
        connection: &Connection,
        purpose: &str,
        outcome: Result<&Profile, &LoginError>,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let reason = outcome.err().map(LoginError::to_string);
        let reason = reason.as_deref();
        let (kind, email) = match outcome {
            Ok(p) => (EventKind::AuthenticationSsoSucceeded, Some(p.email.as_str())),
            Err(_) => (EventKind::AuthenticationSsoFailed, None),
        };
        let data = AttemptEvent {
            connection_id: connection.id,
            connection_type: connection.connection_type,
            purpose,
            email,
            reason,
        };
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
            sqlx::query(
                r#"
                INSERT INTO sso_attempts (id, connection_id, occurred_at, purpose, outcome, reason, email)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                "#,
            )
            .bind(Uuid::now_v7())
            .bind(connection.id)
            .bind(now)
            .bind(purpose)
            .bind(if reason.is_none() { "succeeded" } else { "failed" })
            .bind(reason)
            .bind(email)
            .execute(&mut *conn)
            .await?;
            if purpose == "test" && reason.is_none() {
                sqlx::query("UPDATE sso_connections SET tested_at = $2 WHERE id = $1")
                    .bind(connection.id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
            }
        });
        tx.record(&NewEvent::new(kind, Some(connection.organization_id), &data)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Newest attempts of a connection, newest first.
    pub async fn connection_attempts(&self, id: Uuid, limit: i64) -> Result<Vec<Attempt>, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                r#"
                SELECT occurred_at, purpose, outcome, reason, email FROM sso_attempts
                WHERE connection_id = $1 ORDER BY id DESC LIMIT $2
                "#,
            )
            .bind(id)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Records `connection.certificate_expiring` once per certificate for
    /// connections whose earliest IdP certificate expires before `now +
    /// within` (or has expired). Replicas race safely: a conditional update
    /// decides who writes the event. Returns how many were recorded.
    pub async fn warn_expiring_certificates(
        &self,
        now: OffsetDateTime,
        within: time::Duration,
    ) -> Result<usize, StoreError> {
        let due: Vec<ConnectionRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                r#"
                SELECT {COLUMNS} FROM sso_connections
                WHERE cert_expires_at IS NOT NULL AND cert_expires_at < $1
                  AND (cert_warned_for IS NULL OR cert_warned_for <> cert_expires_at)
                "#
            )))
            .bind(now + within)
            .fetch_all(pool)
            .await?
        });
        let mut recorded = 0;
        for row in due {
            let (c, _) = row.connection();
            let Some(expires) = c.certificate_expires_at else { continue };
            let data = CertificateExpiring {
                days_left: (expires - now).whole_days(),
                certificate_expires_at: expires,
                connection: &c,
            };
            let mut tx = self.write().await?;
            let claimed = on_tx!(tx, |conn| {
                sqlx::query(
                    r#"
                    UPDATE sso_connections SET cert_warned_for = cert_expires_at
                    WHERE id = $1 AND cert_expires_at = $2 AND (cert_warned_for IS NULL OR cert_warned_for <> cert_expires_at)
                    "#,
                )
                .bind(c.id)
                .bind(expires)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())
            })?;
            let wrote = claimed == 1;
            if wrote {
                let event = NewEvent::new(EventKind::ConnectionCertificateExpiring, Some(c.organization_id), &data);
                tx.record(&event).await?;
            }
            tx.commit().await?;
            if wrote {
                recorded += 1;
                tracing::warn!(connection_id = %c.id, expires = %expires, "IdP certificate expiring");
            }
        }
        Ok(recorded)
    }

    /// The active connection that signs in users of `org` (the oldest
    /// active one when there are several).
    pub async fn active_connection_of(&self, org: Uuid) -> Result<Option<Uuid>, StoreError> {
        with_pool!(self, |pool| {
            let row: Option<(Uuid,)> = sqlx::query_as(
                "SELECT id FROM sso_connections WHERE organization_id = $1 AND state = 'active' ORDER BY id LIMIT 1",
            )
            .bind(org)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| r.0))
        })
    }
}
