//! `GET /portal/launch?token=…`: exchanges a portal link for a session
//! cookie and redirects to a clean URL, or explains what went wrong.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::AppState;
use super::limits::{ClientAddr, retry_after_secs};
use crate::mail::html_escape;
use crate::store::portal::{Redeemed, SessionPolicy};

#[derive(Deserialize)]
pub struct LaunchParams {
    token: Option<String>,
}

/// Opens a portal link.
#[tracing::instrument(skip_all)]
pub async fn launch(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    Query(params): Query<LaunchParams>,
) -> Response {
    let vendor = state.settings.vendor.name.clone();
    if let Err(wait) = state.limits.portal_launch.take(&client.key()) {
        let secs = retry_after_secs(wait);
        let mut page = error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &format!(
                "Too many portal links were opened from your network. Wait {secs} seconds, then open the link again; it has not been used up."
            ),
        );
        page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return page;
    }
    let Some(token) = params.token.filter(|t| !t.is_empty()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This address is incomplete",
            &format!(
                "The portal link is missing its token. Open the full link from {vendor}, or ask {vendor} for a new one."
            ),
        );
    };
    // Browsers say when a navigation happens inside an iframe.
    let embedded = headers.get("sec-fetch-dest").is_some_and(|v| v.as_bytes() == b"iframe");
    let policy = SessionPolicy::from_settings(&state.settings);
    let outcome = state.store.redeem_portal_link(&SecretString::from(token), embedded, policy).await;
    match outcome {
        Ok(Redeemed::Started { token, organization_id }) => {
            tracing::info!(org_id = %organization_id, embedded, "portal session started");
            let secure = embedded || state.settings.public_url.starts_with("https://");
            let cookie = session_cookie(token.expose_secret(), policy.ttl.whole_seconds(), secure, embedded);
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/portal")]).into_response();
            let h = response.headers_mut();
            h.insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("cookie is ASCII"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Ok(Redeemed::AlreadyUsed) => error_page(
            StatusCode::GONE,
            "This link has already been used",
            &format!("Portal links work only once. If you closed the portal, ask {vendor} for a new link."),
        ),
        Ok(Redeemed::Expired) => error_page(
            StatusCode::GONE,
            "This link has expired",
            &format!("Portal links are valid for a short time only. Ask {vendor} for a new link."),
        ),
        Ok(Redeemed::Revoked) => error_page(
            StatusCode::GONE,
            "This link has been revoked",
            &format!("{vendor} withdrew this link. If you still need the portal, ask {vendor} for a new link."),
        ),
        Ok(Redeemed::Unknown) => error_page(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            &format!("The link may have been mistyped or cut off. Copy the whole link, or ask {vendor} for a new one."),
        ),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "portal link redemption failed");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The portal is temporarily unavailable",
                "Something went wrong on our side. Try the link again in a minute; it has not been used up.",
            )
        }
    }
}

/// `Set-Cookie` value of the session cookie. Embedded sessions need
/// `SameSite=None; Secure` to be sent from inside a third-party iframe, and
/// `Partitioned` (CHIPS) so browsers that block third-party cookies keep them,
/// scoped to the embedding site.
pub fn session_cookie(token: &str, max_age_secs: i64, secure: bool, embedded: bool) -> String {
    let mut cookie = format!("{}={token}; Path=/; Max-Age={max_age_secs}; HttpOnly", app::backend::SESSION_COOKIE);
    if embedded {
        cookie.push_str("; SameSite=None; Secure; Partitioned");
    } else {
        cookie.push_str("; SameSite=Lax");
        if secure {
            cookie.push_str("; Secure");
        }
    }
    cookie
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Portico</title><link rel=\"stylesheet\" href=\"/pkg/portico.css\">\
         <link rel=\"icon\" type=\"image/svg+xml\" href=\"/pkg/favicon.svg\"></head>\
         <body><main class=\"card narrow centered\" id=\"main\"><h1>{title}</h1><p role=\"alert\">{message}</p></main></body></html>",
        title = html_escape(title),
        message = html_escape(message),
    );
    let mut response = (status, Html(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes_follow_the_context() {
        let top = session_cookie("t", 60, false, false);
        assert_eq!(top, "portico_session=t; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
        assert!(session_cookie("t", 60, true, false).ends_with("SameSite=Lax; Secure"));
        assert!(session_cookie("t", 60, false, true).ends_with("HttpOnly; SameSite=None; Secure; Partitioned"));
    }
}
