//! The access engine: who may reach what, worked out from a plain snapshot of the network.
//!
//! A policy allows each of its rules toward each of its target servers (its servers and the
//! members of its server groups); a rule names the sources it lets through (its users, the members
//! of its groups, its servers, the members of its server groups). Everything is default deny.
//!
//! [`AccessIndex::build`] resolves every group to its members once, so that the work done is in
//! proportion to the network and to the answers, never to users × servers: the HTTP layer asks
//! "can this user reach this server" per row of a list, and the firewall renderer takes the flat
//! allow-list. The snapshot may come from a store in the middle of a change, so ids that name
//! nothing are ignored rather than trusted.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rule::{PortSpec, Protocol};

/// A user as the access engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNode {
    pub id: i32,
    /// Inactive users reach nothing and are nobody's source.
    pub active: bool,
    pub address: Ipv4Addr,
    /// The profile's `shared` flag: every connected system may reach this user's device.
    #[serde(default)]
    pub shared: bool,
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupNode {
    pub id: i32,
    /// User ids.
    #[serde(default)]
    pub members: Vec<i32>,
}

/// A server, by its overlay address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerNode {
    pub id: i32,
    pub address: Ipv4Addr,
}

/// A group of servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerGroupNode {
    pub id: i32,
    /// Server ids.
    #[serde(default)]
    pub members: Vec<i32>,
}

/// A rule: what it allows (protocol and ports) and from where (its sources).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleNode {
    pub id: i32,
    pub protocol: Protocol,
    /// Canonical text in JSON (`"80,443"`); absent or `""` for ICMP and ALL.
    #[serde(default)]
    pub ports: PortSpec,
    #[serde(default)]
    pub source_users: Vec<i32>,
    #[serde(default)]
    pub source_groups: Vec<i32>,
    #[serde(default)]
    pub source_servers: Vec<i32>,
    #[serde(default)]
    pub source_servergroups: Vec<i32>,
}

/// A policy: its rules, allowed toward its targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyNode {
    pub id: i32,
    #[serde(default)]
    pub rules: Vec<i32>,
    #[serde(default)]
    pub servers: Vec<i32>,
    #[serde(default)]
    pub servergroups: Vec<i32>,
}

/// Everything the access engine needs to know about the network, as plain values.
///
/// Relations may be given from one side only (group members, not user groups), and ids that
/// name nothing are ignored. When two nodes of one kind share an id, the first one counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSnapshot {
    pub users: Vec<UserNode>,
    pub groups: Vec<GroupNode>,
    pub servers: Vec<ServerNode>,
    pub server_groups: Vec<ServerGroupNode>,
    pub rules: Vec<RuleNode>,
    pub policies: Vec<PolicyNode>,
}

/// One rule of one policy with every group resolved to its members: who is let through, to
/// which servers, on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedPair {
    pub policy_id: i32,
    pub rule_id: i32,
    pub protocol: Protocol,
    pub ports: PortSpec,
    /// Active users, directly named or members of a source group; ascending, distinct.
    pub source_users: Vec<i32>,
    /// Servers, directly named or members of a source server group; ascending, distinct.
    pub source_servers: Vec<i32>,
    /// The policy's servers and the members of its server groups; ascending, distinct.
    pub targets: Vec<i32>,
}

/// One line of the firewall's allow-list: traffic from any of `sources` to any of `targets` on
/// `protocol` and `ports` is accepted. `ports` always suits `protocol` (empty for ICMP and ALL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowEntry {
    pub policy_id: i32,
    pub rule_id: i32,
    /// Ascending, distinct; never empty.
    pub sources: Vec<Ipv4Addr>,
    /// Ascending, distinct; never empty.
    pub targets: Vec<Ipv4Addr>,
    pub protocol: Protocol,
    pub ports: PortSpec,
}

/// [`AccessIndex::allow_parts`]: traffic from any source of rule `r` to any target of policy
/// `p` on `r`'s protocol and ports is accepted for every `r` in `p.rules`. Sides may be empty
/// (such pairs allow nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowParts {
    /// By rule id; only rules that some policy holds.
    pub rules: BTreeMap<i32, RuleAllow>,
    /// By policy id; only policies that hold some rule.
    pub policies: BTreeMap<i32, PolicyAllow>,
}

