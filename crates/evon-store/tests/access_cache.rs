//! The access index is rebuilt exactly when a committed write moved the hub's generation on.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use evon_crypto::ApiToken;
use evon_domain::config::HubSettings;
use evon_domain::policy::{PolicyPatch, RulePatch};
use evon_domain::{FieldErrors, Protocol, SubnetKey};
use evon_store::hub::InitRequest;
use evon_store::network::AccessCache;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, OpenMode, PoolOptions, Store};

fn cache_follows_the_generation(backend: Backend) {
    let db = TestDatabase::new(backend);
    let store = Store::open(db.url(), OpenMode::CreateIfMissing, &PoolOptions::default()).unwrap();
    let request = InitRequest {
        settings: HubSettings {
            domain: "hub.example.com".into(),
            subnet_key: SubnetKey::new(111),
        },
        admin_password_hash: "$argon2id$x".into(),
        admin_token: ApiToken::generate().digest(),
        deployer_token: ApiToken::generate().digest(),
    };
    store
        .write(|conn| evon_store::hub::initialise(conn, &request))
        .unwrap();
    let uuid = "00000001-0000-4000-8000-000000000000";
    store
        .write(|conn| evon_store::servers::register(conn, uuid, "web"))
        .unwrap();

    let cache = AccessCache::new();
    let first = store.read(|conn| cache.index(conn)).unwrap();
    let again = store.read(|conn| cache.index(conn)).unwrap();
    assert!(Arc::ptr_eq(&first, &again), "no write, no rebuild");
    assert!(!first.can_reach(1, 1));

    let rule = RulePatch {
        name: Some("ssh".into()),
        destination_protocol: Some(Protocol::Tcp),
        destination_ports: Some("22".into()),
        source_users: Some(vec![1]),
        ..RulePatch::default()
    };
    let rule = store
        .write(|conn| evon_store::rules::create(conn, &rule, &FieldErrors::new()))
        .unwrap();
    let unchanged = store.read(|conn| cache.index(conn)).unwrap();
    assert!(
        !Arc::ptr_eq(&first, &unchanged),
        "a write invalidates the index"
    );
    assert!(!unchanged.can_reach(1, 1), "a rule alone reaches nothing");
    let policy = PolicyPatch {
        name: Some("p".into()),
        rules: Some(vec![rule.id]),
        servers: Some(vec![1]),
        ..PolicyPatch::default()
    };
    store
        .write(|conn| evon_store::policies::create(conn, &policy, &FieldErrors::new()))
        .unwrap();
    let updated = store.read(|conn| cache.index(conn)).unwrap();
    assert!(updated.can_reach(1, 1));
    assert_eq!(updated.reachable_servers(1), vec![1]);
    // A second cache (another replica) sees the same state.
    let other = AccessCache::new();
    assert!(store
        .read(|conn| other.index(conn))
        .unwrap()
        .can_reach(1, 1));
}

#[test]
fn cache_follows_the_generation_sqlite() {
    cache_follows_the_generation(Backend::Sqlite);
}

#[test]
fn cache_follows_the_generation_postgres() {
    cache_follows_the_generation(Backend::Postgres);
}
