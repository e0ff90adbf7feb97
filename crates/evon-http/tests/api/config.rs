//! `/api/config` and `PATCH /api/config/1`.

use actix_web::http::Method;
use evon_store::Backend;
use serde_json::json;

use crate::harness::{snapshot, TestApp};
use crate::on_both_backends;

on_both_backends!(list_and_patch, invalid_values, only_config_one);

async fn list_and_patch(backend: Backend) {
    let app = TestApp::new(backend).await;
    snapshot(
        "config_list",
        &app.get("/api/config").send().await.expect(200),
    );
    let body = app
        .patch(
            "/api/config/1",
            json!({
                "timezone": "Australia/Sydney",
                "auto_update": "false",
                "auto_update_time": "03:30:45",
                "discovery_mode": false,
                "uuid_blacklist": " 0b6c2b2a3b1f4c4e9a5d1234567890ab ,",
                "uuid_whitelist": "d3b07384-d9a0-4c9b-8f3e-2a6f5e1c0b7a, 5e4a1c2b-7f3d-4e9a-a1b2-c3d4e5f60718",
                "ec2_iam_role_status": true,
                "id": 7
            }),
        )
        .send()
        .await
        .expect(200);
    snapshot("config_patch", &body);
    let listed = app.get("/api/config").send().await.expect(200);
    assert_eq!(listed["results"][0], body, "the change is stored");
    let body = app
        .patch("/api/config/1", json!({"uuid_blacklist": ""}))
        .send()
        .await
        .expect(200);
    assert_eq!(body["uuid_blacklist"], "");
}

async fn invalid_values(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = app
        .patch(
            "/api/config/1",
            json!({
                "timezone": "Mars/Olympus",
                "auto_update": "sometimes",
                "auto_update_time": "3pm",
                "discovery_mode": null,
                "uuid_blacklist": "0b6c2b2a3b1f4c4e9a5d1234567890ab,not-a-uuid",
                "uuid_whitelist": "0B6C2B2A3B1F4C4E9A5D1234567890AB"
            }),
        )
        .send()
        .await
        .expect(400);
    snapshot("config_patch_invalid", &body);
    let unchanged = app.get("/api/config").send().await.expect(200);
    assert_eq!(
        unchanged["results"][0]["timezone"], "UTC",
        "nothing was written"
    );
}

async fn only_config_one(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.patch("/api/config/2", json!({"auto_update": false}))
        .send()
        .await
        .expect(404);
    let response = app.get("/api/config/1").send().await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("PATCH"));
    let response = app
        .req(Method::POST, "/api/config")
        .json(json!({}))
        .send()
        .await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
    app.get("/api/config?page=2").send().await.expect(404);
}
