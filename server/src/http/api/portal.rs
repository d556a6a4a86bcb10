//! Portal links: `POST /api/v1/portal/links` issues a single-use,
//! short-lived link; `DELETE /api/v1/portal/links/{id}` revokes one (and the
//! session it started); `POST /api/v1/organizations/{id}/portal-sessions/revoke`
//! ends all of an organization's portal access.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, parse_id};
use crate::http::AppState;
use crate::http::error::{ApiError, Problem};
use crate::portal::{IssuedLink, LinkError, LinkRequest, issue_link};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(revoke)).routes(routes!(revoke_organization))
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

/// Create a single-use portal link (optionally emailed).
#[utoipa::path(
    post,
    path = "/portal/links",
    operation_id = "createPortalLink",
    tag = "portal",
    request_body = LinkRequest,
    responses(
        (status = 201, description = "Created", body = IssuedLink),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, unknown organization, or email without SMTP", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The email could not be sent; the link was voided", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LinkRequest>,
) -> Result<(StatusCode, Json<IssuedLink>), ApiError> {
    let link = issue_link(&state.store, &state.settings, state.mailer.as_deref(), &body).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Revoke a portal link: it no longer opens, and the session it started ends (idempotent).
#[utoipa::path(
    delete,
    path = "/portal/links/{id}",
    operation_id = "revokePortalLink",
    tag = "portal",
    params(("id" = Uuid, Path, description = "Portal link id")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 404, description = "No such link", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// What revoking an organization's portal access ended.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PortalAccessRevocation)]
struct RevokedAccessOut {
    #[schema(schema_with = crate::fields::schema::object::portal_access_revocation)]
    object: &'static str,
    organization_id: Uuid,
    /// Ids of the portal sessions ended.
    sessions_revoked: Vec<Uuid>,
    /// Ids of the unopened links revoked.
    links_revoked: Vec<Uuid>,
}

/// End every portal session of an organization and revoke its unopened links.
#[utoipa::path(
    post,
    path = "/organizations/{id}/portal-sessions/revoke",
    operation_id = "revokePortalAccess",
    tag = "portal",
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "What was revoked", body = RevokedAccessOut),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
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
