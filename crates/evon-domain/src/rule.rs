//! The values a rule is made of: its destination protocol and its destination ports, validated
//! with the original's messages and kept in one canonical form.
//!
//! The port checks follow the original step by step (required for TCP and UDP, forbidden for ICMP
//! and ALL, a character check, then each comma-separated entry split on `-` and read as Python's
//! `int()` reads it), so that every input gets the very message the original gives. The canonical
//! form differs on purpose: entries are sorted by number, not as text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A rule's destination protocol. `All` means every protocol, ports included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "ICMP")]
    Icmp,
    #[serde(rename = "ALL")]
    All,
}

impl Protocol {
    /// Every protocol, in the order the original lists its choices.
    pub const CHOICES: [Protocol; 4] =
        [Protocol::Tcp, Protocol::Udp, Protocol::Icmp, Protocol::All];

    /// Parses the wire form, which is matched exactly (`tcp` is not `TCP`), with DRF's message
    /// for a value that is not one of the choices.
    pub fn parse(value: &str) -> Result<Self, String> {
        Self::CHOICES
            .into_iter()
            .find(|protocol| protocol.as_str() == value)
            .ok_or_else(|| format!("\"{value}\" is not a valid choice."))
    }

    /// The wire form: `TCP`, `UDP`, `ICMP` or `ALL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Icmp => "ICMP",
            Protocol::All => "ALL",
        }
    }

    /// Whether rules of this protocol name ports: TCP and UDP rules must, ICMP and ALL rules must
    /// not (ICMP has no ports, and ALL already covers every port).
    pub fn takes_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

pub const PORTS_REQUIRED: &str =
    "At least one port must be specified for destination protocols TCP or UDP";
pub const PORTS_FORBIDDEN: &str =
    "Ports can only be specified for destination protocols TCP or UDP";
pub const PORTS_ILLEGAL_CHARACTERS: &str = "Illegal characters in port specification";

/// One port or an inclusive range of ports; a single port is a range that ends where it starts.
/// The start never exceeds the end. Ordered by start, then end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        Self {
            start: port,
            end: port,
        }
    }

    /// The range from `start` to `end` inclusive, or `None` when `start` exceeds `end`.
    pub fn new(start: u16, end: u16) -> Option<Self> {
        (start <= end).then_some(Self { start, end })
    }

    pub fn start(self) -> u16 {
        self.start
    }

    pub fn end(self) -> u16 {
        self.end
    }

    pub fn is_single(self) -> bool {
        self.start == self.end
    }

    pub fn contains(self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }
}

impl fmt::Display for PortRange {
    /// `80` for a single port, `7000-8000` for a range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A rule's destination ports in canonical form: distinct entries sorted by start, then end.
/// Overlapping entries (`80,70-90`) are kept as given, since each is what the client wrote.
/// Empty for ICMP and ALL rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PortSpec(Vec<PortRange>);

impl PortSpec {
    /// Validates the ports of a rule with the given protocol, as the original does, and returns
    /// them in canonical form. Surrounding white space is dropped first, as DRF's `CharField`
    /// drops it before the original's check ever sees the value.
    pub fn parse(protocol: Protocol, text: &str) -> Result<Self, String> {
        let text = text.trim_matches(is_python_space);
        match (protocol.takes_ports(), text.is_empty()) {
            (true, true) => Err(PORTS_REQUIRED.into()),
            (false, false) => Err(PORTS_FORBIDDEN.into()),
            (false, true) => Ok(Self::default()),
            (true, false) => Self::parse_list(text),
        }
    }

    /// Reads a port list on its own, without the protocol's requirement: the empty text is the
    /// empty spec. This is how a stored (already validated) value is read back.
    pub fn parse_list(text: &str) -> Result<Self, String> {
        let text = text.trim_matches(is_python_space);
        if text.is_empty() {
            return Ok(Self::default());
        }
        let allowed = |c: char| c.is_ascii_digit() || c == ',' || c == '-' || is_python_space(c);
        if !text.chars().all(allowed) {
            return Err(PORTS_ILLEGAL_CHARACTERS.into());
        }
        let mut ranges = Vec::new();
        for entry in text.split(',') {
            let mut ports = Vec::with_capacity(2);
            for piece in entry.split('-') {
                ports.push(port_number(entry, piece)?);
            }
            let range = match ports[..] {
                [port] => PortRange::single(port),
                [start, end] if start < end => PortRange { start, end },
                [_, _] => {
                    return Err(format!(
                        "Malformed port range '{entry}', start port must be less than end port."
                    ))
                }
                _ => return Err(format!("Malformed port range '{entry}'.")),
            };
            ranges.push(range);
        }
        Ok(Self::from_ranges(ranges))
    }

