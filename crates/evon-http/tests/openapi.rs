//! The OpenAPI document against the code: every route is documented and every documented
//! operation is routed, the API snapshots validate against the document's schemas, and
//! `GET /api/schema` serves it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::{header, Method, StatusCode};
use actix_web::{test as atest, web};
use evon_crypto::pki::Pki;
use evon_crypto::{hash_password, ApiToken, HubKey};
use evon_domain::artifacts::HubEndpoints;
use evon_domain::config::HubSettings;
use evon_domain::SubnetKey;
use evon_http::bootstrap::Bootstrap;
use evon_http::openapi::document;
use evon_http::AppState;
use evon_store::hub::InitRequest;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, OpenMode, PoolOptions, Store};
use serde_json::{json, Value};

struct App {
    state: web::Data<AppState>,
    admin: String,
    _db: TestDatabase,
}

struct Resp {
    status: StatusCode,
    headers: header::HeaderMap,
    bytes: web::Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl App {
    fn new() -> Self {
        let db = TestDatabase::new(Backend::Sqlite);
        let store = Store::open(db.url(), OpenMode::CreateIfMissing, &PoolOptions::default())
            .expect("open test store");
        let settings = HubSettings {
            domain: "hub.example.com".into(),
            subnet_key: SubnetKey::new(111),
        };
        let admin = ApiToken::generate();
        let request = InitRequest {
            settings: settings.clone(),
            admin_password_hash: hash_password("admin-password-for-tests").unwrap(),
            admin_token: admin.digest(),
            deployer_token: ApiToken::generate().digest(),
        };
        store
            .write(|conn| evon_store::hub::initialise(conn, &request))
            .expect("initialise test hub");
        let pki = Pki::generate(&settings.domain).expect("test PKI");
        let endpoints = HubEndpoints {
            domain: settings.domain.clone(),
            public_host: settings.domain.clone(),
            api_url: "http://hub.example.com".into(),
            server_port: 1194,
            user_port: 1194,
            subnet_key: settings.subnet_key,
        };
        let bootstrap = Bootstrap::render(HubKey::generate(), &pki, &endpoints, "test")
            .expect("render downloads");
        let state = web::Data::new(AppState::new(store, settings, None).with_bootstrap(bootstrap));
        Self {
            state,
            admin: admin.reveal().to_owned(),
            _db: db,
        }
    }

    async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        let service = atest::init_service(evon_http::app(self.state.clone())).await;
        let mut request = atest::TestRequest::default().method(method).uri(uri);
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        if let Some(body) = body {
            request = request
                .insert_header(("Content-Type", "application/json"))
                .set_payload(serde_json::to_vec(&body).unwrap());
        }
        let response = atest::call_service(&service, request.to_request()).await;
        let status = response.status();
        let headers = response.headers().clone();
        Resp {
            status,
            headers,
            bytes: atest::read_body(response).await,
        }
    }

    async fn admin(&self, method: Method, uri: &str, body: Option<Value>) -> Resp {
        let auth = format!("Token {}", self.admin);
        self.send(method, uri, &[("Authorization", &auth)], body)
            .await
    }

    async fn create(&self, path: &str, body: Value) -> i64 {
        let response = self.admin(Method::POST, path, Some(body)).await;
        assert_eq!(response.status, 201, "{path}: {:?}", response.json());
        response.json()["id"].as_i64().unwrap()
    }
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// (method upper-case, path) of every documented operation.
fn documented(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let methods = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        out.insert(path.clone(), methods);
    }
    out
}

