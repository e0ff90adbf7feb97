//! The access engine against a naive model written straight from the access semantics (loops
//! over everything, no indexes), on many generated networks full of dangling and duplicate ids;
//! and the engine at the size of a large deployment.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use evon_domain::access::{
    AccessIndex, AllowEntry, AllowParts, GroupNode, NetworkSnapshot, PolicyNode, ResolvedPair,
    RuleNode, ServerGroupNode, ServerNode, UserNode,
};
use evon_domain::rule::{PortSpec, Protocol};

mod support;
use support::{address, random_network, XorShift};

/// The semantics, spelled out. Of two nodes with one id the first counts, as documented.
struct Model<'a>(&'a NetworkSnapshot);

impl Model<'_> {
    fn user(&self, id: i32) -> Option<&UserNode> {
        self.0.users.iter().find(|u| u.id == id)
    }

    fn server(&self, id: i32) -> Option<&ServerNode> {
        self.0.servers.iter().find(|s| s.id == id)
    }

    fn active(&self, id: i32) -> bool {
        self.user(id).is_some_and(|u| u.active)
    }

    fn in_group(&self, group: i32, user: i32) -> bool {
        self.0
            .groups
            .iter()
            .find(|g| g.id == group)
            .is_some_and(|g| g.members.contains(&user))
    }

    fn in_server_group(&self, group: i32, server: i32) -> bool {
        self.0
            .server_groups
            .iter()
            .find(|g| g.id == group)
            .is_some_and(|g| g.members.contains(&server))
    }

    fn rule(&self, id: i32) -> Option<&RuleNode> {
        self.0
            .rules
            .iter()
            .find(|r| r.id == id)
            .filter(|r| r.ports.suits(r.protocol))
    }

    fn sources_user(&self, rule: &RuleNode, user: i32) -> bool {
        self.active(user)
            && (rule.source_users.contains(&user)
                || rule.source_groups.iter().any(|&g| self.in_group(g, user)))
    }

    fn sources_server(&self, rule: &RuleNode, server: i32) -> bool {
        self.server(server).is_some()
            && (rule.source_servers.contains(&server)
                || rule
                    .source_servergroups
                    .iter()
                    .any(|&g| self.in_server_group(g, server)))
    }

    fn targets(&self, policy: &PolicyNode, server: i32) -> bool {
        self.server(server).is_some()
            && (policy.servers.contains(&server)
                || policy
                    .servergroups
                    .iter()
                    .any(|&g| self.in_server_group(g, server)))
    }

    fn user_ids(&self) -> Vec<i32> {
        let ids: BTreeSet<i32> = self.0.users.iter().map(|u| u.id).collect();
        ids.into_iter().collect()
    }

    fn server_ids(&self) -> Vec<i32> {
        let ids: BTreeSet<i32> = self.0.servers.iter().map(|s| s.id).collect();
        ids.into_iter().collect()
    }

    fn policies(&self) -> Vec<&PolicyNode> {
        let ids: BTreeSet<i32> = self.0.policies.iter().map(|p| p.id).collect();
        ids.into_iter()
            .filter_map(|id| self.0.policies.iter().find(|p| p.id == id))
            .collect()
    }

    fn resolved(&self) -> Vec<ResolvedPair> {
        let mut pairs = Vec::new();
        for policy in self.policies() {
            let rule_ids: BTreeSet<i32> = policy.rules.iter().copied().collect();
            for rule in rule_ids.into_iter().filter_map(|id| self.rule(id)) {
                pairs.push(ResolvedPair {
                    policy_id: policy.id,
                    rule_id: rule.id,
                    protocol: rule.protocol,
                    ports: rule.ports.clone(),
                    source_users: self
                        .user_ids()
                        .into_iter()
                        .filter(|&u| self.sources_user(rule, u))
                        .collect(),
                    source_servers: self
                        .server_ids()
                        .into_iter()
                        .filter(|&s| self.sources_server(rule, s))
                        .collect(),
                    targets: self
                        .server_ids()
                        .into_iter()
                        .filter(|&s| self.targets(policy, s))
                        .collect(),
                });
            }
        }
        pairs
    }

    fn can_reach(&self, user: i32, server: i32) -> bool {
        self.policies().iter().any(|policy| {
            self.targets(policy, server)
                && policy
                    .rules
                    .iter()
                    .filter_map(|&id| self.rule(id))
                    .any(|rule| self.sources_user(rule, user))
        })
    }

    fn allow_list(&self) -> Vec<AllowEntry> {
        self.resolved()
            .into_iter()
            .filter_map(|pair| {
                let sources: BTreeSet<Ipv4Addr> = pair
                    .source_users
                    .iter()
                    .filter_map(|&u| self.user(u))
                    .map(|u| u.address)
                    .chain(
                        pair.source_servers
                            .iter()
                            .filter_map(|&s| self.server(s))
                            .map(|s| s.address),
                    )
                    .collect();
                let targets: BTreeSet<Ipv4Addr> = pair
                    .targets
                    .iter()
                    .filter_map(|&s| self.server(s))
                    .map(|s| s.address)
                    .collect();
                (!sources.is_empty() && !targets.is_empty()).then(|| AllowEntry {
                    policy_id: pair.policy_id,
                    rule_id: pair.rule_id,
                    sources: sources.into_iter().collect(),
                    targets: targets.into_iter().collect(),
                    protocol: pair.protocol,
                    ports: pair.ports,
                })
            })
            .collect()
    }

    fn shared(&self) -> Vec<Ipv4Addr> {
        let shared: BTreeSet<Ipv4Addr> = self
            .user_ids()
            .into_iter()
            .filter_map(|id| self.user(id))
            .filter(|u| u.active && u.shared)
            .map(|u| u.address)
            .collect();
        shared.into_iter().collect()
    }
}

