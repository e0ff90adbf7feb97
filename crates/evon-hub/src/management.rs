//! A client of OpenVPN's management interface, over the unix socket each of the hub's OpenVPN
//! servers opens (`management <data dir>/openvpn-servers.sock unix`, `openvpn-users.sock`), used
//! to end the session of a server or user whose access was withdrawn.
//!
//! One exchange per kill: read the `>INFO:` greeting, send `kill <common name>`, read the one
//! `SUCCESS:`/`ERROR:` line, send `quit`. Every read and write times out after two seconds.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// How long a connect, read or write on the management socket may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// What OpenVPN answered to `kill`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kill {
    /// `SUCCESS: …`: the sessions with that common name were ended.
    Killed(String),
    /// `ERROR: …`: typically no session has that common name.
    Refused(String),
    /// No OpenVPN listens on the socket (missing, or connection refused).
    NotRunning(String),
}

/// The management socket of one of the hub's OpenVPN servers (`servers` or `users`), as the
/// configs `openvpn server-config` prints name it.
pub fn socket_path(data_dir: &Path, instance: &str) -> PathBuf {
    data_dir.join(format!("openvpn-{instance}.sock"))
}

/// A common name OpenVPN's command parser takes as one plain token.
fn check_common_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("empty common name");
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
    {
        bail!("common name {name:?} holds {c:?}, which the management interface cannot take");
    }
    Ok(())
}

/// Ends every session with `common_name` on the OpenVPN server whose management socket is
/// `socket`.
pub fn kill(socket: &Path, common_name: &str) -> Result<Kill> {
    check_common_name(common_name)?;
    let stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(Kill::NotRunning(format!("{}: {e}", socket.display())));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot connect to {}", socket.display())),
    };
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut writer = stream
        .try_clone()
        .context("cannot clone the management socket")?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // The greeting: `>INFO:OpenVPN Management Interface Version …`.
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .with_context(|| format!("no greeting on {}", socket.display()))?
            == 0
        {
            bail!("{} closed before its greeting", socket.display());
        }
        if line.starts_with(">INFO:") {
            break;
        }
    }
    writer
        .write_all(format!("kill {common_name}\n").as_bytes())
        .with_context(|| format!("cannot write to {}", socket.display()))?;
    let answer = loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .with_context(|| format!("no answer to kill on {}", socket.display()))?
            == 0
        {
            bail!("{} closed before answering kill", socket.display());
        }
        let text = line.trim_end();
        if let Some(rest) = text.strip_prefix("SUCCESS:") {
            break Kill::Killed(rest.trim().to_owned());
        }
        if let Some(rest) = text.strip_prefix("ERROR:") {
            break Kill::Refused(rest.trim().to_owned());
        }
        // Anything else is a real-time notification (`>CLIENT:…`, `>LOG:…`): skip it.
        if !text.starts_with('>') {
            return Err(anyhow!(
                "unexpected answer to kill on {}: {text:?}",
                socket.display()
            ));
        }
    };
    // Leaving politely; OpenVPN closes its end anyway.
    let _ = writer.write_all(b"quit\n");
    Ok(answer)
}

/// The hub's two OpenVPN servers, reached through their management sockets.
#[derive(Debug, Clone)]
pub struct Management {
    pub servers: PathBuf,
    pub users: PathBuf,
}

impl Management {
    pub fn new(data_dir: &Path) -> Self {
        let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_owned());
        Self {
            servers: socket_path(&data_dir, "servers"),
            users: socket_path(&data_dir, "users"),
        }
    }

    fn kill_logged(socket: &Path, kind: &str, common_name: &str) {
        match kill(socket, common_name) {
            Ok(Kill::Killed(message)) => {
                tracing::info!(kind, common_name, %message, "disconnected from OpenVPN");
            }
            Ok(Kill::Refused(message)) => {
                tracing::info!(kind, common_name, %message, "not connected to OpenVPN");
            }
            Ok(Kill::NotRunning(reason)) => {
                tracing::warn!(kind, common_name, %reason, "cannot disconnect: OpenVPN is not running");
            }
            Err(error) => {
                tracing::warn!(kind, common_name, error = %format!("{error:#}"), "cannot disconnect");
            }
        }
    }
}

