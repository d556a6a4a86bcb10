//! SSO connections: SAML ([`saml`]) or OIDC ([`oidc`]) links between one
//! organization and its identity provider, and the login flow ([`flow`]) the
//! vendor's app drives through `/sso/authorize` and `/sso/token`.
//!
//! A connection starts as a `draft` (configurable, testable), becomes
//! `active` (`sso.enabled`) and may be deactivated (`sso.disabled`). Edits
//! record `connection.updated`. IdP secrets are stored encrypted.

pub mod login;
pub mod logins;
pub mod oidc;
pub mod saml;
pub mod setup;

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::events::{EventKind, NewEvent};
use crate::store::events::insert_event;
use crate::store::{BeginWrite, Store, StoreError, with_pool};

/// Identity providers with written guides; `generic` covers the rest.
pub const PROVIDERS: &[&str] = &["okta", "entra", "google", "generic"];

/// IdP details, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IdpConfig {
    Saml(SamlConfig),
    Oidc(OidcConfig),
}

impl IdpConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            IdpConfig::Saml(_) => "saml",
            IdpConfig::Oidc(_) => "oidc",
        }
    }
}

/// The IdP side of a SAML connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SamlConfig {
    pub idp_entity_id: String,
    /// HTTP-Redirect single sign-on endpoint.
    pub idp_sso_url: String,
    /// Signing certificates, PEM.
    pub idp_certificates: Vec<String>,
    /// Where the metadata came from, when fetched by URL.
    pub metadata_url: Option<String>,
    /// Accept IdP-initiated responses (converted to an SP-initiated login).
    pub allow_idp_initiated: bool,
    /// Accept RSA-SHA1 signatures (legacy IdPs only).
    pub allow_sha1: bool,
}

/// The IdP side of an OIDC connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    /// Scopes beyond `openid`.
    pub scopes: Vec<String>,
}

/// Where the profile's fields come from in the IdP's attributes or claims.
/// Omitted fields take the provider's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AttributeMap {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub groups: String,
}

impl Default for AttributeMap {
    fn default() -> Self {
        Self::defaults("generic", "saml")
    }
}

const CLAIMS: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims";

impl AttributeMap {
    /// What each IdP sends out of the box (see docs/sso.md).
    pub fn defaults(provider: &str, kind: &str) -> Self {
        let s = |v: &str| v.to_owned();
        match (provider, kind) {
            (_, "oidc") => Self {
                email: s("email"),
                first_name: s("given_name"),
                last_name: s("family_name"),
                groups: s("groups"),
            },
            ("entra", _) => Self {
                email: format!("{CLAIMS}/emailaddress"),
                first_name: format!("{CLAIMS}/givenname"),
                last_name: format!("{CLAIMS}/surname"),
                groups: s("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"),
            },
            _ => Self { email: s("email"), first_name: s("firstName"), last_name: s("lastName"), groups: s("groups") },
        }
    }
}

/// A connection as the API and portal show it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Connection {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `saml` or `oidc`.
    #[schema(schema_with = connection_type_schema)]
    pub connection_type: &'static str,
    #[schema(schema_with = provider_schema)]
    pub provider: String,
    pub name: String,
    /// `draft` until activated, then `active` or `inactive`.
    #[schema(schema_with = connection_state_schema)]
    pub state: String,
    pub idp: IdpConfig,
    pub has_client_secret: bool,
    pub attribute_map: AttributeMap,
    /// Earliest expiry of the IdP's signing certificates (SAML).
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_expires_at: Option<OffsetDateTime>,
    /// Last successful test sign-in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub tested_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

fn connection_type_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(&["saml", "oidc"])
}

fn provider_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(PROVIDERS)
}

fn connection_state_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(&["draft", "active", "inactive"])
}

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: Uuid,
    organization_id: Uuid,
    provider: String,
    name: String,
    state: String,
    config: Json<IdpConfig>,
    client_secret: Option<String>,
    attribute_map: Json<AttributeMap>,
    cert_expires_at: Option<OffsetDateTime>,
    tested_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// Re-reads connection `$id` inside transaction `$tx` (any engine).
