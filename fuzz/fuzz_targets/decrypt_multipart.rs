//! The input of `POST /api/bootstrap/decrypt`: a Content-Type and a body, cut into chunks as the
//! network delivers them, read by the route's own `sealed_payload` (media type check, size caps,
//! actix-multipart, the first field named `data`). No panic; every refusal a 4xx in the
//! bootstrap routes' `{"status": "error", "message": …}` shape; a payload read is within the
//! limit and is opened as the route opens it. The same bytes, laid out as a well-formed
//! multipart body, give back exactly the first `data` field (or "data missing", or the 413 when
//! its fields exceed the limit).
//!
//! Input layout: byte 0 picks the chunk size; then the Content-Type up to the first newline;
//! then the body. The seeds' sealed boxes are sealed under the key below.

#![no_main]

use std::sync::OnceLock;

use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::ResponseError;
use evon_crypto::seal::{self, Purpose};
use evon_crypto::HubKey;
use evon_http::routes::{sealed_payload, DECRYPT_LIMIT};
use evon_http::ApiError;
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [7; 32];
const BOUNDARY: &str = "evon-fuzz-boundary-5c1e";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        // With timers: the route bounds how long a body may take to arrive. The clock is paused,
        // so it jumps ahead whenever nothing else can run: a body the parser waits on forever
        // (actix-multipart 0.7 waits for more bytes after some truncated bodies have ended, see
        // actix/actix-web#3202) meets the route's 15 s deadline at once, as the 408 a client
        // would get, instead of stalling the fuzzer for 15 s of real time per input.
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a current-thread runtime")
    })
}

fn read(content_type: &[u8], body: &[u8], chunk: usize) -> Result<Vec<u8>, ApiError> {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    let chunks: Vec<Result<Bytes, PayloadError>> = body
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    runtime().block_on(sealed_payload(&headers, futures_util::stream::iter(chunks)))
}

fn check_refusal(error: &ApiError) {
    let status = error.status_code().as_u16();
    assert!((400..500).contains(&status), "{status}: {error:?}");
    assert!(matches!(error, ApiError::Bootstrap(..)), "{error:?}");
    let response = error.error_response();
    assert_eq!(response.status().as_u16(), status);
}

/// What the route does with a payload: open it under the hub key.
fn open(payload: &[u8]) {
    let key = HubKey::from_bytes(KEY);
    if let Some(plaintext) = std::str::from_utf8(payload)
        .ok()
        .and_then(|text| seal::open(&key, Purpose::BootstrapSecrets, text).ok())
    {
        let again = seal::seal(&key, Purpose::BootstrapSecrets, &plaintext).expect("seal");
        assert_eq!(
            seal::open(&key, Purpose::BootstrapSecrets, &again),
            Ok(plaintext)
        );
    }
}

/// What a well-formed multipart body must give back.
#[derive(Debug)]
enum Expected {
    /// The value of its first field named `data` (`None`: there is none).
    Data(Option<Vec<u8>>),
    /// Its fields hold more than `DECRYPT_LIMIT` bytes in all: refused as too large.
    TooLarge,
}

/// The body's `&`-separated `name=value` pairs as a well-formed multipart body, and what reading
/// it must give. `None` when a value holds the boundary.
fn well_formed(body: &[u8]) -> Option<(Vec<u8>, Expected)> {
    // RFC 2046 ends a part only at CRLF "--" boundary, but actix-multipart 0.7 also ends it at a
    // bare CR followed by "--" boundary and then refuses the body as malformed (found by this
    // target). A sealed payload is base64 and never holds either, so the model leaves out every
    // value that holds the boundary after a CR, not only after CRLF.
    let delimiters = [format!("\r\n--{BOUNDARY}"), format!("\r--{BOUNDARY}")];
    let mut out = Vec::new();
    let mut data = None;
    let mut field_bytes = 0usize;
    for pair in body.split(|b| *b == b'&').take(8) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name: String = name
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
            .map(|b| char::from(*b))
            .collect();
        let holds = |delimiter: &String| {
            value
                .windows(delimiter.len())
                .any(|w| w == delimiter.as_bytes())
        };
        if name.is_empty() || delimiters.iter().any(holds) {
            return None;
        }
        out.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .bytes(),
        );
        out.extend_from_slice(value);
        out.extend(b"\r\n");
        field_bytes += value.len();
        if name == "data" && data.is_none() {
            data = Some(value.to_vec());
        }
    }
    out.extend(format!("--{BOUNDARY}--\r\n").bytes());
    if field_bytes > DECRYPT_LIMIT {
        return Some((out, Expected::TooLarge));
    }
    Some((out, Expected::Data(data)))
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let chunk = 1 + usize::from(selector % 64);
    let (content_type, body) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };

    match read(content_type, body, chunk) {
        Ok(payload) => {
            assert!(payload.len() <= DECRYPT_LIMIT);
            open(&payload);
        }
        Err(error) => check_refusal(&error),
    }

    if let Some((multipart, expected)) = well_formed(body) {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        match (read(content_type.as_bytes(), &multipart, chunk), expected) {
            (Ok(payload), Expected::Data(Some(expected))) => assert_eq!(payload, expected),
            (Err(ApiError::Bootstrap(400, message)), Expected::Data(None)) => {
                assert_eq!(message, "data missing in request")
            }
            (Err(ApiError::Bootstrap(413, message)), Expected::TooLarge) => {
                assert_eq!(
                    message,
                    format!("payload larger than {DECRYPT_LIMIT} bytes")
                )
            }
            (got, expected) => panic!("{got:?}, expected {expected:?}"),
        }
    }
});
