//! The OpenVPN hooks (`evon-hub openvpn server-auth`, …): the real binary, run with the
//! environment OpenVPN gives it, against a hub made by `init --json`, on SQLite and PostgreSQL.
//! Effects are checked through `evon-store`.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use evon_domain::config::ConfigPatch;
use evon_domain::throttle::ThrottleKey;
use evon_domain::validate::{ServerUuid, UuidList};
use evon_domain::{FieldErrors, Principal, UserPatch};
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, DatabaseUrl, OpenMode, PoolOptions, Store};

const BIN: &str = env!("CARGO_BIN_EXE_evon-hub");
const DOMAIN: &str = "hub.evon.local";
/// What OpenVPN sets for a hook, removed from the test's own environment first.
const OPENVPN_VARS: [&str; 6] = [
    "username",
    "password",
    "common_name",
    "auth_control_file",
    "untrusted_ip",
    "untrusted_ip6",
];

/// A valid (version 4) server UUID, different for every `n`.
fn uuid(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

/// An initialised hub in a temporary data directory, on SQLite or on a fresh PostgreSQL database.
struct Hub {
    dir: tempfile::TempDir,
    url: DatabaseUrl,
    /// `--database-url` for PostgreSQL; SQLite is found through the data directory.
    url_arg: Option<String>,
    admin_password: String,
    _db: Option<TestDatabase>,
}

impl Hub {
    fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (url, url_arg, db) = match backend {
            Backend::Sqlite => (
                DatabaseUrl::sqlite(&dir.path().join("evon-hub.sqlite3")),
                None,
                None,
            ),
            Backend::Postgres => {
                let db = TestDatabase::new(Backend::Postgres);
                let DatabaseUrl::Postgres(text) = db.url().clone() else {
                    panic!("not PostgreSQL")
                };
                (db.url().clone(), Some(text), Some(db))
            }
        };
        let mut hub = Self {
            dir,
            url,
            url_arg,
            admin_password: String::new(),
            _db: db,
        };
        let output = hub.run(&["init", "--json"], &[]);
        assert!(output.status.success(), "init: {}", stderr(&output));
        let credentials: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        hub.admin_password = credentials["admin_password"].as_str().unwrap().to_owned();
        hub
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The binary with this hub's location and only the given OpenVPN variables.
    fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("EVON_HUB_") {
                cmd.env_remove(key);
            }
        }
        for var in OPENVPN_VARS {
            cmd.env_remove(var);
        }
        cmd.arg("--data-dir").arg(self.data_dir());
        if let Some(url) = &self.url_arg {
            cmd.args(["--database-url", url]);
        }
        cmd.args(args)
            .envs(envs.iter().copied())
            .current_dir(self.data_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        self.command(args, envs).output().unwrap()
    }

    fn server_auth(&self, uuid: &str, hostname: &str) -> Output {
        self.run(
            &["openvpn", "server-auth"],
            &[("username", uuid), ("password", hostname)],
        )
    }

    fn store(&self) -> Store {
        let options = PoolOptions {
            max_size: 1,
            min_idle: Some(0),
            ..PoolOptions::default()
        };
        Store::open(&self.url, OpenMode::MustExist, &options).unwrap()
    }

    fn server(&self, uuid: &str) -> Option<evon_domain::server::Server> {
        let uuid = ServerUuid::parse(uuid).unwrap();
        let store = self.store();
        store
            .read(|conn| evon_store::servers::by_uuid(conn, &uuid))
            .unwrap()
    }

    fn servers(&self) -> Vec<evon_domain::server::Server> {
        let store = self.store();
        store
            .read(|conn| {
                let ids = evon_store::servers::all_ids(conn)?;
                evon_store::servers::by_ids(conn, &ids)
            })
            .unwrap()
    }

    fn configure(&self, patch: ConfigPatch) {
        let store = self.store();
        store
            .write(|conn| evon_store::config::update(conn, patch.clone()))
            .unwrap();
    }

    /// Creates a user through the store, with this password (hashed) unless `None`.
    fn create_user(&self, username: &str, password: Option<&str>, active: bool) {
        let hash = password.map(|p| evon_crypto::hash_password(p).unwrap());
        let actor = Principal {
            user_id: 1,
            username: "admin".into(),
            is_superuser: true,
            permissions: Default::default(),
        };
        let fields = UserPatch {
            username: Some(username.into()),
            is_active: Some(active),
            ..UserPatch::default()
        };
        let store = self.store();
        store
            .write(|conn| {
                evon_store::users::create(
                    conn,
                    &actor,
                    &fields,
                    hash.as_deref(),
                    &FieldErrors::default(),
                )
            })
            .unwrap();
    }

    fn user_address(&self, username: &str) -> std::net::Ipv4Addr {
        let store = self.store();
        store
            .read(|conn| {
                let id = evon_store::users::id_by_username(conn, username)?;
                evon_store::users::profile(conn, id)
            })
            .unwrap()
            .ipv4_address
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status {:?}; stderr: {}",
        output.status,
        stderr(output)
    );
}

