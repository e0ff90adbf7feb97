//! `/api/servergroup`, `/api/rule` and `/api/policy`.

use evon_store::Backend;
use serde_json::{json, Value};

use crate::harness::{snapshot, TestApp};
use crate::on_both_backends;

on_both_backends!(
    server_groups,
    all_servers_group,
    rules_crud,
    port_specs,
    protocol_changes,
    policies_crud,
    deletions_cascade
);

async fn server_groups(backend: Backend) {
    let app = TestApp::new(backend).await;
    let web = app.register(&TestApp::uuid(1), "web1");
    let created = app
        .post(
            "/api/servergroup",
            json!({"name": "Web", "server_set": [web], "description": "front ends"}),
        )
        .send()
        .await
        .expect(201);
    snapshot("servergroup_create", &created);
    let id = created["id"].as_i64().unwrap();
    // Names may repeat; commas are refused; server_set and name are required.
    app.post("/api/servergroup", json!({"name": "Web", "server_set": []}))
        .send()
        .await
        .expect(201);
    let body = app
        .post(
            "/api/servergroup",
            json!({"name": "Web, DB", "server_set": [998]}),
        )
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"server_set": ["Invalid pk \"998\" - object does not exist."], "name": ["Name must not contain commas"]})
    );
    let body = app
        .post("/api/servergroup", json!({"description": null}))
        .send()
        .await
        .expect(400);
    snapshot("servergroup_create_required", &body);
    let body = app
        .patch(
            &format!("/api/servergroup/{id}"),
            json!({"description": null, "server_set": []}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"id": id, "server_set": [], "name": "Web", "description": null})
    );
    let server = app
        .get(&format!("/api/server/{web}"))
        .send()
        .await
        .expect(200);
    assert_eq!(server["server_groups"], json!([1]));
    snapshot(
        "servergroup_list",
        &app.get("/api/servergroup").send().await.expect(200),
    );
    app.delete(&format!("/api/servergroup/{id}"))
        .send()
        .await
        .expect(204);
    app.get(&format!("/api/servergroup/{id}"))
        .send()
        .await
        .expect(404);
}

async fn all_servers_group(backend: Backend) {
    let app = TestApp::new(backend).await;
    let web = app.register(&TestApp::uuid(1), "web1");
    let all = app.get("/api/servergroup/1").send().await.expect(200);
    assert_eq!(
        all,
        json!({"id": 1, "server_set": [web], "name": "All Servers", "description": "Every server on this hub"})
    );
    app.delete("/api/servergroup/1").send().await.expect(403);
    let body = app
        .patch("/api/servergroup/1", json!({"name": "Everything"}))
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"name": ["The All Servers group cannot be renamed."]})
    );
    let body = app
        .patch("/api/servergroup/1", json!({"server_set": []}))
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"server_set": ["Every server is a member of All Servers; no server can be removed from it."]})
    );
    app.patch("/api/servergroup/1", json!({"description": "all of them"}))
        .send()
        .await
        .expect(200);
    let body = app
        .patch(&format!("/api/server/{web}"), json!({"server_groups": []}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        body["server_groups"],
        json!([1]),
        "the server side cannot leave it either"
    );
}

