//! Servers: the spokes that join over OpenVPN, their names, their groups and whether they may
//! join at all.

use chrono::{DateTime, Utc};

use crate::builtin::ALL_SERVERS_GROUP_ID;
use crate::config::Config;
use crate::entity::canonical_ids;
use crate::validate::{self, ServerUuid};

/// A server as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub id: i32,
    pub uuid: ServerUuid,
    pub fqdn: String,
    pub ipv4_address: std::net::Ipv4Addr,
    pub connected: bool,
    pub disconnected_since: Option<DateTime<Utc>>,
    /// Server group ids, ascending; always includes All Servers.
    pub server_groups: Vec<i32>,
}

/// A server group as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerGroup {
    pub id: i32,
    pub name: String,
    pub description: Option<String>,
    /// Member server ids, ascending.
    pub server_set: Vec<i32>,
}

/// A validated partial update (or, with every required field, a creation) of a server group.
#[derive(Debug, Clone, Default)]
pub struct ServerGroupPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub server_set: Option<Vec<i32>>,
}

/// Longest server group, rule and policy name.
pub const NAME_MAX: usize = 200;
/// Longest description.
pub const DESCRIPTION_MAX: usize = 256;

/// Server group names: 1 to 200 characters, no commas (the original joins them with commas).
pub fn server_group_name(value: &str) -> Result<String, String> {
    let name = validate::text(value, NAME_MAX, false)?;
    if name.contains(',') {
        return Err("Name must not contain commas".into());
    }
    Ok(name)
}

/// Descriptions: up to 256 characters, blank allowed.
pub fn description(value: &str) -> Result<String, String> {
    validate::text(value, DESCRIPTION_MAX, true)
}

/// A server's groups always include All Servers, whatever a client sends.
pub fn groups_with_all_servers(mut groups: Vec<i32>) -> Vec<i32> {
    groups.push(ALL_SERVERS_GROUP_ID);
    canonical_ids(groups)
}

/// The FQDN a server asking for `hostname` should have: lower-cased, with `.<domain>` appended
/// unless it already ends with it (compared case-insensitively).
pub fn desired_fqdn(hostname: &str, domain: &str) -> Result<String, String> {
    let hostname = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    let fqdn = if hostname == domain || hostname.ends_with(&format!(".{domain}")) {
        hostname
    } else {
        format!("{hostname}.{domain}")
    };
    validate::fqdn(&fqdn)
}

/// The first of `desired`, `first-1.rest`, `first-2.rest`, … that `is_taken` says is free.
/// `None` when the suffixed name would no longer be a valid FQDN.
pub fn deduplicated_fqdn(desired: &str, mut is_taken: impl FnMut(&str) -> bool) -> Option<String> {
    if !is_taken(desired) {
        return Some(desired.to_owned());
    }
    let (first, rest) = desired.split_once('.')?;
    (1u32..).find_map(|index| {
        let candidate = format!("{first}-{index}.{rest}");
        if validate::fqdn(&candidate).is_err() {
            // Stop rather than loop forever once the first label is too long.
            return Some(None);
        }
        (!is_taken(&candidate)).then_some(Some(candidate))
    })?
}

/// Why a server may not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid UUID: {0}")]
    InvalidUuid(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("UUID is blacklisted")]
    Blacklisted,
    #[error("discovery mode is off and the UUID is neither known nor whitelisted")]
    NotDiscoverable,
    #[error("the server address range is full")]
    AddressesExhausted,
}

/// Whether a server with this UUID may join now: blacklisted UUIDs never; with discovery mode
/// off, only servers already known or whitelisted.
pub fn admission(uuid: &ServerUuid, config: &Config, known: bool) -> Result<(), Refusal> {
    if config.uuid_blacklist.contains(uuid) {
        return Err(Refusal::Blacklisted);
    }
    if !config.discovery_mode && !known && !config.uuid_whitelist.contains(uuid) {
        return Err(Refusal::NotDiscoverable);
    }
    Ok(())
}

/// `now` while connected (or never disconnected), else how long ago the server disconnected,
/// in the two largest units: `4 seconds ago`, `3 minutes and 27 seconds ago`.
pub fn last_seen(
    connected: bool,
    disconnected_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    match disconnected_since {
        Some(since) if !connected => format!(
            "{} ago",
            timespan((now - since).num_seconds().max(0) as u64)
        ),
        _ => "now".into(),
    }
}

