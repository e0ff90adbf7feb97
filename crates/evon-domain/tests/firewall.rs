//! The firewall renderer on the hand-made networks in `fixtures/access`: a snapshot of each
//! ruleset, and the real `nft` checking that it accepts every one of them (`nft -c`, in a fresh
//! network namespace so that nothing on the host can change). Without `nft` these tests fail:
//! a ruleset nobody checked is not a passing test.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use evon_domain::access::{AccessIndex, NetworkSnapshot};
use evon_domain::firewall::{self, render};
use evon_domain::rule::{PortSpec, Protocol};
use evon_domain::{PolicyNode, RuleNode, ServerNode, SubnetKey, UserNode};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/access");

fn fixtures() -> Vec<(String, NetworkSnapshot)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 5, "fixtures missing from {FIXTURES}");
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let network: NetworkSnapshot = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            (name, network)
        })
        .collect()
}

fn key() -> SubnetKey {
    SubnetKey::new(111)
}

/// `nft -c -f FILE` inside a new, empty network namespace: parses and validates the ruleset
/// against a kernel without changing anything. Panics with nft's message when it refuses, and
/// when nft (or unshare) cannot be run at all.
fn nft_check(name: &str, text: &str) {
    let dir = tempfile_dir();
    let path = dir.join(format!("{name}.nft"));
    std::fs::write(&path, text).unwrap();
    let output = Command::new("unshare")
        .args(["-n", "nft", "-c", "-f"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `unshare -n nft`: {e}; install nftables"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "nft refused the ruleset of {name} ({}):\n{}\n--- ruleset ---\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn tempfile_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "evon-firewall-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn fixtures_snapshot() {
    for (name, network) in fixtures() {
        let index = AccessIndex::build(&network);
        let text = render(&index, key());
        insta::assert_snapshot!(format!("{name}__ruleset"), text);
    }
}

#[test]
fn nft_accepts_every_fixture() {
    for (name, network) in fixtures() {
        let index = AccessIndex::build(&network);
        nft_check(&name, &render(&index, key()));
    }
    nft_check("empty", &render(&AccessIndex::default(), key()));
}

#[test]
fn nft_check_really_rejects_a_broken_ruleset() {
    // Guards the check itself: a harness that passes everything would prove nothing.
    let broken = render(&AccessIndex::default(), key()).replace("drop", "dorp");
    let dir = tempfile_dir();
    let path = dir.join("broken.nft");
    std::fs::write(&path, broken).unwrap();
    let output = Command::new("unshare")
        .args(["-n", "nft", "-c", "-f"])
        .arg(&path)
        .output()
        .expect("cannot run `unshare -n nft`; install nftables");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!output.status.success());
}

fn reverse_if_distinct<T>(items: &mut [T], id: impl Fn(&T) -> i32) {
    let mut ids: Vec<i32> = items.iter().map(id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() == items.len() {
        items.reverse();
    }
}

#[test]
fn rendering_is_deterministic_and_touches_only_its_table() {
    for (name, network) in fixtures() {
        let index = AccessIndex::build(&network);
        let text = render(&index, key());
        // Built again from a shuffled snapshot: the same bytes.
        // (Lists whose ids repeat are left alone: there, the first node of an id counts.)
        let mut reversed = network.clone();
        reverse_if_distinct(&mut reversed.users, |n| n.id);
        reverse_if_distinct(&mut reversed.servers, |n| n.id);
        reverse_if_distinct(&mut reversed.rules, |n| n.id);
        reverse_if_distinct(&mut reversed.policies, |n| n.id);
        assert_eq!(
            render(&AccessIndex::build(&reversed), key()),
            text,
            "{name}"
        );
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("table") || line.starts_with("delete") {
                assert!(
                    line.starts_with("table inet evon ") || line == "delete table inet evon",
                    "{name}: {line}"
                );
            }
        }
        let starts: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .take(3)
            .collect();
        assert_eq!(
            starts,
            [
                "table inet evon {}",
                "delete table inet evon",
                "table inet evon {"
            ]
        );
        // The comment carries the digest of what follows it.
        let comment = firewall::digest_comment(firewall::digest(&index, key()));
        assert!(
            text.contains(&format!("\tcomment \"{comment}\"\n")),
            "{name}"
        );
    }
}

#[test]
fn rules_grow_with_pairs_never_with_addresses() {
    let network = |users: usize, servers: usize| {
        let mut snapshot = NetworkSnapshot {
            users: (0..users)
                .map(|i| UserNode {
                    id: i as i32 + 1,
                    active: true,
                    address: Ipv4Addr::from(
                        u32::from(Ipv4Addr::new(100, 111, 208, 6)) + 4 * i as u32,
                    ),
                    shared: i % 3 == 0,
                })
                .collect(),
            servers: (0..servers)
                .map(|i| ServerNode {
                    id: i as i32 + 1,
                    address: Ipv4Addr::from(
                        u32::from(Ipv4Addr::new(100, 111, 224, 6)) + 4 * i as u32,
                    ),
                })
                .collect(),
            ..NetworkSnapshot::default()
        };
        let all_users: Vec<i32> = (1..=users as i32).collect();
        let all_servers: Vec<i32> = (1..=servers as i32).collect();
        for (id, protocol, ports) in [
            (1, Protocol::Tcp, "22,80-90,85-100"),
            (2, Protocol::Udp, "53"),
            (3, Protocol::Icmp, ""),
            (4, Protocol::All, ""),
        ] {
            snapshot.rules.push(RuleNode {
                id,
                protocol,
                ports: PortSpec::parse(protocol, ports).unwrap(),
                source_users: all_users.clone(),
                source_groups: vec![],
                source_servers: vec![1],
                source_servergroups: vec![],
            });
        }
        for id in 1..=3 {
            snapshot.policies.push(PolicyNode {
                id,
                rules: vec![1, 2, 3, 4],
                servers: all_servers.clone(),
                servergroups: vec![],
            });
        }
        snapshot
    };
    let rules = |text: &str| {
        text.lines()
            .filter(|l| l.trim_end().ends_with(" accept"))
            .count()
    };
    let small = render(&AccessIndex::build(&network(2, 2)), key());
    let large = render(&AccessIndex::build(&network(900, 1500)), key());
    // 12 pairs, plus established and shared-user acceptance.
    assert_eq!(rules(&small), 14);
    assert_eq!(rules(&large), 14);
    assert!(large.contains("tcp dport { 22, 80-100 } accept"));
    assert!(large.contains("udp dport { 53 } accept"));
    assert!(large.contains("meta l4proto icmp accept"));
    nft_check("large", &large);
}

#[test]
fn the_path_of_the_fixtures_is_right() {
    assert!(Path::new(FIXTURES).is_dir());
}
