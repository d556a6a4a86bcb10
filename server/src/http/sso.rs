//! The login flow the vendor's app drives:
//!
//! `GET /sso/authorize?organization_id|connection_id|domain=…&redirect_uri=…&state=…`
//! → the IdP → `POST /sso/saml/{connection}/acs` or `GET /sso/oidc/callback`
//! → `redirect_uri?code=…&state=…` → `POST /sso/token` (API key) → profile.
//!
//! Logins in flight live in `sso_logins` (keyed by the hash of a random
//! state, single use, 10 minutes); codes in `sso_codes` (hashed, single use,
//! 60 seconds). The portal's "Test sign-in" runs the same flow with purpose
//! `test` and comes back to the portal instead of the vendor.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::limits::ClientAddr;
use crate::services::login::{LoginContext, hash, random_token};
use crate::sso::error::{LoginError, LoginState};
use crate::sso::{Connection, ConnectionState, ConnectionWithSecret, IdpConfig, Profile, saml};
use crate::store::logins::Login;

/// Browser-facing routes (no API key).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sso/authorize", get(authorize))
        .route("/sso/saml/{connection}/metadata", get(sp_metadata))
        .route("/sso/saml/{connection}/acs", post(acs))
        .route("/sso/oidc/callback", get(oidc_callback))
}

/// `POST /sso/token`, behind the API key.
pub fn token_routes() -> Router<AppState> {
    Router::new().route("/sso/token", post(token))
}

/// A readable error page for problems met before the vendor's redirect URI
/// is known to be safe.
fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <link rel=\"stylesheet\" href=\"/pkg/portico.css\"></head><body class=\"sso-error\"><main>\
         <h1>{t}</h1><p class=\"reason\">{d}</p></main></body></html>",
        t = esc(title),
        d = esc(detail)
    );
    (status, Html(body)).into_response()
}

#[derive(Deserialize)]
struct AuthorizeParams {
    organization_id: Option<String>,
    connection_id: Option<String>,
    domain: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// The redirect URI if it is on the allow-list (exact match).
fn allowed_redirect(state: &AppState, uri: &str) -> bool {
    state.settings.sso.redirect_uris.iter().any(|u| u == uri)
}

async fn authorize(State(state): State<AppState>, client: ClientAddr, Query(p): Query<AuthorizeParams>) -> Response {
    if let Err(wait) = state.limits.sso_authorize.take(&client.key()) {
        return ApiError::TooManyRequests(wait).into_response();
    }
    let Some(redirect_uri) = p.redirect_uri.as_deref().filter(|u| !u.is_empty()) else {
        return ApiError::invalid("redirect_uri", "is required").into_response();
    };
    if !allowed_redirect(&state, redirect_uri) {
        return ApiError::invalid(
            "redirect_uri",
            "is not on this deployment's allow-list (sso.redirect_uris); Portico redirects only to listed URIs",
        )
        .into_response();
    }
    let connection = match resolve_connection(&state, &p).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    match start_login(&state, &connection, "login", Some(redirect_uri), p.state.as_deref()).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(reason) => {
            let _ = state.store.record_attempt(&connection.connection, "login", Err(&reason)).await;
            vendor_error(redirect_uri, p.state.as_deref(), "server_error", &reason.to_string())
        }
    }
}

async fn resolve_connection(state: &AppState, p: &AuthorizeParams) -> Result<ConnectionWithSecret, ApiError> {
    let given = [p.organization_id.is_some(), p.connection_id.is_some(), p.domain.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(ApiError::BadRequest("give exactly one of organization_id, connection_id or domain".into()));
    }
    let parse = crate::http::api::parse_id;
    let id = if let Some(c) = &p.connection_id {
        parse(c, "connection")?
    } else {
        let org = if let Some(o) = &p.organization_id {
            parse(o, "organization")?
        } else {
            let domain = p.domain.as_deref().unwrap_or_default().trim().trim_end_matches('.').to_ascii_lowercase();
            let domain = domain.rsplit('@').next().unwrap_or_default().to_owned();
            state
                .store
                .verified_owner(&domain)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no organization has verified the domain {domain:?}")))?
        };
        state
            .store
            .active_connection_of(org)
            .await?
            .ok_or_else(|| ApiError::NotFound("the organization has no active SSO connection".into()))?
    };
    let connection = state
        .store
        .get_connection(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("connection {id} not found")))?;
    if connection.connection.state != ConnectionState::Active {
        return Err(ApiError::BadRequest("the connection is not active".into()));
    }
    Ok(connection)
}

