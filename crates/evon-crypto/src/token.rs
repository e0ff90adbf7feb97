//! API tokens and their stored digests.

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly made API token in clear text. It exists only long enough to be shown once.
pub struct ApiToken(String);

impl ApiToken {
    /// 160 bits from the operating system's random source, as 40 lowercase hex characters.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 20];
        OsRng.fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// The clear text, for the one moment it is handed to its owner.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest::of(&self.0)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// The SHA-256 digest of a token, hex-encoded: what the database keeps and looks tokens up by.
/// A fast hash is right here: tokens carry 160 random bits, so there is nothing to brute-force.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenDigest(String);

impl TokenDigest {
    /// The digest of a token presented by a client.
    pub fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// Wraps a digest read back from storage.
    pub fn from_stored(hex_digest: String) -> Self {
        Self(hex_digest)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(<redacted>)")
    }
}

/// Compares two digests without a timing difference that depends on where they differ.
pub fn digests_equal(a: &TokenDigest, b: &TokenDigest) -> bool {
    a.0.as_bytes().ct_eq(b.0.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_forty_lowercase_hex() {
        let token = ApiToken::generate();
        assert_eq!(token.reveal().len(), 40);
        assert!(token
            .reveal()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(token.reveal(), ApiToken::generate().reveal());
    }

    #[test]
    fn digests() {
        let digest = TokenDigest::of("abc");
        assert_eq!(
            digest.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(digests_equal(&digest, &TokenDigest::of("abc")));
        assert!(!digests_equal(&digest, &TokenDigest::of("abd")));
        assert!(!format!("{:?}", ApiToken::generate()).contains(|c: char| c.is_ascii_digit()));
    }
}
