//! Throttling of failed OpenVPN user logins, per (username, source).
//!
//! Each attempt is counted *before* its password is checked, so that attempts made at the same
//! time cannot all slip in before the first failure is recorded: at most `limit` passwords are
//! checked per lock period for one pair. A correct password forgets the pair (the store deletes
//! its row). The `limit`-th counted attempt of a window sets the lock, which lasts `first_lock`,
//! doubling with every further lock of the pair up to `max_lock`; while it lasts, attempts are
//! refused without looking at the password and are not counted (the lock is not extended).
//!
//! The key is the username case-folded (so that `Alice` and `ALICE` count together, whatever
//! the lookup does with case) and the source address; IPv6 sources count per /64, since one
//! host usually holds a whole /64. Throttling is per source so that nobody can lock a user out
//! from everywhere by failing on purpose from one place.

use std::net::{IpAddr, Ipv6Addr};

use chrono::{DateTime, Duration, Utc};

/// The longest username and source kept in a key: OpenVPN passes what the client sent.
const MAX_KEY_CHARS: usize = 256;

/// Who is trying and from where, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey {
    pub username: String,
    pub source: String,
}

impl ThrottleKey {
    /// The key of a login as `username` from `source` (the client's address as OpenVPN gives
    /// it; anything that is no address is kept as text).
    pub fn new(username: &str, source: &str) -> Self {
        let username: String = username
            .trim()
            .to_lowercase()
            .chars()
            .take(MAX_KEY_CHARS)
            .collect();
        let source = match source.trim().parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let segments = v6.segments();
                    let prefix = Ipv6Addr::new(
                        segments[0],
                        segments[1],
                        segments[2],
                        segments[3],
                        0,
                        0,
                        0,
                        0,
                    );
                    format!("{prefix}/64")
                }
            },
            Ok(IpAddr::V4(v4)) => v4.to_string(),
            Err(_) => source.trim().chars().take(MAX_KEY_CHARS).collect(),
        };
        Self { username, source }
    }
}

/// How many failures lock a pair, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Attempts counted within `window` that lock the pair.
    pub limit: u32,
    /// How long counted attempts are remembered towards the limit.
    pub window: Duration,
    /// The first lock of a pair; each further one doubles, up to `max_lock`.
    pub first_lock: Duration,
    pub max_lock: Duration,
    /// A pair with no attempt for this long starts again from nothing (and its row may go).
    pub forget_after: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            limit: 5,
            window: Duration::minutes(15),
            first_lock: Duration::seconds(60),
            max_lock: Duration::hours(1),
            forget_after: Duration::hours(24),
        }
    }
}

/// What is remembered of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleState {
    /// Attempts counted in the current window.
    pub failures: u32,
    pub window_start: DateTime<Utc>,
    /// Locks set so far (the next one lasts `first_lock` × 2^lockouts).
    pub lockouts: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_attempt: DateTime<Utc>,
}

/// The answer to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Check the password. `attempt` is this attempt's number in the window (1-based); when
    /// `locks_until` is set, this attempt is the last one before the lock (a failure stands).
    Check {
        attempt: u32,
        limit: u32,
        locks_until: Option<DateTime<Utc>>,
    },
    /// Refuse without checking the password.
    Throttled { until: DateTime<Utc> },
}

impl ThrottlePolicy {
    /// How long the lock after `lockouts` earlier ones lasts.
    pub fn lock_duration(&self, lockouts: u32) -> Duration {
        let mut lock = self.first_lock;
        for _ in 0..lockouts.min(32) {
            lock = lock + lock;
            if lock >= self.max_lock {
                return self.max_lock;
            }
        }
        lock.min(self.max_lock)
    }

