//! The hub's firewall as an nftables ruleset: default deny for the overlay, exactly what the
//! policies allow.
//!
//! [`Ruleset::build`] factors an [`AccessIndex`] the way nftables can hold it cheaply: one
//! address set per rule (its sources), one per policy (its targets), one port set per rule that
//! names more than one port range, and one chain per policy with a line per rule. A packet from
//! the overlay jumps to a policy's chain only when its destination is one of the policy's
//! targets, and the chain accepts it when its source and ports suit one of the policy's rules.
//! Sets are named after what they hold (`rule_7_src`, `policy_3_dst`), so a change to the network
//! changes the elements of a few sets and the lines of a few chains, never the whole table.
//!
//! Two texts for `nft -f` come out of it, each applied by nft as one transaction, so the kernel
//! never holds half a ruleset:
//! - [`Ruleset::render`]: the whole table, replacing any earlier version (`table inet evon {}`
//!   makes sure it exists, `delete table inet evon` drops it, then it is declared anew);
//! - [`Ruleset::render_update`]: the commands that turn the table of one ruleset into that of
//!   another (elements added and deleted, chains flushed and refilled, sets and chains created
//!   and deleted), which is what keeps a write's way to the kernel short on a large network.
//!
//! Only the table `inet evon` is ever touched. Its chain `digest` holds one rule whose comment is
//! `evon-hub <digest>`, a 64-bit hash of the table's content and of [`FORMAT_VERSION`]
//! ([`Ruleset::digest`]), so that `evon-hub firewall status` can tell whether the kernel holds
//! what the database implies by reading one short chain back. (A table's own comment cannot be changed once the
//! table exists; a rule's can be replaced.)

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

use crate::access::AccessIndex;
use crate::address::SubnetKey;
use crate::rule::{PortRange, Protocol};

/// The nftables family and name of the hub's table.
pub const TABLE_FAMILY: &str = "inet";
pub const TABLE_NAME: &str = "evon";
/// The chain whose only rule carries the digest in its comment.
pub const DIGEST_CHAIN: &str = "digest";
/// The digest comment is this prefix, a space and the digest in 16 lowercase hex digits.
pub const COMMENT_PREFIX: &str = "evon-hub";
/// How [`Ruleset::render`] writes a ruleset, as part of its digest: bump it with any change to
/// the text written for the same content, so that a hub upgraded to the new text notices that
/// the kernel still holds the old one and replaces it. `tests/firewall.rs` pins the text of the
/// fixtures' rulesets to this number and fails until it is bumped.
pub const FORMAT_VERSION: u64 = 2;

/// What one line of a policy's chain matches beyond the destination (which the jump into the
/// chain has already matched).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    rule_id: i32,
    /// ` tcp dport 22`, ` udp dport @rule_7_ports`, ` meta l4proto icmp`, or empty for ALL.
    matches: String,
}

/// The firewall the database implies, factored into the sets and chains of the table
/// `inet evon`. Building it from the same index and key always gives the same ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    key: SubnetKey,
    /// Active users whose profile is shared: reachable by everyone on the overlay.
    shared_users: Vec<Ipv4Addr>,
    /// `rule_<id>_src`: the sources of every rule some line uses.
    sources: BTreeMap<i32, Vec<Ipv4Addr>>,
    /// `rule_<id>_ports`: the merged port ranges of every used rule with more than one range.
    ports: BTreeMap<i32, Vec<(u16, u16)>>,
    /// `policy_<id>_dst`: the targets of every policy that has a line.
    targets: BTreeMap<i32, Vec<Ipv4Addr>>,
    /// `policy_<id>`: the lines of every policy that allows something, by rule id.
    chains: BTreeMap<i32, Vec<Line>>,
    /// [`Ruleset::content_digest`], worked out once.
    digest: u64,
}

