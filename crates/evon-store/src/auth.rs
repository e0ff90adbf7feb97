//! Finding the principal behind an API token, and the cache that answers for warm tokens.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::prelude::*;
use evon_crypto::{digests_equal, TokenDigest};
use evon_domain::Principal;

use crate::db::DbConnection;
use crate::error::StoreResult;
use crate::generation::GenerationWatch;
use crate::schema::{api_tokens, users};

/// What a presented token turns out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLookup {
    Unknown,
    Inactive,
    Active(Principal),
}

/// Looks a token up by its digest. The digest is the index key, so the lookup's timing reveals
/// nothing about the token; the final comparison is constant-time all the same.
pub fn principal_by_token(
    conn: &mut DbConnection,
    presented: &TokenDigest,
) -> StoreResult<TokenLookup> {
    let row: Option<(String, i32, String, bool, bool)> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::digest.eq(presented.as_str()))
        .select((
            api_tokens::digest,
            users::id,
            users::username,
            users::is_superuser,
            users::is_active,
        ))
        .first(conn)
        .optional()?;
    let Some((stored, user_id, username, is_superuser, is_active)) = row else {
        return Ok(TokenLookup::Unknown);
    };
    if !digests_equal(&TokenDigest::from_stored(stored), presented) {
        return Ok(TokenLookup::Unknown);
    }
    if !is_active {
        return Ok(TokenLookup::Inactive);
    }
    let permissions = crate::users::effective_permissions(conn, user_id)?;
    Ok(TokenLookup::Active(Principal {
        user_id,
        username,
        is_superuser,
        permissions,
    }))
}

/// How many tokens the cache holds before it starts over: far more than a hub has clients, and
/// still small (a few hundred bytes each).
pub const TOKEN_CACHE_CAPACITY: usize = 4096;

/// How long the generation watch may go without the database confirming it before the cache
/// stops answering. `serve` polls every 150 ms; a poller that died or is stuck must not leave
/// revocations by other processes unseen, so after this long every request asks the database.
pub const WATCH_MAX_AGE: Duration = Duration::from_secs(2);

/// What the database said about tokens at one generation. Only known tokens are kept (active
/// or inactive): an unknown one is always looked up, so a flood of wrong tokens grows nothing.
struct CachedTokens {
    generation: i64,
    tokens: HashMap<TokenDigest, CachedToken>,
}

struct CachedToken {
    /// The digest the database matched, compared in constant time like the database path does.
    stored: TokenDigest,
    lookup: TokenLookup,
}

/// `principal_by_token` answered from memory while the hub's generation stands still.
///
/// An entry is valid only for the generation it was read at, in the same transaction, and a hit
/// needs that generation to be the newest the [`GenerationWatch`] knows. Every write through this
/// process's store advances the watch before it returns, so a revoked token, a deactivated user
/// or a withdrawn permission is refused from the very next request; a write by another process
/// is seen once the poller reads the new generation.
pub struct TokenCache {
    watch: Arc<GenerationWatch>,
    max_age: Duration,
    entries: RwLock<CachedTokens>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.entries.read().map(|e| e.tokens.len()).unwrap_or(0);
        f.debug_struct("TokenCache")
            .field("cached", &cached)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    pub fn new(watch: Arc<GenerationWatch>) -> Self {
        Self::with_max_age(watch, WATCH_MAX_AGE)
    }

    /// A cache that trusts the watch for `max_age` after its last confirmation (tests).
    pub fn with_max_age(watch: Arc<GenerationWatch>, max_age: Duration) -> Self {
        Self {
            watch,
            max_age,
            entries: RwLock::new(CachedTokens {
                generation: i64::MIN,
                tokens: HashMap::new(),
            }),
        }
    }

    /// The answer for `presented` if it is cached for the newest known generation; `None` means
    /// ask the database (`lookup`).
    pub fn cached(&self, presented: &TokenDigest) -> Option<TokenLookup> {
        if !self.watch.confirmed_within(self.max_age) {
            return None;
        }
        let generation = self.watch.current();
        let entries = self.entries.read().ok()?;
        if entries.generation != generation {
            return None;
        }
        let cached = entries.tokens.get(presented)?;
        digests_equal(&cached.stored, presented).then(|| cached.lookup.clone())
    }

