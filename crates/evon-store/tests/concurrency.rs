//! Concurrent writers on both backends: no shared address, no duplicate name, nothing lost.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use evon_crypto::ApiToken;
use evon_domain::config::HubSettings;
use evon_domain::policy::{PolicyPatch, RulePatch};
use evon_domain::rule::Protocol;
use evon_domain::{FieldErrors, Principal, SubnetKey, UserPatch};
use evon_store::hub::InitRequest;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, OpenMode, PoolOptions, Store, StoreError};

fn hub(backend: Backend) -> (TestDatabase, Store) {
    let db = TestDatabase::new(backend);
    let options = PoolOptions {
        max_size: 16,
        ..PoolOptions::default()
    };
    let store = Store::open(db.url(), OpenMode::CreateIfMissing, &options).unwrap();
    let request = InitRequest {
        settings: HubSettings {
            domain: "hub.example.com".into(),
            subnet_key: SubnetKey::new(42),
        },
        admin_password_hash: "$argon2id$not-a-real-hash".into(),
        admin_token: ApiToken::generate().digest(),
        deployer_token: ApiToken::generate().digest(),
    };
    store
        .write(|conn| evon_store::hub::initialise(conn, &request))
        .unwrap();
    (db, store)
}

fn superuser() -> Principal {
    Principal {
        user_id: 1,
        username: "admin".into(),
        is_superuser: true,
        permissions: BTreeSet::new(),
    }
}

fn create(store: &Store, username: &str) -> Result<i32, StoreError> {
    let fields = UserPatch {
        username: Some(username.into()),
        ..UserPatch::default()
    };
    store
        .write(|conn| {
            evon_store::users::create(
                conn,
                &superuser(),
                &fields,
                Some("$argon2id$x"),
                &FieldErrors::new(),
            )
        })
        .map(|created| created.user.id)
}

fn sixteen_threads_get_distinct_addresses(backend: Backend) {
    let (_db, store) = hub(backend);
    let threads = 16;
    let per_thread = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (0..per_thread)
                    .map(|n| create(&store, &format!("user-{t}-{n}")).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<i32> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(ids.len(), threads * per_thread);
    let addresses: BTreeSet<String> = store
        .read(|conn| {
            let mut all = BTreeSet::new();
            for id in evon_store::users::all_ids(conn)? {
                all.insert(
                    evon_store::users::profile(conn, id)?
                        .ipv4_address
                        .to_string(),
                );
            }
            Ok(all)
        })
        .unwrap();
    assert_eq!(
        addresses.len(),
        threads * per_thread + 2,
        "every user has its own address"
    );
    // The lowest addresses were taken: 100.42.208.6, .10, ... with no hole.
    let expected: BTreeSet<String> = (1..=(threads * per_thread + 2) as u32)
        .map(|block| {
            std::net::Ipv4Addr::from(
                u32::from(std::net::Ipv4Addr::new(100, 42, 208, 0)) + block * 4 + 2,
            )
            .to_string()
        })
        .collect();
    assert_eq!(addresses, expected);
}

fn racing_for_one_username(backend: Backend) {
    let (_db, store) = hub(backend);
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                create(&store, "contested")
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "exactly one creation wins: {results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        match result {
            Err(StoreError::Validation(errors)) => assert!(errors.has("username"), "{errors}"),
            other => panic!("the losers are told the name is taken, got {other:?}"),
        }
    }
}

#[test]
fn sixteen_threads_get_distinct_addresses_sqlite() {
    sixteen_threads_get_distinct_addresses(Backend::Sqlite);
}

#[test]
fn sixteen_threads_get_distinct_addresses_postgres() {
    sixteen_threads_get_distinct_addresses(Backend::Postgres);
}

#[test]
fn racing_for_one_username_sqlite() {
    racing_for_one_username(Backend::Sqlite);
}

#[test]
fn racing_for_one_username_postgres() {
    racing_for_one_username(Backend::Postgres);
}