macro_rules! connection_in {
    ($tx:expr, $id:expr) => {{
        let row: ConnectionRow =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM sso_connections WHERE id = $1")))
                .bind($id)
                .fetch_one(&mut *$tx)
                .await?;
        row
    }};
}

const COLUMNS: &str = "id, organization_id, provider, name, state, config, client_secret, attribute_map, \
                       cert_expires_at, tested_at, created_at, updated_at";

impl Connection {
    /// The IdP details are complete: Test sign-in and activation may run.
    pub fn configured(&self) -> bool {
        match &self.idp {
            IdpConfig::Saml(c) => {
                !c.idp_entity_id.is_empty() && !c.idp_sso_url.is_empty() && !c.idp_certificates.is_empty()
            }
            IdpConfig::Oidc(c) => !c.issuer.is_empty() && !c.client_id.is_empty() && self.has_client_secret,
        }
    }
}

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

/// A connection with its sealed client secret, for the login flow.
#[derive(Debug, Clone)]
pub struct ConnectionWithSecret {
    pub connection: Connection,
    /// Encrypted (see `crypto::Cipher`).
    pub sealed_client_secret: Option<String>,
}

/// A new or edited connection. `sealed_client_secret: None` keeps the
/// stored one on update.
#[derive(Debug, Clone)]
pub struct ConnectionInput {
    pub provider: String,
    pub name: String,
    pub idp: IdpConfig,
    pub sealed_client_secret: Option<String>,
    pub attribute_map: AttributeMap,
    pub certificate_expires_at: Option<OffsetDateTime>,
}

/// The user the vendor's app receives from `POST /sso/token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Stable per (connection, IdP user).
    pub id: Uuid,
    pub idp_id: String,
    pub organization_id: Uuid,
    pub connection_id: Uuid,
    pub connection_type: String,
    pub email: String,
    /// The IdP vouches for the address: OIDC `email_verified: true`; SAML
    /// assertions unless an `email_verified` attribute says `false`.
    #[serde(default)]
    pub email_verified: bool,
    /// The email's domain is one of the organization's verified domains.
    /// Link accounts by email only when both flags are true; key users on
    /// `(organization_id, id)`.
    #[serde(default)]
    pub email_domain_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub groups: Vec<String>,
    pub raw_attributes: serde_json::Value,
}

impl Profile {
    /// Builds the normalized profile from the IdP's subject and attributes
    /// (`name → [values]`), following `map` with per-IdP fallbacks.
    pub fn from_attributes(
        connection: &Connection,
        subject: &str,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        let find = |name: &str| -> Vec<String> {
            attributes
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| match v {
                    serde_json::Value::Array(items) => {
                        items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
                    }
                    serde_json::Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                })
                .unwrap_or_default()
        };
        let first = |names: &[&str]| names.iter().find_map(|n| find(n).into_iter().find(|v| !v.trim().is_empty()));
        let map = &connection.attribute_map;
        let email = first(&[map.email.as_str(), "email", "mail", &format!("{CLAIMS}/emailaddress"), "upn"])
            .or_else(|| subject.contains('@').then(|| subject.to_owned()))
            .ok_or_else(|| {
                format!(
                    "missing email attribute: the identity provider sent no `{}` attribute (received: {})",
                    map.email,
                    if attributes.is_empty() {
                        "no attributes".to_owned()
                    } else {
                        attributes.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                )
            })?;
        // OIDC: only an explicit `email_verified: true` counts (absent is
        // unknown). SAML has no such claim: the IdP asserts the address from
        // its directory, unless it says otherwise.
        let email_verified = match find("email_verified").first().map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) => v == "true",
            None => connection.connection_type == "saml",
        };
        let key = format!("{}:{subject}", connection.id);
        Ok(Profile {
            id: stable_id(&key),
            idp_id: subject.to_owned(),
            organization_id: connection.organization_id,
            connection_id: connection.id,
            connection_type: connection.connection_type.to_owned(),
            email: email.trim().to_owned(),
            email_verified,
            email_domain_verified: false,
            first_name: first(&[map.first_name.as_str(), "given_name", "firstName", &format!("{CLAIMS}/givenname")]),
            last_name: first(&[map.last_name.as_str(), "family_name", "lastName", &format!("{CLAIMS}/surname")]),
            groups: find(&map.groups),
            raw_attributes: serde_json::Value::Object(attributes.clone()),
        })
    }
}

