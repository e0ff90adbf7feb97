//! The access engine and the firewall at the sizes of the fixture generator's `1k` and `10k`
//! networks: building the index, the servers one user can reach, the full allow-list, the whole
//! nftables ruleset (factoring and rendering it), and the update that one more policy makes.
//!
//! `cargo bench -p evon-domain --bench access`

use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use evon_domain::access::{
    AccessIndex, GroupNode, NetworkSnapshot, PolicyNode, RuleNode, ServerGroupNode, ServerNode,
    UserNode,
};
use evon_domain::address::SubnetKey;
use evon_domain::firewall::Ruleset;
use evon_domain::rule::{PortSpec, Protocol};

/// A deterministic pseudo-random source (splitmix64), so every run benchmarks the same network.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Between `low` and `high` ids, each in `1..=count`.
    fn ids(&mut self, low: usize, high: usize, count: usize) -> Vec<i32> {
        let n = low + self.below(high - low + 1);
        (0..n).map(|_| self.below(count) as i32 + 1).collect()
    }
}

struct Size {
    name: &'static str,
    servers: usize,
    users: usize,
    groups: usize,
    server_groups: usize,
    rules: usize,
    policies: usize,
}

const SIZES: [Size; 2] = [
    Size {
        name: "1k",
        servers: 1_000,
        users: 200,
        groups: 50,
        server_groups: 40,
        rules: 300,
        policies: 200,
    },
    Size {
        name: "10k",
        servers: 10_000,
        users: 2_000,
        groups: 300,
        server_groups: 200,
        rules: 2_000,
        policies: 1_000,
    },
];

fn address(third: u8, index: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 111, third, 0)) + (index as u32) * 4 + 2)
}

/// A network of the generator's shape: All Users and All Servers, groups of 2-30 users, every
/// server in 1-3 more server groups, rules mixing every source kind, policies of 1-5 rules
/// aimed at up to 5 servers and 3 server groups.
fn network(size: &Size) -> NetworkSnapshot {
    let mut dice = Dice(42);
    let users = (1..=size.users)
        .map(|i| UserNode {
            id: i as i32,
            active: i % 40 != 0,
            address: address(208, i),
            shared: i % 97 == 0,
        })
        .collect();
    let servers = (1..=size.servers)
        .map(|i| ServerNode {
            id: i as i32,
            address: address(224, i),
        })
        .collect();
    let mut groups = vec![GroupNode {
        id: 1,
        members: (1..=size.users as i32).collect(),
    }];
    groups.extend((2..=size.groups).map(|g| GroupNode {
        id: g as i32,
        members: dice.ids(2, 30, size.users),
    }));
    let mut members: Vec<Vec<i32>> = vec![Vec::new(); size.server_groups + 1];
    members[1] = (1..=size.servers as i32).collect();
    for server in 1..=size.servers {
        for _ in 0..1 + dice.below(3) {
            members[2 + dice.below(size.server_groups - 1)].push(server as i32);
        }
    }
    let server_groups = (1..=size.server_groups)
        .map(|g| ServerGroupNode {
            id: g as i32,
            members: members[g].clone(),
        })
        .collect();
    let rules = (1..=size.rules)
        .map(|r| {
            let (protocol, ports) = match dice.below(10) {
                0..=5 => (
                    Protocol::Tcp,
                    ["22", "80,443", "8000-8100", "5432"][dice.below(4)],
                ),
                6..=7 => (Protocol::Udp, ["53", "1194", "60000-61000"][dice.below(3)]),
                8 => (Protocol::Icmp, ""),
                _ => (Protocol::All, ""),
            };
            RuleNode {
                id: r as i32,
                protocol,
                ports: PortSpec::parse(protocol, ports).unwrap_or_default(),
                source_users: dice.ids(0, 5, size.users),
                source_groups: dice.ids(0, 5, size.groups),
                source_servers: dice.ids(0, 5, size.servers),
                source_servergroups: dice.ids(0, 2, size.server_groups),
            }
        })
        .collect();
    let policies = (1..=size.policies)
        .map(|p| PolicyNode {
            id: p as i32,
            rules: dice.ids(1, 5, size.rules),
            servers: dice.ids(0, 5, size.servers),
            servergroups: dice.ids(0, 3, size.server_groups),
        })
        .collect();
    NetworkSnapshot {
        users,
        groups,
        servers,
        server_groups,
        rules,
        policies,
    }
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("access");
    group.sample_size(20);
    for size in &SIZES {
        let network = network(size);
        let index = AccessIndex::build(&network);
        // An active user (every 40th is inactive).
        let user = (size.users / 2 + 1) as i32;
        group.bench_with_input(
            BenchmarkId::new("build_index", size.name),
            &network,
            |b, n| b.iter(|| AccessIndex::build(n)),
        );
        group.bench_with_input(
            BenchmarkId::new("reachable_servers", size.name),
            &index,
            |b, i| b.iter(|| i.reachable_servers(user)),
        );
        group.bench_with_input(BenchmarkId::new("allow_list", size.name), &index, |b, i| {
            b.iter(|| i.allow_list())
        });
        // What `evon-hub firewall render` and the keeper do with a built index.
        let key = SubnetKey::new(111);
        group.bench_with_input(
            BenchmarkId::new("firewall_render", size.name),
            &index,
            |b, i| b.iter(|| Ruleset::build(i, key).render()),
        );
        // One API write: a policy of the first two rules aimed at three servers. The keeper
        // builds the new ruleset and renders only the difference from the applied one.
        let applied = Ruleset::build(&index, key);
        let mut changed = network.clone();
        changed.policies.push(PolicyNode {
            id: size.policies as i32 + 1,
            rules: vec![1, 2],
            servers: vec![1, 2, 3],
            servergroups: Vec::new(),
        });
        let changed = AccessIndex::build(&changed);
        group.bench_with_input(
            BenchmarkId::new("firewall_update", size.name),
            &changed,
            |b, i| {
                b.iter(|| {
                    applied
                        .render_update(&Ruleset::build(i, key))
                        .expect("one more policy changes the ruleset")
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
