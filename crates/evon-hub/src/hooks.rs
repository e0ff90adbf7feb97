//! The hooks the hub's two OpenVPN servers run (`evon-hub openvpn server-auth`, …; the configs
//! `openvpn server-config` prints name them).
//!
//! Every hook decides, prints its decision as one line on stderr (OpenVPN or systemd keeps it)
//! and exits 0 to let the client in or 1 to refuse it. Any error refuses: a hook never lets a
//! client in because it could not check it. Each database change is one transaction and each file
//! is written beside its target and renamed over it, so a hook killed midway leaves no
//! half-written state. The auth hooks also honour deferred authentication: when OpenVPN sets
//! `auth_control_file`, they write `1` or `0` into it before exiting.
//!
//! Values from the environment are untrusted: they are logged quoted (escapes for control
//! characters, so they can add no line), and passwords are never logged. A server's password is
//! its hostname, which is no secret.

use std::ffi::OsString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use evon_domain::throttle::{ThrottleDecision, ThrottleKey, ThrottlePolicy};
use evon_domain::validate::ServerUuid;
use evon_domain::AddressPool;
use evon_store::db::{read_transaction, write_transaction};
use evon_store::servers::Registration;
use evon_store::{DbConnection, OpenMode, StoreError};

use crate::cli::Location;
use crate::settings;

/// The hook subcommands, flattened into `evon-hub openvpn`.
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// OpenVPN hook (servers, auth-user-pass-verify via-env): admit and register a server
    /// logging in with username = its UUID and password = its hostname
    ServerAuth,
    /// OpenVPN hook (servers, client-connect): push the server its address and mark it connected
    ServerConnect {
        /// The file OpenVPN reads the client's dynamic config from
        file: PathBuf,
    },
    /// OpenVPN hook (servers, client-disconnect): mark the server disconnected
    ServerDisconnect,
    /// OpenVPN hook (users, auth-user-pass-verify via-env): check an active user's password
    UserAuth,
    /// OpenVPN hook (users, client-connect): push the user their profile's address
    UserConnect {
        /// The file OpenVPN reads the client's dynamic config from
        file: PathBuf,
    },
}

impl HookCommand {
    fn name(&self) -> &'static str {
        match self {
            Self::ServerAuth => "server-auth",
            Self::ServerConnect { .. } => "server-connect",
            Self::ServerDisconnect => "server-disconnect",
            Self::UserAuth => "user-auth",
            Self::UserConnect { .. } => "user-connect",
        }
    }
}

/// An argon2id hash (the parameters `hash_password` uses) of a password nobody knows, verified
/// instead of a real one when a username has no usable password, so that the time a refusal takes
/// does not tell which usernames exist.
const DUMMY_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$KPJrVKu5gOAOJ6mZ3QQ+4Q$GldIQfnm02nCxOCIJhomXQwCzFzGPtKKmPx050ej1gU";

/// Runs a hook. Returns only when the client is let in; a refusal ends the process with exit
/// status 1 once everything the hook opened is closed.
pub fn run(location: &Location, command: HookCommand) -> Result<()> {
    let name = command.name();
    let hook = Hook { location, name };
    let verdict = match command {
        HookCommand::ServerAuth => auth(&hook, server_auth),
        HookCommand::ServerConnect { file } => server_connect(&hook, &file),
        HookCommand::ServerDisconnect => server_disconnect(&hook),
        HookCommand::UserAuth => auth(&hook, user_auth),
        HookCommand::UserConnect { file } => user_connect(&hook, &file),
    };
    eprintln!("evon-hub openvpn {name}: {}", verdict.line);
    if verdict.allow {
        Ok(())
    } else {
        // Nothing is left to drop: the store each hook opened is closed by now.
        std::process::exit(1)
    }
}

/// The hook being run and where the hub is.
struct Hook<'a> {
    location: &'a Location,
    name: &'static str,
}

/// A hook's decision and the line that explains it.
struct Verdict {
    allow: bool,
    line: String,
}

impl Verdict {
    fn allow(line: String) -> Self {
        Self { allow: true, line }
    }

    fn deny(line: String) -> Self {
        Self { allow: false, line }
    }

    /// A refusal because something went wrong, with the cause chain on the line.
    fn error(subject: &str, error: &anyhow::Error) -> Self {
        Self::deny(format!("denied {subject}: error: {}", one_line(error)))
    }
}

