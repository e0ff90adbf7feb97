//! Backups on both backends: a varied hub exports, imports into a fresh hub with every id kept
//! and exports again to the same bytes; tokens keep working; sequences move past the imported
//! ids; and every kind of bad document or target is refused with a clear error, writing nothing.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use evon_crypto::{ApiToken, TokenDigest};
use evon_domain::config::{ConfigPatch, HubSettings};
use evon_domain::policy::{PolicyPatch, RulePatch};
use evon_domain::server::ServerGroupPatch;
use evon_domain::validate::{ServerUuid, TimeOfDay, UuidList};
use evon_domain::{FieldErrors, GroupPatch, Principal, Protocol, SubnetKey, UserPatch};
use evon_store::auth::{principal_by_token, TokenLookup};
use evon_store::backup::{self, HubDocument};
use evon_store::servers::Registration;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, OpenMode, PoolOptions, Store, StoreError};

/// Runs a test function on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(evon_store::Backend::Sqlite); })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(evon_store::Backend::Postgres); })*
        }
    };
}

on_both_backends!(
    round_trip_keeps_everything,
    sequences_move_past_imported_ids,
    dangling_reference_is_refused,
    duplicate_id_is_refused,
    bad_port_spec_is_refused,
    non_canonical_uuid_is_refused,
    missing_builtin_is_refused,
    many_problems_are_listed_and_capped,
    import_into_a_non_empty_hub_is_refused,
);

struct Hub {
    _db: TestDatabase,
    store: Store,
    admin_token: String,
}

fn hub(backend: Backend, domain: &str, subnet_key: u8) -> Hub {
    let db = TestDatabase::new(backend);
    let options = PoolOptions {
        max_size: 2,
        min_idle: Some(0),
        ..PoolOptions::default()
    };
    let store = Store::open(db.url(), OpenMode::CreateIfMissing, &options).unwrap();
    let admin = ApiToken::generate();
    let request = evon_store::hub::InitRequest {
        settings: HubSettings {
            domain: domain.into(),
            subnet_key: SubnetKey::new(subnet_key),
        },
        admin_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        admin_token: admin.digest(),
        deployer_token: ApiToken::generate().digest(),
    };
    store
        .write(|conn| evon_store::hub::initialise(conn, &request))
        .unwrap();
    Hub {
        _db: db,
        store,
        admin_token: admin.reveal().to_owned(),
    }
}

/// A target for imports: initialised with other settings than the source, to show they are
/// replaced.
fn fresh_target(backend: Backend) -> Hub {
    hub(backend, "other.example.org", 7)
}

fn superuser() -> Principal {
    Principal {
        user_id: 1,
        username: "admin".into(),
        is_superuser: true,
        permissions: BTreeSet::new(),
    }
}

fn export(store: &Store) -> HubDocument {
    store.read(backup::export).unwrap()
}

fn import(store: &Store, doc: &HubDocument) -> Result<(), StoreError> {
    store.write(|conn| backup::import(conn, doc))
}

fn lookup(store: &Store, token: &str) -> TokenLookup {
    store
        .read(|conn| principal_by_token(conn, &TokenDigest::of(token)))
        .unwrap()
}

fn uuid(n: u32) -> String {
    format!("{n:08x}-1234-4abc-8def-0123456789ab")
}

/// Clear-text tokens of the users a varied hub was built with, by username.
type Tokens = Vec<(String, String)>;

