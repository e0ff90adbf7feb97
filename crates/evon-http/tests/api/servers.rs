//! `/api/server`: the full and restricted views, `accessible`, server groups, deletion, and
//! what registration and Config do to servers.

use actix_web::http::Method;
use evon_store::Backend;
use serde_json::{json, Value};

use crate::harness::{snapshot, TestApp};
use crate::on_both_backends;

on_both_backends!(
    full_view_for_superusers,
    restricted_view_for_others,
    detail_routes,
    names_and_addresses,
    connection_state_and_time_zone,
    blacklist_deletes_servers,
    registration_decisions,
);

fn ids(body: &Value) -> Vec<i64> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect()
}

/// A TCP 22 rule for `sources` and a policy applying it to `servers`.
async fn allow(app: &TestApp, sources: Value, servers: &[i64], servergroups: &[i64]) -> (i64, i64) {
    let mut rule = json!({"name": "ssh", "destination_protocol": "TCP", "destination_ports": "22"});
    rule.as_object_mut()
        .unwrap()
        .extend(sources.as_object().unwrap().clone());
    let rule = app.post("/api/rule", rule).send().await.expect(201)["id"]
        .as_i64()
        .unwrap();
    let policy = app
        .post(
            "/api/policy",
            json!({"name": "p", "rules": [rule], "servers": servers, "servergroups": servergroups}),
        )
        .send()
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap();
    (rule, policy)
}

async fn full_view_for_superusers(backend: Backend) {
    let app = TestApp::new(backend).await;
    let web = app.register(&TestApp::uuid(1), "web1");
    let db = app.register(&TestApp::uuid(2), "db1");
    let body = app.get("/api/server").send().await.expect(200);
    assert_eq!(ids(&body), vec![web, db]);
    for server in body["results"].as_array().unwrap() {
        assert_eq!(
            server["accessible"], false,
            "being superuser is not a policy"
        );
    }
    snapshot("server_list_admin", &body);
    allow(&app, json!({"source_users": [1]}), &[db], &[]).await;
    let body = app.get("/api/server").send().await.expect(200);
    let accessible: Vec<Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["accessible"].clone())
        .collect();
    assert_eq!(accessible, vec![json!(false), json!(true)]);
    app.req(Method::POST, "/api/server")
        .json(json!({}))
        .send()
        .await
        .expect(405);
}

async fn restricted_view_for_others(backend: Backend) {
    let app = TestApp::new(backend).await;
    let servers: Vec<i64> = (1..=5)
        .map(|n| app.register(&TestApp::uuid(n), &format!("s{n}")))
        .collect();
    let (alice, alice_token) = app.user("alice", json!({})).await;
    let (bob, bob_token) = app.user("bob", json!({})).await;
    let (_, carol_token) = app.user("carol", json!({})).await;
    let team = app.group("team", &[bob], &[]).await;
    let pair = app
        .post(
            "/api/servergroup",
            json!({"name": "pair", "server_set": [servers[3], servers[4]]}),
        )
        .send()
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap();
    // alice directly on s1; the team (bob) via the server group {s4, s5}; carol nowhere.
    allow(&app, json!({"source_users": [alice]}), &[servers[0]], &[]).await;
    allow(&app, json!({"source_groups": [team]}), &[], &[pair]).await;
    // A rule sourcing a server gives no user anything.
    allow(
        &app,
        json!({"source_servers": [servers[1]]}),
        &[servers[2]],
        &[],
    )
    .await;

    let body = app
        .get("/api/server")
        .token(&alice_token)
        .send()
        .await
        .expect(200);
    assert_eq!(ids(&body), vec![servers[0]]);
    assert_eq!(body["count"], 1);
    snapshot("server_list_restricted", &body);
    let body = app
        .get("/api/server")
        .token(&bob_token)
        .send()
        .await
        .expect(200);
    assert_eq!(ids(&body), vec![servers[3], servers[4]]);
    for server in body["results"].as_array().unwrap() {
        let keys: Vec<&String> = server.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "connected",
                "disconnected_since",
                "fqdn",
                "id",
                "ipv4_address",
                "last_seen"
            ]
        );
    }
    let body = app
        .get("/api/server")
        .token(&carol_token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"count": 0, "next": null, "previous": null, "results": []})
    );
    // Inactive users reach nothing.
    app.patch(&format!("/api/user/{alice}"), json!({"is_active": false}))
        .send()
        .await
        .expect(200);
    let index = app.store().read(evon_store::network::snapshot).unwrap();
    let index = evon_domain::AccessIndex::build(&index);
    assert!(!index.can_reach(alice as i32, servers[0] as i32));
    assert!(index.can_reach(bob as i32, servers[4] as i32));
    // Leaving the group removes access.
    app.patch(&format!("/api/group/{team}"), json!({"user_set": []}))
        .send()
        .await
        .expect(200);
    let body = app
        .get("/api/server")
        .token(&bob_token)
        .send()
        .await
        .expect(200);
    assert_eq!(body["count"], 0);
}

