//! A running `evon-hub serve` answers warm tokens from its cache, and still notices a token
//! rotated by another process (`evon-hub token rotate` against the same database) once its
//! generation poller has run: the old token is refused, the new one works from its first use.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use evon_store::test_support::TestDatabase;
use evon_store::{Backend, DatabaseUrl};

const BIN: &str = env!("CARGO_BIN_EXE_evon-hub");
/// The most a test waits for serve to answer, or for it to notice another process's write.
const DEADLINE: Duration = Duration::from_secs(20);

/// The binary with no `EVON_HUB_*` from the caller's environment, quiet logs, no firewall.
fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("EVON_HUB_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("EVON_HUB_LOG", "warn")
        .env("EVON_HUB_FIREWALL", "off")
        .current_dir(cwd);
    cmd
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    let output = command(cwd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "evon-hub {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The value of `key` in the one JSON object the command printed.
fn printed(output: &Output, key: &str) -> String {
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    value[key].as_str().unwrap().to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 GET over a fresh connection: the status code and the body.
fn http_get(addr: SocketAddr, path: &str, token: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Token {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "incomplete response")
    })?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no status"))?;
    Ok((status, body.to_owned()))
}

/// A running `serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(cwd: &Path, database: &[&str]) -> Self {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let child = command(cwd)
            .args(["serve", "--data-dir", "data", "--bind", &bind])
            .args(database)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn ping(&self, token: &str) -> u16 {
        http_get(self.addr, "/api/ping", token).unwrap().0
    }

    /// Polls `GET /api/ping` until it answers `status`; fails after the deadline.
    fn eventually(&mut self, token: &str, status: u16) {
        let started = Instant::now();
        loop {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "serve exited early"
            );
            match http_get(self.addr, "/api/ping", token) {
                Ok((seen, _)) if seen == status => return,
                Ok((seen, body)) => assert!(
                    started.elapsed() < DEADLINE,
                    "ping still answers {seen} ({body}), expected {status}"
                ),
                Err(error) => assert!(
                    started.elapsed() < DEADLINE,
                    "serve does not answer: {error}"
                ),
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rotation_by_another_process_is_seen(database: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let mut init = vec!["init", "--json", "--data-dir", "data"];
    init.extend_from_slice(database);
    let admin = printed(&run(cwd, &init), "admin_token");

    let mut server = Server::start(cwd, database);
    server.eventually(&admin, 200);
    // Warm: these are answered from the cache.
    for _ in 0..5 {
        assert_eq!(server.ping(&admin), 200);
    }

    let mut rotate = vec!["token", "rotate", "admin", "--json", "--data-dir", "data"];
    rotate.extend_from_slice(database);
    let fresh = printed(&run(cwd, &rotate), "token");
    // A token serve has never seen goes to the database: it works from its first use.
    assert_eq!(server.ping(&fresh), 200);
    server.eventually(&admin, 401);
    assert_eq!(server.ping(&fresh), 200);

    // Once more, now that the cache holds the fresh token at the newer generation.
    let newer = printed(&run(cwd, &rotate), "token");
    server.eventually(&fresh, 401);
    assert_eq!(server.ping(&newer), 200);
    assert_eq!(server.ping(&admin), 401);
}

#[test]
fn rotation_by_another_process_is_seen_sqlite() {
    rotation_by_another_process_is_seen(&[]);
}

#[test]
fn rotation_by_another_process_is_seen_postgres() {
    let db = TestDatabase::new(Backend::Postgres);
    let DatabaseUrl::Postgres(url) = db.url() else {
        panic!("not a PostgreSQL database: {:?}", db.url());
    };
    rotation_by_another_process_is_seen(&["--database-url", url]);
}
