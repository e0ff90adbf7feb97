//! `/api/user`: listing, creating, reading, changing and deleting users.

use evon_store::Backend;
use serde_json::json;

use crate::harness::{snapshot, TestApp};
use crate::on_both_backends;

on_both_backends!(
    list_shows_builtins_without_passwords,
    create_and_read,
    create_requires_username_and_password,
    create_reports_every_bad_field,
    duplicate_username,
    unknown_relations,
    password_is_hashed_and_usable,
    patch_and_delete,
    missing_users_are_not_found,
    addresses_are_lowest_free_and_kept,
);

async fn list_shows_builtins_without_passwords(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = app.get("/api/user").send().await.expect(200);
    for user in body["results"].as_array().unwrap() {
        assert!(user.get("password").is_none());
        assert!(user.get("token").is_none());
    }
    snapshot("user_list", &body);
}

async fn create_and_read(backend: Backend) {
    let app = TestApp::new(backend).await;
    let group = app.group("Ops", &[], &[]).await;
    let response = app
        .post(
            "/api/user",
            json!({
                "username": "  alice ",
                "password": "s3cret pass",
                "first_name": "Alice",
                "last_name": "Liddell",
                "email": "alice@example.com",
                "groups": [group],
                "user_permissions": [4, 8, 4],
                "is_superuser": false,
                "id": 999,
                "userprofile_id": 999,
                "unknown": "ignored"
            }),
        )
        .send()
        .await;
    assert_eq!(
        response.header("cache-control"),
        Some("no-store"),
        "the token is a secret"
    );
    let created = response.expect(201);
    assert_ne!(created["id"], 999, "read-only id ignored");
    assert_eq!(created["id"], created["userprofile_id"]);
    assert!(created.get("password").is_none());
    snapshot("user_create", &created);
    let id = created["id"].as_i64().unwrap();
    let read = app.get(&format!("/api/user/{id}")).send().await.expect(200);
    assert!(read.get("token").is_none(), "the token is shown once");
    snapshot("user_retrieve", &read);
}

async fn create_requires_username_and_password(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = app.post("/api/user", json!({})).send().await.expect(400);
    snapshot("user_create_required", &body);
    let body = app
        .post("/api/user", json!({"username": "", "password": ""}))
        .send()
        .await
        .expect(400);
    snapshot("user_create_blank", &body);
}

async fn create_reports_every_bad_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = app
        .post(
            "/api/user",
            json!({
                "username": "no spaces allowed",
                "password": "x".repeat(129),
                "email": "not-an-email",
                "first_name": "f".repeat(151),
                "is_active": "perhaps",
                "groups": "1",
                "user_permissions": [1, 26],
            }),
        )
        .send()
        .await
        .expect(400);
    snapshot("user_create_invalid_fields", &body);
    let count = app.get("/api/user").send().await.expect(200)["count"].clone();
    assert_eq!(count, 2, "nothing was written");
}

async fn duplicate_username(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = app
        .post(
            "/api/user",
            json!({"username": "admin", "password": "pw", "groups": [999]}),
        )
        .send()
        .await
        .expect(400);
    snapshot("user_create_duplicate", &body);
    // Usernames are case-sensitive, as in Django.
    app.post("/api/user", json!({"username": "Admin", "password": "pw"}))
        .send()
        .await
        .expect(201);
}

async fn unknown_relations(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = app
        .post("/api/user", json!({"username": "u1", "password": "pw", "groups": [1, 999, 998], "user_permissions": [0]}))
        .send()
        .await
        .expect(400);
    snapshot("user_create_unknown_relations", &body);
    let body = app
        .post("/api/user", json!({"username": "u1", "password": "pw", "groups": [true], "user_permissions": ["x"]}))
        .send()
        .await
        .expect(400);
    snapshot("user_create_relation_types", &body);
}

