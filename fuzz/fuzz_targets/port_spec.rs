//! Port specs: any text, for every protocol. No panic; every refusal is one of the original's
//! seven messages; an accepted spec suits its protocol, is sorted and free of duplicates, and its
//! rendering is canonical (it parses back to the same spec and renders the same again).

#![no_main]

use evon_domain::rule::{
    PortSpec, Protocol, PORTS_FORBIDDEN, PORTS_ILLEGAL_CHARACTERS, PORTS_REQUIRED,
};
use libfuzzer_sys::fuzz_target;

fn documented(message: &str) -> bool {
    message == PORTS_REQUIRED
        || message == PORTS_FORBIDDEN
        || message == PORTS_ILLEGAL_CHARACTERS
        || (message.starts_with("Malformed port: '") && message.ends_with('\''))
        || (message.starts_with("Port '")
            && message.ends_with("' is out of range, ports must be between 0 and 65535."))
        || (message.starts_with("Malformed port range '")
            && (message.ends_with("', start port must be less than end port.")
                || message.ends_with("'.")))
}

fn check(spec: &PortSpec, protocol: Option<Protocol>) {
    assert!(
        spec.ranges().windows(2).all(|w| w[0] < w[1]),
        "not canonical: {spec:?}"
    );
    assert!(spec.ranges().iter().all(|r| r.start() <= r.end()));
    if let Some(protocol) = protocol {
        assert!(spec.suits(protocol));
    }
    let rendered = spec.to_string();
    assert!(rendered
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b',' || b == b'-'));
    let back = PortSpec::parse_list(&rendered).expect("a rendering parses");
    assert_eq!(&back, spec);
    assert_eq!(back.to_string(), rendered);
    for range in spec.ranges() {
        assert!(spec.contains(range.start()) && spec.contains(range.end()));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for protocol in Protocol::CHOICES {
        match PortSpec::parse(protocol, &text) {
            Ok(spec) => check(&spec, Some(protocol)),
            Err(message) => assert!(documented(&message), "{text:?}: {message}"),
        }
    }
    match PortSpec::parse_list(&text) {
        Ok(spec) => {
            check(&spec, None);
            // A TCP rule accepts exactly the non-empty lists.
            assert_eq!(
                PortSpec::parse(Protocol::Tcp, &text).is_ok(),
                !spec.is_empty()
            );
        }
        Err(message) => assert!(documented(&message), "{text:?}: {message}"),
    }
    // Serde reads the same text the same way (a JSON string of it).
    let json = serde_json::to_string(text.as_ref()).expect("a string serialises");
    let via_serde = serde_json::from_str::<PortSpec>(&json).ok();
    assert_eq!(via_serde, PortSpec::parse_list(&text).ok());
});
