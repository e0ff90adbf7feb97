//! FQDNs: any text. The validator agrees with an independent model of the rule, returns what it
//! accepts unchanged, and refuses with its one message; deriving a server's FQDN from a hostname
//! and suffixing `-N` on collisions always ends in a valid FQDN or a clean refusal.

#![no_main]

use evon_domain::server::{deduplicated_fqdn, desired_fqdn};
use evon_domain::validate::fqdn;
use libfuzzer_sys::fuzz_target;

const DOMAIN: &str = "hub.example.com";

fn model(name: &str) -> bool {
    let bytes = name.as_bytes();
    if !(4..=253).contains(&bytes.len()) {
        return false;
    }
    let labels: Vec<&[u8]> = bytes.split(|b| *b == b'.').collect();
    let Some((top, rest)) = labels.split_last() else {
        return false;
    };
    !rest.is_empty()
        && (2..=63).contains(&top.len())
        && top.iter().all(u8::is_ascii_alphabetic)
        && rest.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-')
        })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match fqdn(&text) {
        Ok(accepted) => {
            assert!(model(&text), "accepted {text:?}");
            assert_eq!(accepted, text);
        }
        Err(message) => {
            assert!(!model(&text), "refused {text:?}");
            assert_eq!(message, "Please provide a valid FQDN");
        }
    }
    if let Ok(desired) = desired_fqdn(&text, DOMAIN) {
        assert!(model(&desired), "{desired:?}");
        assert!(
            desired == DOMAIN || desired.ends_with(".hub.example.com"),
            "{desired:?}"
        );
        assert_eq!(desired, desired.to_ascii_lowercase());
        // The first few candidates are taken: the answer is the next valid one, or none once
        // the first label cannot grow.
        let taken = usize::from(data.first().copied().unwrap_or(0) % 16);
        let mut asked = 0usize;
        let free = deduplicated_fqdn(&desired, |_| {
            asked += 1;
            asked <= taken
        });
        assert!(asked <= taken + 1);
        if let Some(free) = free {
            assert!(model(&free), "{free:?}");
            if taken > 0 {
                let (first, rest) = desired.split_once('.').expect("an FQDN has a dot");
                assert_eq!(free, format!("{first}-{taken}.{rest}"));
            } else {
                assert_eq!(free, desired);
            }
        }
    }
});
