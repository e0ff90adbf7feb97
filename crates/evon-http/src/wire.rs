//! The JSON shapes of responses, mapped explicitly from domain values.

use evon_domain::config::Config;
use evon_domain::permission::Permission;
use evon_domain::policy::{Policy, Rule};
use evon_domain::server::{last_seen, Server, ServerGroup};
use evon_domain::time::render_datetime;
use evon_domain::{Group, User, UserProfile};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct UserOut {
    pub id: i32,
    pub userprofile_id: i32,
    pub username: String,
    pub is_superuser: bool,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub is_active: bool,
    pub groups: Vec<i32>,
    pub user_permissions: Vec<i32>,
    /// The new user's API token: present only in the response that creates the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl From<User> for UserOut {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            // Profiles are keyed by their user, so the profile id is the user id.
            userprofile_id: user.id,
            username: user.username,
            is_superuser: user.is_superuser,
            first_name: user.first_name,
            last_name: user.last_name,
            email: user.email,
            is_active: user.is_active,
            groups: user.groups,
            user_permissions: user.user_permissions,
            token: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct GroupOut {
    pub id: i32,
    pub name: String,
    pub user_set: Vec<i32>,
    pub permissions: Vec<i32>,
}

impl From<Group> for GroupOut {
    fn from(group: Group) -> Self {
        Self {
            id: group.id,
            name: group.name,
            user_set: group.user_set,
            permissions: group.permissions,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PermissionOut {
    pub id: i32,
    pub name: String,
}

impl From<&Permission> for PermissionOut {
    fn from(permission: &Permission) -> Self {
        Self {
            id: permission.id,
            name: permission.name(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProfileOut {
    pub shared: bool,
    pub ipv4_address: String,
}

impl From<UserProfile> for ProfileOut {
    fn from(profile: UserProfile) -> Self {
        Self {
            shared: profile.shared,
            ipv4_address: profile.ipv4_address.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConfigOut {
    pub id: i32,
    pub ec2_iam_role_status: bool,
    pub timezone: String,
    pub auto_update: bool,
    pub auto_update_time: String,
    pub discovery_mode: bool,
    pub uuid_blacklist: String,
    pub uuid_whitelist: String,
}

impl From<Config> for ConfigOut {
    fn from(config: Config) -> Self {
        Self {
            id: config.id,
            ec2_iam_role_status: config.ec2_iam_role_status,
            timezone: config.timezone.name().to_owned(),
            auto_update: config.auto_update,
            auto_update_time: config.auto_update_time.to_string(),
            discovery_mode: config.discovery_mode,
            uuid_blacklist: config.uuid_blacklist.to_string(),
            uuid_whitelist: config.uuid_whitelist.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Pong {
    pub message: &'static str,
}

/// A server as superusers and the detail routes see it.
#[derive(Debug, Serialize)]
pub struct ServerOut {
    pub id: i32,
    pub accessible: bool,
    pub fqdn: String,
    pub ipv4_address: String,
    pub uuid: String,
    pub connected: bool,
    pub disconnected_since: Option<String>,
    pub last_seen: String,
    pub server_groups: Vec<i32>,
}

/// A server as other users see it in the list: only those they can reach, fewer fields.
#[derive(Debug, Serialize)]
pub struct RestrictedServerOut {
    pub id: i32,
    pub fqdn: String,
    pub ipv4_address: String,
    pub connected: bool,
    pub disconnected_since: Option<String>,
    pub last_seen: String,
}

/// What rendering a server needs besides the server: the requester's access, the zone, the time.
#[derive(Debug, Clone, Copy)]
pub struct ServerView {
    pub zone: chrono_tz::Tz,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl ServerView {
    pub fn full(&self, server: Server, accessible: bool) -> ServerOut {
        ServerOut {
            id: server.id,
            accessible,
            disconnected_since: server
                .disconnected_since
                .map(|t| render_datetime(t, self.zone)),
            last_seen: last_seen(server.connected, server.disconnected_since, self.now),
            fqdn: server.fqdn,
            ipv4_address: server.ipv4_address.to_string(),
            uuid: server.uuid.to_string(),
            connected: server.connected,
            server_groups: server.server_groups,
        }
    }

    pub fn restricted(&self, server: Server) -> RestrictedServerOut {
        RestrictedServerOut {
            id: server.id,
            disconnected_since: server
                .disconnected_since
                .map(|t| render_datetime(t, self.zone)),
            last_seen: last_seen(server.connected, server.disconnected_since, self.now),
            fqdn: server.fqdn,
            ipv4_address: server.ipv4_address.to_string(),
            connected: server.connected,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ServerGroupOut {
    pub id: i32,
    pub server_set: Vec<i32>,
    pub name: String,
    pub description: Option<String>,
}

impl From<ServerGroup> for ServerGroupOut {
    fn from(group: ServerGroup) -> Self {
        Self {
            id: group.id,
            server_set: group.server_set,
            name: group.name,
            description: group.description,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RuleOut {
    pub id: i32,
    pub name: String,
    pub destination_protocol: &'static str,
    pub destination_ports: String,
    pub source_users: Vec<i32>,
    pub source_groups: Vec<i32>,
    pub source_servers: Vec<i32>,
    pub source_servergroups: Vec<i32>,
}

impl From<Rule> for RuleOut {
    fn from(rule: Rule) -> Self {
        Self {
            id: rule.id,
            name: rule.name,
            destination_protocol: rule.destination_protocol.as_str(),
            destination_ports: rule.destination_ports.to_string(),
            source_users: rule.source_users,
            source_groups: rule.source_groups,
            source_servers: rule.source_servers,
            source_servergroups: rule.source_servergroups,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PolicyOut {
    pub id: i32,
    pub name: String,
    pub description: Option<String>,
    pub rules: Vec<i32>,
    pub servers: Vec<i32>,
    pub servergroups: Vec<i32>,
}

impl From<Policy> for PolicyOut {
    fn from(policy: Policy) -> Self {
        Self {
            id: policy.id,
            name: policy.name,
            description: policy.description,
            rules: policy.rules,
            servers: policy.servers,
            servergroups: policy.servergroups,
        }
    }
}
