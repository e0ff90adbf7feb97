//! The real binary at `EVON_HUB_LOG=trace`: `init`, `serve`, the CLI and the OpenVPN hooks
//! driven through the flows that handle the most secrets, and everything they write to stderr
//! (and stdout, where nothing secret belongs) searched for every secret they made or were given:
//! passwords, tokens (old and rotated), the hub key, the PKI's private keys, the decrypted
//! bootstrap secrets and the database password. Over the real sockets it also checks the
//! headers the in-process tests cannot see: no `Server` header, `nosniff` everywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use evon_crypto::pki::Pki;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, DatabaseUrl};

const BIN: &str = env!("CARGO_BIN_EXE_evon-hub");
/// As much as the binary can log: every target at every level.
const LOG_FILTER: &str = "trace";
/// What OpenVPN sets for a hook, never inherited from the test's environment.
const OPENVPN_VARS: [&str; 4] = ["username", "password", "common_name", "auth_control_file"];

/// A secret and the forms it could be logged in.
struct Secret {
    kind: String,
    needles: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct Secrets(Vec<Secret>);

impl Secrets {
    fn text(&mut self, kind: &str, secret: &str) {
        assert!(secret.len() >= 8, "{kind} is too short to search for");
        let mut needles = vec![("raw", secret.to_owned())];
        needles.extend(encodings(secret.as_bytes()));
        self.0.push(Secret {
            kind: kind.to_owned(),
            needles,
        });
    }

    fn bytes(&mut self, kind: &str, secret: &[u8]) {
        self.0.push(Secret {
            kind: kind.to_owned(),
            needles: encodings(secret),
        });
    }

    /// A PEM private key or OpenVPN static key, line by line (a logged key may have its line
    /// breaks escaped).
    fn key(&mut self, kind: &str, text: &str) {
        let mut inside = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("-----BEGIN") {
                inside = line.contains("PRIVATE KEY") || line.contains("Static key");
            } else if line.starts_with("-----END") {
                inside = false;
            } else if inside && line.len() >= 16 {
                self.0.push(Secret {
                    kind: kind.to_owned(),
                    needles: vec![("key line", line.to_owned())],
                });
            }
        }
    }

    /// Each place in `text` (what `source` wrote) a secret appears, redacted.
    fn leaks(&self, source: &str, text: &str) -> Vec<String> {
        let mut leaks = Vec::new();
        for secret in &self.0 {
            for (form, needle) in &secret.needles {
                for line in text.lines().filter(|l| l.contains(needle.as_str())) {
                    leaks.push(format!(
                        "{} ({form}) in {source}: {}",
                        secret.kind,
                        self.redact(line)
                    ));
                }
            }
        }
        leaks
    }

    fn redact(&self, line: &str) -> String {
        let mut line = line.to_owned();
        for secret in &self.0 {
            for (_, needle) in &secret.needles {
                line = line.replace(needle.as_str(), &format!("[{} redacted]", secret.kind));
            }
        }
        line
    }
}

/// Hex and base64 (standard and URL-safe, at each of its three alignments) of `bytes`.
fn encodings(bytes: &[u8]) -> Vec<(&'static str, String)> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![("hex", hex.clone()), ("HEX", hex.to_ascii_uppercase())];
    for shift in 0..3usize {
        let mut shifted = vec![0u8; shift];
        shifted.extend_from_slice(bytes);
        let encoded = base64_unpadded(&shifted);
        let skip = [0, 2, 3][shift];
        let tail = usize::from(shifted.len() % 3 != 0);
        if encoded.len() >= skip + tail + 8 {
            let core = &encoded[skip..encoded.len() - tail];
            out.push(("base64", core.to_owned()));
            out.push(("base64url", core.replace('+', "-").replace('/', "_")));
        }
    }
    out
}

fn base64_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A hub's data directory and database, and the binary run against them.
struct Hub {
    dir: tempfile::TempDir,
    /// `--database-url` for PostgreSQL, with a password that trust authentication ignores but
    /// that must never be logged.
    url_arg: Option<String>,
    _db: Option<TestDatabase>,
}