impl Ruleset {
    /// Factors the index. Pairs that allow nothing (no source, no target, or ports that do not
    /// suit the protocol, which the index never hands out) declare nothing: a policy with no
    /// line has no chain and no jump.
    pub fn build(index: &AccessIndex, key: SubnetKey) -> Self {
        let parts = index.allow_parts();
        let mut ruleset = Self {
            key,
            shared_users: index.shared_user_addresses(),
            sources: BTreeMap::new(),
            ports: BTreeMap::new(),
            targets: BTreeMap::new(),
            chains: BTreeMap::new(),
            digest: 0,
        };
        for (&policy_id, policy) in &parts.policies {
            if policy.targets.is_empty() {
                continue;
            }
            let mut lines = Vec::new();
            for rule_id in &policy.rules {
                let Some(rule) = parts.rules.get(rule_id) else {
                    continue;
                };
                if rule.sources.is_empty() || !rule.ports.suits(rule.protocol) {
                    continue;
                }
                let ranges = merged(rule.ports.ranges());
                let matches = protocol_match(*rule_id, rule.protocol, &ranges);
                if ranges.len() > 1 {
                    ruleset.ports.insert(*rule_id, ranges);
                }
                ruleset
                    .sources
                    .entry(*rule_id)
                    .or_insert_with(|| rule.sources.clone());
                lines.push(Line {
                    rule_id: *rule_id,
                    matches,
                });
            }
            if !lines.is_empty() {
                ruleset.targets.insert(policy_id, policy.targets.clone());
                ruleset.chains.insert(policy_id, lines);
            }
        }
        ruleset.digest = ruleset.content_digest();
        ruleset
    }

    /// A digest of everything [`Ruleset::render`] writes: the overlay, every set's elements and
    /// every chain's lines, and [`FORMAT_VERSION`] for how they are written. Taken of the
    /// content rather than the text so that the keeper, which builds a ruleset for every change
    /// and renders only the difference, never has to write the whole text just to name it.
    fn content_digest(&self) -> u64 {
        let mut digest = ContentDigest::new();
        digest.word(FORMAT_VERSION);
        digest.word(u64::from(self.key.get()));
        digest.addresses(&self.shared_users);
        digest.count(self.sources.len());
        for (&rule_id, addresses) in &self.sources {
            digest.id(rule_id);
            digest.addresses(addresses);
        }
        digest.count(self.ports.len());
        for (&rule_id, ranges) in &self.ports {
            digest.id(rule_id);
            digest.count(ranges.len());
            for &(first, last) in ranges {
                digest.word(u64::from(first) << 16 | u64::from(last));
            }
        }
        digest.count(self.targets.len());
        for (&policy_id, addresses) in &self.targets {
            digest.id(policy_id);
            digest.addresses(addresses);
        }
        digest.count(self.chains.len());
        for (&policy_id, lines) in &self.chains {
            digest.id(policy_id);
            digest.count(lines.len());
            for line in lines {
                digest.id(line.rule_id);
                digest.text(&line.matches);
            }
        }
        digest.0
    }

    /// The digest the table's `digest` chain carries for this ruleset.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// How many sets the table declares (the shared users' included).
    pub fn set_count(&self) -> usize {
        1 + self.sources.len() + self.ports.len() + self.targets.len()
    }

    /// The whole ruleset for `nft -f`: creates or atomically replaces the table `inet evon`.
    pub fn render(&self) -> String {
        let elements: usize = self.sources.values().map(Vec::len).sum::<usize>()
            + self.targets.values().map(Vec::len).sum::<usize>();
        let mut out = String::with_capacity(4096 + elements * 16 + self.chains.len() * 256);
        out.push_str("#!/usr/sbin/nft -f\n");
        out.push_str("# Evon Hub firewall, generated by evon-hub: do not edit, it is replaced.\n");
        let _ = writeln!(
            out,
            "# Overlay {}: default deny; only what the hub's policies allow is forwarded.",
            overlay_cidr(self.key)
        );
        out.push_str(
            "# Only the table inet evon is touched; the next three statements replace it\n",
        );
        out.push_str("# in one transaction.\n");
        out.push_str("table inet evon {}\n");
        out.push_str("delete table inet evon\n");
        out.push_str("table inet evon {\n");
        self.write_table_body(&mut out);
        let _ = writeln!(
            out,
            "\n\tchain {DIGEST_CHAIN} {{\n\t\treturn comment \"{}\"\n\t}}",
            digest_comment(self.digest)
        );
        out.push_str("}\n");
        out
    }

