//! From JSON objects to validated domain values, field by field, the way DRF serializers do it:
//! every failing field is reported at once, unknown and read-only fields are ignored.

use evon_domain::config::ConfigPatch;
use evon_domain::policy::{self, PolicyPatch, RulePatch};
use evon_domain::server::{self, ServerGroupPatch};
use evon_domain::validate::{self, TimeOfDay, UuidList, NULL, REQUIRED};
use evon_domain::{permission, FieldErrors, GroupPatch, Protocol, UserPatch};
use serde_json::{Map, Value};

use crate::body::python_type_name;

/// Whether absent fields are an error (create) or left alone (partial update).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Patch,
}

/// A body being read field by field, collecting errors.
#[derive(Debug)]
pub struct Form<'a> {
    body: &'a Map<String, Value>,
    mode: Mode,
    pub errors: FieldErrors,
}

impl<'a> Form<'a> {
    pub fn new(body: &'a Map<String, Value>, mode: Mode) -> Self {
        Self {
            body,
            mode,
            errors: FieldErrors::new(),
        }
    }

    /// The raw value of a field; records "required" when a required field is missing on create.
    fn value(&mut self, name: &str, required: bool) -> Option<&'a Value> {
        let value = self.body.get(name);
        if value.is_none() && required && self.mode == Mode::Create {
            self.errors.add(name, REQUIRED);
        }
        match value {
            Some(Value::Null) => {
                self.errors.add(name, NULL);
                None
            }
            other => other,
        }
    }

    /// A text field, validated by `check`. Numbers are taken as their text, as DRF does.
    pub fn text(
        &mut self,
        name: &str,
        required: bool,
        check: impl FnOnce(&str) -> Result<String, String>,
    ) -> Option<String> {
        let text = match self.value(name, required)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                self.errors.add(name, "Not a valid string.");
                return None;
            }
        };
        self.errors.check(name, check(&text))
    }

    /// A boolean field, accepting what DRF's `BooleanField` accepts.
    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        let parsed = match self.value(name, false)? {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_f64() {
                Some(1.0) => Some(true),
                Some(0.0) => Some(false),
                _ => None,
            },
            Value::String(s) => match s.as_str() {
                "t" | "T" | "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on"
                | "On" | "ON" | "1" => Some(true),
                "f" | "F" | "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE"
                | "off" | "Off" | "OFF" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.errors.add(name, "Must be a valid boolean.");
        }
        parsed
    }

    /// A list of primary keys. Whether each names an object is the store's to check; ids that
    /// cannot name anything (out of range) are reported here with the same message.
    pub fn ids(&mut self, name: &str, required: bool) -> Option<Vec<i32>> {
        let items = match self.value(name, required)? {
            Value::Array(items) => items,
            other => {
                let message = format!(
                    "Expected a list of items but got type \"{}\".",
                    python_type_name(other)
                );
                self.errors.add(name, message);
                return None;
            }
        };
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            let id = match item {
                Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                    s.clone()
                }
                other => {
                    let message = format!(
                        "Incorrect type. Expected pk value, received {}.",
                        python_type_name(other)
                    );
                    self.errors.add(name, message);
                    return None;
                }
            };
            match id.parse::<i32>() {
                Ok(id) => ids.push(id),
                Err(_) => {
                    self.errors.add(
                        name,
                        format!("Invalid pk \"{id}\" - object does not exist."),
                    );
                    return None;
                }
            }
        }
        Some(ids)
    }

    /// A list of permission ids, each of which must be in the grantable catalogue.
    pub fn permissions(&mut self, name: &str, required: bool) -> Option<Vec<i32>> {
        let ids = self.ids(name, required)?;
        if let Some(unknown) = ids.iter().find(|id| permission::by_id(**id).is_none()) {
            self.errors.add(
                name,
                format!("Invalid pk \"{unknown}\" - object does not exist."),
            );
            return None;
        }
        Some(ids)
    }
}

