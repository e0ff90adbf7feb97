//! The token cache answers from memory only while the hub's generation stands still: a write
//! through the same store is seen by the next lookup, a write by another store (another process
//! or replica) once the generation poller has read it.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use evon_crypto::{ApiToken, TokenDigest};
use evon_domain::config::HubSettings;
use evon_domain::SubnetKey;
use evon_store::auth::{TokenCache, TokenLookup};
use evon_store::generation::GenerationPoller;
use evon_store::hub::InitRequest;
use evon_store::test_support::TestDatabase;
use evon_store::{Backend, OpenMode, PoolOptions, Store};

/// Long enough that no pause of a busy test machine makes the watch look abandoned.
const TRUST: Duration = Duration::from_secs(3600);
/// The most a test waits for the poller; it normally takes one interval.
const POLL_DEADLINE: Duration = Duration::from_secs(10);

fn hub(backend: Backend) -> (TestDatabase, Store, ApiToken) {
    let db = TestDatabase::new(backend);
    let store = Store::open(db.url(), OpenMode::CreateIfMissing, &PoolOptions::default()).unwrap();
    let admin = ApiToken::generate();
    let request = InitRequest {
        settings: HubSettings {
            domain: "hub.example.com".into(),
            subnet_key: SubnetKey::new(111),
        },
        admin_password_hash: "$argon2id$x".into(),
        admin_token: admin.digest(),
        deployer_token: ApiToken::generate().digest(),
    };
    store
        .write(|conn| evon_store::hub::initialise(conn, &request))
        .unwrap();
    (db, store, admin)
}

fn lookup(store: &Store, cache: &Arc<TokenCache>, digest: &TokenDigest) -> TokenLookup {
    let (cache, digest) = (Arc::clone(cache), digest.clone());
    store.read(move |conn| cache.lookup(conn, &digest)).unwrap()
}

fn username(lookup: &TokenLookup) -> &str {
    match lookup {
        TokenLookup::Active(principal) => &principal.username,
        other => panic!("expected an active token, got {other:?}"),
    }
}

fn own_writes_are_seen_at_once(backend: Backend) {
    let (_db, store, admin) = hub(backend);
    let cache = Arc::new(TokenCache::with_max_age(
        Arc::clone(store.generation_watch()),
        TRUST,
    ));
    let digest = admin.digest();
    assert_eq!(cache.cached(&digest), None, "cold");
    assert_eq!(username(&lookup(&store, &cache, &digest)), "admin");
    assert_eq!(username(&cache.cached(&digest).unwrap()), "admin", "warm");

    // Any write moves the generation on and so empties what the cache may answer.
    store
        .write(|conn| evon_store::users::rotate_token(conn, "deployer"))
        .unwrap();
    assert_eq!(cache.cached(&digest), None);
    assert_eq!(username(&lookup(&store, &cache, &digest)), "admin");

    // Rotation through this store: the very next question is answered by the database.
    let fresh = store
        .write(|conn| evon_store::users::rotate_token(conn, "admin"))
        .unwrap();
    assert_eq!(cache.cached(&digest), None);
    assert_eq!(lookup(&store, &cache, &digest), TokenLookup::Unknown);
    assert_eq!(cache.cached(&digest), None, "unknown tokens are not kept");
    assert_eq!(username(&lookup(&store, &cache, &fresh.digest())), "admin");
    assert_eq!(cache.len(), 1);

    // Unknown tokens never fill the cache.
    for _ in 0..50 {
        let wrong = ApiToken::generate().digest();
        assert_eq!(lookup(&store, &cache, &wrong), TokenLookup::Unknown);
    }
    assert_eq!(cache.len(), 1);
}

fn other_stores_writes_are_seen_through_the_poller(backend: Backend) {
    let (db, store, admin) = hub(backend);
    let cache = Arc::new(TokenCache::with_max_age(
        Arc::clone(store.generation_watch()),
        TRUST,
    ));
    let digest = admin.digest();
    assert_eq!(username(&lookup(&store, &cache, &digest)), "admin");

    // Another process's write: this store's watch knows nothing of it, so the cache still
    // answers with what it read (this is the window the poll interval bounds).
    let other = Store::open(db.url(), OpenMode::MustExist, &PoolOptions::default()).unwrap();
    let fresh = other
        .write(|conn| evon_store::users::rotate_token(conn, "admin"))
        .unwrap();
    assert_eq!(username(&cache.cached(&digest).unwrap()), "admin");

    // The poller reads the new generation; from then on the old token is asked about again.
    let poller = GenerationPoller::spawn(store.clone(), Duration::from_millis(20)).unwrap();
    let started = Instant::now();
    while cache.cached(&digest).is_some() {
        assert!(
            started.elapsed() < POLL_DEADLINE,
            "the poller never reported the other store's write"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(lookup(&store, &cache, &digest), TokenLookup::Unknown);
    assert_eq!(username(&lookup(&store, &cache, &fresh.digest())), "admin");

    // Deactivation by the other store, while the poller runs: refused as inactive.
    let deployer = other
        .write(|conn| evon_store::users::rotate_token(conn, "deployer"))
        .unwrap();
    assert_eq!(
        username(&lookup(&store, &cache, &deployer.digest())),
        "deployer"
    );
    other
        .write(|conn| {
            use diesel::prelude::*;
            use evon_store::schema::users;
            diesel::update(users::table.filter(users::username.eq("deployer")))
                .set(users::is_active.eq(false))
                .execute(conn)?;
            Ok(())
        })
        .unwrap();
    let started = Instant::now();
    loop {
        let answer = match cache.cached(&deployer.digest()) {
            Some(answer) => answer,
            None => lookup(&store, &cache, &deployer.digest()),
        };
        if answer == TokenLookup::Inactive {
            break;
        }
        assert!(
            started.elapsed() < POLL_DEADLINE,
            "deactivation by another store never seen: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(poller);
}

#[test]
fn own_writes_are_seen_at_once_sqlite() {
    own_writes_are_seen_at_once(Backend::Sqlite);
}

#[test]
fn own_writes_are_seen_at_once_postgres() {
    own_writes_are_seen_at_once(Backend::Postgres);
}

#[test]
fn other_stores_writes_are_seen_through_the_poller_sqlite() {
    other_stores_writes_are_seen_through_the_poller(Backend::Sqlite);
}

#[test]
fn other_stores_writes_are_seen_through_the_poller_postgres() {
    other_stores_writes_are_seen_through_the_poller(Backend::Postgres);
}