/// An environment variable OpenVPN sets, as UTF-8.
fn env(name: &str) -> Result<String, String> {
    match std::env::var_os(name) {
        None => Err(format!("{name} is not set in the environment")),
        Some(value) => value
            .into_string()
            .map_err(|_: OsString| format!("{name} in the environment is not UTF-8")),
    }
}

/// How long a hook keeps retrying a database that is busy or out of connections before it
/// refuses the client: well inside OpenVPN's `hand-window` (60 s by default), within which the
/// whole TLS handshake, this hook included, has to finish.
const RETRY_DEADLINE: Duration = Duration::from_secs(20);
/// The first pause between attempts; it doubles up to `MAX_BACKOFF`, and each pause is drawn at
/// random below that bound so that hundreds of hooks refused together do not return together.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(1280);

/// Connects to the hub's database (one connection, no pool) and runs `work` on it. When the
/// database is momentarily unable to serve (PostgreSQL out of connection slots, SQLite's write
/// lock held beyond its busy timeout, writers that kept colliding), the whole attempt is made
/// again on a new connection after a jittered, growing pause, until `RETRY_DEADLINE`: a fleet
/// reconnecting at once (hundreds of hook processes) is then served in turn instead of refused.
/// Every retry is logged with its cause (which names no secret). `work` must be safe to run
/// again: each of its changes is one transaction, and running it twice decides the same.
fn with_database<T>(
    hook: &Hook<'_>,
    subject: &str,
    mut work: impl FnMut(&mut DbConnection) -> Result<T>,
) -> Result<T> {
    let resolved = settings::resolve(hook.location)?;
    let started = Instant::now();
    // Held until this returns: the whole attempt, retries included, counts as one client.
    let _slot = DatabaseSlot::take(&resolved.data_dir, started + RETRY_DEADLINE);
    let mut jitter = Jitter::new();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let result = evon_store::db::connect_once(&resolved.database, OpenMode::MustExist)
            .map_err(anyhow::Error::from)
            .and_then(|mut conn| work(&mut conn));
        let error = match result {
            Err(error) if is_transient(&error) => error,
            other => return other,
        };
        let bound = FIRST_BACKOFF
            .saturating_mul(1 << (attempt - 1).min(5))
            .min(MAX_BACKOFF);
        let pause = jitter.below(bound);
        if started.elapsed() + pause >= RETRY_DEADLINE {
            return Err(error.context(format!(
                "database still unavailable after {attempt} attempts in {:.1} s",
                started.elapsed().as_secs_f64()
            )));
        }
        eprintln!(
            "evon-hub openvpn {}: retrying {subject} in {} ms (attempt {attempt}): {}",
            hook.name,
            pause.as_millis(),
            one_line(&error)
        );
        std::thread::sleep(pause);
    }
}

/// How many hooks of one hub talk to its database at once. A fleet reconnecting after a restart
/// starts hundreds of hook processes together; let loose on the database, they exhaust
/// PostgreSQL's `max_connections` (every refused connection still costs it a process) and queue
/// on SQLite's write lock, and their retries compete with the work for two cores. Waiting in
/// the kernel for one of a few slots costs nothing and serves them in turn.
const DATABASE_SLOTS: usize = 8;

/// One of the [`DATABASE_SLOTS`]: an exclusive `flock` on `<data dir>/hook-slots/N`, released
/// when the file is closed (on drop, or by the kernel when the process dies, so a killed hook
/// never keeps its slot).
struct DatabaseSlot(#[allow(dead_code)] std::fs::File);

impl DatabaseSlot {
    /// A free slot, or the first to come free before `deadline`. `None` when the slot files
    /// cannot be made (a read-only data directory) or none came free in time: the hook then goes
    /// ahead without one, as it would with no slots at all.
    fn take(data_dir: &Path, deadline: Instant) -> Option<Self> {
        let dir = data_dir.join("hook-slots");
        // Not recursive: a hook never creates the data directory itself.
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => return None,
        }
        let open = |n: usize| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(dir.join(n.to_string()))
        };
        let offset = std::process::id() as usize;
        for n in 0..DATABASE_SLOTS {
            let file = open((offset + n) % DATABASE_SLOTS).ok()?;
            if file.try_lock().is_ok() {
                return Some(Self(file));
            }
        }
        // All taken: queue on one of them (chosen by process id, so that the waiting spread
        // over all), from a thread, so that waiting ends at the deadline.
        let file = open(offset % DATABASE_SLOTS).ok()?;
        let (locked, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if file.lock().is_ok() {
                let _ = locked.send(file);
            }
        });
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
            .map(Self)
    }
}

