//! No privilege escalation: a user who may add and change users (or groups) can neither make
//! nor become a superuser, nor hand out a permission it does not hold.

use evon_store::Backend;
use serde_json::json;

use crate::harness::TestApp;
use crate::on_both_backends;

// add_user, change_user, view_user.
const USER_ADMIN: [i64; 3] = [1, 2, 4];

on_both_backends!(
    cannot_make_superusers,
    cannot_grant_what_it_lacks,
    cannot_touch_superuser_accounts,
    group_escalation
);

async fn cannot_make_superusers(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (me, token) = app.user_with("manager", &USER_ADMIN).await;
    let response = app
        .post(
            "/api/user",
            json!({"username": "evil", "password": "pw", "is_superuser": true}),
        )
        .token(&token)
        .send()
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(
        app.get("/api/user").send().await.expect(200)["count"],
        3,
        "nothing was created"
    );
    app.patch(&format!("/api/user/{me}"), json!({"is_superuser": true}))
        .token(&token)
        .send()
        .await
        .expect(403);
    let (other, _) = app.user("other", json!({})).await;
    app.patch(
        &format!("/api/user/{other}"),
        json!({"is_superuser": "true"}),
    )
    .token(&token)
    .send()
    .await
    .expect(403);
    let user = app
        .get(&format!("/api/user/{other}"))
        .send()
        .await
        .expect(200);
    assert_eq!(user["is_superuser"], false);
    // Saying false is no escalation.
    app.post(
        "/api/user",
        json!({"username": "fine", "password": "pw", "is_superuser": false}),
    )
    .token(&token)
    .send()
    .await
    .expect(201);
}

async fn cannot_grant_what_it_lacks(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (me, token) = app.user_with("manager", &USER_ADMIN).await;
    let powerful = app.group("Powerful", &[], &[3, 24]).await;
    // Directly.
    app.post(
        "/api/user",
        json!({"username": "x1", "password": "pw", "user_permissions": [3]}),
    )
    .token(&token)
    .send()
    .await
    .expect(403);
    app.patch(&format!("/api/user/{me}"), json!({"user_permissions": [3]}))
        .token(&token)
        .send()
        .await
        .expect(403);
    // Through a group.
    app.post(
        "/api/user",
        json!({"username": "x2", "password": "pw", "groups": [powerful]}),
    )
    .token(&token)
    .send()
    .await
    .expect(403);
    app.patch(&format!("/api/user/{me}"), json!({"groups": [powerful]}))
        .token(&token)
        .send()
        .await
        .expect(403);
    let mine = app.get(&format!("/api/user/{me}")).send().await.expect(200);
    assert_eq!(mine["user_permissions"], json!([]));
    assert!(!mine["groups"]
        .as_array()
        .unwrap()
        .contains(&json!(powerful)));
    // What it holds, it may pass on.
    app.post(
        "/api/user",
        json!({"username": "x3", "password": "pw", "user_permissions": [4, 1]}),
    )
    .token(&token)
    .send()
    .await
    .expect(201);
}

async fn cannot_touch_superuser_accounts(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, token) = app.user_with("manager", &[1, 2, 3, 4]).await;
    let (root2, root2_token) = app.user("root2", json!({"is_superuser": true})).await;
    // Changing a superuser's password or name would be a way to become it.
    app.patch(
        &format!("/api/user/{root2}"),
        json!({"password": "mine now"}),
    )
    .token(&token)
    .send()
    .await
    .expect(403);
    app.patch("/api/user/1", json!({"first_name": "x"}))
        .token(&token)
        .send()
        .await
        .expect(403);
    app.delete(&format!("/api/user/{root2}"))
        .token(&token)
        .send()
        .await
        .expect(403);
    app.get("/api/ping")
        .token(&root2_token)
        .send()
        .await
        .expect(200);
    let root = app
        .get(&format!("/api/user/{root2}"))
        .token(&token)
        .send()
        .await
        .expect(200);
    assert_eq!(root["is_superuser"], true);
}

async fn group_escalation(backend: Backend) {
    let app = TestApp::new(backend).await;
    // add/change/view group, view user.
    let (me, token) = app.user_with("grouper", &[5, 6, 8, 4]).await;
    let powerful = app.group("Powerful", &[], &[3]).await;
    app.post(
        "/api/group",
        json!({"name": "Mine", "user_set": [me], "permissions": [3]}),
    )
    .token(&token)
    .send()
    .await
    .expect(403);
    app.patch(&format!("/api/group/{powerful}"), json!({"user_set": [me]}))
        .token(&token)
        .send()
        .await
        .expect(403);
    let own = app
        .post(
            "/api/group",
            json!({"name": "Mine", "user_set": [], "permissions": [8]}),
        )
        .token(&token)
        .send()
        .await
        .expect(201);
    let own = own["id"].as_i64().unwrap();
    app.patch(&format!("/api/group/{own}"), json!({"permissions": [8, 3]}))
        .token(&token)
        .send()
        .await
        .expect(403);
    app.patch("/api/group/1", json!({"permissions": [3]}))
        .token(&token)
        .send()
        .await
        .expect(403);
    app.patch(
        &format!("/api/group/{own}"),
        json!({"user_set": [me], "permissions": [8, 4]}),
    )
    .token(&token)
    .send()
    .await
    .expect(200);
    let group = app
        .get(&format!("/api/group/{powerful}"))
        .send()
        .await
        .expect(200);
    assert_eq!(group["user_set"], json!([]));
}
