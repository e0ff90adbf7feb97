//! `/api/group`.

use evon_store::Backend;
use serde_json::json;

use crate::harness::{snapshot, TestApp};
use crate::on_both_backends;

on_both_backends!(
    crud,
    create_requires_all_fields,
    unique_and_bounded_names,
    bad_relations
);

async fn crud(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (alice, _) = app.user("alice", json!({})).await;
    let created = app
        .post(
            "/api/group",
            json!({"name": "Developers", "user_set": [alice, alice], "permissions": [19, 16]}),
        )
        .send()
        .await
        .expect(201);
    snapshot("group_create", &created);
    let id = created["id"].as_i64().unwrap();
    let user = app
        .get(&format!("/api/user/{alice}"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        user["groups"],
        json!([1, id]),
        "membership is visible from the user side"
    );
    let patched = app
        .patch(
            &format!("/api/group/{id}"),
            json!({"name": "Devs", "permissions": []}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        patched["user_set"],
        json!([alice]),
        "absent fields are kept"
    );
    snapshot("group_patch", &patched);
    let list = app.get("/api/group").send().await.expect(200);
    snapshot("group_list", &list);
    app.delete(&format!("/api/group/{id}"))
        .send()
        .await
        .expect(204);
    app.get(&format!("/api/group/{id}"))
        .send()
        .await
        .expect(404);
    let user = app
        .get(&format!("/api/user/{alice}"))
        .send()
        .await
        .expect(200);
    assert_eq!(user["groups"], json!([1]));
}

async fn create_requires_all_fields(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = app.post("/api/group", json!({})).send().await.expect(400);
    snapshot("group_create_required", &body);
    app.post(
        "/api/group",
        json!({"name": "Empty", "user_set": [], "permissions": []}),
    )
    .send()
    .await
    .expect(201);
}

async fn unique_and_bounded_names(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.group("Ops", &[], &[]).await;
    let body = app
        .post(
            "/api/group",
            json!({"name": "Ops", "user_set": [], "permissions": []}),
        )
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"name": ["group with this name already exists."]})
    );
    let body = app
        .post(
            "/api/group",
            json!({"name": "g".repeat(151), "user_set": [], "permissions": []}),
        )
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"name": ["Ensure this field has no more than 150 characters."]})
    );
    app.post(
        "/api/group",
        json!({"name": "g".repeat(150), "user_set": [], "permissions": []}),
    )
    .send()
    .await
    .expect(201);
}

async fn bad_relations(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = app
        .post(
            "/api/group",
            json!({"name": "X", "user_set": [1, 404], "permissions": [25, 26]}),
        )
        .send()
        .await
        .expect(400);
    snapshot("group_create_unknown_relations", &body);
    let body = app
        .post(
            "/api/group",
            json!({"name": "X", "user_set": 1, "permissions": {}}),
        )
        .send()
        .await
        .expect(400);
    snapshot("group_create_relation_types", &body);
}
