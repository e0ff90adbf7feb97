//! The artifacts the hub hands out: snapshots of each with obviously fake secrets, the Linux
//! installer run for real (shellcheck, `sh -n`, its options, its failures, a full install and
//! uninstall against a fake hub under `EVON_ROOT`), and every OpenVPN configuration fed to the
//! real `openvpn` with real test certificates.
//!
//! Needs `shellcheck`, `openvpn`, `openssl`, `curl`, `timeout` and `setsid` on the PATH; a test
//! whose tool is missing fails, it never passes silently (`apt-get install -y shellcheck openvpn`).
//!
//! How a configuration is judged, since OpenVPN has no syntax-check mode: it is started for real
//! with a short `timeout`. OpenVPN parses and checks every option (an `Options error:` line and
//! exit 1 when one is bad, including files named that do not exist), then loads the CA, the
//! certificate, the key and the tls-crypt key (a fatal `Cannot load ...` when one does not
//! parse or the key does not match), and only then touches the network or the tun device. So a
//! client configuration passes when OpenVPN gets as far as connecting (to a closed local port,
//! with `--dev null`); a hub server configuration when it gets as far as opening its tun device,
//! which `--dev-node` points at a path that does not exist, so that nothing is ever created and
//! root is not needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use evon_domain::artifacts::{
    bootstrap_ps1, bootstrap_sh, hub_server_config, raw_server_config, secrets_fragment,
    server_client_config, user_config, ClientSecrets, HubEndpoints, HubInstance, HubServerPaths,
    LINUX_AUTH_FILE, LINUX_CLIENT_CONFIG_FILE, LINUX_SECRETS_FILE, LINUX_UUID_FILE,
};
use evon_domain::SubnetKey;

const VERSION: &str = "1.2.3-test";
/// Base64 of "fake sealed secrets, not a real payload".
const SEALED: &str = "ZmFrZSBzZWFsZWQgc2VjcmV0cywgbm90IGEgcmVhbCBwYXlsb2Fk";
const DEPLOY_KEY: &str = "0123456789abcdef0123456789abcdef01234567";
const SERVER_UUID: &str = "4b1e8a3c-1f2d-4c5e-9a7b-0123456789ab";

// --- fixtures ------------------------------------------------------------------------------------

fn endpoints() -> HubEndpoints {
    HubEndpoints {
        domain: "hub.example.com".into(),
        public_host: "vpn.example.com".into(),
        api_url: "https://hub.example.com".into(),
        server_port: 1194,
        user_port: 1194,
        subnet_key: SubnetKey::new(111),
    }
}

fn fake_secrets() -> ClientSecrets {
    ClientSecrets {
        ca_cert: "-----BEGIN CERTIFICATE-----\nFAKE CA\n-----END CERTIFICATE-----\n".into(),
        cert: "-----BEGIN CERTIFICATE-----\nFAKE ENDPOINT\n-----END CERTIFICATE-----\n".into(),
        key: "-----BEGIN PRIVATE KEY-----\nFAKE KEY\n-----END PRIVATE KEY-----\n".into(),
        tls_crypt_key:
            "-----BEGIN OpenVPN Static key V1-----\nFAKE\n-----END OpenVPN Static key V1-----\n"
                .into(),
    }
}

fn fake_paths(which: &str) -> HubServerPaths {
    HubServerPaths {
        ca: "/var/lib/evon-hub/pki/ca.crt".into(),
        cert: "/var/lib/evon-hub/pki/hub.crt".into(),
        key: "/var/lib/evon-hub/pki/hub.key".into(),
        tls_crypt: "/var/lib/evon-hub/pki/tls-crypt.key".into(),
        ccd_dir: format!("/var/lib/evon-hub/ccd-{which}"),
        management_socket: format!("/run/evon-hub/openvpn-{which}.sock"),
        evon_hub_binary: "/usr/local/bin/evon-hub".into(),
        status_file: format!("/run/evon-hub/openvpn-{which}.status"),
    }
}

// --- snapshots -----------------------------------------------------------------------------------

#[test]
fn snapshot_secrets_fragment() {
    insta::assert_snapshot!("secrets_fragment", secrets_fragment(&fake_secrets()));
}

#[test]
fn snapshot_server_client_config() {
    insta::assert_snapshot!("server_client_config", server_client_config(&endpoints()));
}

#[test]
fn snapshot_bootstrap_sh() {
    insta::assert_snapshot!("bootstrap_sh", bootstrap_sh(&endpoints(), SEALED, VERSION));
}

#[test]
fn snapshot_bootstrap_ps1() {
    insta::assert_snapshot!(
        "bootstrap_ps1",
        bootstrap_ps1(&endpoints(), SEALED, VERSION)
    );
}

#[test]
fn snapshot_raw_server_config() {
    insta::assert_snapshot!(
        "raw_server_config",
        raw_server_config(&endpoints(), &fake_secrets())
    );
}

#[test]
fn snapshot_user_config() {
    insta::assert_snapshot!("user_config", user_config(&endpoints(), &fake_secrets()));
}

#[test]
fn snapshot_hub_servers_config() {
    insta::assert_snapshot!(
        "hub_servers_config",
        hub_server_config(&endpoints(), HubInstance::Servers, &fake_paths("servers"))
    );
}

#[test]
fn snapshot_hub_users_config() {
    insta::assert_snapshot!(
        "hub_users_config",
        hub_server_config(&endpoints(), HubInstance::Users, &fake_paths("users"))
    );
}