    /// Looks `presented` up in the database and remembers the answer for the generation it was
    /// read at. Call it inside `Store::read`.
    pub fn lookup(
        &self,
        conn: &mut DbConnection,
        presented: &TokenDigest,
    ) -> StoreResult<TokenLookup> {
        // The generation first: on PostgreSQL (read committed) each statement sees its own
        // snapshot, so the token read after it is at least as new as the generation. Read the
        // other way round, an old answer could be filed under a newer generation.
        let generation = crate::generation::stored(conn)?;
        let lookup = principal_by_token(conn, presented)?;
        if let Some(generation) = generation {
            self.watch.advance(generation);
            self.remember(generation, presented, &lookup);
        }
        Ok(lookup)
    }

    /// How many tokens are cached (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.tokens.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remember(&self, generation: i64, presented: &TokenDigest, lookup: &TokenLookup) {
        if matches!(lookup, TokenLookup::Unknown) {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if generation > entries.generation {
            // Everything cached belongs to an older generation: no hit can use it any more.
            entries.generation = generation;
            entries.tokens.clear();
        } else if generation < entries.generation {
            // A slower request read an older snapshot; its answer is already out of date.
            return;
        }
        if entries.tokens.len() >= TOKEN_CACHE_CAPACITY {
            entries.tokens.clear();
        }
        entries.tokens.insert(
            presented.clone(),
            CachedToken {
                stored: presented.clone(),
                lookup: lookup.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn active(user_id: i32) -> TokenLookup {
        TokenLookup::Active(Principal {
            user_id,
            username: format!("user{user_id}"),
            is_superuser: false,
            permissions: BTreeSet::new(),
        })
    }

    fn cache() -> (Arc<GenerationWatch>, TokenCache) {
        let watch = Arc::new(GenerationWatch::new());
        let cache = TokenCache::with_max_age(Arc::clone(&watch), Duration::from_secs(3600));
        (watch, cache)
    }

    #[test]
    fn answers_only_for_the_newest_generation() {
        let (watch, cache) = cache();
        let digest = TokenDigest::of("a");
        cache.remember(4, &digest, &active(3));
        assert_eq!(cache.cached(&digest), None, "the watch has not confirmed 4");
        watch.advance(4);
        assert_eq!(cache.cached(&digest), Some(active(3)));
        assert_eq!(cache.cached(&TokenDigest::of("b")), None);
        watch.advance(5);
        assert_eq!(
            cache.cached(&digest),
            None,
            "generation 5 may have revoked it"
        );
        // An answer read from an older snapshot after a newer one is not kept.
        cache.remember(5, &digest, &TokenLookup::Inactive);
        cache.remember(4, &TokenDigest::of("b"), &active(4));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.cached(&digest), Some(TokenLookup::Inactive));
        assert_eq!(cache.cached(&TokenDigest::of("b")), None);
    }

    #[test]
    fn an_unconfirmed_watch_is_not_trusted() {
        let watch = Arc::new(GenerationWatch::new());
        let cache = TokenCache::with_max_age(Arc::clone(&watch), Duration::from_millis(5));
        let digest = TokenDigest::of("a");
        watch.advance(1);
        cache.remember(1, &digest, &active(3));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(cache.cached(&digest), None);
    }

    #[test]
    fn unknown_tokens_are_never_kept_and_the_size_is_bounded() {
        let (watch, cache) = cache();
        watch.advance(1);
        for n in 0..1000 {
            cache.remember(
                1,
                &TokenDigest::of(&format!("wrong{n}")),
                &TokenLookup::Unknown,
            );
        }
        assert!(cache.is_empty());
        for n in 0..(TOKEN_CACHE_CAPACITY * 2 + 10) {
            cache.remember(1, &TokenDigest::of(&format!("known{n}")), &active(3));
            assert!(cache.len() <= TOKEN_CACHE_CAPACITY);
        }
        assert!(!cache.is_empty());
    }
}
