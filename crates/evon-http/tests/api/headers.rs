//! Security headers over every documented operation: `X-Content-Type-Options: nosniff` on every
//! answer (successes, 401, 404, 405, 413, 415), `Cache-Control: no-store` on every answer that
//! carries a secret (a new user's token, the downloads, the decrypted bootstrap secrets), and no
//! `Server` header naming the software.
//!
//! In-process the actix test service has no HTTP dispatcher, so the `Server` header is checked
//! here on what the application adds and, over real sockets, in
//! `crates/evon-hub/tests/secrets_in_logs.rs`.

use actix_web::http::{header, Method, StatusCode};
use evon_crypto::random_password;
use evon_http::openapi::{Operation, Request, Success, OPERATIONS};
use evon_store::Backend;
use serde_json::{json, Value};

use crate::harness::TestApp;
use crate::on_both_backends;

on_both_backends!(security_headers_on_every_operation);

/// Whether an operation's successful answer holds a secret.
fn carries_secret(op: &Operation) -> bool {
    let secret = |op: &Operation| {
        matches!(op.success, Success::Download(_)) || op.success == Success::Created("UserCreated")
    };
    // HEAD answers with the headers of its GET.
    secret(op)
        || (op.success == Success::Head
            && OPERATIONS
                .iter()
                .any(|get| get.method == "get" && get.path == op.path && secret(get)))
}

fn method(op: &Operation) -> Method {
    Method::from_bytes(op.method.to_ascii_uppercase().as_bytes()).unwrap()
}

/// What one answer must carry: nosniff always, no `Server`, and no-store when `secret`.
fn check(what: &str, status: StatusCode, headers: &header::HeaderMap, secret: bool) {
    assert_eq!(
        headers
            .get(header::X_CONTENT_TYPE_OPTIONS)
            .and_then(|v| v.to_str().ok()),
        Some("nosniff"),
        "{what} ({status}) lacks X-Content-Type-Options: nosniff"
    );
    assert!(
        headers.get(header::SERVER).is_none(),
        "{what} ({status}) names its server: {:?}",
        headers.get(header::SERVER)
    );
    if secret {
        let cache = headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            cache.split(',').any(|d| d.trim() == "no-store"),
            "{what} ({status}) carries a secret but has Cache-Control {cache:?}"
        );
    }
}

