//! The hub key: 256 bits that seal the bootstrap secrets, kept in a file only its owner reads.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::RngCore;

pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum HubKeyError {
    #[error("cannot read the hub key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the hub key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the hub key {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    LooseMode { path: PathBuf, mode: u32 },
    #[error("the hub key {path} is {len} bytes long, not {KEY_LEN}")]
    BadLength { path: PathBuf, len: usize },
}

pub struct HubKey([u8; KEY_LEN]);

impl HubKey {
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        Self(key)
    }

    /// Wraps key material that already exists, such as a fixed key in tests.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Reads the key, refusing a file that anyone but its owner may read or write.
    pub fn load(path: &Path) -> Result<Self, HubKeyError> {
        let read_error = |source| HubKeyError::Read {
            path: path.to_owned(),
            source,
        };
        let mode = fs::metadata(path).map_err(read_error)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(HubKeyError::LooseMode {
                path: path.to_owned(),
                mode,
            });
        }
        let bytes = fs::read(path).map_err(read_error)?;
        let key: [u8; KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| HubKeyError::BadLength {
                    path: path.to_owned(),
                    len: bytes.len(),
                })?;
        Ok(Self(key))
    }

    /// Writes a new key file with mode 0600. Never overwrites: an existing file is an error, so a
    /// second `init` cannot destroy the key that sealed every installer already handed out.
    pub fn create(path: &Path) -> Result<Self, HubKeyError> {
        let key = Self::generate();
        let write_error = |source| HubKeyError::Write {
            path: path.to_owned(),
            source,
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write_error)?;
        file.write_all(&key.0).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        Ok(key)
    }

    /// Loads the key, creating it first if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, HubKeyError> {
        if path.exists() {
            Self::load(path)
        } else {
            Self::create(path)
        }
    }
}

impl fmt::Debug for HubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HubKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.key");
        let created = HubKey::create(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(HubKey::load(&path).unwrap().bytes(), created.bytes());
        assert!(HubKey::create(&path).is_err(), "never overwrites");
        assert_eq!(
            HubKey::load_or_create(&path).unwrap().bytes(),
            created.bytes()
        );
    }

    #[test]
    fn refuses_loose_modes_and_bad_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.key");
        HubKey::create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            HubKey::load(&path),
            Err(HubKeyError::LooseMode { mode: 0o644, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            HubKey::load(&path),
            Err(HubKeyError::BadLength { len: 5, .. })
        ));
    }
}
