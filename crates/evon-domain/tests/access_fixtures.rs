//! The access engine on the hand-made networks in `fixtures/access`: snapshots of what it
//! resolves, of the firewall allow-list and of who reaches what, plus targeted checks of the edge
//! case each fixture is there for, so that a wrong snapshot cannot be accepted unnoticed.

#![allow(clippy::unwrap_used)]

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use evon_domain::access::{AccessIndex, AllowEntry, NetworkSnapshot, ResolvedPair};
use evon_domain::rule::Protocol;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/access");

/// A fixture: its snapshot and its description (which the snapshot itself ignores).
struct Fixture {
    name: String,
    description: String,
    network: NetworkSnapshot,
}

fn read(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let network: NetworkSnapshot = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let description = json["description"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no description", path.display()))
        .to_owned();
    let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
    Fixture {
        name,
        description,
        network,
    }
}

fn all_fixtures() -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "fixtures missing from {FIXTURES}");
    paths.iter().map(|path| read(path)).collect()
}

fn load(name: &str) -> (NetworkSnapshot, AccessIndex) {
    let fixture = read(&Path::new(FIXTURES).join(format!("{name}.json")));
    let index = AccessIndex::build(&fixture.network);
    (fixture.network, index)
}

fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".into();
    }
    ids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn addresses(addresses: &[Ipv4Addr]) -> String {
    addresses
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn what(protocol: Protocol, ports: &evon_domain::PortSpec) -> String {
    if ports.is_empty() {
        protocol.to_string()
    } else {
        format!("{protocol} {ports}")
    }
}

fn render_resolved(pairs: &[ResolvedPair]) -> String {
    let mut out = String::new();
    for pair in pairs {
        writeln!(
            out,
            "policy {} rule {}: {}",
            pair.policy_id,
            pair.rule_id,
            what(pair.protocol, &pair.ports)
        )
        .unwrap();
        writeln!(out, "  source users:   {}", ids(&pair.source_users)).unwrap();
        writeln!(out, "  source servers: {}", ids(&pair.source_servers)).unwrap();
        writeln!(out, "  targets:        {}", ids(&pair.targets)).unwrap();
    }
    out
}

fn render_allow_list(entries: &[AllowEntry], shared: &[Ipv4Addr]) -> String {
    let mut out = String::new();
    for entry in entries {
        writeln!(
            out,
            "policy {} rule {}: {}",
            entry.policy_id,
            entry.rule_id,
            what(entry.protocol, &entry.ports)
        )
        .unwrap();
        writeln!(out, "  from {}", addresses(&entry.sources)).unwrap();
        writeln!(out, "  to   {}", addresses(&entry.targets)).unwrap();
    }
    writeln!(out, "shared users: {}", addresses(shared)).unwrap();
    out
}

/// One row per user, one column per server, as listed (of two users with one id, the first
/// only): `x` where the user can reach the server.
fn render_reachability(network: &NetworkSnapshot, index: &AccessIndex) -> String {
    let mut out = String::from("user         ");
    for server in &network.servers {
        write!(out, " s{:<3}", server.id).unwrap();
    }
    out.push('\n');
    let mut seen = std::collections::HashSet::new();
    for user in network.users.iter().filter(|u| seen.insert(u.id)) {
        let label = format!("u{}{}", user.id, if user.active { "" } else { " inactive" });
        write!(out, "{label:<13}").unwrap();
        for server in &network.servers {
            let mark = if index.can_reach(user.id, server.id) {
                "x"
            } else {
                "."
            };
            write!(out, " {mark:<4}").unwrap();
        }
        out.push('\n');
    }
    out.lines()
        .map(|line| format!("{}\n", line.trim_end()))
        .collect()
}

/// Properties every network must have, whatever it holds.
fn check_invariants(name: &str, network: &NetworkSnapshot, index: &AccessIndex) {
    let pairs = index.resolved();
    let keys: Vec<(i32, i32)> = pairs.iter().map(|p| (p.policy_id, p.rule_id)).collect();
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "{name}: pairs out of order: {keys:?}"
    );
    for pair in &pairs {
        for list in [&pair.source_users, &pair.source_servers, &pair.targets] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{name}: {pair:?}");
        }
        assert!(pair.ports.suits(pair.protocol), "{name}: {pair:?}");
    }

    // The allow-list is exactly the pairs with a source and a target.
    let allowed: Vec<(i32, i32)> = index
        .allow_list()
        .iter()
        .map(|e| (e.policy_id, e.rule_id))
        .collect();
    let expected: Vec<(i32, i32)> = pairs
        .iter()
        .filter(|p| {
            let has_source = !p.source_users.is_empty() || !p.source_servers.is_empty();
            has_source && !p.targets.is_empty()
        })
        .map(|p| (p.policy_id, p.rule_id))
        .collect();
    assert_eq!(allowed, expected, "{name}");
    for entry in index.allow_list() {
        assert!(!entry.sources.is_empty() && !entry.targets.is_empty());
        assert!(entry.sources.windows(2).all(|w| w[0] < w[1]), "{name}");
        assert!(entry.targets.windows(2).all(|w| w[0] < w[1]), "{name}");
    }

    // reachable_servers is can_reach over every server, for every user and for strangers.
    let user_ids = network.users.iter().map(|u| u.id).chain([0, -1, 12345]);
    for user in user_ids {
        let filtered: Vec<i32> = {
            let mut all: Vec<i32> = network.servers.iter().map(|s| s.id).collect();
            all.sort_unstable();
            all.dedup();
            all.into_iter()
                .filter(|&server| index.can_reach(user, server))
                .collect()
        };
        assert_eq!(
            index.reachable_servers(user),
            filtered,
            "{name}: user {user}"
        );
        assert!(!index.can_reach(user, 12345), "{name}: unknown server");
    }

    // Inactive users are nowhere: not sources, not in the allow-list, reaching nothing. (When
    // two users share an id the first counts, so only ids whose first user is inactive count.)
    let mut seen = std::collections::HashSet::new();
    for user in &network.users {
        if !seen.insert(user.id) || user.active {
            continue;
        }
        assert!(
            pairs.iter().all(|p| !p.source_users.contains(&user.id)),
            "{name}: inactive user {} sourced",
            user.id
        );
        assert!(index.reachable_servers(user.id).is_empty());
        let active_elsewhere = network
            .users
            .iter()
            .any(|u| u.active && u.address == user.address);
        if !active_elsewhere {
            assert!(
                index
                    .allow_list()
                    .iter()
                    .all(|e| !e.sources.contains(&user.address)),
                "{name}: inactive user {} in the allow-list",
                user.id
            );
            assert!(!index.shared_user_addresses().contains(&user.address));
        }
    }
}