/// Whether a failed attempt is worth another: the store says the database was overloaded or
/// restarting (not wrong, unreachable or misconfigured).
fn is_transient(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<StoreError>()
        .is_some_and(evon_store::db::is_transient)
}

/// An error's causes on one line.
fn one_line(error: &anyhow::Error) -> String {
    let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
    causes
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Pauses drawn at random (std's per-process random hash keys, xorshifted): jitter needs no
/// cryptographic quality, only different values in different processes.
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Self(hasher.finish() | 1)
    }

    /// A duration in [bound / 2, bound).
    fn below(&mut self, bound: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let micros = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX).max(2);
        Duration::from_micros(micros / 2 + self.0 % (micros / 2))
    }
}

/// Runs an auth hook and, for deferred authentication, writes its decision into the file named
/// by `auth_control_file`. The decision stands only when that file was written.
fn auth(hook: &Hook<'_>, decide: fn(&Hook<'_>) -> Verdict) -> Verdict {
    let verdict = decide(hook);
    let Some(control) = std::env::var_os("auth_control_file") else {
        return verdict;
    };
    let control = PathBuf::from(control);
    let content = if verdict.allow { "1" } else { "0" };
    match write_atomically(&control, content) {
        Ok(()) => verdict,
        Err(error) => {
            let mut line = verdict.line;
            line.push_str(&format!(
                "; then denied: cannot write {:?} to auth_control_file {}: {error:#}",
                content,
                control.display()
            ));
            Verdict::deny(line)
        }
    }
}

fn server_auth(hook: &Hook<'_>) -> Verdict {
    let uuid = match env("username") {
        Ok(uuid) => uuid,
        Err(reason) => return Verdict::deny(format!("denied: {reason}")),
    };
    let hostname = match env("password") {
        Ok(hostname) => hostname,
        Err(reason) => return Verdict::deny(format!("denied uuid={uuid:?}: {reason}")),
    };
    let subject = format!("uuid={uuid:?} hostname={hostname:?}");
    let registration = with_database(hook, &subject, |conn| {
        Ok(write_transaction(conn, |conn| {
            evon_store::servers::register(conn, &uuid, &hostname)
        })?)
    });
    match registration {
        Ok(Registration::Allowed { server, created }) => Verdict::allow(format!(
            "allowed {subject}: {} server {} fqdn={} address={}",
            if created { "new" } else { "known" },
            server.id,
            server.fqdn,
            server.ipv4_address
        )),
        Ok(Registration::Refused(refusal)) => Verdict::deny(format!("denied {subject}: {refusal}")),
        Err(error) => Verdict::error(&subject, &error),
    }
}

/// The `ifconfig-push` of a net30 client at `address`.
fn ifconfig_push(address: Ipv4Addr) -> String {
    format!(
        "ifconfig-push {address} {}\n",
        AddressPool::peer_of(address)
    )
}

fn common_name() -> Result<String, Verdict> {
    env("common_name").map_err(|reason| Verdict::deny(format!("denied: {reason}")))
}

fn server_uuid(common_name: &str) -> Result<ServerUuid, Verdict> {
    ServerUuid::parse(common_name.trim())
        .map_err(|reason| Verdict::deny(format!("denied uuid={common_name:?}: {reason}")))
}

