//! OpenID Connect relying party (openidconnect): discovery (cached, refreshed
//! when an unknown signing key shows up: JWKS rotation), authorization code
//! flow with PKCE S256, `state` and `nonce`, ID token validation (issuer,
//! audience, expiry, nonce, algorithm allow-list) and a userinfo merge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse, TokenResponse,
};
use serde_json::{Map, Value};

use super::OidcConfig;
use crate::egress::{Egress, EgressError, Redirects};

/// How long discovery documents are reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);
/// Largest discovery document, JWKS or userinfo response read.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// Discovery cache and the egress-checked client used to talk to OpenID
/// providers.
pub struct OidcProviders {
    egress: Egress,
    cache: Mutex<HashMap<String, (Instant, Arc<Discovered>)>>,
}

/// A provider's checked discovery document with its keys.
pub struct Discovered {
    pub metadata: CoreProviderMetadata,
    /// RFC 9207: the provider puts `iss` in its authorization responses
    /// (`authorization_response_iss_parameter_supported`).
    pub iss_parameter: bool,
}

/// What the browser is sent to, and what must be remembered for the callback.
pub struct Started {
    pub url: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A validated sign-in: subject and merged claims.
pub struct Claims {
    pub subject: String,
    pub claims: Map<String, Value>,
}

/// An endpoint named by a discovery document: `https`, or `http` to an
/// allow-listed host, with a checked address when it is an IP literal.
fn checked_endpoint(egress: &Egress, what: &str, url: &url::Url) -> Result<(), String> {
    egress.policy().check_url(url, true).map_err(|e| format!("the discovery document's {what} is refused: {e}"))
}

impl OidcProviders {
    pub fn new(egress: Egress) -> Self {
        Self { egress, cache: Mutex::new(HashMap::new()) }
    }