/// One rule's side of the allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAllow {
    pub protocol: Protocol,
    pub ports: PortSpec,
    /// Addresses of the rule's active users and servers, ascending, distinct.
    pub sources: Vec<Ipv4Addr>,
}

/// One policy's side of the allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAllow {
    /// Addresses of the policy's servers, ascending, distinct.
    pub targets: Vec<Ipv4Addr>,
    /// Ids of the rules it holds that exist, ascending, distinct.
    pub rules: Vec<i32>,
}

/// The network's access, resolved once.
#[derive(Debug, Clone, Default)]
pub struct AccessIndex {
    /// Every (policy, rule) pair, by policy id, then rule id. Pairs share their rule's sources
    /// and their policy's targets rather than copying them: on a large network one server group
    /// of thousands may be the target of many pairs.
    pairs: Vec<SharedPair>,
    /// The targets of every policy, by the policy's position in id order.
    policy_targets: Vec<Arc<Vec<i32>>>,
    /// Per user: the positions of the policies that let the user reach their targets, ascending.
    /// Only active users that some policy lets reach a server are present.
    user_policies: IdMap<Vec<usize>>,
    /// Per server: the positions of the policies that let some user reach it, ascending.
    server_policies: IdMap<Vec<usize>>,
    /// Addresses of the active users.
    user_addresses: IdMap<Ipv4Addr>,
    server_addresses: IdMap<Ipv4Addr>,
    shared_user_addresses: Vec<Ipv4Addr>,
}

/// A rule's effect once its groups are resolved, shared by every policy that holds it.
#[derive(Debug)]
struct ResolvedRule {
    protocol: Protocol,
    ports: PortSpec,
    users: Vec<i32>,
    servers: Vec<i32>,
}

#[derive(Debug, Clone)]
struct SharedPair {
    policy_id: i32,
    rule_id: i32,
    rule: Arc<ResolvedRule>,
    targets: Arc<Vec<i32>>,
}

/// The distinct, existing members of groups, each group worked out once however many rules and
/// policies name it.
struct Members<'a, G> {
    groups: IdMap<&'a G>,
    resolved: IdMap<Arc<Vec<i32>>>,
}

impl<'a, G> Members<'a, G> {
    fn new(groups: IdMap<&'a G>) -> Self {
        Self {
            groups,
            resolved: IdMap::default(),
        }
    }

    /// `direct` ids and the members of `group_ids`, ascending, each once, only those `keep`
    /// accepts. Sharing the group's own list when it is all there is.
    fn union(
        &mut self,
        direct: &[i32],
        group_ids: &[i32],
        members: impl Fn(&G) -> &[i32],
        keep: impl Fn(&i32) -> bool,
    ) -> Arc<Vec<i32>> {
        let mut lists = Vec::with_capacity(group_ids.len());
        for id in distinct(group_ids.iter().copied()) {
            let Some(group) = self.groups.get(&id) else {
                continue;
            };
            let list = self.resolved.entry(id).or_insert_with(|| {
                Arc::new(distinct(members(group).iter().copied().filter(|m| keep(m))))
            });
            lists.push(Arc::clone(list));
        }
        let direct: Vec<i32> = direct.iter().copied().filter(|m| keep(m)).collect();
        match (lists.len(), direct.is_empty()) {
            (0, _) => Arc::new(distinct(direct)),
            (1, true) => lists.swap_remove(0),
            _ => Arc::new(distinct(
                direct
                    .into_iter()
                    .chain(lists.iter().flat_map(|l| l.iter().copied())),
            )),
        }
    }
}

