//! Issue 8, "registration storm": OpenVPN reconnecting a whole fleet at once after a hub restart
//! runs one `evon-hub openvpn server-auth` process per server, all together. With 500 of them,
//! PostgreSQL refuses clients beyond `max_connections` ("too many clients already") and SQLite's
//! writers queue on one lock; every hook must still be answered, each server with an address of
//! its own, and the database must end up agreeing with what the hooks said.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use evon_domain::server::Server;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, DatabaseUrl, OpenMode, PoolOptions, Store};

const BIN: &str = env!("CARGO_BIN_EXE_evon-hub");
const STORM: u32 = 500;

/// A valid (version 4) server UUID, different for every `n`.
fn uuid(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

/// An initialised hub in a temporary data directory.
struct Hub {
    dir: tempfile::TempDir,
    url: DatabaseUrl,
    url_arg: Option<String>,
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
        let hub = Self {
            dir,
            url,
            url_arg,
            _db: db,
        };
        let output = hub.command(&["init", "--json"], &[]).output().unwrap();
        assert!(
            output.status.success(),
            "init: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        hub
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("EVON_HUB_")
                || ["username", "password", "common_name", "auth_control_file"]
                    .contains(&key_text.as_ref())
            {
                cmd.env_remove(key);
            }
        }
        cmd.arg("--data-dir").arg(self.data_dir());
        if let Some(url) = &self.url_arg {
            cmd.args(["--database-url", url]);
        }
        cmd.args(args)
            .envs(envs.iter().copied())
            .current_dir(self.data_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    fn servers(&self) -> Vec<Server> {
        let options = PoolOptions {
            max_size: 1,
            min_idle: Some(0),
            ..PoolOptions::default()
        };
        let store = Store::open(&self.url, OpenMode::MustExist, &options).unwrap();
        store
            .read(|conn| {
                let ids = evon_store::servers::all_ids(conn)?;
                evon_store::servers::by_ids(conn, &ids)
            })
            .unwrap()
    }
}

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