impl evon_http::Disconnect for Management {
    fn server(&self, uuid: &str) {
        Self::kill_logged(&self.servers, "server", uuid);
    }

    fn user(&self, username: &str) {
        Self::kill_logged(&self.users, "user", username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::mpsc;
    use std::thread::JoinHandle;

    /// A fake management interface serving one connection: the greeting, then `answer` to the
    /// first command; it reports every line it was sent.
    fn fake(
        dir: &Path,
        greeting: &'static str,
        answer: &'static str,
    ) -> (PathBuf, JoinHandle<Vec<String>>) {
        let path = dir.join("fake.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut writer = stream.try_clone().unwrap();
            writer.write_all(greeting.as_bytes()).unwrap();
            let mut reader = BufReader::new(stream);
            let mut received = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let command = line.trim_end().to_owned();
                line.clear();
                if received.is_empty() {
                    writer.write_all(answer.as_bytes()).unwrap();
                }
                let quit = command == "quit";
                received.push(command);
                if quit {
                    break;
                }
            }
            received
        });
        (path, handle)
    }

    const GREETING: &str =
        ">INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info\r\n";

    #[test]
    fn kills_by_common_name_and_quits() {
        let dir = tempfile::tempdir().unwrap();
        let (path, server) = fake(
            dir.path(),
            GREETING,
            ">CLIENT:ESTABLISHED,0\r\nSUCCESS: common name 'alice' found, 1 client(s) killed\r\n",
        );
        assert_eq!(
            kill(&path, "alice").unwrap(),
            Kill::Killed("common name 'alice' found, 1 client(s) killed".into())
        );
        assert_eq!(server.join().unwrap(), vec!["kill alice", "quit"]);
    }

    #[test]
    fn reports_errors_from_openvpn() {
        let dir = tempfile::tempdir().unwrap();
        let (path, server) = fake(
            dir.path(),
            GREETING,
            "ERROR: common name 'bob' not found\r\n",
        );
        assert_eq!(
            kill(&path, "bob").unwrap(),
            Kill::Refused("common name 'bob' not found".into())
        );
        assert_eq!(server.join().unwrap(), vec!["kill bob", "quit"]);
    }

    #[test]
    fn a_missing_or_dead_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.sock");
        assert!(matches!(kill(&missing, "x").unwrap(), Kill::NotRunning(_)));
        // A socket file nobody listens on any more: connection refused.
        let dead = dir.path().join("dead.sock");
        drop(UnixListener::bind(&dead).unwrap());
        assert!(matches!(kill(&dead, "x").unwrap(), Kill::NotRunning(_)));
        // The trait implementation only logs.
        let management = Management::new(dir.path());
        evon_http::Disconnect::server(&management, "4b1e8a3c-1f2d-4c5e-9a7b-0123456789ab");
        evon_http::Disconnect::user(&management, "alice");
    }

    #[test]
    fn a_silent_peer_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (done, wait) = mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (_stream, _) = listener.accept().unwrap();
            let _ = wait.recv_timeout(Duration::from_secs(10));
        });
        let started = std::time::Instant::now();
        let error = kill(&path, "alice").unwrap_err();
        let elapsed = started.elapsed();
        done.send(()).unwrap();
        server.join().unwrap();
        assert!(format!("{error:#}").contains("no greeting"), "{error:#}");
        assert!(
            elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
    }

    #[test]
    fn refuses_common_names_that_are_not_one_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unused.sock");
        for name in ["", "a b", "a\nkill b", "a\"b", "tab\there"] {
            assert!(kill(&path, name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn socket_paths_match_the_server_configs() {
        let management = Management::new(Path::new("/var/lib/evon-hub"));
        assert_eq!(
            management.servers,
            Path::new("/var/lib/evon-hub/openvpn-servers.sock")
        );
        assert_eq!(
            management.users,
            Path::new("/var/lib/evon-hub/openvpn-users.sock")
        );
    }
}
