//! The sealed-box opener: any text, under the fixed key the seed corpus was sealed with. No
//! panic and the one opaque error; a box that opens seals again to one that opens to the same
//! plaintext. The input is also sealed as a plaintext: that box opens to it, and any one-byte
//! change or truncation of it is refused.

#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use evon_crypto::seal::{open, seal, OpenError, Purpose};
use evon_crypto::HubKey;
use libfuzzer_sys::fuzz_target;

/// The key of the seeds in `corpus/seal_open` (and `corpus/decrypt_multipart`).
const KEY: [u8; 32] = [7; 32];
const PURPOSE: Purpose = Purpose::BootstrapSecrets;

fuzz_target!(|data: &[u8]| {
    let key = HubKey::from_bytes(KEY);
    let text = String::from_utf8_lossy(data);
    match open(&key, PURPOSE, &text) {
        Ok(plaintext) => {
            let again = seal(&key, PURPOSE, &plaintext).expect("sealing a small box works");
            assert_eq!(open(&key, PURPOSE, &again), Ok(plaintext));
        }
        Err(error) => assert_eq!(error, OpenError),
    }

    // The input as a plaintext.
    let sealed = seal(&key, PURPOSE, data).expect("sealing a small box works");
    assert_eq!(open(&key, PURPOSE, &sealed).as_deref(), Ok(data));
    let mut decoded = STANDARD.decode(&sealed).expect("a box is base64");
    assert_eq!(decoded.len(), data.len() + 41);
    let selector = data.iter().fold(0usize, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(usize::from(*b))
    });
    let cut = selector % decoded.len();
    assert_eq!(
        open(&key, PURPOSE, &STANDARD.encode(&decoded[..cut])),
        Err(OpenError)
    );
    let at = (selector / 7) % decoded.len();
    decoded[at] ^= 1 << (selector % 8);
    assert_eq!(
        open(&key, PURPOSE, &STANDARD.encode(&decoded)),
        Err(OpenError)
    );
});