fn server_connect(hook: &Hook<'_>, file: &Path) -> Verdict {
    let name = match common_name() {
        Ok(name) => name,
        Err(verdict) => return verdict,
    };
    let uuid = match server_uuid(&name) {
        Ok(uuid) => uuid,
        Err(verdict) => return verdict,
    };
    let subject = format!("uuid={:?}", uuid.as_str());
    // The address first, then the file, then the connection state: a hook that fails or is
    // killed before the last step leaves the server as it was (OpenVPN refuses the client and
    // runs no disconnect hook for it), and the address never changes once given.
    let connected = with_database(hook, &subject, |conn| {
        let server = read_transaction(conn, |conn| evon_store::servers::by_uuid(conn, &uuid))?;
        let Some(server) = server else {
            return Ok(None);
        };
        write_atomically(file, &ifconfig_push(server.ipv4_address))?;
        Ok(Some(write_transaction(conn, |conn| {
            evon_store::servers::mark_connected(conn, &uuid)
        })?))
    });
    match connected {
        Ok(Some(server)) => Verdict::allow(format!(
            "allowed {subject}: server {} fqdn={} connected at address={}",
            server.id, server.fqdn, server.ipv4_address
        )),
        Ok(None) => Verdict::deny(format!("denied {subject}: no such server")),
        Err(error) if is_not_found(&error) => {
            Verdict::deny(format!("denied {subject}: no such server"))
        }
        Err(error) => Verdict::error(&subject, &error),
    }
}

fn is_not_found(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<StoreError>(),
        Some(StoreError::NotFound)
    )
}

fn server_disconnect(hook: &Hook<'_>) -> Verdict {
    let name = match common_name() {
        Ok(name) => name,
        Err(verdict) => return verdict,
    };
    let uuid = match server_uuid(&name) {
        Ok(uuid) => uuid,
        // Nothing to record; OpenVPN ignores the exit status of this hook anyway.
        Err(verdict) => return Verdict::allow(verdict.line.replacen("denied", "ignored", 1)),
    };
    let subject = format!("uuid={:?}", uuid.as_str());
    let disconnected = with_database(hook, &subject, |conn| {
        Ok(write_transaction(conn, |conn| {
            evon_store::servers::mark_disconnected(conn, &uuid, chrono::Utc::now())
        })?)
    });
    match disconnected {
        Ok(server) => Verdict::allow(format!(
            "recorded {subject}: server {} fqdn={} disconnected",
            server.id, server.fqdn
        )),
        Err(error) if is_not_found(&error) => {
            Verdict::allow(format!("ignored {subject}: no such server"))
        }
        Err(error) => Verdict::error(&subject, &error),
    }
}

/// Why a user may not log in, when the store has no usable password for them.
fn why_no_password(
    conn: &mut evon_store::DbConnection,
    username: &str,
) -> evon_store::StoreResult<&'static str> {
    match evon_store::users::id_by_username(conn, username) {
        Err(StoreError::NotFound) => Ok("no such user"),
        Err(error) => Err(error),
        Ok(id) => Ok(if evon_store::users::get(conn, id)?.is_active {
            "the user has no password"
        } else {
            "the user is inactive"
        }),
    }
}

/// The client's address as OpenVPN gives it (IPv4 or IPv6), or "" when it gives none.
fn untrusted_source() -> String {
    env("untrusted_ip")
        .or_else(|_| env("untrusted_ip6"))
        .unwrap_or_default()
}

/// An instant as the decision lines show it.
fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Checks a user's password, throttled per (username, source): each attempt is counted before
/// the password is looked at, and a pair with too many recent failures is refused without
/// checking it until its lock expires (`evon_domain::throttle`). The decision line names the
/// username and the source, and says when an attempt was throttled; never the password.
fn user_auth(hook: &Hook<'_>) -> Verdict {
    let username = match env("username") {
        Ok(username) => username,
        Err(reason) => return Verdict::deny(format!("denied: {reason}")),
    };
    let source = untrusted_source();
    let subject = format!("username={username:?} source={source:?}");
    let password = match env("password") {
        Ok(password) => password,
        Err(reason) => return Verdict::deny(format!("denied {subject}: {reason}")),
    };
    let policy = ThrottlePolicy::default();
    let key = ThrottleKey::new(&username, &source);
    // The stored hash first (a read, harmless to repeat), then the attempt is counted, last, so
    // that a retried attempt is never counted twice.
    let started = with_database(hook, &subject, |conn| {
        let stored = read_transaction(conn, |conn| {
            Ok(
                match evon_store::users::active_password_hash(conn, &username)? {
                    Some(hash) => Ok(hash),
                    None => Err(why_no_password(conn, &username)?),
                },
            )
        })?;
        let decision =
            evon_store::throttle::begin_attempt(conn, &policy, &key, chrono::Utc::now())?;
        Ok((stored, decision))
    });
    let (stored, attempt, limit, locks_until) = match started {
        Err(error) => return Verdict::error(&subject, &error),
        Ok((_, ThrottleDecision::Throttled { until })) => {
            return Verdict::deny(format!(
                "denied {subject}: throttled after repeated failures from this source, until {}; password not checked",
                rfc3339(until)
            ))
        }
        Ok((
            stored,
            ThrottleDecision::Check {
                attempt,
                limit,
                locks_until,
            },
        )) => (stored, attempt, limit, locks_until),
    };
    let refusal = match &stored {
        Ok(hash) if evon_crypto::verify_password(&password, hash) => None,
        Ok(_) => Some("wrong password"),
        Err(reason) => {
            // As long as a wrong password would take.
            let _ = evon_crypto::verify_password(&password, DUMMY_PASSWORD_HASH);
            Some(*reason)
        }
    };
    let Some(reason) = refusal else {
        return match with_database(hook, &subject, |conn| {
            Ok(evon_store::throttle::record_success(conn, &key)?)
        }) {
            Ok(()) => Verdict::allow(format!("allowed {subject}: password accepted")),
            // Letting the client in without resetting its count would leave it locked out.
            Err(error) => Verdict::error(&subject, &error),
        };
    };
    let throttled = match locks_until {
        Some(until) => format!("; throttled until {}", rfc3339(until)),
        None => String::new(),
    };
    Verdict::deny(format!(
        "denied {subject}: {reason} (failure {attempt} of {limit}{throttled})"
    ))
}