/// 200 servers registering from 16 threads at once, all asking for the same name.
fn registration_storm(backend: Backend) {
    let (_db, store) = hub(backend);
    let threads = 16;
    let total = 200;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (0..total)
                    .filter(|n| n % threads == t)
                    .map(|n| {
                        let uuid = format!("{n:08x}-0000-4000-8000-000000000000");
                        match store
                            .write(|conn| evon_store::servers::register(conn, &uuid, "web"))
                            .unwrap()
                        {
                            evon_store::servers::Registration::Allowed {
                                server,
                                created: true,
                            } => server,
                            other => panic!("{other:?}"),
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let servers: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(servers.len(), total);
    let addresses: BTreeSet<_> = servers.iter().map(|s| s.ipv4_address).collect();
    let fqdns: BTreeSet<_> = servers.iter().map(|s| s.fqdn.clone()).collect();
    assert_eq!(addresses.len(), total, "no two servers share an address");
    assert_eq!(fqdns.len(), total, "no two servers share a name");
    let expected: BTreeSet<String> = std::iter::once("web.hub.example.com".to_owned())
        .chain((1..total).map(|n| format!("web-{n}.hub.example.com")))
        .collect();
    assert_eq!(fqdns, expected);
    let stored = store.read(evon_store::servers::count).unwrap();
    assert_eq!(stored, total as u64);
}

#[test]
fn registration_storm_sqlite() {
    registration_storm(Backend::Sqlite);
}

#[test]
fn registration_storm_postgres() {
    registration_storm(Backend::Postgres);
}

/// Runs `first` in a write transaction that, once `first` has run, waits until `second` (in
/// another transaction on another connection) has had time to start and block on its locks,
/// then commits; `second`'s result is returned. On PostgreSQL (read committed) `second` read
/// the state before `first` committed and only then meets its changes; on SQLite it waits for
/// the write lock and reads the committed state.
fn interleaved<T: Send>(
    store: &Store,
    first: impl Fn(&mut evon_store::DbConnection) -> Result<(), StoreError> + Send + Sync,
    second: impl Fn(&mut evon_store::DbConnection) -> Result<T, StoreError> + Send + Sync,
) -> Result<T, StoreError> {
    let (ran, first_ran) = mpsc::channel();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            store.write(|conn| {
                first(conn)?;
                let _ = ran.send(());
                std::thread::sleep(Duration::from_millis(400));
                Ok(())
            })
        });
        first_ran.recv().unwrap();
        let result = store.write(|conn| second(conn));
        writer.join().unwrap().unwrap();
        result
    })
}

/// Two deletes of one object at once: one succeeds, the other finds nothing (404), even where
/// the second read the object before the first committed.
fn concurrent_deletes(backend: Backend) {
    let (_db, store) = hub(backend);
    let id = create(&store, "doomed").unwrap();
    let result = interleaved(
        &store,
        |conn| evon_store::users::delete(conn, &superuser(), id),
        |conn| evon_store::users::delete(conn, &superuser(), id),
    );
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
}

/// A policy written to name a rule that a concurrent transaction deletes: the write is made
/// again against the new state and refused as naming an unknown rule, never a database error.
fn reference_to_a_concurrently_deleted_row(backend: Backend) {
    let (_db, store) = hub(backend);
    let rule = |name: &str| RulePatch {
        name: Some(name.into()),
        destination_protocol: Some(Protocol::Tcp),
        destination_ports: Some("22".into()),
        ..RulePatch::default()
    };
    let doomed = store
        .write(|conn| evon_store::rules::create(conn, &rule("doomed"), &FieldErrors::new()))
        .unwrap()
        .id;
    let policy = PolicyPatch {
        name: Some("names the doomed rule".into()),
        rules: Some(vec![doomed]),
        ..PolicyPatch::default()
    };
    let result = interleaved(
        &store,
        |conn| evon_store::rules::delete(conn, doomed),
        |conn| evon_store::policies::create(conn, &policy, &FieldErrors::new()),
    );
    match result {
        Err(StoreError::Validation(errors)) => {
            assert!(errors.has("rules"), "{errors:?}")
        }
        other => panic!("expected a validation error for `rules`, got {other:?}"),
    }
}

#[test]
fn concurrent_deletes_sqlite() {
    concurrent_deletes(Backend::Sqlite);
}

#[test]
fn concurrent_deletes_postgres() {
    concurrent_deletes(Backend::Postgres);
}

#[test]
fn reference_to_a_concurrently_deleted_row_sqlite() {
    reference_to_a_concurrently_deleted_row(Backend::Sqlite);
}

#[test]
fn reference_to_a_concurrently_deleted_row_postgres() {
    reference_to_a_concurrently_deleted_row(Backend::Postgres);
}