/// Checks the snapshots cannot hide: the directives that matter, line by line.
#[test]
fn configs_hold_the_directives_that_matter() {
    let e = endpoints();
    let lines = |text: &str| text.lines().map(str::to_owned).collect::<BTreeSet<_>>();
    let client = lines(&server_client_config(&e));
    for line in [
        "client",
        "proto tcp-client",
        "remote vpn.example.com 1194",
        "remote-cert-tls server",
        "verify-x509-name hub.example.com name",
        "data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305",
        "auth-user-pass /etc/openvpn/client/evon.auth",
        "config /etc/openvpn/client/evon_secrets.conf",
    ] {
        assert!(client.contains(line), "server client config lacks {line:?}");
    }
    let user = lines(&user_config(&e, &fake_secrets()));
    for line in [
        "proto udp",
        "remote vpn.example.com 1194",
        "auth-user-pass",
        "verify-x509-name hub.example.com name",
        "<tls-crypt>",
    ] {
        assert!(user.contains(line), "user config lacks {line:?}");
    }
    let servers = lines(&hub_server_config(
        &e,
        HubInstance::Servers,
        &fake_paths("servers"),
    ));
    for line in [
        "mode server",
        "proto tcp-server",
        "port 1194",
        "server 100.111.224.0 255.255.224.0 nopool",
        "push \"route 100.111.0.0 255.255.0.0\"",
        "duplicate-cn",
        "username-as-common-name",
        "management /run/evon-hub/openvpn-servers.sock unix",
    ] {
        assert!(servers.contains(line), "servers instance lacks {line:?}");
    }
    let users = lines(&hub_server_config(
        &e,
        HubInstance::Users,
        &fake_paths("users"),
    ));
    for line in [
        "proto udp",
        "server 100.111.208.0 255.255.240.0 nopool",
        "push \"route 100.111.0.0 255.255.0.0\"",
    ] {
        assert!(users.contains(line), "users instance lacks {line:?}");
    }
    for text in [&servers, &users, &client, &user] {
        assert!(!text.iter().any(|l| l.contains("redirect-gateway")));
    }
}

// --- tools and scratch space ---------------------------------------------------------------------

fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not on the PATH: these tests need it (apt-get install -y shellcheck openvpn \
         openssl curl coreutils util-linux)"
    );
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("evon-art-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Everything under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(base).unwrap().display().to_string());
            if path.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// A port on 127.0.0.1 where nothing listens (for TCP and UDP alike).
fn closed_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

// --- the Linux installer -------------------------------------------------------------------------

/// A rendered installer in its own scratch directory, and the environment to run it in.
struct Installer {
    dir: Scratch,
    script: PathBuf,
    root: PathBuf,
    tmp: PathBuf,
    os_release: PathBuf,
}

impl Installer {
    fn new(tag: &str, endpoints: &HubEndpoints) -> Self {
        let dir = Scratch::new(tag);
        let script = dir.write("bootstrap.sh", &bootstrap_sh(endpoints, SEALED, VERSION));
        let root = dir.join("root");
        let tmp = dir.join("tmp");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&tmp).unwrap();
        let os_release = dir.write(
            "os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        Self {
            dir,
            script,
            root,
            tmp,
            os_release,
        }
    }

    /// The command, with a clean environment: the root and os-release of this test, no deploy
    /// key unless `key` is given.
    fn command(&self, args: &[&str], key: Option<&str>) -> Command {
        let mut command = Command::new("sh");
        command
            .arg(&self.script)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("EVON_ROOT", &self.root)
            .env("EVON_OS_RELEASE", &self.os_release)
            .env("TMPDIR", &self.tmp)
            .stdin(Stdio::null());
        if let Some(key) = key {
            command.env("EVON_DEPLOY_KEY", key);
        }
        command
    }

    fn run(&self, args: &[&str], key: Option<&str>) -> Output {
        self.command(args, key).output().unwrap()
    }

    fn installed(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.installed(path)).unwrap()
    }

    fn mode(&self, path: &str) -> u32 {
        fs::metadata(self.installed(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    fn assert_nothing_written(&self, output: &Output) {
        assert_eq!(
            tree(&self.root),
            Vec::<String>::new(),
            "the installer wrote under EVON_ROOT:\n{}",
            describe(output)
        );
        assert_eq!(
            tree(&self.tmp),
            Vec::<String>::new(),
            "the installer left temporary files:\n{}",
            describe(output)
        );
    }
}

fn assert_fails_with(output: &Output, message: &str) {
    assert!(
        !output.status.success(),
        "expected failure:\n{}",
        describe(output)
    );
    assert!(
        text(&output.stderr).contains(message),
        "expected {message:?} on stderr:\n{}",
        describe(output)
    );
}

#[test]
fn bootstrap_sh_is_shellcheck_clean() {
    require("shellcheck");
    let installer = Installer::new("shellcheck", &endpoints());
    let output = Command::new("shellcheck")
        .args(["-s", "sh", "-S", "style"])
        .arg(&installer.script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "shellcheck -s sh:\n{}",
        describe(&output)
    );
}

#[test]
fn bootstrap_sh_parses() {
    let installer = Installer::new("parse", &endpoints());
    let output = Command::new("sh")
        .arg("-n")
        .arg(&installer.script)
        .output()
        .unwrap();
    assert!(output.status.success(), "sh -n:\n{}", describe(&output));
}

#[test]
fn bootstrap_sh_help() {
    let installer = Installer::new("help", &endpoints());
    for flag in ["--help", "-h"] {
        let output = installer.run(&[flag], None);
        assert!(output.status.success(), "{flag}:\n{}", describe(&output));
        let stdout = text(&output.stdout);
        for needle in [
            "--install",
            "--uninstall",
            "--uuid UUID",
            "--hostname NAME",
            "--extra-config FILE",
            "--no-start",
            "--version",
            "EVON_DEPLOY_KEY",
            "EVON_CURL_OPTS",
            "EVON_ROOT",
            "hub.example.com",
            VERSION,
        ] {
            assert!(
                stdout.contains(needle),
                "{flag} lacks {needle:?}:\n{stdout}"
            );
        }
        installer.assert_nothing_written(&output);
    }
}

#[test]
fn bootstrap_sh_version() {
    let installer = Installer::new("version", &endpoints());
    for flag in ["--version", "-v"] {
        let output = installer.run(&[flag], None);
        assert!(output.status.success(), "{flag}:\n{}", describe(&output));
        assert_eq!(text(&output.stdout), format!("{VERSION}\n"));
    }
}

#[test]
fn bootstrap_sh_usage_errors() {
    let installer = Installer::new("usage", &endpoints());
    for (args, message) in [
        (&[][..], "give --install or --uninstall"),
        (&["--install", "--uninstall"][..], "exclude each other"),
        (&["--bogus"][..], "unknown argument: --bogus"),
        (&["--install", "--uuid"][..], "needs a value"),
        (
            &["--uninstall", "--uuid", SERVER_UUID][..],
            "go with --install only",
        ),
    ] {
        let output = installer.run(args, Some(DEPLOY_KEY));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}:\n{}",
            describe(&output)
        );
        assert_fails_with(&output, message);
        installer.assert_nothing_written(&output);
    }
}