    /// The commands for `nft -f` that turn the kernel's table from `self` (which it must hold
    /// exactly, as [`Ruleset::digest`] read back from the kernel can tell) into `next`, as one
    /// transaction; `None` when there is nothing to change. Elements are added to and deleted
    /// from sets that stay, chains whose lines changed are flushed and refilled, and what is gone
    /// is deleted only once nothing refers to it any more. A different overlay means a different
    /// `forward` chain: then the whole table is rendered instead.
    pub fn render_update(&self, next: &Ruleset) -> Option<String> {
        if self.digest == next.digest && self == next {
            return None;
        }
        if self.key != next.key {
            return Some(next.render());
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Evon Hub firewall update: {:016x} -> {:016x}",
            self.digest, next.digest
        );
        update_addresses(
            &mut out,
            "shared_users",
            &self.shared_users,
            &next.shared_users,
        );

        // 1. Sets: new ones are created with their elements, kept ones get the difference.
        update_address_sets(&mut out, &self.sources, &next.sources, rule_sources_set);
        update_address_sets(&mut out, &self.targets, &next.targets, policy_targets_set);
        for (&rule_id, ranges) in &next.ports {
            let name = rule_ports_set(rule_id);
            match self.ports.get(&rule_id) {
                Some(old) if old == ranges => {}
                Some(_) => {
                    // Intervals do not diff element by element: the set is small, refill it.
                    let _ = writeln!(out, "flush set inet evon {name}");
                    write_port_elements(&mut out, &name, ranges);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "add set inet evon {name} {{ type inet_service; flags interval; }}"
                    );
                    write_port_elements(&mut out, &name, ranges);
                }
            }
        }

        // 2. Chains: new ones created, changed ones refilled.
        for (&policy_id, lines) in &next.chains {
            let name = policy_chain(policy_id);
            match self.chains.get(&policy_id) {
                Some(old) if old == lines => {}
                Some(_) => {
                    let _ = writeln!(out, "flush chain inet evon {name}");
                    write_chain_lines(&mut out, &name, lines);
                }
                None => {
                    let _ = writeln!(out, "add chain inet evon {name}");
                    write_chain_lines(&mut out, &name, lines);
                }
            }
        }

        // 3. The overlay chain's jumps follow the set of policies; its order is its meaning
        // (the final drop), so it is rewritten whole when that set changes.
        if self.chains.keys().ne(next.chains.keys()) {
            out.push_str("flush chain inet evon overlay\n");
            for line in next.overlay_lines() {
                let _ = writeln!(out, "add rule inet evon overlay {line}");
            }
        }

        // 4. What is gone, now that no rule refers to it.
        for &policy_id in self.chains.keys() {
            if !next.chains.contains_key(&policy_id) {
                let _ = writeln!(out, "delete chain inet evon {}", policy_chain(policy_id));
            }
        }
        for &rule_id in self.sources.keys() {
            if !next.sources.contains_key(&rule_id) {
                let _ = writeln!(out, "delete set inet evon {}", rule_sources_set(rule_id));
            }
        }
        for &rule_id in self.ports.keys() {
            if !next.ports.contains_key(&rule_id) {
                let _ = writeln!(out, "delete set inet evon {}", rule_ports_set(rule_id));
            }
        }
        for &policy_id in self.targets.keys() {
            if !next.targets.contains_key(&policy_id) {
                let _ = writeln!(
                    out,
                    "delete set inet evon {}",
                    policy_targets_set(policy_id)
                );
            }
        }

