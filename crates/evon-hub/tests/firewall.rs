//! `evon-hub firewall` and the firewall keeper of `serve`, against the real kernel: every test
//! runs the binary inside its own scratch network namespace (`ip netns`), so the host's ruleset
//! is never touched. Needs root, `ip` and `nft`; without them these tests fail.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use evon_domain::entity::{Principal, UserPatch};
use evon_domain::policy::{PolicyPatch, RulePatch};
use evon_domain::{FieldErrors, Protocol};
use evon_store::servers::Registration;
use evon_store::{DatabaseUrl, OpenMode, PoolOptions, Store};

const BIN: &str = env!("CARGO_BIN_EXE_evon-hub");

/// The full path of `ip`, from this process's `PATH`.
fn ip() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("ip"))
        .find(|candidate| candidate.is_file())
        .expect("no `ip` found; install iproute2")
}

/// A scratch network namespace, deleted when dropped (also when the test fails).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "evon-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("cannot run `ip`; install iproute2");
        assert!(status.success(), "ip netns add {name} failed (root?)");
        let netns = Self { name };
        // Loopback up, so that `serve` can listen inside.
        assert!(netns
            .command("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .unwrap()
            .success());
        netns
    }

    /// `program` run inside the namespace. `ip` is named by its full path, so that a test may
    /// give the program a `PATH` without `nft` on it.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(ip());
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    fn nft(&self, args: &[&str]) -> Output {
        self.command("nft")
            .args(args)
            .output()
            .expect("cannot run nft; install nftables")
    }

    /// How many `inet evon` tables the namespace's kernel holds.
    fn evon_tables(&self) -> usize {
        let output = self.nft(&["list", "tables"]);
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| line.trim() == "table inet evon")
            .count()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A hub in a temporary data directory.
struct Hub {
    dir: tempfile::TempDir,
}

impl Hub {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let hub = Self { dir };
        let output = hub.bin().args(["init", "--json"]).output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        hub
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn with_env(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("EVON_HUB_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("EVON_HUB_LOG", "warn")
            .env("EVON_HUB_DATA_DIR", self.data_dir())
            .current_dir(self.dir.path());
    }

    /// The binary, outside any namespace (for what touches no firewall).
    fn bin(&self) -> Command {
        let mut cmd = Command::new(BIN);
        self.with_env(&mut cmd);
        cmd
    }

    /// The binary inside `netns`.
    fn bin_in(&self, netns: &Netns) -> Command {
        let mut cmd = netns.command(BIN);
        self.with_env(&mut cmd);
        cmd
    }

    fn firewall(&self, netns: &Netns, action: &str) -> Output {
        self.bin_in(netns)
            .args(["firewall", action])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn store(&self) -> Store {
        let url = DatabaseUrl::sqlite(&self.data_dir().join("evon-hub.sqlite3"));
        Store::open(&url, OpenMode::MustExist, &PoolOptions::default()).unwrap()
    }

    /// Adds a user, a registered server, a rule sourcing the user and a policy targeting the
    /// server; `n` keeps names apart when called again.
    fn add_policy(&self, n: u32) {
        let store = self.store();
        let admin = Principal {
            user_id: 1,
            username: "admin".into(),
            is_superuser: true,
            permissions: Default::default(),
        };
        store
            .write(|conn| {
                let user = evon_store::users::create(
                    conn,
                    &admin,
                    &UserPatch {
                        username: Some(format!("alice{n}")),
                        is_active: Some(true),
                        ..UserPatch::default()
                    },
                    None,
                    &FieldErrors::default(),
                )?;
                let uuid = format!("00000000-0000-4000-8000-{n:012}");
                let server = match evon_store::servers::register(conn, &uuid, &format!("web{n}"))? {
                    Registration::Allowed { server, .. } => server,
                    other => panic!("registration refused: {other:?}"),
                };
                let rule = evon_store::rules::create(
                    conn,
                    &RulePatch {
                        name: Some(format!("ssh{n}")),
                        destination_protocol: Some(Protocol::Tcp),
                        destination_ports: Some("22,8000-8080".into()),
                        source_users: Some(vec![user.user.id]),
                        ..RulePatch::default()
                    },
                    &FieldErrors::default(),
                )?;
                evon_store::policies::create(
                    conn,
                    &PolicyPatch {
                        name: Some(format!("policy{n}")),
                        rules: Some(vec![rule.id]),
                        servers: Some(vec![server.id]),
                        ..PolicyPatch::default()
                    },
                    &FieldErrors::default(),
                )?;
                Ok(())
            })
            .unwrap();
    }

    /// `serve` inside `netns`, its log in a file.
    fn serve(&self, netns: &Netns, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let log = self
            .dir
            .path()
            .join(format!("serve-{}.log", args.join("_")));
        let mut cmd = self.bin_in(netns);
        cmd.args(["serve", "--bind", "127.0.0.1:8000"])
            .args(args)
            .env("EVON_HUB_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Server {
            child: cmd.spawn().unwrap(),
            log,
        }
    }
}

/// A running `serve`, stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&mut self, needle: &str, deadline: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("serve exited ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < deadline,
                "no {needle:?} in the log within {deadline:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `ip netns exec` execs the binary, so the child's pid is the hub's.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The lines of a listing that let a pair's traffic through: `ip saddr @rule_N_src ... accept`.
fn allow_lines(listing: &str) -> usize {
    listing
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("ip saddr @rule_") && l.trim_end().ends_with(" accept")
        })
        .count()
}