#[test]
fn bootstrap_sh_rejects_bad_uuids_and_hostnames() {
    let installer = Installer::new("badvalues", &endpoints());
    for (args, message) in [
        (
            &[
                "--install",
                "--uuid",
                "4B1E8A3C-1F2D-4C5E-9A7B-0123456789AB",
            ][..],
            "not a lowercase version 4 UUID",
        ),
        (
            &[
                "--install",
                "--uuid",
                "4b1e8a3c-1f2d-1c5e-9a7b-0123456789ab",
            ][..],
            "not a lowercase version 4 UUID",
        ),
        (
            &[
                "--install",
                "--uuid",
                "4b1e8a3c-1f2d-4c5e-9a7b-0123456789ab\nx",
            ][..],
            "not a lowercase version 4 UUID",
        ),
        (
            &["--install", "--uuid="][..],
            "not a lowercase version 4 UUID",
        ),
        (
            &["--install", "--uuid", SERVER_UUID, "--hostname", "web_1"][..],
            "not a valid host name",
        ),
        (
            &["--install", "--uuid", SERVER_UUID, "--hostname", "-web"][..],
            "not a valid host name",
        ),
        (
            &["--install", "--extra-config", "/nonexistent/extra.conf"][..],
            "cannot read the extra configuration file",
        ),
    ] {
        let output = installer.run(args, Some(DEPLOY_KEY));
        assert_fails_with(&output, message);
        installer.assert_nothing_written(&output);
    }
}

#[test]
fn bootstrap_sh_fails_cleanly_when_the_hub_is_unreachable() {
    require("curl");
    let mut e = endpoints();
    e.api_url = "http://127.0.0.1:1".into();
    let installer = Installer::new("unreachable", &e);
    let output = installer.run(&["--install", "--hostname", "web1"], Some("x"));
    assert_fails_with(&output, "could not decrypt");
    installer.assert_nothing_written(&output);
}

#[test]
fn bootstrap_sh_refuses_unsupported_systems() {
    let installer = Installer::new("plan9", &endpoints());
    fs::write(&installer.os_release, "NAME=\"Plan 9\"\nID=plan9\n").unwrap();
    let output = installer.run(&["--install"], Some(DEPLOY_KEY));
    assert_fails_with(&output, "unsupported operating system 'plan9'");
    installer.assert_nothing_written(&output);

    fs::remove_file(&installer.os_release).unwrap();
    let output = installer.run(&["--install"], Some(DEPLOY_KEY));
    assert_fails_with(&output, "to identify this system");
    installer.assert_nothing_written(&output);
}

#[test]
fn bootstrap_sh_knows_the_supported_families() {
    // Each of these gets past the system check and fails at the (unreachable) hub.
    require("curl");
    let mut e = endpoints();
    e.api_url = "http://127.0.0.1:1".into();
    let installer = Installer::new("families", &e);
    for os_release in [
        "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n",
        "ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n",
        "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\n",
        "ID=almalinux\nID_LIKE=\"rhel centos fedora\"\n",
        "ID=fedora\nVERSION_ID=40\n",
        "ID='rhel'\nID_LIKE='fedora'\n",
    ] {
        fs::write(&installer.os_release, os_release).unwrap();
        let output = installer.run(&["--install", "--hostname", "web1"], Some("x"));
        assert_fails_with(&output, "could not decrypt");
        assert!(
            !text(&output.stderr).contains("unsupported"),
            "{os_release}:\n{}",
            describe(&output)
        );
    }
}

