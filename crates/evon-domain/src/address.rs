//! Overlay address allocation.
//!
//! The overlay is `100.K.0.0/16` for the hub's subnet key K. Servers live in `100.K.224.0/19`,
//! users in `100.K.208.0/20`. Every system is given the third address of a /30 block (OpenVPN's
//! `net30` topology puts the peer end at the second), the first block of each range is never
//! handed out, and the lowest free address wins.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;

/// The hub's subnet key: the second octet of every overlay address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubnetKey(u8);

impl SubnetKey {
    pub fn new(key: u8) -> Self {
        Self(key)
    }

    /// Parses a key given as text, as on the command line.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.trim()
            .parse::<u8>()
            .map(Self)
            .map_err(|_| format!("subnet key must be an integer from 0 to 255, not {text:?}"))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for SubnetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which of the two overlay ranges an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayRange {
    Servers,
    Users,
}

impl OverlayRange {
    fn third_octet(self) -> u8 {
        match self {
            OverlayRange::Servers => 224,
            OverlayRange::Users => 208,
        }
    }

    fn prefix_len(self) -> u8 {
        match self {
            OverlayRange::Servers => 19,
            OverlayRange::Users => 20,
        }
    }
}

/// One overlay range of one hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    network: u32,
    prefix_len: u8,
}

impl AddressPool {
    pub fn new(key: SubnetKey, range: OverlayRange) -> Self {
        let network = u32::from(Ipv4Addr::new(100, key.get(), range.third_octet(), 0));
        Self {
            network,
            prefix_len: range.prefix_len(),
        }
    }

    /// The range in CIDR notation, such as `100.111.208.0/20`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.network), self.prefix_len)
    }

    fn block_count(&self) -> u32 {
        (1u32 << (32 - u32::from(self.prefix_len))) / 4
    }

    /// How many systems the range can hold (every /30 block but the first).
    pub fn capacity(&self) -> usize {
        self.block_count() as usize - 1
    }

    fn address_of_block(&self, block: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.network + block * 4 + 2)
    }

    /// The block index of an assignable address, or `None` when the address is not one this pool
    /// hands out.
    fn block_of(&self, address: Ipv4Addr) -> Option<u32> {
        let offset = u32::from(address).checked_sub(self.network)?;
        let block = offset / 4;
        (offset % 4 == 2 && block >= 1 && block < self.block_count()).then_some(block)
    }

    /// Whether the address is one this pool could have assigned.
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        self.block_of(address).is_some()
    }

    /// The lowest assignable address not in `used`, or `None` when the range is full. Addresses in
    /// `used` that are outside the pool are ignored. Linear in the number of used addresses.
    pub fn lowest_free<I>(&self, used: I) -> Option<Ipv4Addr>
    where
        I: IntoIterator<Item = Ipv4Addr>,
    {
        let taken: HashSet<u32> = used.into_iter().filter_map(|a| self.block_of(a)).collect();
        (1..self.block_count())
            .find(|block| !taken.contains(block))
            .map(|block| self.address_of_block(block))
    }

    /// The OpenVPN `net30` peer address of an assigned address: the one just below it.
    pub fn peer_of(address: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(address).wrapping_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> AddressPool {
        AddressPool::new(SubnetKey::new(111), OverlayRange::Users)
    }

    fn servers() -> AddressPool {
        AddressPool::new(SubnetKey::new(111), OverlayRange::Servers)
    }

    #[test]
    fn first_addresses_skip_the_first_block() {
        let pool = servers();
        let mut used = Vec::new();
        for _ in 0..3 {
            let next = pool.lowest_free(used.clone()).unwrap();
            used.push(next);
        }
        assert_eq!(
            used,
            ["100.111.224.6", "100.111.224.10", "100.111.224.14"]
                .map(|a| a.parse::<Ipv4Addr>().unwrap())
        );
        assert_eq!(
            users().lowest_free([]),
            Some(Ipv4Addr::new(100, 111, 208, 6))
        );
    }

    #[test]
    fn takes_the_lowest_hole() {
        let used = ["100.111.208.6", "100.111.208.14"].map(|a| a.parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            users().lowest_free(used),
            Some(Ipv4Addr::new(100, 111, 208, 10))
        );
    }

    #[test]
    fn capacities_and_fullness() {
        assert_eq!(users().capacity(), 1023);
        assert_eq!(servers().capacity(), 2047);
        let pool = users();
        let all: Vec<Ipv4Addr> = (1..1024).map(|b| pool.address_of_block(b)).collect();
        assert_eq!(all.last(), Some(&Ipv4Addr::new(100, 111, 223, 254)));
        assert_eq!(pool.lowest_free(all), None);
    }

    #[test]
    fn membership() {
        let pool = users();
        assert!(pool.contains(Ipv4Addr::new(100, 111, 208, 6)));
        assert!(
            !pool.contains(Ipv4Addr::new(100, 111, 208, 2)),
            "first block is reserved"
        );
        assert!(
            !pool.contains(Ipv4Addr::new(100, 111, 208, 5)),
            "not the third address"
        );
        assert!(
            !pool.contains(Ipv4Addr::new(100, 111, 224, 6)),
            "server range"
        );
        assert_eq!(pool.cidr(), "100.111.208.0/20");
        assert_eq!(
            AddressPool::peer_of(Ipv4Addr::new(100, 111, 208, 6)),
            Ipv4Addr::new(100, 111, 208, 5)
        );
    }

    #[test]
    fn subnet_key_parsing() {
        assert_eq!(SubnetKey::parse("0").unwrap().get(), 0);
        assert_eq!(SubnetKey::parse("255").unwrap().get(), 255);
        assert!(SubnetKey::parse("256").is_err());
        assert!(SubnetKey::parse("-1").is_err());
    }
}
