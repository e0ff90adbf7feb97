//! No password, token, key or decrypted secret in a log line or an error body.
//!
//! The harness watches every test of this binary (see `harness::secrets`): it logs everything at
//! DEBUG and fails a test whose secrets show up where they must not. These tests prove the
//! watcher can fail, and drive the flows that handle the most secrets, with secrets long and
//! random enough to be searched for (the rest of the suite sends throw-away passwords like `pw`).

use actix_web::http::{Method, StatusCode};
use evon_crypto::{random_password, ApiToken};
use evon_store::Backend;
use serde_json::json;

use crate::harness::TestApp;
use crate::on_both_backends;

on_both_backends!(
    the_watcher_catches_a_planted_leak,
    passwords_never_come_back,
    wrong_and_malformed_tokens_are_not_echoed,
    bootstrap_secrets_stay_out_of_logs_and_errors,
);

const PLANTED: &str = "planted secret";

/// The watcher sees the application's own log lines and reports a registered secret logged at
/// DEBUG, in clear, hex or base64, and in an error body, with the secret redacted.
async fn the_watcher_catches_a_planted_leak(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.get("/api/ping").send().await.expect(200);
    let secret = random_password(32);
    app.secrets().register(PLANTED, &secret);
    assert!(app.secrets().leaks().is_empty(), "nothing leaked yet");

    tracing::debug!(target: "evon_http::routes", "about to leak {secret}");
    let leaks = app.secrets().leaks();
    assert!(
        leaks
            .iter()
            .any(|l| l.starts_with("planted secret (raw) in a log line")),
        "{leaks:?}"
    );
    assert!(leaks.iter().all(|l| !l.contains(&secret)), "{leaks:?}");
    assert!(
        leaks
            .iter()
            .any(|l| l.contains("[planted secret redacted]")),
        "{leaks:?}"
    );
    app.secrets().forget(PLANTED);

    let again = random_password(32);
    app.secrets().register(PLANTED, &again);
    let again_hex: String = again.bytes().map(|b| format!("{b:02x}")).collect();
    tracing::debug!(key = %again_hex, "a field holding a secret in hex");
    assert!(
        app.secrets()
            .leaks()
            .iter()
            .any(|l| l.starts_with("planted secret (hex) in a log line")),
        "hex form missed"
    );
    app.secrets().forget(PLANTED);

    let third = random_password(30);
    app.secrets().register(PLANTED, &third);
    app.secrets().saw_response(
        &Method::POST,
        "/api/planted",
        StatusCode::BAD_REQUEST,
        json!({"detail": format!("bad value {third}")})
            .to_string()
            .as_bytes(),
    );
    assert!(
        app.secrets()
            .leaks()
            .iter()
            .any(|l| l.starts_with("planted secret (raw) in the 400 body of POST /api/planted")),
        "error body missed"
    );
    app.secrets().forget(PLANTED);

    // The application's own request log is captured, so the search covers what it writes.
    let marker = format!("/api/no-such-route-{}", random_password(12));
    app.get(&marker).send().await.expect(404);
    app.secrets().register(PLANTED, &marker);
    assert!(
        app.secrets()
            .leaks()
            .iter()
            .any(|l| l.contains("in a log line") && l.contains("evon_http::access")),
        "the request log line was not captured"
    );
    app.secrets().forget(PLANTED);
}

/// Passwords sent with valid and invalid forms, as JSON and as other media types, never come
/// back in any body nor reach the log.
async fn passwords_never_come_back(backend: Backend) {
    let app = TestApp::new(backend).await;
    let password = random_password(24);
    let created = app
        .post(
            "/api/user",
            json!({"username": "alice", "password": password}),
        )
        .send()
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let id = created.body["id"].as_i64().unwrap();
    let token = created.body["token"].as_str().unwrap().to_owned();

    // Invalid forms that carry a password: another field fails, the password is too long, the
    // username is taken.
    for body in [
        json!({"username": "bad name!", "password": random_password(20)}),
        json!({"username": "bob", "password": random_password(129)}),
        json!({"username": "alice", "password": random_password(20)}),
        json!({"username": "carol", "password": random_password(20), "groups": [999]}),
    ] {
        let status = app.post("/api/user", body).send().await.status;
        assert_eq!(status, 400);
    }
    app.patch(
        &format!("/api/user/{id}"),
        json!({"password": random_password(20)}),
    )
    .send()
    .await
    .expect(200);
    app.patch(
        &format!("/api/user/{id}"),
        json!({"password": random_password(20), "email": "not an address"}),
    )
    .send()
    .await
    .expect(400);
    // An ordinary user may not change the admin's password; the refusal must not echo it.
    app.patch("/api/user/1", json!({"password": random_password(20)}))
        .token(&token)
        .send()
        .await
        .expect(403);

    // Bodies the API never parses as JSON: cut short, or of another media type.
    let cut = random_password(20);
    app.secrets().register("password", &cut);
    let truncated = format!("{{\"username\": \"dave\", \"password\": \"{cut}");
    app.req(Method::POST, "/api/user")
        .raw("application/json", truncated.into_bytes())
        .send()
        .await
        .expect(400);
    let form = random_password(20);
    app.secrets().register("password", &form);
    app.req(Method::POST, "/api/user")
        .raw(
            "application/x-www-form-urlencoded",
            format!("username=erin&password={form}").into_bytes(),
        )
        .send()
        .await
        .expect(415);
}

