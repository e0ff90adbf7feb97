//! The whole hub as one document: exported for backups, validated as a whole, and imported into
//! a freshly initialised hub with every id kept.
//!
//! The document is plain data ([`HubDocument`]): values are kept as the database stores them
//! (canonical texts, RFC 3339 UTC timestamps), every list is sorted by id and every relation list
//! ascends, so that the same state always exports to the same bytes ([`to_json`]). [`validate`]
//! checks a document completely, with no database, before [`import`] writes anything.
//! `docs/BACKUP.md` describes the format.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::net::Ipv4Addr;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, SubsecRound, Utc};
use diesel::prelude::*;
use evon_domain::builtin::{
    ADMIN_USERNAME, ADMIN_USER_ID, ALL_SERVERS_GROUP_ID, ALL_SERVERS_GROUP_NAME,
    ALL_USERS_GROUP_ID, ALL_USERS_GROUP_NAME, CONFIG_ID, DEPLOYER_USERNAME, DEPLOYER_USER_ID,
};
use evon_domain::config::HubSettings;
use evon_domain::validate::{self, ServerUuid, TimeOfDay, UuidList};
use evon_domain::{AddressPool, OverlayRange, PortSpec, Protocol, SubnetKey};
use serde::{Deserialize, Serialize};

use crate::db::{lock_for_transaction, DbConnection, TransactionLock};
use crate::error::{StoreError, StoreResult};
use crate::relations;
use crate::schema::{
    api_tokens, config, hub, policies, policy_rules, policy_servergroups, policy_servers,
    rule_source_groups, rule_source_servergroups, rule_source_servers, rule_source_users, rules,
    server_group_members, server_groups, servers, user_group_members, user_group_permissions,
    user_groups, user_permissions, user_profiles, users,
};

/// The value of [`HubDocument::format`].
pub const FORMAT: &str = "evon-hub-backup";
/// The document version this code writes and reads.
pub const VERSION: u32 = 1;
/// At most this many problems are listed; the rest are counted in one last line.
pub const MAX_PROBLEMS: usize = 50;
/// Rows per INSERT statement, well below both backends' limits on bound parameters.
const INSERT_CHUNK: usize = 500;

/// Everything a hub holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    pub hub: HubRecord,
    pub config: ConfigRecord,
    pub users: Vec<UserRecord>,
    pub groups: Vec<GroupRecord>,
    pub servers: Vec<ServerRecord>,
    pub server_groups: Vec<ServerGroupRecord>,
    pub rules: Vec<RuleRecord>,
    pub policies: Vec<PolicyRecord>,
}

/// The settings fixed at initialisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubRecord {
    pub domain: String,
    /// 0 to 255; wider here so that validation can name a wrong value.
    pub subnet_key: i64,
}

