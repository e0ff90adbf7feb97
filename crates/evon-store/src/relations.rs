//! Many-to-many relations, read in bulk (one query per relation for a whole page of objects)
//! and replaced wholesale on update.

use std::collections::HashMap;

use evon_domain::FieldErrors;

use crate::db::DbConnection;
use crate::error::StoreResult;

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

/// A function that returns which of the given ids exist.
pub(crate) type ExistingIds = fn(&mut DbConnection, &[i32]) -> StoreResult<Vec<i32>>;

/// For each `(field, wanted ids, lookup)`, reports under `field` the first wanted id that names
/// nothing. Fields that were not sent (`None`) are skipped.
pub(crate) fn check_references(
    conn: &mut DbConnection,
    checks: &[(&str, &Option<Vec<i32>>, ExistingIds)],
    errors: &mut FieldErrors,
) -> StoreResult<()> {
    for (field, wanted, existing) in checks {
        if let Some(wanted) = wanted {
            if let Some(missing) = first_missing(wanted, &existing(conn, wanted)?) {
                errors.add(field, invalid_pk(missing));
            }
        }
    }
    Ok(())
}

/// DRF's message for a related id that names nothing.
pub(crate) fn invalid_pk(id: i32) -> String {
    format!("Invalid pk \"{id}\" - object does not exist.")
}

/// One side of a join table: `load` reads the related ids of many owners at once, `replace`
/// sets one owner's related ids, `of` reads one owner's.
macro_rules! relation {
    ($name:ident, $table:ident, $owner:ident, $related:ident) => {
        pub(crate) mod $name {
            use std::collections::HashMap;

            use diesel::prelude::*;

            use crate::db::DbConnection;
            use crate::error::StoreResult;
            use crate::schema::$table;

            #[allow(dead_code)]
            pub(crate) fn load(conn: &mut DbConnection, owners: &[i32]) -> StoreResult<HashMap<i32, Vec<i32>>> {
                let pairs = $table::table
                    .filter($table::$owner.eq_any(owners))
                    .select(($table::$owner, $table::$related))
                    .load(conn)?;
                Ok(crate::relations::group_pairs(pairs))
            }

            /// Every owner's related ids.
            #[allow(dead_code)]
            pub(crate) fn all(conn: &mut DbConnection) -> StoreResult<HashMap<i32, Vec<i32>>> {
                let pairs = $table::table.select(($table::$owner, $table::$related)).load(conn)?;
                Ok(crate::relations::group_pairs(pairs))
            }

            #[allow(dead_code)]
            pub(crate) fn of(conn: &mut DbConnection, owner: i32) -> StoreResult<Vec<i32>> {
                let mut related: Vec<i32> =
                    $table::table.filter($table::$owner.eq(owner)).select($table::$related).load(conn)?;
                related.sort_unstable();
                Ok(related)
            }

            #[allow(dead_code)]
            pub(crate) fn replace(conn: &mut DbConnection, owner: i32, related: &[i32]) -> StoreResult<()> {
                diesel::delete($table::table.filter($table::$owner.eq(owner))).execute(conn)?;
                let rows: Vec<_> =
                    related.iter().map(|r| ($table::$owner.eq(owner), $table::$related.eq(*r))).collect();
                if !rows.is_empty() {
                    crate::per_backend!(conn, c => diesel::insert_into($table::table).values(&rows).execute(c))?;
                }
                Ok(())
            }
        }
    };
}

relation!(user_groups_of_user, user_group_members, user_id, group_id);
relation!(members_of_group, user_group_members, group_id, user_id);
relation!(
    permissions_of_user,
    user_permissions,
    user_id,
    permission_id
);
relation!(
    permissions_of_group,
    user_group_permissions,
    group_id,
    permission_id
);
relation!(
    server_groups_of_server,
    server_group_members,
    server_id,
    group_id
);
relation!(
    members_of_server_group,
    server_group_members,
    group_id,
    server_id
);
relation!(rule_source_users, rule_source_users, rule_id, user_id);
relation!(rule_source_groups, rule_source_groups, rule_id, group_id);
relation!(rule_source_servers, rule_source_servers, rule_id, server_id);
relation!(
    rule_source_servergroups,
    rule_source_servergroups,
    rule_id,
    group_id
);
relation!(policy_rules, policy_rules, policy_id, rule_id);
relation!(policy_servers, policy_servers, policy_id, server_id);
relation!(
    policy_servergroups,
    policy_servergroups,
    policy_id,
    group_id
);