/// Exactly one line on stderr, the decision, mentioning every one of `parts`.
#[track_caller]
fn assert_logged(output: &Output, parts: &[&str]) {
    let text = stderr(output);
    assert_eq!(text.lines().count(), 1, "one line expected: {text}");
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
}

/// A file as OpenVPN makes it for a connect hook (empty), in a directory of its own.
fn openvpn_file(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("client_connect.tmp");
    std::fs::write(&path, "").unwrap();
    path
}

/// The names in a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// server-auth
// ---------------------------------------------------------------------------------------------

fn registration(hub: &Hub) {
    let first = uuid(1);
    let output = hub.server_auth(&first, "web");
    assert_exit(&output, 0);
    assert_logged(&output, &["allowed", &first, "web.hub.evon.local"]);
    let server = hub.server(&first).unwrap();
    assert_eq!(server.fqdn, format!("web.{DOMAIN}"));
    assert_eq!(server.ipv4_address.to_string(), "100.111.224.6");
    assert!(!server.connected);
    assert_eq!(server.server_groups, vec![1]);

    // Another server asking for the same name gets the next address and `-1`.
    let second = uuid(2);
    assert_exit(&hub.server_auth(&second, "WEB"), 0);
    let server = hub.server(&second).unwrap();
    assert_eq!(server.fqdn, format!("web-1.{DOMAIN}"));
    assert_eq!(server.ipv4_address.to_string(), "100.111.224.10");

    // Logging in again keeps the address and the name; a new name is taken up.
    assert_exit(&hub.server_auth(&first, "web"), 0);
    let again = hub.server(&first).unwrap();
    assert_eq!(again.fqdn, format!("web.{DOMAIN}"));
    assert_eq!(again.ipv4_address.to_string(), "100.111.224.6");
    assert_exit(&hub.server_auth(&first, &format!("db.{DOMAIN}")), 0);
    let renamed = hub.server(&first).unwrap();
    assert_eq!(renamed.fqdn, format!("db.{DOMAIN}"));
    assert_eq!(renamed.ipv4_address.to_string(), "100.111.224.6");
    assert_eq!(hub.servers().len(), 2);

    // The hub's own export sees them too.
    let export = hub.run(&["export"], &[]);
    assert_exit(&export, 0);
    let doc: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(doc["servers"].as_array().unwrap().len(), 2);
}

#[test]
fn server_auth_registers_sqlite() {
    registration(&Hub::new(Backend::Sqlite));
}

#[test]
fn server_auth_registers_postgres() {
    registration(&Hub::new(Backend::Postgres));
}

fn admission(hub: &Hub) {
    let known = uuid(10);
    assert_exit(&hub.server_auth(&known, "known"), 0);

    // Blacklisted: refused, and a blacklisted known server is deleted by the Config change.
    let banned = uuid(11);
    assert_exit(&hub.server_auth(&banned, "banned"), 0);
    hub.configure(ConfigPatch {
        uuid_blacklist: Some(UuidList::parse(&banned).unwrap()),
        ..ConfigPatch::default()
    });
    let output = hub.server_auth(&banned, "banned");
    assert_exit(&output, 1);
    assert_logged(&output, &["denied", &banned, "blacklisted"]);
    assert!(hub.server(&banned).is_none());

    // Discovery off: unknown refused, whitelisted and known admitted.
    let listed = uuid(12);
    hub.configure(ConfigPatch {
        discovery_mode: Some(false),
        uuid_whitelist: Some(UuidList::parse(&listed).unwrap()),
        ..ConfigPatch::default()
    });
    let stranger = uuid(13);
    let output = hub.server_auth(&stranger, "stranger");
    assert_exit(&output, 1);
    assert_logged(&output, &["denied", &stranger, "discovery mode is off"]);
    assert!(hub.server(&stranger).is_none());
    assert_exit(&hub.server_auth(&listed, "listed"), 0);
    assert!(hub.server(&listed).is_some());
    assert_exit(&hub.server_auth(&known, "known"), 0);

    // Invalid UUIDs and names.
    for bad in ["not-a-uuid", "00000001-0000-1000-8000-000000000001", ""] {
        let output = hub.server_auth(bad, "web");
        assert_exit(&output, 1);
        assert_logged(&output, &["denied", "invalid UUID"]);
    }
    let output = hub.server_auth(&listed, "no spaces allowed");
    assert_exit(&output, 1);
    assert_logged(&output, &["denied", "invalid name"]);
    assert_eq!(hub.servers().len(), 2);
}