impl Hub {
    fn new(backend: Backend, database_password: &str) -> Self {
        let (url_arg, db) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let db = TestDatabase::new(Backend::Postgres);
                let DatabaseUrl::Postgres(text) = db.url().clone() else {
                    panic!("not PostgreSQL")
                };
                let mut url = url::Url::parse(&text).unwrap();
                url.set_password(Some(database_password)).unwrap();
                (Some(url.to_string()), Some(db))
            }
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            url_arg,
            _db: db,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

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
        cmd.args(args).arg("--data-dir").arg(self.data_dir());
        if let Some(url) = &self.url_arg {
            cmd.args(["--database-url", url]);
        }
        cmd.env("EVON_HUB_LOG", LOG_FILTER)
            .env("EVON_HUB_FIREWALL", "off")
            .envs(envs.iter().copied())
            .current_dir(self.dir.path());
        cmd
    }

    fn run(&self, args: &[&str], envs: &[(&str, &str)], stdin: &str) -> Output {
        let mut child = self
            .command(args, envs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        // A command that reads no input may have closed the pipe already.
        let _ = pipe.write_all(stdin.as_bytes());
        drop(pipe);
        child.wait_with_output().unwrap()
    }
}

/// What one command wrote, kept for the search.
struct Transcript(Vec<(String, String)>);

