//! Sealed boxes: secrets the hub hands out inside scripts and later takes back, encrypted under
//! the hub key so that only the hub can read them again.
//!
//! A box is XChaCha20-Poly1305 over the plaintext, laid out as
//!
//! ```text
//! version (1 byte, 0x01) || nonce (24 random bytes) || ciphertext (as long as the plaintext) || tag (16 bytes)
//! ```
//!
//! and then encoded as standard base64 with padding, so that it survives being pasted into a
//! shell script. The nonce is 192 random bits from the operating system, which is why the
//! extended-nonce variant is used: random nonces of that size never collide in practice, so the
//! hub needs no counter that would have to survive restarts.
//!
//! The associated data is the version byte followed by a label naming the box's [`Purpose`]
//! (`0x01 || "evon-hub:bootstrap-secrets:v1"`). The label keeps a box made for one purpose from
//! being accepted for another; the version byte is authenticated too, so a box cannot be passed
//! off under a different layout version.
//!
//! Opening fails without saying why: bad base64, an unknown version, a short box, the wrong key,
//! the wrong purpose and tampering all give the same [`OpenError`], so whoever submits a box
//! learns nothing from the answer.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;

use crate::hub_key::HubKey;

/// The layout version, the first byte of every box.
pub const VERSION: u8 = 0x01;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The length of a box holding an empty plaintext: every box is at least this long.
const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// What a box is for. Each purpose authenticates its own label, so a box opens only for the
/// purpose it was sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The secrets embedded in a bootstrap script, which a joining server sends back to the hub.
    BootstrapSecrets,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::BootstrapSecrets => b"evon-hub:bootstrap-secrets:v1",
        }
    }

    /// The associated data: the version byte, then the label.
    fn aad(self) -> Vec<u8> {
        aad_for(self.label())
    }
}

fn aad_for(label: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + label.len());
    aad.push(VERSION);
    aad.extend_from_slice(label);
    aad
}

/// Sealing failed. The cipher refuses only plaintexts of hundreds of gigabytes, so in practice
/// this never happens; it is an error rather than a panic because the hub must not crash on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot seal the payload: it is too large")]
pub struct SealError;

/// Opening failed. Deliberately says nothing about why (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("failed to decrypt payload")]
pub struct OpenError;

fn cipher(key: &HubKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.bytes().into())
}

/// Encrypts `plaintext` for `purpose` under the hub key, with a fresh random nonce, and returns
/// the box as base64.
pub fn seal(key: &HubKey, purpose: Purpose, plaintext: &[u8]) -> Result<String, SealError> {
    seal_with_aad(key, &purpose.aad(), plaintext)
}

fn seal_with_aad(key: &HubKey, aad: &[u8], plaintext: &[u8]) -> Result<String, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher(key)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SealError)?;
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    sealed.push(VERSION);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(STANDARD.encode(sealed))
}

/// Decrypts a box made by [`seal`] with the same key and purpose.
///
/// ASCII whitespace anywhere in `sealed` is ignored: scripts wrap long lines, and
/// `curl -F data=@file` sends the file's trailing newline along.
pub fn open(key: &HubKey, purpose: Purpose, sealed: &str) -> Result<Vec<u8>, OpenError> {
    open_with_aad(key, &purpose.aad(), sealed)
}

