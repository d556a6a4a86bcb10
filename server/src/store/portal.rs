//! Portal links and sessions: storage and the rules around them.
//!
//! A link is a single-use bearer token (`plt_…`) for one organization and a
//! set of intents. Opening it atomically marks it used and starts a session
//! (`pss_…`, in an HttpOnly cookie) with the same scope, a hard lifetime and an
//! idle timeout. Both tokens are stored as SHA-256 hashes only.

use app::dto::Intent;
use secrecy::SecretString;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::events::{EventKind, NewEvent};
use crate::secrets;
use crate::store::{Store, StoreError, on_tx, with_pool};

/// Prefix of portal link tokens.
pub const LINK_PREFIX: &str = "plt_";
/// Prefix of portal session tokens.
pub const SESSION_PREFIX: &str = "pss_";

/// Refresh `last_seen_at` at most this often (keeps page views from being
/// writes).
const SEEN_GRANULARITY: Duration = Duration::seconds(30);

/// A validated request for a link.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub organization_id: Uuid,
    pub intents: Vec<Intent>,
    pub ttl: Duration,
    pub return_url: Option<String>,
    pub success_url: Option<String>,
    pub email: Option<String>,
}

/// A link just created: the only time its token exists in clear.
pub struct CreatedLink {
    pub id: Uuid,
    pub token: SecretString,
    pub organization_id: Uuid,
    pub organization_name: String,
    pub intents: Vec<Intent>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Outcome of opening a link.
pub enum Redeemed {
    /// A session was started; `token` goes into the cookie.
    Started { token: SecretString, organization_id: Uuid },
    /// No such link, or the token does not match.
    Unknown,
    /// Opened before (links are single-use).
    AlreadyUsed,
    /// Past its expiry.
    Expired,
    /// Revoked by the vendor before it was opened.
    Revoked,
}

/// What revoking one link did.
#[derive(Debug, Clone, Serialize)]
pub struct RevokedLink {
    pub link_id: Uuid,
    pub organization_id: Uuid,
    /// Sessions the link had started, ended now.
    pub sessions_revoked: Vec<Uuid>,
    /// The link was revoked before: nothing changed, no event recorded.
    #[serde(skip)]
    pub already_revoked: bool,
}

/// What revoking an organization's portal access did.
#[derive(Debug, Clone, Serialize)]
pub struct RevokedAccess {
    /// Live sessions ended.
    pub sessions_revoked: Vec<Uuid>,
    /// Links not yet opened and not expired, revoked.
    pub links_revoked: Vec<Uuid>,
}

/// Why a session was revoked (`portal.session.revoked`'s `reason`).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum RevocationReason {
    /// Its link was revoked.
    LinkRevoked,
    /// All of the organization's portal sessions were revoked.
    OrganizationRevoked,
}

/// A live portal session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub organization_name: String,
    /// Organization-level branding overrides.
    pub logo_url: Option<String>,
    pub accent_color: Option<String>,
    pub intents: Vec<Intent>,
    pub return_url: Option<String>,
    pub success_url: Option<String>,
    pub embedded: bool,
    /// When the session ends at the latest, counting the idle timeout from
    /// this request.
    pub ends_at: OffsetDateTime,
}

/// Session lifetime rules.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub ttl: Duration,
    pub idle: Duration,
}

fn intents_to_db(intents: &[Intent]) -> String {
    intents.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(",")
}

fn intents_from_db(s: &str) -> Vec<Intent> {
    s.split(',').filter_map(Intent::parse).collect()
}

#[derive(Serialize)]
struct LinkCreatedData<'a> {
    link_id: Uuid,
    intents: Vec<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    emailed: bool,
}

#[derive(Serialize)]
struct SessionStartedData<'a> {
    session_id: Uuid,
    link_id: Uuid,
    intents: Vec<&'a str>,
    embedded: bool,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

#[derive(Serialize)]
struct SessionRevokedData {
    session_id: Uuid,
    link_id: Option<Uuid>,
    reason: RevocationReason,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: Uuid,
    organization_id: Uuid,
    secret_hash: Vec<u8>,
    intents: String,
    return_url: Option<String>,
    success_url: Option<String>,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    organization_id: Uuid,
    organization_name: String,
    logo_url: Option<String>,
    accent_color: Option<String>,
    secret_hash: Vec<u8>,
    intents: String,
    return_url: Option<String>,
    success_url: Option<String>,
    embedded: bool,
    expires_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
}