async fn rules_crud(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (alice, _) = app.user("alice", json!({})).await;
    let web = app.register(&TestApp::uuid(1), "web1");
    let created = app
        .post(
            "/api/rule",
            json!({
                "name": "web",
                "destination_protocol": "TCP",
                "destination_ports": "443, 80,80,7000-8000",
                "source_users": [alice],
                "source_groups": [1],
                "source_servers": [web],
                "source_servergroups": [1]
            }),
        )
        .send()
        .await
        .expect(201);
    assert_eq!(
        created["destination_ports"], "80,443,7000-8000",
        "sorted by number"
    );
    snapshot("rule_create", &created);
    let id = created["id"].as_i64().unwrap();
    let body = app
        .patch(
            &format!("/api/rule/{id}"),
            json!({"source_users": [], "name": "renamed"}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        (body["name"].clone(), body["source_users"].clone()),
        (json!("renamed"), json!([]))
    );
    assert_eq!(
        body["destination_ports"], "80,443,7000-8000",
        "untouched fields keep their values"
    );
    let body = app
        .post("/api/rule", json!({"name": "x", "destination_protocol": "ICMP", "source_users": [404], "source_groups": [405], "source_servers": [406], "source_servergroups": [407]}))
        .send()
        .await
        .expect(400);
    snapshot("rule_create_unknown_sources", &body);
    snapshot(
        "rule_create_required",
        &app.post("/api/rule", json!({})).send().await.expect(400),
    );
    snapshot("rule_list", &app.get("/api/rule").send().await.expect(200));
    app.delete(&format!("/api/rule/{id}"))
        .send()
        .await
        .expect(204);
    app.get(&format!("/api/rule/{id}")).send().await.expect(404);
}

async fn port_specs(backend: Backend) {
    let app = TestApp::new(backend).await;
    let cases = [
        ("TCP", ""),
        ("UDP", "   "),
        ("ICMP", "80"),
        ("ALL", "1-2"),
        ("TCP", "80;443"),
        ("TCP", "http"),
        ("TCP", "80,"),
        ("TCP", "1--3"),
        ("TCP", "70000"),
        ("TCP", "99999999999999999999"),
        ("UDP", "100-10"),
        ("UDP", "10-10"),
        ("TCP", "1-2-3"),
        ("tcp", "80"),
        ("SCTP", "80"),
    ];
    let mut seen = Vec::new();
    for (protocol, ports) in cases {
        let body = app
            .post(
                "/api/rule",
                json!({"name": "r", "destination_protocol": protocol, "destination_ports": ports}),
            )
            .send()
            .await
            .expect(400);
        seen.push(json!({"protocol": protocol, "ports": ports, "errors": body}));
    }
    snapshot("rule_port_errors", &Value::Array(seen));
    for (protocol, ports, stored) in [
        ("ICMP", "", ""),
        ("ALL", "", ""),
        ("UDP", " 53 ", "53"),
        ("TCP", "0,65535,1-65535", "0,1-65535,65535"),
    ] {
        let body = app
            .post(
                "/api/rule",
                json!({"name": "ok", "destination_protocol": protocol, "destination_ports": ports}),
            )
            .send()
            .await
            .expect(201);
        assert_eq!(body["destination_ports"], stored, "{protocol} {ports:?}");
    }
    assert_eq!(
        app.get("/api/rule").send().await.expect(200)["count"],
        4,
        "refused rules were not written"
    );
}

async fn protocol_changes(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = app
        .post(
            "/api/rule",
            json!({"name": "web", "destination_protocol": "TCP", "destination_ports": "80"}),
        )
        .send()
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/rule/{id}");
    let body = app
        .patch(&path, json!({"destination_protocol": "ICMP"}))
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"destination_ports": ["Ports can only be specified for destination protocols TCP or UDP"]})
    );
    let body = app
        .patch(&path, json!({"destination_ports": ""}))
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"destination_ports": ["At least one port must be specified for destination protocols TCP or UDP"]})
    );
    let body = app
        .patch(
            &path,
            json!({"destination_protocol": "ICMP", "destination_ports": ""}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        (
            body["destination_protocol"].clone(),
            body["destination_ports"].clone()
        ),
        (json!("ICMP"), json!(""))
    );
    let body = app
        .patch(
            &path,
            json!({"destination_protocol": "UDP", "destination_ports": "53,5353"}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(body["destination_ports"], "53,5353");
}

async fn policies_crud(backend: Backend) {
    let app = TestApp::new(backend).await;
    let web = app.register(&TestApp::uuid(1), "web1");
    let rule = app
        .post(
            "/api/rule",
            json!({"name": "any", "destination_protocol": "ALL"}),
        )
        .send()
        .await
        .expect(201)["id"]
        .clone();
    let body = app
        .post("/api/policy", json!({"name": "minimal"}))
        .send()
        .await
        .expect(201);
    assert_eq!(body["rules"], json!([]));
    assert_eq!(body["description"], Value::Null);
    let created = app
        .post("/api/policy", json!({"name": "full", "description": "d", "rules": [rule], "servers": [web, web], "servergroups": [1]}))
        .send()
        .await
        .expect(201);
    snapshot("policy_create", &created);
    let id = created["id"].as_i64().unwrap();
    let body = app
        .patch(
            &format!("/api/policy/{id}"),
            json!({"servers": [], "rules": [999]}),
        )
        .send()
        .await
        .expect(400);
    assert_eq!(
        body,
        json!({"rules": ["Invalid pk \"999\" - object does not exist."]})
    );
    let body = app
        .patch(
            &format!("/api/policy/{id}"),
            json!({"servers": [], "description": null}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        (
            body["servers"].clone(),
            body["description"].clone(),
            body["rules"].clone()
        ),
        (json!([]), Value::Null, json!([rule]))
    );
    let body = app
        .post("/api/policy", json!({"name": "", "servergroups": "1"}))
        .send()
        .await
        .expect(400);
    snapshot("policy_create_invalid", &body);
    snapshot(
        "policy_list",
        &app.get("/api/policy").send().await.expect(200),
    );
    app.delete(&format!("/api/policy/{id}"))
        .send()
        .await
        .expect(204);
    app.delete(&format!("/api/policy/{id}"))
        .send()
        .await
        .expect(404);
}

async fn deletions_cascade(backend: Backend) {
    let app = TestApp::new(backend).await;
    let web = app.register(&TestApp::uuid(1), "web1");
    let (alice, _) = app.user("alice", json!({})).await;
    let group = app.group("g", &[alice], &[]).await;
    let sg = app
        .post(
            "/api/servergroup",
            json!({"name": "sg", "server_set": [web]}),
        )
        .send()
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap();
    let rule = app
        .post("/api/rule", json!({"name": "r", "destination_protocol": "ICMP", "source_users": [alice], "source_groups": [group], "source_servers": [web], "source_servergroups": [sg]}))
        .send()
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap();
    let policy = app
        .post(
            "/api/policy",
            json!({"name": "p", "rules": [rule], "servers": [web], "servergroups": [sg]}),
        )
        .send()
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap();
    app.delete(&format!("/api/user/{alice}"))
        .send()
        .await
        .expect(204);
    app.delete(&format!("/api/group/{group}"))
        .send()
        .await
        .expect(204);
    app.delete(&format!("/api/server/{web}"))
        .send()
        .await
        .expect(204);
    app.delete(&format!("/api/servergroup/{sg}"))
        .send()
        .await
        .expect(204);
    let rule = app
        .get(&format!("/api/rule/{rule}"))
        .send()
        .await
        .expect(200);
    for field in [
        "source_users",
        "source_groups",
        "source_servers",
        "source_servergroups",
    ] {
        assert_eq!(rule[field], json!([]), "{field}");
    }
    let policy_body = app
        .get(&format!("/api/policy/{policy}"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (
            policy_body["servers"].clone(),
            policy_body["servergroups"].clone()
        ),
        (json!([]), json!([]))
    );
    app.delete(&format!("/api/rule/{}", rule["id"]))
        .send()
        .await
        .expect(204);
    assert_eq!(
        app.get(&format!("/api/policy/{policy}"))
            .send()
            .await
            .expect(200)["rules"],
        json!([])
    );
}
