//! Resolving where the hub lives and how it runs: flags and environment (through clap), then
//! `evon-hub.toml` in the data directory, then defaults.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use evon_store::DatabaseUrl;
use serde::Deserialize;

use crate::cli::Location;

pub const DEFAULT_DATA_DIR: &str = "./evon-data";
pub const DEFAULT_BIND: &str = "127.0.0.1:8000";
pub const CONFIG_FILE: &str = "evon-hub.toml";
pub const DATABASE_FILE: &str = "evon-hub.sqlite3";
pub const KEY_FILE: &str = "hub.key";
pub const PKI_DIR: &str = "pki";
pub const DEFAULT_OPENVPN_PORT: u16 = 1194;

/// A setting that is wrong: a bad file, value or URL. Exit code 2, like a usage error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The optional file of settings in the data directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub database_url: Option<String>,
    pub bind: Option<String>,
    pub public_url: Option<String>,
    pub workers: Option<usize>,
    pub openvpn_host: Option<String>,
    pub openvpn_server_port: Option<u16>,
    pub openvpn_user_port: Option<u16>,
    pub firewall: Option<crate::firewall::FirewallMode>,
}

/// Where this hub's state is.
#[derive(Debug)]
pub struct Resolved {
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub file: FileSettings,
}

impl Resolved {
    pub fn key_path(&self) -> PathBuf {
        self.data_dir.join(KEY_FILE)
    }

    /// The hub's certificates and keys.
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join(PKI_DIR)
    }
}

fn read_file_settings(data_dir: &Path) -> Result<FileSettings> {
    let path = data_dir.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            // toml's message quotes the offending line over several lines; keep the first.
            let reason = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid syntax")
                .to_owned();
            let at = e
                .span()
                .map(|span| format!(" at byte {}", span.start))
                .unwrap_or_default();
            ConfigError(format!("invalid {}{at}: {reason}", path.display())).into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileSettings::default()),
        Err(e) => Err(ConfigError(format!("cannot read {}: {e}", path.display())).into()),
    }
}

pub fn resolve(location: &Location) -> Result<Resolved> {
    let data_dir = location
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let file = read_file_settings(&data_dir)?;
    let database = match location
        .database_url
        .as_deref()
        .or(file.database_url.as_deref())
    {
        Some(url) => DatabaseUrl::parse(url)?,
        None => DatabaseUrl::sqlite(&data_dir.join(DATABASE_FILE)),
    };
    Ok(Resolved {
        data_dir,
        database,
        file,
    })
}

/// Creates the data directory, readable by its owner only, if it does not exist yet.
pub fn ensure_data_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create data directory {}", path.display()))
}
