//! The built-in objects: admin, deployer and All Users survive everything, from either side.

use evon_store::Backend;
use serde_json::json;

use crate::harness::TestApp;
use crate::on_both_backends;

on_both_backends!(
    builtin_users,
    all_users_group,
    every_new_user_joins_all_users
);

async fn builtin_users(backend: Backend) {
    let app = TestApp::new(backend).await;
    for id in [1, 2] {
        app.delete(&format!("/api/user/{id}"))
            .send()
            .await
            .expect(403);
        let body = app
            .patch(
                &format!("/api/user/{id}"),
                json!({"username": "renamed", "is_superuser": id == 2, "is_active": false, "first_name": "Kept"}),
            )
            .send()
            .await
            .expect(200);
        assert_eq!(body["username"], if id == 1 { "admin" } else { "deployer" });
        assert_eq!(body["is_superuser"], id == 1);
        assert_eq!(body["is_active"], true);
        assert_eq!(body["first_name"], "Kept", "the rest of the patch applies");
    }
    app.get("/api/ping").send().await.expect(200);
    app.get("/api/ping")
        .token(&app.deployer.clone())
        .send()
        .await
        .expect(200);
}

async fn all_users_group(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (bob, _) = app.user("bob", json!({})).await;
    app.delete("/api/group/1").send().await.expect(403);
    let body = app
        .patch("/api/group/1", json!({"name": "Everyone"}))
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"name": ["The All Users group cannot be renamed."]})
    );
    let body = app
        .patch("/api/group/1", json!({"user_set": [1, 2]}))
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"user_set": ["Every user is a member of All Users; no user can be removed from it."]})
    );
    app.patch("/api/group/1", json!({"user_set": []}))
        .send()
        .await
        .expect(400);
    // Same name, every user, and new permissions: allowed.
    let body = app
        .patch(
            "/api/group/1",
            json!({"name": "All Users", "user_set": [1, 2, bob], "permissions": [23]}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"id": 1, "name": "All Users", "user_set": [1, 2, bob], "permissions": [23]})
    );
    // From the user side, All Users cannot be left either.
    let body = app
        .patch(&format!("/api/user/{bob}"), json!({"groups": []}))
        .send()
        .await
        .expect(200);
    assert_eq!(body["groups"], json!([1]));
}

async fn every_new_user_joins_all_users(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ops = app.group("Ops", &[], &[]).await;
    let (carol, _) = app.user("carol", json!({"groups": [ops]})).await;
    let all = app.get("/api/group/1").send().await.expect(200);
    assert_eq!(all["user_set"], json!([1, 2, carol]));
    let user = app
        .get(&format!("/api/user/{carol}"))
        .send()
        .await
        .expect(200);
    assert_eq!(user["groups"], json!([1, ops]));
}
