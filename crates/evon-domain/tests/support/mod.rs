//! Random networks for the tests that check the access engine and the firewall against models:
//! small, full of dangling and duplicate ids, and the same for the same seed.

#![allow(dead_code)] // Each test binary uses its own part.

use std::net::Ipv4Addr;

use evon_domain::access::{
    GroupNode, NetworkSnapshot, PolicyNode, RuleNode, ServerGroupNode, ServerNode, UserNode,
};
use evon_domain::rule::{PortSpec, Protocol};

pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An id from 1 to `max`, or now and then one that names nothing.
    pub fn id(&mut self, max: i32) -> i32 {
        if self.chance(10) {
            1000 + self.below(5) as i32
        } else {
            1 + self.below(max as u64) as i32
        }
    }

    pub fn ids(&mut self, max: i32, most: u64) -> Vec<i32> {
        (0..self.below(most + 1)).map(|_| self.id(max)).collect()
    }
}

/// The n-th address handed out from `100.111.<third>.0`: `.6`, `.10`, `.14`, …
pub fn address(third: u8, n: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 111, third, 0)) + n as u32 * 4 + 6)
}

pub fn random_network(rng: &mut XorShift) -> NetworkSnapshot {
    let (n_users, n_servers) = (1 + rng.below(8) as i32, 1 + rng.below(8) as i32);
    let (n_groups, n_server_groups) = (rng.below(4) as i32, rng.below(4) as i32);
    let (n_rules, n_policies) = (rng.below(6) as i32, rng.below(5) as i32);
    let mut network = NetworkSnapshot::default();
    for n in 0..n_users as usize + rng.below(2) as usize {
        network.users.push(UserNode {
            // Ids repeat now and then: the first user with an id counts.
            id: 1 + (n as i32 % n_users),
            active: rng.chance(75),
            address: address(208, n),
            shared: rng.chance(30),
        });
    }
    for n in 0..n_servers as usize {
        network.servers.push(ServerNode {
            id: n as i32 + 1,
            address: address(224, n),
        });
    }
    for id in 1..=n_groups {
        network.groups.push(GroupNode {
            id,
            members: rng.ids(n_users, 4),
        });
    }
    for id in 1..=n_server_groups {
        network.server_groups.push(ServerGroupNode {
            id,
            members: rng.ids(n_servers, 4),
        });
    }
    for id in 1..=n_rules {
        let protocol = Protocol::CHOICES[rng.below(4) as usize];
        let text = match (protocol.takes_ports(), rng.chance(8)) {
            (true, false) => "22,80-90",
            (false, false) => "",
            // Now and then a rule whose ports do not suit its protocol.
            (true, true) => "",
            (false, true) => "7",
        };
        network.rules.push(RuleNode {
            id,
            protocol,
            ports: PortSpec::parse_list(text).unwrap(),
            source_users: rng.ids(n_users, 2),
            source_groups: rng.ids(n_groups.max(1), 2),
            source_servers: rng.ids(n_servers, 2),
            source_servergroups: rng.ids(n_server_groups.max(1), 2),
        });
    }
    for _ in 0..n_policies {
        network.policies.push(PolicyNode {
            id: rng.id(n_policies.max(1)),
            rules: rng.ids(n_rules.max(1), 3),
            servers: rng.ids(n_servers, 2),
            servergroups: rng.ids(n_server_groups.max(1), 2),
        });
    }
    network
}
