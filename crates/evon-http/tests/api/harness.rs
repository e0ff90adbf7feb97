//! One harness for every API test: a fresh database, an initialised hub, and requests sent
//! through the real application in-process.
//!
//! It also watches for leaked secrets. The whole test binary logs at DEBUG, every target, into
//! one in-memory buffer ([`secrets`]); each `TestApp` registers every secret its test makes or
//! sees (the hub's tokens, keys and admin password, passwords sent in request bodies, tokens
//! answered at creation, private keys in downloads and decrypted payloads) and, when it is
//! dropped, fails the test if any of them appears in a log line written since it started, in an
//! error (4xx/5xx) body it received, or (for passwords) in any body at all.

use actix_web::http::{header, Method, StatusCode};
use actix_web::{test, web};
use evon_crypto::pki::Pki;
use evon_crypto::{hash_password, ApiToken, HubKey};
use evon_domain::artifacts::HubEndpoints;
use evon_domain::config::HubSettings;
use evon_domain::SubnetKey;
use evon_http::bootstrap::Bootstrap;
use evon_http::AppState;
use evon_store::hub::InitRequest;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, OpenMode, PoolOptions, Store};
use serde_json::{json, Value};

use self::secrets::Secrets;

/// Runs each listed `async fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn sqlite() {
                    super::$name(evon_store::Backend::Sqlite).await
                }
                #[actix_web::test]
                async fn postgres() {
                    super::$name(evon_store::Backend::Postgres).await
                }
            }
        )*
    };
}

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub struct TestApp {
    pub state: web::Data<AppState>,
    pki: Pki,
    pub admin: String,
    pub deployer: String,
    secrets: Secrets,
    _db: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that already failed has said what went wrong; a second panic would abort.
        if std::thread::panicking() {
            return;
        }
        let leaks = self.secrets.leaks();
        assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    }
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        let secrets = Secrets::start();
        let db = TestDatabase::new(backend);
        let store = Store::open(db.url(), OpenMode::CreateIfMissing, &PoolOptions::default())
            .expect("open test store");
        let settings = HubSettings {
            domain: "hub.example.com".into(),
            subnet_key: SubnetKey::new(111),
        };
        let admin = ApiToken::generate();
        let deployer = ApiToken::generate();
        let request = InitRequest {
            settings: settings.clone(),
            admin_password_hash: hash_password(ADMIN_PASSWORD).unwrap(),
            admin_token: admin.digest(),
            deployer_token: deployer.digest(),
        };
        store
            .write(|conn| evon_store::hub::initialise(conn, &request))
            .expect("initialise test hub");
        let pki = Pki::generate(&settings.domain).expect("test PKI");
        let endpoints = HubEndpoints {
            domain: settings.domain.clone(),
            public_host: settings.domain.clone(),
            api_url: "http://hub.example.com".into(),
            server_port: 1194,
            user_port: 1194,
            subnet_key: settings.subnet_key,
        };
        let hub_key = HubKey::generate();
        secrets.register_bytes("hub key", hub_key.bytes());
        for (kind, key) in [
            ("CA key", pki.ca_key()),
            ("hub server key", pki.server_key()),
            ("shared endpoint key", pki.endpoint_key()),
            ("user client key", pki.user_key()),
            ("tls-crypt key", pki.static_key()),
        ] {
            secrets.register_key_material(kind, key);
        }
        secrets.register("admin token", admin.reveal());
        secrets.register("deployer token", deployer.reveal());
        secrets.register("admin password", ADMIN_PASSWORD);
        let bootstrap =
            Bootstrap::render(hub_key, &pki, &endpoints, "test").expect("render downloads");
        let state = web::Data::new(AppState::new(store, settings, None).with_bootstrap(bootstrap));
        Self {
            state,
            pki,
            admin: admin.reveal().to_owned(),
            deployer: deployer.reveal().to_owned(),
            secrets,
            _db: db,
        }
    }

    /// The leak watcher of this test: to register a secret the harness cannot see itself.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// A download's text, asserting it succeeds.
    pub async fn download(&self, path: &str, token: &str) -> String {
        let response = self.get(path).token(token).send_raw().await;
        assert_eq!(response.status, 200, "{path}");
        String::from_utf8(response.bytes.to_vec()).expect("downloads are text")
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Starts a request as admin.
    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            app: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
        .token(&self.admin.clone())
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.req(Method::GET, path)
    }

    pub fn post(&self, path: &str, body: Value) -> Req<'_> {
        self.req(Method::POST, path).json(body)
    }

    pub fn patch(&self, path: &str, body: Value) -> Req<'_> {
        self.req(Method::PATCH, path).json(body)
    }

    pub fn delete(&self, path: &str) -> Req<'_> {
        self.req(Method::DELETE, path)
    }

    /// Creates a user as admin and returns its id and token.
    pub async fn user(&self, username: &str, extra: Value) -> (i64, String) {
        let mut body = json!({"username": username, "password": "pass-word-1"});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let response = self.post("/api/user", body).send().await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "creating {username}: {}",
            response.body
        );
        (
            response.body["id"].as_i64().unwrap(),
            response.body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a group as admin and returns its id.
    pub async fn group(&self, name: &str, users: &[i64], permissions: &[i64]) -> i64 {
        let response = self
            .post(
                "/api/group",
                json!({"name": name, "user_set": users, "permissions": permissions}),
            )
            .send()
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "creating group {name}: {}",
            response.body
        );
        response.body["id"].as_i64().unwrap()
    }

    /// Registers a server as the OpenVPN hook does and returns its id.
    pub fn register(&self, uuid: &str, hostname: &str) -> i64 {
        let (uuid, hostname) = (uuid.to_owned(), hostname.to_owned());
        match self
            .store()
            .write(move |conn| evon_store::servers::register(conn, &uuid, &hostname))
            .unwrap()
        {
            evon_store::servers::Registration::Allowed { server, .. } => i64::from(server.id),
            refused => panic!("registration refused: {refused:?}"),
        }
    }

    /// The `n`th test server's UUID.
    pub fn uuid(n: u32) -> String {
        format!("{n:08x}-0000-4000-8000-000000000000")
    }

    /// A user holding exactly `permissions`, through a group made for it.
    pub async fn user_with(&self, username: &str, permissions: &[i64]) -> (i64, String) {
        let (id, token) = self.user(username, json!({})).await;
        self.group(&format!("{username} permissions"), &[id], permissions)
            .await;
        (id, token)
    }
}

