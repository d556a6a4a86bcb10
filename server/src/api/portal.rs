//! `POST /api/v1/portal/links`: single-use, short-lived portal links.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

use super::ApiJson;
use crate::error::ApiError;
use crate::portal::{IssuedLink, LinkError, LinkRequest, issue_link};
use crate::startup::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/portal/links", post(create))
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