fn oidc_redirect_uri(state: &AppState) -> String {
    format!("{}/sso/oidc/callback", state.settings.public_url.trim_end_matches('/'))
}

/// Creates the login and returns the IdP URL to send the browser to.
pub async fn start_login(
    state: &AppState,
    connection: &ConnectionWithSecret,
    purpose: &str,
    redirect_uri: Option<&str>,
    client_state: Option<&str>,
) -> Result<String, LoginError> {
    let ctx = LoginContext {
        store: &state.store,
        public_url: &state.settings.public_url,
        cipher: &state.cipher,
        oidc: &state.oidc,
    };
    ctx.start(connection, purpose, redirect_uri, client_state).await
}

/// Back to the vendor with an OAuth-style error.
fn vendor_error(redirect_uri: &str, state: Option<&str>, error: &str, description: &str) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "Sign-in failed", description),
    };
    url.query_pairs_mut().append_pair("error", error).append_pair("error_description", description);
    if let Some(s) = state {
        url.query_pairs_mut().append_pair("state", s);
    }
    Redirect::to(url.as_str()).into_response()
}

async fn sp_metadata(State(state): State<AppState>, Path(connection): Path<String>) -> Response {
    let Ok(id) = Uuid::try_parse(&connection) else {
        return ApiError::NotFound("no such connection".into()).into_response();
    };
    match state.store.get_connection(id).await {
        Ok(Some(c)) if c.connection.connection_type == "saml" => {}
        Ok(_) => return ApiError::NotFound("no such SAML connection".into()).into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    }
    match saml::sp_metadata(&saml::SpUrls::new(&state.settings.public_url, id)) {
        Ok(xml) => {
            let mut r = xml.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/samlmetadata+xml"));
            r
        }
        Err(e) => ApiError::Internal(anyhow::anyhow!(e)).into_response(),
    }
}

#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

async fn acs(State(state): State<AppState>, Path(connection): Path<String>, Form(form): Form<AcsForm>) -> Response {
    let Ok(id) = Uuid::try_parse(&connection) else {
        return error_page(StatusCode::NOT_FOUND, "Unknown connection", "This sign-in URL names no connection.");
    };
    let connection = match state.store.get_connection(id).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "Unknown connection", "This connection was deleted."),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let IdpConfig::Saml(config) = connection.connection.idp.clone() else {
        return error_page(StatusCode::NOT_FOUND, "Unknown connection", "This connection does not use SAML.");
    };
    let Some(response) = form.saml_response else {
        return error_page(StatusCode::BAD_REQUEST, "Sign-in failed", "The identity provider sent no SAMLResponse.");
    };
    // A RelayState we issued names the login; without one (or with the
    // IdP's own default RelayState) the response is unsolicited.
    let login = match form.relay_state.as_deref().filter(|s| !s.is_empty()) {
        Some(relay) => match state.store.take_login(&hash(relay)).await {
            Ok(Ok(l)) if l.connection_id == id => Some(l),
            Ok(Err(LoginState::Unknown)) if config.allow_idp_initiated => None,
            Ok(result) => {
                let reason = match result {
                    Ok(_) => LoginError::WrongConnection,
                    Err(state) => LoginError::Login(state),
                };
                let _ = state.store.record_attempt(&connection.connection, "login", Err(&reason)).await;
                return error_page(StatusCode::BAD_REQUEST, "Sign-in failed", &reason.to_string());
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    let urls = saml::SpUrls::new(&state.settings.public_url, id);
    let expected = login.as_ref().and_then(|l| l.saml_request_id.clone());
    let verified = {
        let (config, urls) = (config.clone(), urls.clone());
        tokio::task::spawn_blocking(move || saml::verify_response(&config, &urls, &response, expected.as_deref()))
            .await
            .unwrap_or_else(|e| Err(format!("verification crashed: {e}")))
            .map_err(LoginError::Rejected)
    };
    let outcome = match verified {
        Ok(v) => match state.store.remember_assertion(id, &v.assertion_id, v.remember_until).await {
            Ok(true) => Ok(v),
            Ok(false) => Err(LoginError::ReplayedAssertion),
            Err(e) => return ApiError::from(e).into_response(),
        },
        Err(reason) => Err(reason),
    };
    match (outcome, login) {
        // Unsolicited responses are logins: only an active connection takes them.
        (Ok(_), None) if connection.connection.state != ConnectionState::Active => {
            let reason = LoginError::Inactive(connection.connection.state);
            let _ = state.store.record_attempt(&connection.connection, "login", Err(&reason)).await;
            error_page(StatusCode::BAD_REQUEST, "Sign-in failed", &reason.to_string())
        }
        // IdP-initiated and verified: start a fresh SP-initiated login to the
        // vendor's first redirect URI (the IdP's session answers at once).
        (Ok(v), None) if v.unsolicited => {
            let Some(target) = state.settings.sso.redirect_uris.first().cloned() else {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Sign-in failed",
                    "IdP-initiated sign-in needs a redirect URI in sso.redirect_uris",
                );
            };
            match start_login(&state, &connection, "login", Some(&target), None).await {
                Ok(url) => Redirect::to(&url).into_response(),
                Err(reason) => error_page(StatusCode::BAD_GATEWAY, "Sign-in failed", &reason.to_string()),
            }
        }
        (Ok(v), login) => {
            let profile = Profile::from_attributes(&connection.connection, &v.subject, &v.attributes)
                .map_err(LoginError::Rejected);
            complete(&state, &connection.connection, login, profile).await
        }
        (Err(reason), login) => complete(&state, &connection.connection, login, Err(reason)).await,
    }
}

#[derive(Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// RFC 9207: the issuer of this authorization response.
    iss: Option<String>,
}

