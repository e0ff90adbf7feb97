//! Token authentication: the five 401s, case-insensitive keyword, rotation, inactive users.

use actix_web::http::Method;
use evon_store::Backend;
use serde_json::json;

use crate::harness::{snapshot, TestApp};
use crate::on_both_backends;

on_both_backends!(
    five_messages,
    keyword_is_case_insensitive,
    rotation_revokes_at_once,
    new_users_token_works,
    ping
);

async fn five_messages(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (id, token) = app.user("sleepy", json!({})).await;
    app.patch(&format!("/api/user/{id}"), json!({"is_active": false}))
        .send()
        .await
        .expect(200);
    let cases = [
        ("no header", None),
        ("another scheme", Some("Bearer abc".to_owned())),
        ("keyword only", Some("Token".to_owned())),
        ("spaces", Some("Token a b".to_owned())),
        ("unknown key", Some(format!("Token {}", "0".repeat(40)))),
        ("inactive", Some(format!("Token {token}"))),
    ];
    let mut bodies = Vec::new();
    for (case, header) in cases {
        let mut request = app.get("/api/ping").anonymous();
        if let Some(header) = header {
            request = request.header("Authorization", &header);
        }
        let response = request.send().await;
        assert_eq!(response.status, 401, "{case}");
        assert_eq!(response.header("www-authenticate"), Some("Token"), "{case}");
        bodies.push(json!({"case": case, "body": response.body}));
    }
    snapshot("auth_401_messages", &json!(bodies));
}

async fn keyword_is_case_insensitive(backend: Backend) {
    let app = TestApp::new(backend).await;
    for keyword in ["Token", "token", "TOKEN", "tOkEn"] {
        let header = format!("{keyword} {}", app.admin);
        app.get("/api/ping")
            .header("Authorization", &header)
            .send()
            .await
            .expect(200);
    }
}

async fn rotation_revokes_at_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, token) = app.user("rotor", json!({})).await;
    app.get("/api/ping").token(&token).send().await.expect(200);
    let fresh = app
        .store()
        .write(|conn| evon_store::users::rotate_token(conn, "rotor"))
        .unwrap();
    app.get("/api/ping").token(&token).send().await.expect(401);
    app.get("/api/ping")
        .token(fresh.reveal())
        .send()
        .await
        .expect(200);
}

async fn new_users_token_works(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, token) = app.user("newbie", json!({})).await;
    let body = app.get("/api/ping").token(&token).send().await.expect(200);
    assert_eq!(body, json!({"message": "pong"}));
    app.req(Method::HEAD, "/api/ping")
        .token(&token)
        .send()
        .await
        .expect(200);
    // The deployer's token from init works too.
    app.get("/api/ping")
        .token(&app.deployer.clone())
        .send()
        .await
        .expect(200);
}

async fn ping(backend: Backend) {
    let app = TestApp::new(backend).await;
    let response = app.get("/api/ping").send().await;
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert!(response.header("server").is_none(), "no Server header");
    snapshot("ping", &response.expect(200));
}
