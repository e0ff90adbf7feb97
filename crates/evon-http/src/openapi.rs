//! The OpenAPI 3.1 document of the API, served at `GET /api/schema`.
//!
//! The document is built in Rust from [`OPERATIONS`], one row per (method, path), and the
//! schemas below, which mirror `wire.rs` (responses, strict: every field required, nothing
//! else allowed) and `forms.rs` (requests, lenient as the forms are). `tests/openapi.rs` keeps
//! it honest: every documented operation must answer something other than the catch-all 404 or
//! a 405, every other method on a documented path must be 405 with a matching `Allow`, every
//! path literal under `src/routes` must be documented, and every JSON body of the API snapshot
//! tests must validate against the response schema of its operation.
//!
//! YAML (the default) is written by [`to_yaml`], a small block-style emitter whose scalars are
//! JSON-quoted strings, numbers, booleans and `null`: real YAML 1.2, parsed back in the tests.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// Where the document is served.
pub const SCHEMA_PATH: &str = "/api/schema";

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed.
    Public,
    /// Any valid token.
    Authenticated,
    /// The model permission named, or a superuser.
    Permission(&'static str),
    /// Superusers only.
    Superuser,
    /// Superusers and the deployer.
    Bootstrap,
    /// The profile's owner, or a superuser.
    OwnerOrSuperuser,
}

/// What an operation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    None,
    /// A JSON object of this component schema.
    Json(&'static str),
    /// `multipart/form-data` with the sealed payload in field `data`.
    Multipart,
}

