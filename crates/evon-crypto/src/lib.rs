//! Evon Hub's secrets.
//!
//! - API tokens: 40 lowercase hex characters, shown once, stored only as SHA-256 digests and
//!   compared in constant time.
//! - Passwords: argon2id in PHC string form.
//! - The hub key: 256 random bits kept in the data directory, readable by the owner only.
//! - Sealed boxes: XChaCha20-Poly1305 under the hub key, for secrets that travel in scripts.
//! - The PKI: the OpenVPN CA, the hub's server certificate, the shared client certificates and
//!   the `tls-crypt` key.

pub mod hub_key;
pub mod password;
pub mod pki;
pub mod seal;
pub mod token;

pub use hub_key::{HubKey, HubKeyError};
pub use password::{hash_password, random_password, verify_password, PasswordError};
pub use pki::{Pki, PkiError};
pub use seal::{open, seal, OpenError, Purpose, SealError};
pub use token::{digests_equal, ApiToken, TokenDigest};
