//! Authentication answers warm tokens from memory, and never at the expense of revocation: a
//! change made through the API is seen by the very next request; a change committed by another
//! process (here: a second `Store` on the same database) once the generation poller reads it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use actix_web::http::Method;
use actix_web::{test, web};
use evon_crypto::{ApiToken, TokenDigest};
use evon_domain::config::HubSettings;
use evon_domain::{FieldErrors, SubnetKey, UserPatch};
use evon_http::AppState;
use evon_store::auth::TokenLookup;
use evon_store::generation::GenerationPoller;
use evon_store::hub::InitRequest;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, OpenMode, PoolOptions, Store};
use serde_json::{json, Value};

/// The most a test waits for the poller to bring another store's write in.
const POLL_DEADLINE: Duration = Duration::from_secs(10);

struct Hub {
    state: web::Data<AppState>,
    admin: String,
    db: TestDatabase,
}

impl Hub {
    fn new(backend: Backend) -> Self {
        let db = TestDatabase::new(backend);
        let store =
            Store::open(db.url(), OpenMode::CreateIfMissing, &PoolOptions::default()).unwrap();
        let settings = HubSettings {
            domain: "hub.example.com".into(),
            subnet_key: SubnetKey::new(111),
        };
        let admin = ApiToken::generate();
        let request = InitRequest {
            settings: settings.clone(),
            admin_password_hash: "$argon2id$not-a-real-hash".into(),
            admin_token: admin.digest(),
            deployer_token: ApiToken::generate().digest(),
        };
        store
            .write(|conn| evon_store::hub::initialise(conn, &request))
            .unwrap();
        Self {
            state: web::Data::new(AppState::new(store, settings, None)),
            admin: admin.reveal().to_owned(),
            db,
        }
    }

