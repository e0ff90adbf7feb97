//! `evon-hub fixture`: deterministic import documents of realistic shape, for tests and
//! benchmarks.
//!
//! Everything comes from one seed through [`SplitMix64`], implemented here so that the output
//! never depends on a crate's version: the same size and seed give the same bytes on every
//! machine and in every release that keeps this file's logic.
//!
//! Every account's password is [`FIXTURE_PASSWORD`]; all of them share one precomputed hash
//! ([`FIXTURE_PASSWORD_HASH`]), since hashing thousands of passwords would be slow and a fresh salt
//! would make the output differ from run to run. Tokens are known too: the admin token is the
//! seed as 40 hex digits (seed 1: `000…0001`) and the deployer's is the same with `00000002` as
//! its first eight digits; `evon-hub fixture` prints both on standard error. Every other user's
//! token is PRNG output, which only its digest records.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;

use chrono::DateTime;
use evon_crypto::TokenDigest;
use evon_domain::builtin::{
    ADMIN_USERNAME, ADMIN_USER_ID, ALL_SERVERS_GROUP_DESCRIPTION, ALL_SERVERS_GROUP_ID,
    ALL_SERVERS_GROUP_NAME, ALL_USERS_GROUP_ID, ALL_USERS_GROUP_NAME, DEPLOYER_USERNAME,
    DEPLOYER_USER_ID,
};
use evon_domain::config::Config;
use evon_domain::permission::CATALOGUE;
use evon_domain::{AddressPool, OverlayRange, PortSpec, Protocol, SubnetKey};
use evon_store::backup::{
    self, ConfigRecord, GroupRecord, HubDocument, HubRecord, PolicyRecord, ProfileRecord,
    RuleRecord, ServerGroupRecord, ServerRecord, UserRecord,
};

/// The account domain of every fixture.
pub const DOMAIN: &str = "hub.example.com";
/// The subnet key of every fixture.
pub const SUBNET_KEY: u8 = 111;
/// Every fixture account's password.
pub const FIXTURE_PASSWORD: &str = "fixture-password";
/// An argon2id hash of [`FIXTURE_PASSWORD`] with the hub's parameters, computed once with
/// `evon_crypto::hash_password` (a unit test checks that it verifies).
pub const FIXTURE_PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$soPrHqNyyUkAqT5o20/nCA$O/Vv/48hTBaTmnlOUKvyT9I4JS0jdeYWImP+sww28Qs";

/// 2025-01-01T00:00:00Z, when every fixture's history begins.
const EPOCH: i64 = 1_735_689_600;

/// How many objects of each kind a fixture has, built-in objects included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub servers: usize,
    pub users: usize,
    pub groups: usize,
    pub server_groups: usize,
    pub rules: usize,
    pub policies: usize,
}

/// The sizes `evon-hub fixture --size` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// A handful of each kind, covering every source and target kind, an empty group, an
    /// inactive user, a shared user, ICMP and ALL rules.
    Small,
    /// 1,000 servers, 200 users, 50 groups, 40 server groups, 300 rules, 200 policies.
    OneK,
    /// The largest hub the overlay's address ranges hold, with the `10k` benchmark's rule and
    /// policy counts: 2,000 servers, 1,000 users, 300 groups, 200 server groups, 2,000 rules,
    /// 1,000 policies. A hub cannot have 10,000 servers and 2,000 users: the server range
    /// (100.K.224.0/19) has 2,047 addresses and the user range (100.K.208.0/20) 1,023; a few
    /// are left free so that benchmarks can still register servers and create users.
    TenK,
}

impl Size {
    pub fn shape(self) -> Shape {
        match self {
            Size::Small => Shape {
                servers: 12,
                users: 8,
                groups: 5,
                server_groups: 4,
                rules: 8,
                policies: 4,
            },
            Size::OneK => Shape {
                servers: 1_000,
                users: 200,
                groups: 50,
                server_groups: 40,
                rules: 300,
                policies: 200,
            },
            Size::TenK => Shape {
                servers: 2_000,
                users: 1_000,
                groups: 300,
                server_groups: 200,
                rules: 2_000,
                policies: 1_000,
            },
        }
    }
}

