//! Property tests of the sealed box: what is sealed opens to the same bytes under the same key,
//! whatever the plaintext and however the box is wrapped in white space; any change to a box
//! (one byte, a truncation, an extension, another key) is refused with the one opaque error;
//! and arbitrary text never panics the opener.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use evon_crypto::seal::{open, seal, OpenError, Purpose, VERSION};
use evon_crypto::HubKey;
use proptest::prelude::*;

const PURPOSE: Purpose = Purpose::BootstrapSecrets;
/// Version byte, nonce and tag: what a box adds to its plaintext.
const OVERHEAD: usize = 1 + 24 + 16;

fn key() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

/// ASCII white space inserted before the characters at the given positions.
fn wrap(sealed: &str, breaks: &[(prop::sample::Index, u8)]) -> String {
    let mut chars: Vec<char> = sealed.chars().collect();
    for (at, which) in breaks {
        let space = [' ', '\n', '\r', '\t', '\x0c'][usize::from(*which) % 5];
        let i = at.index(chars.len() + 1);
        chars.insert(i, space);
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// seal then open gives the plaintext back, with the documented length and version byte,
    /// also after white space has been sprinkled into the box.
    #[test]
    fn sealed_boxes_open_to_their_plaintext(
        key in key(),
        plaintext in prop::collection::vec(any::<u8>(), 0..2048),
        breaks in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let key = HubKey::from_bytes(key);
        let sealed = seal(&key, PURPOSE, &plaintext).unwrap();
        let decoded = STANDARD.decode(&sealed).unwrap();
        prop_assert_eq!(decoded.len(), OVERHEAD + plaintext.len());
        prop_assert_eq!(decoded[0], VERSION);
        prop_assert_eq!(open(&key, PURPOSE, &sealed).unwrap(), plaintext.clone());
        prop_assert_eq!(open(&key, PURPOSE, &wrap(&sealed, &breaks)).unwrap(), plaintext);
    }

    /// Changing any one byte of the decoded box, in any way, is refused.
    #[test]
    fn any_single_byte_change_is_refused(
        key in key(),
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        at in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let key = HubKey::from_bytes(key);
        let mut decoded = STANDARD.decode(seal(&key, PURPOSE, &plaintext).unwrap()).unwrap();
        let i = at.index(decoded.len());
        decoded[i] = decoded[i].wrapping_add(delta);
        prop_assert_eq!(open(&key, PURPOSE, &STANDARD.encode(&decoded)), Err(OpenError));
    }

    /// A truncated or extended box is refused, as is a box opened with another key.
    #[test]
    fn truncated_extended_or_foreign_boxes_are_refused(
        key in key(),
        other_key in key(),
        plaintext in prop::collection::vec(any::<u8>(), 0..256),
        cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(any::<u8>(), 1..48),
    ) {
        let key = HubKey::from_bytes(key);
        let sealed = seal(&key, PURPOSE, &plaintext).unwrap();
        let decoded = STANDARD.decode(&sealed).unwrap();

        let truncated = &decoded[..cut.index(decoded.len())];
        prop_assert_eq!(open(&key, PURPOSE, &STANDARD.encode(truncated)), Err(OpenError));

        let mut extended = decoded.clone();
        extended.extend_from_slice(&extra);
        prop_assert_eq!(open(&key, PURPOSE, &STANDARD.encode(&extended)), Err(OpenError));

        // Text-level truncation (which usually breaks the base64 itself) is refused too.
        let text_cut = cut.index(sealed.len());
        prop_assert_eq!(open(&key, PURPOSE, &sealed[..text_cut]), Err(OpenError));

        if other_key != *key.bytes() {
            prop_assert_eq!(open(&HubKey::from_bytes(other_key), PURPOSE, &sealed), Err(OpenError));
        }
    }

    /// Arbitrary text, and arbitrary bytes that do decode as base64, never panic and never open.
    #[test]
    fn arbitrary_input_never_opens(
        key in key(),
        text in any::<String>(),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        first in any::<u8>(),
    ) {
        let key = HubKey::from_bytes(key);
        prop_assert_eq!(open(&key, PURPOSE, &text), Err(OpenError));
        let mut forged = vec![first];
        forged.extend_from_slice(&bytes);
        // Forging a valid tag without the key is a 2^-128 event.
        prop_assert_eq!(open(&key, PURPOSE, &STANDARD.encode(&forged)), Err(OpenError));
    }
}