fn user_connect(hook: &Hook<'_>, file: &Path) -> Verdict {
    let username = match common_name() {
        Ok(name) => name,
        Err(verdict) => return verdict,
    };
    let subject = format!("username={username:?}");
    let address = with_database(hook, &subject, |conn| {
        let found = read_transaction(conn, |conn| {
            let id = match evon_store::users::id_by_username(conn, &username) {
                Ok(id) => id,
                Err(StoreError::NotFound) => return Ok(Err("no such user")),
                Err(error) => return Err(error),
            };
            if !evon_store::users::get(conn, id)?.is_active {
                return Ok(Err("the user is inactive"));
            }
            Ok(Ok(evon_store::users::profile(conn, id)?.ipv4_address))
        })
        .map_err(|e: StoreError| anyhow::Error::from(e))?;
        if let Ok(address) = found {
            write_atomically(file, &ifconfig_push(address))?;
        }
        Ok(found)
    });
    match address {
        Ok(Ok(address)) => Verdict::allow(format!("allowed {subject}: address={address}")),
        Ok(Err(reason)) => Verdict::deny(format!("denied {subject}: {reason}")),
        Err(error) => Verdict::error(&subject, &error),
    }
}

/// Replaces `path` with `content` in one step: a new file (never an existing one, nor a symbolic
/// link someone planted: OpenVPN's files may be in a shared temporary directory) beside it,
/// renamed over it.
fn write_atomically(path: &Path, content: &str) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} names no file", path.display()))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut attempts = 0;
    let (temporary, mut file) = loop {
        let temporary = dir.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            evon_crypto::random_password(12)
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
        {
            Ok(file) => break (temporary, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 8 => {
                attempts += 1;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", temporary.display()))
            }
        }
    };
    let written = file
        .write_all(content.as_bytes())
        .and_then(|()| file.flush())
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_costs_what_a_real_one_does() {
        let real = evon_crypto::hash_password("anything").unwrap();
        let params = |hash: &str| hash.rsplitn(3, '$').nth(2).map(str::to_owned);
        assert_eq!(params(DUMMY_PASSWORD_HASH), params(&real));
        assert!(!evon_crypto::verify_password("", DUMMY_PASSWORD_HASH));
        assert!(!evon_crypto::verify_password(
            "anything",
            DUMMY_PASSWORD_HASH
        ));
    }

    #[test]
    fn net30_push_line() {
        assert_eq!(
            ifconfig_push(Ipv4Addr::new(100, 111, 224, 6)),
            "ifconfig-push 100.111.224.6 100.111.224.5\n"
        );
    }

    #[test]
    fn atomic_writes_replace_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acf");
        std::fs::write(&path, "").unwrap();
        write_atomically(&path, "1").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1");
        write_atomically(&path, "0").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("acf")]);
        assert!(write_atomically(&dir.path().join("no/such/dir/f"), "1").is_err());
    }
}