/// Tokens that are wrong, malformed or of a deleted user get a 401 that does not repeat them.
async fn wrong_and_malformed_tokens_are_not_echoed(backend: Backend) {
    let app = TestApp::new(backend).await;
    let wrong = ApiToken::generate();
    app.secrets().register("wrong token", wrong.reveal());
    app.get("/api/user")
        .token(wrong.reveal())
        .send()
        .await
        .expect(401);
    let spaced = format!("{} {}", random_password(20), random_password(20));
    app.secrets().register("malformed token", &spaced);
    app.get("/api/user").token(&spaced).send().await.expect(401);
    let odd = format!("{}é", random_password(20));
    app.secrets().register("malformed token", &odd);
    app.get("/api/user").token(&odd).send().await.expect(401);

    let (id, token) = app.user("frank", json!({})).await;
    app.delete(&format!("/api/user/{id}"))
        .send()
        .await
        .expect(204);
    app.get("/api/ping").token(&token).send().await.expect(401);
}

/// The downloads, the decrypt route with a real, a tampered and a foreign payload, and callers
/// who may not open it: no key line, decrypted or not, reaches a log line or an error body.
async fn bootstrap_secrets_stay_out_of_logs_and_errors(backend: Backend) {
    let app = TestApp::new(backend).await;
    for path in [
        "/api/bootstrap/linux",
        "/api/bootstrap/windows",
        "/api/bootstrap/raw",
        "/api/ovpnclient/download",
    ] {
        app.download(path, &app.deployer).await;
    }
    let script = app.download("/api/bootstrap/linux", &app.admin).await;
    let sealed = script
        .lines()
        .find_map(|line| {
            line.strip_prefix("EVON_SEALED_SECRETS='")
                .and_then(|rest| rest.strip_suffix('\''))
        })
        .expect("bootstrap.sh embeds the sealed secrets")
        .to_owned();
    let decrypt = |payload: Vec<u8>, token: String| {
        let boundary = "evon-secrets-test-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"payload\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&payload);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        app.req(Method::POST, "/api/bootstrap/decrypt")
            .token(&token)
            .raw(&format!("multipart/form-data; boundary={boundary}"), body)
            .send_raw()
    };
    let opened = decrypt(sealed.clone().into_bytes(), app.deployer.clone()).await;
    assert_eq!(opened.status, 200);
    assert_eq!(opened.header("cache-control"), Some("no-store"));
    let clear = String::from_utf8(opened.bytes.to_vec()).unwrap();
    assert!(clear.contains("PRIVATE KEY"), "the payload opened");

    let mut tampered = sealed.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let refused = decrypt(tampered, app.admin.clone()).await;
    assert_eq!(refused.status, 400);
    // Sealed with another hub's key: a well-formed box that does not open here.
    let foreign = evon_crypto::seal::seal(
        &evon_crypto::HubKey::generate(),
        evon_crypto::seal::Purpose::BootstrapSecrets,
        clear.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        decrypt(foreign.into_bytes(), app.admin.clone())
            .await
            .status,
        400
    );
    // The clear secrets themselves uploaded as the payload: refused without repeating them.
    assert_eq!(
        decrypt(clear.clone().into_bytes(), app.admin.clone())
            .await
            .status,
        400
    );
    let (_, plain) = app.user("grace", json!({})).await;
    assert_eq!(
        decrypt(sealed.into_bytes(), plain.clone()).await.status,
        403
    );
    for path in ["/api/bootstrap/linux", "/api/bootstrap/raw"] {
        app.get(path).token(&plain).send().await.expect(403);
    }
}
