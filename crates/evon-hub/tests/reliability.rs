//! Reliability of a real `evon-hub serve`: concurrent writes and `kill -9`, on SQLite and on
//! PostgreSQL.
//!
//! 32 clients mix creates, patches and deletes of groups, server groups, rules and policies with
//! reads. Each client owns what it creates (names start with `cNN-`), so the final state of every
//! object follows from its owner's acknowledged writes alone; cross-client references go only to
//! objects their owner never deletes (its first object of each kind, published once
//! acknowledged), to objects made before the load, and to the "doomed" objects made before the
//! load that every client races to delete: exactly one delete of each wins (204), the others get
//! 404, and a write naming one already gone gets 400 `Invalid pk`. Those are the only refusals
//! the model allows; any 5xx fails the test.
//!
//! Every 2xx answer is checked against what the client predicted, logged with a global
//! acknowledgement number, and at the end the log is replayed (deletes cascading, as the join
//! tables do) into the expected state, which must equal every page of `/api/group`,
//! `/api/servergroup`, `/api/rule` and `/api/policy` field for field.
//!
//! The crash tests kill serve with SIGKILL in the middle of that load and start it again on the
//! same data: every acknowledged write must be there, the one request each client had in flight
//! must have happened entirely or not at all, SQLite's `PRAGMA integrity_check` must say `ok`,
//! and (SQLite, as root, in a scratch network namespace) the restarted keeper must bring the
//! kernel's `inet evon` table back in line with the database.
//!
//! `EVON_LOAD_SECONDS` (default 30) sets the length of the load, `EVON_CRASH_AFTER_SECONDS`
//! (default 6) when the crash tests kill serve. The figures are printed for quoting.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use evon_domain::entity::{Principal, UserPatch};
use evon_domain::FieldErrors;
use evon_store::servers::Registration;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, DatabaseUrl, OpenMode, PoolOptions, Store};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_evon-hub");
const CLIENTS: usize = 32;
/// Objects of one kind a client keeps at most; past it, it patches instead of creating.
const OWN_PER_KIND: usize = 10;
const USERS: usize = 6;
const SERVERS: usize = 6;
const DOOMED_PER_KIND: usize = 3;
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// The machine has two cores: one load at a time, so that the figures mean something.
static ONE_LOAD_AT_A_TIME: Mutex<()> = Mutex::new(());

fn seconds_from_env(name: &str, default: u64) -> Duration {
    let seconds = std::env::var(name)
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={v:?} is not a number of seconds"))
        })
        .unwrap_or(default);
    Duration::from_secs(seconds.max(1))
}

fn load_duration() -> Duration {
    seconds_from_env("EVON_LOAD_SECONDS", 30)
}

fn crash_after() -> Duration {
    seconds_from_env("EVON_CRASH_AFTER_SECONDS", 6)
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

// ---------------------------------------------------------------------------------------------
// Tools: ip, nft, sqlite3
// ---------------------------------------------------------------------------------------------

/// The full path of `program`, from `PATH` and the sbin directories.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Why the firewall part cannot run here, if it cannot.
fn firewall_unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok();
    let is_root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        return Some("not root".into());
    }
    for program in ["ip", "nft"] {
        if find_program(program).is_none() {
            return Some(format!("no `{program}` (install iproute2 and nftables)"));
        }
    }
    None
}

/// A part of a test that needs a tool: in CI its absence fails the test; on a developer's
/// machine the part is skipped with the reason printed.
fn required_locally_optional(what: &str, missing: Option<String>) -> bool {
    match missing {
        None => true,
        Some(reason) if in_ci() => panic!("{what} must run in CI, but: {reason}"),
        Some(reason) => {
            eprintln!("SKIPPING {what}: {reason} (CI fails here instead)");
            false
        }
    }
}

