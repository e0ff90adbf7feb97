//! The hub's firewall in the kernel: `evon-hub firewall render|apply|status`, and the keeper
//! thread `serve` runs to keep the table `inet evon` in step with the database.
//!
//! The ruleset comes from `evon_domain::firewall::render`; it is loaded with `nft -f -` as one
//! transaction, so a load that fails leaves the previous ruleset whole. Whether the kernel holds
//! what the database implies is read from the digest in the table's comment.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context, Result};
use clap::{Subcommand, ValueEnum};
use evon_domain::firewall;
use evon_store::network::AccessCache;
use evon_store::{OpenMode, Store, StoreResult};
use serde::Deserialize;

use crate::cli::Location;
use crate::settings;

/// The program that loads rulesets, found on `PATH`.
const NFT: &str = "nft";
/// How often the keeper looks at the hub's generation.
pub const POLL: Duration = Duration::from_millis(200);
/// The longest the keeper waits between attempts after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether `serve` keeps the firewall: `--firewall on|off`, `EVON_HUB_FIREWALL`, `firewall =
/// "off"` in evon-hub.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirewallMode {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum FirewallCommand {
    /// Print the nftables ruleset (table inet evon) the database implies
    Render,
    /// Load that ruleset into the kernel with `nft -f -`, in one transaction
    Apply,
    /// Whether the kernel's table inet evon is what the database implies; exit 0 only when it is
    Status,
}

/// A rendered ruleset and what it was made from.
#[derive(Debug, Clone)]
pub struct Ruleset {
    /// The hub generation the ruleset reflects.
    pub generation: i64,
    pub digest: u64,
    pub text: String,
}

/// The ruleset of the database as it is now: generation, network and subnet key from one
/// consistent read.
pub fn ruleset(store: &Store, cache: &AccessCache) -> StoreResult<Ruleset> {
    let (generation, index, settings) = store.read(|conn| {
        let generation = evon_store::hub::generation(conn)?;
        let index = cache.index(conn)?;
        let settings = evon_store::hub::settings(conn)?;
        Ok((generation, index, settings))
    })?;
    let text = firewall::render(&index, settings.subnet_key);
    let digest = firewall::digest(&index, settings.subnet_key);
    Ok(Ruleset {
        generation,
        digest,
        text,
    })
}

/// Loads `text` with `nft -f -`. nft applies a file as one transaction: on failure nothing
/// changed. The error is one line: nft's first complaint.
pub fn apply(text: &str) -> Result<()> {
    let mut child = Command::new(NFT)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("cannot run {NFT}: {e}"))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(text.as_bytes()))
        .unwrap_or(Ok(()));
    let output = child
        .wait_with_output()
        .map_err(|e| anyhow!("cannot run {NFT}: {e}"))?;
    if !output.status.success() {
        return Err(anyhow!(
            "{NFT} refused the ruleset ({}): {}",
            output.status,
            first_line(&String::from_utf8_lossy(&output.stderr))
        ));
    }
    written.map_err(|e| anyhow!("cannot write the ruleset to {NFT}: {e}"))?;
    Ok(())
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("no message")
        .to_owned()
}

/// What the kernel holds under `inet evon`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelTable {
    Absent,
    /// The table, with the digest of its comment when it carries one of ours.
    Present(Option<u64>),
}

/// Reads the table's comment back. `nft -j` puts it in the table object in recent versions;
/// older ones (1.0.6) leave it out of JSON, so the text listing is read then.
pub fn kernel_table() -> Result<KernelTable> {
    let table = format!("{} {}", firewall::TABLE_FAMILY, firewall::TABLE_NAME);
    let output = nft_list(&[
        "-j",
        "list",
        "table",
        firewall::TABLE_FAMILY,
        firewall::TABLE_NAME,
    ])?;
    let Some(json) = output else {
        return Ok(KernelTable::Absent);
    };
    let value: serde_json::Value = serde_json::from_str(&json)
        .with_context(|| format!("{NFT} -j list table {table} printed no JSON"))?;
    let comment = value["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|item| item["table"]["comment"].as_str().map(str::to_owned));
    let comment = match comment {
        Some(comment) => Some(comment),
        None => {
            let Some(text) = nft_list(&[
                "list",
                "table",
                firewall::TABLE_FAMILY,
                firewall::TABLE_NAME,
            ])?
            else {
                return Ok(KernelTable::Absent);
            };
            comment_of_listing(&text)
        }
    };
    Ok(KernelTable::Present(
        comment.as_deref().and_then(firewall::parse_digest_comment),
    ))
}

/// The table's own comment in `nft list table` output: a `comment "..."` line before its first
/// set or chain.
fn comment_of_listing(text: &str) -> Option<String> {
    for line in text.lines().skip(1) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("comment \"") {
            return rest.strip_suffix('"').map(str::to_owned);
        }
        if line.starts_with("set ") || line.starts_with("chain ") || line.starts_with("map ") {
            return None;
        }
    }
    None
}

/// Runs `nft ARGS`: its output, or `None` when the table does not exist.
fn nft_list(args: &[&str]) -> Result<Option<String>> {
    let output = Command::new(NFT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| anyhow!("cannot run {NFT}: {e}"))?;
    if output.status.success() {
        return Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No such file or directory") {
        return Ok(None);
    }
    Err(anyhow!(
        "{NFT} {} failed ({}): {}",
        args.join(" "),
        output.status,
        first_line(&stderr)
    ))
}