/// A multipart body with the given payload in field `data`.
fn multipart(payload: &[u8]) -> (String, Vec<u8>) {
    let boundary = "evon-headers-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"payload\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(payload);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// An object for a path's `{id}` or `{user}`, made for this one request (so deleting it harms
/// no other row of the matrix).
async fn fresh_object(app: &TestApp, path: &str, n: usize) -> i64 {
    let name = format!("headers-{n}");
    let create = |collection: &str, body: Value| {
        let collection = collection.to_owned();
        async move {
            app.post(&collection, body).send().await.expect(201)["id"]
                .as_i64()
                .unwrap()
        }
    };
    match path.split('/').nth(2).unwrap_or_default() {
        "user" | "userprofile" => app.user(&name, json!({})).await.0,
        "group" => app.group(&name, &[], &[]).await,
        "server" => app.register(&TestApp::uuid(u32::try_from(n).unwrap() + 1), &name),
        "servergroup" => create("/api/servergroup", json!({"name": name, "server_set": []})).await,
        "rule" => {
            create(
                "/api/rule",
                json!({"name": name, "destination_protocol": "ALL"}),
            )
            .await
        }
        "policy" => create("/api/policy", json!({"name": name})).await,
        "config" => 1,
        other => panic!("no fixture for {other} ({path})"),
    }
}

/// A body the operation accepts.
fn valid_body(op: &Operation, n: usize) -> Option<Value> {
    let name = format!("created-{n}");
    match (op.request, op.method) {
        (Request::Json(_), "patch") => Some(json!({})),
        (Request::Json(_), "post") => Some(match op.path {
            "/api/user" => json!({"username": name, "password": random_password(20)}),
            "/api/rule" => json!({"name": name, "destination_protocol": "ALL"}),
            "/api/group" => json!({"name": name, "user_set": [], "permissions": []}),
            "/api/servergroup" => json!({"name": name, "server_set": []}),
            _ => json!({"name": name}),
        }),
        _ => None,
    }
}

async fn security_headers_on_every_operation(backend: Backend) {
    let app = TestApp::new(backend).await;
    let script = app.download("/api/bootstrap/linux", &app.admin).await;
    let sealed = script
        .lines()
        .find_map(|line| {
            line.strip_prefix("EVON_SEALED_SECRETS='")
                .and_then(|rest| rest.strip_suffix('\''))
        })
        .expect("bootstrap.sh embeds the sealed secrets")
        .to_owned();
    let mut secret_operations = 0;
    for (n, op) in OPERATIONS.iter().enumerate() {
        let mut path = op.path.to_owned();
        if path.contains('{') {
            let id = fresh_object(&app, op.path, n).await;
            path = path.replace("{id}", &id.to_string());
            path = path.replace("{user}", &id.to_string());
        }
        let what = format!("{} {}", op.method.to_ascii_uppercase(), op.path);
        let secret = carries_secret(op);
        secret_operations += usize::from(secret);

        // Success, as a superuser.
        let mut request = app.req(method(op), &path);
        if let Some(body) = valid_body(op, n) {
            request = request.json(body);
        }
        if op.request == Request::Multipart {
            let (content_type, body) = multipart(sealed.as_bytes());
            request = request.raw(&content_type, body);
        }
        let response = request.send_raw().await;
        assert!(response.status.is_success(), "{what}: {}", response.status);
        check(&what, response.status, &response.headers, secret);

        // Without a token: 401 (or the public document).
        let anonymous = app.req(method(op), &path).anonymous().send_raw().await;
        check(
            &format!("{what} anonymous"),
            anonymous.status,
            &anonymous.headers,
            false,
        );

        // A method the path does not route.
        let put = app.req(Method::PUT, &path).json(json!({})).send_raw().await;
        assert_eq!(put.status, 405, "PUT {path}");
        check(&format!("PUT {}", op.path), put.status, &put.headers, false);

        if matches!(op.request, Request::Json(_)) {
            let wrong_type = app
                .req(method(op), &path)
                .raw("text/plain", b"{}".to_vec())
                .send_raw()
                .await;
            assert_eq!(wrong_type.status, 415, "{what} as text/plain");
            check(
                &format!("{what} text/plain"),
                wrong_type.status,
                &wrong_type.headers,
                false,
            );
            let too_large = app
                .req(method(op), &path)
                .raw("application/json", vec![b' '; evon_http::BODY_LIMIT + 1])
                .send_raw()
                .await;
            assert_eq!(too_large.status, 413, "{what} too large");
            check(
                &format!("{what} too large"),
                too_large.status,
                &too_large.headers,
                false,
            );
        }
        if op.request == Request::Multipart {
            let (content_type, _) = multipart(b"");
            let too_large = app
                .req(method(op), &path)
                .raw(&content_type, multipart(&vec![b'A'; 64 * 1024 + 1]).1)
                .send_raw()
                .await;
            assert_eq!(too_large.status, 413, "{what} too large");
            check(
                &format!("{what} too large"),
                too_large.status,
                &too_large.headers,
                false,
            );
            let refused = app
                .req(method(op), &path)
                .raw(&content_type, multipart(b"not sealed").1)
                .send_raw()
                .await;
            assert_eq!(refused.status, 400, "{what} not sealed");
            check(
                &format!("{what} not sealed"),
                refused.status,
                &refused.headers,
                false,
            );
        }
        if op.path.contains('{') {
            let missing = op
                .path
                .replace("{id}", "999999")
                .replace("{user}", "999999");
            let response = app.req(method(op), &missing).send_raw().await;
            check(
                &format!("{what} missing object"),
                response.status,
                &response.headers,
                false,
            );
        }
    }
    // Four downloads by GET and HEAD, the decrypt route, and user creation.
    assert_eq!(secret_operations, 10, "the secret-bearing operations moved");

    for path in ["/api/nothing-here", "/", "/api/user/not-a-number"] {
        let response = app.get(path).send_raw().await;
        assert_eq!(response.status, 404, "{path}");
        check(path, response.status, &response.headers, false);
    }
}