impl Store {
    /// Creates a link; `None` when the organization does not exist. Records
    /// `portal.link.created` (never the token).
    #[tracing::instrument(skip_all, fields(org_id = %new.organization_id))]
    pub async fn create_portal_link(&self, new: &NewLink) -> Result<Option<CreatedLink>, StoreError> {
        let minted = secrets::mint(LINK_PREFIX);
        let id = Uuid::now_v7();
        let now = self.now();
        let expires_at = now + new.ttl;
        let mut tx = self.write().await?;
        let organization_name = on_tx!(tx, |conn| {
            let org: Option<(String,)> = sqlx::query_as("SELECT name FROM organizations WHERE id = $1")
                .bind(new.organization_id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some((organization_name,)) = org else {
                return Ok(None);
            };
            sqlx::query(
                r#"
                INSERT INTO portal_links
                    (id, organization_id, lookup, secret_hash, intents, return_url, success_url, email,
                     created_at, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                "#,
            )
            .bind(id)
            .bind(new.organization_id)
            .bind(&minted.lookup)
            .bind(minted.hash.as_slice())
            .bind(intents_to_db(&new.intents))
            .bind(new.return_url.as_deref())
            .bind(new.success_url.as_deref())
            .bind(new.email.as_deref())
            .bind(now)
            .bind(expires_at)
            .execute(&mut *conn)
            .await?;
            organization_name
        });
        let data = LinkCreatedData {
            link_id: id,
            intents: new.intents.iter().map(|i| i.as_str()).collect(),
            expires_at,
            emailed: new.email.is_some(),
        };
        tx.record(&NewEvent::new(EventKind::PortalLinkCreated, Some(new.organization_id), &data)).await?;
        tx.commit().await?;
        Ok(Some(CreatedLink {
            id,
            token: minted.token,
            organization_id: new.organization_id,
            organization_name,
            intents: new.intents.clone(),
            created_at: now,
            expires_at,
        }))
    }

    /// Makes a link unusable (e.g. its email could not be sent).
    pub async fn void_portal_link(&self, id: Uuid) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("UPDATE portal_links SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id)
                .bind(self.now())
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Opens a link: single use is enforced by a conditional update, so two
    /// concurrent opens cannot both start a session. Records
    /// `portal.session.started`.
    #[tracing::instrument(skip_all)]
    pub async fn redeem_portal_link(
        &self,
        presented: &SecretString,
        embedded: bool,
        policy: SessionPolicy,
    ) -> Result<Redeemed, StoreError> {
        let Some(lookup) = secrets::lookup_of(LINK_PREFIX, presented) else {
            return Ok(Redeemed::Unknown);
        };
        let now = self.now();
        let mut tx = self.write().await?;
        let (minted, link, session_id, expires_at) = on_tx!(tx, |conn| {
            let row: Option<LinkRow> = sqlx::query_as(
                r#"
                SELECT id, organization_id, secret_hash, intents, return_url, success_url, expires_at, used_at,
                       revoked_at
                FROM portal_links WHERE lookup = $1
                "#,
            )
            .bind(lookup)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(link) = row.filter(|r| secrets::matches(presented, &r.secret_hash)) else {
                return Ok(Redeemed::Unknown);
            };
            if link.revoked_at.is_some() {
                return Ok(Redeemed::Revoked);
            }
            if link.used_at.is_some() {
                return Ok(Redeemed::AlreadyUsed);
            }
            if link.expires_at <= now {
                return Ok(Redeemed::Expired);
            }
            let claimed = sqlx::query(
                "UPDATE portal_links SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL",
            )
            .bind(link.id)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if claimed != 1 {
                return Ok(Redeemed::AlreadyUsed);
            }
            let minted = secrets::mint(SESSION_PREFIX);
            let session_id = Uuid::now_v7();
            let expires_at = now + policy.ttl;
            sqlx::query(
                r#"
                INSERT INTO portal_sessions
                    (id, organization_id, link_id, lookup, secret_hash, intents, return_url, success_url,
                     embedded, created_at, expires_at, last_seen_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10)
                "#,
            )
            .bind(session_id)
            .bind(link.organization_id)
            .bind(link.id)
            .bind(&minted.lookup)
            .bind(minted.hash.as_slice())
            .bind(&link.intents)
            .bind(link.return_url.as_deref())
            .bind(link.success_url.as_deref())
            .bind(embedded)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *conn)
            .await?;
            (minted, link, session_id, expires_at)
        });
        let intents = intents_from_db(&link.intents);
        let data = SessionStartedData {
            session_id,
            link_id: link.id,
            intents: intents.iter().map(|i| i.as_str()).collect(),
            embedded,
            expires_at,
        };
        tx.record(&NewEvent::new(EventKind::PortalSessionStarted, Some(link.organization_id), &data)).await?;
        tx.commit().await?;
        Ok(Redeemed::Started { token: minted.token, organization_id: link.organization_id })
    }

    /// Revokes a link: it can no longer be opened, and the session it
    /// started (if any) ends. `None` when there is no such link. Records
    /// `portal.link.revoked` and one `portal.session.revoked` per ended
    /// session; revoking again changes nothing and records nothing.
    #[tracing::instrument(skip_all, fields(link_id = %id))]
    pub async fn revoke_portal_link(&self, id: Uuid) -> Result<Option<RevokedLink>, StoreError> {
        let now = self.now();
        let mut tx = self.write().await?;
        let (organization_id, sessions) = on_tx!(tx, |conn| {
            let row: Option<(Uuid, Option<OffsetDateTime>)> =
                sqlx::query_as("SELECT organization_id, revoked_at FROM portal_links WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some((organization_id, revoked_at)) = row else {
                return Ok(None);
            };
            if revoked_at.is_some() {
                return Ok(Some(RevokedLink {
                    link_id: id,
                    organization_id,
                    sessions_revoked: Vec::new(),
                    already_revoked: true,
                }));
            }
            sqlx::query("UPDATE portal_links SET revoked_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            let sessions: Vec<(Uuid,)> = sqlx::query_as(
                "UPDATE portal_sessions SET revoked_at = $2 WHERE link_id = $1 AND revoked_at IS NULL RETURNING id",
            )
            .bind(id)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            (organization_id, sessions)
        });
        let revoked = RevokedLink {
            link_id: id,
            organization_id,
            sessions_revoked: sessions.into_iter().map(|(s,)| s).collect(),
            already_revoked: false,
        };
        tx.record(&NewEvent::new(EventKind::PortalLinkRevoked, Some(organization_id), &revoked)).await?;
        for session_id in &revoked.sessions_revoked {
            let data = SessionRevokedData {
                session_id: *session_id,
                link_id: Some(id),
                reason: RevocationReason::LinkRevoked,
            };
            tx.record(&NewEvent::new(EventKind::PortalSessionRevoked, Some(organization_id), &data)).await?;
        }
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Ends every live portal session of an organization and revokes its
    /// links that are neither opened nor expired (an IT admin who left keeps
    /// nothing that opens the portal). `None` when the organization does not
    /// exist. Records `portal.session.revoked` and `portal.link.revoked` for
    /// each.
    #[tracing::instrument(skip_all, fields(org_id = %organization_id))]
    pub async fn revoke_portal_access(&self, organization_id: Uuid) -> Result<Option<RevokedAccess>, StoreError> {
        let now = self.now();
        let mut tx = self.write().await?;
        if !super::orgs::exists(&mut tx, organization_id).await? {
            return Ok(None);
        }
        let (sessions, links) = on_tx!(tx, |conn| {
            let sessions: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
                r#"
                UPDATE portal_sessions SET revoked_at = $2
                WHERE organization_id = $1 AND revoked_at IS NULL AND expires_at > $2
                RETURNING id, link_id
                "#,
            )
            .bind(organization_id)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            let links: Vec<(Uuid,)> = sqlx::query_as(
                r#"
                UPDATE portal_links SET revoked_at = $2
                WHERE organization_id = $1 AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $2
                RETURNING id
                "#,
            )
            .bind(organization_id)
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            (sessions, links)
        });
        for (session_id, link_id) in &sessions {
            let data = SessionRevokedData {
                session_id: *session_id,
                link_id: *link_id,
                reason: RevocationReason::OrganizationRevoked,
            };
            tx.record(&NewEvent::new(EventKind::PortalSessionRevoked, Some(organization_id), &data)).await?;
        }
        for (link_id,) in &links {
            let data = RevokedLink {
                link_id: *link_id,
                organization_id,
                sessions_revoked: Vec::new(),
                already_revoked: false,
            };
            tx.record(&NewEvent::new(EventKind::PortalLinkRevoked, Some(organization_id), &data)).await?;
        }
        tx.commit().await?;
        Ok(Some(RevokedAccess {
            sessions_revoked: sessions.into_iter().map(|(s, _)| s).collect(),
            links_revoked: links.into_iter().map(|(l,)| l).collect(),
        }))
    }

    /// The live session for a cookie value, refreshing its idle timer;
    /// `None` when unknown, revoked, expired or idle too long.
    #[tracing::instrument(skip_all)]
    pub async fn portal_session(
        &self,
        presented: &SecretString,
        policy: SessionPolicy,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let Some(lookup) = secrets::lookup_of(SESSION_PREFIX, presented) else {
            return Ok(None);
        };
        let now = self.now();
        let row: Option<SessionRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                r#"
                SELECT s.id, s.organization_id, o.name AS organization_name, o.logo_url, o.accent_color,
                       s.secret_hash, s.intents,
                       s.return_url, s.success_url, s.embedded, s.expires_at, s.last_seen_at
                FROM portal_sessions s JOIN organizations o ON o.id = s.organization_id
                WHERE s.lookup = $1 AND s.revoked_at IS NULL
                "#,
            )
            .bind(lookup)
            .fetch_optional(pool)
            .await
        })?;
        let Some(row) = row.filter(|r| secrets::matches(presented, &r.secret_hash)) else {
            return Ok(None);
        };
        if row.expires_at <= now || row.last_seen_at + policy.idle <= now {
            return Ok(None);
        }
        if now - row.last_seen_at > SEEN_GRANULARITY {
            with_pool!(self, |pool| {
                sqlx::query("UPDATE portal_sessions SET last_seen_at = $2 WHERE id = $1")
                    .bind(row.id)
                    .bind(now)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })?;
        }
        Ok(Some(SessionRecord {
            id: row.id,
            organization_id: row.organization_id,
            organization_name: row.organization_name,
            logo_url: row.logo_url,
            accent_color: row.accent_color,
            intents: intents_from_db(&row.intents),
            return_url: row.return_url,
            success_url: row.success_url,
            embedded: row.embedded,
            ends_at: row.expires_at.min(now + policy.idle),
        }))
    }
}