/// The flat allow-list the factored one stands for: every rule of every policy, as long as both
/// sides hold an address.
fn expand(parts: &AllowParts) -> Vec<AllowEntry> {
    let mut entries = Vec::new();
    for (&policy_id, policy) in &parts.policies {
        for rule_id in &policy.rules {
            let rule = &parts.rules[rule_id];
            if rule.sources.is_empty() || policy.targets.is_empty() {
                continue;
            }
            entries.push(AllowEntry {
                policy_id,
                rule_id: *rule_id,
                sources: rule.sources.clone(),
                targets: policy.targets.clone(),
                protocol: rule.protocol,
                ports: rule.ports.clone(),
            });
        }
    }
    entries
}

#[test]
fn engine_agrees_with_the_naive_model() {
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut reached = 0;
    for round in 0..3_000 {
        let network = random_network(&mut rng);
        let index = AccessIndex::build(&network);
        let model = Model(&network);
        assert_eq!(
            index.resolved(),
            model.resolved(),
            "round {round}: {network:#?}"
        );
        assert_eq!(index.allow_list(), model.allow_list(), "round {round}");
        assert_eq!(
            expand(&index.allow_parts()),
            model.allow_list(),
            "round {round}"
        );
        assert_eq!(
            index.shared_user_addresses(),
            model.shared(),
            "round {round}"
        );
        let servers: Vec<i32> = (-1..=9).chain([1000, 1001]).collect();
        for user in (-1..=9).chain([1000, 1001]) {
            let expected: Vec<i32> = servers
                .iter()
                .copied()
                .filter(|&s| model.can_reach(user, s))
                .collect();
            for &server in &servers {
                assert_eq!(
                    index.can_reach(user, server),
                    model.can_reach(user, server),
                    "round {round}: user {user} server {server}: {network:#?}"
                );
            }
            assert_eq!(index.reachable_servers(user), expected, "round {round}");
            reached += expected.len();
        }
    }
    assert!(
        reached > 1_000,
        "the generator should produce reachable servers"
    );
}

