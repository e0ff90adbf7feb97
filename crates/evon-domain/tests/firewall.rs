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

mod support;
use support::{random_network, XorShift};

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

/// The text the fixtures' rulesets are written as, pinned to [`firewall::FORMAT_VERSION`]. The
/// digest in the kernel is taken of a ruleset's content, not its text, so a change to how the
/// text is written must bump the version (or an upgraded hub would take the kernel's old text
/// for the new one). FNV-1a of every fixture's text with its digest line left out.
const TEXT_PINS: &[(u64, u64)] = &[(2, 0x0ec1_a7a3_ad3f_a21b)];

#[test]
fn a_new_text_needs_a_new_format_version() {
    let mut all = String::new();
    for (name, network) in fixtures() {
        let index = AccessIndex::build(&network);
        all.push_str(&name);
        for line in render(&index, key()).lines() {
            if !line.contains("return comment \"evon-hub ") {
                all.push_str(line);
                all.push('\n');
            }
        }
    }
    let text = firewall::fnv1a64(all.as_bytes());
    let pinned = TEXT_PINS
        .iter()
        .find(|(version, _)| *version == firewall::FORMAT_VERSION)
        .map(|(_, pin)| *pin);
    assert_eq!(
        pinned,
        Some(text),
        "the rulesets' text is {text:#018x}: if the renderer changed how it writes a ruleset, bump \
         firewall::FORMAT_VERSION and pin the new text under it in TEXT_PINS"
    );
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
        // The digest chain carries the digest of the table.
        let comment = firewall::digest_comment(firewall::digest(&index, key()));
        assert!(
            text.contains(&format!("\t\treturn comment \"{comment}\"\n")),
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
    // 12 pairs, plus established and shared-user acceptance; one set per rule and per policy
    // (and the shared users, and rule 1's ports), however many pairs use them.
    assert_eq!(rules(&small), 14);
    assert_eq!(rules(&large), 14);
    let sets = |text: &str| text.lines().filter(|l| l.starts_with("\tset ")).count();
    assert_eq!(sets(&small), 1 + 4 + 1 + 3);
    assert_eq!(sets(&large), 1 + 4 + 1 + 3);
    assert!(large.contains("ip saddr @rule_1_src tcp dport @rule_1_ports accept"));
    assert!(large.contains("elements = { 22, 80-100 }"));
    assert!(large.contains("ip saddr @rule_2_src udp dport 53 accept"));
    assert!(large.contains("meta l4proto icmp accept"));
    nft_check("large", &large);
}

#[test]
fn the_path_of_the_fixtures_is_right() {
    assert!(Path::new(FIXTURES).is_dir());
}

/// Runs `script` with `sh -e` in a new, empty network namespace, in a directory holding `files`;
/// its standard output. Panics with the script's stderr when it fails.
fn in_fresh_netns(files: &[(String, String)], script: &str) -> String {
    let dir = tempfile_dir();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let output = Command::new("unshare")
        .args(["-n", "sh", "-ec", script])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `unshare -n sh`: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "the script failed ({}):\n{}\n--- script ---\n{script}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `nft -j list table inet evon` as a value that two equal tables share however they came to
/// be: handles dropped, each set's elements sorted (the kernel lists them in the order they
/// were added), sets and chains by name, each chain's rules in order.
fn normalised(listing: &str) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let value: Value = serde_json::from_str(listing).unwrap();
    let (mut sets, mut chains, mut rules) = (Map::new(), Map::new(), Map::new());
    let mut table = Value::Null;
    for item in value["nftables"].as_array().unwrap() {
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let mut body = body.clone();
        body.as_object_mut().unwrap().remove("handle");
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "table" => table = body,
            "set" => {
                if let Some(elements) = body.get_mut("elem").and_then(Value::as_array_mut) {
                    elements.sort_by_key(|e| e.to_string());
                }
                sets.insert(name, body);
            }
            "chain" => {
                chains.insert(name, body);
            }
            "rule" => {
                let chain = body["chain"].as_str().unwrap().to_owned();
                rules
                    .entry(chain)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .unwrap()
                    .push(body);
            }
            _ => {}
        }
    }
    json!({"table": table, "sets": sets, "chains": chains, "rules": rules})
}