pub struct Req<'a> {
    app: &'a TestApp,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn token(self, token: &str) -> Self {
        self.header("Authorization", &format!("Token {token}"))
    }

    pub fn anonymous(mut self) -> Self {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
        self
    }

    pub fn json(self, body: Value) -> Self {
        self.raw("application/json", serde_json::to_vec(&body).unwrap())
    }

    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.body = Some(body);
        if content_type.is_empty() {
            self.headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
            self
        } else {
            self.header("Content-Type", content_type)
        }
    }

    /// Sends the request and keeps the body as bytes (for downloads).
    pub async fn send_raw(self) -> RawResp {
        let (status, headers, bytes) = self.exchange().await;
        RawResp {
            status,
            headers,
            bytes,
        }
    }

    async fn exchange(self) -> (StatusCode, header::HeaderMap, web::Bytes) {
        let secrets = &self.app.secrets;
        if let Some(body) = &self.body {
            secrets.register_request_body(body);
        }
        let service = test::init_service(evon_http::app(self.app.state.clone())).await;
        let mut request = test::TestRequest::default()
            .method(self.method.clone())
            .uri(&self.path);
        for (name, value) in self.headers {
            request = request.insert_header((name, value));
        }
        if let Some(body) = self.body {
            request = request.set_payload(body);
        }
        let response = test::call_service(&service, request.to_request()).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = test::read_body(response).await;
        secrets.saw_response(&self.method, &self.path, status, &bytes);
        (status, headers, bytes)
    }

    pub async fn send(self) -> Resp {
        let (status, headers, bytes) = self.exchange().await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("response is not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        Resp {
            status,
            headers,
            body,
            raw_len: bytes.len(),
        }
    }
}

pub struct RawResp {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub bytes: web::Bytes,
}

impl RawResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn expect_status(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status");
        self
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: Value,
    pub raw_len: usize,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, then returns the body.
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }
}

/// Snapshots a JSON body with ids and secrets redacted. Snapshots are shared by both backends.
pub fn snapshot(name: &str, body: &Value) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::assert_json_snapshot!(name, body, {
            ".id" => insta::dynamic_redaction(is_id),
            ".userprofile_id" => insta::dynamic_redaction(is_id),
            ".results[].id" => insta::dynamic_redaction(is_id),
            ".results[].userprofile_id" => insta::dynamic_redaction(is_id),
            ".token" => insta::dynamic_redaction(is_token),
        });
    });
}

/// Snapshots a body whose ids are part of the contract (the permission catalogue).
pub fn snapshot_keeping_ids(name: &str, body: &Value) {
    insta::with_settings!({ prepend_module_to_snapshot => false, snapshot_path => "snapshots", omit_expression => true }, {
        insta::assert_json_snapshot!(name, body);
    });
}

