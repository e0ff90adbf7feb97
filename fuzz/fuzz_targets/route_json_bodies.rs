//! The JSON body of every writable route, without a database: the bytes are read as the API
//! reads a body (`parse_body`), then handed to each route's form (users, groups, servers, server
//! groups, rules and the ports a rule would end up with, policies, Config, profiles), on create
//! and on patch. No panic; a body that is refused is refused with a 4xx in the API's format;
//! field errors name only the form's own fields; and what a form accepts is already canonical
//! (validating it again changes nothing).

#![no_main]

use actix_web::ResponseError;
use evon_domain::validate::{self, REQUIRED};
use evon_domain::FieldErrors;
use evon_http::body::parse_body;
use evon_http::forms::{self, Mode};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const USER: &[&str] = &[
    "username",
    "password",
    "is_superuser",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "groups",
    "user_permissions",
];
const GROUP: &[&str] = &["name", "user_set", "permissions"];
const SERVER: &[&str] = &["server_groups"];
const SERVER_GROUP: &[&str] = &["server_set", "name", "description"];
const RULE: &[&str] = &[
    "name",
    "destination_protocol",
    "destination_ports",
    "source_users",
    "source_groups",
    "source_servers",
    "source_servergroups",
];
const POLICY: &[&str] = &["name", "description", "rules", "servers", "servergroups"];
const CONFIG: &[&str] = &[
    "timezone",
    "auto_update",
    "auto_update_time",
    "discovery_mode",
    "uuid_blacklist",
    "uuid_whitelist",
];
const PROFILE: &[&str] = &["shared"];

/// Errors name only the form's fields, each with at least one message; a field the body does
/// not carry can only be missing (`required`, on create); the rendering is the API's.
fn check_errors(errors: &FieldErrors, fields: &[&str], body: &Map<String, Value>) {
    for (field, messages) in errors.iter() {
        assert!(fields.contains(&field), "error under {field:?}");
        assert!(!messages.is_empty());
        assert!(
            body.contains_key(field) || messages == [REQUIRED],
            "{field}: {messages:?}"
        );
    }
    let rendered = serde_json::to_value(errors).expect("errors serialise");
    let object = rendered.as_object().expect("errors are an object");
    assert!(object.values().all(|v| v
        .as_array()
        .is_some_and(|list| !list.is_empty() && list.iter().all(Value::is_string))));
}

fn forms_on(body: &Map<String, Value>) {
    for mode in [Mode::Create, Mode::Patch] {
        let user = forms::user(body, mode);
        check_errors(&user.errors, USER, body);
        if let Some(name) = &user.fields.username {
            assert_eq!(validate::username(name).as_ref(), Ok(name));
        }
        if let Some(email) = &user.fields.email {
            assert_eq!(validate::email(email).as_ref(), Ok(email));
        }
        if let Some(password) = &user.password {
            assert_eq!(body.get("password"), Some(&Value::String(password.clone())));
        }

        let group = forms::group(body, mode);
        check_errors(&group.errors, GROUP, body);
        if let Some(name) = &group.fields.name {
            assert_eq!(validate::group_name(name).as_ref(), Ok(name));
        }

        let server_group = forms::server_group(body, mode);
        check_errors(&server_group.errors, SERVER_GROUP, body);
        if let Some(name) = &server_group.fields.name {
            assert_eq!(
                evon_domain::server::server_group_name(name).as_ref(),
                Ok(name)
            );
        }

        let rule = forms::rule(body, mode);
        check_errors(&rule.errors, RULE, body);
        if let Some(name) = &rule.fields.name {
            assert_eq!(evon_domain::policy::name(name).as_ref(), Ok(name));
        }
        // What the store does with a rule's ports: read them for the resulting protocol.
        if let Some(Ok((protocol, ports))) = rule.fields.resulting_ports(None) {
            assert!(ports.suits(protocol));
        }

        let policy = forms::policy(body, mode);
        check_errors(&policy.errors, POLICY, body);
    }
    let server = forms::server(body);
    check_errors(&server.errors, SERVER, body);
    match forms::config(body) {
        Ok(patch) => {
            if let Some(list) = &patch.uuid_blacklist {
                assert_eq!(
                    validate::UuidList::parse(&list.to_string()).as_ref(),
                    Ok(list)
                );
            }
            if let Some(list) = &patch.uuid_whitelist {
                assert_eq!(
                    validate::UuidList::parse(&list.to_string()).as_ref(),
                    Ok(list)
                );
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            check_errors(&errors, CONFIG, body);
        }
    }
    match forms::profile(body) {
        Ok(shared) => assert_eq!(shared.is_some(), body.contains_key("shared")),
        Err(errors) => check_errors(&errors, PROFILE, body),
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_body(Some("application/json"), data) {
        Ok(object) => forms_on(&object.0),
        Err(error) => {
            let status = error.status_code().as_u16();
            assert!((400..500).contains(&status), "{status}: {error:?}");
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status);
        }
    }
});