#[test]
fn fixtures_snapshot() {
    for fixture in all_fixtures() {
        let index = AccessIndex::build(&fixture.network);
        check_invariants(&fixture.name, &fixture.network, &index);
        let mut settings = insta::Settings::clone_current();
        settings.set_description(fixture.description.clone());
        settings.bind(|| {
            insta::assert_snapshot!(
                format!("{}__resolved", fixture.name),
                render_resolved(&index.resolved())
            );
            insta::assert_snapshot!(
                format!("{}__allow_list", fixture.name),
                render_allow_list(&index.allow_list(), &index.shared_user_addresses())
            );
            insta::assert_snapshot!(
                format!("{}__reachability", fixture.name),
                render_reachability(&fixture.network, &index)
            );
        });
    }
}

#[test]
fn fixtures_survive_a_json_round_trip() {
    for fixture in all_fixtures() {
        let json = serde_json::to_string(&fixture.network).unwrap();
        let back: NetworkSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, fixture.network, "{}", fixture.name);
    }
}

fn pair(index: &AccessIndex, policy_id: i32, rule_id: i32) -> ResolvedPair {
    index
        .resolved()
        .into_iter()
        .find(|p| p.policy_id == policy_id && p.rule_id == rule_id)
        .unwrap_or_else(|| panic!("no pair for policy {policy_id} rule {rule_id}"))
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

#[test]
fn every_source_and_target_kind_counts() {
    let (_, index) = load("kinds");
    // A user directly, a group's members, a server directly, a server group's members.
    assert_eq!(pair(&index, 1000, 100).source_users, [3]);
    assert_eq!(pair(&index, 1001, 101).source_users, [3, 4]);
    assert_eq!(pair(&index, 1002, 102).source_servers, [4]);
    assert_eq!(pair(&index, 1002, 103).source_servers, [1, 2]);
    // Everything at once, and both target kinds at once.
    let mixed = pair(&index, 1003, 104);
    assert_eq!(mixed.source_users, [3, 4, 5]);
    assert_eq!(mixed.source_servers, [1, 4]);
    assert_eq!(mixed.targets, [3, 4]);
    // A server target, a server group target.
    assert_eq!(pair(&index, 1000, 100).targets, [3]);
    assert_eq!(pair(&index, 1001, 101).targets, [1, 2]);

    assert_eq!(index.reachable_servers(3), [1, 2, 3, 4]);
    assert_eq!(index.reachable_servers(5), [3, 4]);
    // Members of All Users that no rule names reach nothing.
    assert!(index.reachable_servers(1).is_empty());
    assert!(index.reachable_servers(2).is_empty());
    // Servers as sources let servers through, never a user: nobody reaches via rules 102/103.
    assert!(!index.can_reach(5, 1));

    let dns = index
        .allow_list()
        .into_iter()
        .find(|e| e.rule_id == 102)
        .unwrap();
    assert_eq!(dns.sources, [ip("100.111.224.18")]);
    assert_eq!(dns.targets.len(), 4);
    assert_eq!(dns.protocol, Protocol::Udp);
    assert_eq!(dns.ports.to_string(), "53");
}

#[test]
fn shared_rules_and_overlapping_groups() {
    let (_, index) = load("overlaps");
    // Policies and rule lists were given out of order.
    let keys: Vec<(i32, i32)> = index
        .resolved()
        .iter()
        .map(|p| (p.policy_id, p.rule_id))
        .collect();
    assert_eq!(keys, [(1, 10), (1, 12), (2, 10), (2, 11), (2, 13), (3, 10)]);
    // Rule 10 appears once per policy holding it, each time with that policy's targets.
    assert_eq!(pair(&index, 1, 10).targets, [1, 2, 3]);
    assert_eq!(pair(&index, 2, 10).targets, [3, 4, 5]);
    assert_eq!(pair(&index, 3, 10).targets, [1, 2, 3, 4, 5]);
    // Server 3 sits in three server groups and is listed once per pair.
    assert_eq!(
        index
            .allow_list()
            .iter()
            .filter(|e| e.targets.contains(&ip("100.111.224.14")))
            .count(),
        6
    );
    // Ports are normalised by number; ALL carries none.
    assert_eq!(pair(&index, 1, 12).ports.to_string(), "80,443,8000-8080");
    assert_eq!(pair(&index, 2, 13).ports.to_string(), "500,1194-1195,4500");
    assert_eq!(pair(&index, 2, 11).protocol, Protocol::All);
    assert!(pair(&index, 2, 11).ports.is_empty());

    // User 1 through two rules of policy 2, user 3 directly and user 2 through a group.
    assert_eq!(index.reachable_servers(1), [3, 4, 5]);
    assert_eq!(index.reachable_servers(2), [1, 2, 3, 4, 5]);
    assert_eq!(index.reachable_servers(3), [1, 2, 3]);
    assert_eq!(pair(&index, 1, 12).source_users, [2, 3]);
}

#[test]
fn inactive_users_reach_nothing_and_get_no_rules() {
    let (_, index) = load("inactive_and_shared");
    // Sourced directly only: the pair stays, with no users, and allows nothing.
    let direct = pair(&index, 1, 1);
    assert!(direct.source_users.is_empty() && direct.source_servers.is_empty());
    assert!(index.allow_list().iter().all(|e| e.rule_id != 1));
    // Sourced through a group: only the active member remains.
    assert_eq!(pair(&index, 1, 2).source_users, [3]);
    // Inactive users next to a server source: the server alone remains.
    let icmp = index
        .allow_list()
        .into_iter()
        .find(|e| e.rule_id == 3)
        .unwrap();
    assert_eq!(icmp.sources, [ip("100.111.224.10")]);
    for inactive in [2, 4] {
        assert!(index.reachable_servers(inactive).is_empty());
        assert!(!index.can_reach(inactive, 1));
    }
    assert!(index.can_reach(3, 1));
    assert!(!index.can_reach(3, 2));
    // Shared: the active user only.
    assert_eq!(index.shared_user_addresses(), [ip("100.111.208.6")]);
    let everywhere: Vec<Ipv4Addr> = index
        .allow_list()
        .iter()
        .flat_map(|e| e.sources.clone())
        .collect();
    assert!(!everywhere.contains(&ip("100.111.208.10")));
    assert!(!everywhere.contains(&ip("100.111.208.18")));
}

#[test]
fn empty_parts_allow_nothing() {
    let (_, index) = load("empty_parts");
    // A policy with no rules has no pairs.
    assert!(index.resolved().iter().all(|p| p.policy_id != 1));
    // A policy with no targets, and one whose only target group is empty.
    assert!(pair(&index, 2, 4).targets.is_empty());
    assert!(pair(&index, 3, 4).targets.is_empty());
    // A rule with no sources, one sourcing an empty group, one sourcing an empty server group.
    for rule in [1, 2, 3] {
        let p = pair(&index, 4, rule);
        assert!(p.source_users.is_empty() && p.source_servers.is_empty());
    }
    let allowed: Vec<(i32, i32)> = index
        .allow_list()
        .iter()
        .map(|e| (e.policy_id, e.rule_id))
        .collect();
    assert_eq!(allowed, [(4, 4)]);
    assert_eq!(index.reachable_servers(1), [2]);
    assert!(index.reachable_servers(2).is_empty());
    assert!(index.shared_user_addresses().is_empty());
}

#[test]
fn dangling_ids_are_ignored() {
    let (_, index) = load("dangling");
    let ssh = pair(&index, 1, 1);
    assert_eq!(ssh.source_users, [1, 2]);
    assert!(ssh.source_servers.is_empty());
    assert_eq!(ssh.targets, [1, 2]);
    // The ICMP rule with ports and the unknown rule 88 make no pair.
    assert!(index
        .resolved()
        .iter()
        .all(|p| p.rule_id != 2 && p.rule_id != 88));
    assert!(index.resolved().iter().all(|p| p.policy_id != 2));
    // Unknown servers as sources vanish; unknown members of a server group too.
    assert_eq!(pair(&index, 1, 3).source_servers, [1, 2]);
    // Targets that all name nothing leave the policy without targets.
    assert!(pair(&index, 3, 1).targets.is_empty());
    // Sources that all name nothing leave the rule without sources.
    let ghost = pair(&index, 4, 4);
    assert!(ghost.source_users.is_empty() && ghost.source_servers.is_empty());
    // The first of the two users with id 2 (active, not shared) counts.
    assert_eq!(index.reachable_servers(2), [1, 2]);
    assert!(index.shared_user_addresses().is_empty());
    let sources: Vec<Ipv4Addr> = index
        .allow_list()
        .iter()
        .flat_map(|e| e.sources.clone())
        .collect();
    assert!(!sources.contains(&ip("100.111.208.14")));
    assert!(!index.can_reach(77, 1) && !index.can_reach(1, 99));
}