#[test]
fn bootstrap_sh_refuses_to_run_without_a_key_or_a_terminal() {
    require("setsid");
    let installer = Installer::new("nokey", &endpoints());
    // setsid: no controlling terminal, so /dev/tty cannot be opened even under a developer's
    // terminal.
    let mut command = Command::new("setsid");
    command
        .arg("-w")
        .arg("sh")
        .arg(&installer.script)
        .args(["--install", "--hostname", "web1"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("EVON_ROOT", &installer.root)
        .env("EVON_OS_RELEASE", &installer.os_release)
        .env("TMPDIR", &installer.tmp)
        .stdin(Stdio::null());
    let output = command.output().unwrap();
    assert_fails_with(&output, "no deploy key: set EVON_DEPLOY_KEY");
    installer.assert_nothing_written(&output);
}

#[test]
fn bootstrap_sh_refuses_bad_install_roots() {
    let installer = Installer::new("badroot", &endpoints());
    for root in ["relative/dir", "/tmp/with space", "/tmp/a|b"] {
        let output = installer
            .command(&["--install"], Some(DEPLOY_KEY))
            .env("EVON_ROOT", root)
            .output()
            .unwrap();
        assert_fails_with(&output, "EVON_ROOT");
    }
}

// --- a fake hub ----------------------------------------------------------------------------------

/// One request the fake hub received.
#[derive(Debug, Clone)]
struct Request {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The content of the multipart field `name`.
    fn multipart_field(&self, name: &str) -> Option<Vec<u8>> {
        let content_type = self.header("content-type")?;
        let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
        let delimiter = format!("--{boundary}");
        let body = text(&self.body);
        body.split(delimiter.as_str()).find_map(|part| {
            let (head, content) = part.split_once("\r\n\r\n")?;
            head.contains(&format!("name=\"{name}\"")).then(|| {
                content
                    .strip_suffix("\r\n")
                    .unwrap_or(content)
                    .as_bytes()
                    .to_vec()
            })
        })
    }
}

/// A stand-in for `POST /api/bootstrap/decrypt`: 401 for a token other than `key`, 400 for a
/// payload other than [`SEALED`], else 200 with `answer`.
struct FakeHub {
    url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeHub {
    fn start(key: &str, answer: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let expected_auth = format!("Token {key}");
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let request = match read_request(&stream) {
                    Some(request) => request,
                    None => continue,
                };
                let (status, body) = if request.header("authorization") != Some(&expected_auth) {
                    (401, r#"{"detail": "Invalid token."}"#.to_owned())
                } else if request.request_line != "POST /api/bootstrap/decrypt HTTP/1.1" {
                    (404, r#"{"detail": "Not found."}"#.to_owned())
                } else if request.multipart_field("data").as_deref() != Some(SEALED.as_bytes()) {
                    (
                        400,
                        r#"{"status": "error", "message": "failed to decrypt payload"}"#.to_owned(),
                    )
                } else {
                    (200, answer.clone())
                };
                log.lock().unwrap().push(request);
                let _ = write!(
                    &stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/octet-stream\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        request_line: request_line.trim_end().to_owned(),
        headers,
        body,
    })
}

// --- real test certificates ----------------------------------------------------------------------

/// A CA, a hub server certificate for `hub.example.com`, a client certificate and a tls-crypt
/// key, made with openssl and openvpn in `dir`.
struct Pki {
    secrets: ClientSecrets,
    ca: PathBuf,
    hub_cert: PathBuf,
    hub_key: PathBuf,
    tls_crypt: PathBuf,
}

fn run_ok(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}:\n{}",
        describe(&output)
    );
}

fn make_pki(dir: &Path) -> Pki {
    require("openssl");
    require("openvpn");
    let p = |name: &str| dir.join(name);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run_ok(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-subj", "/CN=Evon Test CA", "-days", "2"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.crt")),
    );
    for (name, cn, usage) in [
        ("hub", "hub.example.com", "serverAuth"),
        ("endpoint", "endpoint", "clientAuth"),
    ] {
        run_ok(
            Command::new("openssl")
                .arg("req")
                .args(ec)
                .args(["-subj", &format!("/CN={cn}")])
                .arg("-keyout")
                .arg(p(&format!("{name}.key")))
                .arg("-out")
                .arg(p(&format!("{name}.csr"))),
        );
        let ext = p(&format!("{name}.ext"));
        fs::write(
            &ext,
            format!("extendedKeyUsage={usage}\nkeyUsage=critical,digitalSignature\n"),
        )
        .unwrap();
        run_ok(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                .arg("-in")
                .arg(p(&format!("{name}.csr")))
                .arg("-CA")
                .arg(p("ca.crt"))
                .arg("-CAkey")
                .arg(p("ca.key"))
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(p(&format!("{name}.crt"))),
        );
    }
    run_ok(
        Command::new("openvpn")
            .args(["--genkey", "secret"])
            .arg(p("tls-crypt.key")),
    );
    let read = |name: &str| fs::read_to_string(p(name)).unwrap();
    Pki {
        secrets: ClientSecrets {
            ca_cert: read("ca.crt"),
            cert: read("endpoint.crt"),
            key: read("endpoint.key"),
            tls_crypt_key: read("tls-crypt.key"),
        },
        ca: p("ca.crt"),
        hub_cert: p("hub.crt"),
        hub_key: p("hub.key"),
        tls_crypt: p("tls-crypt.key"),
    }
}

// --- judging configurations with openvpn ---------------------------------------------------------

fn openvpn(config: &Path, extra: &[&str]) -> String {
    require("openvpn");
    require("timeout");
    let output = Command::new("timeout")
        .args(["10", "openvpn", "--config"])
        .arg(config)
        .args(extra)
        .current_dir(config.parent().unwrap())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    format!("{}{}", text(&output.stdout), text(&output.stderr))
}

/// Runs a client configuration against a closed local port; it must get as far as connecting.
fn assert_client_accepted(config: &Path, tcp: bool, extra: &[&str]) {
    let mut args = vec![
        "--dev",
        "null",
        "--ifconfig-noexec",
        "--route-noexec",
        "--connect-retry",
        "1",
        "--connect-retry-max",
        "1",
        "--hand-window",
        "1",
        "--verb",
        "3",
    ];
    args.extend_from_slice(extra);
    let log = openvpn(config, &args);
    let marker = if tcp {
        "Attempting to establish TCP connection with [AF_INET]127.0.0.1:"
    } else {
        "UDPv4 link remote: [AF_INET]127.0.0.1:"
    };
    assert!(
        !log.contains("Options error") && log.contains(marker),
        "openvpn did not accept {} (expected {marker:?}):\n{log}\n--- config\n{}",
        config.display(),
        fs::read_to_string(config).unwrap()
    );
}

fn test_endpoints() -> HubEndpoints {
    HubEndpoints {
        public_host: "127.0.0.1".into(),
        server_port: closed_port(),
        user_port: closed_port(),
        ..endpoints()
    }
}

fn auth_file(dir: &Scratch) -> PathBuf {
    let path = dir.write("evon.auth", &format!("{SERVER_UUID}\nweb1\n"));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn openvpn_accepts_the_server_client_config() {
    let dir = Scratch::new("ovpn-client");
    let pki = make_pki(dir.path());
    let auth = auth_file(&dir);
    let secrets = dir.write("evon_secrets.conf", &secrets_fragment(&pki.secrets));
    // The configuration as installed with an empty EVON_ROOT, pointed at this test's files.
    let config = server_client_config(&test_endpoints())
        .replace(LINUX_AUTH_FILE, auth.to_str().unwrap())
        .replace(LINUX_SECRETS_FILE, secrets.to_str().unwrap());
    let config = dir.write("evon.conf", &config);
    assert_client_accepted(&config, true, &[]);
}

#[test]
fn openvpn_accepts_the_raw_server_config() {
    let dir = Scratch::new("ovpn-raw");
    let pki = make_pki(dir.path());
    let auth = auth_file(&dir);
    let config = dir.write(
        "openvpn_client-evon_server.conf",
        &raw_server_config(&test_endpoints(), &pki.secrets),
    );
    // Its auth-user-pass file is /etc/openvpn/client/evon.auth; a later option replaces it.
    assert_client_accepted(&config, true, &["--auth-user-pass", auth.to_str().unwrap()]);
}

#[test]
fn openvpn_accepts_the_user_config() {
    let dir = Scratch::new("ovpn-user");
    let pki = make_pki(dir.path());
    let auth = auth_file(&dir);
    let config = dir.write(
        "EvonHub.ovpn",
        &user_config(&test_endpoints(), &pki.secrets),
    );
    // It asks for the username and password; here they come from a file instead.
    assert_client_accepted(
        &config,
        false,
        &["--auth-user-pass", auth.to_str().unwrap()],
    );
}

#[test]
fn openvpn_rejects_what_it_should() {
    // The judge itself: a bad directive, a bad certificate, a key that is not the certificate's.
    let dir = Scratch::new("ovpn-judge");
    let pki = make_pki(dir.path());
    let auth = auth_file(&dir);
    let e = test_endpoints();
    let args = [
        "--dev",
        "null",
        "--connect-retry-max",
        "1",
        "--auth-user-pass",
        auth.to_str().unwrap(),
    ];

    let bad_directive = dir.write(
        "bad-directive.ovpn",
        &user_config(&e, &pki.secrets).replace("\nnobind\n", "\nnobindx\n"),
    );
    let log = openvpn(&bad_directive, &args);
    assert!(log.contains("Options error"), "{log}");

    let mut broken = pki.secrets.clone();
    broken.cert = broken.cert.replace("MII", "XII");
    let bad_cert = dir.write("bad-cert.ovpn", &user_config(&e, &broken));
    let log = openvpn(&bad_cert, &args);
    assert!(log.contains("Cannot load inline certificate"), "{log}");
    assert!(!log.contains("link remote:"), "{log}");

    let mut mismatched = pki.secrets.clone();
    mismatched.key = fs::read_to_string(&pki.hub_key).unwrap();
    let bad_key = dir.write("bad-key.ovpn", &user_config(&e, &mismatched));
    let log = openvpn(&bad_key, &args);
    assert!(!log.contains("link remote:"), "{log}");
}

fn hub_paths(dir: &Scratch, pki: &Pki, which: &str) -> HubServerPaths {
    let binary = dir.write(
        "evon-hub",
        "#!/bin/sh\necho \"evon-hub test hook: $*\" >&2\nexit 0\n",
    );
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
    let ccd = dir.join(&format!("ccd-{which}"));
    fs::create_dir_all(&ccd).unwrap();
    let s = |p: PathBuf| p.to_str().unwrap().to_owned();
    HubServerPaths {
        ca: s(pki.ca.clone()),
        cert: s(pki.hub_cert.clone()),
        key: s(pki.hub_key.clone()),
        tls_crypt: s(pki.tls_crypt.clone()),
        ccd_dir: s(ccd),
        management_socket: s(dir.join(&format!("{which}.sock"))),
        evon_hub_binary: s(binary),
        status_file: s(dir.join(&format!("{which}.status"))),
    }
}

/// Runs a hub server configuration with its tun device pointed at a path that does not exist:
/// options, certificates, keys, hooks and the management socket must all pass before it fails
/// there.
fn assert_hub_server_accepted(which: HubInstance, name: &str) {
    let dir = Scratch::new(&format!("ovpn-hub-{name}"));
    let pki = make_pki(dir.path());
    let paths = hub_paths(&dir, &pki, name);
    let config = dir.write(
        &format!("{name}.conf"),
        &hub_server_config(&test_endpoints(), which, &paths),
    );
    let no_tun = dir.join("no-such-tun");
    let log = openvpn(&config, &["--dev-node", no_tun.to_str().unwrap()]);
    let marker = format!("Cannot open TUN/TAP dev {}", no_tun.display());
    assert!(
        !log.contains("Options error") && log.contains(&marker),
        "openvpn did not accept the {name} instance (expected {marker:?}):\n{log}\n--- config\n{}",
        fs::read_to_string(&config).unwrap()
    );
    assert!(
        log.contains(&format!(
            "MANAGEMENT: unix domain socket listening on {}",
            paths.management_socket
        )),
        "{log}"
    );
}

#[test]
fn openvpn_accepts_the_hub_servers_config() {
    assert_hub_server_accepted(HubInstance::Servers, "servers");
}

#[test]
fn openvpn_accepts_the_hub_users_config() {
    assert_hub_server_accepted(HubInstance::Users, "users");
}

// --- a full install ------------------------------------------------------------------------------

#[test]
fn bootstrap_sh_installs_reinstalls_and_uninstalls() {
    require("curl");
    let scratch = Scratch::new("install-pki");
    let pki = make_pki(scratch.path());
    let fragment = secrets_fragment(&pki.secrets);
    let hub = FakeHub::start(DEPLOY_KEY, fragment.clone());
    let e = HubEndpoints {
        api_url: format!("{}/", hub.url),
        ..test_endpoints()
    };
    let installer = Installer::new("install", &e);
    let extra = installer
        .dir
        .write("extra.conf", "# my proxy\nconnect-timeout 7\n");

    let output = installer.run(
        &[
            "--install",
            "--hostname",
            "Web1",
            "--extra-config",
            extra.to_str().unwrap(),
        ],
        Some(DEPLOY_KEY),
    );
    assert!(output.status.success(), "install:\n{}", describe(&output));

    // What the hub was sent.
    let requests = hub.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.request_line, "POST /api/bootstrap/decrypt HTTP/1.1");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Token {DEPLOY_KEY}").as_str())
    );
    assert_eq!(
        request.multipart_field("data").as_deref(),
        Some(SEALED.as_bytes())
    );

    // What was written, and with which modes.
    let mut expected_tree = vec![
        "etc".to_owned(),
        "etc/openvpn".to_owned(),
        "etc/openvpn/client".to_owned(),
    ];
    expected_tree.extend(
        [
            LINUX_AUTH_FILE,
            LINUX_CLIENT_CONFIG_FILE,
            LINUX_SECRETS_FILE,
            LINUX_UUID_FILE,
        ]
        .map(|p| p.trim_start_matches('/').to_owned()),
    );
    expected_tree.sort();
    assert_eq!(tree(&installer.root), expected_tree);
    assert_eq!(tree(&installer.tmp), Vec::<String>::new());

    let identity = installer.read(LINUX_UUID_FILE);
    let (uuid, hostname) = identity
        .strip_suffix('\n')
        .and_then(|t| t.split_once('\n'))
        .expect("two lines");
    assert_eq!(hostname, "web1", "the hostname is lowercased");
    evon_domain::validate::ServerUuid::parse(uuid).expect("a v4 UUID");
    assert_eq!(uuid.to_lowercase(), uuid);
    assert_eq!(installer.read(LINUX_AUTH_FILE), identity);
    assert_eq!(installer.read(LINUX_SECRETS_FILE), fragment);
    for (path, mode) in [
        (LINUX_UUID_FILE, 0o600),
        (LINUX_AUTH_FILE, 0o600),
        (LINUX_SECRETS_FILE, 0o600),
        (LINUX_CLIENT_CONFIG_FILE, 0o644),
    ] {
        assert_eq!(installer.mode(path), mode, "{path}");
    }

    // The configuration is server_client_config() with EVON_ROOT before its paths, plus the
    // extra configuration.
    let root = installer.root.to_str().unwrap();
    let expected_config = format!(
        "{}\n# Added with --extra-config:\n# my proxy\nconnect-timeout 7\n",
        server_client_config(&e)
            .replace(LINUX_AUTH_FILE, &format!("{root}{LINUX_AUTH_FILE}"))
            .replace(LINUX_SECRETS_FILE, &format!("{root}{LINUX_SECRETS_FILE}"))
    );
    assert_eq!(installer.read(LINUX_CLIENT_CONFIG_FILE), expected_config);

    // And openvpn takes it as it is, paths and all.
    assert_client_accepted(&installer.installed(LINUX_CLIENT_CONFIG_FILE), true, &[]);

    // A second install keeps the UUID, and the hostname unless told otherwise.
    let output = installer.run(&["--install"], Some(DEPLOY_KEY));
    assert!(output.status.success(), "reinstall:\n{}", describe(&output));
    assert_eq!(installer.read(LINUX_UUID_FILE), identity);
    assert_eq!(
        installer.read(LINUX_CLIENT_CONFIG_FILE),
        server_client_config(&e)
            .replace(LINUX_AUTH_FILE, &format!("{root}{LINUX_AUTH_FILE}"))
            .replace(LINUX_SECRETS_FILE, &format!("{root}{LINUX_SECRETS_FILE}")),
        "without --extra-config the extra configuration is gone"
    );
    let output = installer.run(&["--install", "--hostname", "web2"], Some(DEPLOY_KEY));
    assert!(output.status.success(), "rename:\n{}", describe(&output));
    assert_eq!(installer.read(LINUX_UUID_FILE), format!("{uuid}\nweb2\n"));

    // --uuid replaces the identity.
    let output = installer.run(&["--install", "--uuid", SERVER_UUID], Some(DEPLOY_KEY));
    assert!(output.status.success(), "--uuid:\n{}", describe(&output));
    assert_eq!(
        installer.read(LINUX_UUID_FILE),
        format!("{SERVER_UUID}\nweb2\n")
    );
    assert_eq!(
        installer.read(LINUX_AUTH_FILE),
        format!("{SERVER_UUID}\nweb2\n")
    );

    // A refused key changes nothing.
    let before: Vec<String> = [LINUX_UUID_FILE, LINUX_AUTH_FILE, LINUX_CLIENT_CONFIG_FILE]
        .iter()
        .map(|p| installer.read(p))
        .collect();
    let output = installer.run(&["--install", "--hostname", "web3"], Some("wrong"));
    assert_fails_with(&output, "the hub refused the deploy key (HTTP 401)");
    let after: Vec<String> = [LINUX_UUID_FILE, LINUX_AUTH_FILE, LINUX_CLIENT_CONFIG_FILE]
        .iter()
        .map(|p| installer.read(p))
        .collect();
    assert_eq!(before, after);
    assert_eq!(tree(&installer.tmp), Vec::<String>::new());

    // Uninstall removes the configuration and keeps the identity; it can run twice.
    for _ in 0..2 {
        let output = installer.run(&["--uninstall"], None);
        assert!(output.status.success(), "uninstall:\n{}", describe(&output));
        assert!(
            text(&output.stdout).contains("Kept"),
            "{}",
            describe(&output)
        );
        assert_eq!(
            tree(&installer.root),
            [
                "etc",
                "etc/openvpn",
                "etc/openvpn/client",
                "etc/openvpn/evon.uuid"
            ]
        );
        assert_eq!(
            installer.read(LINUX_UUID_FILE),
            format!("{SERVER_UUID}\nweb2\n")
        );
    }
}