async fn detail_routes(backend: Backend) {
    let app = TestApp::new(backend).await;
    let web = app.register(&TestApp::uuid(1), "web1");
    let path = format!("/api/server/{web}");
    let body = app.get(&path).send().await.expect(200);
    assert_eq!(body["server_groups"], json!([1]));
    snapshot("server_retrieve", &body);
    let group = app
        .post("/api/servergroup", json!({"name": "web", "server_set": []}))
        .send()
        .await
        .expect(201)["id"]
        .clone();
    let body = app
        .patch(&path, json!({"server_groups": [group], "fqdn": "evil.example.com", "ipv4_address": "1.1.1.1", "uuid": "x"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        body["server_groups"],
        json!([1, group]),
        "All Servers stays"
    );
    assert_eq!(
        body["fqdn"], "web1.hub.example.com",
        "only server_groups can change"
    );
    let body = app
        .patch(&path, json!({"server_groups": [999]}))
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"server_groups": ["Invalid pk \"999\" - object does not exist."]})
    );
    let group_body = app
        .get(&format!("/api/servergroup/{group}"))
        .send()
        .await
        .expect(200);
    assert_eq!(group_body["server_set"], json!([web]));
    app.delete(&path).send().await.expect(204);
    app.get(&path).send().await.expect(404);
    app.delete(&path).send().await.expect(404);
    let all = app.get("/api/servergroup/1").send().await.expect(200);
    assert_eq!(all["server_set"], json!([]));
}

async fn names_and_addresses(backend: Backend) {
    let app = TestApp::new(backend).await;
    let a = app.register(&TestApp::uuid(1), "web1");
    let b = app.register(&TestApp::uuid(2), "WEB1.hub.example.com");
    let c = app.register(&TestApp::uuid(3), "web1");
    let body = app.get("/api/server").send().await.expect(200);
    let rows: Vec<(Value, Value)> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["fqdn"].clone(), s["ipv4_address"].clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (json!("web1.hub.example.com"), json!("100.111.224.6")),
            (json!("web1-1.hub.example.com"), json!("100.111.224.10")),
            (json!("web1-2.hub.example.com"), json!("100.111.224.14")),
        ]
    );
    // Re-registering keeps the address and the name it holds; a new name is taken if free.
    assert_eq!(app.register(&TestApp::uuid(2), "web1"), b);
    assert_eq!(
        app.get(&format!("/api/server/{b}"))
            .send()
            .await
            .expect(200)["fqdn"],
        "web1-1.hub.example.com"
    );
    app.register(&TestApp::uuid(2), "api");
    let body = app
        .get(&format!("/api/server/{b}"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (body["fqdn"].clone(), body["ipv4_address"].clone()),
        (json!("api.hub.example.com"), json!("100.111.224.10"))
    );
    // Deleting frees the lowest address for the next new server.
    app.delete(&format!("/api/server/{a}"))
        .send()
        .await
        .expect(204);
    let d = app.register(&TestApp::uuid(4), "web9");
    assert_eq!(
        app.get(&format!("/api/server/{d}"))
            .send()
            .await
            .expect(200)["ipv4_address"],
        "100.111.224.6"
    );
    let _ = c;
}