async fn password_is_hashed_and_usable(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (id, _) = app
        .user("carol", json!({"password": "first password"}))
        .await;
    let stored = app
        .store()
        .read(|conn| evon_store::users::active_password_hash(conn, "carol"))
        .unwrap()
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(evon_crypto::verify_password("first password", &stored));
    let body = app
        .patch(
            &format!("/api/user/{id}"),
            json!({"password": "second password"}),
        )
        .send()
        .await
        .expect(200);
    assert!(body.get("password").is_none());
    let stored = app
        .store()
        .read(|conn| evon_store::users::active_password_hash(conn, "carol"))
        .unwrap()
        .unwrap();
    assert!(evon_crypto::verify_password("second password", &stored));
    assert!(!evon_crypto::verify_password("first password", &stored));
    app.patch(&format!("/api/user/{id}"), json!({"is_active": false}))
        .send()
        .await
        .expect(200);
    let inactive = app
        .store()
        .read(|conn| evon_store::users::active_password_hash(conn, "carol"))
        .unwrap();
    assert!(inactive.is_none(), "inactive users cannot log in");
}

async fn patch_and_delete(backend: Backend) {
    let app = TestApp::new(backend).await;
    let ops = app.group("Ops", &[], &[]).await;
    let (id, token) = app.user("dave", json!({"groups": [ops]})).await;
    let body = app
        .patch(
            &format!("/api/user/{id}"),
            json!({"first_name": "Dave", "groups": [], "user_permissions": [1]}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(body["groups"], json!([1]), "All Users stays");
    snapshot("user_patch", &body);
    let body = app
        .patch(&format!("/api/user/{id}"), json!({"username": "admin"}))
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"username": ["A user with that username already exists."]})
    );
    // Renaming to one's own name is no conflict.
    app.patch(&format!("/api/user/{id}"), json!({"username": "dave"}))
        .send()
        .await
        .expect(200);
    let response = app.delete(&format!("/api/user/{id}")).send().await;
    assert_eq!(response.status, 204);
    assert_eq!(response.raw_len, 0);
    app.get(&format!("/api/user/{id}")).send().await.expect(404);
    app.get("/api/ping").token(&token).send().await.expect(401);
    let group = app
        .get(&format!("/api/group/{ops}"))
        .send()
        .await
        .expect(200);
    assert_eq!(group["user_set"], json!([]), "memberships go with the user");
}

async fn missing_users_are_not_found(backend: Backend) {
    let app = TestApp::new(backend).await;
    for path in ["/api/user/999", "/api/user/99999999999", "/api/user/0"] {
        assert_eq!(
            app.get(path).send().await.expect(404),
            json!({"detail": "Not found."})
        );
        app.patch(path, json!({"first_name": "x"}))
            .send()
            .await
            .expect(404);
        app.delete(path).send().await.expect(404);
    }
}

async fn addresses_are_lowest_free_and_kept(backend: Backend) {
    let app = TestApp::new(backend).await;
    let address = |id: i64| {
        let app = &app;
        async move {
            app.get(&format!("/api/userprofile/{id}"))
                .send()
                .await
                .expect(200)["ipv4_address"]
                .clone()
        }
    };
    assert_eq!(address(1).await, "100.111.208.6");
    assert_eq!(address(2).await, "100.111.208.10");
    let (a, _) = app.user("a", json!({})).await;
    let (b, _) = app.user("b", json!({})).await;
    assert_eq!(address(a).await, "100.111.208.14");
    assert_eq!(address(b).await, "100.111.208.18");
    app.delete(&format!("/api/user/{a}"))
        .send()
        .await
        .expect(204);
    let (c, _) = app.user("c", json!({})).await;
    assert_eq!(
        address(c).await,
        "100.111.208.14",
        "the lowest free address is reused"
    );
    app.patch(&format!("/api/user/{b}"), json!({"username": "bee"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        address(b).await,
        "100.111.208.18",
        "an address stays with its user"
    );
}
