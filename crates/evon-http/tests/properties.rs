//! Property tests of the HTTP crate's pure input handling: the `Authorization` header parser
//! against a model of DRF's rules, the body reader on arbitrary bytes, and every writable
//! route's form on arbitrary JSON objects (no panic, errors only under the form's own fields,
//! the documented coercions, and values that come out already canonical).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::ResponseError;
use evon_domain::validate::{self, REQUIRED};
use evon_http::auth::{
    parse_authorization, CONTAINS_SPACES, INVALID_CHARACTERS, NOT_PROVIDED, NO_CREDENTIALS,
};
use evon_http::body::parse_body;
use evon_http::forms::{self, Mode};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------------------------
// Authorization

/// DRF's reading of the header, written as a byte-level state machine: split the value into
/// words at ASCII white space; the first word must be `token` in any case; exactly one more
/// word must follow, and it must be UTF-8.
fn authorization_model(header: Option<&[u8]>) -> Result<String, &'static str> {
    let header = header.ok_or(NOT_PROVIDED)?;
    let mut words: Vec<Vec<u8>> = Vec::new();
    let mut current = Vec::new();
    for &byte in header {
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        } else {
            current.push(byte);
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    match words.first() {
        // Setting bit 5 folds exactly `T`/`t`, `O`/`o`, … onto the lower-case letter.
        Some(word) if word.len() == 5 && word.iter().zip(b"token").all(|(a, b)| a | 0x20 == *b) => {
        }
        _ => return Err(NOT_PROVIDED),
    }
    match words.len() {
        1 => Err(NO_CREDENTIALS),
        2 => String::from_utf8(words[1].clone()).map_err(|_| INVALID_CHARACTERS),
        _ => Err(CONTAINS_SPACES),
    }
}