async fn connection_state_and_time_zone(backend: Backend) {
    let app = TestApp::new(backend).await;
    let uuid = evon_domain::validate::ServerUuid::parse(&TestApp::uuid(1)).unwrap();
    let id = app.register(uuid.as_str(), "web1");
    let path = format!("/api/server/{id}");
    let body = app.get(&path).send().await.expect(200);
    assert_eq!(
        (
            body["connected"].clone(),
            body["disconnected_since"].clone()
        ),
        (json!(false), Value::Null)
    );
    let connected_uuid = uuid.clone();
    app.store()
        .write(move |conn| evon_store::servers::mark_connected(conn, &connected_uuid))
        .unwrap();
    let body = app.get(&path).send().await.expect(200);
    assert_eq!(
        (body["connected"].clone(), body["last_seen"].clone()),
        (json!(true), json!("now"))
    );
    let at = chrono::Utc::now() - chrono::Duration::seconds(207);
    let gone_uuid = uuid.clone();
    app.store()
        .write(move |conn| evon_store::servers::mark_disconnected(conn, &gone_uuid, at))
        .unwrap();
    let body = app.get(&path).send().await.expect(200);
    assert_eq!(body["connected"], false);
    let seen = body["last_seen"].as_str().unwrap();
    assert!(
        seen == "3 minutes and 27 seconds ago" || seen == "3 minutes and 28 seconds ago",
        "{seen}"
    );
    let utc = body["disconnected_since"].as_str().unwrap().to_owned();
    assert!(utc.ends_with('Z'), "{utc}");
    app.patch("/api/config/1", json!({"timezone": "Australia/Sydney"}))
        .send()
        .await
        .expect(200);
    let body = app.get(&path).send().await.expect(200);
    let sydney = body["disconnected_since"].as_str().unwrap();
    assert!(
        sydney.ends_with("+11:00") || sydney.ends_with("+10:00"),
        "{sydney}"
    );
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert_eq!(
        parse(&utc),
        parse(sydney),
        "the same instant in another zone"
    );
    // Registering again (a reconnect) does not reset disconnected_since until it connects.
    app.register(uuid.as_str(), "web1");
    assert_eq!(
        app.get(&path).send().await.expect(200)["disconnected_since"].as_str(),
        Some(sydney)
    );
}

async fn blacklist_deletes_servers(backend: Backend) {
    let app = TestApp::new(backend).await;
    let doomed = app.register(&TestApp::uuid(1), "doomed");
    let kept = app.register(&TestApp::uuid(2), "kept");
    let body = app
        .patch("/api/config/1", json!({"uuid_blacklist": TestApp::uuid(1)}))
        .send()
        .await
        .expect(200);
    assert_eq!(body["uuid_blacklist"], TestApp::uuid(1));
    app.get(&format!("/api/server/{doomed}"))
        .send()
        .await
        .expect(404);
    app.get(&format!("/api/server/{kept}"))
        .send()
        .await
        .expect(200);
    let uuid = TestApp::uuid(1);
    let again = app
        .store()
        .write(move |conn| evon_store::servers::register(conn, &uuid, "doomed"))
        .unwrap();
    assert_eq!(
        again,
        evon_store::servers::Registration::Refused(evon_domain::server::Refusal::Blacklisted)
    );
}

async fn registration_decisions(backend: Backend) {
    use evon_domain::server::Refusal;
    use evon_store::servers::Registration;
    let app = TestApp::new(backend).await;
    let register = |uuid: String, name: &str| {
        let name = name.to_owned();
        app.store()
            .write(move |conn| evon_store::servers::register(conn, &uuid, &name))
            .unwrap()
    };
    assert!(matches!(
        register(TestApp::uuid(1), "known"),
        Registration::Allowed { created: true, .. }
    ));
    assert!(matches!(
        register("not-a-uuid".into(), "x"),
        Registration::Refused(Refusal::InvalidUuid(_))
    ));
    assert!(matches!(
        register(TestApp::uuid(2), "bad name!"),
        Registration::Refused(Refusal::InvalidName(_))
    ));
    app.patch(
        "/api/config/1",
        json!({"discovery_mode": false, "uuid_whitelist": TestApp::uuid(3)}),
    )
    .send()
    .await
    .expect(200);
    assert_eq!(
        register(TestApp::uuid(2), "stranger"),
        Registration::Refused(Refusal::NotDiscoverable)
    );
    assert!(matches!(
        register(TestApp::uuid(1), "known"),
        Registration::Allowed { created: false, .. }
    ));
    assert!(matches!(
        register(TestApp::uuid(3), "listed"),
        Registration::Allowed { created: true, .. }
    ));
    // Dashes are optional in what a server sends; the canonical form is stored.
    let undashed = TestApp::uuid(1).replace('-', "");
    assert!(matches!(
        register(undashed, "known"),
        Registration::Allowed { created: false, .. }
    ));
    assert_eq!(app.get("/api/server").send().await.expect(200)["count"], 2);
}
