//! Finding the principal behind an API token.

use diesel::prelude::*;
use evon_crypto::{digests_equal, TokenDigest};
use evon_domain::Principal;

use crate::db::DbConnection;
use crate::error::StoreResult;
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