    /// The provider's discovery document (`.well-known/openid-configuration`)
    /// and its JWKS, from cache unless `refresh`. Every endpoint it names is
    /// checked before it is used; no error repeats what the provider sent.
    pub async fn discover(&self, issuer: &str, refresh: bool) -> Result<Arc<Discovered>, String> {
        if !refresh {
            let cache = self.cache.lock().expect("cache lock");
            if let Some((at, m)) = cache.get(issuer)
                && at.elapsed() < DISCOVERY_TTL
            {
                return Ok(m.clone());
            }
        }
        let failed = |reason: String| format!("discovery failed for issuer {issuer}: {reason}");
        let policy = self.egress.policy();
        policy.parse_url(issuer, true).map_err(|e| failed(e.to_string()))?;
        let config_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let config_url = policy.parse_url(&config_url, true).map_err(|e| failed(e.to_string()))?;
        let doc = self
            .egress
            .get(&config_url, "application/json", Redirects::None, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !doc.is_success() {
            return Err(failed(format!("{config_url} answered {}", doc.describe())));
        }
        let not_config = || {
            failed(format!(
                "the answer of {config_url} ({}) is not an OpenID Provider configuration \
                 (a JSON object with issuer, authorization_endpoint, jwks_uri, response_types_supported, \
                 subject_types_supported and id_token_signing_alg_values_supported)",
                doc.describe()
            ))
        };
        let raw: Value = serde_json::from_slice(&doc.body).map_err(|_| not_config())?;
        let iss_parameter = raw.get("authorization_response_iss_parameter_supported") == Some(&Value::Bool(true));
        let metadata: CoreProviderMetadata = serde_json::from_value(raw).map_err(|_| not_config())?;
        if metadata.issuer().as_str() != issuer {
            return Err(failed(format!(
                "the document at {config_url} names a different issuer; the issuer configured must equal \
                 the document's `issuer` exactly"
            )));
        }
        checked_endpoint(&self.egress, "authorization_endpoint", metadata.authorization_endpoint().url())
            .map_err(failed)?;
        checked_endpoint(&self.egress, "jwks_uri", metadata.jwks_uri().url()).map_err(failed)?;
        if let Some(token) = metadata.token_endpoint() {
            checked_endpoint(&self.egress, "token_endpoint", token.url()).map_err(failed)?;
        }
        if let Some(userinfo) = metadata.userinfo_endpoint() {
            checked_endpoint(&self.egress, "userinfo_endpoint", userinfo.url()).map_err(failed)?;
        }
        let jwks_url = metadata.jwks_uri().url().clone();
        let keys = self
            .egress
            .get(&jwks_url, "application/json", Redirects::None, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| failed(format!("the JWKS: {e}")))?;
        if !keys.is_success() {
            return Err(failed(format!("the JWKS at {jwks_url} answered {}", keys.describe())));
        }
        let jwks: CoreJsonWebKeySet = serde_json::from_slice(&keys.body)
            .map_err(|_| failed(format!("the JWKS at {jwks_url} ({}) is not a JSON Web Key Set", keys.describe())))?;
        let discovered = Arc::new(Discovered { metadata: metadata.set_jwks(jwks), iss_parameter });
        self.cache.lock().expect("cache lock").insert(issuer.to_owned(), (Instant::now(), discovered.clone()));
        Ok(discovered)
    }

    fn client(
        metadata: CoreProviderMetadata,
        config: &OidcConfig,
        secret: Option<String>,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| e.to_string())?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            secret.map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Builds the authorization URL for a new login carrying `state`.
    pub async fn start(&self, config: &OidcConfig, redirect_uri: &str, state: &str) -> Result<Started, String> {
        let discovered = self.discover(&config.issuer, false).await?;
        let client = Self::client(discovered.metadata.clone(), config, None, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, move || CsrfToken::new(state), Nonce::new_random)
            .set_pkce_challenge(challenge);
        for scope in scopes(config) {
            request = request.add_scope(Scope::new(scope));
        }
        let (url, _, nonce) = request.url();
        Ok(Started { url: url.to_string(), nonce: nonce.secret().clone(), pkce_verifier: verifier.secret().clone() })
    }

    /// RFC 9207 mix-up defence: the authorization response's `iss` must name
    /// the connection's issuer when present, and must be present when the
    /// provider advertises it.
    pub async fn check_response_issuer(&self, config: &OidcConfig, iss: Option<&str>) -> Result<(), String> {
        let discovered = self.discover(&config.issuer, false).await?;
        match iss {
            Some(iss) if iss == config.issuer => Ok(()),
            Some(_) => Err(format!(
                "mix-up refused: the authorization response names another issuer than {} (RFC 9207 iss check)",
                config.issuer
            )),
            None if discovered.iss_parameter => Err(format!(
                "mix-up refused: {} promises an `iss` in its authorization responses and this one has none \
                 (RFC 9207)",
                config.issuer
            )),
            None => Ok(()),
        }
    }

    /// Exchanges `code`, validates the ID token and merges userinfo.
    pub async fn finish(
        &self,
        config: &OidcConfig,
        secret: Option<String>,
        redirect_uri: &str,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<Claims, String> {
        let discovered = self.discover(&config.issuer, false).await?;
        let userinfo_endpoint = discovered.metadata.userinfo_endpoint().map(|u| u.url().clone());
        let client = Self::client(discovered.metadata.clone(), config, secret.clone(), redirect_uri)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| "the provider publishes no token endpoint".to_owned())?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.egress)
            .await
            .map_err(token_error)?;
        let id_token = token.id_token().ok_or("the provider returned no ID token (is `openid` allowed?)")?.clone();
        let nonce = Nonce::new(nonce.to_owned());
        let verify = |client: &CoreClient<_, _, _, _, _, _>| -> Result<String, String> {
            let verifier = client.id_token_verifier().set_allowed_algs(vec![
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
                CoreJwsSigningAlgorithm::RsaSsaPssSha256,
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                CoreJwsSigningAlgorithm::EcdsaP384Sha384,
            ]);
            id_token.claims(&verifier, &nonce).map(|c| c.subject().to_string()).map_err(|e| e.to_string())
        };
        let subject = match verify(&client) {
            Ok(s) => s,
            // A key we do not know yet: the provider rotated; refresh once.
            Err(_) => {
                let fresh = self.discover(&config.issuer, true).await?;
                let client = Self::client(fresh.metadata.clone(), config, secret, redirect_uri)?;
                verify(&client).map_err(|e| format!("the ID token is invalid: {e}"))?
            }
        };
        // The verified token's payload, for claims the typed model drops
        // (groups, custom attributes).
        let mut claims = jwt_payload(&id_token.to_string()).unwrap_or_default();
        for k in ["iss", "aud", "exp", "iat", "nonce", "at_hash", "c_hash", "auth_time", "azp", "sid"] {
            claims.remove(k);
        }
        if let Some(endpoint) = userinfo_endpoint {
            let request = self
                .egress
                .request(reqwest::Method::GET, endpoint)
                .bearer_auth(token.access_token().secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .build()
                .map_err(|_| "the userinfo endpoint is not a URL".to_owned())?;
            let info = self
                .egress
                .send(request, Redirects::None, MAX_DOCUMENT_BYTES)
                .await
                .map_err(|e| format!("the userinfo request failed: {e}"))?;
            if info.is_success() {
                let parsed: Map<String, Value> = serde_json::from_slice(&info.body)
                    .map_err(|_| format!("the userinfo response ({}) is not a JSON object", info.describe()))?;
                if parsed.get("sub").and_then(Value::as_str).is_some_and(|s| s != subject) {
                    return Err("the userinfo subject differs from the ID token's".into());
                }
                for (k, v) in parsed {
                    claims.entry(k).or_insert(v);
                }
            }
        }
        Ok(Claims { subject, claims })
    }
}

/// A token endpoint failure in words that never repeat the answer's body.
fn token_error(e: RequestTokenError<EgressError, StandardErrorResponse<CoreErrorResponseType>>) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code: String = r.error().to_string().chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
            format!("the token request failed: the provider answered `{code}` (check the client ID and secret)")
        }
        RequestTokenError::Request(e) => format!("the token request failed: {e}"),
        RequestTokenError::Parse(_, body) => {
            format!("the token request failed: the answer ({} bytes) is not an OAuth token response", body.len())
        }
        RequestTokenError::Other(_) => "the token request failed: the answer is not a JSON OAuth token response".into(),
    }
}

fn scopes(config: &OidcConfig) -> Vec<String> {
    let mut scopes: Vec<String> = vec!["email".into(), "profile".into()];
    for s in &config.scopes {
        if s != "openid" && !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    scopes
}

fn jwt_payload(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Checks an OIDC configuration's shape (discovery is checked on save).
pub fn validate(config: &OidcConfig) -> Result<(), String> {
    let url = url::Url::parse(&config.issuer).map_err(|_| "the issuer is not a URL".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("the issuer must be an https URL".into());
    }
    if config.client_id.trim().is_empty() {
        return Err("the client ID is required".into());
    }
    Ok(())
}