#[test]
fn server_auth_admission_sqlite() {
    admission(&Hub::new(Backend::Sqlite));
}

#[test]
fn server_auth_admission_postgres() {
    admission(&Hub::new(Backend::Postgres));
}

#[test]
fn auth_control_file_gets_the_decision() {
    let hub = Hub::new(Backend::Sqlite);
    let acf_dir = tempfile::tempdir().unwrap();
    let acf = acf_dir.path().join("openvpn_acf_1.tmp");
    let acf_str = acf.to_str().unwrap();
    let with_acf = |uuid: &str, hostname: &str| {
        hub.run(
            &["openvpn", "server-auth"],
            &[
                ("username", uuid),
                ("password", hostname),
                ("auth_control_file", acf_str),
            ],
        )
    };
    assert_exit(&with_acf(&uuid(1), "web"), 0);
    assert_eq!(std::fs::read_to_string(&acf).unwrap(), "1");
    assert_exit(&with_acf("bogus", "web"), 1);
    assert_eq!(std::fs::read_to_string(&acf).unwrap(), "0");

    // The users' instance too.
    let user_auth = |password: &str| {
        hub.run(
            &["openvpn", "user-auth"],
            &[
                ("username", "admin"),
                ("password", password),
                ("auth_control_file", acf_str),
            ],
        )
    };
    assert_exit(&user_auth(&hub.admin_password), 0);
    assert_eq!(std::fs::read_to_string(&acf).unwrap(), "1");
    assert_exit(&user_auth("wrong"), 1);
    assert_eq!(std::fs::read_to_string(&acf).unwrap(), "0");
    assert_eq!(entries(acf_dir.path()), vec!["openvpn_acf_1.tmp"]);

    // A control file that cannot be written turns an allow into a deny.
    let output = hub.run(
        &["openvpn", "server-auth"],
        &[
            ("username", &uuid(1)),
            ("password", "web"),
            ("auth_control_file", "/nonexistent/dir/acf"),
        ],
    );
    assert_exit(&output, 1);
    assert_logged(&output, &["allowed", "then denied", "auth_control_file"]);
}