/// Every `"/api/…"` literal in the route modules, with `{name:regex}` reduced to `{name}`; the
/// flag says whether it is a model resource's `PATH` (which also routes `PATH/{id}`).
fn route_literals() -> Vec<(String, bool, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/routes");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs").into());
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for line in source.lines() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for piece in line.split("\"/api").skip(1) {
                let raw = piece.split('"').next().unwrap();
                let mut path = String::from("/api");
                let mut in_regex = false;
                for c in raw.chars() {
                    match c {
                        ':' if path.contains('{') && !path.ends_with('}') => in_regex = true,
                        '}' => {
                            in_regex = false;
                            path.push('}');
                        }
                        _ if in_regex => {}
                        c => path.push(c),
                    }
                }
                out.push((
                    path,
                    line.contains("const PATH"),
                    file.display().to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn every_route_literal_is_documented() {
    let doc = document();
    let paths = documented(&doc);
    let literals = route_literals();
    // The scan must see the routes at all, or it proves nothing.
    let seen: BTreeSet<&str> = literals.iter().map(|(p, _, _)| p.as_str()).collect();
    for expected in [
        "/api/ping",
        "/api/user/{id}",
        "/api/group",
        "/api/policy",
        "/api/bootstrap/raw",
        "/api/userprofile/{user}",
    ] {
        assert!(seen.contains(expected), "scan missed {expected}: {seen:?}");
    }
    for (path, is_resource, file) in &literals {
        assert!(
            paths.contains_key(path),
            "{path} (in {file}) is routed but not in the OpenAPI document"
        );
        if *is_resource {
            let detail = format!("{path}/{{id}}");
            assert!(
                paths.contains_key(&detail),
                "{detail} (from {file}) is routed but not in the OpenAPI document"
            );
        }
    }
}

fn is_catch_all(response: &Resp) -> bool {
    response.status == StatusCode::NOT_FOUND && response.json() == json!({"detail": "Not found."})
}

/// Every documented operation is routed (and answers one of its documented statuses), and every
/// other method on a documented path is 405 with an `Allow` that lists exactly the documented
/// methods.
#[actix_web::test]
async fn router_and_document_agree() {
    let app = App::new();
    let doc = document();
    let user = app
        .create(
            "/api/user",
            json!({"username": "probe", "password": "pass-word-1"}),
        )
        .await;
    let group = app
        .create(
            "/api/group",
            json!({"name": "probe", "user_set": [], "permissions": []}),
        )
        .await;
    let server_group = app
        .create(
            "/api/servergroup",
            json!({"name": "probe", "server_set": []}),
        )
        .await;
    let rule = app
        .create(
            "/api/rule",
            json!({"name": "probe", "destination_protocol": "ICMP"}),
        )
        .await;
    let policy = app.create("/api/policy", json!({"name": "probe"})).await;
    let server = match app
        .state
        .store
        .write(|conn| {
            evon_store::servers::register(conn, "00000001-0000-4000-8000-000000000000", "probe")
        })
        .unwrap()
    {
        evon_store::servers::Registration::Allowed { server, .. } => server.id,
        refused => panic!("registration refused: {refused:?}"),
    };
    let concrete = |path: &str| -> String {
        let id = match path.split('/').nth(2).unwrap_or("") {
            "user" => user,
            "group" => group,
            "servergroup" => server_group,
            "rule" => rule,
            "policy" => policy,
            "server" => i64::from(server),
            "userprofile" => user,
            _ => 1,
        };
        path.replace("{id}", &id.to_string())
            .replace("{user}", &id.to_string())
    };

    let mut probed = 0;
    for delete_pass in [false, true] {
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if (method == "delete") != delete_pass {
                    continue;
                }
                let uri = concrete(path);
                let body = operation
                    .pointer("/requestBody/content/application~1json")
                    .map(|_| json!({}));
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                let response = app.admin(method.clone(), &uri, body).await;
                assert!(
                    !is_catch_all(&response),
                    "{method} {path} is documented but not routed"
                );
                assert_ne!(
                    response.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is documented but answers 405"
                );
                let status = response.status.as_u16().to_string();
                assert!(
                    operation["responses"].get(&status).is_some(),
                    "{method} {uri} answered {status}, which the document does not list: {:?}",
                    response.json()
                );
                probed += 1;
            }
        }
    }
    assert!(probed >= 60, "only {probed} operations probed");

    for (path, methods) in documented(&doc) {
        let uri = concrete(&path);
        for method in METHODS {
            if methods.contains(*method) {
                continue;
            }
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let response = app.admin(m, &uri, None).await;
            assert_eq!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is routed but not documented"
            );
            let allow: BTreeSet<String> = response
                .header("Allow")
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(allow, methods, "Allow of {path} differs from the document");
        }
    }
}