impl AccessIndex {
    /// Resolves the whole network. The work is linear in the number of nodes and relations plus
    /// the number of pairs; each group is expanded once, and pairs share their lists.
    ///
    /// A rule whose ports do not suit its protocol (which [`PortSpec::parse`] never lets through)
    /// is treated as absent: guessing what it meant could only widen access.
    pub fn build(network: &NetworkSnapshot) -> Self {
        let users = first_by_id(&network.users, |user| user.id);
        let servers = first_by_id(&network.servers, |server| server.id);
        let mut groups = Members::new(first_by_id(&network.groups, |group| group.id));
        let mut server_groups = Members::new(first_by_id(&network.server_groups, |group| group.id));

        let is_active_user = |id: &i32| users.get(id).is_some_and(|user| user.active);
        let is_server = |id: &i32| servers.contains_key(id);

        let mut rules: IdMap<Arc<ResolvedRule>> =
            IdMap::with_capacity_and_hasher(network.rules.len(), Default::default());
        for rule in first_by_id(&network.rules, |rule| rule.id).into_values() {
            if !rule.ports.suits(rule.protocol) {
                continue;
            }
            let users = groups.union(
                &rule.source_users,
                &rule.source_groups,
                |g: &GroupNode| &g.members,
                is_active_user,
            );
            let servers = server_groups.union(
                &rule.source_servers,
                &rule.source_servergroups,
                |g: &ServerGroupNode| &g.members,
                is_server,
            );
            let resolved = ResolvedRule {
                protocol: rule.protocol,
                ports: rule.ports.clone(),
                users: Arc::unwrap_or_clone(users),
                servers: Arc::unwrap_or_clone(servers),
            };
            rules.insert(rule.id, Arc::new(resolved));
        }

        let mut policies: Vec<&PolicyNode> = network.policies.iter().collect();
        // Stable, so that of two policies with one id the first stays first and is kept.
        policies.sort_by_key(|policy| policy.id);
        policies.dedup_by_key(|policy| policy.id);

        let mut index = Self::default();
        for policy in policies {
            let targets = server_groups.union(
                &policy.servers,
                &policy.servergroups,
                |g: &ServerGroupNode| &g.members,
                is_server,
            );
            let position = index.policy_targets.len();
            let mut lets_users_in = false;
            for rule_id in distinct(policy.rules.iter().copied()) {
                let Some(rule) = rules.get(&rule_id) else {
                    continue;
                };
                if !targets.is_empty() {
                    for &user in &rule.users {
                        let reached = index.user_policies.entry(user).or_default();
                        // Positions only grow, so checking the last one keeps the list distinct.
                        if reached.last() != Some(&position) {
                            reached.push(position);
                        }
                        lets_users_in = true;
                    }
                }
                index.pairs.push(SharedPair {
                    policy_id: policy.id,
                    rule_id,
                    rule: Arc::clone(rule),
                    targets: Arc::clone(&targets),
                });
            }
            if lets_users_in {
                for &server in targets.iter() {
                    index
                        .server_policies
                        .entry(server)
                        .or_default()
                        .push(position);
                }
            }
            index.policy_targets.push(targets);
        }

        index.user_addresses = users
            .iter()
            .filter(|(_, user)| user.active)
            .map(|(&id, user)| (id, user.address))
            .collect();
        index.server_addresses = servers
            .iter()
            .map(|(&id, server)| (id, server.address))
            .collect();
        index.shared_user_addresses = distinct(
            users
                .values()
                .filter(|user| user.active && user.shared)
                .map(|user| user.address),
        );
        index
    }

    /// Every rule of every policy (rules that exist), by policy id, then rule id. Pairs with no
    /// source or no target are listed too: they allow nothing, but they are there. Each call
    /// copies the pairs out; the firewall's [`AccessIndex::allow_list`] does not need them.
    pub fn resolved(&self) -> Vec<ResolvedPair> {
        self.pairs
            .iter()
            .map(|pair| ResolvedPair {
                policy_id: pair.policy_id,
                rule_id: pair.rule_id,
                protocol: pair.rule.protocol,
                ports: pair.rule.ports.clone(),
                source_users: pair.rule.users.clone(),
                source_servers: pair.rule.servers.clone(),
                targets: pair.targets.to_vec(),
            })
            .collect()
    }

    /// Whether some policy targeting the server holds a rule that sources the user, directly or
    /// through a group. Inactive and unknown users reach nothing; servers named as sources let
    /// servers through, never users. Costs a few lookups in the policies of the user and the
    /// server.
    pub fn can_reach(&self, user_id: i32, server_id: i32) -> bool {
        let (Some(of_user), Some(of_server)) = (
            self.user_policies.get(&user_id),
            self.server_policies.get(&server_id),
        ) else {
            return false;
        };
        let (fewer, more) = if of_user.len() <= of_server.len() {
            (of_user, of_server)
        } else {
            (of_server, of_user)
        };
        fewer
            .iter()
            .any(|position| more.binary_search(position).is_ok())
    }