#[test]
fn missing_environment_is_refused() {
    let hub = Hub::new(Backend::Sqlite);
    let output = hub.run(&["openvpn", "server-auth"], &[("password", "web")]);
    assert_exit(&output, 1);
    assert_logged(&output, &["denied", "username is not set"]);
    let output = hub.run(&["openvpn", "server-auth"], &[("username", &uuid(1))]);
    assert_exit(&output, 1);
    assert_logged(&output, &["denied", "password is not set", &uuid(1)]);
    let output = hub.run(&["openvpn", "user-auth"], &[("username", "admin")]);
    assert_exit(&output, 1);
    assert_logged(&output, &["denied", "password is not set"]);
    let dir = tempfile::tempdir().unwrap();
    let file = openvpn_file(&dir);
    for hook in ["server-connect", "user-connect"] {
        let output = hub.run(&["openvpn", hook, file.to_str().unwrap()], &[]);
        assert_exit(&output, 1);
        assert_logged(&output, &["denied", "common_name is not set"]);
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
    assert!(hub.servers().is_empty());
}

// ---------------------------------------------------------------------------------------------
// server-connect and server-disconnect
// ---------------------------------------------------------------------------------------------

fn connection(hub: &Hub) {
    let id = uuid(7);
    assert_exit(&hub.server_auth(&id, "web"), 0);
    let dir = tempfile::tempdir().unwrap();
    let file = openvpn_file(&dir);
    let connect = |cn: &str| {
        hub.run(
            &["openvpn", "server-connect", file.to_str().unwrap()],
            &[("common_name", cn)],
        )
    };
    let output = connect(&id);
    assert_exit(&output, 0);
    assert_logged(&output, &["allowed", &id, "100.111.224.6"]);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "ifconfig-push 100.111.224.6 100.111.224.5\n"
    );
    assert_eq!(entries(dir.path()), vec!["client_connect.tmp"]);
    let server = hub.server(&id).unwrap();
    assert!(server.connected);
    assert_eq!(server.disconnected_since, None);

    // Unknown and invalid common names are refused and the file is left alone.
    std::fs::write(&file, "").unwrap();
    for cn in [uuid(8).as_str(), "nonsense"] {
        let output = connect(cn);
        assert_exit(&output, 1);
        assert_logged(&output, &["denied", cn]);
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "");

    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let output = hub.run(&["openvpn", "server-disconnect"], &[("common_name", &id)]);
    assert_exit(&output, 0);
    assert_logged(&output, &["disconnected", &id]);
    let server = hub.server(&id).unwrap();
    assert!(!server.connected);
    let since = server.disconnected_since.unwrap();
    assert!(since >= before && since <= chrono::Utc::now(), "{since}");

    // Disconnecting an unknown server changes nothing and is no failure.
    let output = hub.run(
        &["openvpn", "server-disconnect"],
        &[("common_name", &uuid(9))],
    );
    assert_exit(&output, 0);
    assert_logged(&output, &["ignored", &uuid(9), "no such server"]);

    // Connecting again clears disconnected_since.
    assert_exit(&connect(&id), 0);
    let server = hub.server(&id).unwrap();
    assert!(server.connected);
    assert_eq!(server.disconnected_since, None);
}

#[test]
fn server_connect_and_disconnect_sqlite() {
    connection(&Hub::new(Backend::Sqlite));
}

#[test]
fn server_connect_and_disconnect_postgres() {
    connection(&Hub::new(Backend::Postgres));
}

// ---------------------------------------------------------------------------------------------
// user-auth and user-connect
// ---------------------------------------------------------------------------------------------

fn users(hub: &Hub) {
    hub.create_user("alice", Some("correct horse"), true);
    hub.create_user("bob", Some("battery staple"), false);
    let auth = |username: &str, password: &str| {
        hub.run(
            &["openvpn", "user-auth"],
            &[("username", username), ("password", password)],
        )
    };
    let output = auth("alice", "correct horse");
    assert_exit(&output, 0);
    assert_logged(&output, &["allowed", "alice"]);
    assert_exit(&auth("admin", &hub.admin_password), 0);

    for (username, password, reason) in [
        ("alice", "correct horsE", "wrong password"),
        ("alice", "", "wrong password"),
        ("bob", "battery staple", "inactive"),
        ("carol", "correct horse", "no such user"),
        ("deployer", "", "no password"),
        ("deployer", "anything", "no password"),
    ] {
        let output = auth(username, password);
        assert_exit(&output, 1);
        assert_logged(&output, &["denied", username, reason]);
        if !password.is_empty() {
            assert!(!stderr(&output).contains(password), "password logged");
        }
    }

    // A password set with `user set-password` works at once.
    let mut child = hub
        .command(&["user", "set-password", "alice"], &[])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"new secret 42\n").unwrap();
    assert_exit(&child.wait_with_output().unwrap(), 0);
    assert_exit(&auth("alice", "new secret 42"), 0);
    assert_exit(&auth("alice", "correct horse"), 1);

    let dir = tempfile::tempdir().unwrap();
    let file = openvpn_file(&dir);
    let connect = |cn: &str| {
        hub.run(
            &["openvpn", "user-connect", file.to_str().unwrap()],
            &[("common_name", cn)],
        )
    };
    let address = hub.user_address("alice");
    assert_eq!(address.to_string(), "100.111.208.14");
    let output = connect("alice");
    assert_exit(&output, 0);
    assert_logged(&output, &["allowed", "alice", "100.111.208.14"]);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "ifconfig-push 100.111.208.14 100.111.208.13\n"
    );
    assert_eq!(entries(dir.path()), vec!["client_connect.tmp"]);
    std::fs::write(&file, "").unwrap();
    for (cn, reason) in [("bob", "inactive"), ("carol", "no such user")] {
        let output = connect(cn);
        assert_exit(&output, 1);
        assert_logged(&output, &["denied", cn, reason]);
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
}