    /// A second connection pool on the same database, as another process would have.
    fn other_process(&self) -> Store {
        Store::open(self.db.url(), OpenMode::MustExist, &PoolOptions::default()).unwrap()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let service = test::init_service(evon_http::app(self.state.clone())).await;
        let mut request = test::TestRequest::default()
            .method(method)
            .uri(path)
            .insert_header(("Authorization", format!("Token {token}")));
        if let Some(body) = body {
            request = request.set_json(body);
        }
        let response = test::call_service(&service, request.to_request()).await;
        let status = response.status().as_u16();
        let bytes = test::read_body(response).await;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, token, None).await
    }

    async fn as_admin(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, body) = self
            .call(method, path, &self.admin.clone(), Some(body))
            .await;
        assert!(status == 200 || status == 201, "{status}: {body}");
        body
    }

    /// A new ordinary user: its id and token.
    async fn user(&self, username: &str) -> (i64, String) {
        let body = self
            .as_admin(
                Method::POST,
                "/api/user",
                json!({"username": username, "password": "pass-word-1"}),
            )
            .await;
        (
            body["id"].as_i64().unwrap(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Polls `GET path` with `token` until it answers `status`; fails after the deadline.
    async fn eventually(&self, path: &str, token: &str, status: u16) -> Value {
        let started = Instant::now();
        loop {
            let (seen, body) = self.get(path, token).await;
            if seen == status {
                return body;
            }
            assert!(
                started.elapsed() < POLL_DEADLINE,
                "{path} still answers {seen} ({body}), expected {status}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

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

on_both_backends!(
    warm_tokens_are_cached_and_unknown_ones_are_not,
    deactivation_through_the_api_is_seen_by_the_next_request,
    deletion_through_the_api_is_seen_by_the_next_request,
    withdrawn_permissions_are_seen_by_the_next_request,
    rotation_in_process_is_seen_by_the_next_request,
    another_processs_writes_are_seen_once_polled,
);

async fn warm_tokens_are_cached_and_unknown_ones_are_not(backend: Backend) {
    let hub = Hub::new(backend);
    assert!(hub.state.tokens.is_empty());
    for _ in 0..3 {
        assert_eq!(hub.get("/api/ping", &hub.admin).await.0, 200);
    }
    assert_eq!(hub.state.tokens.len(), 1);
    for _ in 0..20 {
        let (status, body) = hub.get("/api/ping", ApiToken::generate().reveal()).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({"detail": "Invalid token."}));
    }
    assert_eq!(
        hub.state.tokens.len(),
        1,
        "a wrong-token flood grows nothing"
    );
}

async fn deactivation_through_the_api_is_seen_by_the_next_request(backend: Backend) {
    let hub = Hub::new(backend);
    let (id, token) = hub.user("sleepy").await;
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
    hub.as_admin(
        Method::PATCH,
        &format!("/api/user/{id}"),
        json!({"is_active": false}),
    )
    .await;
    let (status, body) = hub.get("/api/ping", &token).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": "User inactive or deleted."}));
    // And back: reactivation is seen at once too, also for an inactive answer cached meanwhile.
    assert_eq!(hub.get("/api/ping", &token).await.0, 401);
    hub.as_admin(
        Method::PATCH,
        &format!("/api/user/{id}"),
        json!({"is_active": true}),
    )
    .await;
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
}

async fn deletion_through_the_api_is_seen_by_the_next_request(backend: Backend) {
    let hub = Hub::new(backend);
    let (id, token) = hub.user("leaver").await;
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
    let (status, _) = hub
        .call(
            Method::DELETE,
            &format!("/api/user/{id}"),
            &hub.admin.clone(),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = hub.get("/api/ping", &token).await;
    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": "Invalid token."}));
}

async fn withdrawn_permissions_are_seen_by_the_next_request(backend: Backend) {
    let hub = Hub::new(backend);
    let (id, token) = hub.user("viewer").await;
    assert_eq!(hub.get("/api/group", &token).await.0, 403);
    // Permission 8 is "view group", held through a group.
    let group = hub
        .as_admin(
            Method::POST,
            "/api/group",
            json!({"name": "Viewers", "user_set": [id], "permissions": [8]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(hub.get("/api/group", &token).await.0, 200);
    assert_eq!(hub.get("/api/group", &token).await.0, 200);
    hub.as_admin(
        Method::PATCH,
        &format!("/api/group/{group}"),
        json!({"permissions": []}),
    )
    .await;
    assert_eq!(hub.get("/api/group", &token).await.0, 403);

    // Held directly, and as a superuser: withdrawing either is seen at once.
    hub.as_admin(
        Method::PATCH,
        &format!("/api/user/{id}"),
        json!({"user_permissions": [8]}),
    )
    .await;
    assert_eq!(hub.get("/api/group", &token).await.0, 200);
    hub.as_admin(
        Method::PATCH,
        &format!("/api/user/{id}"),
        json!({"user_permissions": []}),
    )
    .await;
    assert_eq!(hub.get("/api/group", &token).await.0, 403);
    hub.as_admin(
        Method::PATCH,
        &format!("/api/user/{id}"),
        json!({"is_superuser": true}),
    )
    .await;
    assert_eq!(hub.get("/api/group", &token).await.0, 200);
    hub.as_admin(
        Method::PATCH,
        &format!("/api/user/{id}"),
        json!({"is_superuser": false}),
    )
    .await;
    assert_eq!(hub.get("/api/group", &token).await.0, 403);
}

async fn rotation_in_process_is_seen_by_the_next_request(backend: Backend) {
    let hub = Hub::new(backend);
    let (_, token) = hub.user("rotor").await;
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
    let fresh = hub
        .state
        .store
        .write(|conn| evon_store::users::rotate_token(conn, "rotor"))
        .unwrap();
    assert_eq!(hub.get("/api/ping", &token).await.0, 401);
    assert_eq!(hub.get("/api/ping", fresh.reveal()).await.0, 200);
}

async fn another_processs_writes_are_seen_once_polled(backend: Backend) {
    let hub = Hub::new(backend);
    let poller =
        GenerationPoller::spawn(hub.state.store.clone(), Duration::from_millis(50)).unwrap();
    let (_, token) = hub.user("remote").await;
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
    assert_eq!(hub.get("/api/ping", &token).await.0, 200);
    let other = hub.other_process();

    // Rotation elsewhere (`evon-hub token rotate`): the old token stops working, the new one
    // works from its first use (unknown tokens are never cached).
    let fresh = other
        .write(|conn| evon_store::users::rotate_token(conn, "remote"))
        .unwrap();
    assert_eq!(hub.get("/api/ping", fresh.reveal()).await.0, 200);
    let body = hub.eventually("/api/ping", &token, 401).await;
    assert_eq!(body, json!({"detail": "Invalid token."}));

    // Deactivation elsewhere: refused as inactive.
    assert_eq!(hub.get("/api/ping", fresh.reveal()).await.0, 200);
    let admin = TokenDigest::of(&hub.admin);
    other
        .write(|conn| {
            let TokenLookup::Active(actor) = evon_store::auth::principal_by_token(conn, &admin)?
            else {
                panic!("the admin token is not active");
            };
            let id = evon_store::users::id_by_username(conn, "remote")?;
            let patch = UserPatch {
                is_active: Some(false),
                ..UserPatch::default()
            };
            evon_store::users::update(conn, &actor, id, &patch, None, &FieldErrors::new())
        })
        .unwrap();
    let body = hub.eventually("/api/ping", fresh.reveal(), 401).await;
    assert_eq!(body, json!({"detail": "User inactive or deleted."}));
    drop(poller);
}