/// A hub with a bit of everything: users with direct and group permissions, an inactive user, a
/// shared one, a superuser, an empty group, deleted objects (holes in the ids), servers in
/// several groups, a connected and a disconnected server, rules of every protocol with every
/// kind of source, policies with every kind of target, and a changed Config.
fn build_varied(hub: &Hub) -> Tokens {
    let store = &hub.store;
    let none = FieldErrors::new();
    let actor = superuser();
    let mut tokens = vec![("admin".to_owned(), hub.admin_token.clone())];
    store
        .write(|conn| {
            let ops = evon_store::groups::create(
                conn,
                &actor,
                &GroupPatch {
                    name: Some("Ops".into()),
                    permissions: Some(vec![19, 11, 15]),
                    ..GroupPatch::default()
                },
                &none,
            )?;
            let devs = evon_store::groups::create(
                conn,
                &actor,
                &GroupPatch {
                    name: Some("Devs".into()),
                    permissions: Some(vec![4]),
                    ..GroupPatch::default()
                },
                &none,
            )?;
            evon_store::groups::create(
                conn,
                &actor,
                &GroupPatch {
                    name: Some("Nobody yet".into()),
                    ..GroupPatch::default()
                },
                &none,
            )?;
            let people = [
                ("alice", vec![ops.id], vec![2, 1], true, false),
                ("bob", vec![devs.id, ops.id], vec![], true, false),
                ("temp", vec![], vec![], true, false),
                ("carol", vec![devs.id], vec![23], false, false),
                ("dave", vec![], vec![], true, true),
            ];
            for (name, groups, permissions, active, superuser) in people {
                let created = evon_store::users::create(
                    conn,
                    &actor,
                    &UserPatch {
                        username: Some(name.into()),
                        first_name: Some(format!("{name} first")),
                        last_name: Some("Example".into()),
                        email: Some(format!("{name}@example.com")),
                        is_active: Some(active),
                        is_superuser: Some(superuser),
                        groups: Some(groups),
                        user_permissions: Some(permissions),
                        ..UserPatch::default()
                    },
                    (name != "carol").then_some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
                    &none,
                )?;
                tokens.push((name.to_owned(), created.token.reveal().to_owned()));
            }
            let temp = evon_store::users::id_by_username(conn, "temp")?;
            evon_store::users::delete(conn, &actor, temp)?;
            let bob = evon_store::users::id_by_username(conn, "bob")?;
            evon_store::users::set_shared(conn, bob, true)?;
            Ok(())
        })
        .unwrap();
    tokens.retain(|(name, _)| name != "temp");

    let mut server_ids = Vec::new();
    for (n, hostname) in ["web-001", "web-002", "gone", "db-eu-001", "web-001"]
        .into_iter()
        .enumerate()
    {
        let registration = store
            .write(|conn| evon_store::servers::register(conn, &uuid(n as u32), hostname))
            .unwrap();
        match registration {
            Registration::Allowed { server, .. } => server_ids.push(server.id),
            other => panic!("{other:?}"),
        }
    }
    store
        .write(|conn| {
            evon_store::servers::delete(conn, server_ids[2])?;
            evon_store::servers::mark_connected(conn, &ServerUuid::parse(&uuid(0)).unwrap())?;
            let at = Utc.with_ymd_and_hms(2026, 11, 30, 8, 15, 42).unwrap()
                + chrono::Duration::microseconds(123_456);
            evon_store::servers::mark_disconnected(
                conn,
                &ServerUuid::parse(&uuid(1)).unwrap(),
                at,
            )?;
            let web = evon_store::server_groups::create(
                conn,
                &ServerGroupPatch {
                    name: Some("Web".into()),
                    description: Some(Some("front ends".into())),
                    server_set: Some(vec![server_ids[4], server_ids[0], server_ids[1]]),
                },
                &none,
            )?;
            let db = evon_store::server_groups::create(
                conn,
                &ServerGroupPatch {
                    name: Some("Databases".into()),
                    description: None,
                    server_set: Some(vec![]),
                },
                &none,
            )?;
            evon_store::servers::set_groups(conn, server_ids[3], Some(&[db.id, web.id]), &none)?;
            let alice = evon_store::users::id_by_username(conn, "alice")?;
            let bob = evon_store::users::id_by_username(conn, "bob")?;
            let gone = evon_store::rules::create(
                conn,
                &RulePatch {
                    name: Some("deleted".into()),
                    destination_protocol: Some(Protocol::Tcp),
                    destination_ports: Some("1".into()),
                    ..RulePatch::default()
                },
                &none,
            )?;
            evon_store::rules::delete(conn, gone.id)?;
            let mut rule_ids = Vec::new();
            for (name, protocol, ports) in [
                ("web", Protocol::Tcp, "443, 80,8000-8100"),
                ("dns", Protocol::Udp, "53"),
                ("ping", Protocol::Icmp, ""),
                ("anything", Protocol::All, ""),
            ] {
                let rule = evon_store::rules::create(
                    conn,
                    &RulePatch {
                        name: Some(name.into()),
                        destination_protocol: Some(protocol),
                        destination_ports: Some(ports.into()),
                        source_users: Some(vec![bob, alice]),
                        source_groups: Some(vec![2]),
                        source_servers: Some(vec![server_ids[3]]),
                        source_servergroups: Some(vec![db.id, 1]),
                    },
                    &none,
                )?;
                rule_ids.push(rule.id);
            }
            evon_store::policies::create(
                conn,
                &PolicyPatch {
                    name: Some("front".into()),
                    description: Some(Some("web and dns to the front ends".into())),
                    rules: Some(vec![rule_ids[1], rule_ids[0]]),
                    servers: Some(vec![server_ids[0]]),
                    servergroups: Some(vec![web.id]),
                },
                &none,
            )?;
            evon_store::policies::create(
                conn,
                &PolicyPatch {
                    name: Some("everything".into()),
                    description: None,
                    rules: Some(rule_ids.clone()),
                    servers: Some(vec![]),
                    servergroups: Some(vec![1]),
                },
                &none,
            )?;
            evon_store::config::update(
                conn,
                ConfigPatch {
                    timezone: Some("Australia/Sydney".parse().unwrap()),
                    auto_update: Some(false),
                    auto_update_time: Some(TimeOfDay::parse("04:45").unwrap()),
                    discovery_mode: Some(false),
                    uuid_blacklist: Some(UuidList::parse(&uuid(99)).unwrap()),
                    uuid_whitelist: Some(
                        UuidList::parse(&format!("{},{}", uuid(98), uuid(0))).unwrap(),
                    ),
                },
            )?;
            Ok(())
        })
        .unwrap();
    tokens
}