    /// The canonical spec of any collection of ranges: sorted, duplicates dropped.
    pub fn from_ranges(ranges: impl IntoIterator<Item = PortRange>) -> Self {
        let mut ranges: Vec<PortRange> = ranges.into_iter().collect();
        ranges.sort_unstable();
        ranges.dedup();
        Self(ranges)
    }

    pub fn ranges(&self) -> &[PortRange] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|range| range.contains(port))
    }

    /// Whether these ports are what a rule of `protocol` may carry: some for TCP and UDP, none
    /// for ICMP and ALL. [`PortSpec::parse`] only ever returns specs that suit their protocol.
    pub fn suits(&self, protocol: Protocol) -> bool {
        protocol.takes_ports() != self.is_empty()
    }
}

/// Reads one `-`-separated piece of the entry `entry` as Python's `int()` reads it: surrounding
/// white space is allowed, nothing else but digits. Any number of digits is a number, so a huge
/// one is out of range rather than malformed.
fn port_number(entry: &str, piece: &str) -> Result<u16, String> {
    let digits = piece.trim_matches(is_python_space);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Malformed port: '{entry}'"));
    }
    let significant = digits.trim_start_matches('0');
    let value = if significant.len() > 5 {
        u32::MAX
    } else {
        significant
            .bytes()
            .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0'))
    };
    u16::try_from(value)
        .map_err(|_| format!("Port '{piece}' is out of range, ports must be between 0 and 65535."))
}

/// White space as Python's `str.isspace()`, `str.strip()` and the `\s` of a text regex know it:
/// Unicode white space plus the four ASCII separator controls U+001C to U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

impl fmt::Display for PortSpec {
    /// `80,443,7000-8000`; the empty spec renders as the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, range) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            range.fmt(f)?;
        }
        Ok(())
    }
}

impl FromStr for PortSpec {
    type Err = String;
    /// Same as [`PortSpec::parse_list`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_list(s)
    }
}