fn is_id(value: insta::internals::Content, _: insta::internals::ContentPath<'_>) -> String {
    assert!(
        value.as_u64().is_some() || value.as_i64().is_some(),
        "id is not an integer: {value:?}"
    );
    "[id]".into()
}

fn is_token(value: insta::internals::Content, _: insta::internals::ContentPath<'_>) -> String {
    let token = value.as_str().unwrap_or_default();
    assert!(
        token.len() == 40
            && token
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "bad token {token:?}"
    );
    "[token]".into()
}

pub mod secrets {
    //! The leak watcher: one DEBUG log for the whole test binary, and per test the secrets to
    //! look for in it and in the bodies the test received.

    use std::io;
    use std::sync::{Mutex, MutexGuard, Once};

    use actix_web::http::{Method, StatusCode};
    use serde_json::Value;

    /// Everything logged by this test binary, at DEBUG and above, from every target (the `log`
    /// crate's records too, through tracing-subscriber's bridge).
    static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
    static INSTALL: Once = Once::new();

    /// Shorter strings would match by chance (and the suite's throw-away passwords like `pw`
    /// are not secrets anyone keeps); real tokens, keys and passwords are far longer.
    const SHORTEST: usize = 8;

    fn log() -> MutexGuard<'static, Vec<u8>> {
        LOG.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    struct LogWriter;

    impl io::Write for LogWriter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            log().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Installs the binary's one subscriber, first come first served.
    fn install() {
        INSTALL.call_once(|| {
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_target(true)
                .with_writer(|| LogWriter)
                .try_init()
                .expect("the API tests install the only tracing subscriber");
        });
    }

    /// How much has been logged so far.
    pub fn log_len() -> usize {
        log().len()
    }

    struct Secret {
        kind: String,
        /// What to search for: the secret and the forms it could be re-encoded into.
        needles: Vec<(&'static str, String)>,
    }

    struct Seen {
        request: String,
        status: StatusCode,
        body: String,
    }

    /// One test's secrets and the bodies it received.
    pub struct Secrets {
        log_start: usize,
        secrets: Mutex<Vec<Secret>>,
        seen: Mutex<Vec<Seen>>,
    }

    fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    impl Secrets {
        /// Starts watching: only log lines written from now on can hold this test's secrets.
        pub fn start() -> Self {
            install();
            Self {
                log_start: log_len(),
                secrets: Mutex::new(Vec::new()),
                seen: Mutex::new(Vec::new()),
            }
        }

        /// A secret given as text: looked for as is, escaped as `Debug` escapes it, and in
        /// base64 (any alignment) and hex.
        pub fn register(&self, kind: &str, secret: &str) {
            if secret.chars().count() < SHORTEST {
                return;
            }
            let mut needles = vec![("raw", secret.to_owned())];
            let escaped = secret.escape_debug().to_string();
            if escaped != secret {
                needles.push(("escaped", escaped));
            }
            needles.extend(encodings(secret.as_bytes()));
            self.add(kind, needles);
        }

        /// A secret given as bytes (the hub key): looked for in hex and base64.
        pub fn register_bytes(&self, kind: &str, secret: &[u8]) {
            self.add(kind, encodings(secret));
        }

        /// A PEM private key or an OpenVPN static key: each line of key material on its own,
        /// so that a key logged with its line breaks escaped is still found. The lines are
        /// base64 or hex already, so they are looked for as they are.
        pub fn register_key_material(&self, kind: &str, text: &str) {
            for line in key_lines(text) {
                if line.len() >= SHORTEST {
                    self.add(kind, vec![("key line", line.to_owned())]);
                }
            }
        }

        fn add(&self, kind: &str, needles: Vec<(&'static str, String)>) {
            let mut secrets = locked(&self.secrets);
            if secrets.iter().any(|s| s.needles == needles) {
                return;
            }
            secrets.push(Secret {
                kind: kind.to_owned(),
                needles,
            });
        }

        /// Forgets the secrets of one kind (for the test that plants a leak on purpose).
        pub fn forget(&self, kind: &str) {
            locked(&self.secrets).retain(|s| s.kind != kind);
        }

        /// Every `password` sent in a JSON body, at any depth.
        pub fn register_request_body(&self, body: &[u8]) {
            fn walk(secrets: &Secrets, value: &Value) {
                match value {
                    Value::Object(map) => {
                        for (key, value) in map {
                            match value {
                                Value::String(password) if key == "password" => {
                                    secrets.register("password", password);
                                }
                                other => walk(secrets, other),
                            }
                        }
                    }
                    Value::Array(items) => items.iter().for_each(|v| walk(secrets, v)),
                    _ => {}
                }
            }
            if let Ok(value) = serde_json::from_slice::<Value>(body) {
                walk(self, &value);
            }
        }

        /// Records a response: tokens it hands out and keys it carries become secrets, and it is
        /// kept to be searched.
        pub fn saw_response(&self, method: &Method, path: &str, status: StatusCode, body: &[u8]) {
            let text = String::from_utf8_lossy(body).into_owned();
            if status.is_success() {
                if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&text) {
                    if let Some(Value::String(token)) = object.get("token") {
                        self.register("token", token);
                    }
                }
                let kind = if path.starts_with("/api/bootstrap/decrypt") {
                    "decrypted bootstrap secret"
                } else {
                    "downloaded key"
                };
                self.register_key_material(kind, &text);
            }
            locked(&self.seen).push(Seen {
                request: format!("{method} {path}"),
                status,
                body: text,
            });
        }

        /// Every place a secret of this test shows up where it must not, each described
        /// with the secret itself redacted.
        pub fn leaks(&self) -> Vec<String> {
            let secrets = locked(&self.secrets);
            let log = {
                let log = log();
                String::from_utf8_lossy(&log[self.log_start.min(log.len())..]).into_owned()
            };
            let seen = locked(&self.seen);
            let mut leaks = Vec::new();
            for secret in secrets.iter() {
                for (form, needle) in &secret.needles {
                    let in_log = log.contains(needle.as_str());
                    for line in log
                        .lines()
                        .filter(|line| in_log && line.contains(needle.as_str()))
                    {
                        leaks.push(format!(
                            "{} ({form}) in a log line: {}",
                            secret.kind,
                            redact(line, &secrets)
                        ));
                    }
                    for response in seen.iter().filter(|r| r.body.contains(needle.as_str())) {
                        let error =
                            response.status.is_client_error() || response.status.is_server_error();
                        // Passwords are never answered at all; everything else not in errors.
                        if error || secret.kind.ends_with("password") {
                            leaks.push(format!(
                                "{} ({form}) in the {} body of {}: {}",
                                secret.kind,
                                response.status.as_u16(),
                                response.request,
                                redact(&response.body, &secrets)
                            ));
                        }
                    }
                }
            }
            leaks
        }
    }