/// Header values biased towards the interesting shapes: the keyword in odd cases, white space
/// runs, extra words, non-UTF-8 bytes.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let keyword = select(vec![
        "Token", "token", "TOKEN", "tOkEn", "Bearer", "Tokens", "Toke", "",
    ]);
    let space = prop::collection::vec(
        select(vec![b' ', b'\t', b'\n', b'\r', b'\x0c', b'\x0b']),
        0..3,
    );
    let word = prop_oneof![
        "[0-9a-f]{40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..8),
        "[ -~]{0,6}".prop_map(String::into_bytes),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            space.clone(),
            keyword,
            prop::collection::vec((space, word), 0..4)
        )
            .prop_map(|(lead, keyword, rest)| {
                let mut bytes = lead;
                bytes.extend_from_slice(keyword.as_bytes());
                for (space, word) in rest {
                    bytes.extend(space);
                    bytes.extend(word);
                }
                bytes
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn authorization_agrees_with_the_model(header in header_bytes(), present in any::<bool>()) {
        let header = present.then_some(header.as_slice());
        let parsed = parse_authorization(header).map(str::to_owned);
        prop_assert_eq!(&parsed, &authorization_model(header));
        if let Ok(key) = parsed {
            prop_assert!(!key.is_empty() && !key.bytes().any(|b| b.is_ascii_whitespace()));
        }
    }

    /// Every well-formed header gives its key back, however it is spaced and cased.
    #[test]
    fn well_formed_headers_give_the_key(
        key in "[!-~]{1,60}",
        keyword in "[tT][oO][kK][eE][nN]",
        before in "[ \t]{0,3}",
        between in "[ \t\r\n]{1,3}",
        after in "[ \t\r\n]{0,3}",
    ) {
        let header = format!("{before}{keyword}{between}{key}{after}");
        prop_assert_eq!(parse_authorization(Some(header.as_bytes())), Ok(key.as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies and forms

/// Field names of every writable route's form, plus a few that no form reads.
const FIELDS: &[&str] = &[
    "username",
    "password",
    "is_superuser",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "groups",
    "user_permissions",
    "name",
    "user_set",
    "permissions",
    "timezone",
    "auto_update",
    "auto_update_time",
    "discovery_mode",
    "uuid_blacklist",
    "uuid_whitelist",
    "shared",
    "server_groups",
    "server_set",
    "description",
    "destination_protocol",
    "destination_ports",
    "source_users",
    "source_groups",
    "source_servers",
    "source_servergroups",
    "rules",
    "servers",
    "servergroups",
    "id",
    "token",
    "",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        select(vec![
            0i64,
            1,
            -1,
            2,
            24,
            25,
            i64::from(i32::MAX),
            i64::from(i32::MAX) + 1,
            i64::from(i32::MIN)
        ])
        .prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| Number::from_f64(f)
            .map(Value::Number)),
        select(vec![0.0f64, 1.0, 0.5, 1e300, -0.0])
            .prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        any::<String>().prop_map(Value::String),
        select(vec![
            "",
            " ",
            "yes",
            "off",
            "True",
            "1",
            "0",
            "TCP",
            "ICMP",
            "ALL",
            "udp",
            "80,443",
            "1-65535",
            "0-70000",
            "03:30",
            "24:00",
            "Australia/Sydney",
            "UTC",
            "a@b.co",
            "bob",
            "x,y",
            "0b6c2b2a-3b1f-4c4e-9a5d-1234567890ab",
            "\u{0}",
            "Zoë",
            "\u{202e}",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        (1usize..400).prop_map(|n| Value::String("ä".repeat(n))),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((select(FIELDS.to_vec()), inner), 0..4).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// A body object whose keys are mostly the forms' own fields.
fn body_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(
        (
            prop_oneof![4 => select(FIELDS.to_vec()).prop_map(str::to_owned), 1 => any::<String>()],
            json_value(),
        ),
        0..10,
    )
    .prop_map(|entries| entries.into_iter().collect())
}

/// The fields each form reads, and which of them are required on create.
struct FormFields {
    all: &'static [&'static str],
    required: &'static [&'static str],
}

const USER: FormFields = FormFields {
    all: &[
        "username",
        "password",
        "is_superuser",
        "first_name",
        "last_name",
        "email",
        "is_active",
        "groups",
        "user_permissions",
    ],
    required: &["username", "password"],
};
const GROUP: FormFields = FormFields {
    all: &["name", "user_set", "permissions"],
    required: &["name", "user_set", "permissions"],
};
const SERVER_GROUP: FormFields = FormFields {
    all: &["server_set", "name", "description"],
    required: &["server_set", "name"],
};
const RULE: FormFields = FormFields {
    all: &[
        "name",
        "destination_protocol",
        "destination_ports",
        "source_users",
        "source_groups",
        "source_servers",
        "source_servergroups",
    ],
    required: &["name", "destination_protocol"],
};
const POLICY: FormFields = FormFields {
    all: &["name", "description", "rules", "servers", "servergroups"],
    required: &["name"],
};
const CONFIG: &[&str] = &[
    "timezone",
    "auto_update",
    "auto_update_time",
    "discovery_mode",
    "uuid_blacklist",
    "uuid_whitelist",
];

/// Errors only under the form's fields; on create, every missing required field is reported as
/// required; and a field that is absent (on patch) or valid has no error.
fn check_errors(
    errors: &evon_domain::FieldErrors,
    fields: &FormFields,
    body: &Map<String, Value>,
    mode: Mode,
) -> Result<(), TestCaseError> {
    for (field, messages) in errors.iter() {
        prop_assert!(
            fields.all.contains(&field),
            "error under unknown field {:?}",
            field
        );
        prop_assert!(!messages.is_empty());
        prop_assert!(
            body.contains_key(field) || messages == [REQUIRED],
            "{:?}: {:?}",
            field,
            messages
        );
    }
    for field in fields.required {
        if mode == Mode::Create && !body.contains_key(*field) {
            prop_assert!(
                errors.iter().any(|(f, m)| f == *field && m == [REQUIRED]),
                "{:?} not required",
                field
            );
        }
    }
    if mode == Mode::Patch {
        for field in fields.all {
            if !body.contains_key(*field) {
                prop_assert!(!errors.has(field), "absent {:?} has an error", field);
            }
        }
    }
    // The error document is what the API sends: an object of non-empty lists of strings.
    let rendered = serde_json::to_value(errors).unwrap();
    prop_assert!(rendered.as_object().unwrap().values().all(|v| v
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string))));
    Ok(())
}

/// The ids a valid list field carries, read back from the body.
fn ids_in(body: &Map<String, Value>, field: &str) -> Option<Vec<i32>> {
    body.get(field)?.as_array().map(|items| {
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.parse().unwrap(),
                other => i32::try_from(other.as_i64().unwrap()).unwrap(),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes under any content type: an object, or a 4xx in the API's format.
    #[test]
    fn bodies_parse_or_fail_with_a_4xx(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            body_object().prop_map(|m| serde_json::to_vec(&m).unwrap()),
        ],
        content_type in prop::option::of(select(vec!["application/json", "application/merge-patch+json", "text/plain", "", "APPLICATION/JSON; charset=utf-8"])),
    ) {
        match parse_body(content_type, &bytes) {
            Ok(object) => {
                if !bytes.iter().all(u8::is_ascii_whitespace) {
                    let reparsed: Value = serde_json::from_slice(&bytes).unwrap();
                    prop_assert_eq!(Value::Object(object.0), reparsed);
                }
            }
            Err(error) => {
                let status = error.status_code().as_u16();
                prop_assert!((400..500).contains(&status), "{} for {:?}", status, error);
                let response = error.error_response();
                prop_assert_eq!(response.status().as_u16(), status);
            }
        }
    }

    #[test]
    fn user_forms(body in body_object(), create in any::<bool>()) {
        let mode = if create { Mode::Create } else { Mode::Patch };
        let form = forms::user(&body, mode);
        check_errors(&form.errors, &USER, &body, mode)?;
        if let Some(username) = &form.fields.username {
            prop_assert_eq!(validate::username(username), Ok(username.clone()));
        }
        if let Some(email) = &form.fields.email {
            prop_assert_eq!(validate::email(email), Ok(email.clone()));
        }
        if let Some(password) = &form.password {
            // Taken exactly as sent.
            prop_assert_eq!(body.get("password"), Some(&Value::String(password.clone())));
        }
        if let Some(groups) = &form.fields.groups {
            prop_assert_eq!(Some(groups.clone()), ids_in(&body, "groups"));
        }
        if let Some(permissions) = &form.fields.user_permissions {
            prop_assert!(permissions.iter().all(|id| evon_domain::permission::by_id(*id).is_some()));
        }
        for (field, value) in [("is_active", form.fields.is_active), ("is_superuser", form.fields.is_superuser)] {
            if let Some(value) = value {
                let sent = &body[field];
                let truthy = matches!(sent, Value::Bool(true)) || sent.as_f64() == Some(1.0)
                    || sent.as_str().is_some_and(|s| ["t", "y", "yes", "true", "on", "1"].contains(&s.to_ascii_lowercase().as_str()));
                prop_assert_eq!(value, truthy, "{} = {}", field, sent);
            }
        }
    }

    #[test]
    fn group_and_server_group_forms(body in body_object(), create in any::<bool>()) {
        let mode = if create { Mode::Create } else { Mode::Patch };
        let group = forms::group(&body, mode);
        check_errors(&group.errors, &GROUP, &body, mode)?;
        if let Some(name) = &group.fields.name {
            prop_assert_eq!(validate::group_name(name), Ok(name.clone()));
        }
        if let Some(users) = &group.fields.user_set {
            prop_assert_eq!(Some(users.clone()), ids_in(&body, "user_set"));
        }
        let server_group = forms::server_group(&body, mode);
        check_errors(&server_group.errors, &SERVER_GROUP, &body, mode)?;
        if let Some(name) = &server_group.fields.name {
            prop_assert_eq!(evon_domain::server::server_group_name(name), Ok(name.clone()));
            prop_assert!(!name.contains(','));
        }
        if let Some(Some(description)) = &server_group.fields.description {
            prop_assert!(description.chars().count() <= evon_domain::server::DESCRIPTION_MAX);
        }
        let server = forms::server(&body);
        check_errors(&server.errors, &FormFields { all: &["server_groups"], required: &[] }, &body, Mode::Patch)?;
    }

    #[test]
    fn rule_and_policy_forms(body in body_object(), create in any::<bool>()) {
        let mode = if create { Mode::Create } else { Mode::Patch };
        let rule = forms::rule(&body, mode);
        check_errors(&rule.errors, &RULE, &body, mode)?;
        if let Some(protocol) = rule.fields.destination_protocol {
            prop_assert_eq!(body.get("destination_protocol"), Some(&Value::String(protocol.as_str().to_owned())));
        }
        // What the store will do with the ports: parse them for the resulting protocol, which
        // must not panic and must refuse with a message whenever it refuses.
        if let Some(Err(message)) = rule.fields.resulting_ports(None) {
            prop_assert!(!message.is_empty());
        }
        let policy = forms::policy(&body, mode);
        check_errors(&policy.errors, &POLICY, &body, mode)?;
        if let Some(name) = &policy.fields.name {
            prop_assert_eq!(evon_domain::policy::name(name), Ok(name.clone()));
        }
    }

    #[test]
    fn config_and_profile_forms(body in body_object()) {
        match forms::config(&body) {
            Ok(patch) => {
                if let Some(list) = &patch.uuid_blacklist {
                    prop_assert_eq!(validate::UuidList::parse(&list.to_string()), Ok(list.clone()));
                }
                if let Some(time) = patch.auto_update_time {
                    prop_assert!(time.hour() < 24 && time.minute() < 60);
                }
                if body.get("timezone").is_none() {
                    prop_assert!(patch.timezone.is_none());
                }
            }
            Err(errors) => {
                check_errors(&errors, &FormFields { all: CONFIG, required: &[] }, &body, Mode::Patch)?;
                prop_assert!(!errors.is_empty());
            }
        }
        match forms::profile(&body) {
            Ok(shared) => prop_assert_eq!(shared.is_some(), body.contains_key("shared")),
            Err(errors) => {
                check_errors(&errors, &FormFields { all: &["shared"], required: &[] }, &body, Mode::Patch)?;
            }
        }
    }
}