#[test]
fn user_auth_and_connect_sqlite() {
    users(&Hub::new(Backend::Sqlite));
}

#[test]
fn user_auth_and_connect_postgres() {
    users(&Hub::new(Backend::Postgres));
}

// ---------------------------------------------------------------------------------------------
// user-auth throttling
// ---------------------------------------------------------------------------------------------

/// Failed `user-auth` attempts are counted per (case-folded username, source) before the
/// password is checked: the fifth failure locks the pair, a locked pair is refused without a
/// password check (even the right one), other sources are not affected, a success forgets the
/// count, and attempts made at the same moment cannot check more than five passwords.
fn throttling(hub: &Hub) {
    hub.create_user("alice", Some("correct horse"), true);
    let auth = |username: &str, password: &str, source: &str| {
        hub.run(
            &["openvpn", "user-auth"],
            &[
                ("username", username),
                ("password", password),
                ("untrusted_ip", source),
            ],
        )
    };
    let attacker = "198.51.100.7";

    // Four failures, then a success: the count starts again.
    for n in 1..=4 {
        let output = auth("alice", "guess", attacker);
        assert_exit(&output, 1);
        assert_logged(
            &output,
            &[
                "denied",
                "alice",
                attacker,
                "wrong password",
                &format!("failure {n} of 5"),
            ],
        );
    }
    assert_exit(&auth("alice", "correct horse", attacker), 0);
    for n in 1..=4 {
        let output = auth("ALICE", "guess", attacker);
        assert_logged(&output, &[&format!("failure {n} of 5")]);
    }
    // The fifth failure (case folded: `Alice` counts with `ALICE`) locks the pair.
    let output = auth("Alice", "guess", attacker);
    assert_exit(&output, 1);
    assert_logged(&output, &["failure 5 of 5", "throttled until"]);
    assert!(!stderr(&output).contains("guess"), "password logged");

    // Locked: refused without a check, even with the right password, and not counted.
    for _ in 0..3 {
        let output = auth("alice", "correct horse", attacker);
        assert_exit(&output, 1);
        assert_logged(
            &output,
            &[
                "denied",
                "alice",
                attacker,
                "throttled",
                "password not checked",
            ],
        );
        assert!(
            !stderr(&output).contains("correct horse"),
            "password logged"
        );
    }
    let key = ThrottleKey::new("alice", attacker);
    let store = hub.store();
    let state = store
        .read(|conn| evon_store::throttle::state(conn, &key))
        .unwrap()
        .expect("the pair is remembered");
    assert_eq!(state.failures, 5);
    assert_eq!(state.lockouts, 1);
    assert!(state.locked_until.is_some());

    // Alice from elsewhere is not locked out, and her success there leaves the lock alone.
    let output = auth("alice", "correct horse", "203.0.113.9");
    assert_exit(&output, 0);
    assert_logged(&output, &["allowed", "alice", "203.0.113.9"]);
    assert_exit(&auth("alice", "correct horse", attacker), 1);
    // IPv6 sources count per /64.
    let v6 = |host: &str| format!("2001:db8:5:6::{host}");
    for _ in 1..=5 {
        assert_exit(
            &hub.run(
                &["openvpn", "user-auth"],
                &[
                    ("username", "alice"),
                    ("password", "guess"),
                    ("untrusted_ip6", &v6("1")),
                ],
            ),
            1,
        );
    }
    let output = hub.run(
        &["openvpn", "user-auth"],
        &[
            ("username", "alice"),
            ("password", "correct horse"),
            ("untrusted_ip6", &v6("2")),
        ],
    );
    assert_logged(&output, &["throttled"]);

    // Twenty attempts at once from a fresh source: only five passwords are checked.
    let source = "192.0.2.44";
    let barrier = Arc::new(Barrier::new(20));
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let command = hub.command(
                    &["openvpn", "user-auth"],
                    &[
                        ("username", "alice"),
                        ("password", "guess"),
                        ("untrusted_ip", source),
                    ],
                );
                scope.spawn(move || {
                    let mut command = command;
                    barrier.wait();
                    command.output().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = outputs
        .iter()
        .filter(|o| stderr(o).contains("wrong password"))
        .count();
    let throttled = outputs
        .iter()
        .filter(|o| stderr(o).contains("password not checked"))
        .count();
    assert!(outputs.iter().all(|o| o.status.code() == Some(1)));
    assert_eq!((checked, throttled), (5, 15), "{outputs:#?}");
}

#[test]
fn user_auth_throttling_sqlite() {
    throttling(&Hub::new(Backend::Sqlite));
}

#[test]
fn user_auth_throttling_postgres() {
    throttling(&Hub::new(Backend::Postgres));
}

// ---------------------------------------------------------------------------------------------
// No database: deny
// ---------------------------------------------------------------------------------------------

#[test]
fn hooks_without_a_database_deny() {
    let empty = tempfile::tempdir().unwrap();
    let acf = empty.path().join("acf");
    let file = empty.path().join("ccd.tmp");
    std::fs::write(&file, "").unwrap();
    let run = |url: Option<&str>, args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        for var in OPENVPN_VARS {
            cmd.env_remove(var);
        }
        cmd.env_remove("EVON_HUB_DATABASE_URL")
            .arg("--data-dir")
            .arg(empty.path().join("data"));
        if let Some(url) = url {
            cmd.args(["--database-url", url]);
        }
        cmd.args(args).envs(envs.iter().copied()).output().unwrap()
    };
    let unreachable = "postgres://nobody@127.0.0.1:1/none?connect_timeout=2";
    for url in [None, Some(unreachable)] {
        let output = run(
            url,
            &["openvpn", "server-auth"],
            &[
                ("username", &uuid(1)),
                ("password", "web"),
                ("auth_control_file", acf.to_str().unwrap()),
            ],
        );
        assert_exit(&output, 1);
        assert_logged(&output, &["denied", &uuid(1), "error"]);
        assert_eq!(std::fs::read_to_string(&acf).unwrap(), "0");
        let output = run(
            url,
            &["openvpn", "user-auth"],
            &[("username", "admin"), ("password", "x")],
        );
        assert_exit(&output, 1);
        assert_logged(&output, &["denied", "error"]);
        for hook in ["server-connect", "user-connect"] {
            let cn = if hook == "server-connect" {
                uuid(1)
            } else {
                "admin".into()
            };
            let output = run(
                url,
                &["openvpn", hook, file.to_str().unwrap()],
                &[("common_name", &cn)],
            );
            assert_exit(&output, 1);
            assert_logged(&output, &["denied", "error"]);
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
    }
    // Nothing was created where the database was looked for.
    assert!(!empty.path().join("data").exists());
}

// ---------------------------------------------------------------------------------------------
// Concurrency, and what a hook costs
// ---------------------------------------------------------------------------------------------

const CONCURRENT: u32 = 50;
const SEQUENTIAL: u32 = 20;

fn mean_ms(durations: &[Duration]) -> f64 {
    durations.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / durations.len() as f64
}

fn concurrent_registrations(hub: &Hub, label: &str) {
    // Every process is started before any is waited for; each is timed from its own start.
    let barrier = Arc::new(Barrier::new(CONCURRENT as usize));
    let started = Instant::now();
    let children: Vec<_> = (0..CONCURRENT)
        .map(|n| {
            let mut cmd = hub.command(
                &["openvpn", "server-auth"],
                &[("username", &uuid(1000 + n)), ("password", "web")],
            );
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let child = cmd.spawn().unwrap();
                let output = child.wait_with_output().unwrap();
                (output, start.elapsed())
            })
        })
        .collect();
    let results: Vec<(Output, Duration)> =
        children.into_iter().map(|t| t.join().unwrap()).collect();
    let total = started.elapsed();
    for (output, _) in &results {
        assert_exit(output, 0);
    }
    let servers = hub.servers();
    assert_eq!(servers.len(), CONCURRENT as usize);
    let addresses: std::collections::BTreeSet<_> = servers.iter().map(|s| s.ipv4_address).collect();
    let fqdns: std::collections::BTreeSet<_> = servers.iter().map(|s| s.fqdn.clone()).collect();
    assert_eq!(addresses.len(), CONCURRENT as usize);
    assert_eq!(fqdns.len(), CONCURRENT as usize);
    // The lowest addresses: .6, .10, … with no gap; the names web, web-1, … web-49.
    let expected: std::collections::BTreeSet<std::net::Ipv4Addr> = (1..=CONCURRENT)
        .map(|block| {
            std::net::Ipv4Addr::from(u32::from_be_bytes([100, 111, 224, 0]) + 4 * block + 2)
        })
        .collect();
    assert_eq!(addresses, expected);
    let expected: std::collections::BTreeSet<String> = std::iter::once(format!("web.{DOMAIN}"))
        .chain((1..CONCURRENT).map(|n| format!("web-{n}.{DOMAIN}")))
        .collect();
    assert_eq!(fqdns, expected);
    let durations: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();

    let mut sequential = Vec::new();
    for n in 0..SEQUENTIAL {
        let start = Instant::now();
        let output = hub.server_auth(&uuid(5000 + n), &format!("seq{n}"));
        sequential.push(start.elapsed());
        assert_exit(&output, 0);
    }
    eprintln!(
        "TIMING {label}: {CONCURRENT} concurrent server-auth: mean {:.1} ms per hook (max {:.1} ms, all done in {:.1} ms); {SEQUENTIAL} sequential: mean {:.1} ms per hook",
        mean_ms(&durations),
        durations.iter().max().unwrap().as_secs_f64() * 1000.0,
        total.as_secs_f64() * 1000.0,
        mean_ms(&sequential)
    );
}