fn round_trip_keeps_everything(backend: Backend) {
    let source = hub(backend, "hub.example.com", 42);
    let tokens = build_varied(&source);
    let exported = export(&source.store);
    assert_eq!(backup::validate(&exported), Ok(()));

    // The document holds what was built, as stored.
    assert_eq!(exported.hub.domain, "hub.example.com");
    assert_eq!(exported.hub.subnet_key, 42);
    assert_eq!(exported.config.timezone, "Australia/Sydney");
    assert_eq!(exported.config.auto_update_time, "04:45:00");
    assert!(!exported.config.discovery_mode);
    let usernames: Vec<&str> = exported.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(
        usernames,
        ["admin", "deployer", "alice", "bob", "carol", "dave"]
    );
    let ids: Vec<i32> = exported.users.iter().map(|u| u.id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 6, 7], "the deleted user leaves a hole");
    assert_eq!(exported.users[2].permissions, [1, 2]);
    assert!(exported.users[3].profile.shared);
    assert!(!exported.users[4].is_active);
    assert_eq!(exported.users[4].password_hash, None);
    assert!(exported.users[5].is_superuser);
    assert_eq!(exported.groups.len(), 4);
    assert_eq!(exported.groups[0].members, ids, "All Users holds everyone");
    assert_eq!(exported.groups[1].permissions, [11, 15, 19]);
    assert!(exported.groups[3].members.is_empty());
    let server_ids: Vec<i32> = exported.servers.iter().map(|s| s.id).collect();
    assert_eq!(server_ids, [1, 2, 4, 5]);
    assert_eq!(exported.servers[3].fqdn, "web-001-1.hub.example.com");
    assert!(exported.servers[0].connected);
    assert_eq!(
        exported.servers[1].disconnected_since.as_deref(),
        Some("2026-11-30T08:15:42.123456Z")
    );
    assert_eq!(exported.server_groups[0].members, server_ids);
    let protocols: Vec<&str> = exported
        .rules
        .iter()
        .map(|r| r.destination_protocol.as_str())
        .collect();
    assert_eq!(protocols, ["TCP", "UDP", "ICMP", "ALL"]);
    assert_eq!(exported.rules[0].id, 2, "the deleted rule leaves a hole");
    assert_eq!(exported.rules[0].destination_ports, "80,443,8000-8100");
    assert_eq!(exported.rules[0].source_users, [3, 4], "relations ascend");
    assert_eq!(exported.rules[0].source_servergroups, [1, 3]);
    assert_eq!(exported.policies[0].rules, [2, 3]);
    assert_eq!(exported.policies[1].description, None);
    assert_eq!(
        backup::to_json(&exported),
        backup::to_json(&export(&source.store)),
        "exporting twice gives the same bytes"
    );

    let target = fresh_target(backend);
    let old_admin_token = target.admin_token.clone();
    import(&target.store, &exported).unwrap();
    let reexported = export(&target.store);
    assert_eq!(reexported, exported);
    assert_eq!(backup::to_json(&reexported), backup::to_json(&exported));
    let settings = target.store.read(evon_store::hub::settings).unwrap();
    assert_eq!(settings.domain, "hub.example.com");
    assert_eq!(settings.subnet_key.get(), 42);

    for (username, token) in &tokens {
        match lookup(&target.store, token) {
            TokenLookup::Active(principal) if username != "carol" => {
                assert_eq!(&principal.username, username)
            }
            TokenLookup::Inactive if username == "carol" => {}
            other => panic!("{username}: {other:?}"),
        }
    }
    assert_eq!(
        lookup(&target.store, &old_admin_token),
        TokenLookup::Unknown,
        "the target's own admin token is replaced"
    );
    match lookup(&target.store, &tokens[1].1) {
        TokenLookup::Active(alice) => {
            // Direct permissions and those of Ops.
            assert_eq!(
                alice.permissions.into_iter().collect::<Vec<_>>(),
                [1, 2, 11, 15, 19]
            );
        }
        other => panic!("{other:?}"),
    }
}

