//! Encryption at rest for secrets the server must read back (webhook signing
//! secrets now; IdP client secrets and SP private keys later): AES-256-GCM
//! with a random 96-bit nonce per value, stored as `v1:<base64(nonce|ct)>`.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// The data-encryption key, loaded once at start.
pub struct Cipher {
    key: SecretBox<[u8; 32]>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    /// From a base64-encoded 32-byte key.
    pub fn from_base64(encoded: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD.decode(encoded.trim()).context("encryption_key is not valid base64")?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("encryption_key must decode to exactly 32 bytes (openssl rand -base64 32)"))?;
        Ok(Self { key: SecretBox::new(Box::new(key)) })
    }

    /// A new random key, base64-encoded (for key files and docs).
    pub fn generate_base64() -> SecretString {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("OS random source available");
        SecretString::from(STANDARD.encode(key))
    }

    fn aead(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.key.expose_secret().into())
    }

    /// Encrypts `plaintext` for storage.
    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("OS random source available");
        let ct = self
            .aead()
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("AES-GCM encryption cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("v1:{}", STANDARD.encode(out))
    }

    /// Decrypts a value produced by [`Cipher::seal`].
    pub fn open(&self, stored: &str) -> anyhow::Result<SecretString> {
        let Some(encoded) = stored.strip_prefix("v1:") else { bail!("unknown ciphertext format") };
        let raw = STANDARD.decode(encoded).context("corrupt ciphertext encoding")?;
        if raw.len() < 12 + 16 {
            bail!("ciphertext too short");
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .aead()
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| anyhow::anyhow!("decryption failed: wrong encryption_key or tampered data"))?;
        Ok(SecretString::from(String::from_utf8(pt).context("decrypted value is not UTF-8")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_tampering_and_wrong_keys() {
        let cipher = Cipher::from_base64(Cipher::generate_base64().expose_secret()).unwrap();
        let sealed = cipher.seal("whsec_top-secret");
        assert!(!sealed.contains("top-secret"));
        assert_ne!(sealed, cipher.seal("whsec_top-secret"), "random nonce per value");
        assert_eq!(cipher.open(&sealed).unwrap().expose_secret(), "whsec_top-secret");

        let mut raw = STANDARD.decode(&sealed[3..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(cipher.open(&format!("v1:{}", STANDARD.encode(raw))).is_err());
        let other = Cipher::from_base64(Cipher::generate_base64().expose_secret()).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(Cipher::from_base64("c2hvcnQ=").is_err());
    }
}