#[test]
fn concurrent_server_auth_sqlite() {
    concurrent_registrations(&Hub::new(Backend::Sqlite), "sqlite");
}

#[test]
fn concurrent_server_auth_postgres() {
    concurrent_registrations(&Hub::new(Backend::Postgres), "postgres");
}

// ---------------------------------------------------------------------------------------------
// Registration storm: OpenVPN reconnecting a whole fleet at once after a hub restart runs one
// `server-auth` process per server, all together. With 500 of them PostgreSQL would refuse
// clients beyond `max_connections` and SQLite's writers queue on one lock; every hook must
// still be answered, each server with an address of its own, and the database must end up
// agreeing with what the hooks said.
// ---------------------------------------------------------------------------------------------

const STORM: u32 = 500;

/// The address on a hook's "allowed … address=A" decision line.
fn allowed_address(decision: &str) -> Option<Ipv4Addr> {
    if !decision.contains(": allowed ") {
        return None;
    }
    decision.rsplit_once("address=")?.1.trim().parse().ok()
}

fn storm(hub: &Hub) {
    // Every process is started before any is waited for, so they all run at once.
    let started = std::time::Instant::now();
    let children: Vec<(String, Child)> = (0..STORM)
        .map(|n| {
            let id = uuid(10_000 + n);
            let hostname = format!("node{n}");
            let child = hub
                .command(
                    &["openvpn", "server-auth"],
                    &[("username", &id), ("password", &hostname)],
                )
                .spawn()
                .unwrap();
            (id, child)
        })
        .collect();

    let mut answered: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut retried = 0;
    for (id, child) in children {
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        let decision = text.lines().last().unwrap_or_default();
        if text.lines().count() > 1 {
            retried += 1;
            // Only the decision and retry notices, which name the hook and no secret but the
            // hostname (a server's "password" is its hostname, no secret).
            for line in text.lines() {
                assert!(line.contains("evon-hub openvpn server-auth"), "{text}");
            }
        }
        match (output.status.code(), allowed_address(decision)) {
            (Some(0), Some(address)) => {
                assert!(decision.contains(&id), "{decision}");
                if let Some(before) = answered.insert(id.clone(), address) {
                    panic!("{id} answered twice ({before}, {address})");
                }
            }
            (status, _) => failures.push(format!("{id}: exit {status:?}: {text}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {STORM} hooks failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    println!(
        "FIGURES [{:?}] {STORM} concurrent server-auth hooks answered in {:.1} s; {retried} retried at least once",
        hub.url.backend(),
        started.elapsed().as_secs_f64()
    );

    // No address handed out twice, and the database holds exactly what the hooks answered.
    let distinct: BTreeSet<Ipv4Addr> = answered.values().copied().collect();
    assert_eq!(distinct.len(), STORM as usize);
    let servers = hub.servers();
    assert_eq!(servers.len(), STORM as usize);
    let stored: BTreeMap<String, Ipv4Addr> = servers
        .iter()
        .map(|s| (s.uuid.as_str().to_owned(), s.ipv4_address))
        .collect();
    assert_eq!(stored, answered);
    let fqdns: BTreeSet<&str> = servers.iter().map(|s| s.fqdn.as_str()).collect();
    assert_eq!(fqdns.len(), STORM as usize);
}

#[test]
fn registration_storm_sqlite() {
    storm(&Hub::new(Backend::Sqlite));
}

#[test]
fn registration_storm_postgres() {
    storm(&Hub::new(Backend::Postgres));
}