fn sequences_move_past_imported_ids(backend: Backend) {
    let source = hub(backend, "hub.example.com", 42);
    build_varied(&source);
    let doc = export(&source.store);
    let target = fresh_target(backend);
    import(&target.store, &doc).unwrap();
    let max = |ids: Vec<i32>| ids.into_iter().max().unwrap();
    let none = FieldErrors::new();
    target
        .store
        .write(|conn| {
            let rule = evon_store::rules::create(
                conn,
                &RulePatch {
                    name: Some("new".into()),
                    destination_protocol: Some(Protocol::Icmp),
                    ..RulePatch::default()
                },
                &none,
            )?;
            assert!(rule.id > max(doc.rules.iter().map(|r| r.id).collect()));
            let user = evon_store::users::create(
                conn,
                &superuser(),
                &UserPatch {
                    username: Some("newcomer".into()),
                    ..UserPatch::default()
                },
                None,
                &none,
            )?;
            assert!(user.user.id > max(doc.users.iter().map(|u| u.id).collect()));
            let group = evon_store::groups::create(
                conn,
                &superuser(),
                &GroupPatch {
                    name: Some("new group".into()),
                    ..GroupPatch::default()
                },
                &none,
            )?;
            assert!(group.id > max(doc.groups.iter().map(|g| g.id).collect()));
            let server_group = evon_store::server_groups::create(
                conn,
                &ServerGroupPatch {
                    name: Some("new servers".into()),
                    ..ServerGroupPatch::default()
                },
                &none,
            )?;
            assert!(server_group.id > max(doc.server_groups.iter().map(|g| g.id).collect()));
            let policy = evon_store::policies::create(
                conn,
                &PolicyPatch {
                    name: Some("new policy".into()),
                    ..PolicyPatch::default()
                },
                &none,
            )?;
            assert!(policy.id > max(doc.policies.iter().map(|p| p.id).collect()));
            // Discovery is off in the imported Config; the whitelisted UUID may join.
            match evon_store::servers::register(conn, &uuid(98), "newcomer")? {
                Registration::Allowed { server, created } => {
                    assert!(created);
                    assert!(server.id > max(doc.servers.iter().map(|s| s.id).collect()));
                    assert_eq!(server.fqdn, "newcomer.hub.example.com");
                    // The lowest free address of the imported range: the deleted server's.
                    assert_eq!(server.ipv4_address.to_string(), "100.42.224.14");
                }
                other => panic!("{other:?}"),
            }
            Ok(())
        })
        .unwrap();
}