    /// Decides an attempt at `now` given what is stored for the pair, and what to store next
    /// (`None`: leave it as it is).
    pub fn attempt(
        &self,
        stored: Option<&ThrottleState>,
        now: DateTime<Utc>,
    ) -> (ThrottleDecision, Option<ThrottleState>) {
        let fresh = ThrottleState {
            failures: 0,
            window_start: now,
            lockouts: 0,
            locked_until: None,
            last_attempt: now,
        };
        let mut state = match stored {
            Some(state) if now - state.last_attempt < self.forget_after => state.clone(),
            _ => fresh,
        };
        if let Some(until) = state.locked_until {
            if now < until {
                return (ThrottleDecision::Throttled { until }, None);
            }
            // The lock is over: a new window, and the next lock lasts longer.
            state.locked_until = None;
            state.failures = 0;
            state.window_start = now;
        }
        if now - state.window_start >= self.window {
            state.failures = 0;
            state.window_start = now;
        }
        state.failures += 1;
        state.last_attempt = now;
        let attempt = state.failures;
        let locks_until = if attempt >= self.limit {
            let until = now + self.lock_duration(state.lockouts);
            state.lockouts = state.lockouts.saturating_add(1);
            state.locked_until = Some(until);
            Some(until)
        } else {
            None
        };
        (
            ThrottleDecision::Check {
                attempt,
                limit: self.limit,
                locks_until,
            },
            Some(state),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    /// Runs attempts at the given times against one stored state, as the store would.
    fn run(
        policy: &ThrottlePolicy,
        state: &mut Option<ThrottleState>,
        now: DateTime<Utc>,
    ) -> ThrottleDecision {
        let (decision, next) = policy.attempt(state.as_ref(), now);
        if let Some(next) = next {
            *state = Some(next);
        }
        decision
    }

    #[test]
    fn keys_fold_case_and_group_ipv6_by_64() {
        assert_eq!(
            ThrottleKey::new(" Alice ", "198.51.100.7"),
            ThrottleKey::new("ALICE", "198.51.100.7")
        );
        assert_eq!(
            ThrottleKey::new("a", "::ffff:198.51.100.7").source,
            "198.51.100.7"
        );
        assert_eq!(
            ThrottleKey::new("a", "2001:db8:1:2:aaaa::1").source,
            ThrottleKey::new("a", "2001:db8:1:2:bbbb::9").source
        );
        assert_eq!(
            ThrottleKey::new("a", "2001:db8:1:2::1").source,
            "2001:db8:1:2::/64"
        );
        assert_ne!(
            ThrottleKey::new("a", "2001:db8:1:2::1").source,
            ThrottleKey::new("a", "2001:db8:1:3::1").source
        );
        assert_eq!(
            ThrottleKey::new(&"x".repeat(1000), "").username.len(),
            MAX_KEY_CHARS
        );
        assert_eq!(
            ThrottleKey::new("a", "not an address").source,
            "not an address"
        );
    }

    #[test]
    fn limit_then_lock_then_doubling() {
        let policy = ThrottlePolicy::default();
        let mut state = None;
        for n in 1..=4 {
            assert_eq!(
                run(&policy, &mut state, at(n)),
                ThrottleDecision::Check {
                    attempt: n as u32,
                    limit: 5,
                    locks_until: None
                }
            );
        }
        assert_eq!(
            run(&policy, &mut state, at(5)),
            ThrottleDecision::Check {
                attempt: 5,
                limit: 5,
                locks_until: Some(at(65))
            }
        );
        // Locked: refused and not extended.
        assert_eq!(
            run(&policy, &mut state, at(6)),
            ThrottleDecision::Throttled { until: at(65) }
        );
        assert_eq!(
            run(&policy, &mut state, at(64)),
            ThrottleDecision::Throttled { until: at(65) }
        );
        // Over: counting starts again; the next lock lasts twice as long.
        assert!(matches!(
            run(&policy, &mut state, at(65)),
            ThrottleDecision::Check { attempt: 1, .. }
        ));
        for n in 66..=68 {
            assert!(matches!(
                run(&policy, &mut state, at(n)),
                ThrottleDecision::Check {
                    locks_until: None,
                    ..
                }
            ));
        }
        assert_eq!(
            run(&policy, &mut state, at(69)),
            ThrottleDecision::Check {
                attempt: 5,
                limit: 5,
                locks_until: Some(at(69 + 120))
            }
        );
        assert_eq!(policy.lock_duration(5), Duration::seconds(60 * 32));
        assert_eq!(policy.lock_duration(6), Duration::hours(1));
        assert_eq!(policy.lock_duration(u32::MAX), Duration::hours(1));
    }

    #[test]
    fn windows_and_forgetting() {
        let policy = ThrottlePolicy::default();
        let mut state = None;
        for n in 0..4 {
            run(&policy, &mut state, at(n));
        }
        // Four failures, then a quiet window: the count starts again.
        assert!(matches!(
            run(&policy, &mut state, at(15 * 60)),
            ThrottleDecision::Check { attempt: 1, .. }
        ));
        // A pair quiet for a day starts from nothing, even its lock count.
        let mut state = Some(ThrottleState {
            failures: 3,
            window_start: at(0),
            lockouts: 4,
            locked_until: Some(at(10)),
            last_attempt: at(0),
        });
        for n in 1..=4 {
            run(&policy, &mut state, at(86_400 + n));
        }
        assert_eq!(
            run(&policy, &mut state, at(86_405)),
            ThrottleDecision::Check {
                attempt: 5,
                limit: 5,
                locks_until: Some(at(86_465))
            }
        );
    }
}
