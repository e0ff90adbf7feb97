//! Bad requests of every kind get the API's error shapes, never a 500.

use actix_web::http::Method;
use evon_store::Backend;
use serde_json::json;

use crate::harness::{snapshot, snapshot_keeping_ids, TestApp};
use crate::on_both_backends;

on_both_backends!(bodies, unknown_routes, methods, permission_listing);

async fn bodies(backend: Backend) {
    let app = TestApp::new(backend).await;
    let mut seen = Vec::new();
    let cases: [(&str, &str, Vec<u8>); 7] = [
        (
            "malformed json",
            "application/json",
            b"{\"username\": ".to_vec(),
        ),
        ("a list", "application/json", b"[1, 2]".to_vec()),
        ("a string", "application/json", b"\"text\"".to_vec()),
        ("null", "application/json", b"null".to_vec()),
        ("wrong content type", "text/plain", b"{}".to_vec()),
        (
            "form content type",
            "application/x-www-form-urlencoded",
            b"username=x".to_vec(),
        ),
        ("no content type", "", b"{}".to_vec()),
    ];
    for (case, content_type, body) in cases {
        let response = app
            .req(Method::POST, "/api/group")
            .raw(content_type, body)
            .send()
            .await;
        assert!(
            matches!(response.status.as_u16(), 400 | 415),
            "{case}: {}",
            response.status
        );
        seen.push(json!({"case": case, "status": response.status.as_u16(), "body": response.body}));
    }
    snapshot("error_bodies", &json!(seen));
    let big = vec![b' '; evon_http::BODY_LIMIT + 1];
    let response = app
        .req(Method::POST, "/api/group")
        .raw("application/json", big)
        .send()
        .await;
    assert_eq!(response.status, 413);
    assert!(response.body["detail"].as_str().unwrap().contains("limit"));
    // An empty JSON body is an empty object: required fields are reported.
    let body = app
        .req(Method::POST, "/api/group")
        .raw("application/json", Vec::new())
        .send()
        .await
        .expect(400);
    assert_eq!(body["name"], json!(["This field is required."]));
    // Without permission, a broken body reveals nothing but the 403.
    let (_, token) = app.user("nobody", json!({})).await;
    app.req(Method::POST, "/api/group")
        .raw("application/json", b"{".to_vec())
        .token(&token)
        .send()
        .await
        .expect(403);
}

async fn unknown_routes(backend: Backend) {
    let app = TestApp::new(backend).await;
    for path in [
        "/api/user/",
        "/api/user/abc",
        "/api/user/1/",
        "/api/nothing",
        // "/api/" is the documentation page (tests/api_docs.rs).
        "/api/docs/",
        "/",
        "/api/user/-1",
    ] {
        assert_eq!(
            app.get(path).send().await.expect(404),
            json!({"detail": "Not found."}),
            "{path}"
        );
        assert_eq!(
            app.get(path).anonymous().send().await.expect(404),
            json!({"detail": "Not found."}),
            "{path}"
        );
    }
}

async fn methods(backend: Backend) {
    let app = TestApp::new(backend).await;
    let response = app
        .req(Method::PUT, "/api/user/1")
        .json(json!({}))
        .send()
        .await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, PATCH, DELETE, HEAD"));
    assert_eq!(
        response.body,
        json!({"detail": "Method \"PUT\" not allowed."})
    );
    let response = app.req(Method::DELETE, "/api/user").send().await;
    assert_eq!(response.header("allow"), Some("GET, POST, HEAD"));
    assert_eq!(
        response.body,
        json!({"detail": "Method \"DELETE\" not allowed."})
    );
    // Authentication comes first.
    app.req(Method::PUT, "/api/user/1")
        .anonymous()
        .send()
        .await
        .expect(401);
    // HEAD is routed and authorised like GET (the HTTP/1 codec drops the body on the wire,
    // which the binary's serve test checks).
    let head = app.req(Method::HEAD, "/api/user").send().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.body, app.get("/api/user").send().await.expect(200));
    app.req(Method::HEAD, "/api/user")
        .anonymous()
        .send()
        .await
        .expect(401);
}

async fn permission_listing(backend: Backend) {
    let app = TestApp::new(backend).await;
    snapshot_keeping_ids(
        "permission_list",
        &app.get("/api/permission").send().await.expect(200),
    );
}