/// Polls `firewall status` until it says in sync; the time it took.
fn wait_in_sync(hub: &Hub, netns: &Netns, deadline: Duration, server: &Server) -> Duration {
    let start = Instant::now();
    loop {
        let output = hub.firewall(netns, "status");
        if output.status.success() {
            assert!(stdout(&output).starts_with("in sync (generation "));
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "not in sync within {deadline:?}: {}{}\nserve log:\n{}",
            stdout(&output),
            stderr(&output),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn render_on_a_fresh_hub_is_default_deny_only() {
    let hub = Hub::new();
    let output = hub.bin().args(["firewall", "render"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("table inet evon {}\ndelete table inet evon\ntable inet evon {\n"));
    assert!(text.contains("\t\treturn comment \"evon-hub "));
    assert!(text.contains("ip saddr 100.111.0.0/16 jump overlay"));
    let overlay = text
        .split("chain overlay {")
        .nth(1)
        .unwrap()
        .split("chain digest {")
        .next()
        .unwrap();
    let rules: Vec<&str> = overlay
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "}")
        .collect();
    assert_eq!(rules, ["ip daddr @shared_users accept", "drop"]);
    assert!(!text.contains("elements"));
    assert!(!text.contains("set rule_") && !text.contains("set policy_"));
}

#[test]
fn apply_status_and_drift() {
    let hub = Hub::new();
    let netns = Netns::new();

    let status = hub.firewall(&netns, "status");
    assert_eq!(stdout(&status), "absent\n");
    assert_eq!(status.status.code(), Some(1));

    let applied = hub.firewall(&netns, "apply");
    assert!(applied.status.success(), "{}", stderr(&applied));
    let listing = netns.nft(&["list", "table", "inet", "evon"]);
    assert!(listing.status.success());
    let listing = stdout(&listing);
    assert!(listing.contains("chain forward"), "{listing}");
    assert!(listing.contains("chain overlay"), "{listing}");
    let status = hub.firewall(&netns, "status");
    assert!(status.status.success(), "{}", stdout(&status));
    assert!(stdout(&status).starts_with("in sync (generation "));

    hub.add_policy(1);
    let status = hub.firewall(&netns, "status");
    assert_eq!(stdout(&status), "out of date\n");
    assert_eq!(status.status.code(), Some(1));

    let applied = hub.firewall(&netns, "apply");
    assert!(applied.status.success(), "{}", stderr(&applied));
    let status = hub.firewall(&netns, "status");
    assert!(status.status.success(), "{}", stdout(&status));
    let listing = stdout(&netns.nft(&["list", "table", "inet", "evon"]));
    assert_eq!(allow_lines(&listing), 1, "{listing}");
    assert!(
        listing.contains("elements = { 22, 8000-8080 }"),
        "{listing}"
    );

    // Applying again replaces the table: still exactly one.
    assert!(hub.firewall(&netns, "apply").status.success());
    assert!(hub.firewall(&netns, "apply").status.success());
    assert_eq!(netns.evon_tables(), 1);
    assert!(hub.firewall(&netns, "status").status.success());
}

#[test]
fn apply_fails_in_one_line_without_nft() {
    let hub = Hub::new();
    let netns = Netns::new();
    let output = hub
        .bin_in(&netns)
        .args(["firewall", "apply"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot run nft"), "{err}");
}

#[test]
fn serve_keeps_the_firewall_in_sync() {
    let hub = Hub::new();
    let netns = Netns::new();
    let mut server = hub.serve(&netns, &["--firewall", "on"], &[]);
    let took = wait_in_sync(&hub, &netns, Duration::from_secs(20), &server);
    eprintln!("firewall in sync {took:?} after serve started");

    for n in 1..=3 {
        hub.add_policy(n);
        // From the commit to `firewall status` seeing the kernel in sync (status polls every
        // 20 ms and takes a few ms itself).
        let took = wait_in_sync(&hub, &netns, Duration::from_secs(5), &server);
        eprintln!("store write {n} reflected in the kernel after {took:?}");
    }
    let listing = stdout(&netns.nft(&["list", "table", "inet", "evon"]));
    assert_eq!(allow_lines(&listing), 3, "{listing}");

    // A burst of 100 writes is coalesced into a few applies.
    let before = server.log().matches("firewall applied").count();
    let burst = Instant::now();
    for n in 100..200 {
        hub.add_policy(n);
    }
    let wrote = burst.elapsed();
    let took = wait_in_sync(&hub, &netns, Duration::from_secs(5), &server);
    let applies = server.log().matches("firewall applied").count() - before;
    eprintln!("100 writes in {wrote:?} caused {applies} applies; in sync {took:?} after the last");
    assert!(applies < 100, "{applies} applies for 100 writes");
    let listing = stdout(&netns.nft(&["list", "table", "inet", "evon"]));
    assert_eq!(allow_lines(&listing), 103);
    assert_eq!(netns.evon_tables(), 1);
    // Only the first apply loaded the whole table; every later one was an update.
    assert_eq!(
        server.log().matches("how=\"full\"").count() + server.log().matches("how=full").count(),
        1,
        "{}",
        server.log()
    );

    // Someone deletes the table behind the keeper's back: it is put back without a write.
    assert!(netns
        .nft(&["delete", "table", "inet", "evon"])
        .status
        .success());
    let took = wait_in_sync(&hub, &netns, Duration::from_secs(20), &server);
    eprintln!("a deleted table was put back after {took:?}");
    assert_eq!(
        allow_lines(&stdout(&netns.nft(&["list", "table", "inet", "evon"]))),
        103
    );
    assert!(server.is_running());
}

#[test]
fn serve_with_the_firewall_off_applies_nothing() {
    let hub = Hub::new();
    let netns = Netns::new();
    let mut server = hub.serve(&netns, &["--firewall", "off"], &[]);
    server.wait_for_log("Evon Hub listening", Duration::from_secs(20));
    hub.add_policy(1);
    // Several of the keeper's polls would have passed by now, were it running.
    std::thread::sleep(Duration::from_secs(1));
    let status = hub.firewall(&netns, "status");
    assert_eq!(stdout(&status), "absent\n");
    assert_eq!(netns.evon_tables(), 0);
    assert!(server.is_running());
}

#[test]
fn the_firewall_can_be_turned_off_in_the_file_and_the_environment() {
    let hub = Hub::new();
    std::fs::write(hub.data_dir().join("evon-hub.toml"), "firewall = \"off\"\n").unwrap();
    let netns = Netns::new();
    let mut server = hub.serve(&netns, &[], &[]);
    server.wait_for_log("Evon Hub listening", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(netns.evon_tables(), 0);
    drop(server);

    // The environment wins over the file.
    let mut server = hub.serve(&netns, &[], &[("EVON_HUB_FIREWALL", "on")]);
    wait_in_sync(&hub, &netns, Duration::from_secs(20), &server);
    assert!(server.is_running());
}

#[test]
fn serve_keeps_serving_when_nft_is_missing() {
    let hub = Hub::new();
    let netns = Netns::new();
    let mut server = hub.serve(&netns, &["--firewall", "on"], &[("PATH", "/nonexistent")]);
    server.wait_for_log("firewall apply failed", Duration::from_secs(20));
    server.wait_for_log("Evon Hub listening", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.is_running(), "{}", server.log());
    assert_eq!(netns.evon_tables(), 0);
}

#[test]
fn helpers_find_their_paths() {
    assert!(Path::new(BIN).exists());
}