/// A nullable text field: `null` clears it.
impl Form<'_> {
    pub fn nullable_text(
        &mut self,
        name: &str,
        check: impl FnOnce(&str) -> Result<String, String>,
    ) -> Option<Option<String>> {
        if matches!(self.body.get(name), Some(Value::Null)) {
            return Some(None);
        }
        self.text(name, false, check).map(Some)
    }
}

/// A user body: the fields, the clear-text password (if one was sent and valid), and what failed.
#[derive(Debug)]
pub struct UserForm {
    pub fields: UserPatch,
    pub password: Option<String>,
    pub errors: FieldErrors,
}

pub fn user(body: &Map<String, Value>, mode: Mode) -> UserForm {
    let mut form = Form::new(body, mode);
    let username = form.text("username", true, validate::username);
    let password = form.text_raw_password();
    let fields = UserPatch {
        username,
        password: None,
        is_superuser: form.boolean("is_superuser"),
        first_name: form.text("first_name", false, |v| {
            validate::text(v, validate::NAME_MAX, true)
        }),
        last_name: form.text("last_name", false, |v| {
            validate::text(v, validate::NAME_MAX, true)
        }),
        email: form.text("email", false, validate::email),
        is_active: form.boolean("is_active"),
        groups: form.ids("groups", false),
        user_permissions: form.permissions("user_permissions", false),
    };
    UserForm {
        fields,
        password,
        errors: form.errors,
    }
}

impl Form<'_> {
    /// The password, taken exactly as sent: no trimming, no number-to-text coercion.
    fn text_raw_password(&mut self) -> Option<String> {
        match self.value("password", true)? {
            Value::String(s) => self.errors.check("password", validate::password(s)),
            _ => {
                self.errors.add("password", "Not a valid string.");
                None
            }
        }
    }
}

pub fn group(body: &Map<String, Value>, mode: Mode) -> Parsed<GroupPatch> {
    let mut form = Form::new(body, mode);
    let fields = GroupPatch {
        name: form.text("name", true, validate::group_name),
        user_set: form.ids("user_set", true),
        permissions: form.permissions("permissions", true),
    };
    Parsed {
        fields,
        errors: form.errors,
    }
}

/// A Config PATCH body.
pub fn config(body: &Map<String, Value>) -> Result<ConfigPatch, FieldErrors> {
    let mut form = Form::new(body, Mode::Patch);
    let patch = ConfigPatch {
        timezone: form
            .text("timezone", false, |v| {
                validate::timezone(v).map(|tz| tz.name().to_owned())
            })
            .and_then(|name| validate::timezone(&name).ok()),
        auto_update: form.boolean("auto_update"),
        auto_update_time: form.time_of_day("auto_update_time"),
        discovery_mode: form.boolean("discovery_mode"),
        uuid_blacklist: form.uuid_list("uuid_blacklist"),
        uuid_whitelist: form.uuid_list("uuid_whitelist"),
    };
    form.errors.into_result().map(|()| patch)
}

impl Form<'_> {
    fn time_of_day(&mut self, name: &str) -> Option<TimeOfDay> {
        let parsed = match self.value(name, false)? {
            Value::String(s) => TimeOfDay::parse(s),
            _ => TimeOfDay::parse(""),
        };
        self.errors.check(name, parsed)
    }

    fn uuid_list(&mut self, name: &str) -> Option<UuidList> {
        let text = self.text(name, false, |v| Ok(v.to_owned()))?;
        self.errors.check(name, UuidList::parse(&text))
    }
}