/// The Config singleton, every column as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRecord {
    pub timezone: String,
    pub auto_update: bool,
    /// `HH:MM:SS`, seconds always `00`.
    pub auto_update_time: String,
    pub discovery_mode: bool,
    /// Comma-separated dashed UUIDs, as stored.
    pub uuid_blacklist: String,
    pub uuid_whitelist: String,
    pub ec2_iam_role_status: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    pub id: i32,
    pub username: String,
    /// An argon2 PHC string, or `None` for an account without a usable password.
    pub password_hash: Option<String>,
    pub is_superuser: bool,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub is_active: bool,
    /// RFC 3339 in UTC, such as `2026-12-04T09:30:00.123456Z`.
    pub date_joined: String,
    /// The SHA-256 digest of the user's API token, 64 lowercase hex digits.
    pub token_digest: String,
    pub profile: ProfileRecord,
    /// Permission ids granted to the user directly, ascending.
    pub permissions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRecord {
    pub shared: bool,
    pub ipv4_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRecord {
    pub id: i32,
    pub name: String,
    /// User ids, ascending.
    pub members: Vec<i32>,
    /// Permission ids, ascending.
    pub permissions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRecord {
    pub id: i32,
    pub uuid: String,
    pub fqdn: String,
    pub ipv4_address: String,
    pub connected: bool,
    pub disconnected_since: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerGroupRecord {
    pub id: i32,
    pub name: String,
    pub description: Option<String>,
    /// Server ids, ascending.
    pub members: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRecord {
    pub id: i32,
    pub name: String,
    /// `TCP`, `UDP`, `ICMP` or `ALL`.
    pub destination_protocol: String,
    /// Canonical port spec (`22,80-90`), empty for ICMP and ALL.
    pub destination_ports: String,
    pub source_users: Vec<i32>,
    pub source_groups: Vec<i32>,
    pub source_servers: Vec<i32>,
    pub source_servergroups: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRecord {
    pub id: i32,
    pub name: String,
    pub description: Option<String>,
    pub rules: Vec<i32>,
    pub servers: Vec<i32>,
    pub servergroups: Vec<i32>,
}

/// The document as the CLI writes it: pretty JSON and a final newline. `export` and `fixture`
/// both render through here, so equal documents are equal files.
pub fn to_json(doc: &HubDocument) -> String {
    let mut text = serde_json::to_string_pretty(doc).unwrap_or_default();
    text.push('\n');
    text
}

/// How an instant is written in a document: RFC 3339 in UTC with a `Z`, to the microsecond
/// (PostgreSQL's precision), with as few fraction digits as say it exactly (0, 3 or 6).
pub fn render_time(instant: DateTime<Utc>) -> String {
    instant
        .trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn render_stored_time(stored: NaiveDateTime) -> String {
    render_time(stored.and_utc())
}

/// Reads a document's timestamp; `None` unless it is RFC 3339 in its canonical form.
fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let instant = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    (render_time(instant) == text).then(|| instant.naive_utc())
}

// ---------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------

fn take(map: &mut HashMap<i32, Vec<i32>>, id: i32) -> Vec<i32> {
    map.remove(&id).unwrap_or_default()
}

type UserRow = (
    i32,
    String,
    Option<String>,
    bool,
    String,
    String,
    String,
    bool,
    NaiveDateTime,
);
type ServerRow = (
    i32,
    String,
    String,
    String,
    bool,
    Option<NaiveDateTime>,
    NaiveDateTime,
);
type ConfigRow = (String, bool, String, bool, String, String, bool);

/// Reads the whole hub, in a constant number of queries. Run it inside `Store::read` so that it
/// is one consistent snapshot.
pub fn export(conn: &mut DbConnection) -> StoreResult<HubDocument> {
    let (domain, subnet_key): (String, i32) = hub::table
        .select((hub::domain, hub::subnet_key))
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotInitialised)?;
    let (
        timezone,
        auto_update,
        auto_update_time,
        discovery_mode,
        uuid_blacklist,
        uuid_whitelist,
        ec2_iam_role_status,
    ): ConfigRow = config::table
        .find(CONFIG_ID)
        .select((
            config::timezone,
            config::auto_update,
            config::auto_update_time,
            config::discovery_mode,
            config::uuid_blacklist,
            config::uuid_whitelist,
            config::ec2_iam_role_status,
        ))
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotInitialised)?;

    let user_rows: Vec<UserRow> = users::table
        .order(users::id)
        .select((
            users::id,
            users::username,
            users::password_hash,
            users::is_superuser,
            users::first_name,
            users::last_name,
            users::email,
            users::is_active,
            users::date_joined,
        ))
        .load(conn)?;
    let mut tokens: HashMap<i32, String> = api_tokens::table
        .select((api_tokens::user_id, api_tokens::digest))
        .load::<(i32, String)>(conn)?
        .into_iter()
        .collect();
    let mut profiles: HashMap<i32, (bool, String)> = user_profiles::table
        .select((
            user_profiles::user_id,
            user_profiles::shared,
            user_profiles::ipv4_address,
        ))
        .load::<(i32, bool, String)>(conn)?
        .into_iter()
        .map(|(id, shared, address)| (id, (shared, address)))
        .collect();
    let mut user_permissions = relations::permissions_of_user::all(conn)?;
    let users = user_rows
        .into_iter()
        .map(
            |(
                id,
                username,
                password_hash,
                is_superuser,
                first_name,
                last_name,
                email,
                is_active,
                date_joined,
            )| {
                let token_digest = tokens
                    .remove(&id)
                    .ok_or_else(|| StoreError::Corrupt(format!("user {id} has no API token")))?;
                let (shared, ipv4_address) = profiles
                    .remove(&id)
                    .ok_or_else(|| StoreError::Corrupt(format!("user {id} has no profile")))?;
                Ok(UserRecord {
                    id,
                    username,
                    password_hash,
                    is_superuser,
                    first_name,
                    last_name,
                    email,
                    is_active,
                    date_joined: render_stored_time(date_joined),
                    token_digest,
                    profile: ProfileRecord {
                        shared,
                        ipv4_address,
                    },
                    permissions: take(&mut user_permissions, id),
                })
            },
        )
        .collect::<StoreResult<Vec<_>>>()?;

    let group_rows: Vec<(i32, String)> = user_groups::table
        .order(user_groups::id)
        .select((user_groups::id, user_groups::name))
        .load(conn)?;
    let mut members = relations::members_of_group::all(conn)?;
    let mut group_permissions = relations::permissions_of_group::all(conn)?;
    let groups = group_rows
        .into_iter()
        .map(|(id, name)| GroupRecord {
            id,
            name,
            members: take(&mut members, id),
            permissions: take(&mut group_permissions, id),
        })
        .collect();

    let server_rows: Vec<ServerRow> = servers::table
        .order(servers::id)
        .select((
            servers::id,
            servers::uuid,
            servers::fqdn,
            servers::ipv4_address,
            servers::connected,
            servers::disconnected_since,
            servers::created_at,
        ))
        .load(conn)?;
    let servers = server_rows
        .into_iter()
        .map(
            |(id, uuid, fqdn, ipv4_address, connected, disconnected_since, created_at)| {
                ServerRecord {
                    id,
                    uuid,
                    fqdn,
                    ipv4_address,
                    connected,
                    disconnected_since: disconnected_since.map(render_stored_time),
                    created_at: render_stored_time(created_at),
                }
            },
        )
        .collect();

    let server_group_rows: Vec<(i32, String, Option<String>)> = server_groups::table
        .order(server_groups::id)
        .select((
            server_groups::id,
            server_groups::name,
            server_groups::description,
        ))
        .load(conn)?;
    let mut server_members = relations::members_of_server_group::all(conn)?;
    let server_groups = server_group_rows
        .into_iter()
        .map(|(id, name, description)| ServerGroupRecord {
            id,
            name,
            description,
            members: take(&mut server_members, id),
        })
        .collect();

    let rule_rows: Vec<(i32, String, String, String)> = rules::table
        .order(rules::id)
        .select((
            rules::id,
            rules::name,
            rules::destination_protocol,
            rules::destination_ports,
        ))
        .load(conn)?;
    let mut source_users = relations::rule_source_users::all(conn)?;
    let mut source_groups = relations::rule_source_groups::all(conn)?;
    let mut source_servers = relations::rule_source_servers::all(conn)?;
    let mut source_servergroups = relations::rule_source_servergroups::all(conn)?;
    let rules = rule_rows
        .into_iter()
        .map(
            |(id, name, destination_protocol, destination_ports)| RuleRecord {
                id,
                name,
                destination_protocol,
                destination_ports,
                source_users: take(&mut source_users, id),
                source_groups: take(&mut source_groups, id),
                source_servers: take(&mut source_servers, id),
                source_servergroups: take(&mut source_servergroups, id),
            },
        )
        .collect();

    let policy_rows: Vec<(i32, String, Option<String>)> = policies::table
        .order(policies::id)
        .select((policies::id, policies::name, policies::description))
        .load(conn)?;
    let mut policy_rules = relations::policy_rules::all(conn)?;
    let mut policy_servers = relations::policy_servers::all(conn)?;
    let mut policy_servergroups = relations::policy_servergroups::all(conn)?;
    let policies = policy_rows
        .into_iter()
        .map(|(id, name, description)| PolicyRecord {
            id,
            name,
            description,
            rules: take(&mut policy_rules, id),
            servers: take(&mut policy_servers, id),
            servergroups: take(&mut policy_servergroups, id),
        })
        .collect();

    Ok(HubDocument {
        format: FORMAT.to_owned(),
        version: VERSION,
        hub: HubRecord {
            domain,
            subnet_key: i64::from(subnet_key),
        },
        config: ConfigRecord {
            timezone,
            auto_update,
            auto_update_time,
            discovery_mode,
            uuid_blacklist,
            uuid_whitelist,
            ec2_iam_role_status,
        },
        users,
        groups,
        servers,
        server_groups,
        rules,
        policies,
    })
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Problems found so far, each a sentence naming the object.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    /// Checks that a text is valid and already in the form the validator makes of it.
    fn canonical(
        &mut self,
        owner: &str,
        field: &str,
        text: &str,
        validator: impl FnOnce(&str) -> Result<String, String>,
    ) {
        match validator(text) {
            Err(message) => self.add(format!("{owner}: {field} {text:?}: {message}")),
            Ok(canonical) if canonical != text => {
                self.add(not_canonical(owner, field, text, &canonical))
            }
            Ok(_) => {}
        }
    }

    fn timestamp(&mut self, owner: &str, field: &str, text: &str) {
        if parse_time(text).is_some() {
            return;
        }
        match DateTime::parse_from_rfc3339(text) {
            Ok(instant) => self.add(not_canonical(
                owner,
                field,
                text,
                &render_time(instant.with_timezone(&Utc)),
            )),
            Err(_) => self.add(format!(
                "{owner}: {field} {text:?} is not an RFC 3339 timestamp such as \"2026-12-04T09:30:00Z\""
            )),
        }
    }

    /// Checks a relation list: every id names an object of the document, none twice.
    fn references(&mut self, owner: &str, field: &str, ids: &[i32], noun: &str, known: &IdIndex) {
        let mut seen = HashSet::with_capacity(ids.len());
        for id in ids {
            if !seen.insert(*id) {
                self.add(format!("{owner}: {field} lists {noun} {id} more than once"));
            } else if !known.contains_key(id) {
                self.add(format!(
                    "{owner}: {field} names {noun} {id}, which is not in the document"
                ));
            }
        }
    }

    fn permissions(&mut self, owner: &str, ids: &[i32]) {
        let mut seen = HashSet::with_capacity(ids.len());
        for id in ids {
            if !seen.insert(*id) {
                self.add(format!(
                    "{owner}: permissions lists permission {id} more than once"
                ));
            } else if evon_domain::permission::by_id(*id).is_none() {
                self.add(format!(
                    "{owner}: permissions names permission {id}, which is not in the catalogue (ids 1 to {})",
                    evon_domain::permission::CATALOGUE.len()
                ));
            }
        }
    }

    /// The list to report: at most [`MAX_PROBLEMS`] lines and a count of the rest.
    fn finish(mut self) -> Result<(), Vec<String>> {
        if self.0.is_empty() {
            return Ok(());
        }
        if self.0.len() > MAX_PROBLEMS {
            let more = self.0.len() - MAX_PROBLEMS;
            self.0.truncate(MAX_PROBLEMS);
            self.0.push(format!("and {more} more"));
        }
        Err(self.0)
    }
}

fn not_canonical(owner: &str, field: &str, text: &str, canonical: &str) -> String {
    format!("{owner}: {field} {text:?} is not in canonical form; write {canonical:?}")
}

/// An id's position in its list, by id.
type IdIndex = HashMap<i32, usize>;

fn label(kind: &str, index: usize, id: i32) -> String {
    format!("{kind}[{index}] (id {id})")
}

/// Indexes a list by id, reporting ids that are not positive or appear twice.
fn index_ids(problems: &mut Problems, kind: &str, ids: impl Iterator<Item = i32>) -> IdIndex {
    let mut index = IdIndex::new();
    for (position, id) in ids.enumerate() {
        if id <= 0 {
            problems.add(format!(
                "{}: ids must be positive",
                label(kind, position, id)
            ));
        }
        if let Some(first) = index.get(&id) {
            problems.add(format!(
                "{}: id {id} is already used by {kind}[{first}]",
                label(kind, position, id)
            ));
        } else {
            index.insert(id, position);
        }
    }
    index
}

/// Reports a value that must be unique within its kind when it was seen before.
fn unique<'a>(
    problems: &mut Problems,
    seen: &mut HashMap<&'a str, String>,
    value: &'a str,
    owner: &str,
    what: impl Display,
) {
    match seen.get(value) {
        Some(first) => problems.add(format!("{owner}: {what} is already used by {first}")),
        None => {
            seen.insert(value, owner.to_owned());
        }
    }
}

/// Checks an overlay address: canonical dotted quad, one the pool hands out, not used twice.
fn check_address<'a>(
    problems: &mut Problems,
    seen: &mut HashMap<&'a str, String>,
    owner: &str,
    field: &str,
    text: &'a str,
    pool: Option<(AddressPool, &str)>,
) {
    match text.parse::<Ipv4Addr>() {
        Err(_) => problems.add(format!("{owner}: {field} {text:?} is not an IPv4 address")),
        Ok(address) if address.to_string() != text => {
            problems.add(not_canonical(owner, field, text, &address.to_string()))
        }
        Ok(address) => {
            if let Some((pool, range)) = pool {
                if !pool.contains(address) {
                    problems.add(format!(
                        "{owner}: {field} {text} is not an address the {range} range {} hands out",
                        pool.cidr()
                    ));
                }
            }
        }
    }
    unique(problems, seen, text, owner, format_args!("{field} {text}"));
}

/// A built-in object's list of members must hold every object of its kind.
fn check_holds_all(
    problems: &mut Problems,
    owner: &str,
    group: &str,
    noun: &str,
    members: &[i32],
    all: impl Iterator<Item = i32>,
) {
    let members: HashSet<i32> = members.iter().copied().collect();
    let missing: Vec<i32> = all.filter(|id| !members.contains(id)).collect();
    if missing.is_empty() {
        return;
    }
    let shown: Vec<String> = missing.iter().take(5).map(i32::to_string).collect();
    let more = match missing.len().saturating_sub(5) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    problems.add(format!(
        "{owner}: {group} must contain every {noun}, but lacks {noun} {}{more}",
        shown.join(", ")
    ));
}

/// Checks a whole document without touching any database: its format, every value, the
/// built-in objects, uniqueness and every reference. Each problem is one sentence naming the
/// object, such as `rules[3] (id 17): source_users names user 999, which is not in the
/// document`; at most [`MAX_PROBLEMS`] are listed, followed by `and N more`.
pub fn validate(doc: &HubDocument) -> Result<(), Vec<String>> {
    let mut p = Problems::default();
    if doc.format != FORMAT {
        p.add(format!(
            "format is {:?}; an Evon Hub backup says {FORMAT:?}",
            doc.format
        ));
    }
    if doc.version != VERSION {
        p.add(format!(
            "version is {}; this Evon Hub reads version {VERSION}",
            doc.version
        ));
    }

    // The hub and its address ranges.
    p.canonical("hub", "domain", &doc.hub.domain, HubSettings::parse_domain);
    let key = match u8::try_from(doc.hub.subnet_key) {
        Ok(key) => Some(SubnetKey::new(key)),
        Err(_) => {
            p.add(format!(
                "hub: subnet_key {} is not an integer from 0 to 255",
                doc.hub.subnet_key
            ));
            None
        }
    };
    let user_pool = key.map(|key| (AddressPool::new(key, OverlayRange::Users), "user"));
    let server_pool = key.map(|key| (AddressPool::new(key, OverlayRange::Servers), "server"));

    // Config.
    let config = &doc.config;
    if let Err(message) = validate::timezone(&config.timezone) {
        p.add(format!("config: timezone: {message}"));
    }
    p.canonical(
        "config",
        "auto_update_time",
        &config.auto_update_time,
        |t| TimeOfDay::parse(t).map(|time| time.to_string()),
    );
    p.canonical("config", "uuid_blacklist", &config.uuid_blacklist, |t| {
        UuidList::parse(t).map(|list| list.to_string())
    });
    p.canonical("config", "uuid_whitelist", &config.uuid_whitelist, |t| {
        UuidList::parse(t).map(|list| list.to_string())
    });

    // Ids.
    let user_ids = index_ids(&mut p, "users", doc.users.iter().map(|u| u.id));
    let group_ids = index_ids(&mut p, "groups", doc.groups.iter().map(|g| g.id));
    let server_ids = index_ids(&mut p, "servers", doc.servers.iter().map(|s| s.id));
    let server_group_ids = index_ids(
        &mut p,
        "server_groups",
        doc.server_groups.iter().map(|g| g.id),
    );
    let rule_ids = index_ids(&mut p, "rules", doc.rules.iter().map(|r| r.id));
    index_ids(&mut p, "policies", doc.policies.iter().map(|r| r.id));

    // Built-in objects.
    for (id, name, superuser) in [
        (ADMIN_USER_ID, ADMIN_USERNAME, true),
        (DEPLOYER_USER_ID, DEPLOYER_USERNAME, false),
    ] {
        match user_ids.get(&id) {
            None => p.add(format!("users: the built-in user {id} ({name}) is missing")),
            Some(&index) => {
                let user = &doc.users[index];
                let owner = label("users", index, id);
                if user.username != name {
                    p.add(format!(
                        "{owner}: the built-in user {id} must be named {name:?}, not {:?}",
                        user.username
                    ));
                }
                if superuser && !user.is_superuser {
                    p.add(format!(
                        "{owner}: the built-in user {id} ({name}) must be a superuser"
                    ));
                }
            }
        }
    }
    match group_ids.get(&ALL_USERS_GROUP_ID) {
        None => p.add(format!(
            "groups: the built-in group {ALL_USERS_GROUP_ID} ({ALL_USERS_GROUP_NAME}) is missing"
        )),
        Some(&index) => {
            let group = &doc.groups[index];
            let owner = label("groups", index, group.id);
            if group.name != ALL_USERS_GROUP_NAME {
                p.add(format!(
                    "{owner}: the built-in group {ALL_USERS_GROUP_ID} must be named {ALL_USERS_GROUP_NAME:?}, not {:?}",
                    group.name
                ));
            }
            check_holds_all(
                &mut p,
                &owner,
                ALL_USERS_GROUP_NAME,
                "user",
                &group.members,
                doc.users.iter().map(|u| u.id),
            );
        }
    }
    match server_group_ids.get(&ALL_SERVERS_GROUP_ID) {
        None => p.add(format!(
            "server_groups: the built-in server group {ALL_SERVERS_GROUP_ID} ({ALL_SERVERS_GROUP_NAME}) is missing"
        )),
        Some(&index) => {
            let group = &doc.server_groups[index];
            let owner = label("server_groups", index, group.id);
            if group.name != ALL_SERVERS_GROUP_NAME {
                p.add(format!(
                    "{owner}: the built-in server group {ALL_SERVERS_GROUP_ID} must be named {ALL_SERVERS_GROUP_NAME:?}, not {:?}",
                    group.name
                ));
            }
            check_holds_all(
                &mut p,
                &owner,
                ALL_SERVERS_GROUP_NAME,
                "server",
                &group.members,
                doc.servers.iter().map(|s| s.id),
            );
        }
    }

    // Users.
    let mut usernames = HashMap::new();
    let mut digests = HashMap::new();
    let mut user_addresses = HashMap::new();
    for (index, user) in doc.users.iter().enumerate() {
        let owner = label("users", index, user.id);
        p.canonical(&owner, "username", &user.username, validate::username);
        unique(
            &mut p,
            &mut usernames,
            &user.username,
            &owner,
            format_args!("username {:?}", user.username),
        );
        for (field, value) in [
            ("first_name", &user.first_name),
            ("last_name", &user.last_name),
        ] {
            p.canonical(&owner, field, value, |t| {
                validate::text(t, validate::NAME_MAX, true)
            });
        }
        p.canonical(&owner, "email", &user.email, validate::email);
        if user
            .password_hash
            .as_deref()
            .is_some_and(|hash| !hash.starts_with("$argon2"))
        {
            p.add(format!(
                "{owner}: password_hash must be null or an argon2 PHC string starting with \"$argon2\""
            ));
        }
        p.timestamp(&owner, "date_joined", &user.date_joined);
        let digest = &user.token_digest;
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            p.add(format!(
                "{owner}: token_digest must be 64 lowercase hex digits (the SHA-256 digest of the token)"
            ));
        }
        unique(&mut p, &mut digests, digest, &owner, "token_digest");
        check_address(
            &mut p,
            &mut user_addresses,
            &owner,
            "profile.ipv4_address",
            &user.profile.ipv4_address,
            user_pool,
        );
        p.permissions(&owner, &user.permissions);
    }

    // Groups.
    let mut group_names = HashMap::new();
    for (index, group) in doc.groups.iter().enumerate() {
        let owner = label("groups", index, group.id);
        p.canonical(&owner, "name", &group.name, validate::group_name);
        unique(
            &mut p,
            &mut group_names,
            &group.name,
            &owner,
            format_args!("name {:?}", group.name),
        );
        p.references(&owner, "members", &group.members, "user", &user_ids);
        p.permissions(&owner, &group.permissions);
    }

    // Servers.
    let mut uuids = HashMap::new();
    let mut fqdns = HashMap::new();
    let mut server_addresses = HashMap::new();
    for (index, server) in doc.servers.iter().enumerate() {
        let owner = label("servers", index, server.id);
        p.canonical(&owner, "uuid", &server.uuid, |t| {
            ServerUuid::parse(t).map(|uuid| uuid.as_str().to_owned())
        });
        unique(
            &mut p,
            &mut uuids,
            &server.uuid,
            &owner,
            format_args!("uuid {}", server.uuid),
        );
        match validate::fqdn(&server.fqdn) {
            Err(message) => p.add(format!("{owner}: fqdn {:?}: {message}", server.fqdn)),
            Ok(_) if server.fqdn != server.fqdn.to_ascii_lowercase() => p.add(format!(
                "{owner}: fqdn {:?} must be lower case",
                server.fqdn
            )),
            Ok(_) => {}
        }
        unique(
            &mut p,
            &mut fqdns,
            &server.fqdn,
            &owner,
            format_args!("fqdn {}", server.fqdn),
        );
        check_address(
            &mut p,
            &mut server_addresses,
            &owner,
            "ipv4_address",
            &server.ipv4_address,
            server_pool,
        );
        if let Some(since) = &server.disconnected_since {
            p.timestamp(&owner, "disconnected_since", since);
        }
        p.timestamp(&owner, "created_at", &server.created_at);
    }

    // Server groups.
    for (index, group) in doc.server_groups.iter().enumerate() {
        let owner = label("server_groups", index, group.id);
        p.canonical(
            &owner,
            "name",
            &group.name,
            evon_domain::server::server_group_name,
        );
        if let Some(description) = &group.description {
            p.canonical(
                &owner,
                "description",
                description,
                evon_domain::server::description,
            );
        }
        p.references(&owner, "members", &group.members, "server", &server_ids);
    }

    // Rules.
    for (index, rule) in doc.rules.iter().enumerate() {
        let owner = label("rules", index, rule.id);
        p.canonical(&owner, "name", &rule.name, evon_domain::policy::name);
        match Protocol::parse(&rule.destination_protocol) {
            Err(message) => p.add(format!("{owner}: destination_protocol: {message}")),
            Ok(protocol) => {
                p.canonical(&owner, "destination_ports", &rule.destination_ports, |t| {
                    PortSpec::parse(protocol, t).map(|spec| spec.to_string())
                })
            }
        }
        p.references(
            &owner,
            "source_users",
            &rule.source_users,
            "user",
            &user_ids,
        );
        p.references(
            &owner,
            "source_groups",
            &rule.source_groups,
            "group",
            &group_ids,
        );
        p.references(
            &owner,
            "source_servers",
            &rule.source_servers,
            "server",
            &server_ids,
        );
        p.references(
            &owner,
            "source_servergroups",
            &rule.source_servergroups,
            "server group",
            &server_group_ids,
        );
    }

    // Policies.
    for (index, policy) in doc.policies.iter().enumerate() {
        let owner = label("policies", index, policy.id);
        p.canonical(&owner, "name", &policy.name, evon_domain::policy::name);
        if let Some(description) = &policy.description {
            p.canonical(
                &owner,
                "description",
                description,
                evon_domain::server::description,
            );
        }
        p.references(&owner, "rules", &policy.rules, "rule", &rule_ids);
        p.references(&owner, "servers", &policy.servers, "server", &server_ids);
        p.references(
            &owner,
            "servergroups",
            &policy.servergroups,
            "server group",
            &server_group_ids,
        );
    }

    p.finish()
}

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

