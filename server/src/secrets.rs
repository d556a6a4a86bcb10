//! High-entropy bearer tokens (API keys now; SCIM tokens and portal links
//! later). A token is shown once; the database keeps a short random lookup
//! id and the SHA-256 of the whole token, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of the lookup part that follows the prefix.
const LOOKUP_LEN: usize = 12;

/// A freshly minted token: `<prefix><lookup><secret>`.
pub struct MintedToken {
    /// The whole token, to show once.
    pub token: SecretString,
    /// Indexed, non-secret part used to find the stored hash.
    pub lookup: String,
    /// SHA-256 of the whole token.
    pub hash: [u8; 32],
}

/// Mints a token with `prefix` (e.g. `psk_`): 9 random bytes of lookup and
/// 32 random bytes (256 bits) of secret, base64url.
pub fn mint(prefix: &str) -> MintedToken {
    let mut lookup_bytes = [0u8; 9];
    let mut secret_bytes = [0u8; 32];
    getrandom::fill(&mut lookup_bytes).expect("OS random source available");
    getrandom::fill(&mut secret_bytes).expect("OS random source available");
    let lookup = URL_SAFE_NO_PAD.encode(lookup_bytes);
    debug_assert_eq!(lookup.len(), LOOKUP_LEN);
    let token = format!("{prefix}{lookup}{}", URL_SAFE_NO_PAD.encode(secret_bytes));
    let hash = sha256(&token);
    MintedToken { token: SecretString::from(token), lookup, hash }
}

/// A fresh domain verification token (published in DNS, so not secret,
/// only unguessable): 160 random bits, lowercase hex.
pub fn domain_verification_token() -> String {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("OS random source available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a presented token into its lookup part, if it has the expected
/// shape. Never logs or returns the secret part.
pub fn lookup_of<'a>(prefix: &str, presented: &'a SecretString) -> Option<&'a str> {
    let rest = presented.expose_secret().strip_prefix(prefix)?;
    if rest.len() <= LOOKUP_LEN || !rest.is_ascii() {
        return None;
    }
    Some(&rest[..LOOKUP_LEN])
}

/// Constant-time comparison of a presented token against a stored hash.
pub fn matches(presented: &SecretString, stored_hash: &[u8]) -> bool {
    let hash = sha256(presented.expose_secret());
    hash.as_slice().ct_eq(stored_hash).into()
}

/// SHA-256 of a token (what is stored, and the key of in-process caches).
pub fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_and_are_unique() {
        let a = mint("psk_");
        let b = mint("psk_");
        assert_ne!(a.token.expose_secret(), b.token.expose_secret());
        assert!(a.token.expose_secret().starts_with("psk_"));
        assert_eq!(lookup_of("psk_", &a.token), Some(a.lookup.as_str()));
        assert!(matches(&a.token, &a.hash));
        assert!(!matches(&b.token, &a.hash));
    }

    #[test]
    fn malformed_tokens_have_no_lookup() {
        assert_eq!(lookup_of("psk_", &SecretString::from("psk_short")), None);
        assert_eq!(lookup_of("psk_", &SecretString::from("other_aaaaaaaaaaaaaaaaaaaaaaaa")), None);
    }
}