/// The splitmix64 generator: tiny, fast, and fixed here for good.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0), by multiplying rather than by remainder.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number from `low` to `high`, both included.
    fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    fn percent(&mut self, chance: usize) -> bool {
        self.below(100) < chance
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `count` distinct items of `from` (fewer if it has fewer), ascending.
    fn sample(&mut self, from: &[i32], count: usize) -> Vec<i32> {
        let count = count.min(from.len());
        let mut chosen = BTreeSet::new();
        while chosen.len() < count {
            chosen.insert(from[self.below(from.len())]);
        }
        chosen.into_iter().collect()
    }

    /// 40 lowercase hex digits.
    fn token(&mut self) -> String {
        format!(
            "{:016x}{:016x}{:08x}",
            self.next_u64(),
            self.next_u64(),
            self.next_u64() >> 32
        )
    }

    /// A lowercase, dashed version-4 UUID.
    fn uuid(&mut self) -> String {
        let high = (self.next_u64() & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
        let low = (self.next_u64() & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }
}

/// A generated document and the clear-text tokens of its built-in accounts.
#[derive(Debug)]
pub struct Fixture {
    pub document: HubDocument,
    pub admin_token: String,
    pub deployer_token: String,
}

/// The admin token of the fixture made from `seed`: the seed as 40 hex digits.
pub fn admin_token(seed: u64) -> String {
    format!("{seed:040x}")
}

/// The deployer token of the fixture made from `seed`.
pub fn deployer_token(seed: u64) -> String {
    format!("{:08x}{seed:032x}", 2)
}

fn time(seconds_after_epoch: i64) -> String {
    backup::render_time(
        DateTime::from_timestamp(EPOCH + seconds_after_epoch, 0).unwrap_or_default(),
    )
}

/// Ids `1..` for `count` objects after the built-in ones, with the occasional hole where an
/// object was deleted.
fn ids(rng: &mut SplitMix64, builtin: usize, count: usize) -> Vec<i32> {
    let mut next = builtin as i32 + 1;
    let mut ids: Vec<i32> = (1..=builtin as i32).collect();
    while ids.len() < count {
        if rng.percent(4) {
            next += 1 + rng.below(3) as i32;
        }
        ids.push(next);
        next += 1;
    }
    ids
}

/// The lowest `count` addresses of a range, lowest first, as allocation hands them out.
fn addresses(pool: AddressPool, count: usize) -> Vec<String> {
    let mut addresses = Vec::with_capacity(count);
    let mut next = pool.lowest_free(std::iter::empty());
    while let Some(address) = next.filter(|_| addresses.len() < count) {
        addresses.push(address.to_string());
        // Each system takes one /30 block: the next lowest free address is four further on.
        next = Some(Ipv4Addr::from(u32::from(address) + 4)).filter(|a| pool.contains(*a));
    }
    addresses
}

const FIRST_NAMES: [&str; 32] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yasmin", "zoe",
    "amir", "beatriz", "chen", "dmitri", "elena", "farid", "gita", "hiro", "ines", "jonas",
    "kemal",
];
const LAST_NAMES: [&str; 24] = [
    "smith", "jones", "garcia", "muller", "rossi", "novak", "tanaka", "kim", "silva", "dubois",
    "kowalski", "nielsen", "okafor", "patel", "ivanova", "haddad", "schmidt", "larsen", "costa",
    "moreau", "fischer", "weber", "yilmaz", "lopez",
];
const DEPARTMENTS: [&str; 10] = [
    "Engineering",
    "Operations",
    "Support",
    "Sales",
    "Finance",
    "Security",
    "Data",
    "QA",
    "Design",
    "Contractors",
];
const KINDS: [&str; 12] = [
    "web", "api", "db", "cache", "queue", "worker", "lb", "mail", "dns", "build", "monitor",
    "backup",
];
const REGIONS: [&str; 6] = ["eu", "us", "ap", "sa", "af", "me"];
const SERVER_GROUP_THEMES: [&str; 10] = [
    "web",
    "databases",
    "edge",
    "batch",
    "eu",
    "us",
    "staging",
    "production",
    "canary",
    "legacy",
];
const TCP_PORTS: [&str; 12] = [
    "22",
    "80",
    "443",
    "80,443",
    "3306",
    "5432",
    "6379",
    "8080",
    "9090",
    "8000-8100",
    "9100-9200",
    "27017",
];
const UDP_PORTS: [&str; 7] = [
    "53",
    "123",
    "161",
    "500,4500",
    "1194",
    "5353",
    "60000-61000",
];
const RULE_PURPOSES: [&str; 8] = [
    "ssh",
    "web",
    "database",
    "monitoring",
    "dns",
    "vpn",
    "backups",
    "admin",
];
const POLICY_PURPOSES: [&str; 8] = [
    "web tier",
    "database access",
    "operations",
    "monitoring",
    "developers",
    "support",
    "batch jobs",
    "emergency",
];

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Port text for a rule of `protocol`: one to three entries, well-known or random, canonical.
fn ports(rng: &mut SplitMix64, protocol: Protocol) -> String {
    let choices: &[&str] = match protocol {
        Protocol::Tcp => &TCP_PORTS,
        Protocol::Udp => &UDP_PORTS,
        Protocol::Icmp | Protocol::All => return String::new(),
    };
    let entries: Vec<String> = (0..rng.between(1, 3))
        .map(|_| {
            if rng.percent(15) {
                let start = 1024 + rng.below(60_000);
                let end = start + 1 + rng.below(1_000);
                format!("{start}-{end}")
            } else {
                (*rng.pick(choices)).to_owned()
            }
        })
        .collect();
    PortSpec::parse(protocol, &entries.join(","))
        .map(|spec| spec.to_string())
        .unwrap_or_default()
}

/// Generates the fixture of `size` from `seed`. The result passes [`backup::validate`].
pub fn generate(size: Size, seed: u64) -> Fixture {
    let shape = size.shape();
    let mut rng = SplitMix64::new(seed);
    let key = SubnetKey::new(SUBNET_KEY);
    let user_pool = AddressPool::new(key, OverlayRange::Users);
    let server_pool = AddressPool::new(key, OverlayRange::Servers);
    let shape = Shape {
        servers: shape.servers.min(server_pool.capacity()),
        users: shape.users.min(user_pool.capacity()).max(2),
        groups: shape.groups.max(1),
        server_groups: shape.server_groups.max(1),
        ..shape
    };
    let admin_token = admin_token(seed);
    let deployer_token = deployer_token(seed);

    // Users: admin and deployer, then people.
    let user_ids = ids(&mut rng, 2, shape.users);
    let user_addresses = addresses(user_pool, shape.users);
    let mut digests: HashSet<String> = HashSet::new();
    let mut joined = 0i64;
    let mut users = Vec::with_capacity(shape.users);
    for (n, (&id, address)) in user_ids.iter().zip(user_addresses).enumerate() {
        joined += rng.below(6 * 3600) as i64;
        let token = match id {
            ADMIN_USER_ID => admin_token.clone(),
            DEPLOYER_USER_ID => deployer_token.clone(),
            _ => rng.token(),
        };
        let digest = TokenDigest::of(&token).as_str().to_owned();
        if !digests.insert(digest.clone()) {
            // 160 random bits do not collide; should they ever, the document would be refused.
            continue;
        }
        let mut user = UserRecord {
            id,
            username: String::new(),
            password_hash: Some(FIXTURE_PASSWORD_HASH.to_owned()),
            is_superuser: false,
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            is_active: true,
            date_joined: time(joined),
            token_digest: digest,
            profile: ProfileRecord {
                shared: false,
                ipv4_address: address,
            },
            permissions: Vec::new(),
        };
        match id {
            ADMIN_USER_ID => {
                user.username = ADMIN_USERNAME.into();
                user.is_superuser = true;
            }
            DEPLOYER_USER_ID => {
                user.username = DEPLOYER_USERNAME.into();
                user.password_hash = None;
            }
            _ => {
                let first = *rng.pick(&FIRST_NAMES);
                let last = *rng.pick(&LAST_NAMES);
                // `n` counts from 0 with admin: the first person is first.last2.
                user.username = format!("{first}.{last}{n}");
                user.first_name = capitalised(first);
                user.last_name = capitalised(last);
                user.email = format!("{}@example.com", user.username);
                // The first person is inactive and the second shares its address, whatever
                // the dice say, so that every fixture has both.
                user.is_active = n != 2 && rng.percent(95);
                user.profile.shared = n == 3 || rng.percent(10);
                user.is_superuser = n > 3 && rng.percent(2);
                if rng.percent(15) {
                    let count = rng.between(1, 4);
                    user.permissions = rng.sample(&catalogue_ids(), count);
                }
            }
        }
        users.push(user);
    }
    let user_ids: Vec<i32> = users.iter().map(|u| u.id).collect();
    let people: Vec<i32> = user_ids
        .iter()
        .copied()
        .filter(|id| !evon_domain::builtin::is_builtin_user(*id))
        .collect();

    // Groups: All Users, an empty one, then teams of 2 to 30.
    let group_ids = ids(&mut rng, 1, shape.groups);
    let groups: Vec<GroupRecord> = group_ids
        .iter()
        .enumerate()
        .map(|(n, &id)| {
            if id == ALL_USERS_GROUP_ID {
                return GroupRecord {
                    id,
                    name: ALL_USERS_GROUP_NAME.into(),
                    members: user_ids.clone(),
                    permissions: Vec::new(),
                };
            }
            let name = format!("{} {n}", rng.pick(&DEPARTMENTS));
            let members = if n == 1 {
                Vec::new()
            } else {
                let count = rng.between(2, 30);
                rng.sample(&people, count)
            };
            let permissions = if rng.percent(30) {
                let count = rng.between(1, 6);
                rng.sample(&catalogue_ids(), count)
            } else {
                Vec::new()
            };
            GroupRecord {
                id,
                name,
                members,
                permissions,
            }
        })
        .collect();

    // Servers, named by kind and often region, numbered per name.
    let server_ids = ids(&mut rng, 0, shape.servers);
    let server_addresses = addresses(server_pool, shape.servers);
    let mut numbers: BTreeMap<String, usize> = BTreeMap::new();
    let mut uuids: HashSet<String> = HashSet::new();
    let mut created = 0i64;
    let mut servers = Vec::with_capacity(shape.servers);
    for (&id, address) in server_ids.iter().zip(server_addresses) {
        let kind = *rng.pick(&KINDS);
        let stem = if rng.percent(60) {
            format!("{kind}-{}", rng.pick(&REGIONS))
        } else {
            kind.to_owned()
        };
        let number = numbers.entry(stem.clone()).or_insert(0);
        *number += 1;
        let hostname = format!("{stem}-{number:03}");
        let mut uuid = rng.uuid();
        while !uuids.insert(uuid.clone()) {
            uuid = rng.uuid();
        }
        created += 60 + rng.below(2 * 3600) as i64;
        let connected = rng.percent(75);
        let disconnected_since = (!connected && rng.percent(80))
            .then(|| time(created + 3600 + rng.below(90 * 86_400) as i64));
        servers.push(ServerRecord {
            id,
            uuid,
            fqdn: format!("{hostname}.{DOMAIN}"),
            ipv4_address: address,
            connected,
            disconnected_since,
            created_at: time(created),
        });
    }
    let server_ids: Vec<i32> = servers.iter().map(|s| s.id).collect();

    // Server groups: All Servers, then groups every server joins one to three of.
    let server_group_ids = ids(&mut rng, 1, shape.server_groups);
    let others: Vec<i32> = server_group_ids[1..].to_vec();
    let mut members: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &server in &server_ids {
        let count = rng.between(1, 3);
        for group in rng.sample(&others, count) {
            members.entry(group).or_default().push(server);
        }
    }
    let server_groups: Vec<ServerGroupRecord> = server_group_ids
        .iter()
        .enumerate()
        .map(|(n, &id)| {
            if id == ALL_SERVERS_GROUP_ID {
                return ServerGroupRecord {
                    id,
                    name: ALL_SERVERS_GROUP_NAME.into(),
                    description: Some(ALL_SERVERS_GROUP_DESCRIPTION.into()),
                    members: server_ids.clone(),
                };
            }
            let name = format!("{} {n}", rng.pick(&SERVER_GROUP_THEMES));
            let description = rng.percent(50).then(|| format!("The {name} fleet"));
            ServerGroupRecord {
                id,
                name,
                description,
                // Servers were visited in ascending order, so each list already ascends.
                members: members.remove(&id).unwrap_or_default(),
            }
        })
        .collect();

    // Rules: 60% TCP, 20% UDP, 10% ICMP, 10% ALL, sources of every kind.
    let rule_ids = ids(&mut rng, 0, shape.rules);
    let rules: Vec<RuleRecord> = rule_ids
        .iter()
        .enumerate()
        .map(|(n, &id)| {
            // The first four rules are one of each protocol, and the first has every kind of
            // source, so that every fixture covers them.
            let protocol = match n {
                0..=3 => Protocol::CHOICES[n],
                _ => match rng.below(10) {
                    0..=5 => Protocol::Tcp,
                    6 | 7 => Protocol::Udp,
                    8 => Protocol::Icmp,
                    _ => Protocol::All,
                },
            };
            let least = usize::from(n == 0);
            let mut sources = |from: &[i32]| {
                let count = rng.between(least, 5);
                rng.sample(from, count)
            };
            let source_users = sources(&user_ids);
            let source_groups = sources(&group_ids);
            let source_servers = sources(&server_ids);
            let source_servergroups = sources(&server_group_ids);
            RuleRecord {
                id,
                name: format!("{} {}", rng.pick(&RULE_PURPOSES), n + 1),
                destination_protocol: protocol.as_str().to_owned(),
                destination_ports: ports(&mut rng, protocol),
                source_users,
                source_groups,
                source_servers,
                source_servergroups,
            }
        })
        .collect();

    // Policies: one to five rules aimed at up to five servers and three server groups.
    let policy_ids = ids(&mut rng, 0, shape.policies);
    let policies: Vec<PolicyRecord> = policy_ids
        .iter()
        .enumerate()
        .map(|(n, &id)| {
            let least = usize::from(n == 0);
            let name = format!("{} {}", rng.pick(&POLICY_PURPOSES), n + 1);
            let description = rng.percent(50).then(|| format!("Access for {name}"));
            let count = rng.between(1, 5);
            let rules = rng.sample(&rule_ids, count);
            let count = rng.between(least, 5);
            let servers = rng.sample(&server_ids, count);
            let count = rng.between(least, 3);
            let servergroups = rng.sample(&server_group_ids, count);
            PolicyRecord {
                id,
                name,
                description,
                rules,
                servers,
                servergroups,
            }
        })
        .collect();

    let config = Config::initial();
    Fixture {
        document: HubDocument {
            format: backup::FORMAT.to_owned(),
            version: backup::VERSION,
            hub: HubRecord {
                domain: DOMAIN.to_owned(),
                subnet_key: i64::from(SUBNET_KEY),
            },
            config: ConfigRecord {
                timezone: config.timezone.name().to_owned(),
                auto_update: config.auto_update,
                auto_update_time: config.auto_update_time.to_string(),
                discovery_mode: config.discovery_mode,
                uuid_blacklist: config.uuid_blacklist.to_string(),
                uuid_whitelist: config.uuid_whitelist.to_string(),
                ec2_iam_role_status: config.ec2_iam_role_status,
            },
            users,
            groups,
            servers,
            server_groups,
            rules,
            policies,
        },
        admin_token,
        deployer_token,
    }
}

fn catalogue_ids() -> Vec<i32> {
    CATALOGUE.iter().map(|p| p.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_hash_verifies() {
        assert!(evon_crypto::verify_password(
            FIXTURE_PASSWORD,
            FIXTURE_PASSWORD_HASH
        ));
        assert!(!evon_crypto::verify_password(
            "other",
            FIXTURE_PASSWORD_HASH
        ));
    }

    #[test]
    fn the_generator_is_fixed() {
        // splitmix64's published first outputs for seed 0: a changed generator fails here.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut rng = SplitMix64::new(7);
        for _ in 0..1_000 {
            let uuid = rng.uuid();
            assert_eq!(
                evon_domain::validate::ServerUuid::parse(&uuid)
                    .unwrap()
                    .as_str(),
                uuid
            );
            assert_eq!(rng.token().len(), 40);
            assert!(rng.between(2, 4) >= 2);
        }
    }

    #[test]
    fn builtin_tokens_come_from_the_seed() {
        assert_eq!(admin_token(1), format!("{}1", "0".repeat(39)));
        assert_eq!(deployer_token(1), format!("00000002{}1", "0".repeat(31)));
        assert_eq!(admin_token(u64::MAX).len(), 40);
        assert_eq!(deployer_token(u64::MAX).len(), 40);
    }

    fn counts(doc: &HubDocument) -> [usize; 6] {
        [
            doc.servers.len(),
            doc.users.len(),
            doc.groups.len(),
            doc.server_groups.len(),
            doc.rules.len(),
            doc.policies.len(),
        ]
    }

    #[test]
    fn every_size_is_valid_and_has_its_counts() {
        for (size, expected) in [
            (Size::Small, [12, 8, 5, 4, 8, 4]),
            (Size::OneK, [1_000, 200, 50, 40, 300, 200]),
            (Size::TenK, [2_000, 1_000, 300, 200, 2_000, 1_000]),
        ] {
            for seed in [1, 2, u64::MAX] {
                let fixture = generate(size, seed);
                assert_eq!(
                    backup::validate(&fixture.document),
                    Ok(()),
                    "{size:?} {seed}"
                );
                assert_eq!(counts(&fixture.document), expected, "{size:?} {seed}");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_document() {
        let json = |seed| backup::to_json(&generate(Size::OneK, seed).document);
        assert_eq!(json(1), json(1));
        assert_ne!(json(1), json(2));
    }

    #[test]
    fn small_covers_every_kind() {
        let doc = generate(Size::Small, 1).document;
        assert!(doc.users.iter().any(|u| !u.is_active));
        assert!(doc.users.iter().any(|u| u.profile.shared));
        assert!(doc.groups.iter().any(|g| g.members.is_empty()));
        let protocols: BTreeSet<&str> = doc
            .rules
            .iter()
            .map(|r| r.destination_protocol.as_str())
            .collect();
        assert_eq!(protocols, BTreeSet::from(["ALL", "ICMP", "TCP", "UDP"]));
        let rule = &doc.rules[0];
        assert!(!rule.source_users.is_empty());
        assert!(!rule.source_groups.is_empty());
        assert!(!rule.source_servers.is_empty());
        assert!(!rule.source_servergroups.is_empty());
        assert!(!doc.policies[0].servers.is_empty());
        assert!(!doc.policies[0].servergroups.is_empty());
        assert!(doc
            .servers
            .iter()
            .any(|s| !s.connected && s.disconnected_since.is_some()));
        assert_eq!(doc.users[0].username, "admin");
        assert_eq!(
            doc.users[0].token_digest,
            TokenDigest::of(&admin_token(1)).as_str()
        );
        assert_eq!(doc.users[1].password_hash, None);
        assert_eq!(doc.servers[0].ipv4_address, "100.111.224.6");
        assert_eq!(doc.servers[1].ipv4_address, "100.111.224.10");
        assert_eq!(doc.users[2].profile.ipv4_address, "100.111.208.14");
    }

    #[test]
    fn names_look_real() {
        let doc = generate(Size::OneK, 1).document;
        let person = &doc.users[2];
        assert!(person.username.ends_with('2'), "{}", person.username);
        assert!(person.username.contains('.'));
        assert!(doc
            .servers
            .iter()
            .all(|s| s.fqdn.ends_with(".hub.example.com")));
        assert!(doc.servers.iter().any(|s| s.fqdn.matches('-').count() == 2));
        let sizes: Vec<usize> = doc.groups[2..].iter().map(|g| g.members.len()).collect();
        assert!(sizes.iter().all(|n| (2..=30).contains(n)), "{sizes:?}");
        for server in &doc.servers {
            let groups = doc
                .server_groups
                .iter()
                .filter(|g| g.members.contains(&server.id))
                .count();
            assert!(
                (2..=4).contains(&groups),
                "server {} in {groups}",
                server.id
            );
        }
    }
}