/// A network a little different from `network`: the kind of change one API write makes.
fn nudged(network: &NetworkSnapshot, rng: &mut XorShift) -> NetworkSnapshot {
    let mut next = network.clone();
    match rng.below(8) {
        0 if !next.users.is_empty() => {
            let i = rng.below(next.users.len() as u64) as usize;
            next.users[i].active = !next.users[i].active;
        }
        1 if !next.users.is_empty() => {
            let i = rng.below(next.users.len() as u64) as usize;
            next.users[i].shared = !next.users[i].shared;
        }
        2 if !next.groups.is_empty() => {
            let i = rng.below(next.groups.len() as u64) as usize;
            let member = rng.id(8);
            next.groups[i].members.push(member);
        }
        3 if !next.server_groups.is_empty() => {
            let i = rng.below(next.server_groups.len() as u64) as usize;
            next.server_groups[i].members.pop();
        }
        4 if !next.rules.is_empty() => {
            let i = rng.below(next.rules.len() as u64) as usize;
            let rule = &mut next.rules[i];
            let text = ["22", "22,80-90", "53,1000-2000,443", "1-65535"][rng.below(4) as usize];
            rule.protocol = [Protocol::Tcp, Protocol::Udp][rng.below(2) as usize];
            rule.ports = PortSpec::parse_list(text).unwrap();
        }
        5 if !next.policies.is_empty() => {
            let i = rng.below(next.policies.len() as u64) as usize;
            next.policies.remove(i);
        }
        6 => {
            let servers = rng.ids(8, 3);
            next.policies.push(PolicyNode {
                id: 50 + rng.below(5) as i32,
                rules: rng.ids(5, 3),
                servers,
                servergroups: rng.ids(3, 1),
            });
        }
        _ => return random_network(rng),
    }
    next
}

/// The update from one ruleset to the next leaves the kernel with exactly the table the next
/// ruleset's full render gives, step after step, and with its digest: checked by the real
/// kernel in a fresh network namespace, on the fixtures one after another and on sequences of
/// random networks nudged the way API writes change them.
#[test]
fn updates_leave_the_table_a_full_render_would() {
    let mut sequences: Vec<Vec<NetworkSnapshot>> =
        vec![fixtures().into_iter().map(|(_, network)| network).collect()];
    let mut rng = XorShift(0x5eed_f1e1_d5ee_d5ee);
    for _ in 0..6 {
        let mut networks = vec![random_network(&mut rng)];
        for _ in 0..24 {
            let next = nudged(networks.last().unwrap(), &mut rng);
            networks.push(next);
        }
        sequences.push(networks);
    }
    let mut updates = 0;
    for networks in sequences {
        let rulesets: Vec<firewall::Ruleset> = networks
            .iter()
            .map(|n| firewall::Ruleset::build(&AccessIndex::build(n), key()))
            .collect();
        let mut files = Vec::new();
        let mut incremental = String::from("nft -f full-0.nft\n");
        let mut full = String::new();
        for (step, ruleset) in rulesets.iter().enumerate() {
            files.push((format!("full-{step}.nft"), ruleset.render()));
            full.push_str(&format!(
                "nft -f full-{step}.nft\necho '#####'\nnft -j list table inet evon\n"
            ));
            if step > 0 {
                match rulesets[step - 1].render_update(ruleset) {
                    Some(update) => {
                        updates += 1;
                        files.push((format!("update-{step}.nft"), update));
                        incremental.push_str(&format!("nft -f update-{step}.nft\n"));
                    }
                    None => assert_eq!(rulesets[step - 1].digest(), ruleset.digest()),
                }
            }
            incremental.push_str("echo '#####'\nnft -j list table inet evon\n");
        }
        let incremental = in_fresh_netns(&files, &incremental);
        let full = in_fresh_netns(&files, &full);
        let incremental: Vec<&str> = incremental.split("#####\n").skip(1).collect();
        let full: Vec<&str> = full.split("#####\n").skip(1).collect();
        assert_eq!(incremental.len(), rulesets.len());
        for (step, ruleset) in rulesets.iter().enumerate() {
            let listed = normalised(incremental[step]);
            assert_eq!(listed, normalised(full[step]), "step {step}");
            assert_eq!(
                listed["rules"]["digest"][0]["comment"],
                firewall::digest_comment(ruleset.digest()),
                "step {step}"
            );
        }
    }
    assert!(updates > 60, "only {updates} updates were tried");
}

/// An update is small when the change is: one server more in every server group touches the
/// elements of the sets those groups feed (rule sources, policy targets) and the digest, nothing
/// else.
#[test]
fn an_update_says_only_what_changed() {
    let mut network = fixtures()
        .into_iter()
        .find(|(name, _)| name == "kinds")
        .unwrap()
        .1;
    let before = firewall::Ruleset::build(&AccessIndex::build(&network), key());
    let added = Ipv4Addr::new(100, 111, 231, 254);
    network.servers.push(ServerNode {
        id: 9999,
        address: added,
    });
    for group in &mut network.server_groups {
        group.members.push(9999);
    }
    let after = firewall::Ruleset::build(&AccessIndex::build(&network), key());
    let update = before.render_update(&after).unwrap();
    let commands: Vec<&str> = update
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('\t') && *l != "}")
        .collect();
    assert!(
        commands
            .iter()
            .all(|c| c.starts_with("add element inet evon policy_")
                || c.starts_with("add element inet evon rule_")
                || c.starts_with("flush chain inet evon digest")
                || c.starts_with("add rule inet evon digest")),
        "{update}"
    );
    assert!(update.contains(&added.to_string()));
    assert!(before.render_update(&before).is_none());
}