async fn oidc_callback(State(state): State<AppState>, Query(p): Query<CallbackParams>) -> Response {
    let Some(token) = p.state.as_deref().filter(|s| !s.is_empty()) else {
        return error_page(StatusCode::BAD_REQUEST, "Sign-in failed", "The identity provider sent no state.");
    };
    let login = match state.store.take_login(&hash(token)).await {
        Ok(Ok(l)) => l,
        Ok(Err(reason)) => return error_page(StatusCode::BAD_REQUEST, "Sign-in failed", &reason.to_string()),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let connection = match state.store.get_connection(login.connection_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page(StatusCode::NOT_FOUND, "Unknown connection", "This connection was deleted."),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let IdpConfig::Oidc(config) = connection.connection.idp.clone() else {
        return error_page(StatusCode::BAD_REQUEST, "Sign-in failed", "This connection does not use OIDC.");
    };
    let issuer_checked = state.oidc.check_response_issuer(&config, p.iss.as_deref()).await;
    let profile = async {
        issuer_checked.map_err(LoginError::Rejected)?;
        if let Some(error) = p.error {
            return Err(LoginError::IdpRefused { error, description: p.error_description });
        }
        let code = p.code.ok_or_else(|| LoginError::Rejected("the identity provider sent no code".into()))?;
        let verifier = login
            .oidc_verifier
            .as_deref()
            .map(|v| state.cipher.open(v))
            .transpose()
            .map_err(|_| LoginError::Unavailable("the stored PKCE verifier cannot be read".into()))?
            .ok_or_else(|| LoginError::Unavailable("the login has no PKCE verifier".into()))?;
        let secret = connection
            .sealed_client_secret
            .as_deref()
            .map(|s| state.cipher.open(s))
            .transpose()
            .map_err(|_| {
                LoginError::Unavailable(
                    "the stored client secret cannot be decrypted (was the encryption key changed?)".into(),
                )
            })?
            .map(|s| s.expose_secret().to_owned());
        let claims = state
            .oidc
            .finish(
                &config,
                secret,
                &oidc_redirect_uri(&state),
                &code,
                login.oidc_nonce.as_deref().unwrap_or_default(),
                verifier.expose_secret(),
            )
            .await
            .map_err(LoginError::Rejected)?;
        Profile::from_attributes(&connection.connection, &claims.subject, &claims.claims).map_err(LoginError::Rejected)
    }
    .await;
    complete(&state, &connection.connection, Some(login), profile).await
}

/// Sets `email_domain_verified`: the email's domain is one of the
/// organization's verified domains.
async fn with_domain_verified(state: &AppState, mut profile: Profile) -> Result<Profile, LoginError> {
    let domain = profile.email.rsplit_once('@').map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase());
    profile.email_domain_verified = match domain {
        Some(d) if !d.is_empty() => {
            state.store.verified_owner(&d).await.map_err(|e| LoginError::Unavailable(e.to_string()))?
                == Some(profile.organization_id)
        }
        _ => false,
    };
    Ok(profile)
}

/// Records the outcome and sends the browser on: to the vendor with a code
/// (or an error), or back to the portal for a test sign-in.
async fn complete(
    state: &AppState,
    connection: &Connection,
    login: Option<Login>,
    profile: Result<Profile, LoginError>,
) -> Response {
    let purpose = login.as_ref().map(|l| l.purpose.clone()).unwrap_or_else(|| "login".into());
    // A login (not a test) completes only while the connection is active:
    // a deactivation during the sign-in wins.
    let profile = match profile {
        Ok(_) if purpose != "test" && connection.state != ConnectionState::Active => {
            Err(LoginError::Inactive(connection.state))
        }
        Ok(p) => with_domain_verified(state, p).await,
        Err(e) => Err(e),
    };
    let _ = state.store.record_attempt(connection, &purpose, profile.as_ref()).await;
    if let Err(reason) = &profile {
        tracing::info!(connection_id = %connection.id, reason = %reason, "SSO sign-in failed");
    }
    let Some(login) = login else {
        let reason = profile.err().map(|e| e.to_string()).unwrap_or_else(|| "the sign-in was not started here".into());
        return error_page(StatusCode::BAD_REQUEST, "Sign-in failed", &reason);
    };
    if login.purpose == "test" {
        let (outcome, result) = match &profile {
            Ok(p) => ("succeeded", serde_json::to_string(p).unwrap_or_default()),
            Err(reason) => ("failed", reason.to_string()),
        };
        if let Err(e) = state.store.finish_test_login(login.id, outcome, &result).await {
            return ApiError::from(e).into_response();
        }
        return Redirect::to(&format!("/portal/sso?test={}", login.id)).into_response();
    }
    let redirect_uri = login.redirect_uri.clone().unwrap_or_default();
    match profile {
        Ok(profile) => {
            let (code, code_hash) = random_token();
            if let Err(e) = state.store.create_code(&code_hash, &profile).await {
                return ApiError::from(e).into_response();
            }
            let Ok(mut url) = url::Url::parse(&redirect_uri) else {
                return error_page(StatusCode::BAD_REQUEST, "Sign-in failed", "the redirect URI is not a URL");
            };
            url.query_pairs_mut().append_pair("code", &code);
            if let Some(s) = &login.client_state {
                url.query_pairs_mut().append_pair("state", s);
            }
            Redirect::to(url.as_str()).into_response()
        }
        Err(reason) => vendor_error(&redirect_uri, login.client_state.as_deref(), "access_denied", &reason.to_string()),
    }
}

#[derive(Deserialize)]
struct TokenBody {
    code: String,
}

async fn token(State(state): State<AppState>, body: axum::body::Bytes) -> Result<Json<Profile>, ApiError> {
    // JSON or form-encoded, as OAuth clients send it.
    let parsed: Result<TokenBody, String> = serde_json::from_slice(&body)
        .map_err(|e| e.to_string())
        .or_else(|_| serde_urlencoded::from_bytes(&body).map_err(|e| e.to_string()));
    let body = parsed.map_err(|_| ApiError::invalid("code", "is required (JSON or form body)"))?;
    let profile =
        state.store.redeem_code(&hash(body.code.trim())).await?.ok_or_else(|| {
            ApiError::BadRequest("invalid_grant: the code is unknown, expired or already used".into())
        })?;
    // Deactivated (or deleted) between the sign-in and the exchange: no profile.
    let active = state
        .store
        .get_connection(profile.connection_id)
        .await?
        .is_some_and(|c| c.connection.state == ConnectionState::Active);
    if !active {
        return Err(ApiError::BadRequest("invalid_grant: the connection was deactivated after this sign-in".into()));
    }
    Ok(Json(profile))
}
