//! Many-to-many rows read in bulk: one query per relation for a whole page of objects.

use std::collections::HashMap;

/// Groups `(owner, related)` pairs by owner, related ids ascending.
pub(crate) fn group_pairs(pairs: Vec<(i32, i32)>) -> HashMap<i32, Vec<i32>> {
    let mut map: HashMap<i32, Vec<i32>> = HashMap::new();
    for (owner, related) in pairs {
        map.entry(owner).or_default().push(related);
    }
    for related in map.values_mut() {
        related.sort_unstable();
    }
    map
}

/// The first id of `wanted` (in the order given) that is not in `existing`.
pub(crate) fn first_missing(wanted: &[i32], existing: &[i32]) -> Option<i32> {
    wanted.iter().copied().find(|id| !existing.contains(id))
}

/// DRF's message for a related id that names nothing.
pub(crate) fn invalid_pk(id: i32) -> String {
    format!("Invalid pk \"{id}\" - object does not exist.")
}