// ---- snapshots against the schemas ----

/// How a snapshot's JSON maps to responses.
enum Shape {
    /// The whole body is one response.
    Whole,
    /// An array of cases; each case's `field` is a response (with its own `status`, if any).
    Each(&'static str),
}

/// Snapshot name → (method, path, status, shape).
const SNAPSHOTS: &[(&str, &str, &str, u16, Shape)] = &[
    (
        "auth_401_messages",
        "get",
        "/api/ping",
        401,
        Shape::Each("body"),
    ),
    ("config_list", "get", "/api/config", 200, Shape::Whole),
    (
        "config_patch",
        "patch",
        "/api/config/{id}",
        200,
        Shape::Whole,
    ),
    (
        "config_patch_invalid",
        "patch",
        "/api/config/{id}",
        400,
        Shape::Whole,
    ),
    ("error_bodies", "post", "/api/user", 0, Shape::Each("body")),
    ("group_create", "post", "/api/group", 201, Shape::Whole),
    (
        "group_create_relation_types",
        "post",
        "/api/group",
        400,
        Shape::Whole,
    ),
    (
        "group_create_required",
        "post",
        "/api/group",
        400,
        Shape::Whole,
    ),
    (
        "group_create_unknown_relations",
        "post",
        "/api/group",
        400,
        Shape::Whole,
    ),
    ("group_list", "get", "/api/group", 200, Shape::Whole),
    ("group_patch", "patch", "/api/group/{id}", 200, Shape::Whole),
    (
        "permission_list",
        "get",
        "/api/permission",
        200,
        Shape::Whole,
    ),
    ("ping", "get", "/api/ping", 200, Shape::Whole),
    ("policy_create", "post", "/api/policy", 201, Shape::Whole),
    (
        "policy_create_invalid",
        "post",
        "/api/policy",
        400,
        Shape::Whole,
    ),
    ("policy_list", "get", "/api/policy", 200, Shape::Whole),
    (
        "profile_retrieve",
        "get",
        "/api/userprofile/{user}",
        200,
        Shape::Whole,
    ),
    ("rule_create", "post", "/api/rule", 201, Shape::Whole),
    (
        "rule_create_required",
        "post",
        "/api/rule",
        400,
        Shape::Whole,
    ),
    (
        "rule_create_unknown_sources",
        "post",
        "/api/rule",
        400,
        Shape::Whole,
    ),
    ("rule_list", "get", "/api/rule", 200, Shape::Whole),
    (
        "rule_port_errors",
        "post",
        "/api/rule",
        400,
        Shape::Each("errors"),
    ),
    ("server_list_admin", "get", "/api/server", 200, Shape::Whole),
    (
        "server_list_restricted",
        "get",
        "/api/server",
        200,
        Shape::Whole,
    ),
    (
        "server_retrieve",
        "get",
        "/api/server/{id}",
        200,
        Shape::Whole,
    ),
    (
        "servergroup_create",
        "post",
        "/api/servergroup",
        201,
        Shape::Whole,
    ),
    (
        "servergroup_create_required",
        "post",
        "/api/servergroup",
        400,
        Shape::Whole,
    ),
    (
        "servergroup_list",
        "get",
        "/api/servergroup",
        200,
        Shape::Whole,
    ),
    ("user_create", "post", "/api/user", 201, Shape::Whole),
    ("user_create_blank", "post", "/api/user", 400, Shape::Whole),
    (
        "user_create_duplicate",
        "post",
        "/api/user",
        400,
        Shape::Whole,
    ),
    (
        "user_create_invalid_fields",
        "post",
        "/api/user",
        400,
        Shape::Whole,
    ),
    (
        "user_create_relation_types",
        "post",
        "/api/user",
        400,
        Shape::Whole,
    ),
    (
        "user_create_required",
        "post",
        "/api/user",
        400,
        Shape::Whole,
    ),
    (
        "user_create_unknown_relations",
        "post",
        "/api/user",
        400,
        Shape::Whole,
    ),
    ("user_list", "get", "/api/user", 200, Shape::Whole),
    ("user_patch", "patch", "/api/user/{id}", 200, Shape::Whole),
    ("user_retrieve", "get", "/api/user/{id}", 200, Shape::Whole),
];

/// Snapshots that are not JSON bodies.
const NOT_BODIES: &[&str] = &["permission_matrix"];

/// The JSON schema of one response, with the document's components beside it so that its
/// `$ref`s resolve.
fn response_schema(doc: &Value, method: &str, path: &str, status: u16) -> Value {
    let mut schema = doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"]
        .clone();
    assert!(
        schema.is_object(),
        "no JSON schema for {method} {path} {status}"
    );
    schema["components"] = doc["components"].clone();
    schema
}

fn validate(schema: &Value, instance: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema).map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Puts back plausible values where the snapshots redacted ids and tokens.
fn unredact(value: &mut Value) {
    match value {
        Value::String(s) if s == "[id]" => *value = json!(1),
        Value::String(s) if s == "[token]" => {
            *value = json!("0123456789abcdef0123456789abcdef01234567")
        }
        Value::Array(items) => items.iter_mut().for_each(unredact),
        Value::Object(map) => map.values_mut().for_each(unredact),
        _ => {}
    }
}

fn snapshot_body(text: &str) -> Value {
    // insta's header is `---`, metadata, `---`; the body follows.
    let body = text.splitn(3, "---\n").nth(2).expect("snapshot header");
    let mut value: Value = serde_json::from_str(body).expect("snapshot body is JSON");
    unredact(&mut value);
    value
}

#[test]
fn api_snapshots_validate_against_the_document() {
    let doc = document();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/snapshots");
    let mut checked = 0;
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".snap"))
        else {
            continue;
        };
        names.insert(name.to_owned());
        if NOT_BODIES.contains(&name) {
            continue;
        }
        let Some((_, method, route, status, shape)) = SNAPSHOTS.iter().find(|(n, ..)| *n == name)
        else {
            panic!("snapshot {name} maps to no operation: add it to SNAPSHOTS in tests/openapi.rs");
        };
        let body = snapshot_body(&std::fs::read_to_string(&path).unwrap());
        let cases: Vec<(u16, Value)> = match shape {
            Shape::Whole => vec![(*status, body)],
            Shape::Each(field) => body
                .as_array()
                .unwrap()
                .iter()
                .map(|case| {
                    let status = case["status"]
                        .as_u64()
                        .map_or(*status, |s| u16::try_from(s).unwrap());
                    (status, case[*field].clone())
                })
                .collect(),
        };
        for (status, instance) in cases {
            let schema = response_schema(&doc, method, route, status);
            if let Err(e) = validate(&schema, &instance) {
                panic!(
                    "snapshot {name} does not match {method} {route} {status}: {e}\n{instance:#}"
                );
            }
            checked += 1;
        }
    }
    for (name, ..) in SNAPSHOTS {
        assert!(
            names.contains(*name),
            "SNAPSHOTS names a missing snapshot {name}"
        );
    }
    assert!(checked >= 60, "only {checked} bodies checked");
}