/// What an operation answers on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Success {
    /// 200 with this component schema.
    Ok(&'static str),
    /// 201 with this component schema.
    Created(&'static str),
    /// 200 with the paginated envelope around this component schema.
    Page(&'static str),
    /// 204, no body.
    NoContent,
    /// 200 with a file download.
    Download(&'static str),
    /// 200 with the same headers as the GET, no body.
    Head,
    /// The document itself.
    Schema,
}

/// One (method, path) of the API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
    pub access: Access,
    pub request: Request,
    pub success: Success,
}

#[allow(clippy::too_many_arguments)]
const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: &'static str,
    access: Access,
    request: Request,
    success: Success,
) -> Operation {
    Operation {
        method,
        path,
        tag,
        summary,
        description,
        access,
        request,
        success,
    }
}

use Access::*;
use Request as Rq;
use Success as S;

const LIST: &str = "One page of the objects, oldest first, in the paginated envelope.";
const CREATE: &str = "Creates an object; every failing field is reported at once.";
const RETRIEVE: &str = "One object by id.";
const UPDATE: &str =
    "Changes the fields given and leaves the others alone; a relation field given replaces the whole relation.";
const DESTROY: &str = "Deletes the object.";
const HEAD: &str = "As GET, without the body.";

/// Every (method, path) the API routes, in the order the document lists them.
pub const OPERATIONS: &[Operation] = &[
    op("get", "/api/ping", "ping", "Check connectivity", "Answers `pong` to any caller with a valid token: a cheap way to check the URL and the token.", Authenticated, Rq::None, S::Ok("Pong")),
    op("head", "/api/ping", "ping", "Check connectivity", HEAD, Authenticated, Rq::None, S::Head),
    op("get", "/api/permission", "permission", "List permissions", "The permissions that can be granted to users and groups, with their stable ids.", Superuser, Rq::None, S::Page("Permission")),
    op("head", "/api/permission", "permission", "List permissions", HEAD, Superuser, Rq::None, S::Head),
    op("get", "/api/user", "user", "List users", LIST, Permission("view_user"), Rq::None, S::Page("User")),
    op("head", "/api/user", "user", "List users", HEAD, Permission("view_user"), Rq::None, S::Head),
    op("post", "/api/user", "user", "Create a user", "Creates a user and its profile (with an overlay address) and answers with the new user's API token, shown only in this response.", Permission("add_user"), Rq::Json("UserCreate"), S::Created("UserCreated")),
    op("get", "/api/user/{id}", "user", "Retrieve a user", RETRIEVE, Permission("view_user"), Rq::None, S::Ok("User")),
    op("head", "/api/user/{id}", "user", "Retrieve a user", HEAD, Permission("view_user"), Rq::None, S::Head),
    op("patch", "/api/user/{id}", "user", "Update a user", UPDATE, Permission("change_user"), Rq::Json("UserPatch"), S::Ok("User")),
    op("delete", "/api/user/{id}", "user", "Delete a user", "Deletes the user with its profile and token; the built-in users cannot be deleted.", Permission("delete_user"), Rq::None, S::NoContent),
    op("get", "/api/userprofile/{user}", "userprofile", "Retrieve a user profile", "A user's profile, keyed by the user's id: their own for anyone, anyone's for superusers.", OwnerOrSuperuser, Rq::None, S::Ok("Profile")),
    op("head", "/api/userprofile/{user}", "userprofile", "Retrieve a user profile", HEAD, OwnerOrSuperuser, Rq::None, S::Head),
    op("patch", "/api/userprofile/{user}", "userprofile", "Update a user profile", "Sets whether the user's devices are shared with the whole overlay network.", OwnerOrSuperuser, Rq::Json("ProfilePatch"), S::Ok("Profile")),
    op("get", "/api/group", "group", "List groups", LIST, Permission("view_group"), Rq::None, S::Page("Group")),
    op("head", "/api/group", "group", "List groups", HEAD, Permission("view_group"), Rq::None, S::Head),
    op("post", "/api/group", "group", "Create a group", CREATE, Permission("add_group"), Rq::Json("GroupCreate"), S::Created("Group")),
    op("get", "/api/group/{id}", "group", "Retrieve a group", RETRIEVE, Permission("view_group"), Rq::None, S::Ok("Group")),
    op("head", "/api/group/{id}", "group", "Retrieve a group", HEAD, Permission("view_group"), Rq::None, S::Head),
    op("patch", "/api/group/{id}", "group", "Update a group", UPDATE, Permission("change_group"), Rq::Json("GroupPatch"), S::Ok("Group")),
    op("delete", "/api/group/{id}", "group", "Delete a group", "Deletes the group; All Users cannot be deleted.", Permission("delete_group"), Rq::None, S::NoContent),
    op("get", "/api/server", "server", "List servers", "Superusers see every server in the full shape; everyone else sees only the servers they can reach, in the restricted shape.", Authenticated, Rq::None, S::Page("AnyServer")),
    op("head", "/api/server", "server", "List servers", HEAD, Authenticated, Rq::None, S::Head),
    op("get", "/api/server/{id}", "server", "Retrieve a server", "One server in the full shape, with whether the caller can reach it.", Permission("view_server"), Rq::None, S::Ok("Server")),
    op("head", "/api/server/{id}", "server", "Retrieve a server", HEAD, Permission("view_server"), Rq::None, S::Head),
    op("patch", "/api/server/{id}", "server", "Update a server", "Only `server_groups` can change; everything else comes from the server itself. All Servers is always kept.", Permission("change_server"), Rq::Json("ServerPatch"), S::Ok("Server")),
    op("delete", "/api/server/{id}", "server", "Delete a server", "Forgets the server; it registers again the next time it connects, unless blacklisted.", Permission("delete_server"), Rq::None, S::NoContent),
    op("get", "/api/servergroup", "servergroup", "List server groups", LIST, Permission("view_servergroup"), Rq::None, S::Page("ServerGroup")),
    op("head", "/api/servergroup", "servergroup", "List server groups", HEAD, Permission("view_servergroup"), Rq::None, S::Head),
    op("post", "/api/servergroup", "servergroup", "Create a server group", CREATE, Permission("add_servergroup"), Rq::Json("ServerGroupCreate"), S::Created("ServerGroup")),
    op("get", "/api/servergroup/{id}", "servergroup", "Retrieve a server group", RETRIEVE, Permission("view_servergroup"), Rq::None, S::Ok("ServerGroup")),
    op("head", "/api/servergroup/{id}", "servergroup", "Retrieve a server group", HEAD, Permission("view_servergroup"), Rq::None, S::Head),
    op("patch", "/api/servergroup/{id}", "servergroup", "Update a server group", UPDATE, Permission("change_servergroup"), Rq::Json("ServerGroupPatch"), S::Ok("ServerGroup")),
    op("delete", "/api/servergroup/{id}", "servergroup", "Delete a server group", "Deletes the server group; All Servers cannot be deleted.", Permission("delete_servergroup"), Rq::None, S::NoContent),
    op("get", "/api/rule", "rule", "List rules", LIST, Permission("view_rule"), Rq::None, S::Page("Rule")),
    op("head", "/api/rule", "rule", "List rules", HEAD, Permission("view_rule"), Rq::None, S::Head),
    op("post", "/api/rule", "rule", "Create a rule", "Creates a rule: who (users, groups, servers, server groups) may reach which protocol and ports.", Permission("add_rule"), Rq::Json("RuleCreate"), S::Created("Rule")),
    op("get", "/api/rule/{id}", "rule", "Retrieve a rule", RETRIEVE, Permission("view_rule"), Rq::None, S::Ok("Rule")),
    op("head", "/api/rule/{id}", "rule", "Retrieve a rule", HEAD, Permission("view_rule"), Rq::None, S::Head),
    op("patch", "/api/rule/{id}", "rule", "Update a rule", UPDATE, Permission("change_rule"), Rq::Json("RulePatch"), S::Ok("Rule")),
    op("delete", "/api/rule/{id}", "rule", "Delete a rule", DESTROY, Permission("delete_rule"), Rq::None, S::NoContent),
    op("get", "/api/policy", "policy", "List policies", LIST, Permission("view_policy"), Rq::None, S::Page("Policy")),
    op("head", "/api/policy", "policy", "List policies", HEAD, Permission("view_policy"), Rq::None, S::Head),
    op("post", "/api/policy", "policy", "Create a policy", "Creates a policy: which rules apply to which servers and server groups.", Permission("add_policy"), Rq::Json("PolicyCreate"), S::Created("Policy")),
    op("get", "/api/policy/{id}", "policy", "Retrieve a policy", RETRIEVE, Permission("view_policy"), Rq::None, S::Ok("Policy")),
    op("head", "/api/policy/{id}", "policy", "Retrieve a policy", HEAD, Permission("view_policy"), Rq::None, S::Head),
    op("patch", "/api/policy/{id}", "policy", "Update a policy", UPDATE, Permission("change_policy"), Rq::Json("PolicyPatch"), S::Ok("Policy")),
    op("delete", "/api/policy/{id}", "policy", "Delete a policy", DESTROY, Permission("delete_policy"), Rq::None, S::NoContent),
    op("get", "/api/config", "config", "List the configuration", "The hub's one configuration object, as a list of one.", Permission("view_config"), Rq::None, S::Page("Config")),
    op("head", "/api/config", "config", "List the configuration", HEAD, Permission("view_config"), Rq::None, S::Head),
    op("patch", "/api/config/{id}", "config", "Update the configuration", "Changes the hub's settings; the only id is 1. Blacklisting a UUID deletes that server in the same change.", Permission("change_config"), Rq::Json("ConfigPatch"), S::Ok("Config")),
    op("get", "/api/bootstrap/linux", "bootstrap", "Download the Linux installer", "`bootstrap.sh`, which joins a Linux server to the hub; it carries the server's secrets sealed.", Bootstrap, Rq::None, S::Download("bootstrap.sh")),
    op("head", "/api/bootstrap/linux", "bootstrap", "Download the Linux installer", HEAD, Bootstrap, Rq::None, S::Head),
    op("get", "/api/bootstrap/windows", "bootstrap", "Download the Windows installer", "`bootstrap.ps1`, which joins a Windows server to the hub.", Bootstrap, Rq::None, S::Download("bootstrap.ps1")),
    op("head", "/api/bootstrap/windows", "bootstrap", "Download the Windows installer", HEAD, Bootstrap, Rq::None, S::Head),
    op("get", "/api/bootstrap/raw", "bootstrap", "Download the raw server configuration", "The OpenVPN client configuration for servers, for joining them by hand.", Bootstrap, Rq::None, S::Download("openvpn_client-evon_server.conf")),
    op("head", "/api/bootstrap/raw", "bootstrap", "Download the raw server configuration", HEAD, Bootstrap, Rq::None, S::Head),
    op("post", "/api/bootstrap/decrypt", "bootstrap", "Open a sealed payload", "Opens the sealed secrets an installer carries and answers with them in clear text. The installers call it; errors about the payload use the `{\"status\": \"error\", \"message\": …}` shape.", Bootstrap, Rq::Multipart, S::Download("openvpn_secrets.conf")),
    op("get", "/api/ovpnclient/download", "ovpnclient", "Download the user VPN configuration", "`EvonHub.ovpn`, the OpenVPN configuration people connect to the hub with.", Authenticated, Rq::None, S::Download("EvonHub.ovpn")),
    op("head", "/api/ovpnclient/download", "ovpnclient", "Download the user VPN configuration", HEAD, Authenticated, Rq::None, S::Head),
    op("get", SCHEMA_PATH, "schema", "This document", "The OpenAPI document of this hub's API: YAML by default, JSON with `?format=json` or `Accept: application/json`. It needs no token.", Public, Rq::None, S::Schema),
    op("head", SCHEMA_PATH, "schema", "This document", HEAD, Public, Rq::None, S::Head),
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ids(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "integer" }, "description": description })
}

