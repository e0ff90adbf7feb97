//! The permission matrix: every route, as each kind of caller, answers with the status its
//! permission rule implies.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use actix_web::http::Method;
use evon_store::Backend;
use serde_json::{json, Value};

use crate::harness::TestApp;
use crate::on_both_backends;

on_both_backends!(permission_matrix);

/// What a route demands of its caller.
#[derive(Clone, Copy)]
enum Need {
    Authenticated,
    Superuser,
    Permission(i64),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Caller {
    NoHeader,
    BadToken,
    Inactive,
    WithoutPermission,
    ExactPermissionViaGroup,
    Superuser,
}

const CALLERS: [Caller; 6] = [
    Caller::NoHeader,
    Caller::BadToken,
    Caller::Inactive,
    Caller::WithoutPermission,
    Caller::ExactPermissionViaGroup,
    Caller::Superuser,
];

struct Case {
    method: Method,
    /// `{target}`: a plain user; `{fresh_user}`/`{fresh_group}`: made for this one request;
    /// `{group}`: a group; `{self}`: the caller's own id.
    path: &'static str,
    need: Need,
    body: Option<Value>,
    success: u16,
}

fn case(method: Method, path: &'static str, need: Need, body: Option<Value>, success: u16) -> Case {
    Case {
        method,
        path,
        need,
        body,
        success,
    }
}

fn cases() -> Vec<Case> {
    use Need::*;
    vec![
        case(Method::GET, "/api/ping", Authenticated, None, 200),
        case(Method::HEAD, "/api/ping", Authenticated, None, 200),
        case(Method::GET, "/api/permission", Superuser, None, 200),
        case(Method::HEAD, "/api/permission", Superuser, None, 200),
        case(Method::GET, "/api/user", Permission(4), None, 200),
        case(Method::HEAD, "/api/user", Permission(4), None, 200),
        case(
            Method::POST,
            "/api/user",
            Permission(1),
            Some(json!({"username": "{unique}", "password": "pw"})),
            201,
        ),
        case(Method::GET, "/api/user/{target}", Permission(4), None, 200),
        case(Method::HEAD, "/api/user/{target}", Permission(4), None, 200),
        case(
            Method::PATCH,
            "/api/user/{target}",
            Permission(2),
            Some(json!({"first_name": "Changed"})),
            200,
        ),
        case(
            Method::DELETE,
            "/api/user/{fresh_user}",
            Permission(3),
            None,
            204,
        ),
        case(
            Method::GET,
            "/api/userprofile/{self}",
            Authenticated,
            None,
            200,
        ),
        case(
            Method::PATCH,
            "/api/userprofile/{self}",
            Authenticated,
            Some(json!({"shared": true})),
            200,
        ),
        case(
            Method::GET,
            "/api/userprofile/{target}",
            Superuser,
            None,
            200,
        ),
        case(
            Method::HEAD,
            "/api/userprofile/{target}",
            Superuser,
            None,
            200,
        ),
        case(
            Method::PATCH,
            "/api/userprofile/{target}",
            Superuser,
            Some(json!({"shared": true})),
            200,
        ),
        case(Method::GET, "/api/group", Permission(8), None, 200),
        case(Method::HEAD, "/api/group", Permission(8), None, 200),
        case(
            Method::POST,
            "/api/group",
            Permission(5),
            Some(json!({"name": "{unique}", "user_set": [], "permissions": []})),
            201,
        ),
        case(Method::GET, "/api/group/{group}", Permission(8), None, 200),
        case(Method::HEAD, "/api/group/{group}", Permission(8), None, 200),
        case(
            Method::PATCH,
            "/api/group/{group}",
            Permission(6),
            Some(json!({"name": "{unique}"})),
            200,
        ),
        case(
            Method::DELETE,
            "/api/group/{fresh_group}",
            Permission(7),
            None,
            204,
        ),
        case(Method::GET, "/api/server", Authenticated, None, 200),
        case(Method::HEAD, "/api/server", Authenticated, None, 200),
        case(
            Method::GET,
            "/api/server/{server}",
            Permission(11),
            None,
            200,
        ),
        case(
            Method::HEAD,
            "/api/server/{server}",
            Permission(11),
            None,
            200,
        ),
        case(
            Method::PATCH,
            "/api/server/{server}",
            Permission(9),
            Some(json!({"server_groups": []})),
            200,
        ),
        case(
            Method::DELETE,
            "/api/server/{fresh_server}",
            Permission(10),
            None,
            204,
        ),
        case(Method::GET, "/api/servergroup", Permission(15), None, 200),
        case(
            Method::POST,
            "/api/servergroup",
            Permission(12),
            Some(json!({"name": "{unique}", "server_set": []})),
            201,
        ),
        case(
            Method::GET,
            "/api/servergroup/{servergroup}",
            Permission(15),
            None,
            200,
        ),
        case(
            Method::PATCH,
            "/api/servergroup/{servergroup}",
            Permission(13),
            Some(json!({"description": "{unique}"})),
            200,
        ),
        case(
            Method::DELETE,
            "/api/servergroup/{fresh_servergroup}",
            Permission(14),
            None,
            204,
        ),
        case(Method::GET, "/api/rule", Permission(19), None, 200),
        case(
            Method::POST,
            "/api/rule",
            Permission(16),
            Some(json!({"name": "{unique}", "destination_protocol": "ICMP"})),
            201,
        ),
        case(Method::GET, "/api/rule/{rule}", Permission(19), None, 200),
        case(
            Method::PATCH,
            "/api/rule/{rule}",
            Permission(17),
            Some(json!({"name": "{unique}"})),
            200,
        ),
        case(
            Method::DELETE,
            "/api/rule/{fresh_rule}",
            Permission(18),
            None,
            204,
        ),
        case(Method::GET, "/api/policy", Permission(23), None, 200),
        case(
            Method::POST,
            "/api/policy",
            Permission(20),
            Some(json!({"name": "{unique}"})),
            201,
        ),
        case(
            Method::GET,
            "/api/policy/{policy}",
            Permission(23),
            None,
            200,
        ),
        case(
            Method::PATCH,
            "/api/policy/{policy}",
            Permission(21),
            Some(json!({"name": "{unique}"})),
            200,
        ),
        case(
            Method::DELETE,
            "/api/policy/{fresh_policy}",
            Permission(22),
            None,
            204,
        ),
        case(Method::GET, "/api/config", Permission(25), None, 200),
        case(Method::HEAD, "/api/config", Permission(25), None, 200),
        case(
            Method::PATCH,
            "/api/config/1",
            Permission(24),
            Some(json!({"auto_update": false})),
            200,
        ),
    ]
}

fn expected(need: Need, caller: Caller, success: u16) -> u16 {
    match (caller, need) {
        (Caller::NoHeader | Caller::BadToken | Caller::Inactive, _) => 401,
        (Caller::Superuser, _) => success,
        (_, Need::Authenticated) => success,
        (_, Need::Superuser) => 403,
        (Caller::WithoutPermission, Need::Permission(_)) => 403,
        (Caller::ExactPermissionViaGroup, Need::Permission(_)) => success,
    }
}

async fn permission_matrix(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (target, _) = app.user("target", json!({})).await;
    let group = app.group("Target group", &[], &[]).await;
    let server = app.register(&TestApp::uuid(1), "target");
    let servergroup = app
        .post("/api/servergroup", json!({"name": "sg", "server_set": []}))
        .send()
        .await
        .expect(201)["id"]
        .clone();
    let rule = app
        .post(
            "/api/rule",
            json!({"name": "r", "destination_protocol": "ALL"}),
        )
        .send()
        .await
        .expect(201)["id"]
        .clone();
    let policy = app
        .post("/api/policy", json!({"name": "p"}))
        .send()
        .await
        .expect(201)["id"]
        .clone();
    let (inactive_id, inactive_token) = app
        .user_with("inactive", &(1..=25).collect::<Vec<_>>())
        .await;
    app.patch(
        &format!("/api/user/{inactive_id}"),
        json!({"is_active": false}),
    )
    .send()
    .await
    .expect(200);
    let (plain_id, plain_token) = app.user("plain", json!({})).await;
    let mut exact: HashMap<i64, (i64, String)> = HashMap::new();
    let mut counter: u32 = 0;
    let mut table = Vec::new();

    for case in cases() {
        let mut row = Vec::new();
        for caller in CALLERS {
            let (caller_id, token) = match (caller, case.need) {
                (Caller::NoHeader, _) => (1, None),
                (Caller::BadToken, _) => (1, Some("f".repeat(40))),
                (Caller::Inactive, _) => (inactive_id, Some(inactive_token.clone())),
                (Caller::WithoutPermission, _)
                | (Caller::ExactPermissionViaGroup, Need::Authenticated | Need::Superuser) => {
                    (plain_id, Some(plain_token.clone()))
                }
                (Caller::ExactPermissionViaGroup, Need::Permission(permission)) => {
                    if let Entry::Vacant(slot) = exact.entry(permission) {
                        slot.insert(
                            app.user_with(&format!("holder{permission}"), &[permission])
                                .await,
                        );
                    }
                    let (id, token) = &exact[&permission];
                    (*id, Some(token.clone()))
                }
                (Caller::Superuser, _) => (1, Some(app.admin.clone())),
            };
            counter += 1;
            let mut path = case
                .path
                .replace("{target}", &target.to_string())
                .replace("{group}", &group.to_string());
            path = path.replace("{self}", &caller_id.to_string());
            if path.contains("{fresh_user}") {
                let (fresh, _) = app.user(&format!("fresh{counter}"), json!({})).await;
                path = path.replace("{fresh_user}", &fresh.to_string());
            }
            if path.contains("{fresh_server}") {
                let fresh =
                    app.register(&TestApp::uuid(1000 + counter), &format!("fresh{counter}"));
                path = path.replace("{fresh_server}", &fresh.to_string());
            }
            for (placeholder, collection, body) in [
                (
                    "{fresh_servergroup}",
                    "/api/servergroup",
                    json!({"name": "fresh", "server_set": []}),
                ),
                (
                    "{fresh_rule}",
                    "/api/rule",
                    json!({"name": "fresh", "destination_protocol": "ALL"}),
                ),
                ("{fresh_policy}", "/api/policy", json!({"name": "fresh"})),
            ] {
                if path.contains(placeholder) {
                    let fresh =
                        app.post(collection, body).send().await.expect(201)["id"].to_string();
                    path = path.replace(placeholder, &fresh);
                }
            }
            path = path
                .replace("{server}", &server.to_string())
                .replace("{servergroup}", &servergroup.to_string())
                .replace("{rule}", &rule.to_string())
                .replace("{policy}", &policy.to_string());
            if path.contains("{fresh_group}") {
                let fresh = app.group(&format!("fresh{counter}"), &[], &[]).await;
                path = path.replace("{fresh_group}", &fresh.to_string());
            }
            let mut request = app.req(case.method.clone(), &path).anonymous();
            if let Some(token) = token {
                request = request.token(&token);
            }
            if let Some(body) = &case.body {
                let text = body
                    .to_string()
                    .replace("{unique}", &format!("unique{counter}"));
                request = request.json(serde_json::from_str(&text).unwrap());
            }
            let status = request.send().await.status.as_u16();
            assert_eq!(
                status,
                expected(case.need, caller, case.success),
                "{} {} as {caller:?}",
                case.method,
                case.path
            );
            row.push(status.to_string());
        }
        table.push(format!(
            "{:<7}{:<38}{}",
            case.method.as_str(),
            case.path,
            row.join("  ")
        ));
    }
    let header = format!("{:<45}{}", "", "none bad inactive without exact superuser");
    insta::with_settings!({ prepend_module_to_snapshot => false, snapshot_path => "snapshots", omit_expression => true }, {
        insta::assert_snapshot!("permission_matrix", format!("{header}\n{}", table.join("\n")));
    });
}