#[test]
fn wrong_bodies_fail_validation() {
    let doc = document();
    let user = response_schema(&doc, "get", "/api/user/{id}", 200);
    let good = json!({
        "id": 1, "userprofile_id": 1, "username": "alice", "is_superuser": false,
        "first_name": "", "last_name": "", "email": "", "is_active": true,
        "groups": [1], "user_permissions": [],
    });
    assert_eq!(validate(&user, &good), Ok(()));
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("username");
    assert!(validate(&user, &missing).is_err());
    let mut wrong_type = good.clone();
    wrong_type["id"] = json!("[id]");
    assert!(validate(&user, &wrong_type).is_err());
    let mut extra = good.clone();
    extra["password"] = json!("hash");
    assert!(validate(&user, &extra).is_err());

    // The list's results are exactly one of the two server shapes.
    let servers = response_schema(&doc, "get", "/api/server", 200);
    let restricted = json!({
        "id": 1, "fqdn": "a.hub", "ipv4_address": "100.1.2.3", "connected": true,
        "disconnected_since": null, "last_seen": "now",
    });
    let page = |item: Value| json!({"count": 1, "next": null, "previous": null, "results": [item]});
    assert_eq!(validate(&servers, &page(restricted.clone())), Ok(()));
    let mut half = restricted.clone();
    half["uuid"] = json!("00000001-0000-4000-8000-000000000000");
    assert!(validate(&servers, &page(half)).is_err());
    assert!(validate(&servers, &json!({"count": 1, "results": []})).is_err());

    // Error shapes.
    let created = response_schema(&doc, "post", "/api/user", 400);
    assert_eq!(
        validate(&created, &json!({"username": ["This field is required."]})),
        Ok(())
    );
    assert!(validate(&created, &json!({"username": "This field is required."})).is_err());
    let decrypt = response_schema(&doc, "post", "/api/bootstrap/decrypt", 400);
    assert_eq!(
        validate(
            &decrypt,
            &json!({"status": "error", "message": "failed to decrypt payload"})
        ),
        Ok(())
    );
    assert!(validate(&decrypt, &json!({"detail": "failed"})).is_err());
}

