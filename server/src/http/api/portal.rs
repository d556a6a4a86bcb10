//! Portal links: `POST /api/v1/portal/links` issues a single-use,
//! short-lived link; `DELETE /api/v1/portal/links/{id}` revokes one (and the
//! session it started); `POST /api/v1/organizations/{id}/portal-sessions/revoke`
//! ends all of an organization's portal access.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Serialize;
use uuid::Uuid;

use super::{ApiJson, parse_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::portal::{IssuedLink, LinkError, LinkRequest, issue_link};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/links", post(create))
        .route("/portal/links/{id}", delete(revoke))
        .route("/organizations/{id}/portal-sessions/revoke", post(revoke_organization))
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Invalid(errors) => ApiError::Validation(errors),
            LinkError::EmailNotConfigured => ApiError::invalid("email", e.to_string()),
            LinkError::EmailFailed(cause) => {
                tracing::warn!(error = format!("{cause:#}"), "portal link email failed");
                ApiError::BadGateway(
                    "the email could not be delivered, so the link was voided; check the SMTP settings and try again"
                        .into(),
                )
            }
            LinkError::Store(e) => e.into(),
        }
    }
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LinkRequest>,
) -> Result<(StatusCode, Json<IssuedLink>), ApiError> {
    let link = issue_link(&state.store, &state.settings, state.mailer.as_deref(), &body).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Idempotent: revoking a revoked link is a 204 too.
#[tracing::instrument(skip_all, fields(link_id = %id))]
async fn revoke(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let uuid = parse_id(&id, "portal link")?;
    let revoked = state
        .store
        .revoke_portal_link(uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("portal link {id} not found")))?;
    if !revoked.already_revoked {
        tracing::info!(org_id = %revoked.organization_id, sessions = revoked.sessions_revoked.len(), "portal link revoked");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct RevokedAccessOut {
    object: &'static str,
    organization_id: Uuid,
    sessions_revoked: Vec<Uuid>,
    links_revoked: Vec<Uuid>,
}

#[tracing::instrument(skip_all, fields(org_id = %id))]
async fn revoke_organization(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RevokedAccessOut>, ApiError> {
    let uuid = parse_id(&id, "organization")?;
    let revoked = state
        .store
        .revoke_portal_access(uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    tracing::info!(
        sessions = revoked.sessions_revoked.len(),
        links = revoked.links_revoked.len(),
        "portal access revoked"
    );
    Ok(Json(RevokedAccessOut {
        object: "portal_access_revocation",
        organization_id: uuid,
        sessions_revoked: revoked.sessions_revoked,
        links_revoked: revoked.links_revoked,
    }))
}
