//! The hub's Config singleton and the settings fixed at initialisation.

use crate::address::SubnetKey;
use crate::validate::{TimeOfDay, UuidList};

/// Config, the one row of run-time settings administrators change through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub id: i32,
    pub ec2_iam_role_status: bool,
    pub timezone: chrono_tz::Tz,
    pub auto_update: bool,
    pub auto_update_time: TimeOfDay,
    pub discovery_mode: bool,
    pub uuid_blacklist: UuidList,
    pub uuid_whitelist: UuidList,
}

impl Config {
    /// The values a new hub starts with.
    pub fn initial() -> Self {
        Self {
            id: crate::builtin::CONFIG_ID,
            ec2_iam_role_status: false,
            timezone: chrono_tz::UTC,
            auto_update: true,
            auto_update_time: TimeOfDay::new_const(3, 0),
            discovery_mode: true,
            uuid_blacklist: UuidList::default(),
            uuid_whitelist: UuidList::default(),
        }
    }

    pub fn apply(&mut self, patch: ConfigPatch) {
        let ConfigPatch {
            timezone,
            auto_update,
            auto_update_time,
            discovery_mode,
            uuid_blacklist,
            uuid_whitelist,
        } = patch;
        if let Some(v) = timezone {
            self.timezone = v;
        }
        if let Some(v) = auto_update {
            self.auto_update = v;
        }
        if let Some(v) = auto_update_time {
            self.auto_update_time = v;
        }
        if let Some(v) = discovery_mode {
            self.discovery_mode = v;
        }
        if let Some(v) = uuid_blacklist {
            self.uuid_blacklist = v;
        }
        if let Some(v) = uuid_whitelist {
            self.uuid_whitelist = v;
        }
    }
}

/// A validated partial update of Config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigPatch {
    pub timezone: Option<chrono_tz::Tz>,
    pub auto_update: Option<bool>,
    pub auto_update_time: Option<TimeOfDay>,
    pub discovery_mode: Option<bool>,
    pub uuid_blacklist: Option<UuidList>,
    pub uuid_whitelist: Option<UuidList>,
}

/// What a hub is, fixed when it is initialised: its account domain (server FQDNs end with it)
/// and its subnet key (the second octet of every overlay address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    pub domain: String,
    pub subnet_key: SubnetKey,
}

/// The account domain a hub gets when `init` is not told one.
pub const DEFAULT_DOMAIN: &str = "hub.evon.local";
/// The subnet key a hub gets when `init` is not told one.
pub const DEFAULT_SUBNET_KEY: u8 = 111;

impl HubSettings {
    /// Validates an account domain given at initialisation (an FQDN, kept lower-case).
    pub fn parse_domain(domain: &str) -> Result<String, String> {
        crate::validate::fqdn(&domain.trim().to_ascii_lowercase()).map_err(|_| {
            format!("{domain:?} is not a valid account domain (an FQDN such as hub.example.com)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_applies_only_given_fields() {
        let mut config = Config::initial();
        config.apply(ConfigPatch {
            discovery_mode: Some(false),
            ..ConfigPatch::default()
        });
        assert!(!config.discovery_mode);
        assert!(config.auto_update);
        assert_eq!(config.timezone, chrono_tz::UTC);
    }

    #[test]
    fn domains() {
        assert_eq!(
            HubSettings::parse_domain(" Hub.Example.COM ").unwrap(),
            "hub.example.com"
        );
        assert!(HubSettings::parse_domain("localhost").is_err());
    }
}
