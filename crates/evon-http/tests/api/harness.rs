//! One harness for every API test: a fresh database, an initialised hub, and requests sent
//! through the real application in-process.

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
    _db: TestDatabase,
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
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
        let bootstrap = Bootstrap::render(HubKey::generate(), &pki, &endpoints, "test")
            .expect("render downloads");
        let state = web::Data::new(AppState::new(store, settings, None).with_bootstrap(bootstrap));
        Self {
            state,
            pki,
            admin: admin.reveal().to_owned(),
            deployer: deployer.reveal().to_owned(),
            _db: db,
        }
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
        let service = test::init_service(evon_http::app(self.app.state.clone())).await;
        let mut request = test::TestRequest::default()
            .method(self.method)
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
        (status, headers, test::read_body(response).await)
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
