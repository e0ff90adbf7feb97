//! `/api/userprofile/{user}`: one's own profile, or anyone's for superusers.

use evon_store::Backend;
use serde_json::json;

use crate::harness::{snapshot, TestApp};
use crate::on_both_backends;

on_both_backends!(own_profile, others_profiles);

async fn own_profile(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (id, token) = app.user("erin", json!({})).await;
    let path = format!("/api/userprofile/{id}");
    let body = app.get(&path).token(&token).send().await.expect(200);
    snapshot("profile_retrieve", &body);
    let body = app
        .patch(&path, json!({"shared": true, "ipv4_address": "1.2.3.4"}))
        .token(&token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"shared": true, "ipv4_address": "100.111.208.14"}),
        "the address is read-only"
    );
    let body = app
        .patch(&path, json!({"shared": "nope"}))
        .token(&token)
        .send()
        .await
        .expect(400);
    assert_eq!(body, json!({"shared": ["Must be a valid boolean."]}));
}

async fn others_profiles(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (erin, token) = app.user_with("erin", &[4, 2]).await;
    app.get("/api/userprofile/1")
        .token(&token)
        .send()
        .await
        .expect(403);
    app.patch("/api/userprofile/1", json!({"shared": true}))
        .token(&token)
        .send()
        .await
        .expect(403);
    app.get("/api/userprofile/999")
        .token(&token)
        .send()
        .await
        .expect(403);
    app.get(&format!("/api/userprofile/{erin}"))
        .send()
        .await
        .expect(200);
    app.patch(&format!("/api/userprofile/{erin}"), json!({"shared": true}))
        .send()
        .await
        .expect(200);
    app.get("/api/userprofile/999").send().await.expect(404);
}
