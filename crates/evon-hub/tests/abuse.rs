//! Hostile clients against a real `evon-hub serve` on loopback: bodies at and over the limits
//! (declared, chunked, lying about their length, never ending their multipart framing),
//! slow-loris heads and trickled bodies, and a flood of wrong tokens. Throughout, a legitimate
//! client's requests must all succeed. Its latency before and during each attack, the flood's
//! rate and the hub's memory are printed (`-- --nocapture`), never asserted: speed is measured,
//! not tested. Every test runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use evon_store::test_support::TestDatabase;
use evon_store::{Backend, DatabaseUrl};
use serde_json::{json, Value};

const HUB: &str = env!("CARGO_BIN_EXE_evon-hub");
const BODY_LIMIT: usize = evon_http::BODY_LIMIT;
/// The decrypt route's limit on its multipart fields (`routes::bootstrap::DECRYPT_LIMIT`).
const DECRYPT_LIMIT: usize = 64 * 1024;
const BODY_DEADLINE: Duration = evon_http::body::BODY_DEADLINE;
/// However the hub closes a hostile connection, it must have done so by then.
const CLOSE_BOUND: Duration = Duration::from_secs(30);

/// The tests that print latencies take turns, so that one's load does not show in another's
/// figures (and the two-core CI machine is not asked to run two attacks at once).
static ONE_ATTACK_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_attack_at_a_time() -> MutexGuard<'static, ()> {
    ONE_ATTACK_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The hub
// ---------------------------------------------------------------------------------------------

