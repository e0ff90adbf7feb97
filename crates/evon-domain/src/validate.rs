//! Validation of the values clients send, with the original's messages.
//!
//! Each validator takes the value as received and returns it in canonical form, or the message
//! to show under the field.

use std::fmt;
use std::str::FromStr;

pub const REQUIRED: &str = "This field is required.";
pub const BLANK: &str = "This field may not be blank.";
pub const NULL: &str = "This field may not be null.";

pub fn max_length_message(limit: usize) -> String {
    format!("Ensure this field has no more than {limit} characters.")
}

/// Longest username, name part and group name, as in Django's auth models.
pub const NAME_MAX: usize = 150;
pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MAX: usize = 128;

/// A text field: surrounding white space trimmed (as DRF does), then length-checked.
pub fn text(value: &str, max: usize, allow_blank: bool) -> Result<String, String> {
    no_null_characters(value)?;
    let trimmed = value.trim();
    if trimmed.is_empty() && !allow_blank {
        return Err(BLANK.into());
    }
    if trimmed.chars().count() > max {
        return Err(max_length_message(max));
    }
    Ok(trimmed.to_owned())
}

/// DRF's `CharField` refuses NUL (its `ProhibitNullCharactersValidator`), and PostgreSQL cannot
/// store it in text at all: letting one through would be a 500 on one backend and a stored oddity
/// on the other.
pub const NULL_CHARACTERS: &str = "Null characters are not allowed.";

/// Text holds no NUL character.
pub fn no_null_characters(value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err(NULL_CHARACTERS.into())
    } else {
        Ok(())
    }
}

/// Usernames: 1 to 150 letters, digits and `@ . + - _`.
pub fn username(value: &str) -> Result<String, String> {
    let name = text(value, NAME_MAX, false)?;
    let valid = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_'));
    if !valid {
        return Err("Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.".into());
    }
    Ok(name)
}

/// Passwords are kept exactly as given (no trimming), must not be empty and are bounded so that
/// hashing cost stays bounded.
pub fn password(value: &str) -> Result<String, String> {
    no_null_characters(value)?;
    if value.is_empty() {
        return Err(BLANK.into());
    }
    if value.chars().count() > PASSWORD_MAX {
        return Err(max_length_message(PASSWORD_MAX));
    }
    Ok(value.to_owned())
}

/// Group names: 1 to 150 characters.
pub fn group_name(value: &str) -> Result<String, String> {
    text(value, NAME_MAX, false)
}

const EMAIL_INVALID: &str = "Enter a valid email address.";

/// E-mail addresses, blank allowed: a dot-atom local part and a domain of valid labels whose last
/// label is 2 to 63 characters (or `localhost`), as Django's validator accepts for ASCII input.
pub fn email(value: &str) -> Result<String, String> {
    let address = text(value, EMAIL_MAX, true)?;
    if address.is_empty() {
        return Ok(address);
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(EMAIL_INVALID.into());
    };
    let atom_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{}|~-".contains(c);
    let local_ok = !local.is_empty()
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atom_char));
    let domain_ok = domain.eq_ignore_ascii_case("localhost") || {
        let labels: Vec<&str> = domain.split('.').collect();
        labels.len() >= 2
            && labels.iter().all(|label| dns_label(label))
            && labels.last().is_some_and(|tld| tld.len() >= 2)
    };
    if local_ok && domain_ok {
        Ok(address)
    } else {
        Err(EMAIL_INVALID.into())
    }
}

/// A DNS label: 1 to 63 letters, digits and hyphens, no hyphen at either end.
fn dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A fully qualified domain name as the original accepts them: labels of 1 to 63 letters,
/// digits and hyphens with no hyphen at either end, at least two labels, a final label of 2 to 63
/// letters, 4 to 253 characters in all.
pub fn fqdn(value: &str) -> Result<String, String> {
    let invalid = || "Please provide a valid FQDN".to_owned();
    if !(4..=253).contains(&value.len()) || !value.is_ascii() {
        return Err(invalid());
    }
    let labels: Vec<&str> = value.split('.').collect();
    let (last, rest) = labels.split_last().ok_or_else(invalid)?;
    let last_ok = (2..=63).contains(&last.len()) && last.chars().all(|c| c.is_ascii_alphabetic());
    if rest.is_empty() || !last_ok || !rest.iter().all(|label| dns_label(label)) {
        return Err(invalid());
    }
    Ok(value.to_owned())
}