/// A response object: every field required, nothing else.
fn strict(description: &str, properties: Value) -> Value {
    let required: Vec<Value> = properties
        .as_object()
        .map(|p| p.keys().cloned().map(Value::String).collect())
        .unwrap_or_default();
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A request object: unknown fields are ignored; `required` only on create.
fn lenient(description: &str, properties: &Value, required: &[&str]) -> Value {
    let mut schema = json!({
        "type": "object",
        "description": description,
        "properties": properties,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

fn nullable_text(description: &str) -> Value {
    json!({ "type": ["string", "null"], "maxLength": 256, "description": description })
}

fn schemas() -> Map<String, Value> {
    let mut s = Map::new();
    let text = |d: &str| json!({ "type": "string", "description": d });
    let boolean = |d: &str| json!({ "type": "boolean", "description": d });
    let id = json!({ "type": "integer", "description": "The object's id." });

    s.insert(
        "Detail".into(),
        strict(
            "An error with one message.",
            json!({ "detail": text("What went wrong.") }),
        ),
    );
    s.insert("FieldErrors".into(), json!({
        "type": "object",
        "description": "Validation errors: for each failing field (or `non_field_errors`), its messages.",
        "minProperties": 1,
        "additionalProperties": { "type": "array", "items": { "type": "string" }, "minItems": 1 },
    }));
    s.insert(
        "BootstrapError".into(),
        strict(
            "An error of the bootstrap routes about the payload.",
            json!({
                "status": { "type": "string", "enum": ["error"] },
                "message": text("What went wrong."),
            }),
        ),
    );
    s.insert(
        "Pong".into(),
        strict(
            "The answer to a ping.",
            json!({ "message": { "type": "string", "enum": ["pong"] } }),
        ),
    );
    s.insert(
        "Permission".into(),
        strict(
            "A grantable permission.",
            json!({
                "id": { "type": "integer", "description": "The permission's stable id." },
                "name": text("The permission's codename, such as `view_user`."),
            }),
        ),
    );

    let user_out = json!({
        "id": id,
        "userprofile_id": { "type": "integer", "description": "The id of the user's profile (the user's id)." },
        "username": text("The login name."),
        "is_superuser": boolean("Whether the user holds every permission."),
        "first_name": text("Given name."),
        "last_name": text("Family name."),
        "email": text("E-mail address, possibly empty."),
        "is_active": boolean("Whether the user may sign in."),
        "groups": ids("The groups the user belongs to."),
        "user_permissions": ids("Permissions granted to the user directly."),
    });
    s.insert("User".into(), strict("A user.", user_out.clone()));
    s.insert("UserCreated".into(), strict("A user just created, with its API token.", with(user_out, json!({
        "token": { "type": "string", "pattern": "^[0-9a-f]{40}$", "description": "The new user's API token; shown only here." },
    }))));
    let user_in = json!({
        "username": text("The login name: letters, digits and @.+-_, at most 150."),
        "password": { "type": "string", "writeOnly": true, "description": "The password; stored only as a hash." },
        "is_superuser": boolean("Whether the user holds every permission."),
        "first_name": { "type": "string", "maxLength": 150 },
        "last_name": { "type": "string", "maxLength": 150 },
        "email": { "type": "string", "format": "email" },
        "is_active": boolean("Whether the user may sign in."),
        "groups": ids("Replaces the user's groups; All Users is always kept."),
        "user_permissions": ids("Replaces the permissions granted directly."),
    });
    s.insert(
        "UserCreate".into(),
        lenient("A new user.", &user_in, &["username", "password"]),
    );
    s.insert(
        "UserPatch".into(),
        lenient("Changes to a user.", &user_in, &[]),
    );

    s.insert("Profile".into(), strict("A user's profile.", json!({
        "shared": boolean("Whether the user's devices are reachable from the whole overlay network."),
        "ipv4_address": text("The user's overlay address."),
    })));
    s.insert(
        "ProfilePatch".into(),
        lenient(
            "Changes to a profile.",
            &json!({ "shared": boolean("Share the user's devices.") }),
            &[],
        ),
    );

    let group = json!({
        "name": { "type": "string", "maxLength": 150, "description": "The group's unique name." },
        "user_set": ids("The group's members."),
        "permissions": ids("Permissions the group grants its members."),
    });
    s.insert(
        "Group".into(),
        strict(
            "A group of users.",
            with(json!({ "id": id }), group.clone()),
        ),
    );
    s.insert(
        "GroupCreate".into(),
        lenient("A new group.", &group, &["name", "user_set", "permissions"]),
    );
    s.insert(
        "GroupPatch".into(),
        lenient("Changes to a group.", &group, &[]),
    );

    let config_in = json!({
        "timezone": text("An IANA time zone; server times are shown in it."),
        "auto_update": boolean("Whether the hub updates itself."),
        "auto_update_time": text("The time of day of updates, `hh:mm[:ss]`."),
        "discovery_mode": boolean("Whether unknown servers may register themselves."),
        "uuid_blacklist": text("Server UUIDs that may never register, separated by commas or white space."),
        "uuid_whitelist": text("Server UUIDs that may register while discovery mode is off."),
    });
    s.insert("Config".into(), strict("The hub's configuration.", with(json!({
        "id": id,
        "ec2_iam_role_status": boolean("Whether the hub runs with an EC2 IAM role (read only)."),
    }), config_in.clone())));
    s.insert(
        "ConfigPatch".into(),
        lenient("Changes to the configuration.", &config_in, &[]),
    );

    let server_common = json!({
        "id": id,
        "fqdn": text("The server's name on the overlay network."),
        "ipv4_address": text("The server's overlay address."),
        "connected": boolean("Whether the server is connected now."),
        "disconnected_since": { "type": ["string", "null"], "description": "When the server disconnected, in the configured zone; null while connected or never seen." },
        "last_seen": text("`now` while connected, else how long ago it was seen."),
    });
    s.insert(
        "Server".into(),
        strict(
            "A server in the full shape.",
            with(
                server_common.clone(),
                json!({
                    "accessible": boolean("Whether the caller can reach the server."),
                    "uuid": text("The server's UUID, as its installer registered it."),
                    "server_groups": ids("The server groups the server belongs to."),
                }),
            ),
        ),
    );
    s.insert(
        "RestrictedServer".into(),
        strict(
            "A server as callers without superuser rights see it in the list.",
            server_common,
        ),
    );
    s.insert(
        "AnyServer".into(),
        json!({ "oneOf": [schema_ref("Server"), schema_ref("RestrictedServer")] }),
    );
    s.insert(
        "ServerPatch".into(),
        lenient(
            "Changes to a server: only its groups.",
            &json!({
                "server_groups": ids("Replaces the server's groups; All Servers is always kept."),
            }),
            &[],
        ),
    );

    let server_group = json!({
        "server_set": ids("The group's servers."),
        "name": { "type": "string", "maxLength": 256, "description": "The group's unique name." },
        "description": nullable_text("What the group is for."),
    });
    s.insert(
        "ServerGroup".into(),
        strict(
            "A group of servers.",
            with(json!({ "id": id }), server_group.clone()),
        ),
    );
    s.insert(
        "ServerGroupCreate".into(),
        lenient(
            "A new server group.",
            &server_group,
            &["server_set", "name"],
        ),
    );
    s.insert(
        "ServerGroupPatch".into(),
        lenient("Changes to a server group.", &server_group, &[]),
    );

    let rule = json!({
        "name": text("The rule's unique name."),
        "destination_protocol": { "type": "string", "enum": ["TCP", "UDP", "ICMP", "ALL"] },
        "destination_ports": text("Ports and ranges such as `22,80,8000-8080`: required for TCP and UDP, empty otherwise."),
        "source_users": ids("Users the rule lets through."),
        "source_groups": ids("Groups whose members the rule lets through."),
        "source_servers": ids("Servers the rule lets through."),
        "source_servergroups": ids("Server groups whose servers the rule lets through."),
    });
    s.insert(
        "Rule".into(),
        strict(
            "Who may reach which protocol and ports.",
            with(json!({ "id": id }), rule.clone()),
        ),
    );
    s.insert(
        "RuleCreate".into(),
        lenient("A new rule.", &rule, &["name", "destination_protocol"]),
    );
    s.insert(
        "RulePatch".into(),
        lenient("Changes to a rule.", &rule, &[]),
    );

    let policy = json!({
        "name": text("The policy's unique name."),
        "description": nullable_text("What the policy is for."),
        "rules": ids("The rules the policy applies."),
        "servers": ids("The servers the rules apply to."),
        "servergroups": ids("The server groups whose servers the rules apply to."),
    });
    s.insert(
        "Policy".into(),
        strict(
            "Which rules apply to which servers.",
            with(json!({ "id": id }), policy.clone()),
        ),
    );
    s.insert(
        "PolicyCreate".into(),
        lenient("A new policy.", &policy, &["name"]),
    );
    s.insert(
        "PolicyPatch".into(),
        lenient("Changes to a policy.", &policy, &[]),
    );

    s.insert("DecryptRequest".into(), json!({
        "type": "object",
        "description": "The sealed payload of an installer, as a file part or a plain field.",
        "properties": { "data": { "type": "string", "description": "The sealed text; surrounding white space is ignored." } },
        "required": ["data"],
    }));
    s
}

fn paginated(item: &str) -> Value {
    strict(
        "One page of a list: 100 objects a page.",
        json!({
            "count": { "type": "integer", "minimum": 0, "description": "How many objects there are in all." },
            "next": { "type": ["string", "null"], "format": "uri", "description": "The next page's absolute URL, if any." },
            "previous": { "type": ["string", "null"], "format": "uri", "description": "The previous page's absolute URL, if any." },
            "results": { "type": "array", "items": schema_ref(item) },
        }),
    )
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": json_content(schema_ref("Detail")) })
}

fn path_parameter(path: &str) -> Option<Value> {
    let name = if path.contains("{id}") {
        "id"
    } else if path.contains("{user}") {
        "user"
    } else {
        return None;
    };
    let description = if name == "user" {
        "The id of the profile's user."
    } else {
        "The object's id."
    };
    Some(json!({
        "name": name, "in": "path", "required": true,
        "description": description,
        "schema": { "type": "integer" },
    }))
}

fn access_note(access: Access) -> String {
    match access {
        Public => "No token needed.".into(),
        Authenticated => "Needs a valid token.".into(),
        Permission(codename) => {
            format!("Needs the `{codename}` permission (superusers hold every permission).")
        }
        Superuser => "Superusers only.".into(),
        Bootstrap => "Superusers and the deployer only.".into(),
        OwnerOrSuperuser => "The profile's owner or a superuser.".into(),
    }
}

fn operation(o: &Operation) -> Value {
    let mut responses = Map::new();
    let is_list = matches!(o.success, S::Page(_));
    match o.success {
        S::Ok(name) => {
            responses.insert(
                "200".into(),
                json!({ "description": "OK", "content": json_content(schema_ref(name)) }),
            );
        }
        S::Created(name) => {
            responses.insert(
                "201".into(),
                json!({ "description": "Created", "content": json_content(schema_ref(name)) }),
            );
        }
        S::Page(name) => {
            responses.insert(
                "200".into(),
                json!({ "description": "OK", "content": json_content(paginated(name)) }),
            );
        }
        S::NoContent => {
            responses.insert("204".into(), json!({ "description": "Deleted; no body." }));
        }
        S::Download(file) => {
            responses.insert("200".into(), json!({
                "description": format!("The file `{file}`, as an attachment; never cached."),
                "headers": {
                    "Content-Disposition": { "schema": { "type": "string" }, "description": format!("`attachment; filename=\"{file}\"`") },
                    "Cache-Control": { "schema": { "type": "string", "enum": ["no-store"] } },
                },
                "content": { "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } },
            }));
        }
        S::Head => {
            responses.insert(
                "200".into(),
                json!({ "description": "The headers the GET would send; no body." }),
            );
        }
        S::Schema => {
            responses.insert(
                "200".into(),
                json!({
                    "description": "This document.",
                    "content": {
                        "application/yaml": { "schema": { "type": "string" } },
                        "application/json": { "schema": { "type": "object" } },
                    },
                }),
            );
        }
    }
    let bootstrap = o.path.starts_with("/api/bootstrap/");
    if o.request != Rq::None {
        let schema = if bootstrap {
            schema_ref("BootstrapError")
        } else {
            json!({ "anyOf": [schema_ref("FieldErrors"), schema_ref("Detail")] })
        };
        responses.insert("400".into(), json!({
            "description": if bootstrap { "The payload is missing, malformed or does not open." } else { "The body is not valid JSON, or fields failed validation." },
            "content": json_content(schema),
        }));
    }
    if o.access != Public {
        responses.insert(
            "401".into(),
            error("No token, a malformed header, an unknown token or an inactive user."),
        );
        responses.insert("403".into(), error("The caller may not do this."));
    }
    if is_list || path_parameter(o.path).is_some() || o.path == SCHEMA_PATH {
        let why = if is_list {
            "Invalid page."
        } else if o.path == SCHEMA_PATH {
            "Unknown `format`."
        } else {
            "No such object."
        };
        responses.insert("404".into(), error(why));
    }
    if o.request != Rq::None {
        if bootstrap {
            responses.insert("413".into(), json!({ "description": "More than 64 KiB of fields.", "content": json_content(schema_ref("BootstrapError")) }));
            responses.insert("408".into(), json!({ "description": "The body did not arrive within 15 seconds of the request's head.", "content": json_content(schema_ref("BootstrapError")) }));
        } else {
            responses.insert(
                "408".into(),
                error("The body did not arrive within 15 seconds of the request's head."),
            );
            responses.insert(
                "409".into(),
                error("The change kept colliding with concurrent changes and was not applied."),
            );
            responses.insert("413".into(), error("The body is larger than 1 MiB."));
            responses.insert("415".into(), error("The body is not `application/json`."));
        }
    }
    if o.access != Public {
        responses.insert(
            "500".into(),
            error("An unforeseen error; the cause is only logged."),
        );
        let why = if matches!(o.success, S::Download(_)) {
            "The database cannot be reached, or the downloads are not loaded."
        } else {
            "The database cannot be reached."
        };
        responses.insert("503".into(), error(why));
    }

    let mut out = json!({
        "tags": [o.tag],
        "summary": o.summary,
        "description": format!("{} {}", o.description, access_note(o.access)),
        "operationId": format!("{}_{}", o.method, o.path.trim_start_matches("/api/").replace(['/', '{', '}'], "_").trim_end_matches('_')),
        "responses": responses,
    });
    let mut parameters = Vec::new();
    if let Some(p) = path_parameter(o.path) {
        parameters.push(p);
    }
    if is_list
        || (o.success == S::Head
            && OPERATIONS
                .iter()
                .any(|g| g.path == o.path && g.method == "get" && matches!(g.success, S::Page(_))))
    {
        parameters.push(json!({
            "name": "page", "in": "query", "required": false,
            "description": "A page number within the list, from 1.",
            "schema": { "type": "integer", "minimum": 1 },
        }));
    }
    if o.path == SCHEMA_PATH {
        parameters.push(json!({
            "name": "format", "in": "query", "required": false,
            "description": "`json` or `yaml`; without it, `Accept: application/json` chooses JSON.",
            "schema": { "type": "string", "enum": ["json", "yaml"] },
        }));
    }
    if !parameters.is_empty() {
        out["parameters"] = Value::Array(parameters);
    }
    match o.request {
        Rq::None => {}
        Rq::Json(name) => {
            out["requestBody"] =
                json!({ "required": true, "content": json_content(schema_ref(name)) });
        }
        Rq::Multipart => {
            out["requestBody"] = json!({
                "required": true,
                "content": { "multipart/form-data": { "schema": schema_ref("DecryptRequest") } },
            });
        }
    }
    if o.access == Public {
        out["security"] = json!([]);
    }
    out
}

/// The document, as a JSON value.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let item = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        item[o.method] = operation(o);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Evon Hub API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST API of an Evon Hub: users, groups, servers, the rules and policies between them, the hub's configuration, and the downloads that join servers and people to the hub's overlay network. Every route but this document needs `Authorization: Token <key>`. Lists are paginated, 100 objects a page.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "Token": [] }],
        "tags": tags(),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "Token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Token <key>`: the word Token, a space, and the 40-character API key.",
                },
            },
            "schemas": schemas(),
        },
    })
}