/// A freshly initialised `evon-hub serve` on a free loopback port, killed when dropped.
struct Hub {
    child: Child,
    port: u16,
    admin: String,
    deployer: String,
    stderr: Option<JoinHandle<String>>,
    _data: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

impl Hub {
    fn start(backend: Backend) -> Hub {
        let data = tempfile::tempdir().unwrap();
        let data_dir = data.path().to_str().unwrap().to_owned();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(TestDatabase::new(Backend::Postgres)),
        };
        let database_args: Vec<String> = match database.as_ref().map(TestDatabase::url) {
            Some(DatabaseUrl::Postgres(url)) => vec!["--database-url".into(), url.clone()],
            Some(other) => panic!("not a PostgreSQL database: {other:?}"),
            None => Vec::new(),
        };
        let init = Command::new(HUB)
            .args(["init", "--json", "--data-dir", &data_dir])
            .args(&database_args)
            .env("EVON_HUB_LOG", "warn")
            .env_remove("EVON_HUB_DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let credentials: Value = serde_json::from_slice(&init.stdout).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(HUB)
            .args(["serve", "--data-dir", &data_dir])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(&database_args)
            // The shipped default level, so that what an operator's log would show is checked.
            .env_remove("EVON_HUB_LOG")
            .env_remove("EVON_HUB_DATABASE_URL")
            // `serve` keeps the kernel's firewall by default; these tests run on the host's kernel.
            .env("EVON_HUB_FIREWALL", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let hub = Hub {
            child,
            port,
            admin: credentials["admin_token"].as_str().unwrap().to_owned(),
            deployer: credentials["deployer_token"].as_str().unwrap().to_owned(),
            stderr: Some(stderr),
            _data: data,
            _database: database,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let agent = agent();
        loop {
            if let Ok((200, _)) = get(&agent, hub.port, "/api/ping", &hub.admin) {
                break;
            }
            assert!(Instant::now() < deadline, "the hub did not start serving");
            std::thread::sleep(Duration::from_millis(50));
        }
        hub
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The serve process's resident memory, in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Kills the hub and checks it neither panicked nor logged an error (every 5xx logs one).
    fn finish(mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the hub exited during the test"
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("ERROR"), "{stderr}");
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// A well-behaved client
// ---------------------------------------------------------------------------------------------

/// An HTTP client that keeps its connections alive, answers every status, and gives up on a
/// request after 10 s.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

fn get(agent: &ureq::Agent, port: u16, path: &str, token: &str) -> Result<(u16, String), String> {
    let mut response = agent
        .get(format!("http://127.0.0.1:{port}{path}"))
        .header("Authorization", format!("Token {token}"))
        .call()
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {path}: reading the body: {e}"))?;
    Ok((status, body))
}

/// A legitimate admin doing `GET /api/ping` and `GET /api/server` in a loop on its own thread,
/// timing each request, until stopped.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Vec<Duration>, Vec<String>)>,
}

impl Probe {
    fn start(hub: &Hub) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let (port, token, flag) = (hub.port, hub.admin.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let agent = agent();
            let (mut latencies, mut failures) = (Vec::new(), Vec::new());
            while !flag.load(Ordering::Relaxed) {
                for (path, expected) in [("/api/ping", "pong"), ("/api/server", "\"results\"")] {
                    let started = Instant::now();
                    match get(&agent, port, path, &token) {
                        Ok((200, body)) if body.contains(expected) => {
                            latencies.push(started.elapsed());
                        }
                        Ok((status, body)) => failures.push(format!("GET {path}: {status} {body}")),
                        Err(error) => failures.push(error),
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (latencies, failures)
        });
        Probe { stop, thread }
    }

    /// Stops the loop; asserts every request succeeded and returns their latencies.
    fn finish(self, phase: &str) -> Latencies {
        self.stop.store(true, Ordering::Relaxed);
        let (latencies, failures) = self.thread.join().unwrap();
        assert!(
            failures.is_empty(),
            "{phase}: {} of the legitimate client's requests failed, e.g. {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(
            !latencies.is_empty(),
            "{phase}: the legitimate client got nothing done"
        );
        Latencies(latencies)
    }

    /// The legitimate client's latencies over `duration` with nothing else going on.
    fn baseline(hub: &Hub, duration: Duration) -> Latencies {
        let probe = Probe::start(hub);
        std::thread::sleep(duration);
        probe.finish("baseline")
    }
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn percentile(&self, percent: usize) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)]
    }

    fn describe(&self) -> String {
        format!(
            "{} requests, p50 {:.2} ms, p99 {:.2} ms",
            self.0.len(),
            self.percentile(50).as_secs_f64() * 1e3,
            self.percentile(99).as_secs_f64() * 1e3
        )
    }
}

fn report(backend: Backend, attack: &str, before: &Latencies, during: &Latencies) {
    println!(
        "[{backend:?}] {attack}: legitimate client before: {}; during: {}",
        before.describe(),
        during.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

#[derive(Debug)]
struct Response {
    status: u16,
    /// The head, lower-cased.
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn closes(&self) -> bool {
        self.head.contains("\r\nconnection: close")
    }
}

/// Parses one response from the start of `data`: the response and the bytes it took, or `None`
/// while it is incomplete. The hub always answers with a length.
fn parse_response(data: &[u8]) -> Option<(Response, usize)> {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap());
    let body = data.get(end..end + length)?.to_vec();
    Some((Response { status, head, body }, end + length))
}

/// Reads responses until the server closes the connection (or resets it): every complete
/// response, and whether the stream ended within the read timeout.
fn read_until_closed(stream: &mut TcpStream) -> (Vec<Response>, bool) {
    let mut data = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => data.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false
            }
            Err(e) => panic!("reading a response: {e}"),
        }
    };
    let mut responses = Vec::new();
    let mut rest = &data[..];
    while let Some((response, used)) = parse_response(rest) {
        responses.push(response);
        rest = &rest[used..];
    }
    (responses, closed)
}

/// Reads exactly one response, leaving the connection open.
fn read_response(stream: &mut TcpStream) -> Response {
    let mut data = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if let Some((response, _)) = parse_response(&data) {
            return response;
        }
        let n = stream.read(&mut buffer).unwrap();
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&buffer[..n]);
    }
}

