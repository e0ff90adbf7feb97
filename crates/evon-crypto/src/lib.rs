//! Evon Hub's secrets.
//!
//! - API tokens: 40 lowercase hex characters, shown once, stored only as SHA-256 digests and
//!   compared in constant time.
//! - Passwords: argon2id in PHC string form.
//! - The hub key: 256 random bits kept in the data directory, readable by the owner only.

pub mod hub_key;
pub mod password;
pub mod token;

pub use hub_key::{HubKey, HubKeyError};
pub use password::{hash_password, random_password, verify_password, PasswordError};
pub use token::{digests_equal, ApiToken, TokenDigest};