/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check` of a SQLite file, through the
/// `sqlite3` command-line shell; `None` when the shell is not installed.
fn sqlite_integrity(file: &Path) -> Option<String> {
    let shell = find_program("sqlite3")?;
    let output = Command::new(shell)
        .arg(file)
        .arg("PRAGMA integrity_check; PRAGMA foreign_key_check;")
        .output()
        .unwrap();
    assert!(output.status.success(), "sqlite3: {}", stderr(&output));
    Some(stdout(&output))
}

fn assert_sqlite_intact(file: &Path) {
    let missing = find_program("sqlite3")
        .is_none()
        .then(|| "no `sqlite3` shell (apt-get install sqlite3)".to_owned());
    if required_locally_optional("PRAGMA integrity_check", missing) {
        let report = sqlite_integrity(file).unwrap();
        assert_eq!(
            report, "ok\n",
            "integrity_check then foreign_key_check of {file:?}"
        );
        eprintln!("PRAGMA integrity_check: ok; foreign_key_check: no violations");
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// A scratch network namespace reached over a veth pair
// ---------------------------------------------------------------------------------------------

/// A network namespace with a veth pair to it, so that this process can reach a `serve` that
/// runs inside (and keeps the namespace's firewall). Deleted when dropped, also on failure.
struct Netns {
    name: String,
    host_link: String,
    inside_addr: String,
}

impl Netns {
    fn new() -> Self {
        let pid = std::process::id();
        let name = format!("evon-crash-{pid}");
        let host_link = format!("evc{}", pid % 1_000_000);
        // 10.251.N.0/30: host side .1, namespace side .2.
        let subnet = format!("10.251.{}", pid % 250 + 1);
        let netns = Self {
            name: name.clone(),
            host_link: host_link.clone(),
            inside_addr: format!("{subnet}.2"),
        };
        let run = |args: &[&str]| {
            let output = Command::new(find_program("ip").unwrap())
                .args(args)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "ip {}: {}",
                args.join(" "),
                stderr(&output)
            );
        };
        run(&["netns", "add", &name]);
        run(&["-n", &name, "link", "set", "lo", "up"]);
        run(&[
            "link", "add", &host_link, "type", "veth", "peer", "name", "evcin", "netns", &name,
        ]);
        run(&["addr", "add", &format!("{subnet}.1/30"), "dev", &host_link]);
        run(&["link", "set", &host_link, "up"]);
        run(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{subnet}.2/30"),
            "dev",
            "evcin",
        ]);
        run(&["-n", &name, "link", "set", "evcin", "up"]);
        netns
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(find_program("ip").unwrap());
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    fn nft(&self, args: &[&str]) -> Output {
        self.command("nft").args(args).output().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let ip = find_program("ip").unwrap_or_else(|| PathBuf::from("ip"));
        let _ = Command::new(&ip)
            .args(["netns", "del", &self.name])
            .status();
        // Deleting the namespace destroys the pair; this is for a half-made one.
        let _ = Command::new(&ip)
            .args(["link", "del", &self.host_link])
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// The hub: init, serve, kill
// ---------------------------------------------------------------------------------------------

struct Hub {
    dir: tempfile::TempDir,
    database: Option<TestDatabase>,
    netns: Option<Netns>,
    bind: String,
    admin_token: String,
    starts: u32,
}

impl Hub {
    fn new(backend: Backend, netns: Option<Netns>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = matches!(backend, Backend::Postgres).then(|| TestDatabase::new(backend));
        let bind = match &netns {
            Some(netns) => format!("{}:8000", netns.inside_addr),
            None => format!("127.0.0.1:{}", free_port()),
        };
        let mut hub = Self {
            dir,
            database,
            netns,
            bind,
            admin_token: String::new(),
            starts: 0,
        };
        let output = hub
            .command(false)
            .args(["init", "--json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "init: {}", stderr(&output));
        let credentials: Value = serde_json::from_str(&stdout(&output)).unwrap();
        hub.admin_token = credentials["admin_token"].as_str().unwrap().to_owned();
        hub
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn sqlite_file(&self) -> Option<PathBuf> {
        self.database
            .is_none()
            .then(|| self.data_dir().join("evon-hub.sqlite3"))
    }

    fn url(&self) -> DatabaseUrl {
        match &self.database {
            Some(database) => database.url().clone(),
            None => DatabaseUrl::sqlite(&self.data_dir().join("evon-hub.sqlite3")),
        }
    }

    /// The binary with only this hub's `EVON_HUB_*` settings, inside the namespace if asked.
    fn command(&self, in_netns: bool) -> Command {
        let mut cmd = match (&self.netns, in_netns) {
            (Some(netns), true) => netns.command(BIN),
            _ => Command::new(BIN),
        };
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("EVON_HUB_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("EVON_HUB_LOG", "warn")
            .env("EVON_HUB_DATA_DIR", self.data_dir())
            .current_dir(self.dir.path());
        if let DatabaseUrl::Postgres(url) = self.url() {
            cmd.env("EVON_HUB_DATABASE_URL", url);
        }
        cmd
    }

    fn base(&self) -> String {
        format!("http://{}", self.bind)
    }

    /// Users and servers, which the API cannot create (servers) or only slowly (argon2), put
    /// straight into the store before serve starts.
    fn seed_users_and_servers(&self) -> (Vec<i32>, Vec<i32>) {
        let store = Store::open(&self.url(), OpenMode::MustExist, &PoolOptions::default()).unwrap();
        let admin = Principal {
            user_id: 1,
            username: "admin".into(),
            is_superuser: true,
            permissions: Default::default(),
        };
        store
            .write(|conn| {
                let mut users = vec![1, 2];
                for n in 0..USERS {
                    let user = evon_store::users::create(
                        conn,
                        &admin,
                        &UserPatch {
                            username: Some(format!("person{n}")),
                            is_active: Some(true),
                            ..UserPatch::default()
                        },
                        None,
                        &FieldErrors::default(),
                    )?;
                    users.push(user.user.id);
                }
                let mut servers = Vec::new();
                for n in 0..SERVERS {
                    let uuid = format!("00000000-0000-4000-8000-{n:012}");
                    match evon_store::servers::register(conn, &uuid, &format!("web{n}"))? {
                        Registration::Allowed { server, .. } => servers.push(server.id),
                        other => panic!("registration refused: {other:?}"),
                    }
                }
                Ok((users, servers))
            })
            .unwrap()
    }

    fn serve(&mut self) -> Serve {
        self.starts += 1;
        let log = self.dir.path().join(format!("serve-{}.log", self.starts));
        let firewall = if self.netns.is_some() { "on" } else { "off" };
        let mut cmd = self.command(true);
        cmd.args(["serve", "--bind", &self.bind, "--firewall", firewall])
            .env("EVON_HUB_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut serve = Serve {
            child: cmd.spawn().unwrap(),
            log,
        };
        serve.wait_until_ready(&self.base(), &self.admin_token);
        serve
    }

    fn firewall_status(&self) -> Output {
        self.command(true)
            .args(["firewall", "status"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Polls `firewall status` until the kernel holds what the database implies.
    fn wait_firewall_in_sync(&self, serve: &Serve) -> Duration {
        let start = Instant::now();
        loop {
            let output = self.firewall_status();
            if output.status.success() {
                return start.elapsed();
            }
            if start.elapsed() > Duration::from_secs(20) {
                let rendered = self
                    .command(true)
                    .args(["firewall", "render"])
                    .output()
                    .unwrap();
                let kernel = self
                    .netns
                    .as_ref()
                    .map(|n| stdout(&n.nft(&["list", "table", "inet", "evon"])))
                    .unwrap_or_default();
                panic!(
                    "firewall not in sync 20 s after start: {}{}\nserve log:\n{}\n\
                     rendered:\n{}\nkernel:\n{kernel}",
                    stdout(&output),
                    stderr(&output),
                    serve.log(),
                    stdout(&rendered),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `serve`; stopped with SIGTERM when dropped.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_until_ready(&mut self, base: &str, token: &str) {
        let agent = agent();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("serve exited early ({status}):\n{}", self.log());
            }
            if let Ok((200, _)) = request(&agent, "GET", &format!("{base}/api/ping"), token, None) {
                return;
            }
            assert!(
                start.elapsed() < READY_DEADLINE,
                "serve did not answer within {READY_DEADLINE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: no shutdown, no flush, nothing.
    fn kill_9(mut self) -> String {
        // `ip netns exec` execs the binary, so the child's pid is the hub's.
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
        self.log()
    }

    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(35),
                "serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn assert_no_panic(log: &str) {
    assert!(!log.contains("panicked"), "serve panicked:\n{log}");
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One request: the status and the body as JSON (`Null` when empty).
fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), ureq::Error> {
    let authorization = format!("Token {token}");
    let mut response = match method {
        "GET" => agent
            .get(url)
            .header("Authorization", &authorization)
            .call(),
        "DELETE" => agent
            .delete(url)
            .header("Authorization", &authorization)
            .call(),
        "POST" => agent
            .post(url)
            .header("Authorization", &authorization)
            .content_type("application/json")
            .send(body.unwrap_or(&Value::Null).to_string()),
        "PATCH" => agent
            .patch(url)
            .header("Authorization", &authorization)
            .content_type("application/json")
            .send(body.unwrap_or(&Value::Null).to_string()),
        other => panic!("no method {other}"),
    }?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string()?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, value))
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Group,
    ServerGroup,
    Rule,
    Policy,
}

const KINDS: [Kind; 4] = [Kind::Group, Kind::ServerGroup, Kind::Rule, Kind::Policy];

/// What a relation field holds ids of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    User,
    Server,
    Permission,
    Object(Kind),
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Group => "group",
            Kind::ServerGroup => "servergroup",
            Kind::Rule => "rule",
            Kind::Policy => "policy",
        }
    }

    fn relations(self) -> &'static [(&'static str, Target)] {
        match self {
            Kind::Group => &[
                ("user_set", Target::User),
                ("permissions", Target::Permission),
            ],
            Kind::ServerGroup => &[("server_set", Target::Server)],
            Kind::Rule => &[
                ("source_users", Target::User),
                ("source_groups", Target::Object(Kind::Group)),
                ("source_servers", Target::Server),
                ("source_servergroups", Target::Object(Kind::ServerGroup)),
            ],
            Kind::Policy => &[
                ("rules", Target::Object(Kind::Rule)),
                ("servers", Target::Server),
                ("servergroups", Target::Object(Kind::ServerGroup)),
            ],
        }
    }
}

type Key = (Kind, i32);
/// Every object of the four kinds, as the API shows it.
type State = BTreeMap<Key, Value>;

fn ids_of(value: &Value) -> Vec<i32> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_i64())
                .map(|v| v as i32)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes from `object`'s relation lists the ids of objects in `gone`.
fn strip_refs(kind: Kind, object: &mut Value, gone: &BTreeSet<Key>) {
    for (field, target) in kind.relations() {
        if let Target::Object(target) = target {
            let kept: Vec<i32> = ids_of(&object[*field])
                .into_iter()
                .filter(|id| !gone.contains(&(*target, *id)))
                .collect();
            object[*field] = json!(kept);
        }
    }
}

/// A delete as the join tables' `ON DELETE CASCADE` does it: the object and every reference
/// to it.
fn delete_cascading(state: &mut State, key: Key) {
    state.remove(&key);
    let gone = BTreeSet::from([key]);
    for ((kind, _), object) in state.iter_mut() {
        strip_refs(*kind, object, &gone);
    }
}

/// Lists in the canonical order the API answers with: sorted, no duplicates.
fn canonical(ids: &[i32]) -> Value {
    let set: BTreeSet<i32> = ids.iter().copied().collect();
    json!(set.into_iter().collect::<Vec<_>>())
}

/// The doomed ids `object` refers to.
fn doomed_refs(kind: Kind, object: &Value, doomed: &BTreeSet<Key>) -> BTreeSet<Key> {
    let mut found = BTreeSet::new();
    for (field, target) in kind.relations() {
        if let Target::Object(target) = target {
            for id in ids_of(&object[*field]) {
                if doomed.contains(&(*target, id)) {
                    found.insert((*target, id));
                }
            }
        }
    }
    found
}

/// Whether the server's `answer` is what the client `predicted`, allowing only that doomed
/// objects the prediction names may have been deleted (and their references cascaded) by then.
fn answer_matches(kind: Kind, predicted: &Value, answer: &Value, doomed: &BTreeSet<Key>) -> bool {
    if !doomed_refs(kind, answer, doomed).is_subset(&doomed_refs(kind, predicted, doomed)) {
        return false;
    }
    let mut predicted = predicted.clone();
    let mut answer = answer.clone();
    strip_refs(kind, &mut predicted, doomed);
    strip_refs(kind, &mut answer, doomed);
    predicted == answer
}

/// A 400 that only says some doomed objects the request named no longer exist.
fn only_gone_doomed(kind: Kind, body: &Value, sent: &Value, doomed: &BTreeSet<Key>) -> bool {
    let Some(errors) = body.as_object() else {
        return false;
    };
    let named = doomed_refs(kind, sent, doomed);
    !errors.is_empty()
        && errors.iter().all(|(field, messages)| {
            let Some((_, Target::Object(target))) =
                kind.relations().iter().find(|(f, _)| f == field)
            else {
                return false;
            };
            messages.as_array().is_some_and(|messages| {
                messages.iter().all(|m| {
                    m.as_str()
                        .and_then(|m| m.strip_prefix("Invalid pk \""))
                        .and_then(|m| m.strip_suffix("\" - object does not exist."))
                        .and_then(|id| id.parse::<i32>().ok())
                        .is_some_and(|id| named.contains(&(*target, id)))
                })
            })
        })
}

/// splitmix64: a reproducible stream per client without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len())])
    }

    /// Up to `max` distinct items, in random order.
    fn subset(&mut self, items: &[i32], max: usize) -> Vec<i32> {
        let mut pool: Vec<i32> = items.to_vec();
        let mut chosen = Vec::new();
        for _ in 0..self.below(max + 1) {
            if pool.is_empty() {
                break;
            }
            chosen.push(pool.swap_remove(self.below(pool.len())));
        }
        chosen
    }
}

// ---------------------------------------------------------------------------------------------
// The world the clients share
// ---------------------------------------------------------------------------------------------

struct World {
    base: String,
    token: String,
    users: Vec<i32>,
    servers: Vec<i32>,
    permissions: Vec<i32>,
    /// Made before the load and never touched by it.
    stable: BTreeMap<Kind, Vec<i32>>,
    stable_group_names: Vec<String>,
    doomed: Vec<Key>,
    doomed_set: BTreeSet<Key>,
    /// Some client has seen this doomed object gone (a hint to stop naming it).
    doomed_gone: Vec<AtomicBool>,
    /// Objects their owners never delete, once acknowledged.
    published: Mutex<BTreeMap<Kind, Vec<i32>>>,
    acknowledgements: AtomicU64,
    stop: AtomicBool,
    killed: AtomicBool,
}

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}/api/{path}", self.base)
    }

    fn live_doomed(&self, kind: Kind) -> Vec<i32> {
        self.doomed
            .iter()
            .zip(&self.doomed_gone)
            .filter(|((k, _), gone)| *k == kind && !gone.load(Ordering::Relaxed))
            .map(|((_, id), _)| *id)
            .collect()
    }

    fn mark_gone(&self, keys: &BTreeSet<Key>) {
        for (key, gone) in self.doomed.iter().zip(&self.doomed_gone) {
            if keys.contains(key) {
                gone.store(true, Ordering::Relaxed);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Patch,
    Delete,
}

/// A write that got a 2xx: what the object is now (none after a delete).
#[derive(Debug, Clone)]
struct Ack {
    seq: u64,
    op: Op,
    key: Key,
    object: Option<Value>,
}

/// The request a client had in flight when serve died: it happened wholly or not at all.
#[derive(Debug, Clone)]
enum Pending {
    /// A create of an object with this (unique) name; its id is unknown.
    Create {
        kind: Kind,
        object: Value,
    },
    Patch {
        key: Key,
        object: Value,
    },
    Delete {
        key: Key,
    },
    /// A doomed object's delete: it may be gone without anyone having been told 204.
    DeleteDoomed {
        key: Key,
    },
    /// Nothing the final state depends on (a read, a doomed patch, a collision).
    Harmless,
}

#[derive(Debug, Default)]
struct Report {
    acks: Vec<Ack>,
    /// Refusals the model predicts (status, what).
    expected_refusals: Vec<(u16, String)>,
    failures: Vec<String>,
    pending: Option<Pending>,
    latencies_us: Vec<u64>,
    requests: u64,
    /// Every request with its answer, to explain a difference.
    trace: Vec<String>,
    doomed_deleted: Vec<Key>,
}

enum Step {
    Continue,
    Stop,
}

struct Client<'w> {
    world: &'w World,
    index: usize,
    agent: ureq::Agent,
    rng: Rng,
    names: u32,
    own: State,
    permanent: BTreeSet<Key>,
    report: Report,
}

impl<'w> Client<'w> {
    fn new(world: &'w World, index: usize) -> Self {
        Self {
            world,
            index,
            agent: agent(),
            rng: Rng(0x5eed_0000 + index as u64),
            names: 0,
            own: State::new(),
            permanent: BTreeSet::new(),
            report: Report::default(),
        }
    }

    fn run(mut self) -> Report {
        while !self.world.stop.load(Ordering::Relaxed) {
            let roll = self.rng.below(100);
            let step = match roll {
                0..=14 => {
                    let kind = self.random_kind();
                    self.create(kind)
                }
                15..=32 => self.patch_own(),
                33..=41 => self.delete_own(),
                42..=44 => self.doomed_op(),
                45 => self.name_collision(),
                _ => self.read(),
            };
            if let Step::Stop = step {
                break;
            }
        }
        self.report
    }

    fn random_kind(&mut self) -> Kind {
        KINDS[self.rng.below(KINDS.len())]
    }

    fn name(&mut self, kind: Kind) -> String {
        self.names += 1;
        format!("c{:02}-{}-{}", self.index, kind.path(), self.names)
    }

    /// Sends one request; `None` when no answer came (the client then stops: after the kill
    /// that is the crash, before it a failure).
    fn send(&mut self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let start = Instant::now();
        let result = request(
            &self.agent,
            method,
            &self.world.url(path),
            &self.world.token,
            body,
        );
        self.report.requests += 1;
        self.report.trace.push(format!(
            "{method} /api/{path} sent {} -> {}",
            body.map(Value::to_string).unwrap_or_default(),
            match &result {
                Ok((status, answer)) => format!("{status} {answer}"),
                Err(error) => format!("no answer: {error}"),
            }
        ));
        match result {
            Ok(answer) => {
                self.report
                    .latencies_us
                    .push(start.elapsed().as_micros() as u64);
                if answer.0 >= 500 {
                    self.report.failures.push(format!(
                        "{method} /api/{path} {}: {} (sent {body:?})",
                        answer.0, answer.1
                    ));
                }
                Some(answer)
            }
            Err(error) => {
                if !self.world.killed.load(Ordering::SeqCst) {
                    self.report
                        .failures
                        .push(format!("{method} /api/{path}: no answer: {error}"));
                }
                None
            }
        }
    }

    fn acknowledge(&mut self, op: Op, key: Key, object: Option<Value>) {
        let seq = self.world.acknowledgements.fetch_add(1, Ordering::SeqCst);
        self.report.acks.push(Ack {
            seq,
            op,
            key,
            object,
        });
    }

    fn unexpected(&mut self, what: String, status: u16, body: &Value) {
        if status < 500 {
            self.report
                .failures
                .push(format!("{what}: unexpected {status}: {body}"));
        }
    }

    /// Ids of `kind` this client may name: its own, published ones, stable ones, and now and
    /// then a doomed one.
    fn referable(&mut self, kind: Kind) -> Vec<i32> {
        let mut ids: Vec<i32> = self
            .own
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| *id)
            .collect();
        if let Some(published) = self.world.published.lock().unwrap().get(&kind) {
            let others: Vec<i32> = published
                .iter()
                .filter(|id| !ids.contains(id))
                .copied()
                .collect();
            ids.extend(others);
        }
        ids.extend(self.world.stable.get(&kind).into_iter().flatten().copied());
        if self.rng.chance(30) {
            if let Some(id) = self.rng.pick(&self.world.live_doomed(kind)) {
                ids.push(*id);
            }
        }
        ids
    }

    fn relation(&mut self, target: Target) -> Vec<i32> {
        let pool = match target {
            Target::User => self.world.users.clone(),
            Target::Server => self.world.servers.clone(),
            Target::Permission => self.world.permissions.clone(),
            Target::Object(kind) => self.referable(kind),
        };
        self.rng.subset(&pool, 4)
    }

    /// Random values for `kind`'s fields: all of them (a create) or some (a patch).
    fn fields(&mut self, kind: Kind, all: bool) -> serde_json::Map<String, Value> {
        let mut body = serde_json::Map::new();
        if all || self.rng.chance(40) {
            body.insert("name".into(), json!(self.name(kind)));
        }
        if matches!(kind, Kind::ServerGroup | Kind::Policy) && (all || self.rng.chance(40)) {
            let description = if self.rng.chance(25) {
                Value::Null
            } else {
                json!(format!("description {}", self.rng.below(1000)))
            };
            body.insert("description".into(), description);
        }
        if kind == Kind::Rule && (all || self.rng.chance(40)) {
            const PORTS: [&str; 5] = ["22", "80,443", "8000-8080", "53,5353", "22,8000-8080"];
            let (protocol, ports) = match self.rng.below(4) {
                0 => ("TCP", *self.rng.pick(&PORTS).unwrap()),
                1 => ("UDP", *self.rng.pick(&PORTS).unwrap()),
                2 => ("ICMP", ""),
                _ => ("ALL", ""),
            };
            body.insert("destination_protocol".into(), json!(protocol));
            body.insert("destination_ports".into(), json!(ports));
        }
        for (field, target) in kind.relations() {
            if all || self.rng.chance(50) {
                body.insert((*field).into(), json!(self.relation(*target)));
            }
        }
        body
    }

    /// `current` with `fields` applied, as the API should answer.
    fn predict(kind: Kind, current: &Value, fields: &serde_json::Map<String, Value>) -> Value {
        let mut object = current.clone();
        for (field, value) in fields {
            let is_relation = kind.relations().iter().any(|(f, _)| f == field);
            object[field] = if is_relation {
                canonical(&ids_of(value))
            } else {
                value.clone()
            };
        }
        object
    }

    fn blank(kind: Kind) -> Value {
        match kind {
            Kind::Group => json!({"id": null, "name": "", "user_set": [], "permissions": []}),
            Kind::ServerGroup => {
                json!({"id": null, "server_set": [], "name": "", "description": null})
            }
            Kind::Rule => json!({
                "id": null, "name": "", "destination_protocol": "", "destination_ports": "",
                "source_users": [], "source_groups": [], "source_servers": [],
                "source_servergroups": []
            }),
            Kind::Policy => json!({
                "id": null, "name": "", "description": null, "rules": [], "servers": [],
                "servergroups": []
            }),
        }
    }

    fn create(&mut self, kind: Kind) -> Step {
        let owned = self.own.keys().filter(|(k, _)| *k == kind).count();
        if owned >= OWN_PER_KIND {
            return self.patch_own();
        }
        let fields = self.fields(kind, true);
        let predicted = Self::predict(kind, &Self::blank(kind), &fields);
        let body = Value::Object(fields);
        let what = format!("POST /api/{}", kind.path());
        let Some((status, answer)) = self.send("POST", kind.path(), Some(&body)) else {
            self.report.pending = Some(Pending::Create {
                kind,
                object: predicted,
            });
            return Step::Stop;
        };
        match status {
            201 => {
                let id = answer["id"].as_i64().unwrap_or(0) as i32;
                let mut predicted = predicted;
                predicted["id"] = json!(id);
                if !answer_matches(kind, &predicted, &answer, &self.world.doomed_set) {
                    self.report
                        .failures
                        .push(format!("{what}: answered {answer}, expected {predicted}"));
                }
                let key = (kind, id);
                self.acknowledge(Op::Create, key, Some(predicted.clone()));
                self.own.insert(key, predicted);
                if !self.permanent.iter().any(|(k, _)| *k == kind) {
                    self.permanent.insert(key);
                    let mut published = self.world.published.lock().unwrap();
                    published.entry(kind).or_default().push(id);
                }
            }
            400 if only_gone_doomed(kind, &answer, &body, &self.world.doomed_set) => {
                self.world
                    .mark_gone(&doomed_refs(kind, &body, &self.world.doomed_set));
                self.report
                    .expected_refusals
                    .push((status, format!("{what} naming a deleted doomed object")));
            }
            _ => self.unexpected(what, status, &answer),
        }
        Step::Continue
    }

    fn patch_own(&mut self) -> Step {
        let keys: Vec<Key> = self.own.keys().copied().collect();
        let Some(&key) = self.rng.pick(&keys) else {
            return {
                let kind = self.random_kind();
                self.create(kind)
            };
        };
        let (kind, id) = key;
        let fields = self.fields(kind, false);
        let predicted = Self::predict(kind, &self.own[&key], &fields);
        let body = Value::Object(fields);
        let path = format!("{}/{id}", kind.path());
        let what = format!("PATCH /api/{path}");
        let Some((status, answer)) = self.send("PATCH", &path, Some(&body)) else {
            self.report.pending = Some(Pending::Patch {
                key,
                object: predicted,
            });
            return Step::Stop;
        };
        match status {
            200 => {
                if !answer_matches(kind, &predicted, &answer, &self.world.doomed_set) {
                    self.report
                        .failures
                        .push(format!("{what}: answered {answer}, expected {predicted}"));
                }
                self.acknowledge(Op::Patch, key, Some(predicted.clone()));
                self.own.insert(key, predicted);
            }
            400 if only_gone_doomed(kind, &answer, &body, &self.world.doomed_set) => {
                self.world
                    .mark_gone(&doomed_refs(kind, &body, &self.world.doomed_set));
                self.report
                    .expected_refusals
                    .push((status, format!("{what} naming a deleted doomed object")));
            }
            _ => self.unexpected(what, status, &answer),
        }
        Step::Continue
    }

    fn delete_own(&mut self) -> Step {
        let keys: Vec<Key> = self
            .own
            .keys()
            .filter(|key| !self.permanent.contains(key))
            .copied()
            .collect();
        let Some(&key) = self.rng.pick(&keys) else {
            return {
                let kind = self.random_kind();
                self.create(kind)
            };
        };
        let path = format!("{}/{}", key.0.path(), key.1);
        let Some((status, answer)) = self.send("DELETE", &path, None) else {
            self.report.pending = Some(Pending::Delete { key });
            return Step::Stop;
        };
        if status == 204 {
            self.acknowledge(Op::Delete, key, None);
            delete_cascading(&mut self.own, key);
        } else {
            self.unexpected(format!("DELETE /api/{path}"), status, &answer);
        }
        Step::Continue
    }

    /// Races the other clients to delete (or rename) one of the doomed objects.
    fn doomed_op(&mut self) -> Step {
        let kind = self.random_kind();
        let Some(&id) = self.rng.pick(&self.world.live_doomed(kind)) else {
            return self.read();
        };
        let key = (kind, id);
        let path = format!("{}/{id}", kind.path());
        let delete = self.rng.chance(60);
        let answer = if delete {
            self.send("DELETE", &path, None)
        } else {
            let name = format!("doomed-{}-renamed-by-c{:02}", self.names, self.index);
            self.names += 1;
            self.send("PATCH", &path, Some(&json!({ "name": name })))
        };
        let Some((status, body)) = answer else {
            self.report.pending = Some(if delete {
                Pending::DeleteDoomed { key }
            } else {
                Pending::Harmless
            });
            return Step::Stop;
        };
        match (delete, status) {
            (true, 204) => {
                self.report.doomed_deleted.push(key);
                self.world.mark_gone(&BTreeSet::from([key]));
            }
            (false, 200) => {}
            (_, 404) => {
                self.world.mark_gone(&BTreeSet::from([key]));
                self.report
                    .expected_refusals
                    .push((404, "a doomed object another client deleted".into()));
            }
            _ => self.unexpected(format!("doomed {path}"), status, &body),
        }
        Step::Continue
    }

    /// A group named like a stable one: the unique name must refuse it.
    fn name_collision(&mut self) -> Step {
        let Some(name) = self.rng.pick(&self.world.stable_group_names).cloned() else {
            return self.read();
        };
        let body = json!({"name": name, "user_set": [], "permissions": []});
        let Some((status, answer)) = self.send("POST", "group", Some(&body)) else {
            self.report.pending = Some(Pending::Harmless);
            return Step::Stop;
        };
        if status == 400 && answer == json!({"name": ["group with this name already exists."]}) {
            self.report
                .expected_refusals
                .push((400, "a group named like an existing one".into()));
        } else {
            self.unexpected(format!("POST /api/group {name:?}"), status, &answer);
        }
        Step::Continue
    }

    fn read(&mut self) -> Step {
        let roll = self.rng.below(10);
        if roll < 4 || self.own.is_empty() {
            let kind = self.random_kind();
            let Some((status, body)) = self.send("GET", kind.path(), None) else {
                self.report.pending = Some(Pending::Harmless);
                return Step::Stop;
            };
            if status != 200 || !body["count"].is_u64() || !body["results"].is_array() {
                self.unexpected(format!("GET /api/{}", kind.path()), status, &body);
            }
        } else if roll < 8 {
            let keys: Vec<Key> = self.own.keys().copied().collect();
            let key = *self.rng.pick(&keys).unwrap();
            let path = format!("{}/{}", key.0.path(), key.1);
            let Some((status, body)) = self.send("GET", &path, None) else {
                self.report.pending = Some(Pending::Harmless);
                return Step::Stop;
            };
            if status != 200 {
                self.unexpected(format!("GET /api/{path}"), status, &body);
            } else if !answer_matches(key.0, &self.own[&key], &body, &self.world.doomed_set) {
                self.report.failures.push(format!(
                    "GET /api/{path}: read {body}, last acknowledged {}",
                    self.own[&key]
                ));
            }
        } else {
            let kind = self.random_kind();
            let published = self
                .world
                .published
                .lock()
                .unwrap()
                .get(&kind)
                .cloned()
                .unwrap_or_default();
            let Some(&id) = self.rng.pick(&published) else {
                return Step::Continue;
            };
            let path = format!("{}/{id}", kind.path());
            let Some((status, body)) = self.send("GET", &path, None) else {
                self.report.pending = Some(Pending::Harmless);
                return Step::Stop;
            };
            if status != 200 {
                self.unexpected(format!("GET /api/{path}"), status, &body);
            }
        }
        Step::Continue
    }
}

// ---------------------------------------------------------------------------------------------
// Setting up, reading back, checking
// ---------------------------------------------------------------------------------------------

/// An admin's call that must succeed with `expected`.
fn admin_call(hub: &Hub, method: &str, path: &str, body: Option<Value>, expected: u16) -> Value {
    let url = format!("{}/api/{path}", hub.base());
    let (status, answer) = request(&agent(), method, &url, &hub.admin_token, body.as_ref())
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    assert_eq!(status, expected, "{method} {url}: {answer}");
    answer
}

/// Every page of a list.
fn read_pages(hub: &Hub, path: &str) -> Vec<Value> {
    let mut results = Vec::new();
    let mut page = 1;
    loop {
        let body = admin_call(hub, "GET", &format!("{path}?page={page}"), None, 200);
        results.extend(body["results"].as_array().unwrap().iter().cloned());
        if body["next"].is_null() {
            assert_eq!(
                body["count"].as_u64().unwrap() as usize,
                results.len(),
                "/api/{path}: count against the pages"
            );
            return results;
        }
        page += 1;
    }
}

/// The whole state as the API shows it; duplicates of an id fail here.
fn read_state(hub: &Hub) -> State {
    let mut state = State::new();
    for kind in KINDS {
        for object in read_pages(hub, kind.path()) {
            let id = object["id"].as_i64().unwrap() as i32;
            let earlier = state.insert((kind, id), object);
            assert!(earlier.is_none(), "{kind:?} {id} listed twice");
        }
    }
    state
}

/// Builds the objects the load starts from, returns the world and the state it starts in.
fn setup(hub: &Hub, users: Vec<i32>, servers: Vec<i32>) -> (World, State) {
    let permissions: Vec<i32> = read_pages(hub, "permission")
        .iter()
        .map(|p| p["id"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(permissions.len(), 25);
    let create = |kind: Kind, body: Value| -> i32 {
        admin_call(hub, "POST", kind.path(), Some(body), 201)["id"]
            .as_i64()
            .unwrap() as i32
    };
    let mut stable: BTreeMap<Kind, Vec<i32>> = BTreeMap::new();
    let mut doomed = Vec::new();
    let mut stable_group_names = Vec::new();
    for (n, is_doomed) in (0..2)
        .map(|n| (n, false))
        .chain((0..DOOMED_PER_KIND).map(|n| (n, true)))
    {
        let label = if is_doomed { "doomed" } else { "stable" };
        let group_name = format!("{label}-group-{n}");
        let group = create(
            Kind::Group,
            json!({"name": group_name, "user_set": users[n..n + 3], "permissions": [permissions[n]]}),
        );
        let servergroup = create(
            Kind::ServerGroup,
            json!({"name": format!("{label}-servergroup-{n}"), "server_set": servers[n..n + 2]}),
        );
        let rule = create(
            Kind::Rule,
            json!({
                "name": format!("{label}-rule-{n}"), "destination_protocol": "TCP",
                "destination_ports": "22", "source_users": [users[n + 2]],
                "source_groups": [group], "source_servergroups": [servergroup]
            }),
        );
        let policy = create(
            Kind::Policy,
            json!({
                "name": format!("{label}-policy-{n}"), "rules": [rule],
                "servers": [servers[n + 3]], "servergroups": [servergroup]
            }),
        );
        let keys = [
            (Kind::Group, group),
            (Kind::ServerGroup, servergroup),
            (Kind::Rule, rule),
            (Kind::Policy, policy),
        ];
        if is_doomed {
            doomed.extend(keys);
        } else {
            stable_group_names.push(group_name);
            for (kind, id) in keys {
                stable.entry(kind).or_default().push(id);
            }
        }
    }
    let initial = read_state(hub);
    // The built-in groups (All Users, All Servers) are stable too.
    for (kind, id) in initial.keys() {
        if !doomed.contains(&(*kind, *id)) {
            let ids = stable.entry(*kind).or_default();
            if !ids.contains(id) {
                ids.push(*id);
            }
        }
    }
    let world = World {
        base: hub.base(),
        token: hub.admin_token.clone(),
        users,
        servers,
        permissions,
        stable,
        stable_group_names,
        doomed_set: doomed.iter().copied().collect(),
        doomed_gone: doomed.iter().map(|_| AtomicBool::new(false)).collect(),
        doomed,
        published: Mutex::new(BTreeMap::new()),
        acknowledgements: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        killed: AtomicBool::new(false),
    };
    (world, initial)
}

/// Runs the clients until `duration` has passed, or, with `kill` set, until the action kills
/// serve at that point (it returns whatever the caller needs afterwards).
fn run_load<K>(world: &World, duration: Duration, kill: Option<K>) -> (Vec<Report>, Duration)
where
    K: FnOnce(),
{
    let start = Instant::now();
    let reports = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|index| scope.spawn(move || Client::new(world, index).run()))
            .collect();
        std::thread::sleep(duration);
        if let Some(kill) = kill {
            world.killed.store(true, Ordering::SeqCst);
            kill();
        }
        world.stop.store(true, Ordering::SeqCst);
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    (reports, start.elapsed())
}

fn print_figures(label: &str, reports: &[Report], elapsed: Duration) {
    let requests: u64 = reports.iter().map(|r| r.requests).sum();
    let writes: usize = reports
        .iter()
        .map(|r| r.acks.len() + r.doomed_deleted.len())
        .sum();
    let refusals: usize = reports.iter().map(|r| r.expected_refusals.len()).sum();
    let mut latencies: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index] as f64 / 1000.0
    };
    eprintln!(
        "FIGURES {label}: {CLIENTS} clients, {:.1} s: {requests} requests ({:.0} req/s), \
         {writes} writes acknowledged, {refusals} refusals the model predicts (404/400), \
         latency p50 {:.1} ms, p99 {:.1} ms",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        quantile(0.50),
        quantile(0.99),
    );
}

fn assert_no_failures(reports: &[Report]) {
    let failures: Vec<&String> = reports.iter().flat_map(|r| &r.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failures; the first:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The acknowledged log replayed in acknowledgement order onto the starting state.
fn replay(initial: &State, reports: &[Report]) -> State {
    let mut acks: Vec<&Ack> = reports.iter().flat_map(|r| &r.acks).collect();
    acks.sort_by_key(|a| a.seq);
    let mut state = initial.clone();
    for ack in acks {
        match (ack.op, &ack.object) {
            (Op::Create | Op::Patch, Some(object)) => {
                let earlier = state.insert(ack.key, object.clone());
                assert_eq!(
                    earlier.is_none(),
                    ack.op == Op::Create,
                    "log out of order at {ack:?}"
                );
            }
            _ => delete_cascading(&mut state, ack.key),
        }
    }
    state
}

/// Deletes every doomed object still there; the deletes that said 204, per object.
fn sweep_doomed(hub: &Hub, world: &World) -> BTreeMap<Key, usize> {
    let mut wins = BTreeMap::new();
    for key in &world.doomed {
        let url = format!("{}/api/{}/{}", hub.base(), key.0.path(), key.1);
        let (status, body) = request(&agent(), "DELETE", &url, &hub.admin_token, None).unwrap();
        assert!(matches!(status, 204 | 404), "sweep {url}: {status} {body}");
        wins.insert(*key, usize::from(status == 204));
    }
    wins
}

/// The owner's index from an object's name, `cNN-…`.
fn owner(object: &Value) -> Option<usize> {
    let name = object["name"].as_str()?;
    name.strip_prefix('c')?.get(..2)?.parse().ok()
}

fn by_owner(state: &State) -> BTreeMap<Option<usize>, State> {
    let mut parts: BTreeMap<Option<usize>, State> = BTreeMap::new();
    for (key, object) in state {
        parts
            .entry(owner(object))
            .or_default()
            .insert(*key, object.clone());
    }
    parts
}

/// The requests that touched `key` and their answers.
fn history(key: Key, reports: &[Report]) -> String {
    let path = format!("/api/{}/{} ", key.0.path(), key.1);
    let created = format!("\"id\":{},", key.1);
    let create = format!("POST /api/{} ", key.0.path());
    reports
        .iter()
        .flat_map(|r| &r.trace)
        .filter(|line| {
            line.contains(&path) || (line.starts_with(&create) && line.contains(&created))
        })
        .map(|line| format!("    {line}\n"))
        .collect()
}

fn describe_difference(expected: &State, actual: &State, reports: &[Report]) -> String {
    let mut lines = Vec::new();
    for (key, object) in expected {
        match actual.get(key) {
            None => lines.push(format!(
                "lost: {key:?} {object}\n{}",
                history(*key, reports)
            )),
            Some(found) if found != object => lines.push(format!(
                "differs: {key:?}\n  expected {object}\n  found    {found}\n{}",
                history(*key, reports)
            )),
            Some(_) => {}
        }
    }
    for (key, object) in actual {
        if !expected.contains_key(key) {
            lines.push(format!(
                "unexpected (duplicate or phantom): {key:?} {object}"
            ));
        }
    }
    lines.truncate(20);
    lines.join("\n")
}

/// The state after the load must be the replayed log, with every doomed object deleted (by a
/// client or the sweep; `gone` lists them). `pending` are the requests in flight at a crash: each client's part of
/// the state may show its request as done or as never made, nothing in between.
fn assert_state(expected: &State, actual: &State, reports: &[Report], gone: &BTreeSet<Key>) {
    let expected_parts = by_owner(expected);
    let actual_parts = by_owner(actual);
    let empty = State::new();
    let owners: BTreeSet<Option<usize>> = expected_parts
        .keys()
        .chain(actual_parts.keys())
        .copied()
        .collect();
    let mut problems = Vec::new();
    for who in owners {
        let want = expected_parts.get(&who).unwrap_or(&empty);
        let have = actual_parts.get(&who).unwrap_or(&empty);
        if want == have {
            continue;
        }
        let pending = who.and_then(|index| reports[index].pending.as_ref());
        let explained = match pending {
            Some(Pending::Patch { key, object }) => {
                let mut done = want.clone();
                let mut object = object.clone();
                strip_refs(key.0, &mut object, gone);
                done.insert(*key, object);
                done == *have
            }
            Some(Pending::Delete { key }) => {
                let mut done = want.clone();
                delete_cascading(&mut done, *key);
                done == *have
            }
            Some(Pending::Create { kind, object }) => {
                let mut rest = have.clone();
                let created: Vec<Key> = rest
                    .iter()
                    .filter(|(k, o)| k.0 == *kind && o["name"] == object["name"])
                    .map(|(k, _)| *k)
                    .collect();
                match created.as_slice() {
                    [key] => {
                        let found = rest.remove(key).unwrap();
                        let mut object = object.clone();
                        object["id"] = json!(key.1);
                        strip_refs(*kind, &mut object, gone);
                        found == object && rest == *want
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if explained {
            eprintln!("client {who:?}: its request in flight at the crash was done entirely");
        } else {
            problems.push(format!(
                "objects of {}: (in flight: {pending:?})\n{}",
                who.map_or("the set-up".to_owned(), |i| format!("client {i}")),
                describe_difference(want, have, reports)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the state read back is not the acknowledged log:\n{}",
        problems.join("\n")
    );
}

/// Each doomed object was deleted exactly once: one 204 among the clients and the sweep, or,
/// after a crash, none when a client's delete of it was in flight.
fn assert_doomed_deleted_once(world: &World, reports: &[Report], sweep: &BTreeMap<Key, usize>) {
    for key in &world.doomed {
        let wins = sweep[key]
            + reports
                .iter()
                .flat_map(|r| &r.doomed_deleted)
                .filter(|k| *k == key)
                .count();
        let in_flight = reports
            .iter()
            .any(|r| matches!(r.pending, Some(Pending::DeleteDoomed { key: k }) if k == *key));
        assert!(
            wins == 1 || (wins == 0 && in_flight),
            "doomed {key:?}: {wins} deletes answered 204 (one in flight: {in_flight})"
        );
    }
}

fn expected_after_sweep(world: &World, initial: &State, reports: &[Report]) -> State {
    let mut expected = replay(initial, reports);
    for key in &world.doomed {
        delete_cascading(&mut expected, *key);
    }
    expected
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

fn concurrent_writes(backend: Backend) {
    let _one = ONE_LOAD_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut hub = Hub::new(backend, None);
    let (users, servers) = hub.seed_users_and_servers();
    let serve = hub.serve();
    let (world, initial) = setup(&hub, users, servers);

    let duration = load_duration();
    let (reports, elapsed) = run_load::<fn()>(&world, duration, None);
    print_figures(&format!("{backend:?} concurrent writes"), &reports, elapsed);
    assert_no_failures(&reports);

    let sweep = sweep_doomed(&hub, &world);
    assert_doomed_deleted_once(&world, &reports, &sweep);
    let expected = expected_after_sweep(&world, &initial, &reports);
    assert_state(&expected, &read_state(&hub), &reports, &world.doomed_set);
    assert!(reports.iter().all(|r| r.pending.is_none()));

    assert_no_panic(&serve.stop());
    if let Some(file) = hub.sqlite_file() {
        assert_sqlite_intact(&file);
    }
}

fn crash(backend: Backend) {
    let _one = ONE_LOAD_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // The firewall part needs the hub in a namespace, which cannot reach the host's PostgreSQL.
    let netns = match backend {
        Backend::Sqlite => required_locally_optional(
            "the firewall part of the crash test",
            firewall_unavailable(),
        )
        .then(Netns::new),
        Backend::Postgres => None,
    };
    let mut hub = Hub::new(backend, netns);
    let (users, servers) = hub.seed_users_and_servers();
    let serve = hub.serve();
    let (world, initial) = setup(&hub, users, servers);
    if hub.netns.is_some() {
        hub.wait_firewall_in_sync(&serve);
    }

    let serve = Mutex::new(Some(serve));
    let mut log = String::new();
    let (reports, elapsed) = run_load(
        &world,
        crash_after(),
        Some(|| {
            let serve = serve.lock().unwrap().take().unwrap();
            log = serve.kill_9();
        }),
    );
    assert_no_panic(&log);
    print_figures(
        &format!("{backend:?} load until kill -9"),
        &reports,
        elapsed,
    );
    assert_no_failures(&reports);
    let in_flight = reports
        .iter()
        .filter(|r| !matches!(r.pending, None | Some(Pending::Harmless)))
        .count();
    eprintln!(
        "{in_flight} clients had a write unanswered at the kill (in flight, or sent after it)"
    );

    if let Some(file) = hub.sqlite_file() {
        assert_sqlite_intact(&file);
    }
    if let Some(netns) = &hub.netns {
        let status = hub.firewall_status();
        eprintln!(
            "firewall after the kill, before the restart: {}",
            stdout(&status).trim()
        );
        if status.status.success() {
            // The keeper had caught up before it died: take the table away, as a reboot
            // would, so that the restart has to put it back from the database.
            let deleted = netns.nft(&["delete", "table", "inet", "evon"]);
            assert!(deleted.status.success(), "{}", stderr(&deleted));
        }
    }

    let serve = hub.serve();
    if let Some(netns) = &hub.netns {
        let took = hub.wait_firewall_in_sync(&serve);
        eprintln!("firewall in sync {took:?} after the restart");
        let listing = netns.nft(&["list", "table", "inet", "evon"]);
        assert!(
            stdout(&listing).contains("chain overlay"),
            "{}",
            stdout(&listing)
        );
    }
    // Before anything else writes: the acknowledged state, plus each in-flight request done or
    // not. The doomed objects are taken out of the comparison until the sweep has run.
    let expected_before_sweep = {
        let mut state = replay(&initial, &reports);
        for key in &world.doomed {
            state.remove(key);
        }
        state
    };
    let mut actual = read_state(&hub);
    for key in &world.doomed {
        actual.remove(key);
    }
    let gone = world.doomed_set.clone();
    let strip = |state: &mut State| {
        for ((kind, _), object) in state.iter_mut() {
            strip_refs(*kind, object, &gone);
        }
    };
    let mut expected_stripped = expected_before_sweep;
    strip(&mut expected_stripped);
    strip(&mut actual);
    assert_state(&expected_stripped, &actual, &reports, &world.doomed_set);

    let sweep = sweep_doomed(&hub, &world);
    assert_doomed_deleted_once(&world, &reports, &sweep);
    let expected = expected_after_sweep(&world, &initial, &reports);
    assert_state(&expected, &read_state(&hub), &reports, &world.doomed_set);
    if hub.netns.is_some() {
        let took = hub.wait_firewall_in_sync(&serve);
        eprintln!("firewall in sync {took:?} after the sweep's writes");
    }
    assert_no_panic(&serve.stop());
    if let Some(file) = hub.sqlite_file() {
        assert_sqlite_intact(&file);
    }
}

#[test]
fn concurrent_writes_sqlite() {
    concurrent_writes(Backend::Sqlite);
}

#[test]
fn concurrent_writes_postgres() {
    concurrent_writes(Backend::Postgres);
}

#[test]
fn kill_9_under_load_sqlite() {
    crash(Backend::Sqlite);
}

#[test]
fn kill_9_under_load_postgres() {
    crash(Backend::Postgres);
}
