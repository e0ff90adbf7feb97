//! The `Authorization` header parser: any bytes. It agrees with a model of DRF's rules (words
//! split at ASCII white space; `token` in any case; exactly one more word, which must be UTF-8),
//! and a key it returns, sent again in a canonical header, comes back unchanged.

#![no_main]

use evon_http::auth::{
    parse_authorization, CONTAINS_SPACES, INVALID_CHARACTERS, NOT_PROVIDED, NO_CREDENTIALS,
};
use libfuzzer_sys::fuzz_target;

fn model(header: &[u8]) -> Result<&str, &'static str> {
    let words: Vec<&[u8]> = header
        .split(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'))
        .filter(|w| !w.is_empty())
        .collect();
    match words.first() {
        Some(w) if w.len() == 5 && w.iter().zip(b"token").all(|(a, b)| a | 0x20 == *b) => {}
        _ => return Err(NOT_PROVIDED),
    }
    match words.len() {
        1 => Err(NO_CREDENTIALS),
        2 => std::str::from_utf8(words[1]).map_err(|_| INVALID_CHARACTERS),
        _ => Err(CONTAINS_SPACES),
    }
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(parse_authorization(None), Err(NOT_PROVIDED));
    let parsed = parse_authorization(Some(data));
    assert_eq!(parsed, model(data), "{:?}", String::from_utf8_lossy(data));
    if let Ok(key) = parsed {
        assert!(!key.is_empty() && !key.bytes().any(|b| b.is_ascii_whitespace()));
        let canonical = format!("Token {key}");
        assert_eq!(parse_authorization(Some(canonical.as_bytes())), Ok(key));
    }
});
