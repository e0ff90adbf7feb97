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
/// How often the keeper looks at the hub's generation (one indexed read of one row): half of
/// it is, on average, part of the time a write takes to reach the kernel.
pub const POLL: Duration = Duration::from_millis(100);
/// The longest the keeper waits between attempts after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a thread of the keeper's reads the kernel's digest back, so that a table deleted or
/// changed by someone else (`nft flush ruleset`) is put back. It runs beside the keeper, never
/// in a write's way: at the `10k` size nft takes 0.7 s to read it.
pub const KERNEL_CHECK: Duration = Duration::from_secs(5);

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

/// The ruleset of the database at one generation.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The hub generation the ruleset reflects.
    pub generation: i64,
    pub ruleset: firewall::Ruleset,
}

/// The ruleset of the database as it is now: generation, network and subnet key from one
/// consistent read.
pub fn ruleset(store: &Store, cache: &AccessCache) -> StoreResult<Snapshot> {
    let (generation, index, settings) = store.read(|conn| {
        let generation = evon_store::hub::generation(conn)?;
        let index = cache.index(conn)?;
        let settings = evon_store::hub::settings(conn)?;
        Ok((generation, index, settings))
    })?;
    Ok(Snapshot {
        generation,
        ruleset: firewall::Ruleset::build(&index, settings.subnet_key),
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
    /// The table, with the digest its `digest` chain carries when it has one of ours.
    Present(Option<u64>),
}

/// Reads the digest back from the table's `digest` chain. One short chain, but nft 1.0 lists
/// every set and element of the table before it prints it (0.7 s at the `10k` size), so the
/// keeper asks from a thread of its own and never while a write waits (see [`Keeper`]).
pub fn kernel_table() -> Result<KernelTable> {
    let listing = nft_list(&[
        "-j",
        "list",
        "chain",
        firewall::TABLE_FAMILY,
        firewall::TABLE_NAME,
        firewall::DIGEST_CHAIN,
    ])?;
    if let Some(json) = listing {
        return Ok(KernelTable::Present(digest_of_listing(&json)?));
    }
    // No chain: the table may still be there (written by something else, or by an older hub).
    let tables = nft_list(&["-j", "list", "tables", firewall::TABLE_FAMILY])?.unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&tables)
        .with_context(|| format!("{NFT} -j list tables printed no JSON"))?;
    let present = value["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|item| item["table"]["name"].as_str() == Some(firewall::TABLE_NAME));
    Ok(if present {
        KernelTable::Present(None)
    } else {
        KernelTable::Absent
    })
}

/// The digest in the comment of the first rule of a `nft -j list chain` listing.
fn digest_of_listing(json: &str) -> Result<Option<u64>> {
    let value: serde_json::Value = serde_json::from_str(json)
        .with_context(|| format!("{NFT} -j list chain printed no JSON"))?;
    Ok(value["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|item| item["rule"]["comment"].as_str())
        .and_then(firewall::parse_digest_comment))
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
    let snapshot = ruleset(&store, &AccessCache::new());
    drop(store);
    let Snapshot {
        generation,
        ruleset,
    } = snapshot?;
    match action {
        FirewallCommand::Render => {
            print!("{}", ruleset.render());
            Ok(())
        }
        FirewallCommand::Apply => {
            apply(&ruleset.render())?;
            eprintln!(
                "firewall applied (generation {generation}, digest {:016x})",
                ruleset.digest()
            );
            Ok(())
        }
        FirewallCommand::Status => match kernel_table()? {
            KernelTable::Present(Some(digest)) if digest == ruleset.digest() => {
                println!("in sync (generation {generation})");
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
    checker: Option<JoinHandle<()>>,
}

/// What the keeper last put into the kernel, shared with the thread that checks the kernel.
#[derive(Debug, Default)]
struct KernelWatch {
    applied: Mutex<AppliedState>,
    /// Set by the checker when the kernel no longer holds what the keeper applied; the keeper
    /// then loads the whole table.
    changed_behind: AtomicBool,
}

#[derive(Debug, Default, Clone, Copy)]
struct AppliedState {
    /// Counts the keeper's applies; a check during which it moved is not conclusive.
    applies: u64,
    /// The digest the kernel holds after the last apply; `None` when that apply failed.
    digest: Option<u64>,
}

impl KernelWatch {
    /// Runs one `nft -f` of the keeper and records what the kernel holds after it. The lock is
    /// held while nft runs, so that a check never reads the kernel half-way through an apply
    /// without noticing.
    fn apply(&self, text: &str, digest: u64) -> Result<()> {
        let mut applied = self
            .applied
            .lock()
            .map_err(|_| anyhow!("the firewall state lock is poisoned"))?;
        applied.applies += 1;
        let result = apply(text);
        applied.digest = result.as_ref().ok().map(|()| digest);
        result
    }

    fn applied(&self) -> Option<AppliedState> {
        self.applied.lock().ok().map(|applied| *applied)
    }

    /// Reads the kernel's digest and flags the table as changed behind the keeper's back when it
    /// is not the one the keeper applied last (and no apply ran meanwhile).
    fn check(&self) {
        let Some(AppliedState {
            applies,
            digest: Some(expected),
        }) = self.applied()
        else {
            return;
        };
        let kernel = kernel_table();
        if self.applied().map(|now| now.applies) != Some(applies) {
            return;
        }
        match kernel {
            Ok(KernelTable::Present(Some(digest))) if digest == expected => {}
            Ok(_) => {
                tracing::warn!(
                    "the kernel's table inet evon changed behind the hub; loading it whole"
                );
                self.changed_behind.store(true, Ordering::Release);
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot read the firewall back from the kernel");
            }
        }
    }
}

impl Keeper {
    /// Starts the thread: it applies the ruleset at once, then whenever the hub's generation
    /// moves on, looking every [`POLL`]; a burst of writes between two looks costs one apply.
    /// A failed attempt is logged and retried, backing off up to [`MAX_BACKOFF`].
    pub fn spawn(store: Store) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let last = Arc::new(Mutex::new(None));
        let watch = Arc::new(KernelWatch::default());
        let handle = std::thread::Builder::new()
            .name("evon-firewall".into())
            .spawn({
                let stop = Arc::clone(&stop);
                let last = Arc::clone(&last);
                let watch = Arc::clone(&watch);
                move || keep(&store, &stop, &last, &watch)
            })
            .context("cannot start the firewall thread")?;
        let checker = std::thread::Builder::new()
            .name("evon-firewall-check".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    let mut next_check = Instant::now() + KERNEL_CHECK;
                    while !stop.load(Ordering::Relaxed) {
                        if Instant::now() >= next_check {
                            watch.check();
                            next_check = Instant::now() + KERNEL_CHECK;
                        }
                        std::thread::sleep(POLL);
                    }
                }
            })
            .context("cannot start the firewall check thread")?;
        Ok(Self {
            stop,
            last,
            handle: Some(handle),
            checker: Some(checker),
        })
    }

    /// The outcome of the last attempt, if there was one yet.
    #[allow(dead_code)] // Not served over HTTP yet.
    pub fn last_outcome(&self) -> Option<Outcome> {
        self.last.lock().ok().and_then(|last| last.clone())
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for handle in [self.handle.take(), self.checker.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn keep(store: &Store, stop: &AtomicBool, last: &Mutex<Option<Outcome>>, watch: &KernelWatch) {
    let cache = AccessCache::new();
    let mut applied: Option<Snapshot> = None;
    let mut failures: u32 = 0;
    let mut next_attempt = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next_attempt {
            let reload = watch.changed_behind.swap(false, Ordering::AcqRel);
            let started = Instant::now();
            match attempt(store, &cache, watch, applied.as_ref(), reload) {
                Ok(None) => {}
                Ok(Some((snapshot, how))) => {
                    if failures > 0 {
                        tracing::info!(failures, "firewall apply succeeded again");
                    }
                    if let Some(how) = how {
                        tracing::info!(
                            generation = snapshot.generation,
                            digest = %format!("{:016x}", snapshot.ruleset.digest()),
                            how = how.as_str(),
                            took_ms = started.elapsed().as_millis() as u64,
                            "firewall applied"
                        );
                    }
                    failures = 0;
                    record(
                        last,
                        Some(snapshot.generation),
                        Ok(snapshot.ruleset.digest()),
                    );
                    applied = Some(snapshot);
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
                    // What the kernel holds is no longer known: the next attempt loads it whole.
                    applied = None;
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
    let factor = 1u32 << failures.saturating_sub(1).min(6);
    (POLL * factor).min(MAX_BACKOFF)
}

/// How the keeper brought the kernel up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    /// The whole table, replaced.
    Full,
    /// Only what changed since the ruleset the kernel held.
    Update,
}

impl Applied {
    fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Update => "update",
        }
    }
}

/// What one look of the keeper came to: see [`attempt`]. A failure names the generation it was
/// for, when it got that far, and says why in one line.
type Attempt = std::result::Result<Option<(Snapshot, Option<Applied>)>, (Option<i64>, String)>;

/// One look: `Ok(None)` when the hub is still at the generation of `applied` and nothing asks
/// for a `reload`; else the current ruleset, and how it reached the kernel (`None` when a write
/// changed nothing the firewall holds, which most writes do not).
///
/// An update is sent on top of `applied`, which this keeper loaded itself. The whole table is
/// loaded instead at the first look, when the check thread found the kernel changed behind the
/// keeper's back (`reload`), and when nft refuses an update.
fn attempt(
    store: &Store,
    cache: &AccessCache,
    watch: &KernelWatch,
    applied: Option<&Snapshot>,
    reload: bool,
) -> Attempt {
    let generation = store
        .read(evon_store::hub::generation)
        .map_err(|e| (None, format!("cannot read the hub generation: {e}")))?;
    let full =
        |snapshot: &Snapshot| watch.apply(&snapshot.ruleset.render(), snapshot.ruleset.digest());
    if let Some(current) = applied.filter(|a| a.generation == generation) {
        if !reload {
            return Ok(None);
        }
        full(current).map_err(|e| (Some(generation), format!("{e:#}")))?;
        return Ok(Some((current.clone(), Some(Applied::Full))));
    }
    let snapshot =
        ruleset(store, cache).map_err(|e| (Some(generation), format!("cannot render: {e}")))?;
    let failed = |e: anyhow::Error| (Some(snapshot.generation), format!("{e:#}"));
    let previous = match applied {
        Some(previous) if !reload => previous,
        _ => {
            full(&snapshot).map_err(failed)?;
            return Ok(Some((snapshot, Some(Applied::Full))));
        }
    };
    let Some(update) = previous.ruleset.render_update(&snapshot.ruleset) else {
        return Ok(Some((snapshot, None)));
    };
    match watch.apply(&update, snapshot.ruleset.digest()) {
        Ok(()) => return Ok(Some((snapshot, Some(Applied::Update)))),
        Err(error) => tracing::warn!(
            error = %format!("{error:#}"),
            "firewall update refused; loading the whole table"
        ),
    }
    full(&snapshot).map_err(failed)?;
    Ok(Some((snapshot, Some(Applied::Full))))
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
        assert_eq!(backoff(6), POLL * 32);
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }

    #[test]
    fn the_digest_is_read_from_a_chain_listing() {
        // What nft 1.0.6 prints for `nft -j list chain inet evon digest`.
        let listing = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"chain": {"family": "inet", "table": "evon", "name": "digest", "handle": 1}}, {"rule": {"family": "inet", "table": "evon", "chain": "digest", "handle": 4, "comment": "evon-hub 0123456789abcdef", "expr": [{"return": null}]}}]}"#;
        assert_eq!(
            digest_of_listing(listing).unwrap(),
            Some(0x0123_4567_89ab_cdef)
        );
        let foreign = listing.replace("evon-hub 0123456789abcdef", "someone else");
        assert_eq!(digest_of_listing(&foreign).unwrap(), None);
        assert!(digest_of_listing("not json").is_err());
    }
}