/// `evon-hub firewall ...`. `status` answers through the exit code: the error it returns
/// when the kernel is not in sync has already been printed.
pub fn run(location: &Location, action: FirewallCommand) -> Result<()> {
    let resolved = settings::resolve(location)?;
    let store = crate::commands::open_once(&resolved, OpenMode::MustExist)?;
    let ruleset = ruleset(&store, &AccessCache::new());
    drop(store);
    let ruleset = ruleset?;
    match action {
        FirewallCommand::Render => {
            print!("{}", ruleset.text);
            Ok(())
        }
        FirewallCommand::Apply => {
            apply(&ruleset.text)?;
            eprintln!(
                "firewall applied (generation {}, digest {:016x})",
                ruleset.generation, ruleset.digest
            );
            Ok(())
        }
        FirewallCommand::Status => match kernel_table()? {
            KernelTable::Present(Some(digest)) if digest == ruleset.digest => {
                println!("in sync (generation {})", ruleset.generation);
                Ok(())
            }
            KernelTable::Present(_) => {
                println!("out of date");
                Err(NotInSync.into())
            }
            KernelTable::Absent => {
                println!("absent");
                Err(NotInSync.into())
            }
        },
    }
}

/// `firewall status` found the kernel out of step: exit 1, nothing more to say.
#[derive(Debug, thiserror::Error)]
#[error("the firewall is not in sync with the database")]
pub struct NotInSync;

/// How the last attempt of the keeper went.
#[allow(dead_code)] // Kept for a status endpoint; not served over HTTP yet.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub at: SystemTime,
    /// The generation the attempt rendered, when it got that far.
    pub generation: Option<i64>,
    pub result: std::result::Result<u64, String>,
}

/// The background thread that keeps the kernel's table in step with the database while `serve`
/// runs. Stopped (and joined) when dropped.
#[derive(Debug)]
pub struct Keeper {
    stop: Arc<AtomicBool>,
    last: Arc<Mutex<Option<Outcome>>>,
    handle: Option<JoinHandle<()>>,
}

impl Keeper {
    /// Starts the thread: it applies the ruleset at once, then whenever the hub's generation
    /// moves on, looking every [`POLL`]; a burst of writes between two looks costs one apply.
    /// A failed attempt is logged and retried, backing off up to [`MAX_BACKOFF`].
    pub fn spawn(store: Store) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(Mutex::new(None));
        let handle = std::thread::Builder::new()
            .name("evon-firewall".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let last = Arc::clone(&last);
                move || keep(&store, &stop, &last)
            })
            .context("cannot start the firewall thread")?;
        Ok(Self {
            stop,
            last,
            handle: Some(handle),
        })
    }

    /// The outcome of the last attempt, if there was one yet.
    #[allow(dead_code)] // Not served over HTTP yet.
    pub fn last_outcome(&self) -> Option<Outcome> {
        self.last.lock().ok().and_then(|last| last.clone())
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn keep(store: &Store, stop: &AtomicBool, last: &Mutex<Option<Outcome>>) {
    let cache = AccessCache::new();
    let mut applied: Option<i64> = None;
    let mut failures: u32 = 0;
    let mut next_attempt = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_attempt {
            match attempt(store, &cache, applied) {
                Ok(None) => {}
                Ok(Some(ruleset)) => {
                    if failures > 0 {
                        tracing::info!(failures, "firewall apply succeeded again");
                    }
                    tracing::info!(
                        generation = ruleset.generation,
                        digest = %format!("{:016x}", ruleset.digest),
                        "firewall applied"
                    );
                    applied = Some(ruleset.generation);
                    failures = 0;
                    record(last, Some(ruleset.generation), Ok(ruleset.digest));
                }
                Err((generation, error)) => {
                    failures = failures.saturating_add(1);
                    let backoff = backoff(failures);
                    tracing::error!(
                        error = %error,
                        failures,
                        retry_in_ms = backoff.as_millis() as u64,
                        "firewall apply failed; the previous ruleset stays"
                    );
                    record(last, generation, Err(error));
                    next_attempt = Instant::now() + backoff;
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The wait after `failures` failures in a row: the poll interval, doubled per failure, at
/// most [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(5);
    (POLL * factor).min(MAX_BACKOFF)
}

/// One look: `Ok(None)` when the kernel already has generation `applied`, else applies the
/// current ruleset.
fn attempt(
    store: &Store,
    cache: &AccessCache,
    applied: Option<i64>,
) -> std::result::Result<Option<Ruleset>, (Option<i64>, String)> {
    let generation = store
        .read(evon_store::hub::generation)
        .map_err(|e| (None, format!("cannot read the hub generation: {e}")))?;
    if applied == Some(generation) {
        return Ok(None);
    }
    let ruleset =
        ruleset(store, cache).map_err(|e| (Some(generation), format!("cannot render: {e}")))?;
    apply(&ruleset.text).map_err(|e| (Some(ruleset.generation), format!("{e:#}")))?;
    Ok(Some(ruleset))
}

fn record(last: &Mutex<Option<Outcome>>, generation: Option<i64>, result: Result<u64, String>) {
    if let Ok(mut last) = last.lock() {
        *last = Some(Outcome {
            at: SystemTime::now(),
            generation,
            result,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), POLL);
        assert_eq!(backoff(2), POLL * 2);
        assert_eq!(backoff(3), POLL * 4);
        assert_eq!(backoff(5), POLL * 16);
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }

    #[test]
    fn the_comment_is_found_in_a_listing() {
        let text = "table inet evon {\n\tcomment \"evon-hub 0123456789abcdef\"\n\tset a {\n";
        assert_eq!(
            comment_of_listing(text).as_deref(),
            Some("evon-hub 0123456789abcdef")
        );
        assert_eq!(
            comment_of_listing("table inet evon {\n\tchain x {\n\t\tcomment \"no\"\n"),
            None
        );
    }
}