    fn redact(text: &str, secrets: &[Secret]) -> String {
        let mut text = text.to_owned();
        for secret in secrets {
            for (_, needle) in &secret.needles {
                text = text.replace(needle.as_str(), &format!("[{} redacted]", secret.kind));
            }
        }
        text
    }

    /// The lines of base64 or hex between a key's BEGIN and END lines.
    fn key_lines(text: &str) -> Vec<&str> {
        let mut lines = Vec::new();
        let mut inside = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("-----BEGIN") {
                inside = line.contains("PRIVATE KEY") || line.contains("Static key");
            } else if line.starts_with("-----END") {
                inside = false;
            } else if inside && !line.is_empty() {
                lines.push(line);
            }
        }
        lines
    }

    /// Hex (both cases) and base64 (standard and URL-safe) of `bytes`, the base64 at each of
    /// the three alignments it can have inside a longer encoded text.
    fn encodings(bytes: &[u8]) -> Vec<(&'static str, String)> {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut out = vec![("hex", hex.clone()), ("HEX", hex.to_ascii_uppercase())];
        for shift in 0..3usize {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(bytes);
            let encoded = base64_unpadded(&shifted);
            // Drop the characters that mix in the padding bytes before and after.
            let skip = [0, 2, 3][shift];
            let tail = usize::from(shifted.len() % 3 != 0);
            if encoded.len() >= skip + tail + SHORTEST {
                let core = &encoded[skip..encoded.len() - tail];
                out.push(("base64", core.to_owned()));
                out.push(("base64url", core.replace('+', "-").replace('/', "_")));
            }
        }
        out.dedup();
        out
    }

    fn base64_unpadded(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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

    #[test]
    fn base64_matches_the_standard_encoding() {
        assert_eq!(base64_unpadded(b"Man"), "TWFu");
        assert_eq!(base64_unpadded(b"Ma"), "TWE");
        assert_eq!(base64_unpadded(b"M"), "TQ");
        assert_eq!(base64_unpadded(b"hello world"), "aGVsbG8gd29ybGQ");
    }

    #[test]
    fn every_alignment_of_base64_is_found() {
        let secret = b"a secret of some length";
        let needles = encodings(secret);
        for prefix in ["", "x", "xy", "xyz"] {
            let mut text = prefix.as_bytes().to_vec();
            text.extend_from_slice(secret);
            text.extend_from_slice(b"trailing");
            let encoded = base64_unpadded(&text);
            assert!(
                needles
                    .iter()
                    .any(|(form, n)| *form == "base64" && encoded.contains(n.as_str())),
                "prefix {prefix:?}: {encoded}"
            );
        }
    }
}