/// A duration in words, as humanfriendly's `format_timespan(max_units=2)` writes it.
fn timespan(seconds: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (31_449_600, "year"),
        (604_800, "week"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let mut left = seconds;
    let mut parts = Vec::new();
    for (size, name) in UNITS {
        let count = left / size;
        left %= size;
        if count > 0 {
            parts.push(format!(
                "{count} {name}{}",
                if count == 1 { "" } else { "s" }
            ));
        }
    }
    parts.truncate(2);
    match parts.len() {
        0 => "0 seconds".into(),
        _ => parts.join(" and "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fqdns_are_suffixed_once() {
        let domain = "hub.example.com";
        assert_eq!(
            desired_fqdn("web1", domain).unwrap(),
            "web1.hub.example.com"
        );
        assert_eq!(
            desired_fqdn("Web1.HUB.example.com", domain).unwrap(),
            "web1.hub.example.com"
        );
        assert_eq!(
            desired_fqdn("db.eu", domain).unwrap(),
            "db.eu.hub.example.com"
        );
        assert_eq!(
            desired_fqdn("web 1", domain).unwrap_err(),
            "Please provide a valid FQDN"
        );
        assert_eq!(
            desired_fqdn("-web", domain).unwrap_err(),
            "Please provide a valid FQDN"
        );
        assert!(desired_fqdn("", domain).is_err());
    }

    #[test]
    fn fqdns_are_deduplicated_on_the_first_label() {
        let taken = ["web1.hub.example.com", "web1-1.hub.example.com"];
        let free = deduplicated_fqdn("web1.hub.example.com", |c| taken.contains(&c)).unwrap();
        assert_eq!(free, "web1-2.hub.example.com");
        assert_eq!(
            deduplicated_fqdn("db.hub.example.com", |c| taken.contains(&c)).unwrap(),
            "db.hub.example.com"
        );
        let long = format!("{}.hub.example.com", "a".repeat(63));
        assert_eq!(deduplicated_fqdn(&long, |_| true), None);
    }

    #[test]
    fn admission_rules() {
        let uuid = ServerUuid::parse("0b6c2b2a-3b1f-4c4e-9a5d-1234567890ab").unwrap();
        let mut config = Config::initial();
        assert_eq!(admission(&uuid, &config, false), Ok(()));
        config.discovery_mode = false;
        assert_eq!(
            admission(&uuid, &config, false),
            Err(Refusal::NotDiscoverable)
        );
        assert_eq!(admission(&uuid, &config, true), Ok(()));
        config.uuid_whitelist = crate::validate::UuidList::parse(uuid.as_str()).unwrap();
        assert_eq!(admission(&uuid, &config, false), Ok(()));
        config.uuid_blacklist = crate::validate::UuidList::parse(uuid.as_str()).unwrap();
        assert_eq!(admission(&uuid, &config, true), Err(Refusal::Blacklisted));
    }

    #[test]
    fn last_seen_in_words() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        let ago = |s: i64| last_seen(false, Some(now - chrono::Duration::seconds(s)), now);
        assert_eq!(last_seen(true, None, now), "now");
        assert_eq!(last_seen(false, None, now), "now");
        assert_eq!(last_seen(true, Some(now), now), "now");
        assert_eq!(ago(0), "0 seconds ago");
        assert_eq!(ago(1), "1 second ago");
        assert_eq!(ago(4), "4 seconds ago");
        assert_eq!(ago(207), "3 minutes and 27 seconds ago");
        assert_eq!(ago(3600), "1 hour ago");
        assert_eq!(ago(3661), "1 hour and 1 minute ago");
        assert_eq!(ago(90_061), "1 day and 1 hour ago");
        assert_eq!(ago(700_000), "1 week and 1 day ago");
        assert_eq!(ago(40_000_000), "1 year and 14 weeks ago");
        assert_eq!(
            ago(-5),
            "0 seconds ago",
            "clock skew never shows a negative time"
        );
    }

    #[test]
    fn server_group_names() {
        assert_eq!(
            server_group_name("Web, DB").unwrap_err(),
            "Name must not contain commas"
        );
        assert!(server_group_name(&"x".repeat(201)).is_err());
        assert_eq!(server_group_name(" Web ").unwrap(), "Web");
    }
}