/// Refuses any target but a freshly initialised hub: initialised, and holding the built-in
/// users, group and server group and nothing else.
fn check_target_is_fresh(conn: &mut DbConnection) -> StoreResult<()> {
    if !crate::hub::is_initialised(conn)? {
        return Err(StoreError::NotInitialised);
    }
    let user_ids: Vec<i32> = users::table.order(users::id).select(users::id).load(conn)?;
    let group_ids: Vec<i32> = user_groups::table
        .order(user_groups::id)
        .select(user_groups::id)
        .load(conn)?;
    let server_group_ids: Vec<i32> = server_groups::table
        .order(server_groups::id)
        .select(server_groups::id)
        .load(conn)?;
    let server_count: i64 = servers::table.count().get_result(conn)?;
    let rule_count: i64 = rules::table.count().get_result(conn)?;
    let policy_count: i64 = policies::table.count().get_result(conn)?;

    let mut found = Vec::new();
    let mut describe = |count: usize, one: &str, many: &str| match count {
        0 => {}
        1 => found.push(format!("1 {one}")),
        n => found.push(format!("{n} {many}")),
    };
    let builtin_users = [ADMIN_USER_ID, DEPLOYER_USER_ID];
    describe(
        user_ids
            .iter()
            .filter(|id| !builtin_users.contains(id))
            .count(),
        "user besides admin and deployer",
        "users besides admin and deployer",
    );
    describe(
        group_ids
            .iter()
            .filter(|id| **id != ALL_USERS_GROUP_ID)
            .count(),
        "group besides All Users",
        "groups besides All Users",
    );
    describe(
        server_group_ids
            .iter()
            .filter(|id| **id != ALL_SERVERS_GROUP_ID)
            .count(),
        "server group besides All Servers",
        "server groups besides All Servers",
    );
    describe(crate::to_u64(server_count) as usize, "server", "servers");
    describe(crate::to_u64(rule_count) as usize, "rule", "rules");
    describe(crate::to_u64(policy_count) as usize, "policy", "policies");
    if !found.is_empty() {
        return Err(StoreError::TargetNotEmpty(format!(
            "the target hub is not empty: it has {}; import needs a freshly initialised hub \
             (run `evon-hub init` on an empty database)",
            found.join(", ")
        )));
    }
    let builtins_present = user_ids == builtin_users
        && group_ids == [ALL_USERS_GROUP_ID]
        && server_group_ids == [ALL_SERVERS_GROUP_ID];
    if !builtins_present {
        return Err(StoreError::TargetNotEmpty(
            "the target hub lacks some of its built-in objects, so it is not freshly \
             initialised; import needs a hub just made by `evon-hub init`"
                .into(),
        ));
    }
    Ok(())
}