    /// The servers the user can reach, ascending: exactly those for which
    /// [`AccessIndex::can_reach`] holds. Costs the total size of the targets of the policies
    /// that let the user through.
    pub fn reachable_servers(&self, user_id: i32) -> Vec<i32> {
        let Some(positions) = self.user_policies.get(&user_id) else {
            return Vec::new();
        };
        distinct(
            positions
                .iter()
                .flat_map(|&position| self.policy_targets[position].iter().copied()),
        )
    }

    /// The firewall's allow-list: one entry per resolved pair that has at least one source and
    /// one target, by policy id, then rule id. Sources are the addresses of the pair's (active)
    /// users and of its servers.
    pub fn allow_list(&self) -> Vec<AllowEntry> {
        self.pairs
            .iter()
            .filter_map(|pair| {
                let sources = distinct(
                    pair.rule
                        .users
                        .iter()
                        .filter_map(|id| self.user_addresses.get(id))
                        .chain(
                            pair.rule
                                .servers
                                .iter()
                                .filter_map(|id| self.server_addresses.get(id)),
                        )
                        .copied(),
                );
                let targets = distinct(
                    pair.targets
                        .iter()
                        .filter_map(|id| self.server_addresses.get(id))
                        .copied(),
                );
                (!sources.is_empty() && !targets.is_empty()).then(|| AllowEntry {
                    policy_id: pair.policy_id,
                    rule_id: pair.rule_id,
                    sources,
                    targets,
                    protocol: pair.rule.protocol,
                    ports: pair.rule.ports.clone(),
                })
            })
            .collect()
    }

    /// The allow-list factored the way the firewall declares it: each rule's sources and each
    /// policy's targets as addresses, worked out once however many pairs share them (on a large
    /// network a rule sits in many policies and a policy holds many rules, so the flat
    /// [`AccessIndex::allow_list`] repeats the same addresses thousands of times).
    pub fn allow_parts(&self) -> AllowParts {
        let mut parts = AllowParts::default();
        for pair in &self.pairs {
            parts
                .rules
                .entry(pair.rule_id)
                .or_insert_with(|| RuleAllow {
                    protocol: pair.rule.protocol,
                    ports: pair.rule.ports.clone(),
                    sources: distinct(
                        pair.rule
                            .users
                            .iter()
                            .filter_map(|id| self.user_addresses.get(id))
                            .chain(
                                pair.rule
                                    .servers
                                    .iter()
                                    .filter_map(|id| self.server_addresses.get(id)),
                            )
                            .copied(),
                    ),
                });
            parts
                .policies
                .entry(pair.policy_id)
                .or_insert_with(|| PolicyAllow {
                    targets: distinct(
                        pair.targets
                            .iter()
                            .filter_map(|id| self.server_addresses.get(id))
                            .copied(),
                    ),
                    rules: Vec::new(),
                })
                .rules
                .push(pair.rule_id);
        }
        parts
    }

    /// Addresses of the active users whose profile is shared, ascending: the firewall accepts
    /// all traffic to them.
    pub fn shared_user_addresses(&self) -> Vec<Ipv4Addr> {
        self.shared_user_addresses.clone()
    }
}

/// Maps keyed by the ids of users, groups, servers, rules and policies. Building the index and
/// the firewall's parts looks ids up millions of times at the `10k` size; std's SipHash, made
/// to resist keys chosen by an attacker, costs more there than all the rest. The ids are the
/// database's own sequence numbers, nothing a client picks, so a multiplicative hash suffices.
type IdMap<V> = HashMap<i32, V, BuildHasherDefault<IdHasher>>;

/// FxHash's step for one integer: a multiplication by an odd constant (a bijection, so distinct
/// ids never collide before the table reduces them) after a rotation.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl IdHasher {
    const SEED: u64 = 0x517c_c1b7_2722_0a95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.add(u64::from(byte));
        }
    }

    fn write_i32(&mut self, id: i32) {
        self.add(u64::from(id as u32));
    }
}

