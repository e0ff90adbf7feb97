//! The whole join flow, for real: a running hub, its `bootstrap.sh` downloaded over HTTP by the
//! deployer, and the installer run with `--install --no-start` under an install root. The secrets
//! it writes are the hub's; a wrong deploy key writes nothing; `--uninstall` removes all but the
//! server's identity. The hub's own OpenVPN server configs are checked by the real `openvpn`.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use evon_crypto::pki::Pki;
use evon_domain::artifacts::{secrets_fragment, ClientSecrets};

const HUB: &str = env!("CARGO_BIN_EXE_evon-hub");

fn hub(args: &[&str]) -> Output {
    Command::new(HUB)
        .args(args)
        .env("EVON_HUB_LOG", "warn")
        .env_remove("EVON_HUB_DATABASE_URL")
        .output()
        .unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` with a token, over plain HTTP/1.1: status and body.
fn get(port: u16, path: &str, token: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

/// A hub serving on a free port, and its deployer token.
fn running_hub(data: &Path) -> (Server, u16, String) {
    let init = hub(&[
        "init",
        "--json",
        "--data-dir",
        data.to_str().unwrap(),
        "--domain",
        "hub.example.com",
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let credentials: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    let deployer = credentials["deployer_token"].as_str().unwrap().to_owned();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(HUB)
        .args([
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--public-url",
            &url,
        ])
        .env("EVON_HUB_LOG", "warn")
        // `serve` keeps the kernel's firewall by default; this test runs on the host's kernel.
        .env("EVON_HUB_FIREWALL", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .for_each(|line| eprintln!("hub: {}", line.unwrap_or_default()))
    });
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the hub did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port, deployer)
}

fn installer(script: &Path, root: &Path, key: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .arg(script)
        .args(args)
        .env("EVON_ROOT", root)
        .env("EVON_DEPLOY_KEY", key)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn bootstrap_sh_joins_with_the_deploy_key_and_only_with_it() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("hub");
    let (_server, port, deployer) = running_hub(&data);

    let (status, script) = get(port, "/api/bootstrap/linux", &deployer);
    assert_eq!(status, 200);
    let script_path = temp.path().join("bootstrap.sh");
    std::fs::write(&script_path, &script).unwrap();

    // The right key: everything is written, and the secrets are the hub's own.
    let root = temp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let output = installer(
        &script_path,
        &root,
        &deployer,
        &["--install", "--no-start", "--hostname", "web1"],
    );
    assert!(
        output.status.success(),
        "install failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let client = root.join("etc/openvpn/client");
    let pki = Pki::load(&data.join("pki")).unwrap();
    let expected = secrets_fragment(&ClientSecrets {
        ca_cert: pki.ca_cert.clone(),
        cert: pki.endpoint_cert.clone(),
        key: pki.endpoint_key().to_owned(),
        tls_crypt_key: pki.static_key().to_owned(),
    });
    assert_eq!(
        std::fs::read_to_string(client.join("evon_secrets.conf")).unwrap(),
        expected
    );
    let identity = std::fs::read_to_string(root.join("etc/openvpn/evon.uuid")).unwrap();
    let lines: Vec<&str> = identity.lines().collect();
    assert_eq!(lines.len(), 2, "{identity:?}");
    assert!(
        evon_domain::validate::ServerUuid::parse(lines[0]).is_ok(),
        "{identity:?}"
    );
    assert_eq!(lines[1], "web1");
    assert_eq!(
        std::fs::read_to_string(client.join("evon.auth")).unwrap(),
        identity,
        "OpenVPN logs in as UUID and hostname"
    );
    let config = std::fs::read_to_string(client.join("evon.conf")).unwrap();
    assert!(config.contains("remote 127.0.0.1 1194"), "{config}");
    assert!(
        !config.contains("PRIVATE KEY"),
        "the client config refers to the secrets, it does not hold them"
    );
    use std::os::unix::fs::PermissionsExt;
    for secret in ["evon_secrets.conf", "evon.auth"] {
        let mode = std::fs::metadata(client.join(secret))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{secret}");
    }

    // A wrong key: a clear failure and nothing written.
    let refused_root = temp.path().join("refused");
    std::fs::create_dir(&refused_root).unwrap();
    let output = installer(
        &script_path,
        &refused_root,
        &"0".repeat(40),
        &["--install", "--no-start"],
    );
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("refused the deploy key"), "{message}");
    assert_eq!(
        files_under(&refused_root),
        Vec::<PathBuf>::new(),
        "nothing is written with a wrong key"
    );

    // Installing again keeps the identity; uninstalling removes all but it.
    let again = installer(&script_path, &root, &deployer, &["--install", "--no-start"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/openvpn/evon.uuid")).unwrap(),
        identity
    );
    let output = installer(&script_path, &root, &deployer, &["--uninstall"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        files_under(&root),
        vec![PathBuf::from("etc/openvpn/evon.uuid")]
    );
}

#[test]
fn the_hub_openvpn_configs_pass_openvpn_option_parsing() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("hub");
    let init = hub(&["init", "--data-dir", data.to_str().unwrap()]);
    assert!(init.status.success());
    for instance in ["servers", "users"] {
        let output = hub(&[
            "openvpn",
            "server-config",
            "--for",
            instance,
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let config = String::from_utf8(output.stdout).unwrap();
        assert!(config.contains("topology net30"), "{config}");
        assert!(
            config.contains("--data-dir"),
            "hooks call this hub: {config}"
        );
        let path = temp.path().join(format!("{instance}.conf"));
        std::fs::write(&path, &config).unwrap();
        assert!(
            Path::new("/usr/sbin/openvpn").exists(),
            "openvpn is missing: apt-get install openvpn"
        );
        // OpenVPN has no check-only mode: run it briefly and look for option errors, which it
        // reports before it touches devices or sockets.
        let run = Command::new("timeout")
            .args([
                "3",
                "/usr/sbin/openvpn",
                "--config",
                path.to_str().unwrap(),
                "--verb",
                "3",
                "--dev",
                "null",
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(!text.contains("Options error"), "{instance}: {text}");
        assert!(!text.contains("Unrecognized option"), "{instance}: {text}");
    }
}