/// A server UUID: lowercase, version 4, RFC 4122 variant, dashes optional. Canonical form is
/// the dashed one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerUuid(String);

impl ServerUuid {
    pub fn parse(value: &str) -> Result<Self, String> {
        let invalid = || format!("Invalid UUID specified: {value}");
        // Group boundaries, counted in hex digits, where one dash may stand.
        const BOUNDARIES: [usize; 4] = [8, 12, 16, 20];
        let mut hex = String::with_capacity(32);
        let mut dash_allowed = false;
        for c in value.chars() {
            if c == '-' {
                if !dash_allowed {
                    return Err(invalid());
                }
                dash_allowed = false;
                continue;
            }
            if !matches!(c, '0'..='9' | 'a'..='f') || hex.len() == 32 {
                return Err(invalid());
            }
            hex.push(c);
            dash_allowed = BOUNDARIES.contains(&hex.len());
        }
        let bytes = hex.as_bytes();
        if hex.len() != 32 || bytes[12] != b'4' || !matches!(bytes[16], b'8' | b'9' | b'a' | b'b') {
            return Err(invalid());
        }
        Ok(Self(format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A comma-separated list of server UUIDs, as Config's black- and whitelists hold them.
/// White space around each entry is stripped and empty entries are dropped; the canonical form
/// joins the dashed UUIDs with commas, in the order given, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UuidList(Vec<ServerUuid>);

impl UuidList {
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut uuids: Vec<ServerUuid> = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let uuid = ServerUuid::parse(entry)?;
            if !uuids.contains(&uuid) {
                uuids.push(uuid);
            }
        }
        Ok(Self(uuids))
    }

    pub fn contains(&self, uuid: &ServerUuid) -> bool {
        self.0.contains(uuid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ServerUuid> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for UuidList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined: Vec<&str> = self.0.iter().map(ServerUuid::as_str).collect();
        f.write_str(&joined.join(","))
    }
}

impl FromStr for UuidList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An IANA time zone name, exactly as the tz database spells it.
pub fn timezone(value: &str) -> Result<chrono_tz::Tz, String> {
    value
        .parse::<chrono_tz::Tz>()
        .map_err(|_| format!("\"{value}\" is not a valid choice."))
}

/// A time of day with minute precision, the auto-update time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
}

impl TimeOfDay {
    pub const fn new_const(hour: u8, minute: u8) -> Self {
        Self { hour, minute }
    }

    /// Parses `hh:mm[:ss[.uuuuuu]]` (one or two digits for hours, minutes and seconds). Seconds
    /// and fractions are validated, then dropped: the hub schedules to the minute.
    pub fn parse(value: &str) -> Result<Self, String> {
        let invalid = || {
            "Time has wrong format. Use one of these formats instead: hh:mm[:ss[.uuuuuu]]."
                .to_owned()
        };
        let number = |part: &str, max: u8| -> Option<u8> {
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u8>().ok().filter(|n| *n <= max)
        };
        let mut parts = value.split(':');
        let hour = parts
            .next()
            .and_then(|p| number(p, 23))
            .ok_or_else(invalid)?;
        let minute = parts
            .next()
            .and_then(|p| number(p, 59))
            .ok_or_else(invalid)?;
        if let Some(seconds) = parts.next() {
            let (whole, fraction) = match seconds.split_once(['.', ',']) {
                Some((whole, fraction)) => (whole, Some(fraction)),
                None => (seconds, None),
            };
            number(whole, 59).ok_or_else(invalid)?;
            if let Some(fraction) = fraction {
                if fraction.is_empty()
                    || fraction.len() > 6
                    || !fraction.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid());
                }
            }
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self { hour, minute })
    }

    pub fn hour(self) -> u8 {
        self.hour
    }

    pub fn minute(self) -> u8 {
        self.minute
    }
}