fn tags() -> Vec<Value> {
    let mut seen: Vec<&str> = Vec::new();
    for o in OPERATIONS {
        if !seen.contains(&o.tag) {
            seen.push(o.tag);
        }
    }
    seen.into_iter()
        .map(|name| json!({ "name": name }))
        .collect()
}

/// The document rendered once: (YAML, JSON).
fn rendered() -> &'static (String, String) {
    static RENDERED: OnceLock<(String, String)> = OnceLock::new();
    RENDERED.get_or_init(|| {
        let doc = document();
        let json = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string());
        (to_yaml(&doc), json)
    })
}

/// JSON when `?format=json`, or without `format` when Accept names JSON and not YAML.
fn wants_json(req: &HttpRequest) -> Result<bool, ApiError> {
    let format = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(k, _)| k == "format")
        .map(|(_, v)| v.into_owned())
        .last();
    match format.as_deref() {
        Some("json") => Ok(true),
        Some("yaml") => Ok(false),
        Some(_) => Err(ApiError::NotFound),
        None => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_ascii_lowercase();
            Ok(accept.contains("application/json") && !accept.contains("yaml"))
        }
    }
}

async fn schema(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (yaml, json) = rendered();
    Ok(if wants_json(&req)? {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(json.clone())
    } else {
        HttpResponse::Ok()
            .content_type("application/yaml; charset=utf-8")
            .body(yaml.clone())
    })
}