// ---- the schema route ----

#[actix_web::test]
async fn schema_route_serves_yaml_and_json_without_a_token() {
    let app = App::new();
    let doc = document();

    let yaml = app.send(Method::GET, "/api/schema", &[], None).await;
    assert_eq!(yaml.status, 200);
    assert!(yaml.header("Content-Type").starts_with("application/yaml"));
    let parsed: Value = serde_norway::from_slice(&yaml.bytes).expect("the YAML parses");
    assert_eq!(parsed, doc);
    assert!(parsed["openapi"].as_str().unwrap().starts_with("3.1."));

    for (uri, headers) in [
        ("/api/schema?format=json", vec![]),
        ("/api/schema", vec![("Accept", "application/json")]),
    ] {
        let json = app.send(Method::GET, uri, &headers, None).await;
        assert_eq!(json.status, 200, "{uri}");
        assert!(json.header("Content-Type").starts_with("application/json"));
        let parsed: Value = serde_json::from_slice(&json.bytes).expect("the JSON parses");
        assert_eq!(parsed, doc);
    }

    let explicit = app
        .send(
            Method::GET,
            "/api/schema?format=yaml",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert!(explicit
        .header("Content-Type")
        .starts_with("application/yaml"));
    let unknown = app
        .send(Method::GET, "/api/schema?format=xml", &[], None)
        .await;
    assert!(is_catch_all(&unknown));
    let head = app.send(Method::HEAD, "/api/schema", &[], None).await;
    assert_eq!(head.status, 200);
    let post = app.send(Method::POST, "/api/schema", &[], None).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("Allow"), "GET, HEAD");
}

#[test]
fn document_covers_security_and_shapes() {
    let doc = document();
    assert_eq!(
        doc["components"]["securitySchemes"]["Token"],
        json!({
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": doc["components"]["securitySchemes"]["Token"]["description"],
        })
    );
    assert_eq!(doc["security"], json!([{"Token": []}]));
    assert_eq!(doc["paths"]["/api/schema"]["get"]["security"], json!([]));
    assert!(doc["paths"]["/api/ping"]["get"].get("security").is_none());
    assert!(doc["paths"]["/api/ping"]["get"]["responses"]["401"].is_object());
    let decrypt = &doc["paths"]["/api/bootstrap/decrypt"]["post"];
    assert!(decrypt["requestBody"]["content"]["multipart/form-data"].is_object());
    assert!(decrypt["responses"]["200"]["content"]["application/octet-stream"].is_object());
    let list = &doc["paths"]["/api/server"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(
        list["properties"]["results"]["items"]["$ref"],
        "#/components/schemas/AnyServer"
    );
    assert_eq!(
        doc["components"]["schemas"]["AnyServer"]["oneOf"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