/// A user profile PATCH body: only `shared` is writable.
pub fn profile(body: &Map<String, Value>) -> Result<Option<bool>, FieldErrors> {
    let mut form = Form::new(body, Mode::Patch);
    let shared = form.boolean("shared");
    form.errors.into_result().map(|()| shared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_failing_field_at_once() {
        let body = object(json!({
            "username": "bad name",
            "is_superuser": "maybe",
            "email": "nope",
            "groups": "1",
            "user_permissions": [1, 99],
        }));
        let form = user(&body, Mode::Create);
        insta::assert_json_snapshot!(serde_json::to_value(&form.errors).unwrap());
    }

    #[test]
    fn coercions() {
        let body = object(
            json!({"is_active": "yes", "is_superuser": 0, "groups": ["3", 4], "first_name": 12}),
        );
        let form = user(&body, Mode::Patch);
        assert!(form.errors.is_empty(), "{:?}", form.errors);
        assert_eq!(form.fields.is_active, Some(true));
        assert_eq!(form.fields.is_superuser, Some(false));
        assert_eq!(form.fields.groups, Some(vec![3, 4]));
        assert_eq!(form.fields.first_name.as_deref(), Some("12"));
        assert!(form.password.is_none());
    }

    #[test]
    fn list_item_types() {
        let body = object(json!({"user_set": [1, true], "permissions": [1.5], "name": null}));
        let form = group(&body, Mode::Create);
        insta::assert_json_snapshot!(serde_json::to_value(&form.errors).unwrap());
    }

    #[test]
    fn config_fields() {
        let errors = config(&object(json!({
            "timezone": "Mars/Olympus",
            "auto_update_time": "25:00",
            "uuid_blacklist": "abc",
            "discovery_mode": "sometimes"
        })))
        .unwrap_err();
        insta::assert_json_snapshot!(serde_json::to_value(&errors).unwrap());
        let patch = config(&object(
            json!({"auto_update_time": "03:30:45", "ec2_iam_role_status": true}),
        ))
        .unwrap();
        assert_eq!(
            patch.auto_update_time.map(|t| t.to_string()).as_deref(),
            Some("03:30:00")
        );
    }
}

#[derive(Debug)]
pub struct Parsed<T> {
    pub fields: T,
    pub errors: FieldErrors,
}

pub fn server(body: &Map<String, Value>) -> Parsed<Option<Vec<i32>>> {
    let mut form = Form::new(body, Mode::Patch);
    let fields = form.ids("server_groups", false);
    Parsed {
        fields,
        errors: form.errors,
    }
}

pub fn server_group(body: &Map<String, Value>, mode: Mode) -> Parsed<ServerGroupPatch> {
    let mut form = Form::new(body, mode);
    let fields = ServerGroupPatch {
        server_set: form.ids("server_set", true),
        name: form.text("name", true, server::server_group_name),
        description: form.nullable_text("description", server::description),
    };
    Parsed {
        fields,
        errors: form.errors,
    }
}

pub fn rule(body: &Map<String, Value>, mode: Mode) -> Parsed<RulePatch> {
    let mut form = Form::new(body, mode);
    let fields = RulePatch {
        name: form.text("name", true, policy::name),
        destination_protocol: form
            .text("destination_protocol", true, |v| {
                Protocol::parse(v).map(|p| p.as_str().to_owned())
            })
            .and_then(|p| Protocol::parse(&p).ok()),
        destination_ports: form.text("destination_ports", false, |v| Ok(v.to_owned())),
        source_users: form.ids("source_users", false),
        source_groups: form.ids("source_groups", false),
        source_servers: form.ids("source_servers", false),
        source_servergroups: form.ids("source_servergroups", false),
    };
    Parsed {
        fields,
        errors: form.errors,
    }
}

pub fn policy(body: &Map<String, Value>, mode: Mode) -> Parsed<PolicyPatch> {
    let mut form = Form::new(body, mode);
    let fields = PolicyPatch {
        name: form.text("name", true, policy::name),
        description: form.nullable_text("description", server::description),
        rules: form.ids("rules", false),
        servers: form.ids("servers", false),
        servergroups: form.ids("servergroups", false),
    };
    Parsed {
        fields,
        errors: form.errors,
    }
}