#[test]
fn bootstrap_sh_derives_a_hostname() {
    require("curl");
    let hub = FakeHub::start(DEPLOY_KEY, secrets_fragment(&fake_secrets()));
    let e = HubEndpoints {
        api_url: hub.url.clone(),
        ..endpoints()
    };
    let installer = Installer::new("derive", &e);
    let output = installer.run(&["--install"], Some(DEPLOY_KEY));
    if !output.status.success() {
        // Only a machine name that is not a DNS label may stop it, and then it says so.
        assert_fails_with(&output, "give one with --hostname");
        return;
    }
    let identity = installer.read(LINUX_UUID_FILE);
    let hostname = identity.lines().nth(1).expect("a hostname line");
    assert!(
        !hostname.is_empty()
            && hostname.len() <= 63
            && hostname
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{hostname:?}"
    );
}

#[test]
fn bootstrap_sh_reports_what_the_hub_says() {
    require("curl");
    // A hub that cannot open the payload (it answers 400), and one whose answer is no secrets.
    let hub = FakeHub::start(DEPLOY_KEY, "not secrets".into());
    let e = HubEndpoints {
        api_url: hub.url.clone(),
        ..endpoints()
    };
    let installer = Installer::new("hub-says", &e);
    let output = installer.run(&["--install", "--hostname", "web1"], Some(DEPLOY_KEY));
    assert_fails_with(
        &output,
        "could not decrypt the secrets: the hub's answer holds no",
    );
    installer.assert_nothing_written(&output);

    let installer = Installer::new("hub-400", &e);
    let script = fs::read_to_string(&installer.script)
        .unwrap()
        .replace(SEALED, "dGFtcGVyZWQ=");
    fs::write(&installer.script, script).unwrap();
    let output = installer.run(&["--install", "--hostname", "web1"], Some(DEPLOY_KEY));
    assert_fails_with(
        &output,
        "could not decrypt the secrets: the hub answered HTTP 400: {\"status\": \"error\", \
         \"message\": \"failed to decrypt payload\"}",
    );
    installer.assert_nothing_written(&output);

    // EVON_CURL_OPTS reaches curl.
    let installer = Installer::new("curl-opts", &e);
    let output = installer
        .command(&["--install", "--hostname", "web1"], Some(DEPLOY_KEY))
        .env("EVON_CURL_OPTS", "--no-such-curl-option")
        .output()
        .unwrap();
    assert_fails_with(&output, "could not decrypt the secrets: the request to");
    assert!(
        text(&output.stderr).contains("no-such-curl-option"),
        "{}",
        describe(&output)
    );
    installer.assert_nothing_written(&output);
}

