//! Starting a sign-in at the customer's IdP: the login row (state, SAML
//! request id or OIDC nonce and sealed PKCE verifier) and the IdP URL. Used
//! by the vendor's `/sso/authorize` (`http/sso.rs`) and the portal's Test
//! sign-in, which have no request state in common.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::sso::error::LoginError;
use crate::sso::{ConnectionWithSecret, IdpConfig, saml};
use crate::store::Store;
use crate::store::logins::NewLogin;

/// A random URL-safe token and its SHA-256.
pub fn random_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("OS random source available");
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = Sha256::digest(token.as_bytes()).to_vec();
    (token, hash)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// What starting a login needs (the portal has no `AppState`).
pub struct LoginContext<'a> {
    pub store: &'a Store,
    pub public_url: &'a str,
    pub cipher: &'a crate::crypto::Cipher,
    pub oidc: &'a crate::sso::oidc::OidcProviders,
}

impl LoginContext<'_> {
    /// Creates the login and returns the IdP URL to send the browser to.
    pub async fn start(
        &self,
        connection: &ConnectionWithSecret,
        purpose: &str,
        redirect_uri: Option<&str>,
        client_state: Option<&str>,
    ) -> Result<String, LoginError> {
        let c = &connection.connection;
        let (token, state_hash) = random_token();
        let mut login = NewLogin {
            connection_id: c.id,
            purpose,
            redirect_uri,
            client_state,
            saml_request_id: None,
            oidc_nonce: None,
            oidc_verifier_sealed: None,
        };
        match &c.idp {
            IdpConfig::Saml(config) => {
                let urls = saml::SpUrls::new(self.public_url, c.id);
                let request_id = saml::new_request_id();
                let url =
                    saml::authn_request_url(config, &urls, &request_id, &token).map_err(LoginError::Unavailable)?;
                login.saml_request_id = Some(&request_id);
                self.store
                    .create_login(&state_hash, &login)
                    .await
                    .map_err(|e| LoginError::Unavailable(e.to_string()))?;
                Ok(url)
            }
            IdpConfig::Oidc(config) => {
                let started = self
                    .oidc
                    .start(config, &format!("{}/sso/oidc/callback", self.public_url.trim_end_matches('/')), &token)
                    .await
                    .map_err(LoginError::Unavailable)?;
                let sealed = self.cipher.seal(&started.pkce_verifier);
                login.oidc_nonce = Some(&started.nonce);
                login.oidc_verifier_sealed = Some(&sealed);
                self.store
                    .create_login(&state_hash, &login)
                    .await
                    .map_err(|e| LoginError::Unavailable(e.to_string()))?;
                Ok(started.url)
            }
        }
    }
}