impl fmt::Display for TimeOfDay {
    /// Rendered as DRF renders a time: `03:30:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}:00", self.hour, self.minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_characters_are_refused_in_text_and_passwords() {
        assert_eq!(text("a\0b", 10, false), Err(NULL_CHARACTERS.into()));
        assert_eq!(text(" \0 ", 10, true), Err(NULL_CHARACTERS.into()));
        assert_eq!(password("pass\0word"), Err(NULL_CHARACTERS.into()));
        assert_eq!(group_name("a\u{1}b").as_deref(), Ok("a\u{1}b"));
    }

    #[test]
    fn usernames() {
        assert_eq!(
            username("  bob.smith+1@x_y-z ").unwrap(),
            "bob.smith+1@x_y-z"
        );
        assert_eq!(username("Zoë").unwrap(), "Zoë");
        assert!(username("bob smith")
            .unwrap_err()
            .starts_with("Enter a valid username."));
        assert_eq!(username("   ").unwrap_err(), BLANK);
        assert_eq!(
            username(&"a".repeat(151)).unwrap_err(),
            max_length_message(150)
        );
        assert!(username(&"a".repeat(150)).is_ok());
    }

    #[test]
    fn emails() {
        for good in [
            "",
            "a@b.co",
            "first.last+tag@mail.example.com",
            "root@localhost",
        ] {
            assert!(email(good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a..b@c.de",
            "a@-b.co",
            "a@b.c",
            "a b@c.de",
        ] {
            assert_eq!(email(bad).unwrap_err(), EMAIL_INVALID, "{bad}");
        }
    }

    #[test]
    fn fqdns() {
        for good in ["web1.hub.example.com", "a.bc", "x-1.y.zz"] {
            assert!(fqdn(good).is_ok(), "{good}");
        }
        for bad in [
            "abc",
            "a.b",
            "-a.bc",
            "a-.bc",
            "a..bc",
            "a.b1",
            "a.bc.",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert_eq!(
                fqdn(bad).unwrap_err(),
                "Please provide a valid FQDN",
                "{bad}"
            );
        }
    }

    #[test]
    fn server_uuids() {
        let canonical = "0b6c2b2a-3b1f-4c4e-9a5d-1234567890ab";
        assert_eq!(ServerUuid::parse(canonical).unwrap().as_str(), canonical);
        assert_eq!(
            ServerUuid::parse("0b6c2b2a3b1f4c4e9a5d1234567890ab")
                .unwrap()
                .as_str(),
            canonical
        );
        assert_eq!(
            ServerUuid::parse("0b6c2b2a-3b1f4c4e-9a5d1234567890ab")
                .unwrap()
                .as_str(),
            canonical
        );
        for bad in [
            "0B6C2B2A-3B1F-4C4E-9A5D-1234567890AB", // upper case
            "0b6c2b2a-3b1f-1c4e-9a5d-1234567890ab", // version 1
            "0b6c2b2a-3b1f-4c4e-7a5d-1234567890ab", // wrong variant
            "0b6c2b2a--3b1f-4c4e-9a5d-1234567890ab",
            "0b6c2b2a-3b1f-4c4e-9a5d-1234567890a",
            "0b6c2b2a-3b1f-4c4e-9a5d-1234567890abc",
            "-0b6c2b2a3b1f4c4e9a5d1234567890ab",
            "0b6c2b2a3b1f4c4e9a5d1234567890ab-",
            "0b6c2b2-a3b1f4c4e9a5d1234567890ab",
        ] {
            assert!(ServerUuid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uuid_lists() {
        let list = UuidList::parse(
            " 0b6c2b2a3b1f4c4e9a5d1234567890ab , ,0b6c2b2a-3b1f-4c4e-9a5d-1234567890ab,",
        )
        .unwrap();
        assert_eq!(list.to_string(), "0b6c2b2a-3b1f-4c4e-9a5d-1234567890ab");
        assert_eq!(UuidList::parse("").unwrap().to_string(), "");
        assert_eq!(
            UuidList::parse("nope, x").unwrap_err(),
            "Invalid UUID specified: nope"
        );
    }

    #[test]
    fn timezones() {
        assert_eq!(
            timezone("Australia/Sydney").unwrap().name(),
            "Australia/Sydney"
        );
        assert_eq!(
            timezone("Mars/Olympus").unwrap_err(),
            "\"Mars/Olympus\" is not a valid choice."
        );
        assert!(timezone("utc").is_err(), "names are exact");
    }

    #[test]
    fn times_of_day() {
        assert_eq!(
            TimeOfDay::parse("03:30:45").unwrap().to_string(),
            "03:30:00"
        );
        assert_eq!(TimeOfDay::parse("3:5").unwrap().to_string(), "03:05:00");
        assert_eq!(
            TimeOfDay::parse("23:59:59.123456").unwrap().to_string(),
            "23:59:00"
        );
        for bad in [
            "",
            "24:00",
            "12",
            "12:60",
            "12:00:60",
            "12:00:00.",
            "12:00:00.1234567",
            "a:b",
            "12:00:00:00",
            "123:00",
        ] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }
}