        // 5. The digest last, so that it names what the table now holds.
        let _ = writeln!(
            out,
            "flush chain inet evon {DIGEST_CHAIN}\nadd rule inet evon {DIGEST_CHAIN} return comment \"{}\"",
            digest_comment(next.digest)
        );
        Some(out)
    }

    /// Everything inside the table but the digest chain.
    fn write_table_body(&self, out: &mut impl Write) {
        let _ = writeln!(
            out,
            "\tcomment \"Evon Hub firewall of {}: generated by evon-hub, do not edit\"",
            overlay_cidr(self.key)
        );
        write_address_set(out, "shared_users", &self.shared_users);
        for (&rule_id, addresses) in &self.sources {
            write_address_set(out, &rule_sources_set(rule_id), addresses);
        }
        for (&rule_id, ranges) in &self.ports {
            let _ = writeln!(
                out,
                "\n\tset {} {{\n\t\ttype inet_service\n\t\tflags interval\n\t\telements = {{ {} }}\n\t}}",
                rule_ports_set(rule_id),
                port_list(ranges)
            );
        }
        for (&policy_id, addresses) in &self.targets {
            write_address_set(out, &policy_targets_set(policy_id), addresses);
        }
        for (&policy_id, lines) in &self.chains {
            let _ = writeln!(out, "\n\tchain {} {{", policy_chain(policy_id));
            for line in lines {
                let _ = writeln!(out, "\t\t{}", chain_line(line));
            }
            let _ = out.write_str("\t}\n");
        }
        let _ = out.write_str("\n\tchain forward {\n");
        let _ = out.write_str("\t\ttype filter hook forward priority filter; policy accept;\n");
        let _ = out.write_str("\t\tct state established,related accept\n");
        let _ = out.write_str("\t\t# Traffic not from the overlay is not the hub's business.\n");
        let _ = writeln!(out, "\t\tip saddr {} jump overlay", overlay_cidr(self.key));
        let _ = out.write_str("\t}\n");
        let _ = out.write_str("\n\tchain overlay {\n");
        for line in self.overlay_lines() {
            let _ = writeln!(out, "\t\t{line}");
        }
        let _ = out.write_str("\t}\n");
    }

    /// The overlay chain: shared users, a jump per policy guarded by its targets, then deny.
    fn overlay_lines(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(self.chains.len() + 2);
        lines.push("ip daddr @shared_users accept".to_owned());
        for &policy_id in self.chains.keys() {
            lines.push(format!(
                "ip daddr @{} jump {}",
                policy_targets_set(policy_id),
                policy_chain(policy_id)
            ));
        }
        lines.push("drop".to_owned());
        lines
    }
}

/// The whole ruleset for `nft -f` the index implies: [`Ruleset::build`] then
/// [`Ruleset::render`].
pub fn render(index: &AccessIndex, key: SubnetKey) -> String {
    Ruleset::build(index, key).render()
}

/// The digest [`render`] would write for this index and key.
pub fn digest(index: &AccessIndex, key: SubnetKey) -> u64 {
    Ruleset::build(index, key).digest()
}

/// The digest rule's comment: `evon-hub 0123456789abcdef`.
pub fn digest_comment(digest: u64) -> String {
    format!("{COMMENT_PREFIX} {digest:016x}")
}

/// The digest in a comment written by [`Ruleset::render`], if it is one.
pub fn parse_digest_comment(comment: &str) -> Option<u64> {
    let hex = comment
        .trim()
        .strip_prefix(COMMENT_PREFIX)?
        .strip_prefix(' ')?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// FNV-1a, 64 bits: stable across versions and platforms, which is all the digest needs (it
/// detects drift, it is no defence against anyone).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The hash behind [`Ruleset::digest`]: 64-bit words folded in with a multiplication and a
/// shift each. Not FNV over the text: the words are the ruleset's numbers, so taking it costs a
/// fraction of rendering the text (a `10k` ruleset holds close to a million addresses).
struct ContentDigest(u64);

impl ContentDigest {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn word(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 32;
    }

    fn count(&mut self, n: usize) {
        self.word(n as u64);
    }

    fn id(&mut self, id: i32) {
        self.word(u64::from(id as u32));
    }

    fn addresses(&mut self, addresses: &[Ipv4Addr]) {
        self.count(addresses.len());
        for pair in addresses.chunks(2) {
            let high = u64::from(u32::from(pair[0])) << 32;
            let low = pair.get(1).map_or(0, |a| u64::from(u32::from(*a)));
            self.word(high | low);
        }
    }

    fn text(&mut self, text: &str) {
        self.count(text.len());
        for chunk in text.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
    }
}

/// `100.K.0.0/16`.
pub fn overlay_cidr(key: SubnetKey) -> String {
    format!("100.{}.0.0/16", key.get())
}

/// An id in a set or chain name; a negative one (which the store never makes) is written
/// `n<abs>`, since a name cannot hold a minus sign.
fn id(n: i32) -> String {
    if n < 0 {
        format!("n{}", n.unsigned_abs())
    } else {
        n.to_string()
    }
}

fn rule_sources_set(rule_id: i32) -> String {
    format!("rule_{}_src", id(rule_id))
}

fn rule_ports_set(rule_id: i32) -> String {
    format!("rule_{}_ports", id(rule_id))
}

fn policy_targets_set(policy_id: i32) -> String {
    format!("policy_{}_dst", id(policy_id))
}

fn policy_chain(policy_id: i32) -> String {
    format!("policy_{}", id(policy_id))
}

fn chain_line(line: &Line) -> String {
    format!(
        "ip saddr @{}{} accept",
        rule_sources_set(line.rule_id),
        line.matches
    )
}

/// ` tcp dport 22`, ` tcp dport 80-90`, ` tcp dport @rule_7_ports` (more than one range),
/// ` meta l4proto icmp`, or nothing for ALL. A single port or range needs no set at all.
fn protocol_match(rule_id: i32, protocol: Protocol, ranges: &[(u16, u16)]) -> String {
    let keyword = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => return " meta l4proto icmp".to_owned(),
        Protocol::All => return String::new(),
    };
    match ranges {
        [single] => format!(" {keyword} dport {}", port_range(*single)),
        _ => format!(" {keyword} dport @{}", rule_ports_set(rule_id)),
    }
}

