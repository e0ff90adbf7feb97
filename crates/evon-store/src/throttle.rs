//! The failed-login throttle's state (`auth_throttle`), for the OpenVPN `user-auth` hook: each
//! hook is a process of its own, so what earlier attempts did has to live in the database. The
//! policy is `evon_domain::throttle`; this module only keeps its state, one transaction per
//! attempt. The rows are transient: no part of the hub's configuration, left out of backups,
//! and their writes do not move the hub generation (`db::transient_transaction`).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use evon_domain::throttle::{ThrottleDecision, ThrottleKey, ThrottlePolicy, ThrottleState};

use crate::db::{transient_transaction, DbConnection};
use crate::error::StoreResult;
use crate::schema::auth_throttle;

#[derive(Queryable)]
struct Row {
    failures: i32,
    window_start: NaiveDateTime,
    lockouts: i32,
    locked_until: Option<NaiveDateTime>,
    last_attempt: NaiveDateTime,
}

impl From<Row> for ThrottleState {
    fn from(row: Row) -> Self {
        Self {
            failures: u32::try_from(row.failures).unwrap_or(0),
            window_start: row.window_start.and_utc(),
            lockouts: u32::try_from(row.lockouts).unwrap_or(0),
            locked_until: row.locked_until.map(|t| t.and_utc()),
            last_attempt: row.last_attempt.and_utc(),
        }
    }
}

/// Takes a transaction-scoped lock on the pair on PostgreSQL, so that concurrent attempts of
/// one pair are counted one after the other (each reads what the one before wrote). SQLite's
/// `BEGIN IMMEDIATE` already lets one writer in at a time.
fn lock_pair(conn: &mut DbConnection, key: &ThrottleKey) -> StoreResult<()> {
    if let DbConnection::Postgres(_) = conn {
        // FNV-1a of the pair: stable across processes and versions, unlike std's hasher.
        let mut hash: u32 = 0x811c_9dc5;
        for byte in key.username.bytes().chain([0]).chain(key.source.bytes()) {
            hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
        // Namespaced apart from `db::TransactionLock`'s keys and other applications' locks.
        let lock = 0x4576_6f6e_5400_0000_i64 | i64::from(hash >> 8);
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({lock})")).execute(conn)?;
    }
    Ok(())
}

/// Counts an attempt of `key` at `now` before its password is checked, in one transaction, and
/// says whether the password may be checked at all. Pairs quiet for longer than the policy's
/// `forget_after` (and no longer locked) are deleted on the way, so that the table does not grow
/// without bound under a spray of usernames and sources.
pub fn begin_attempt(
    conn: &mut DbConnection,
    policy: &ThrottlePolicy,
    key: &ThrottleKey,
    now: DateTime<Utc>,
) -> StoreResult<ThrottleDecision> {
    transient_transaction(conn, |conn| {
        lock_pair(conn, key)?;
        let pair = auth_throttle::table
            .filter(auth_throttle::username.eq(&key.username))
            .filter(auth_throttle::source.eq(&key.source));
        let stored = state(conn, key)?;
        let (decision, next) = policy.attempt(stored.as_ref(), now);
        if let Some(next) = next {
            let values = (
                auth_throttle::failures.eq(i32::try_from(next.failures).unwrap_or(i32::MAX)),
                auth_throttle::window_start.eq(next.window_start.naive_utc()),
                auth_throttle::lockouts.eq(i32::try_from(next.lockouts).unwrap_or(i32::MAX)),
                auth_throttle::locked_until.eq(next.locked_until.map(|t| t.naive_utc())),
                auth_throttle::last_attempt.eq(next.last_attempt.naive_utc()),
            );
            if stored.is_some() {
                diesel::update(pair).set(values).execute(conn)?;
            } else {
                diesel::insert_into(auth_throttle::table)
                    .values((
                        auth_throttle::username.eq(&key.username),
                        auth_throttle::source.eq(&key.source),
                        values,
                    ))
                    .execute(conn)?;
            }
        }
        let stale = (now - policy.forget_after).naive_utc();
        let now = now.naive_utc();
        diesel::delete(
            auth_throttle::table
                .filter(auth_throttle::last_attempt.lt(stale))
                .filter(
                    auth_throttle::locked_until
                        .is_null()
                        .or(auth_throttle::locked_until.lt(now)),
                ),
        )
        .execute(conn)?;
        Ok(decision)
    })
}

/// Forgets the pair after its password was accepted: a success resets the count and the lock
/// doubling.
pub fn record_success(conn: &mut DbConnection, key: &ThrottleKey) -> StoreResult<()> {
    transient_transaction(conn, |conn| {
        diesel::delete(
            auth_throttle::table
                .filter(auth_throttle::username.eq(&key.username))
                .filter(auth_throttle::source.eq(&key.source)),
        )
        .execute(conn)?;
        Ok(())
    })
}

/// What is stored for a pair (for tests and diagnostics).
pub fn state(conn: &mut DbConnection, key: &ThrottleKey) -> StoreResult<Option<ThrottleState>> {
    Ok(auth_throttle::table
        .filter(auth_throttle::username.eq(&key.username))
        .filter(auth_throttle::source.eq(&key.source))
        .select((
            auth_throttle::failures,
            auth_throttle::window_start,
            auth_throttle::lockouts,
            auth_throttle::locked_until,
            auth_throttle::last_attempt,
        ))
        .first::<Row>(conn)
        .optional()?
        .map(ThrottleState::from))
}

/// How many pairs are remembered.
pub fn count(conn: &mut DbConnection) -> StoreResult<i64> {
    Ok(auth_throttle::table.count().get_result(conn)?)
}