/// Inserts rows in statements of [`INSERT_CHUNK`] rows (through `per_backend!`, since
/// `MultiConnection` cannot batch-insert).
macro_rules! insert_rows {
    ($conn:expr, $table:ident, $rows:expr) => {{
        let rows = $rows;
        for chunk in rows.chunks(INSERT_CHUNK) {
            crate::per_backend!($conn, c => diesel::insert_into($table::table).values(chunk).execute(c))?;
        }
    }};
}

/// Inserts one join table from a relation list of the document's objects: `owner` is the
/// column that names the object, `related` the column that names what it lists in `field`.
macro_rules! insert_relation {
    ($conn:expr, $objects:expr, $table:ident, $owner:ident, $related:ident, $field:ident) => {{
        let rows: Vec<_> = pairs($objects, |o| (o.id, &o.$field))
            .into_iter()
            .map(|(owner, related)| ($table::$owner.eq(owner), $table::$related.eq(related)))
            .collect();
        insert_rows!($conn, $table, rows);
    }};
}

/// Flattens `(owner, related ids)` into join-table pairs.
fn pairs<'a, T: 'a>(
    owners: &'a [T],
    related: impl Fn(&'a T) -> (i32, &'a [i32]),
) -> Vec<(i32, i32)> {
    owners
        .iter()
        .flat_map(|owner| {
            let (id, ids) = related(owner);
            ids.iter().map(move |r| (id, *r))
        })
        .collect()
}

