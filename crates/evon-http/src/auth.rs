//! `Authorization: Token <key>` authentication, with DRF's five messages.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use evon_crypto::TokenDigest;
use evon_domain::{Action, Model, Principal};
use evon_store::auth::TokenLookup;

use crate::error::ApiError;
use crate::state::AppState;

pub const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
pub const NO_CREDENTIALS: &str = "Invalid token header. No credentials provided.";
pub const CONTAINS_SPACES: &str = "Invalid token header. Token string should not contain spaces.";
pub const INVALID_CHARACTERS: &str =
    "Invalid token header. Token string should not contain invalid characters.";
pub const INVALID_TOKEN: &str = "Invalid token.";
pub const INACTIVE: &str = "User inactive or deleted.";

/// Extracts the key from an `Authorization` header value. The keyword `Token` is matched
/// case-insensitively; any other scheme, or no header, counts as no credentials at all.
pub fn parse_authorization(header: Option<&[u8]>) -> Result<&str, &'static str> {
    let header = header.ok_or(NOT_PROVIDED)?;
    let mut words = header
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    match words.next() {
        Some(keyword) if keyword.eq_ignore_ascii_case(b"token") => {}
        _ => return Err(NOT_PROVIDED),
    }
    let key = words.next().ok_or(NO_CREDENTIALS)?;
    if words.next().is_some() {
        return Err(CONTAINS_SPACES);
    }
    std::str::from_utf8(key).map_err(|_| INVALID_CHARACTERS)
}

/// The authenticated user of a request. Extracting it answers 401 when the request carries no
/// valid token of an active user.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl Auth {
    /// 403 unless the user may perform `action` on `model`.
    pub fn require(&self, model: Model, action: Action) -> Result<(), ApiError> {
        if self.0.may(model, action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// 403 unless the user is a superuser.
    pub fn require_superuser(&self) -> Result<(), ApiError> {
        if self.0.is_superuser {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let digest = parse_authorization(req.headers().get(AUTHORIZATION).map(|v| v.as_bytes()))
            .map(TokenDigest::of);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let digest = digest.map_err(ApiError::Unauthenticated)?;
            let state =
                state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
            // A warm token is answered from memory on this worker: no database, no hop to the
            // blocking pool. Anything else (cold, unknown, or the hub changed since) asks the
            // database, which refills the cache.
            let lookup = match state.tokens.cached(&digest) {
                Some(lookup) => lookup,
                None => {
                    let tokens = Arc::clone(&state.tokens);
                    state.read(move |conn| tokens.lookup(conn, &digest)).await?
                }
            };
            match lookup {
                TokenLookup::Active(principal) => Ok(Auth(principal)),
                TokenLookup::Inactive => Err(ApiError::Unauthenticated(INACTIVE)),
                TokenLookup::Unknown => Err(ApiError::Unauthenticated(INVALID_TOKEN)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        let key = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            parse_authorization(Some(format!("Token {key}").as_bytes())),
            Ok(key)
        );
        assert_eq!(
            parse_authorization(Some(format!("token   {key} ").as_bytes())),
            Ok(key)
        );
        assert_eq!(parse_authorization(None), Err(NOT_PROVIDED));
        assert_eq!(parse_authorization(Some(b"Bearer abc")), Err(NOT_PROVIDED));
        assert_eq!(parse_authorization(Some(b"")), Err(NOT_PROVIDED));
        assert_eq!(parse_authorization(Some(b"Tokenabc")), Err(NOT_PROVIDED));
        assert_eq!(parse_authorization(Some(b"Token")), Err(NO_CREDENTIALS));
        assert_eq!(parse_authorization(Some(b"Token ")), Err(NO_CREDENTIALS));
        assert_eq!(
            parse_authorization(Some(b"Token a b")),
            Err(CONTAINS_SPACES)
        );
        assert_eq!(
            parse_authorization(Some(b"Token \xff\xfe")),
            Err(INVALID_CHARACTERS)
        );
    }
}
