//! The whole network as the access engine reads it, loaded in a constant number of queries.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use diesel::prelude::*;
use evon_domain::{
    AccessIndex, GroupNode, NetworkSnapshot, PolicyNode, PortSpec, Protocol, RuleNode,
    ServerGroupNode, ServerNode, UserNode,
};

use crate::db::DbConnection;
use crate::error::{StoreError, StoreResult};
use crate::relations;
use crate::schema::{policies, rules, server_groups, servers, user_groups, user_profiles, users};

fn address(owner: &str, id: i32, text: &str) -> StoreResult<Ipv4Addr> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("{owner} {id} has address {text:?}")))
}

fn take(map: &mut HashMap<i32, Vec<i32>>, id: i32) -> Vec<i32> {
    map.remove(&id).unwrap_or_default()
}

/// The access index of the current network, rebuilt only when the hub's generation says the
/// network may have changed: one cheap query per use instead of reading the whole network.
#[derive(Debug, Default)]
pub struct AccessCache {
    current: RwLock<Option<(i64, Arc<AccessIndex>)>>,
}

impl AccessCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The index as of the transaction `conn` is in. Call it inside `Store::read` so that the
    /// generation and the snapshot come from one consistent view.
    pub fn index(&self, conn: &mut DbConnection) -> StoreResult<Arc<AccessIndex>> {
        let generation = crate::hub::generation(conn)?;
        if let Ok(current) = self.current.read() {
            if let Some((cached, index)) = current.as_ref() {
                if *cached == generation {
                    return Ok(Arc::clone(index));
                }
            }
        }
        let index = Arc::new(AccessIndex::build(&snapshot(conn)?));
        if let Ok(mut current) = self.current.write() {
            // Never replace a newer index with an older one built by a slower request.
            if current
                .as_ref()
                .is_none_or(|(cached, _)| *cached < generation)
            {
                *current = Some((generation, Arc::clone(&index)));
            }
        }
        Ok(index)
    }
}

/// Reads users, groups, servers, server groups, rules and policies with their relations. Run it
/// inside one read transaction (`Store::read`) so that the snapshot is consistent.
pub fn snapshot(conn: &mut DbConnection) -> StoreResult<NetworkSnapshot> {
    let user_rows: Vec<(i32, bool, String, bool)> = users::table
        .inner_join(user_profiles::table)
        .select((
            users::id,
            users::is_active,
            user_profiles::ipv4_address,
            user_profiles::shared,
        ))
        .order(users::id)
        .load(conn)?;
    let users = user_rows
        .into_iter()
        .map(|(id, active, text, shared)| {
            Ok(UserNode {
                id,
                active,
                address: address("user", id, &text)?,
                shared,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;

    let mut members = relations::members_of_group::all(conn)?;
    let group_ids: Vec<i32> = user_groups::table
        .order(user_groups::id)
        .select(user_groups::id)
        .load(conn)?;
    let groups = group_ids
        .into_iter()
        .map(|id| GroupNode {
            id,
            members: take(&mut members, id),
        })
        .collect();

    let server_rows: Vec<(i32, String)> = servers::table
        .order(servers::id)
        .select((servers::id, servers::ipv4_address))
        .load(conn)?;
    let servers = server_rows
        .into_iter()
        .map(|(id, text)| {
            Ok(ServerNode {
                id,
                address: address("server", id, &text)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;

    let mut server_members = relations::members_of_server_group::all(conn)?;
    let server_group_ids: Vec<i32> = server_groups::table
        .order(server_groups::id)
        .select(server_groups::id)
        .load(conn)?;
    let server_groups = server_group_ids
        .into_iter()
        .map(|id| ServerGroupNode {
            id,
            members: take(&mut server_members, id),
        })
        .collect();

    let rule_rows: Vec<(i32, String, String)> = rules::table
        .order(rules::id)
        .select((
            rules::id,
            rules::destination_protocol,
            rules::destination_ports,
        ))
        .load(conn)?;
    let mut source_users = relations::rule_source_users::all(conn)?;
    let mut source_groups = relations::rule_source_groups::all(conn)?;
    let mut source_servers = relations::rule_source_servers::all(conn)?;
    let mut source_servergroups = relations::rule_source_servergroups::all(conn)?;
    let rules = rule_rows
        .into_iter()
        .map(|(id, protocol, ports)| {
            let corrupt = |m: String| StoreError::Corrupt(format!("rule {id}: {m}"));
            let protocol = Protocol::parse(&protocol).map_err(corrupt)?;
            Ok(RuleNode {
                id,
                protocol,
                ports: PortSpec::parse(protocol, &ports).map_err(corrupt)?,
                source_users: take(&mut source_users, id),
                source_groups: take(&mut source_groups, id),
                source_servers: take(&mut source_servers, id),
                source_servergroups: take(&mut source_servergroups, id),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;

    let policy_ids: Vec<i32> = policies::table
        .order(policies::id)
        .select(policies::id)
        .load(conn)?;
    let mut policy_rules = relations::policy_rules::all(conn)?;
    let mut policy_servers = relations::policy_servers::all(conn)?;
    let mut policy_servergroups = relations::policy_servergroups::all(conn)?;
    let policies = policy_ids
        .into_iter()
        .map(|id| PolicyNode {
            id,
            rules: take(&mut policy_rules, id),
            servers: take(&mut policy_servers, id),
            servergroups: take(&mut policy_servergroups, id),
        })
        .collect();

    Ok(NetworkSnapshot {
        users,
        groups,
        servers,
        server_groups,
        rules,
        policies,
    })
}