/// Nodes by id; of two nodes with one id, the first.
fn first_by_id<T>(nodes: &[T], id: impl Fn(&T) -> i32) -> IdMap<&T> {
    let mut by_id = IdMap::with_capacity_and_hasher(nodes.len(), Default::default());
    for node in nodes {
        by_id.entry(id(node)).or_insert(node);
    }
    by_id
}

/// The items ascending, each once.
fn distinct<T: Ord>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.into_iter().collect();
    items.sort_unstable();
    items.dedup();
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i32, active: bool) -> UserNode {
        UserNode {
            id,
            active,
            address: Ipv4Addr::new(100, 111, 208, (id * 4 + 2) as u8),
            shared: false,
        }
    }

    fn server(id: i32) -> ServerNode {
        ServerNode {
            id,
            address: Ipv4Addr::new(100, 111, 224, (id * 4 + 2) as u8),
        }
    }

    fn rule(id: i32, protocol: Protocol, ports: &str, users: &[i32]) -> RuleNode {
        RuleNode {
            id,
            protocol,
            ports: PortSpec::parse_list(ports).unwrap(),
            source_users: users.to_vec(),
            source_groups: vec![],
            source_servers: vec![],
            source_servergroups: vec![],
        }
    }

    fn policy(id: i32, rules: &[i32], servers: &[i32]) -> PolicyNode {
        PolicyNode {
            id,
            rules: rules.to_vec(),
            servers: servers.to_vec(),
            servergroups: vec![],
        }
    }

    #[test]
    fn empty_network_allows_nothing() {
        let index = AccessIndex::build(&NetworkSnapshot::default());
        assert!(index.resolved().is_empty());
        assert!(index.allow_list().is_empty());
        assert!(index.shared_user_addresses().is_empty());
        assert!(!index.can_reach(1, 1));
        assert!(index.reachable_servers(1).is_empty());
    }

    #[test]
    fn rules_whose_ports_do_not_suit_their_protocol_are_absent() {
        let network = NetworkSnapshot {
            users: vec![user(1, true)],
            servers: vec![server(1)],
            rules: vec![
                rule(1, Protocol::Tcp, "", &[1]),
                rule(2, Protocol::Icmp, "80", &[1]),
                rule(3, Protocol::All, "1-65535", &[1]),
            ],
            policies: vec![policy(1, &[1, 2, 3], &[1])],
            ..NetworkSnapshot::default()
        };
        let index = AccessIndex::build(&network);
        assert!(index.resolved().is_empty());
        assert!(!index.can_reach(1, 1));
    }

    #[test]
    fn the_first_of_two_nodes_with_one_id_counts() {
        let mut inactive_twin = user(1, false);
        inactive_twin.shared = true;
        let network = NetworkSnapshot {
            users: vec![user(1, true), inactive_twin],
            servers: vec![server(1)],
            rules: vec![
                rule(1, Protocol::Tcp, "22", &[1]),
                rule(1, Protocol::Tcp, "80", &[]),
            ],
            policies: vec![policy(1, &[1], &[1]), policy(1, &[], &[])],
            ..NetworkSnapshot::default()
        };
        let index = AccessIndex::build(&network);
        assert_eq!(index.resolved().len(), 1);
        assert_eq!(index.resolved()[0].ports.to_string(), "22");
        assert!(index.can_reach(1, 1));
        assert!(index.shared_user_addresses().is_empty());
    }

    #[test]
    fn a_policy_listing_a_rule_twice_yields_one_pair() {
        let network = NetworkSnapshot {
            users: vec![user(1, true)],
            servers: vec![server(1), server(2)],
            rules: vec![rule(7, Protocol::Udp, "53", &[1, 1])],
            policies: vec![policy(3, &[7, 7], &[2, 1, 2])],
            ..NetworkSnapshot::default()
        };
        let index = AccessIndex::build(&network);
        assert_eq!(index.resolved().len(), 1);
        assert_eq!(index.resolved()[0].source_users, [1]);
        assert_eq!(index.resolved()[0].targets, [1, 2]);
        assert_eq!(index.reachable_servers(1), [1, 2]);
    }
}