/// A UUID derived from `key` (SHA-256, version 8 layout): the same IdP user
/// of the same connection always gets the same profile id.
fn stable_id(key: &str) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// One recorded sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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
#[derive(Serialize)]
struct CertificateExpiring<'a> {
    connection: &'a Connection,
    #[serde(with = "time::serde::rfc3339")]
    certificate_expires_at: OffsetDateTime,
    /// Negative once expired.
    days_left: i64,
}

/// How long before expiry `connection.certificate_expiring` is recorded.
pub const CERTIFICATE_WARNING: time::Duration = time::Duration::days(30);

/// Checks certificate expiry hourly until `stop` completes.
pub async fn run_certificate_worker(store: Store, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        if let Err(e) = store.warn_expiring_certificates(OffsetDateTime::now_utc(), CERTIFICATE_WARNING).await {
            tracing::warn!(error = format!("{e:#}"), "certificate expiry check failed");
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
    }
}

/// Event payload of `authentication.sso_*`.
#[derive(Serialize)]
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
        let created = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let exists: Option<(Uuid,)> =
                sqlx::query_as("SELECT id FROM organizations WHERE id = $1").bind(org).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Ok(None);
            }
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
            .execute(&mut *tx)
            .await?;
            let (connection, _) = connection_in!(tx, id).connection();
            insert_event!(tx, &NewEvent::new(EventKind::ConnectionCreated, Some(org), &connection))?;
            tx.commit().await?;
            Some(connection)
        });
        self.announce_events();
        Ok(created)
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
        let updated = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let changed = sqlx::query(
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
            .execute(&mut *tx)
            .await?;
            if changed.rows_affected() == 0 {
                return Ok(None);
            }
            let (connection, _) = connection_in!(tx, id).connection();
            let org = connection.organization_id;
            insert_event!(tx, &NewEvent::new(EventKind::ConnectionUpdated, Some(org), &connection))?;
            tx.commit().await?;
            Some(connection)
        });
        self.announce_events();
        Ok(updated)
    }

    /// Moves a connection to `active` or `inactive`; records `sso.enabled` /
    /// `sso.disabled` when the state changes. `None`: no such connection.
    pub async fn set_connection_active(&self, id: Uuid, active: bool) -> Result<Option<Connection>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let target = if active { "active" } else { "inactive" };
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let before: Option<(String,)> = sqlx::query_as("SELECT state FROM sso_connections WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((before,)) = before else { return Ok(None) };
            let changes = (before == "active") != active;
            if before != target && (active || before == "active") {
                sqlx::query("UPDATE sso_connections SET state = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(target)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            let (connection, _) = connection_in!(tx, id).connection();
            if changes {
                let kind = if active { EventKind::SsoEnabled } else { EventKind::SsoDisabled };
                insert_event!(tx, &NewEvent::new(kind, Some(connection.organization_id), &connection))?;
            }
            tx.commit().await?;
            Some(connection)
        });
        self.announce_events();
        Ok(result)
    }

    /// Deletes a connection (`sso.disabled` first if it was active, then
    /// `connection.deleted`).
    pub async fn delete_connection(&self, id: Uuid) -> Result<bool, StoreError> {
        let Some(current) = self.get_connection(id).await? else { return Ok(false) };
        let c = current.connection;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let gone = sqlx::query("DELETE FROM sso_connections WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if gone.rows_affected() == 0 {
                return Ok(false);
            }
            if c.state == "active" {
                let disabled = Connection { state: "inactive".into(), ..c.clone() };
                insert_event!(tx, &NewEvent::new(EventKind::SsoDisabled, Some(c.organization_id), &disabled))?;
            }
            insert_event!(tx, &NewEvent::new(EventKind::ConnectionDeleted, Some(c.organization_id), &c))?;
            tx.commit().await?;
        });
        self.announce_events();
        Ok(true)
    }

    /// Records a sign-in attempt and its `authentication.sso_*` event.
    pub async fn record_attempt(
        &self,
        connection: &Connection,
        purpose: &str,
        outcome: Result<&Profile, &str>,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let (kind, email, reason) = match outcome {
            Ok(p) => (EventKind::AuthenticationSsoSucceeded, Some(p.email.as_str()), None),
            Err(reason) => (EventKind::AuthenticationSsoFailed, None, Some(reason)),
        };
        let data = AttemptEvent {
            connection_id: connection.id,
            connection_type: connection.connection_type,
            purpose,
            email,
            reason,
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
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
            .execute(&mut *tx)
            .await?;
            if purpose == "test" && reason.is_none() {
                sqlx::query("UPDATE sso_connections SET tested_at = $2 WHERE id = $1")
                    .bind(connection.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_event!(tx, &NewEvent::new(kind, Some(connection.organization_id), &data))?;
            tx.commit().await?;
        });
        self.announce_events();
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
            let wrote = with_pool!(self, |pool| {
                let mut tx = pool.begin_write().await?;
                let claimed = sqlx::query(
                    r#"
                    UPDATE sso_connections SET cert_warned_for = cert_expires_at
                    WHERE id = $1 AND cert_expires_at = $2 AND (cert_warned_for IS NULL OR cert_warned_for <> cert_expires_at)
                    "#,
                )
                .bind(c.id)
                .bind(expires)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 1 {
                    let event = NewEvent::new(EventKind::ConnectionCertificateExpiring, Some(c.organization_id), &data);
                    insert_event!(tx, &event)?;
                }
                tx.commit().await?;
                claimed == 1
            });
            if wrote {
                recorded += 1;
                tracing::warn!(connection_id = %c.id, expires = %expires, "IdP certificate expiring");
            }
        }
        if recorded > 0 {
            self.announce_events();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(provider: &str, kind: &str) -> Connection {
        let now = OffsetDateTime::now_utc();
        Connection {
            id: Uuid::now_v7(),
            organization_id: Uuid::now_v7(),
            connection_type: if kind == "saml" { "saml" } else { "oidc" },
            provider: provider.into(),
            name: "Test".into(),
            state: "draft".into(),
            idp: IdpConfig::Saml(SamlConfig::default()),
            has_client_secret: false,
            attribute_map: AttributeMap::defaults(provider, kind),
            certificate_expires_at: None,
            tested_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn entra_claims_map_to_the_profile() {
        let c = connection("entra", "saml");
        let attrs = serde_json::json!({
            format!("{CLAIMS}/emailaddress"): ["ada@contoso.example"],
            format!("{CLAIMS}/givenname"): ["Ada"],
            format!("{CLAIMS}/surname"): ["Lovelace"],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": ["g1", "g2"],
        });
        let p = Profile::from_attributes(&c, "AAF23x", attrs.as_object().unwrap()).unwrap();
        assert_eq!(p.email, "ada@contoso.example");
        assert_eq!((p.first_name.as_deref(), p.last_name.as_deref()), (Some("Ada"), Some("Lovelace")));
        assert_eq!(p.groups, ["g1", "g2"]);
        assert_eq!(p.id, Profile::from_attributes(&c, "AAF23x", attrs.as_object().unwrap()).unwrap().id);
        assert_ne!(p.id, Profile::from_attributes(&c, "other", attrs.as_object().unwrap()).unwrap().id);
    }

    #[test]
    fn a_missing_email_names_what_was_received() {
        let c = connection("okta", "saml");
        let attrs = serde_json::json!({ "firstName": ["Ada"] });
        let e = Profile::from_attributes(&c, "00u1", attrs.as_object().unwrap()).unwrap_err();
        assert!(e.contains("missing email attribute") && e.contains("`email`") && e.contains("firstName"), "{e}");
        // An email-shaped NameID is the fallback.
        let p = Profile::from_attributes(&c, "ada@x.example", attrs.as_object().unwrap()).unwrap();
        assert_eq!(p.email, "ada@x.example");
    }
}