fn port_range((start, end): (u16, u16)) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    }
}

fn port_list(ranges: &[(u16, u16)]) -> String {
    let ranges: Vec<String> = ranges.iter().map(|&r| port_range(r)).collect();
    ranges.join(", ")
}

/// Ranges merged where they overlap or touch, ascending: nftables refuses overlapping
/// intervals in one set, and a spec like `10,10-15,10-20` has them.
fn merged(ranges: &[PortRange]) -> Vec<(u16, u16)> {
    let mut pairs: Vec<(u16, u16)> = ranges.iter().map(|r| (r.start(), r.end())).collect();
    pairs.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(pairs.len());
    for (start, end) in pairs {
        match out.last_mut() {
            Some(last) if u32::from(start) <= u32::from(last.1) + 1 => {
                last.1 = last.1.max(end);
            }
            _ => out.push((start, end)),
        }
    }
    out
}

/// A set of addresses as the table declares it; the addresses are ascending and distinct.
fn write_address_set(out: &mut impl Write, name: &str, addresses: &[Ipv4Addr]) {
    let _ = writeln!(out, "\n\tset {name} {{\n\t\ttype ipv4_addr");
    if !addresses.is_empty() {
        let _ = out.write_str("\t\telements = {");
        write_address_list(out, addresses, "\n\t\t\t");
        let _ = out.write_str("\n\t\t}\n");
    }
    let _ = out.write_str("\t}\n");
}

/// Addresses separated by commas, eight to a line (which keeps large sets readable and their
/// diffs small), each line started with `indent`.
fn write_address_list(out: &mut impl Write, addresses: &[Ipv4Addr], indent: &str) {
    for (i, address) in addresses.iter().enumerate() {
        let separator = match (i > 0, i % 8 == 0) {
            (false, _) => "",
            (true, true) => ",",
            (true, false) => ", ",
        };
        let _ = out.write_str(separator);
        if i % 8 == 0 {
            let _ = out.write_str(indent);
        }
        push_address(out, *address);
    }
}

/// Appends `address` in dotted-quad form. The same text as its `Display`, without the
/// formatting machinery: a large ruleset is mostly addresses (hundreds of thousands at the
/// `10k` size), and this is the renderer's innermost loop.
fn push_address(out: &mut impl Write, address: Ipv4Addr) {
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in address.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    // Always ASCII digits and dots.
    if let Ok(text) = std::str::from_utf8(&text[..len]) {
        let _ = out.write_str(text);
    }
}

/// `add set` for the sets `next` has and `old` lacks, with their elements; `add element` and
/// `delete element` for the sets both have.
fn update_address_sets(
    out: &mut String,
    old: &BTreeMap<i32, Vec<Ipv4Addr>>,
    next: &BTreeMap<i32, Vec<Ipv4Addr>>,
    name: fn(i32) -> String,
) {
    for (&owner, addresses) in next {
        let set = name(owner);
        match old.get(&owner) {
            Some(before) => update_addresses(out, &set, before, addresses),
            None => {
                let _ = writeln!(out, "add set inet evon {set} {{ type ipv4_addr; }}");
                update_addresses(out, &set, &[], addresses);
            }
        }
    }
}