/// A small valid document to spoil: a varied hub's export.
fn sample(backend: Backend) -> HubDocument {
    let source = hub(backend, "hub.example.com", 42);
    build_varied(&source);
    export(&source.store)
}

/// Imports a spoilt document into a fresh hub: it must fail with `InvalidDocument` naming
/// `expected` among its problems, and leave the target as it was.
fn assert_refused(backend: Backend, doc: &HubDocument, expected: &str) -> Vec<String> {
    let target = fresh_target(backend);
    let before = export(&target.store);
    let problems = match import(&target.store, doc) {
        Err(StoreError::InvalidDocument(problems)) => problems,
        other => panic!("expected an invalid document, got {other:?}"),
    };
    assert!(
        problems.iter().any(|p| p == expected),
        "{expected:?} not among {problems:#?}"
    );
    assert_eq!(backup::validate(doc), Err(problems.clone()));
    assert_eq!(export(&target.store), before, "nothing was written");
    problems
}

fn dangling_reference_is_refused(backend: Backend) {
    let mut doc = sample(backend);
    doc.rules[3].source_users.push(999);
    doc.policies[0].servergroups.push(77);
    let rule_id = doc.rules[3].id;
    let problems = assert_refused(
        backend,
        &doc,
        &format!(
            "rules[3] (id {rule_id}): source_users names user 999, which is not in the document"
        ),
    );
    assert!(problems.contains(&format!(
        "policies[0] (id {}): servergroups names server group 77, which is not in the document",
        doc.policies[0].id
    )));
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

fn duplicate_id_is_refused(backend: Backend) {
    let mut doc = sample(backend);
    let mut copy = doc.rules[1].clone();
    copy.name = "copy".into();
    let id = copy.id;
    doc.rules.push(copy);
    assert_refused(
        backend,
        &doc,
        &format!("rules[4] (id {id}): id {id} is already used by rules[1]"),
    );
}

fn bad_port_spec_is_refused(backend: Backend) {
    let mut doc = sample(backend);
    doc.rules[0].destination_ports = "8100-8000".into();
    doc.rules[1].destination_ports = "53,22".into();
    doc.rules[2].destination_ports = "7".into();
    let problems = assert_refused(
        backend,
        &doc,
        &format!(
            "rules[0] (id {}): destination_ports \"8100-8000\": Malformed port range '8100-8000', start port must be less than end port.",
            doc.rules[0].id
        ),
    );
    assert!(problems.contains(&format!(
        "rules[1] (id {}): destination_ports \"53,22\" is not in canonical form; write \"22,53\"",
        doc.rules[1].id
    )));
    assert!(problems.contains(&format!(
        "rules[2] (id {}): destination_ports \"7\": Ports can only be specified for destination protocols TCP or UDP",
        doc.rules[2].id
    )));
}

fn non_canonical_uuid_is_refused(backend: Backend) {
    let mut doc = sample(backend);
    let dashed = doc.servers[0].uuid.clone();
    doc.servers[0].uuid = dashed.replace('-', "");
    doc.servers[1].uuid = dashed.to_uppercase();
    let problems = assert_refused(
        backend,
        &doc,
        &format!(
            "servers[0] (id {}): uuid {:?} is not in canonical form; write {dashed:?}",
            doc.servers[0].id, doc.servers[0].uuid
        ),
    );
    assert!(problems.contains(&format!(
        "servers[1] (id {}): uuid {:?}: Invalid UUID specified: {}",
        doc.servers[1].id, doc.servers[1].uuid, doc.servers[1].uuid
    )));
}

fn missing_builtin_is_refused(backend: Backend) {
    let mut doc = sample(backend);
    doc.users.retain(|u| u.id != 2);
    doc.groups[0].members.retain(|id| *id != 2);
    doc.server_groups[0].members.pop();
    doc.server_groups[0].name = "Every Server".into();
    let problems = assert_refused(
        backend,
        &doc,
        "users: the built-in user 2 (deployer) is missing",
    );
    let last = doc.servers.last().unwrap().id;
    assert!(problems.contains(&format!(
        "server_groups[0] (id 1): All Servers must contain every server, but lacks server {last}"
    )));
    assert!(problems.contains(
        &"server_groups[0] (id 1): the built-in server group 1 must be named \"All Servers\", not \"Every Server\"".to_owned()
    ));
    assert_eq!(problems.len(), 3, "{problems:#?}");
}

fn many_problems_are_listed_and_capped(backend: Backend) {
    let mut doc = sample(backend);
    doc.format = "something-else".into();
    doc.version = 2;
    doc.hub.subnet_key = 256;
    doc.config.timezone = "Mars/Olympus".into();
    doc.users[2].token_digest = doc.users[3].token_digest.clone();
    doc.users[3].profile.ipv4_address = "100.42.224.6".into();
    doc.users[4].password_hash = Some("plain text".into());
    doc.servers[0].created_at = "yesterday".into();
    doc.groups[1].permissions.push(26);
    for n in 0..60 {
        doc.policies[1].rules.push(1000 + n);
    }
    let problems = match backup::validate(&doc) {
        Err(problems) => problems,
        Ok(()) => panic!("accepted"),
    };
    assert_eq!(problems.len(), backup::MAX_PROBLEMS + 1, "{problems:#?}");
    assert_eq!(problems.last().unwrap(), "and 18 more");
    for expected in [
        "format is \"something-else\"; an Evon Hub backup says \"evon-hub-backup\"",
        "version is 2; this Evon Hub reads version 1",
        "hub: subnet_key 256 is not an integer from 0 to 255",
        "config: timezone: \"Mars/Olympus\" is not a valid choice.",
        "users[3] (id 4): token_digest is already used by users[2] (id 3)",
        "users[4] (id 6): password_hash must be null or an argon2 PHC string starting with \"$argon2\"",
        "servers[0] (id 1): created_at \"yesterday\" is not an RFC 3339 timestamp such as \"2026-12-04T09:30:00Z\"",
        "groups[1] (id 2): permissions names permission 26, which is not in the catalogue (ids 1 to 25)",
    ] {
        assert!(problems.iter().any(|p| p == expected), "{expected:?} not among {problems:#?}");
    }
    // With a valid key, the address is checked against the user range.
    doc.hub.subnet_key = 42;
    let problems = backup::validate(&doc).unwrap_err();
    assert!(problems.contains(
        &"users[3] (id 4): profile.ipv4_address 100.42.224.6 is not an address the user range 100.42.208.0/20 hands out".to_owned()
    ), "{problems:#?}");
    let target = fresh_target(backend);
    match import(&target.store, &doc) {
        Err(error @ StoreError::InvalidDocument(_)) => {
            let message = error.to_string();
            assert!(
                message.starts_with("invalid backup document: format is"),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

fn import_into_a_non_empty_hub_is_refused(backend: Backend) {
    let doc = sample(backend);
    let target = fresh_target(backend);
    import(&target.store, &doc).unwrap();
    let before = export(&target.store);
    match import(&target.store, &doc) {
        Err(StoreError::TargetNotEmpty(message)) => assert_eq!(
            message,
            "the target hub is not empty: it has 4 users besides admin and deployer, 3 groups \
             besides All Users, 2 server groups besides All Servers, 4 servers, 4 rules, \
             2 policies; import needs a freshly initialised hub (run `evon-hub init` on an empty \
             database)"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(export(&target.store), before, "nothing was written");

    // One extra object is enough to refuse.
    let other = fresh_target(backend);
    other
        .store
        .write(|conn| {
            evon_store::rules::create(
                conn,
                &RulePatch {
                    name: Some("stray".into()),
                    destination_protocol: Some(Protocol::All),
                    ..RulePatch::default()
                },
                &FieldErrors::new(),
            )
        })
        .unwrap();
    let before = export(&other.store);
    match import(&other.store, &doc) {
        Err(StoreError::TargetNotEmpty(message)) => {
            assert!(message.contains("it has 1 rule;"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(export(&other.store), before);

    // An uninitialised database is not a target either.
    let empty = TestDatabase::new(backend);
    let store = Store::open(
        empty.url(),
        OpenMode::CreateIfMissing,
        &PoolOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        import(&store, &doc),
        Err(StoreError::NotInitialised)
    ));
}