impl Serialize for PortSpec {
    /// As its canonical text, `"80,443"`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    /// From text, read by [`PortSpec::parse_list`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_list(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(text: &str) -> Result<String, String> {
        PortSpec::parse(Protocol::Tcp, text).map(|spec| spec.to_string())
    }

    #[test]
    fn protocols_are_matched_exactly() {
        for protocol in Protocol::CHOICES {
            assert_eq!(Protocol::parse(protocol.as_str()).unwrap(), protocol);
            assert_eq!(protocol.to_string(), protocol.as_str());
        }
        assert_eq!(
            Protocol::parse("tcp").unwrap_err(),
            "\"tcp\" is not a valid choice."
        );
        assert_eq!(
            Protocol::parse(" TCP").unwrap_err(),
            "\" TCP\" is not a valid choice."
        );
        assert_eq!(
            Protocol::parse("").unwrap_err(),
            "\"\" is not a valid choice."
        );
        assert_eq!(serde_json::to_string(&Protocol::Icmp).unwrap(), "\"ICMP\"");
        assert_eq!(
            serde_json::from_str::<Protocol>("\"ALL\"").unwrap(),
            Protocol::All
        );
        assert!(serde_json::from_str::<Protocol>("\"all\"").is_err());
        assert!(Protocol::Tcp.takes_ports() && Protocol::Udp.takes_ports());
        assert!(!Protocol::Icmp.takes_ports() && !Protocol::All.takes_ports());
    }

    #[test]
    fn ports_are_required_for_tcp_and_udp() {
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            for text in ["", "   ", "\t\n"] {
                assert_eq!(
                    PortSpec::parse(protocol, text).unwrap_err(),
                    PORTS_REQUIRED,
                    "{protocol} {text:?}"
                );
            }
            assert!(PortSpec::parse(protocol, "53").is_ok());
        }
        assert_eq!(
            PORTS_REQUIRED,
            "At least one port must be specified for destination protocols TCP or UDP"
        );
    }

    #[test]
    fn ports_are_forbidden_for_icmp_and_all() {
        for protocol in [Protocol::Icmp, Protocol::All] {
            let spec = PortSpec::parse(protocol, "").unwrap();
            assert!(spec.is_empty() && spec.suits(protocol));
            assert_eq!(spec.to_string(), "");
            assert!(PortSpec::parse(protocol, "  ").unwrap().is_empty());
            // The protocol check comes before any check of the text itself.
            for text in ["80", "abc", "1-2-3"] {
                assert_eq!(
                    PortSpec::parse(protocol, text).unwrap_err(),
                    "Ports can only be specified for destination protocols TCP or UDP"
                );
            }
        }
    }

    #[test]
    fn illegal_characters() {
        for text in [
            "80;443", "http", "80/tcp", "+80", "1_000", "0x50", "８０", "80.0",
        ] {
            assert_eq!(
                tcp(text).unwrap_err(),
                "Illegal characters in port specification",
                "{text:?}"
            );
        }
        // The character check covers the whole text before any entry is read.
        assert_eq!(tcp("1--3,a").unwrap_err(), PORTS_ILLEGAL_CHARACTERS);
    }

    #[test]
    fn malformed_ports_quote_the_whole_entry() {
        for (text, entry) in [
            ("80,", ""),
            (",80", ""),
            ("80,,443", ""),
            ("1--3", "1--3"),
            ("-80", "-80"),
            ("80-", "80-"),
            ("8 0", "8 0"),
            ("443, 8 0", " 8 0"),
            ("-", "-"),
            ("80, ,443", " "),
        ] {
            assert_eq!(
                tcp(text).unwrap_err(),
                format!("Malformed port: '{entry}'"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn out_of_range_ports_quote_the_piece() {
        for (text, piece) in [
            ("70000", "70000"),
            ("65536", "65536"),
            ("80,99999999999999999999", "99999999999999999999"),
            ("1-70000", "70000"),
            ("80, 70000 ", " 70000"), // the text's own ends are trimmed first
            ("80, 70000 ,443", " 70000 "),
            ("1 - 70000-3", " 70000"),
        ] {
            assert_eq!(
                tcp(text).unwrap_err(),
                format!("Port '{piece}' is out of range, ports must be between 0 and 65535."),
                "{text:?}"
            );
        }
        assert_eq!(tcp("65535").unwrap(), "65535");
        assert_eq!(tcp("0").unwrap(), "0");
        assert_eq!(tcp("00000000000065535").unwrap(), "65535");
    }

    #[test]
    fn ranges_must_ascend() {
        for (text, entry) in [
            ("8000-7000", "8000-7000"),
            ("80,5-5", "5-5"),
            ("22, 9 -1", " 9 -1"),
        ] {
            assert_eq!(
                tcp(text).unwrap_err(),
                format!("Malformed port range '{entry}', start port must be less than end port."),
                "{text:?}"
            );
        }
        assert_eq!(tcp("1-2-3").unwrap_err(), "Malformed port range '1-2-3'.");
        assert_eq!(
            tcp("22,1-2-3-4").unwrap_err(),
            "Malformed port range '1-2-3-4'."
        );
    }

    #[test]
    fn first_failing_check_wins() {
        // Entries are checked in order; each entry's pieces before its shape.
        assert_eq!(
            tcp("5-3,70000").unwrap_err(),
            "Malformed port range '5-3', start port must be less than end port."
        );
        assert_eq!(
            tcp("70000,5-3").unwrap_err(),
            "Port '70000' is out of range, ports must be between 0 and 65535."
        );
        assert_eq!(
            tcp("1-2-70000").unwrap_err(),
            "Port '70000' is out of range, ports must be between 0 and 65535."
        );
        assert_eq!(tcp("1-x-70000").unwrap_err(), PORTS_ILLEGAL_CHARACTERS);
        assert_eq!(
            tcp("70000-,1").unwrap_err(),
            "Port '70000' is out of range, ports must be between 0 and 65535."
        );
        assert_eq!(tcp("1-,70000").unwrap_err(), "Malformed port: '1-'");
    }

    #[test]
    fn normalised_by_number() {
        assert_eq!(tcp("443, 80,80,7000-8000").unwrap(), "80,443,7000-8000");
        assert_eq!(tcp(" 22 ").unwrap(), "22");
        assert_eq!(tcp("\t1000 - 2000 ,\n22").unwrap(), "22,1000-2000");
        assert_eq!(tcp("080,80").unwrap(), "80");
        assert_eq!(tcp("10-20,10,10-15,10-20").unwrap(), "10,10-15,10-20");
        assert_eq!(tcp("9,10,100,1000").unwrap(), "9,10,100,1000");
        assert_eq!(tcp("0-65535").unwrap(), "0-65535");
        assert_eq!(
            PortSpec::parse(Protocol::Udp, "53,5353")
                .unwrap()
                .to_string(),
            "53,5353"
        );
        // Python's white space includes U+001C to U+001F and Unicode spaces.
        assert_eq!(tcp("\u{1f}80\u{a0},\u{2003}443").unwrap(), "80,443");
    }

    #[test]
    fn spec_queries() {
        let spec = PortSpec::parse(Protocol::Tcp, "7000-8000,22").unwrap();
        assert_eq!(
            spec.ranges(),
            [PortRange::single(22), PortRange::new(7000, 8000).unwrap()]
        );
        assert!(spec.contains(22) && spec.contains(7000) && spec.contains(8000));
        assert!(!spec.contains(23) && !spec.contains(8001));
        assert!(spec.suits(Protocol::Tcp) && !spec.suits(Protocol::Icmp));
        assert!(PortRange::new(2, 1).is_none());
        assert!(PortRange::new(1, 1).unwrap().is_single());
    }

    #[test]
    fn serde_uses_the_canonical_text() {
        let spec = PortSpec::parse(Protocol::Tcp, "443,80").unwrap();
        assert_eq!(serde_json::to_string(&spec).unwrap(), "\"80,443\"");
        let back: PortSpec = serde_json::from_str("\" 443, 80 \"").unwrap();
        assert_eq!(back, spec);
        assert_eq!(
            serde_json::from_str::<PortSpec>("\"\"").unwrap(),
            PortSpec::default()
        );
        let error = serde_json::from_str::<PortSpec>("\"8-1\"").unwrap_err();
        assert!(error
            .to_string()
            .contains("start port must be less than end port"));
        assert_eq!("22,21".parse::<PortSpec>().unwrap().to_string(), "21,22");
    }

    /// A small deterministic generator, so the property test needs no extra dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn port(&mut self) -> u16 {
            // Favour small ports, edges and collisions.
            match self.below(4) {
                0 => [0, 1, 22, 80, 443, 65534, 65535][self.below(7) as usize],
                1 => self.below(100) as u16,
                _ => self.below(65536) as u16,
            }
        }

        fn space(&mut self) -> &'static str {
            [" ", "", "", "\t", "  "][self.below(5) as usize]
        }
    }

    #[test]
    fn display_round_trips_through_parse() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5_000 {
            let mut entries = Vec::new();
            for _ in 0..=rng.below(6) {
                let (a, b) = (rng.port(), rng.port());
                let entry = if rng.below(2) == 0 || a == b {
                    a.to_string()
                } else {
                    let (lo, hi) = (a.min(b), a.max(b));
                    format!("{lo}{}-{}{hi}", rng.space(), rng.space())
                };
                entries.push(format!("{}{entry}{}", rng.space(), rng.space()));
                if rng.below(4) == 0 {
                    entries.push(entries[rng.below(entries.len() as u64) as usize].clone());
                }
            }
            let text = entries.join(",");
            let spec = PortSpec::parse(Protocol::Tcp, &text).unwrap();
            let rendered = spec.to_string();
            assert_eq!(
                PortSpec::parse(Protocol::Tcp, &rendered).unwrap(),
                spec,
                "{text:?}"
            );
            assert!(spec.ranges().windows(2).all(|w| w[0] < w[1]), "{text:?}");
            assert!(!rendered.contains(char::is_whitespace));
        }
    }

    #[test]
    fn arbitrary_text_never_panics_and_accepted_text_round_trips() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let alphabet = ['0', '1', '5', '6', '9', ',', '-', ' ', 'x'];
        let mut accepted = 0;
        for _ in 0..20_000 {
            let length = rng.below(12) as usize;
            let text: String = (0..length)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            for protocol in Protocol::CHOICES {
                if let Ok(spec) = PortSpec::parse(protocol, &text) {
                    assert!(spec.suits(protocol), "{protocol} {text:?}");
                    assert_eq!(
                        PortSpec::parse(protocol, &spec.to_string()).unwrap(),
                        spec,
                        "{text:?}"
                    );
                    accepted += 1;
                }
            }
        }
        assert!(accepted > 1_000, "the generator should reach valid specs");
    }
}