/// The element commands that turn set `name` from `before` into `after` (both ascending and
/// distinct): deletions first, so that a set never holds more than either side.
fn update_addresses(out: &mut String, name: &str, before: &[Ipv4Addr], after: &[Ipv4Addr]) {
    let (gone, new) = sorted_difference(before, after);
    for (verb, addresses) in [("delete", gone), ("add", new)] {
        if addresses.is_empty() {
            continue;
        }
        let _ = write!(out, "{verb} element inet evon {name} {{");
        write_address_list(out, &addresses, "\n\t");
        out.push_str("\n}\n");
    }
}

fn write_port_elements(out: &mut String, name: &str, ranges: &[(u16, u16)]) {
    let _ = writeln!(
        out,
        "add element inet evon {name} {{ {} }}",
        port_list(ranges)
    );
}

fn write_chain_lines(out: &mut String, chain: &str, lines: &[Line]) {
    for line in lines {
        let _ = writeln!(out, "add rule inet evon {chain} {}", chain_line(line));
    }
}

/// What is only in `before`, and what is only in `after`; both inputs ascending and distinct.
fn sorted_difference(before: &[Ipv4Addr], after: &[Ipv4Addr]) -> (Vec<Ipv4Addr>, Vec<Ipv4Addr>) {
    let (mut gone, mut new) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < before.len() && j < after.len() {
        match before[i].cmp(&after[j]) {
            std::cmp::Ordering::Less => {
                gone.push(before[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                new.push(after[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    gone.extend_from_slice(&before[i..]);
    new.extend_from_slice(&after[j..]);
    (gone, new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for address in [
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(100, 111, 224, 3),
            Ipv4Addr::new(9, 10, 99, 100),
            Ipv4Addr::new(255, 255, 255, 255),
            Ipv4Addr::new(1, 20, 200, 255),
        ] {
            let mut out = String::new();
            push_address(&mut out, address);
            assert_eq!(out, address.to_string());
        }
        for n in 0..=u8::MAX {
            let mut out = String::new();
            push_address(&mut out, Ipv4Addr::new(n, n, n, n));
            assert_eq!(out, Ipv4Addr::new(n, n, n, n).to_string());
        }
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn comments_round_trip() {
        let comment = digest_comment(0x0123_4567_89ab_cdef);
        assert_eq!(comment, "evon-hub 0123456789abcdef");
        assert_eq!(parse_digest_comment(&comment), Some(0x0123_4567_89ab_cdef));
        assert_eq!(parse_digest_comment("evon-hub 123"), None);
        assert_eq!(parse_digest_comment("other 0123456789abcdef"), None);
    }

    #[test]
    fn ranges_are_merged() {
        let ranges = [
            PortRange::single(10),
            PortRange::new(10, 15).unwrap_or(PortRange::single(10)),
            PortRange::new(10, 20).unwrap_or(PortRange::single(10)),
            PortRange::single(21),
            PortRange::single(65535),
        ];
        assert_eq!(merged(&ranges), vec![(10, 21), (65535, 65535)]);
    }

    #[test]
    fn differences_of_sorted_lists() {
        let a = |n: u8| Ipv4Addr::new(100, 111, 224, n);
        assert_eq!(
            sorted_difference(&[a(1), a(2), a(4)], &[a(2), a(3), a(4), a(5)]),
            (vec![a(1)], vec![a(3), a(5)])
        );
        assert_eq!(sorted_difference(&[], &[a(1)]), (vec![], vec![a(1)]));
        assert_eq!(sorted_difference(&[a(1)], &[]), (vec![a(1)], vec![]));
    }

    #[test]
    fn an_empty_network_is_default_deny() {
        let ruleset = Ruleset::build(&AccessIndex::default(), SubnetKey::new(111));
        let text = ruleset.render();
        assert!(text.contains("ip saddr 100.111.0.0/16 jump overlay"));
        assert!(text.contains("\t\tdrop\n"));
        assert!(!text.contains("elements"));
        assert!(text.contains(&format!(
            "return comment \"{}\"",
            digest_comment(ruleset.digest())
        )));
        assert_eq!(ruleset.render_update(&ruleset.clone()), None);
    }
}