fn open_with_aad(key: &HubKey, aad: &[u8], sealed: &str) -> Result<Vec<u8>, OpenError> {
    let compact: Vec<u8> = sealed
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let decoded = STANDARD.decode(compact).map_err(|_| OpenError)?;
    if decoded.len() < OVERHEAD || decoded[0] != VERSION {
        return Err(OpenError);
    }
    let (nonce, ciphertext) = decoded[1..].split_at(NONCE_LEN);
    cipher(key)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PURPOSE: Purpose = Purpose::BootstrapSecrets;

    fn decode(sealed: &str) -> Vec<u8> {
        STANDARD.decode(sealed).unwrap()
    }

    fn random_bytes(len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        OsRng.fill_bytes(&mut bytes);
        bytes
    }

    #[test]
    fn round_trips() {
        let key = HubKey::generate();
        for plaintext in [Vec::new(), vec![0x42], random_bytes(60 * 1024)] {
            let sealed = seal(&key, PURPOSE, &plaintext).unwrap();
            assert_eq!(decode(&sealed).len(), OVERHEAD + plaintext.len());
            assert_eq!(open(&key, PURPOSE, &sealed).unwrap(), plaintext);
        }
    }

    /// Pins the documented layout and associated data by opening a box with the cipher alone.
    #[test]
    fn layout_matches_the_documentation() {
        let key = HubKey::from_bytes([7; 32]);
        let decoded = decode(&seal(&key, PURPOSE, b"secret").unwrap());
        assert_eq!(decoded[0], 0x01);
        let plaintext = XChaCha20Poly1305::new(&[7; 32].into())
            .decrypt(
                XNonce::from_slice(&decoded[1..25]),
                Payload {
                    msg: &decoded[25..],
                    aad: b"\x01evon-hub:bootstrap-secrets:v1",
                },
            )
            .unwrap();
        assert_eq!(plaintext, b"secret");
    }

    #[test]
    fn every_seal_has_a_fresh_nonce() {
        let key = HubKey::generate();
        let first = seal(&key, PURPOSE, b"same text").unwrap();
        let second = seal(&key, PURPOSE, b"same text").unwrap();
        assert_ne!(first, second);
        assert_ne!(
            decode(&first)[1..1 + NONCE_LEN],
            decode(&second)[1..1 + NONCE_LEN]
        );
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let key = HubKey::generate();
        let decoded = decode(&seal(&key, PURPOSE, b"hello").unwrap());
        for byte in 0..decoded.len() {
            for bit in 0..8 {
                let mut tampered = decoded.clone();
                tampered[byte] ^= 1 << bit;
                assert_eq!(
                    open(&key, PURPOSE, &STANDARD.encode(&tampered)),
                    Err(OpenError),
                    "flipping bit {bit} of byte {byte}"
                );
            }
        }
    }

    #[test]
    fn truncations_and_extensions_are_rejected() {
        let key = HubKey::generate();
        let decoded = decode(&seal(&key, PURPOSE, b"hello").unwrap());
        for len in 0..decoded.len() {
            assert_eq!(
                open(&key, PURPOSE, &STANDARD.encode(&decoded[..len])),
                Err(OpenError),
                "truncated to {len} bytes"
            );
        }
        for extra in 1..=32 {
            let mut extended = decoded.clone();
            extended.extend(random_bytes(extra));
            assert_eq!(
                open(&key, PURPOSE, &STANDARD.encode(&extended)),
                Err(OpenError),
                "extended by {extra} bytes"
            );
        }
    }

    #[test]
    fn wrong_key_is_rejected() {
        let sealed = seal(&HubKey::generate(), PURPOSE, b"hello").unwrap();
        assert_eq!(open(&HubKey::generate(), PURPOSE, &sealed), Err(OpenError));
    }

    #[test]
    fn wrong_purpose_or_version_is_rejected() {
        let key = HubKey::generate();
        let other_purpose = seal_with_aad(&key, &aad_for(b"evon-hub:other:v1"), b"hello").unwrap();
        assert_eq!(open(&key, PURPOSE, &other_purpose), Err(OpenError));

        // The version byte is authenticated: the label alone is not enough.
        let unversioned = seal_with_aad(&key, PURPOSE.label(), b"hello").unwrap();
        assert_eq!(open(&key, PURPOSE, &unversioned), Err(OpenError));

        // A box whose version byte says something else is refused before decryption is tried.
        let mut decoded = decode(&seal(&key, PURPOSE, b"hello").unwrap());
        decoded[0] = 0x02;
        assert_eq!(
            open(&key, PURPOSE, &STANDARD.encode(&decoded)),
            Err(OpenError)
        );
    }

    #[test]
    fn whitespace_is_ignored() {
        let key = HubKey::generate();
        let sealed = seal(&key, PURPOSE, &random_bytes(300)).unwrap();
        let expected = open(&key, PURPOSE, &sealed).unwrap();

        let wrapped: String = sealed
            .as_bytes()
            .chunks(76)
            .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
            .collect();
        assert_eq!(open(&key, PURPOSE, &wrapped).unwrap(), expected);
        assert_eq!(
            open(&key, PURPOSE, &format!(" \t{sealed}\r\n")).unwrap(),
            expected
        );
        let scattered: String = sealed.chars().flat_map(|c| [c, ' ']).collect();
        assert_eq!(open(&key, PURPOSE, &scattered).unwrap(), expected);
    }

    #[test]
    fn garbage_is_rejected() {
        let key = HubKey::generate();
        let sealed = seal(&key, PURPOSE, b"hello").unwrap();
        let unpadded = sealed.trim_end_matches('=').to_owned();
        assert_ne!(unpadded, sealed, "a 46-byte box needs padding");
        for garbage in [
            String::new(),
            "   \n".to_owned(),
            "not base64!".to_owned(),
            "====".to_owned(),
            unpadded,
            format!("{sealed}AAAA="),
            format!("{sealed}*"),
            STANDARD.encode(random_bytes(64)),
        ] {
            assert_eq!(open(&key, PURPOSE, &garbage), Err(OpenError), "{garbage:?}");
        }
    }

    #[test]
    fn only_the_standard_alphabet_is_accepted() {
        let key = HubKey::generate();
        let sealed = loop {
            let sealed = seal(&key, PURPOSE, b"hello").unwrap();
            if sealed.contains(['+', '/']) {
                break sealed;
            }
        };
        let url_safe = sealed.replace('+', "-").replace('/', "_");
        assert_eq!(open(&key, PURPOSE, &url_safe), Err(OpenError));
    }

    #[test]
    fn errors_say_nothing() {
        assert_eq!(OpenError.to_string(), "failed to decrypt payload");
    }
}
