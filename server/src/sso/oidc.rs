//! OpenID Connect relying party (openidconnect): discovery (cached, refreshed
//! when an unknown signing key shows up: JWKS rotation), authorization code
//! flow with PKCE S256, `state` and `nonce`, ID token validation (issuer,
//! audience, expiry, nonce, algorithm allow-list) and a userinfo merge.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Map, Value};

use super::OidcConfig;

/// How long discovery documents are reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(600);

/// Discovery cache and the HTTP client used to talk to OpenID providers.
pub struct OidcProviders {
    http: openidconnect::reqwest::Client,
    cache: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
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

impl Default for OidcProviders {
    fn default() -> Self {
        Self::new()
    }
}

impl OidcProviders {
    pub fn new() -> Self {
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects from an OP is an SSRF vector.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("the HTTP client builds");
        Self { http, cache: Mutex::new(HashMap::new()) }
    }

    /// The provider's discovery document (`.well-known/openid-configuration`
    /// and its JWKS), from cache unless `refresh`.
    pub async fn discover(&self, issuer: &str, refresh: bool) -> Result<CoreProviderMetadata, String> {
        if !refresh {
            let cache = self.cache.lock().expect("cache lock");
            if let Some((at, m)) = cache.get(issuer) {
                if at.elapsed() < DISCOVERY_TTL {
                    return Ok(m.clone());
                }
            }
        }
        let url = IssuerUrl::new(issuer.to_owned()).map_err(|_| format!("the issuer {issuer:?} is not a URL"))?;
        let metadata = CoreProviderMetadata::discover_async(url, &self.http).await.map_err(|e| {
            format!(
                "discovery failed for issuer {issuer}: {} (Portico reads {}/.well-known/openid-configuration; \
                 the issuer in that document must equal the one configured)",
                error_chain(&e),
                issuer.trim_end_matches('/')
            )
        })?;
        self.cache.lock().expect("cache lock").insert(issuer.to_owned(), (Instant::now(), metadata.clone()));
        Ok(metadata)
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
        let metadata = self.discover(&config.issuer, false).await?;
        let client = Self::client(metadata, config, None, redirect_uri)?;
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
        let metadata = self.discover(&config.issuer, false).await?;
        let userinfo_endpoint = metadata.userinfo_endpoint().map(|u| u.url().clone());
        let client = Self::client(metadata, config, secret.clone(), redirect_uri)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| "the provider publishes no token endpoint".to_owned())?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| format!("the token request failed: {} (check the client ID and secret)", error_chain(&e)))?;
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
                let client = Self::client(fresh, config, secret, redirect_uri)?;
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
            let info = self
                .http
                .get(endpoint)
                .bearer_auth(token.access_token().secret())
                .send()
                .await
                .map_err(|e| format!("the userinfo request failed: {}", error_chain(&e)))?;
            if info.status().is_success() {
                let info: Map<String, Value> =
                    info.json().await.map_err(|_| "the userinfo response is not a JSON object".to_owned())?;
                if info.get("sub").and_then(Value::as_str).is_some_and(|s| s != subject) {
                    return Err("the userinfo subject differs from the ID token's".into());
                }
                for (k, v) in info {
                    claims.entry(k).or_insert(v);
                }
            }
        }
        Ok(Claims { subject, claims })
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Checks an OIDC configuration's shape (discovery is checked on save).
pub fn validate(config: &OidcConfig) -> Result<(), String> {
    let url = url::Url::parse(&config.issuer).map_err(|_| "the issuer is not a URL".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("the issuer must be an http(s) URL".into());
    }
    if config.client_id.trim().is_empty() {
        return Err("the client ID is required".into());
    }
    Ok(())
}
