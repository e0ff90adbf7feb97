//! Property tests of the validators that read what clients send: port specs, FQDNs, server
//! UUIDs and UUID lists. Each property compares the validator with an independent model or
//! checks a round trip, on generated valid input, on mutations of it that break exactly one rule,
//! and on arbitrary text (which must never panic and must fail only with a documented message).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use evon_domain::rule::{
    PortRange, PortSpec, Protocol, PORTS_FORBIDDEN, PORTS_ILLEGAL_CHARACTERS, PORTS_REQUIRED,
};
use evon_domain::validate::{fqdn, ServerUuid, UuidList};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// Port specs

/// White space the parser must skip around entries and pieces (Python's `isspace`, which
/// includes U+001C..U+001F and Unicode spaces).
fn space() -> impl Strategy<Value = String> {
    prop::collection::vec(
        select(vec![' ', '\t', '\n', '\u{1f}', '\u{a0}', '\u{2003}']),
        0..3,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A port written as a client might: with up to three leading zeros.
fn written_port(port: u16) -> impl Strategy<Value = String> {
    (0usize..4).prop_map(move |zeros| format!("{}{port}", "0".repeat(zeros)))
}

/// Ports biased towards the edges and towards collisions.
fn port() -> impl Strategy<Value = u16> {
    prop_oneof![
        select(vec![0u16, 1, 22, 80, 443, 65534, 65535]),
        0u16..100,
        any::<u16>(),
    ]
}

/// One valid entry: a single port or an ascending range, as text, and the range it means.
fn entry() -> impl Strategy<Value = (String, PortRange)> {
    prop_oneof![
        (port(), space(), space()).prop_flat_map(|(p, before, after)| {
            written_port(p)
                .prop_map(move |text| (format!("{before}{text}{after}"), PortRange::single(p)))
        }),
        (port(), port(), space(), space(), space(), space())
            .prop_filter("a range needs two distinct ports", |(a, b, ..)| a != b)
            .prop_flat_map(|(a, b, s1, s2, s3, s4)| {
                let (lo, hi) = (a.min(b), a.max(b));
                (written_port(lo), written_port(hi)).prop_map(move |(l, h)| {
                    (
                        format!("{s1}{l}{s2}-{s3}{h}{s4}"),
                        PortRange::new(lo, hi).unwrap(),
                    )
                })
            }),
    ]
}

/// The documented failure messages of [`PortSpec::parse`], as predicates.
fn is_documented_port_error(message: &str) -> bool {
    const OUT_OF_RANGE_TAIL: &str = "' is out of range, ports must be between 0 and 65535.";
    const NOT_ASCENDING_TAIL: &str = "', start port must be less than end port.";
    message == PORTS_REQUIRED
        || message == PORTS_FORBIDDEN
        || message == PORTS_ILLEGAL_CHARACTERS
        || (message.starts_with("Malformed port: '") && message.ends_with('\''))
        || (message.starts_with("Port '") && message.ends_with(OUT_OF_RANGE_TAIL))
        || (message.starts_with("Malformed port range '") && message.ends_with(NOT_ASCENDING_TAIL))
        || (message.starts_with("Malformed port range '") && message.ends_with("'."))
}

fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// An independent reading of a port list: `Some(ranges)` when every comma-separated entry is
/// `N` or `N-M` (white space around each number, any number of digits, value at most 65535,
/// N < M for ranges), `None` otherwise.
fn port_model(text: &str) -> Option<Vec<(u32, u32)>> {
    let number = |piece: &str| -> Option<u32> {
        let digits = piece.trim_matches(python_space);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        // Big numbers: compare as text once leading zeros are gone.
        let significant = digits.trim_start_matches('0');
        if significant.len() > 5 {
            return None;
        }
        let value: u32 = if significant.is_empty() {
            0
        } else {
            significant.parse().ok()?
        };
        (value <= 65535).then_some(value)
    };
    let text = text.trim_matches(python_space);
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut ranges = Vec::new();
    for entry in text.split(',') {
        let pieces: Vec<&str> = entry.split('-').collect();
        match pieces.as_slice() {
            [single] => {
                let p = number(single)?;
                ranges.push((p, p));
            }
            [lo, hi] => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if lo >= hi {
                    return None;
                }
                ranges.push((lo, hi));
            }
            _ => return None,
        }
    }
    ranges.sort_unstable();
    ranges.dedup();
    Some(ranges)
}

fn as_pairs(spec: &PortSpec) -> Vec<(u32, u32)> {
    spec.ranges()
        .iter()
        .map(|r| (u32::from(r.start()), u32::from(r.end())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Valid text parses to exactly the ranges written, canonically ordered and deduplicated;
    /// the rendering is canonical and parses back to the same spec.
    #[test]
    fn valid_port_specs_round_trip(
        entries in prop::collection::vec(entry(), 1..8),
        protocol in select(vec![Protocol::Tcp, Protocol::Udp]),
        outer in (space(), space()),
    ) {
        let text = format!(
            "{}{}{}",
            outer.0,
            entries.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(","),
            outer.1
        );
        let spec = PortSpec::parse(protocol, &text).unwrap();
        let expected: BTreeSet<PortRange> = entries.iter().map(|(_, r)| *r).collect();
        let expected: Vec<PortRange> = expected.into_iter().collect();
        prop_assert_eq!(spec.ranges(), expected.as_slice());
        prop_assert!(spec.ranges().windows(2).all(|w| w[0] < w[1]));
        prop_assert!(spec.ranges().iter().all(|r| r.start() <= r.end()));
        prop_assert!(spec.suits(protocol));
        for (_, range) in &entries {
            prop_assert!(spec.contains(range.start()) && spec.contains(range.end()));
        }

        let rendered = spec.to_string();
        prop_assert!(rendered.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '-'));
        let reparsed = PortSpec::parse(protocol, &rendered).unwrap();
        prop_assert_eq!(&reparsed, &spec);
        prop_assert_eq!(reparsed.to_string(), rendered.clone());
        // Serde goes through the same canonical text.
        let json = serde_json::to_string(&spec).unwrap();
        prop_assert_eq!(json, format!("\"{rendered}\""));
    }

    /// Text over the parser's own alphabet: the parser agrees with the model on what is valid
    /// and what it means, and every refusal is one of the documented messages.
    #[test]
    fn port_lists_agree_with_the_model(
        text in prop::collection::vec(
            select(vec!['0', '1', '5', '6', '9', ',', '-', ' ', '\t', '\u{a0}']), 0..16
        ).prop_map(|c| c.into_iter().collect::<String>()),
    ) {
        let parsed = PortSpec::parse_list(&text);
        match (&parsed, port_model(&text)) {
            (Ok(spec), Some(model)) => prop_assert_eq!(as_pairs(spec), model),
            (Err(message), None) => {
                prop_assert!(is_documented_port_error(message), "{:?}: {}", text, message)
            }
            (parsed, model) => prop_assert!(false, "{:?}: parser {:?}, model {:?}", text, parsed, model),
        }
    }

    /// Any text at all, for every protocol: no panic, a documented message, and an accepted spec
    /// suits its protocol and round trips.
    #[test]
    fn arbitrary_text_is_refused_with_a_documented_message(
        text in prop_oneof![any::<String>(), "[0-9,\\- x٣８]{0,24}"],
    ) {
        for protocol in Protocol::CHOICES {
            match PortSpec::parse(protocol, &text) {
                Ok(spec) => {
                    prop_assert!(spec.suits(protocol));
                    prop_assert_eq!(PortSpec::parse(protocol, &spec.to_string()).unwrap(), spec);
                }
                Err(message) => {
                    prop_assert!(is_documented_port_error(&message), "{:?}: {}", text, message)
                }
            }
        }
        // Protocol rules come first: ICMP and ALL refuse any non-blank text with one message.
        if !text.trim_matches(python_space).is_empty() {
            prop_assert_eq!(PortSpec::parse(Protocol::Icmp, &text).unwrap_err(), PORTS_FORBIDDEN);
        } else {
            prop_assert_eq!(PortSpec::parse(Protocol::Tcp, &text).unwrap_err(), PORTS_REQUIRED);
        }
    }

    /// A number above 65535 anywhere is refused as out of range, quoting the piece as written.
    #[test]
    fn out_of_range_ports_quote_the_piece(
        big in prop_oneof![65536u64..1_000_000, any::<u64>().prop_map(|n| n.saturating_add(65536))],
        before in prop::collection::vec(port(), 0..3),
    ) {
        let mut entries: Vec<String> = before.iter().map(u16::to_string).collect();
        entries.push(big.to_string());
        let text = entries.join(",");
        prop_assert_eq!(
            PortSpec::parse(Protocol::Tcp, &text).unwrap_err(),
            format!("Port '{big}' is out of range, ports must be between 0 and 65535.")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// FQDNs

/// A label of 1 to 63 letters, digits and hyphens, no hyphen at either end.
fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
}

/// A final label: 2 to 63 letters.
fn top_label() -> impl Strategy<Value = String> {
    "[a-zA-Z]{2,63}"
}

fn valid_fqdn() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 1..5), top_label())
        .prop_map(|(mut labels, top)| {
            labels.push(top);
            labels.join(".")
        })
        .prop_filter("4 to 253 characters", |name| {
            (4..=253).contains(&name.len())
        })
}

const FQDN_INVALID: &str = "Please provide a valid FQDN";

/// An independent model of the FQDN rule, written label by label with explicit character
/// classes instead of the validator's helpers.
fn fqdn_model(name: &str) -> bool {
    let letters_digits_hyphen =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-';
    let bytes = name.as_bytes();
    if bytes.len() < 4 || bytes.len() > 253 {
        return false;
    }
    let labels: Vec<&[u8]> = bytes.split(|b| *b == b'.').collect();
    if labels.len() < 2 {
        return false;
    }
    let (top, rest) = labels.split_last().unwrap();
    let top_ok = top.len() >= 2 && top.len() <= 63 && top.iter().all(u8::is_ascii_alphabetic);
    let rest_ok = rest.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.iter().copied().all(letters_digits_hyphen)
            && l[0] != b'-'
            && l[l.len() - 1] != b'-'
    });
    top_ok && rest_ok
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_fqdns_are_accepted_unchanged(name in valid_fqdn()) {
        prop_assert_eq!(fqdn(&name), Ok(name.clone()));
        prop_assert!(fqdn_model(&name));
    }

    /// Each mutation breaks exactly one rule, and each is refused with the one message.
    #[test]
    fn mutated_fqdns_are_refused(
        name in valid_fqdn(),
        position in any::<prop::sample::Index>(),
        bad in select(vec!['_', ' ', '*', '/', 'é', '\0', '@', ':']),
        mutation in 0usize..7,
    ) {
        let labels: Vec<&str> = name.split('.').collect();
        let at = position.index(labels.len() - 1); // a label before the top one
        let mutated = match mutation {
            // A character no label may hold.
            0 => {
                let offset = position.index(name.len() + 1);
                let offset = (0..=offset).rev().find(|i| name.is_char_boundary(*i)).unwrap_or(0);
                format!("{}{bad}{}", &name[..offset], &name[offset..])
            }
            // An empty label.
            1 => { let mut l = labels.clone(); l.insert(at, ""); l.join(".") }
            // A hyphen at the start or end of a label.
            2 => { let mut l: Vec<String> = labels.iter().map(|s| s.to_string()).collect(); l[at] = format!("-{}", l[at]); l.join(".") }
            3 => { let mut l: Vec<String> = labels.iter().map(|s| s.to_string()).collect(); l[at] = format!("{}-", l[at]); l.join(".") }
            // A digit in the top label.
            4 => format!("{name}{}", position.index(10)),
            // A trailing dot (an empty top label).
            5 => format!("{name}."),
            // A label longer than 63 characters.
            _ => { let mut l: Vec<String> = labels.iter().map(|s| s.to_string()).collect(); l[at] = "a".repeat(64); l.join(".") }
        };
        prop_assert_eq!(fqdn(&mutated), Err(FQDN_INVALID.to_owned()), "{:?}", mutated);
    }

    /// Too long in all is refused, even when every label is fine.
    #[test]
    fn overlong_fqdns_are_refused(labels in prop::collection::vec("[a-z]{40,63}", 5..8)) {
        let name = format!("{}.com", labels.join("."));
        prop_assume!(name.len() > 253);
        prop_assert_eq!(fqdn(&name), Err(FQDN_INVALID.to_owned()));
    }

    /// On arbitrary text the validator and the model agree, and the only message is the one.
    #[test]
    fn fqdns_agree_with_the_model(
        name in prop_oneof![any::<String>(), "[a-zA-Z0-9.\\-_]{0,20}", valid_fqdn()],
    ) {
        match fqdn(&name) {
            Ok(accepted) => {
                prop_assert!(fqdn_model(&name), "{:?}", name);
                prop_assert_eq!(accepted, name);
            }
            Err(message) => {
                prop_assert!(!fqdn_model(&name), "{:?}", name);
                prop_assert_eq!(message, FQDN_INVALID);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Server UUIDs

/// 32 hex digits of a version-4, RFC 4122 variant UUID.
fn v4_hex() -> impl Strategy<Value = String> {
    (any::<u128>(), select(vec!['8', '9', 'a', 'b'])).prop_map(|(bits, variant)| {
        let mut hex: Vec<char> = format!("{bits:032x}").chars().collect();
        hex[12] = '4';
        hex[16] = variant;
        hex.into_iter().collect()
    })
}

/// The hex digits with a dash after each group boundary whose bit is set in `dashes`.
fn dashed(hex: &str, dashes: u8) -> String {
    let groups = [
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..],
    ];
    let mut out = groups[0].to_owned();
    for (i, group) in groups[1..].iter().enumerate() {
        if dashes & (1 << i) != 0 {
            out.push('-');
        }
        out.push_str(group);
    }
    out
}

/// The model: a text is a server UUID exactly when it is one of the sixteen renderings (any
/// subset of the four dashes) of 32 lowercase hex digits with version 4 and variant 8, 9, a or b.
fn uuid_model(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let valid_hex = hex.len() == 32
        && hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        && hex.as_bytes()[12] == b'4'
        && b"89ab".contains(&hex.as_bytes()[16]);
    if !valid_hex {
        return None;
    }
    (0..16u8)
        .any(|dashes| dashed(&hex, dashes) == text)
        .then(|| dashed(&hex, 0b1111))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every rendering of a valid UUID is accepted and canonicalised to the dashed form.
    #[test]
    fn uuids_in_every_rendering_are_accepted(hex in v4_hex(), dashes in 0u8..16) {
        let canonical = dashed(&hex, 0b1111);
        let parsed = ServerUuid::parse(&dashed(&hex, dashes)).unwrap();
        prop_assert_eq!(parsed.as_str(), canonical.as_str());
        prop_assert_eq!(ServerUuid::parse(&canonical).unwrap(), parsed);
    }

    /// Breaking one rule of a valid UUID is refused with the message that quotes the input.
    #[test]
    fn mutated_uuids_are_refused(
        hex in v4_hex(),
        dashes in 0u8..16,
        position in any::<prop::sample::Index>(),
        mutation in 0usize..7,
        version in select(vec!['0', '1', '2', '3', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f']),
        variant in select(vec!['0', '1', '2', '3', '4', '5', '6', '7', 'c', 'd', 'e', 'f']),
    ) {
        let text = dashed(&hex, dashes);
        let mut chars: Vec<char> = text.chars().collect();
        let hex_positions: Vec<usize> = (0..chars.len()).filter(|i| chars[*i] != '-').collect();
        let mutated = match mutation {
            // Upper case.
            0 => {
                let letters: Vec<usize> = hex_positions.iter().copied().filter(|i| chars[*i].is_ascii_alphabetic()).collect();
                prop_assume!(!letters.is_empty());
                let i = letters[position.index(letters.len())];
                chars[i] = chars[i].to_ascii_uppercase();
                chars.into_iter().collect()
            }
            // Another version.
            1 => { chars[hex_positions[12]] = version; chars.into_iter().collect() }
            // Another variant.
            2 => { chars[hex_positions[16]] = variant; chars.into_iter().collect() }
            // One digit fewer, or one more.
            3 => { chars.remove(hex_positions[position.index(32)]); chars.into_iter().collect() }
            4 => { chars.insert(position.index(chars.len() + 1), '0'); chars.into_iter().collect() }
            // A dash where none may stand (inside a group, doubled, or at either end).
            5 => {
                let i = position.index(chars.len() + 1);
                chars.insert(i, '-');
                let candidate: String = chars.into_iter().collect();
                prop_assume!(uuid_model(&candidate).is_none());
                candidate
            }
            // A character that is not hex.
            _ => { chars[hex_positions[position.index(32)]] = 'g'; chars.into_iter().collect() }
        };
        prop_assert_eq!(
            ServerUuid::parse(&mutated),
            Err(format!("Invalid UUID specified: {mutated}"))
        );
    }

    /// On arbitrary text the parser accepts exactly what the model accepts.
    #[test]
    fn uuids_agree_with_the_model(
        text in prop_oneof![
            any::<String>(),
            "[0-9a-fA-F\\-]{30,40}",
            (v4_hex(), 0u8..16, "[\\-4a8]{0,2}", any::<prop::sample::Index>()).prop_map(|(hex, dashes, extra, at)| {
                let mut text = dashed(&hex, dashes);
                let i = at.index(text.len() + 1);
                text.insert_str(i, &extra);
                text
            }),
        ],
    ) {
        match (ServerUuid::parse(&text), uuid_model(&text)) {
            (Ok(uuid), Some(canonical)) => prop_assert_eq!(uuid.as_str(), canonical.as_str()),
            (Err(message), None) => prop_assert_eq!(message, format!("Invalid UUID specified: {text}")),
            (parsed, model) => prop_assert!(false, "{:?}: parser {:?}, model {:?}", text, parsed, model),
        }
    }

    /// A list keeps the first occurrence of each UUID in order, skips blanks, and round trips
    /// through its text.
    #[test]
    fn uuid_lists_round_trip(
        entries in prop::collection::vec((v4_hex(), 0u8..16, " {0,2}", " {0,2}"), 0..6),
        repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        blanks in 0usize..3,
    ) {
        let mut items: Vec<String> = entries
            .iter()
            .map(|(hex, dashes, before, after)| format!("{before}{}{after}", dashed(hex, *dashes)))
            .collect();
        if !items.is_empty() {
            for index in &repeats {
                let copy = items[index.index(items.len())].clone();
                items.push(copy);
            }
        }
        items.extend(std::iter::repeat_n(" ".to_owned(), blanks));
        let list = UuidList::parse(&items.join(",")).unwrap();

        let mut expected: Vec<String> = Vec::new();
        for (hex, ..) in &entries {
            let canonical = dashed(hex, 0b1111);
            if !expected.contains(&canonical) {
                expected.push(canonical);
            }
        }
        prop_assert_eq!(list.to_string(), expected.join(","));
        prop_assert_eq!(UuidList::parse(&list.to_string()).unwrap(), list);
    }
}