/// Reads a timestamp [`validate`] has accepted.
fn stored_time(owner: &str, text: &str) -> StoreResult<NaiveDateTime> {
    parse_time(text).ok_or_else(|| {
        StoreError::InvalidDocument(vec![format!("{owner}: bad timestamp {text:?}")])
    })
}

/// Replaces a freshly initialised hub's contents with the document's, ids included, in the
/// caller's transaction (run it inside `Store::write`). The document is validated first and the
/// target checked to be fresh; either failing writes nothing. The hub's domain and subnet key
/// become the document's (its initialisation time stays); token creation times become now.
pub fn import(conn: &mut DbConnection, doc: &HubDocument) -> StoreResult<()> {
    validate(doc).map_err(StoreError::InvalidDocument)?;
    // Queue concurrent allocations behind this transaction rather than racing it.
    lock_for_transaction(conn, TransactionLock::UserAddresses)?;
    lock_for_transaction(conn, TransactionLock::ServerRegistration)?;
    check_target_is_fresh(conn)?;

    // Join tables first, then what they refer to.
    diesel::delete(policy_servergroups::table).execute(conn)?;
    diesel::delete(policy_servers::table).execute(conn)?;
    diesel::delete(policy_rules::table).execute(conn)?;
    diesel::delete(rule_source_servergroups::table).execute(conn)?;
    diesel::delete(rule_source_servers::table).execute(conn)?;
    diesel::delete(rule_source_groups::table).execute(conn)?;
    diesel::delete(rule_source_users::table).execute(conn)?;
    diesel::delete(server_group_members::table).execute(conn)?;
    diesel::delete(user_group_permissions::table).execute(conn)?;
    diesel::delete(user_group_members::table).execute(conn)?;
    diesel::delete(user_permissions::table).execute(conn)?;
    diesel::delete(user_profiles::table).execute(conn)?;
    diesel::delete(api_tokens::table).execute(conn)?;
    diesel::delete(policies::table).execute(conn)?;
    diesel::delete(rules::table).execute(conn)?;
    diesel::delete(servers::table).execute(conn)?;
    diesel::delete(server_groups::table).execute(conn)?;
    diesel::delete(user_groups::table).execute(conn)?;
    diesel::delete(users::table).execute(conn)?;
    diesel::delete(config::table).execute(conn)?;

    // The hub row stays (its initialisation time and generation go on); its settings are the
    // document's.
    diesel::update(hub::table)
        .set((
            hub::domain.eq(&doc.hub.domain),
            hub::subnet_key.eq(i32::try_from(doc.hub.subnet_key).unwrap_or_default()),
        ))
        .execute(conn)?;
    let c = &doc.config;
    diesel::insert_into(config::table)
        .values((
            config::id.eq(CONFIG_ID),
            config::ec2_iam_role_status.eq(c.ec2_iam_role_status),
            config::timezone.eq(&c.timezone),
            config::auto_update.eq(c.auto_update),
            config::auto_update_time.eq(&c.auto_update_time),
            config::discovery_mode.eq(c.discovery_mode),
            config::uuid_blacklist.eq(&c.uuid_blacklist),
            config::uuid_whitelist.eq(&c.uuid_whitelist),
        ))
        .execute(conn)?;

    // Users, their tokens, profiles and permissions.
    let joined = doc
        .users
        .iter()
        .map(|u| stored_time(&format!("user {}", u.id), &u.date_joined))
        .collect::<StoreResult<Vec<_>>>()?;
    let rows: Vec<_> = doc
        .users
        .iter()
        .zip(&joined)
        .map(|(u, joined)| {
            (
                users::id.eq(u.id),
                users::username.eq(&u.username),
                users::password_hash.eq(u.password_hash.as_deref()),
                users::is_superuser.eq(u.is_superuser),
                users::first_name.eq(&u.first_name),
                users::last_name.eq(&u.last_name),
                users::email.eq(&u.email),
                users::is_active.eq(u.is_active),
                users::date_joined.eq(*joined),
            )
        })
        .collect();
    insert_rows!(conn, users, rows);
    let now = Utc::now().naive_utc().trunc_subsecs(6);
    let rows: Vec<_> = doc
        .users
        .iter()
        .map(|u| {
            (
                api_tokens::user_id.eq(u.id),
                api_tokens::digest.eq(&u.token_digest),
                api_tokens::created_at.eq(now),
            )
        })
        .collect();
    insert_rows!(conn, api_tokens, rows);
    let rows: Vec<_> = doc
        .users
        .iter()
        .map(|u| {
            (
                user_profiles::user_id.eq(u.id),
                user_profiles::shared.eq(u.profile.shared),
                user_profiles::ipv4_address.eq(&u.profile.ipv4_address),
            )
        })
        .collect();
    insert_rows!(conn, user_profiles, rows);
    insert_relation!(
        conn,
        &doc.users,
        user_permissions,
        user_id,
        permission_id,
        permissions
    );

    // Groups.
    let rows: Vec<_> = doc
        .groups
        .iter()
        .map(|g| (user_groups::id.eq(g.id), user_groups::name.eq(&g.name)))
        .collect();
    insert_rows!(conn, user_groups, rows);
    insert_relation!(
        conn,
        &doc.groups,
        user_group_members,
        group_id,
        user_id,
        members
    );
    insert_relation!(
        conn,
        &doc.groups,
        user_group_permissions,
        group_id,
        permission_id,
        permissions
    );

    // Servers and server groups.
    let rows: Vec<_> = doc
        .server_groups
        .iter()
        .map(|g| {
            (
                server_groups::id.eq(g.id),
                server_groups::name.eq(&g.name),
                server_groups::description.eq(g.description.as_deref()),
            )
        })
        .collect();
    insert_rows!(conn, server_groups, rows);
    let times = doc
        .servers
        .iter()
        .map(|s| {
            let owner = format!("server {}", s.id);
            let since = match &s.disconnected_since {
                Some(text) => Some(stored_time(&owner, text)?),
                None => None,
            };
            Ok((since, stored_time(&owner, &s.created_at)?))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let rows: Vec<_> = doc
        .servers
        .iter()
        .zip(&times)
        .map(|(s, (since, created))| {
            (
                servers::id.eq(s.id),
                servers::uuid.eq(&s.uuid),
                servers::fqdn.eq(&s.fqdn),
                servers::ipv4_address.eq(&s.ipv4_address),
                servers::connected.eq(s.connected),
                servers::disconnected_since.eq(*since),
                servers::created_at.eq(*created),
            )
        })
        .collect();
    insert_rows!(conn, servers, rows);
    insert_relation!(
        conn,
        &doc.server_groups,
        server_group_members,
        group_id,
        server_id,
        members
    );

    // Rules and their sources.
    let rows: Vec<_> = doc
        .rules
        .iter()
        .map(|r| {
            (
                rules::id.eq(r.id),
                rules::name.eq(&r.name),
                rules::destination_protocol.eq(&r.destination_protocol),
                rules::destination_ports.eq(&r.destination_ports),
            )
        })
        .collect();
    insert_rows!(conn, rules, rows);
    insert_relation!(
        conn,
        &doc.rules,
        rule_source_users,
        rule_id,
        user_id,
        source_users
    );
    insert_relation!(
        conn,
        &doc.rules,
        rule_source_groups,
        rule_id,
        group_id,
        source_groups
    );
    insert_relation!(
        conn,
        &doc.rules,
        rule_source_servers,
        rule_id,
        server_id,
        source_servers
    );
    insert_relation!(
        conn,
        &doc.rules,
        rule_source_servergroups,
        rule_id,
        group_id,
        source_servergroups
    );

    // Policies and their rules and targets.
    let rows: Vec<_> = doc
        .policies
        .iter()
        .map(|p| {
            (
                policies::id.eq(p.id),
                policies::name.eq(&p.name),
                policies::description.eq(p.description.as_deref()),
            )
        })
        .collect();
    insert_rows!(conn, policies, rows);
    insert_relation!(conn, &doc.policies, policy_rules, policy_id, rule_id, rules);
    insert_relation!(
        conn,
        &doc.policies,
        policy_servers,
        policy_id,
        server_id,
        servers
    );
    insert_relation!(
        conn,
        &doc.policies,
        policy_servergroups,
        policy_id,
        group_id,
        servergroups
    );

    crate::hub::reset_identity_sequences(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_to_the_microsecond() {
        let instant = DateTime::parse_from_rfc3339("2026-12-04T10:30:00.123456789+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(render_time(instant), "2026-12-04T09:30:00.123456Z");
        for (text, canonical) in [
            ("2026-12-04T09:30:00Z", true),
            ("2026-12-04T09:30:00.120Z", true),
            ("2026-12-04T09:30:00.12Z", false),
            ("2026-12-04T09:30:00+00:00", false),
            ("2026-12-04T09:30:00.1234567Z", false),
            ("2026-12-04 09:30:00", false),
        ] {
            assert_eq!(parse_time(text).is_some(), canonical, "{text}");
        }
    }

    #[test]
    fn problems_are_capped() {
        let mut problems = Problems::default();
        for n in 0..60 {
            problems.add(format!("problem {n}"));
        }
        let list = problems.finish().unwrap_err();
        assert_eq!(list.len(), MAX_PROBLEMS + 1);
        assert_eq!(list[MAX_PROBLEMS], "and 10 more");
        assert!(Problems::default().finish().is_ok());
    }
}