impl Transcript {
    /// Keeps stderr always, stdout unless the command is meant to print a secret there.
    fn keep(&mut self, what: &str, output: &Output, stdout_is_secret: bool) {
        self.0.push((
            format!("stderr of {what}"),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
        if !stdout_is_secret {
            self.0.push((
                format!("stdout of {what}"),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            ));
        }
    }
}

/// `serve` in the background, its output going to files read once it has stopped.
struct Serving {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Serving {
    fn stop(mut self) -> (String, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        (
            std::fs::read_to_string(&self.stdout).unwrap(),
            std::fs::read_to_string(&self.stderr).unwrap(),
        )
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange over loopback: status, the header block (lower-cased names) and body.
struct Exchange {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn exchange(port: u16, request: &[u8]) -> Exchange {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = response[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Exchange { status, head, body }
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

fn request(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> Exchange {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Token {token}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    let response = exchange(port, &bytes);
    // The headers only a real server shows, on every answer.
    assert!(
        response.header("server").is_none(),
        "{method} {path} names its server: {}",
        response.head
    );
    assert_eq!(
        response.header("x-content-type-options"),
        Some("nosniff"),
        "{method} {path}: {}",
        response.head
    );
    response
}

fn json(port: u16, method: &str, path: &str, token: &str, body: &serde_json::Value) -> Exchange {
    request(
        port,
        method,
        path,
        token,
        "application/json",
        &serde_json::to_vec(body).unwrap(),
    )
}

fn multipart(payload: &[u8]) -> (String, Vec<u8>) {
    let boundary = "evon-secrets-in-logs-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"payload\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(payload);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn secrets_stay_out_of_the_output(backend: Backend) {
    let database_password = evon_crypto::random_password(24);
    let hub = Hub::new(backend, &database_password);
    let mut secrets = Secrets::default();
    if backend == Backend::Postgres {
        secrets.text("database password", &database_password);
    }
    let mut transcript = Transcript(Vec::new());

    // init: the credentials go to stdout, shown once; nothing secret on stderr.
    let init = hub.run(&["init", "--json", "--domain", "hub.example.com"], &[], "");
    assert!(
        init.status.success(),
        "init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    transcript.keep("init", &init, true);
    let credentials: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();
    let admin_password = credentials["admin_password"].as_str().unwrap().to_owned();
    let admin_token = credentials["admin_token"].as_str().unwrap().to_owned();
    let deployer = credentials["deployer_token"].as_str().unwrap().to_owned();
    secrets.text("admin password", &admin_password);
    secrets.text("admin token", &admin_token);
    secrets.text("deployer token", &deployer);
    secrets.bytes(
        "hub key",
        &std::fs::read(hub.data_dir().join("hub.key")).unwrap(),
    );
    let pki = Pki::load(&hub.data_dir().join("pki")).unwrap();
    for (kind, key) in [
        ("CA key", pki.ca_key()),
        ("hub server key", pki.server_key()),
        ("shared endpoint key", pki.endpoint_key()),
        ("user client key", pki.user_key()),
        ("tls-crypt key", pki.static_key()),
    ] {
        secrets.key(kind, key);
    }

    // serve, at the most verbose level.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let stdout = hub.dir.path().join("serve.stdout");
    let stderr = hub.dir.path().join("serve.stderr");
    let child = hub
        .command(
            &[
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &url,
            ],
            &[],
        )
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let serving = Serving {
        child,
        stdout,
        stderr,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the hub did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A user with a password; its token; a password change; refusals that carry secrets.
    let alice_password = evon_crypto::random_password(20);
    secrets.text("alice's password", &alice_password);
    let created = json(
        port,
        "POST",
        "/api/user",
        &admin_token,
        &serde_json::json!({"username": "alice", "password": alice_password}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let alice_token = created.json()["token"].as_str().unwrap().to_owned();
    secrets.text("alice's token", &alice_token);
    let alice_id = created.json()["id"].as_i64().unwrap();
    let refused_password = evon_crypto::random_password(20);
    secrets.text("a refused password", &refused_password);
    let refused = json(
        port,
        "POST",
        "/api/user",
        &admin_token,
        &serde_json::json!({"username": "not valid!", "password": refused_password}),
    );
    assert_eq!(refused.status, 400);
    let stranger = evon_crypto::ApiToken::generate();
    secrets.text("a token nobody holds", stranger.reveal());
    assert_eq!(
        request(port, "GET", "/api/user", stranger.reveal(), "", b"").status,
        401
    );
    assert_eq!(
        json(
            port,
            "PATCH",
            "/api/user/1",
            &alice_token,
            &serde_json::json!({"password": refused_password}),
        )
        .status,
        403
    );

    // The bootstrap: downloads, the sealed secrets opened, a tampered payload refused.
    let script = request(port, "GET", "/api/bootstrap/linux", &deployer, "", b"");
    assert_eq!(script.status, 200);
    assert_eq!(script.header("cache-control"), Some("no-store"));
    let sealed = script
        .text()
        .lines()
        .find_map(|line| {
            line.strip_prefix("EVON_SEALED_SECRETS='")
                .and_then(|rest| rest.strip_suffix('\''))
                .map(str::to_owned)
        })
        .expect("bootstrap.sh embeds the sealed secrets");
    let (content_type, body) = multipart(sealed.as_bytes());
    let opened = request(
        port,
        "POST",
        "/api/bootstrap/decrypt",
        &deployer,
        &content_type,
        &body,
    );
    assert_eq!(opened.status, 200, "{}", opened.text());
    assert_eq!(opened.header("cache-control"), Some("no-store"));
    secrets.key("decrypted bootstrap secret", &opened.text());
    let mut tampered = sealed.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let (content_type, body) = multipart(&tampered);
    let refused = request(
        port,
        "POST",
        "/api/bootstrap/decrypt",
        &deployer,
        &content_type,
        &body,
    );
    assert_eq!(refused.status, 400);
    for path in ["/api/bootstrap/raw", "/api/ovpnclient/download"] {
        let download = request(port, "GET", path, &admin_token, "", b"");
        assert_eq!(download.status, 200, "{path}");
        assert_eq!(download.header("cache-control"), Some("no-store"), "{path}");
    }
    // A request actix itself refuses, before the application sees it, names no server either.
    let malformed = exchange(
        port,
        b"GET /api/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n",
    );
    assert!(malformed.status >= 400, "{}", malformed.head);
    assert!(malformed.header("server").is_none(), "{}", malformed.head);

    // The CLI: the admin's token rotated (the new one on stdout only), a password set.
    let rotated = hub.run(&["token", "rotate", "admin", "--json"], &[], "");
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    transcript.keep("token rotate", &rotated, true);
    let new_admin: serde_json::Value = serde_json::from_slice(&rotated.stdout).unwrap();
    let new_admin = new_admin["token"].as_str().unwrap().to_owned();
    secrets.text("rotated admin token", &new_admin);
    // `serve` learns of a change made by another process when it next polls the generation.
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(port, "GET", "/api/ping", &admin_token, "", b"").status != 401 {
        assert!(
            Instant::now() < deadline,
            "the rotated-out token still works"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        request(port, "GET", "/api/ping", &new_admin, "", b"").status,
        200
    );

    let cli_password = evon_crypto::random_password(20);
    secrets.text("password set by the CLI", &cli_password);
    let set = hub.run(
        &["user", "set-password", "alice"],
        &[],
        &format!("{cli_password}\n"),
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    transcript.keep("user set-password", &set, false);
    let too_long = evon_crypto::random_password(200);
    secrets.text("a password too long", &too_long);
    let set = hub.run(
        &["user", "set-password", "alice"],
        &[],
        &format!("{too_long}\n"),
    );
    assert!(!set.status.success());
    transcript.keep("user set-password (too long)", &set, false);

    // The hooks: the user's password right and wrong, and a server joining.
    let wrong = evon_crypto::random_password(20);
    secrets.text("a wrong password", &wrong);
    for (password, allowed) in [
        (&cli_password, true),
        (&alice_password, false),
        (&wrong, false),
    ] {
        let output = hub.run(
            &["openvpn", "user-auth"],
            &[("username", "alice"), ("password", password)],
            "",
        );
        assert_eq!(
            output.status.success(),
            allowed,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        transcript.keep("openvpn user-auth", &output, false);
    }
    let server = hub.run(
        &["openvpn", "server-auth"],
        &[
            ("username", "00000001-0000-4000-8000-000000000001"),
            ("password", "web1"),
        ],
        "",
    );
    assert!(
        server.status.success(),
        "{}",
        String::from_utf8_lossy(&server.stderr)
    );
    transcript.keep("openvpn server-auth", &server, false);

    // A deleted user's token is refused without being repeated.
    assert_eq!(
        request(
            port,
            "DELETE",
            &format!("/api/user/{alice_id}"),
            &new_admin,
            "",
            b""
        )
        .status,
        204
    );
    assert_eq!(
        request(port, "GET", "/api/ping", &alice_token, "", b"").status,
        401
    );

    let (serve_stdout, serve_stderr) = serving.stop();
    assert!(
        serve_stderr.contains("Evon Hub listening")
            && serve_stderr.contains("/api/bootstrap/decrypt"),
        "serve logged its requests: the search below would prove nothing otherwise"
    );
    transcript.0.push(("stderr of serve".into(), serve_stderr));
    transcript.0.push(("stdout of serve".into(), serve_stdout));
    let leaks: Vec<String> = transcript
        .0
        .iter()
        .flat_map(|(source, text)| secrets.leaks(source, text))
        .collect();
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}

#[test]
fn secrets_stay_out_of_the_output_sqlite() {
    secrets_stay_out_of_the_output(Backend::Sqlite);
}

#[test]
fn secrets_stay_out_of_the_output_postgres() {
    secrets_stay_out_of_the_output(Backend::Postgres);
}

/// The search finds what it looks for, in every form, and redacts it in its report.
#[test]
fn the_search_finds_a_planted_secret() {
    let mut secrets = Secrets::default();
    let secret = evon_crypto::random_password(24);
    secrets.text("planted", &secret);
    secrets.bytes("planted key", &[7u8; 32]);
    assert!(secrets.leaks("a clean log", "nothing here\n").is_empty());
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let base64 = base64_unpadded(format!("xy{secret}z").as_bytes());
    let log = format!(
        "line one\nsecret={secret}\nhex={hex}\nwrapped={base64}\nkey={}\n",
        base64_unpadded(&[7u8; 32])
    );
    let leaks = secrets.leaks("a planted log", &log);
    for form in [
        "planted (raw)",
        "planted (hex)",
        "planted (base64)",
        "planted key (base64)",
    ] {
        assert!(
            leaks.iter().any(|l| l.starts_with(form)),
            "{form}: {leaks:?}"
        );
    }
    assert!(leaks.iter().all(|l| !l.contains(&secret)), "{leaks:?}");
}