fn head(method: &str, path: &str, token: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n{extra}\r\n")
}

/// Sends a request whole, ignoring a failed write (the server may answer and close before the
/// body is all sent), and reads the first response.
fn exchange(port: u16, request: &[u8]) -> Response {
    let mut stream = connect(port);
    let _ = stream.write_all(request);
    read_response(&mut stream)
}

/// A request with a JSON body of exactly `length` bytes: `{"name": …}` padded with spaces.
fn padded_group(token: &str, name: &str, length: usize) -> Vec<u8> {
    let mut body =
        format!(r#"{{"name": "{name}", "permissions": [], "user_set": []}}"#).into_bytes();
    body.resize(length, b' ');
    let mut request = head(
        "POST",
        "/api/group",
        token,
        &format!("Content-Type: application/json\r\nContent-Length: {length}\r\n"),
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

const BOUNDARY: &str = "evonabuseboundary";

fn multipart_field(data: &[u8]) -> Vec<u8> {
    let mut body = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n")
        .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn decrypt_request(token: &str, body: &[u8]) -> Vec<u8> {
    let mut request = head(
        "POST",
        "/api/bootstrap/decrypt",
        token,
        &format!(
            "Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n",
            body.len()
        ),
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// How long a flood keeps sending at most. A hub that drained a refused body would take it all
/// this time; one that closes takes it only for actix's linger after the answer
/// (`client_disconnect_timeout`, 1 s), however fast loopback carries it.
const FLOOD_FOR: Duration = Duration::from_secs(20);

/// What a chunked flood saw: the answer, the bytes the hub took, and how long after the answer
/// it went on taking them.
struct Flood {
    response: Response,
    sent: usize,
    taken_after_answer: Duration,
}

/// Streams `filler` as a chunked body after `request_head`, for up to [`FLOOD_FOR`] or until the
/// hub stops taking it, while reading the answer.
fn chunked_flood(port: u16, request_head: &str, filler: u8) -> Flood {
    let mut stream = connect(port);
    stream.write_all(request_head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![filler; 64 * 1024];
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        let started = Instant::now();
        let mut sent = 0;
        while started.elapsed() < FLOOD_FOR {
            if writer.write_all(&frame).is_err() {
                break;
            }
            sent += chunk.len();
        }
        (sent, Instant::now())
    });
    let response = read_response(&mut stream);
    let answered = Instant::now();
    let (sent, stopped) = sender.join().unwrap();
    Flood {
        response,
        sent,
        taken_after_answer: stopped.saturating_duration_since(answered),
    }
}

/// The flood was refused with 413, on a connection the hub closed within a few seconds of its
/// answer (not read to the end), and without the hub's memory growing with it.
fn assert_flood_refused(backend: Backend, what: &str, flood: &Flood, grown_mib: u64) {
    assert_eq!(flood.response.status, 413);
    assert!(flood.response.closes(), "{}", flood.response.head);
    println!(
        "[{backend:?}] {what}: 413; the hub took {} MiB, for {} ms after its answer; memory grew {grown_mib} MiB",
        flood.sent >> 20,
        flood.taken_after_answer.as_millis()
    );
    assert!(
        flood.taken_after_answer < Duration::from_secs(5),
        "the hub went on reading a refused {what} for {:?} after answering",
        flood.taken_after_answer
    );
    assert!(
        grown_mib < 32,
        "the hub grew {grown_mib} MiB on a refused {what}"
    );
}

// ---------------------------------------------------------------------------------------------
// Body limits
// ---------------------------------------------------------------------------------------------

fn body_limits(backend: Backend) {
    let _turn = one_attack_at_a_time();
    let hub = Hub::start(backend);
    let (port, admin) = (hub.port, hub.admin.as_str());
    let too_large = json!({
        "detail": format!("Request body is larger than the limit of {BODY_LIMIT} bytes.")
    });

    // Exactly the limit is read and acted on; one byte more is refused from Content-Length.
    let response = exchange(port, &padded_group(admin, "at-the-limit", BODY_LIMIT));
    assert_eq!(response.status, 201, "{:?}", response.json());
    assert_eq!(response.json()["name"], "at-the-limit");
    let response = exchange(port, &padded_group(admin, "over-the-limit", BODY_LIMIT + 1));
    assert_eq!(response.status, 413);
    assert_eq!(response.json(), too_large);
    assert!(response.closes(), "{}", response.head);

    // A chunked body has no length to refuse it by: it is counted as it comes, and the hub stops
    // reading it at the limit, however much more the client goes on sending.
    let rss_before = hub.rss_kib();
    let flood_head = head(
        "POST",
        "/api/group",
        admin,
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
    );
    let flood = chunked_flood(port, &flood_head, b' ');
    assert_eq!(flood.response.json(), too_large);
    let grown_mib = hub.rss_kib().saturating_sub(rss_before) / 1024;
    assert_flood_refused(backend, "chunked JSON body", &flood, grown_mib);

    // The decrypt route's fields: 64 KiB is read (and fails to open), one byte more is 413.
    let response = exchange(
        port,
        &decrypt_request(&hub.deployer, &multipart_field(&vec![b'A'; DECRYPT_LIMIT])),
    );
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        json!({"status": "error", "message": "failed to decrypt payload"})
    );
    let response = exchange(
        port,
        &decrypt_request(
            &hub.deployer,
            &multipart_field(&vec![b'A'; DECRYPT_LIMIT + 1]),
        ),
    );
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["status"], "error");
    // A multipart body that never ends its boundary line (or a part's headers) would be held
    // whole by the multipart parser; the hub counts the raw body and stops.
    let rss_before = hub.rss_kib();
    let decrypt_head = head(
        "POST",
        "/api/bootstrap/decrypt",
        &hub.deployer,
        &format!(
            "Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n"
        ),
    );
    let flood = chunked_flood(port, &decrypt_head, b'A');
    assert_eq!(flood.response.json()["status"], "error");
    let grown_mib = hub.rss_kib().saturating_sub(rss_before) / 1024;
    assert_flood_refused(backend, "unframed multipart body", &flood, grown_mib);
    // Declared too large, it is refused before reading.
    let mut request = head(
        "POST",
        "/api/bootstrap/decrypt",
        &hub.deployer,
        &format!(
            "Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n",
            BODY_LIMIT
        ),
    )
    .into_bytes();
    request.extend_from_slice(&multipart_field(&[b'A'; 16]));
    let response = exchange(port, &request);
    assert_eq!(response.status, 413);

    // A Content-Length that claims less than is sent: the body is the declared bytes, and the
    // rest is read as the next request, which is garbage (400) and ends the connection.
    let mut stream = connect(port);
    let mut request = head(
        "POST",
        "/api/group",
        admin,
        "Content-Type: application/json\r\nContent-Length: 2\r\n",
    )
    .into_bytes();
    request.extend_from_slice(br#"{}{"name": "smuggled"}"#);
    stream.write_all(&request).unwrap();
    let (responses, closed) = read_until_closed(&mut stream);
    assert!(closed, "the hub kept a connection carrying garbage open");
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert_eq!(responses[0].status, 400);
    assert_eq!(
        responses[0].json()["name"],
        json!(["This field is required."])
    );
    assert_eq!(responses[1].status, 400);
    // (A Content-Length that claims more than is sent is a stalled body: `slow_clients`.)

    // Nothing of this was created, and an ordinary client is served as before.
    let agent = agent();
    let (status, body) = get(&agent, port, "/api/group", admin).unwrap();
    assert_eq!(status, 200, "{body}");
    let groups: Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<&str> = groups["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["All Users", "at-the-limit"]);
    assert_eq!(get(&agent, port, "/api/ping", admin).unwrap().0, 200);
    hub.finish();
}

#[test]
fn body_limits_sqlite() {
    body_limits(Backend::Sqlite);
}

#[test]
fn body_limits_postgres() {
    body_limits(Backend::Postgres);
}

// ---------------------------------------------------------------------------------------------
// Slow clients
// ---------------------------------------------------------------------------------------------

/// What a slow connection does, and what the hub must answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slowness {
    /// Its first request head, a byte a second, never finished: 408 after the head timeout.
    Head,
    /// One prompt request, then the next head a byte a second. actix times out only a
    /// connection's first head, so the hub holds these; they must not starve anyone.
    HeadAfterKeepAlive,
    /// A complete head, then the JSON body a byte a second: 408 after the body deadline.
    Body,
    /// A Content-Length that claims more than is sent: the same 408.
    StalledBody,
    /// A chunked body in one-byte chunks, each sent a byte a second.
    ChunkedBody,
    /// The decrypt route's multipart body a byte a second: 408 in the bootstrap routes' shape.
    MultipartBody,
    /// A slow body without a token: refused (401) before any of it is read.
    AnonymousBody,
    /// The same, chunked (which actix would otherwise go on draining).
    AnonymousChunkedBody,
}

struct SlowConnection {
    slowness: Slowness,
    stream: TcpStream,
    /// What it sends a byte a tick; once through, it repeats `filler`.
    trickle: Vec<u8>,
    filler: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
    opened: Instant,
    closed_after: Option<Duration>,
}

impl SlowConnection {
    fn open(hub: &Hub, slowness: Slowness) -> SlowConnection {
        let mut stream = connect(hub.port);
        let json_head = |token: &str, framing: &str| {
            head(
                "POST",
                "/api/group",
                token,
                &format!("Content-Type: application/json\r\n{framing}"),
            )
        };
        let (prelude, trickle, filler): (String, &str, &str) = match slowness {
            Slowness::Head | Slowness::HeadAfterKeepAlive => (
                String::new(),
                "GET /api/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
                "a",
            ),
            Slowness::Body => (
                json_head(&hub.admin, "Content-Length: 100000\r\n"),
                r#"{"name": ""#,
                "a",
            ),
            Slowness::StalledBody => (
                json_head(&hub.admin, "Content-Length: 100\r\n") + r#"{"name": "s"#,
                "",
                "",
            ),
            Slowness::ChunkedBody => (
                json_head(&hub.admin, "Transfer-Encoding: chunked\r\n"),
                "1\r\n{\r\n",
                "1\r\n \r\n",
            ),
            Slowness::MultipartBody => (
                head(
                    "POST",
                    "/api/bootstrap/decrypt",
                    &hub.deployer,
                    &format!(
                        "Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 60000\r\n"
                    ),
                ),
                "--evonabuseboundary\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n",
                "A",
            ),
            Slowness::AnonymousBody => (
                "POST /api/group HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n".to_owned(),
                "{",
                " ",
            ),
            Slowness::AnonymousChunkedBody => (
                "POST /api/group HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
                "1\r\n{\r\n",
                "1\r\n \r\n",
            ),
        };
        if slowness == Slowness::HeadAfterKeepAlive {
            stream
                .write_all(b"GET /api/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            let response = read_response(&mut stream);
            assert_eq!(response.status, 401);
            assert!(!response.closes(), "{}", response.head);
        }
        stream.write_all(prelude.as_bytes()).unwrap();
        stream.set_nonblocking(true).unwrap();
        SlowConnection {
            slowness,
            stream,
            trickle: trickle.as_bytes().to_vec(),
            filler: filler.as_bytes().to_vec(),
            sent: 0,
            received: Vec::new(),
            opened: Instant::now(),
            closed_after: None,
        }
    }

    /// Sends its next byte and takes what the hub has answered; notes when the hub closes.
    fn tick(&mut self) {
        if self.closed_after.is_some() {
            return;
        }
        let next = if self.sent < self.trickle.len() {
            Some(self.trickle[self.sent])
        } else if self.filler.is_empty() {
            None
        } else {
            Some(self.filler[(self.sent - self.trickle.len()) % self.filler.len()])
        };
        let mut closed = false;
        if let Some(byte) = next {
            match self.stream.write(&[byte]) {
                Ok(_) => self.sent += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => closed = true,
            }
        }
        let mut buffer = [0u8; 4096];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => self.received.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            self.closed_after = Some(self.opened.elapsed());
        }
    }

    fn response(&self) -> Response {
        parse_response(&self.received)
            .map(|(response, _)| response)
            .unwrap_or_else(|| {
                panic!(
                    "{:?}: no complete answer before the hub closed: {:?}",
                    self.slowness,
                    String::from_utf8_lossy(&self.received)
                )
            })
    }

    /// Asserts the hub answered what this kind of slowness deserves.
    fn check_answer(&self) {
        let response = self.response();
        let body_timeout = json!({
            "detail": format!(
                "The request body was not received within {} seconds.",
                BODY_DEADLINE.as_secs()
            )
        });
        match self.slowness {
            Slowness::Head => assert_eq!(response.status, 408, "{response:?}"),
            Slowness::HeadAfterKeepAlive => unreachable!("the hub holds these"),
            Slowness::Body | Slowness::StalledBody | Slowness::ChunkedBody => {
                assert_eq!(response.status, 408, "{:?}: {response:?}", self.slowness);
                assert_eq!(response.json(), body_timeout);
            }
            Slowness::MultipartBody => {
                assert_eq!(response.status, 408, "{response:?}");
                assert_eq!(
                    response.json(),
                    json!({
                        "status": "error",
                        "message": format!(
                            "payload not received within {} seconds",
                            BODY_DEADLINE.as_secs()
                        )
                    })
                );
            }
            Slowness::AnonymousBody | Slowness::AnonymousChunkedBody => {
                assert_eq!(response.status, 401, "{response:?}");
                assert_eq!(
                    response.json(),
                    json!({"detail": "Authentication credentials were not provided."})
                );
            }
        }
    }
}

fn slow_clients(backend: Backend) {
    let _turn = one_attack_at_a_time();
    let hub = Hub::start(backend);
    let before = Probe::baseline(&hub, Duration::from_secs(2));
    let probe = Probe::start(&hub);
    let plan = [
        (Slowness::Head, 300),
        (Slowness::HeadAfterKeepAlive, 50),
        (Slowness::Body, 20),
        (Slowness::StalledBody, 10),
        (Slowness::ChunkedBody, 10),
        (Slowness::MultipartBody, 10),
        (Slowness::AnonymousBody, 10),
        (Slowness::AnonymousChunkedBody, 10),
    ];
    let mut connections: Vec<SlowConnection> = plan
        .iter()
        .flat_map(|&(slowness, count)| std::iter::repeat_n(slowness, count))
        .map(|slowness| SlowConnection::open(&hub, slowness))
        .collect();
    let started = Instant::now();
    let must_close = |c: &SlowConnection| c.slowness != Slowness::HeadAfterKeepAlive;
    while started.elapsed() < CLOSE_BOUND
        && connections
            .iter()
            .any(|c| must_close(c) && c.closed_after.is_none())
    {
        connections.iter_mut().for_each(SlowConnection::tick);
        std::thread::sleep(Duration::from_secs(1));
    }
    let attack = started.elapsed();
    connections.iter_mut().for_each(SlowConnection::tick);
    let during = probe.finish("slow clients");
    // The hub is still fully usable once the attack is over.
    let agent = agent();
    assert_eq!(
        get(&agent, hub.port, "/api/ping", &hub.admin).unwrap().0,
        200
    );

    report(
        backend,
        &format!(
            "{} slow connections for {:.0} s",
            connections.len(),
            attack.as_secs_f64()
        ),
        &before,
        &during,
    );
    for &(slowness, _) in &plan {
        let of_kind: Vec<&SlowConnection> = connections
            .iter()
            .filter(|c| c.slowness == slowness)
            .collect();
        let closed: Vec<Duration> = of_kind.iter().filter_map(|c| c.closed_after).collect();
        let slowest = closed.iter().max().copied().unwrap_or_default();
        println!(
            "[{backend:?}] {slowness:?}: {} of {} closed by the hub, the last after {:.1} s",
            closed.len(),
            of_kind.len(),
            slowest.as_secs_f64()
        );
        if slowness == Slowness::HeadAfterKeepAlive {
            continue;
        }
        assert_eq!(
            closed.len(),
            of_kind.len(),
            "{slowness:?}: the hub left slow connections open for {CLOSE_BOUND:?}"
        );
        of_kind.iter().for_each(|c| c.check_answer());
    }
    drop(connections);
    hub.finish();
}

#[test]
fn slow_clients_sqlite() {
    slow_clients(Backend::Sqlite);
}

#[test]
fn slow_clients_postgres() {
    slow_clients(Backend::Postgres);
}

// ---------------------------------------------------------------------------------------------
// Wrong tokens
// ---------------------------------------------------------------------------------------------

const FLOOD_REQUESTS: usize = 10_000;
const FLOOD_CLIENTS: usize = 8;

fn wrong_token_flood(backend: Backend) {
    let _turn = one_attack_at_a_time();
    let hub = Hub::start(backend);
    let before = Probe::baseline(&hub, Duration::from_secs(2));
    let rss_before = hub.rss_kib();
    let probe = Probe::start(&hub);
    let started = Instant::now();
    let port = hub.port;
    let flooders: Vec<JoinHandle<Vec<String>>> = (0..FLOOD_CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let agent = agent();
                let invalid = json!({"detail": "Invalid token."});
                let mut wrong = Vec::new();
                for i in 0..FLOOD_REQUESTS / FLOOD_CLIENTS {
                    let path = ["/api/ping", "/api/server", "/api/user/1"][i % 3];
                    let token = evon_crypto::ApiToken::generate();
                    match get(&agent, port, path, token.reveal()) {
                        Ok((401, body))
                            if serde_json::from_str::<Value>(&body).ok().as_ref()
                                == Some(&invalid) => {}
                        other => wrong.push(format!("{path}: {other:?}")),
                    }
                }
                wrong
            })
        })
        .collect();
    let wrong: Vec<String> = flooders
        .into_iter()
        .flat_map(|flooder| flooder.join().unwrap())
        .collect();
    let flood = started.elapsed();
    let during = probe.finish("wrong-token flood");
    let rss_after = hub.rss_kib();

    report(
        backend,
        &format!(
            "{FLOOD_REQUESTS} wrong tokens from {FLOOD_CLIENTS} clients at {:.0} req/s",
            FLOOD_REQUESTS as f64 / flood.as_secs_f64()
        ),
        &before,
        &during,
    );
    println!(
        "[{backend:?}] hub memory {} MiB before the flood, {} MiB after",
        rss_before / 1024,
        rss_after / 1024
    );
    assert!(
        wrong.is_empty(),
        "{} wrong-token requests were not answered 401 \"Invalid token.\", e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    // A generous sanity bound: it catches wrong tokens being remembered, not a leak of bytes.
    let grown_mib = rss_after.saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 100,
        "the hub grew {grown_mib} MiB answering wrong tokens"
    );
    hub.finish();
}

#[test]
fn wrong_token_flood_sqlite() {
    wrong_token_flood(Backend::Sqlite);
}

#[test]
fn wrong_token_flood_postgres() {
    wrong_token_flood(Backend::Postgres);
}