/// `GET /api/schema`: no authentication, and 405 for other methods without one either.
pub fn service() -> actix_web::Resource {
    web::resource(SCHEMA_PATH)
        .route(web::get().to(schema))
        .route(web::head().to(schema))
        .default_service(web::to(|req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                method: req.method().to_string(),
                allow: "GET, HEAD",
            })
        }))
}

/// Block-style YAML for a JSON value: every string (and key) double-quoted with JSON's escapes,
/// which YAML 1.2 reads the same way.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    if is_block(value) {
        block(&mut out, value, 0, false);
    } else {
        out.push_str(&scalar(value));
        out.push('\n');
    }
    out
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// Writes a non-empty map or sequence at `indent`; when `inline`, the first line continues the
/// current one (after `- `).
fn block(out: &mut String, value: &Value, indent: usize, mut inline: bool) {
    let pad = |out: &mut String, inline: &mut bool| {
        if *inline {
            *inline = false;
        } else {
            out.extend(std::iter::repeat_n(' ', indent));
        }
    };
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                pad(out, &mut inline);
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if is_block(item) {
                    out.push('\n');
                    block(out, item, indent + 2, false);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                pad(out, &mut inline);
                out.push_str("- ");
                if is_block(item) {
                    block(out, item, indent + 2, true);
                } else {
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_of_nested_values() {
        let value = json!({
            "a": 1, "b": "x: \"y\"\n", "c": [], "d": {}, "e": null, "f": true,
            "g": [1, {"h": [2, 3], "i": "j"}, [4, 5], []],
            "/api/{id}": {"k": -1.5},
        });
        let yaml = to_yaml(&value);
        assert_eq!(
            yaml,
            concat!(
                "\"/api/{id}\":\n  \"k\": -1.5\n",
                "\"a\": 1\n\"b\": \"x: \\\"y\\\"\\n\"\n\"c\": []\n\"d\": {}\n\"e\": null\n\"f\": true\n",
                "\"g\":\n  - 1\n  - \"h\":\n      - 2\n      - 3\n    \"i\": \"j\"\n  - - 4\n    - 5\n  - []\n",
            )
        );
        assert_eq!(to_yaml(&json!("plain")), "\"plain\"\n");
    }

    #[test]
    fn every_operation_is_unique_and_documented() {
        let doc = document();
        for (i, o) in OPERATIONS.iter().enumerate() {
            assert!(
                !OPERATIONS[..i]
                    .iter()
                    .any(|p| p.method == o.method && p.path == o.path),
                "{} {} twice",
                o.method,
                o.path
            );
            assert!(doc["paths"][o.path][o.method].is_object());
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for piece in text.split("\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling reference to {name}"
            );
        }
    }
}