// --- the Windows installer -----------------------------------------------------------------------

#[test]
fn bootstrap_ps1_is_plausible() {
    // No PowerShell here: check what can be checked without one.
    let script = bootstrap_ps1(&endpoints(), SEALED, VERSION);
    for needle in [
        "[switch]$Install",
        "[switch]$Uninstall",
        "[string]$Uuid",
        "[string]$Hostname",
        "[string]$ExtraConfig",
        "[switch]$NoStart",
        "[switch]$Version",
        "$env:EVON_DEPLOY_KEY",
        "Read-Host -AsSecureString",
        "Invoke-WebRequest",
        "/api/bootstrap/decrypt",
        "name=\"data\"",
        &format!("$EvonSealedSecrets = '{SEALED}'"),
        &format!("$EvonVersion = '{VERSION}'"),
    ] {
        assert!(script.contains(needle), "bootstrap.ps1 lacks {needle:?}");
    }
    // Brackets, braces and parentheses balance outside strings and comments (a rough parser).
    let mut stack = Vec::new();
    let mut in_here_string = false;
    for (number, line) in script.lines().enumerate() {
        if in_here_string {
            if line.starts_with("'@") || line.starts_with("\"@") {
                in_here_string = false;
            }
            continue;
        }
        // A here-string opens at the end of a line: the code before it is checked, not it.
        let code = match line.trim_end().strip_suffix("@'") {
            Some(code) => Some(code),
            None => line.trim_end().strip_suffix("@\""),
        };
        in_here_string = code.is_some();
        let mut quote: Option<char> = None;
        let mut chars = code.unwrap_or(line).chars().peekable();
        while let Some(c) = chars.next() {
            match quote {
                Some('\'') if c == '\'' => {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                Some('"') if c == '`' => {
                    chars.next();
                }
                Some('"') if c == '"' => quote = None,
                Some(_) => {}
                None => match c {
                    '#' => break,
                    '`' => {
                        chars.next();
                    }
                    '\'' | '"' => quote = Some(c),
                    '(' | '{' | '[' => stack.push((c, number + 1)),
                    ')' | '}' | ']' => {
                        let (open, at) = stack
                            .pop()
                            .unwrap_or_else(|| panic!("line {}: unmatched {c}", number + 1));
                        let expected = match open {
                            '(' => ')',
                            '{' => '}',
                            _ => ']',
                        };
                        assert_eq!(
                            c,
                            expected,
                            "line {}: {c} closes {open} of line {at}",
                            number + 1
                        );
                    }
                    _ => {}
                },
            }
        }
        assert!(
            quote.is_none(),
            "line {}: unterminated string: {line}",
            number + 1
        );
    }
    assert!(!in_here_string, "unterminated here-string");
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

// --- end to end ----------------------------------------------------------------------------------

/// The hook the end-to-end test gives both hub servers: it logs what OpenVPN hands it, lets in
/// the server `web1` and the person alice (password "secret"), and pushes each an address.
const E2E_HOOK: &str = r#"#!/bin/sh
log=${0%/*}/hooks.log
last=
for arg in "$@"; do last=$arg; done
printf '%s username=%s password=%s common_name=%s\n' "$2" "${username:-}" "${password:-}" "${common_name:-}" >>"$log"
case $2 in
    server-auth) [ "${password:-}" = web1 ] ;;
    user-auth) [ "${username:-}" = alice ] && [ "${password:-}" = secret ] ;;
    server-connect) printf 'ifconfig-push 100.111.224.6 100.111.224.5\n' >"$last" ;;
    user-connect) printf 'ifconfig-push 100.111.208.6 100.111.208.5\n' >"$last" ;;
    *) : ;;
esac
"#;

/// Starts the two hub servers and three clients in the namespace, waits until the two that
/// should get in have, and stops everything.
const E2E_SCRIPT: &str = r#"set -u
ip link set lo up
openvpn --config servers.conf >servers.log 2>&1 & hub_servers=$!
openvpn --config users.conf >users.log 2>&1 & hub_users=$!
sleep 1
openvpn --config server-client.conf >server-client.log 2>&1 & server_client=$!
openvpn --config EvonHub.ovpn --auth-user-pass alice.auth >alice.log 2>&1 & alice=$!
openvpn --config EvonHub.ovpn --auth-user-pass mallory.auth --auth-retry none >mallory.log 2>&1 & mallory=$!
i=0
while [ $i -lt 40 ]; do
    if grep -q 'Initialization Sequence Completed' server-client.log &&
        grep -q 'Initialization Sequence Completed' alice.log &&
        grep -q 'AUTH_FAILED' mallory.log; then
        break
    fi
    sleep 0.5
    i=$((i + 1))
done
ip -4 addr >addresses.txt
ip -4 route >routes.txt
kill $server_client $alice $mallory 2>/dev/null
sleep 1
kill $hub_servers $hub_users 2>/dev/null
wait
"#;

/// The real thing, in a network namespace of its own so that it creates no interface on the
/// machine: both hub servers on their default ports (TCP and UDP 1194), a server joining with
/// the configuration as installed, a person with EvonHub.ovpn, and a person with a wrong
/// password, over 127.0.0.1. Needs `unshare -n` (root) or `unshare -rn` (user namespaces), so
/// it is not run by default: `cargo test -p evon-domain --test artifacts -- --ignored`.
#[test]
#[ignore = "needs a network namespace and a tun device: run with --ignored as root"]
fn openvpn_end_to_end_in_a_network_namespace() {
    for tool in ["unshare", "ip", "openvpn", "openssl"] {
        require(tool);
    }
    let namespace_flags = ["-n", "-rn"]
        .into_iter()
        .find(|flags| {
            Command::new("unshare")
                .args([flags, "true"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .expect("cannot create a network namespace (unshare -n / -rn)");

    let dir = Scratch::new("e2e");
    let pki = make_pki(dir.path());
    let e = HubEndpoints {
        public_host: "127.0.0.1".into(),
        ..endpoints()
    };
    let hook = dir.write("e2e-hook", E2E_HOOK);
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    for (which, name) in [
        (HubInstance::Servers, "servers"),
        (HubInstance::Users, "users"),
    ] {
        let paths = HubServerPaths {
            evon_hub_binary: hook.to_str().unwrap().to_owned(),
            ..hub_paths(&dir, &pki, name)
        };
        dir.write(
            &format!("{name}.conf"),
            &hub_server_config(&e, which, &paths),
        );
    }
    let auth = auth_file(&dir);
    let secrets = dir.write("evon_secrets.conf", &secrets_fragment(&pki.secrets));
    dir.write(
        "server-client.conf",
        &server_client_config(&e)
            .replace(LINUX_AUTH_FILE, auth.to_str().unwrap())
            .replace(LINUX_SECRETS_FILE, secrets.to_str().unwrap()),
    );
    dir.write("EvonHub.ovpn", &user_config(&e, &pki.secrets));
    for (name, password) in [("alice", "secret"), ("mallory", "guess")] {
        let path = dir.write(&format!("{name}.auth"), &format!("{name}\n{password}\n"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }

    let output = Command::new("timeout")
        .args(["60", "unshare", namespace_flags, "sh", "-c", E2E_SCRIPT])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
    let everything = || {
        [
            "servers.log",
            "users.log",
            "server-client.log",
            "alice.log",
            "mallory.log",
            "hooks.log",
            "addresses.txt",
            "routes.txt",
        ]
        .map(|name| format!("=== {name}\n{}", read(name)))
        .join("\n")
            + &describe(&output)
    };

    for client in ["server-client.log", "alice.log"] {
        assert!(
            read(client).contains("Initialization Sequence Completed"),
            "{client} did not connect:\n{}",
            everything()
        );
    }
    assert!(
        read("mallory.log").contains("AUTH_FAILED")
            && !read("mallory.log").contains("Initialization Sequence Completed"),
        "a wrong password got in:\n{}",
        everything()
    );
    let addresses = read("addresses.txt");
    for address in [
        "inet 100.111.224.1 peer 100.111.224.2/32",
        "inet 100.111.224.6 peer 100.111.224.5/32",
        "inet 100.111.208.1 peer 100.111.208.2/32",
        "inet 100.111.208.6 peer 100.111.208.5/32",
    ] {
        assert!(
            addresses.contains(address),
            "no {address}:\n{}",
            everything()
        );
    }
    let routes = read("routes.txt");
    for route in [
        "100.111.0.0/16 via 100.111.224.5",
        "100.111.0.0/16 via 100.111.208.5",
    ] {
        assert!(
            routes.contains(route),
            "no route {route}:\n{}",
            everything()
        );
    }
    // What the hooks are given: the auth hooks the username and password in the environment, the
    // connect hooks the common name replaced by the username.
    let hooks = read("hooks.log");
    for line in [
        format!("server-auth username={SERVER_UUID} password=web1 common_name=endpoint"),
        format!("server-connect username={SERVER_UUID} password= common_name={SERVER_UUID}"),
        "user-auth username=alice password=secret common_name=endpoint".to_owned(),
        "user-connect username=alice password= common_name=alice".to_owned(),
        "user-auth username=mallory password=guess common_name=endpoint".to_owned(),
        format!("server-disconnect username={SERVER_UUID} password= common_name={SERVER_UUID}"),
    ] {
        assert!(
            hooks.lines().any(|l| l == line),
            "no hook call {line:?}:\n{}",
            everything()
        );
    }
    assert!(
        !hooks.contains("user-connect username=mallory"),
        "{}",
        everything()
    );
}