#[test]
fn snapshots_read_from_json_with_defaults_and_validated_ports() {
    let network: NetworkSnapshot = serde_json::from_str(
        r#"{"users": [{"id": 1, "active": true, "address": "100.111.208.6"}],
            "rules": [{"id": 1, "protocol": "ICMP"}],
            "policies": [{"id": 1}]}"#,
    )
    .unwrap();
    assert!(!network.users[0].shared);
    assert!(network.rules[0].ports.is_empty() && network.rules[0].source_users.is_empty());
    assert!(network.servers.is_empty() && network.policies[0].rules.is_empty());
    assert_eq!(
        serde_json::from_str::<NetworkSnapshot>("{}").unwrap(),
        NetworkSnapshot::default()
    );

    let error = serde_json::from_str::<NetworkSnapshot>(
        r#"{"rules": [{"id": 1, "protocol": "TCP", "ports": "80,70000"}]}"#,
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("Port '70000' is out of range, ports must be between 0 and 65535."),
        "{error}"
    );
    assert!(serde_json::from_str::<NetworkSnapshot>(
        r#"{"rules": [{"id": 1, "protocol": "tcp", "ports": "80"}]}"#
    )
    .is_err());
}

/// A large deployment: 2,000 users and 10,000 servers, everyone in All Users and All Servers,
/// several policies aimed at All Servers for All Users (the case that makes naive per-user unions
/// blow up), plus many small groups and policies.
#[test]
fn large_network_answers_correctly() {
    const USERS: i32 = 2_000;
    const SERVERS: i32 = 10_000;
    let mut network = NetworkSnapshot {
        users: (1..=USERS)
            .map(|id| UserNode {
                id,
                active: id % 50 != 0,
                address: address(208, id as usize),
                shared: id % 500 == 7,
            })
            .collect(),
        servers: (1..=SERVERS)
            .map(|id| ServerNode {
                id,
                address: address(224, id as usize),
            })
            .collect(),
        ..NetworkSnapshot::default()
    };
    network.groups.push(GroupNode {
        id: 1,
        members: (1..=USERS).collect(),
    });
    network.server_groups.push(ServerGroupNode {
        id: 1,
        members: (1..=SERVERS).collect(),
    });
    for g in 2..=100 {
        network.groups.push(GroupNode {
            id: g,
            members: (0..40).map(|k| (g * 37 + k * 13) % USERS + 1).collect(),
        });
        network.server_groups.push(ServerGroupNode {
            id: g,
            members: (0..100).map(|k| (g * 101 + k * 7) % SERVERS + 1).collect(),
        });
    }
    for r in 1..=300 {
        network.rules.push(RuleNode {
            id: r,
            protocol: Protocol::Tcp,
            ports: PortSpec::parse(Protocol::Tcp, &format!("{}", 1000 + r)).unwrap(),
            source_users: vec![r % USERS + 1],
            source_groups: if r <= 5 { vec![1] } else { vec![r % 99 + 2] },
            source_servers: vec![r * 3 % SERVERS + 1],
            source_servergroups: vec![],
        });
    }
    for p in 1..=100 {
        network.policies.push(PolicyNode {
            id: p,
            rules: (0..3).map(|k| (p * 3 + k) % 300 + 1).collect(),
            servers: vec![p * 17 % SERVERS + 1],
            servergroups: if p <= 5 { vec![1] } else { vec![p % 99 + 2] },
        });
    }
    // Policies 1 to 5 aim All Servers; make each hold one of the rules sourcing All Users.
    for p in 1..=5 {
        network.policies[p - 1].rules.push(p as i32);
    }

    let index = AccessIndex::build(&network);
    let mut reachable = 0;
    for user in (1..=USERS).step_by(20) {
        reachable += index.reachable_servers(user).len();
    }
    let mut granted = 0;
    for user in 1..=USERS {
        for server in (1..=SERVERS).step_by(97) {
            granted += usize::from(index.can_reach(user, server));
        }
    }
    let entries = index.allow_list();

    // Every active user is in All Users, which policies 1 to 5 let reach every server.
    assert_eq!(index.reachable_servers(1).len(), SERVERS as usize);
    assert!(index.reachable_servers(50).is_empty(), "inactive");
    assert!(reachable >= 95 * SERVERS as usize);
    assert_eq!(
        granted,
        (USERS - USERS / 50) as usize * (1..=SERVERS).step_by(97).count()
    );
    assert_eq!(entries.len(), index.resolved().len());
    assert_eq!(index.shared_user_addresses().len(), 4);
}
