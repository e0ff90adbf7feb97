//! Server UUIDs and UUID lists: any text. A UUID is accepted exactly when it is one of the
//! sixteen renderings (any subset of the four dashes) of a lowercase version-4 UUID, and comes
//! out dashed; a refusal quotes the input. A list parses, renders and parses back to itself.

#![no_main]

use evon_domain::validate::{ServerUuid, UuidList};
use libfuzzer_sys::fuzz_target;

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

fn model(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let ok = hex.len() == 32
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && hex.as_bytes()[12] == b'4'
        && b"89ab".contains(&hex.as_bytes()[16]);
    if !ok {
        return None;
    }
    (0..16u8)
        .any(|dashes| dashed(&hex, dashes) == text)
        .then(|| dashed(&hex, 0b1111))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match (ServerUuid::parse(&text), model(&text)) {
        (Ok(uuid), Some(canonical)) => {
            assert_eq!(uuid.as_str(), canonical);
            assert_eq!(ServerUuid::parse(uuid.as_str()).as_ref(), Ok(&uuid));
        }
        (Err(message), None) => assert_eq!(message, format!("Invalid UUID specified: {text}")),
        (parsed, model) => panic!("{text:?}: parser {parsed:?}, model {model:?}"),
    }
    if let Ok(list) = UuidList::parse(&text) {
        let rendered = list.to_string();
        let back = UuidList::parse(&rendered).expect("a rendering parses");
        assert_eq!(back, list);
        assert_eq!(back.to_string(), rendered);
        let entries: Vec<&str> = if rendered.is_empty() {
            Vec::new()
        } else {
            rendered.split(',').collect()
        };
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(model(entry).as_deref(), Some(*entry));
            assert!(!entries[..i].contains(entry), "duplicate {entry}");
        }
    }
});
