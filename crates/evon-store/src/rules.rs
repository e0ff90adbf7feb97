//! Rules and their sources.

use diesel::prelude::*;
use evon_domain::entity::canonical_ids;
use evon_domain::pagination::Page;
use evon_domain::policy::{Rule, RulePatch};
use evon_domain::{FieldErrors, PortSpec, Protocol};

use crate::db::DbConnection;
use crate::error::{touched_one, StoreError, StoreResult};
use crate::relations;
use crate::schema::rules;
use crate::{to_i64, to_u64};

type Row = (i32, String, String, String);

fn columns() -> (
    rules::id,
    rules::name,
    rules::destination_protocol,
    rules::destination_ports,
) {
    (
        rules::id,
        rules::name,
        rules::destination_protocol,
        rules::destination_ports,
    )
}

fn hydrate(conn: &mut DbConnection, rows: Vec<Row>) -> StoreResult<Vec<Rule>> {
    let ids: Vec<i32> = rows.iter().map(|(id, ..)| *id).collect();
    let mut users = relations::rule_source_users::load(conn, &ids)?;
    let mut groups = relations::rule_source_groups::load(conn, &ids)?;
    let mut servers = relations::rule_source_servers::load(conn, &ids)?;
    let mut servergroups = relations::rule_source_servergroups::load(conn, &ids)?;
    rows.into_iter()
        .map(|(id, name, protocol, ports)| {
            let corrupt = |m: String| StoreError::Corrupt(format!("rule {id}: {m}"));
            let protocol = Protocol::parse(&protocol).map_err(corrupt)?;
            let ports = PortSpec::parse(protocol, &ports).map_err(corrupt)?;
            Ok(Rule {
                id,
                name,
                destination_protocol: protocol,
                destination_ports: ports,
                source_users: users.remove(&id).unwrap_or_default(),
                source_groups: groups.remove(&id).unwrap_or_default(),
                source_servers: servers.remove(&id).unwrap_or_default(),
                source_servergroups: servergroups.remove(&id).unwrap_or_default(),
            })
        })
        .collect()
}

pub fn count(conn: &mut DbConnection) -> StoreResult<u64> {
    let count: i64 = rules::table.count().get_result(conn)?;
    Ok(to_u64(count))
}

pub fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<Rule>> {
    let rows = rules::table
        .order(rules::id)
        .offset(to_i64(page.offset))
        .limit(to_i64(page.limit))
        .select(columns())
        .load(conn)?;
    hydrate(conn, rows)
}

/// Every rule, ordered by id.
pub fn all(conn: &mut DbConnection) -> StoreResult<Vec<Rule>> {
    let rows = rules::table.order(rules::id).select(columns()).load(conn)?;
    hydrate(conn, rows)
}

pub fn get(conn: &mut DbConnection, id: i32) -> StoreResult<Rule> {
    let row = rules::table
        .find(id)
        .select(columns())
        .first(conn)
        .optional()?;
    hydrate(conn, vec![row.ok_or(StoreError::NotFound)?])?
        .pop()
        .ok_or(StoreError::NotFound)
}

pub(crate) fn existing_ids(conn: &mut DbConnection, ids: &[i32]) -> StoreResult<Vec<i32>> {
    Ok(rules::table
        .filter(rules::id.eq_any(ids))
        .select(rules::id)
        .load(conn)?)
}

/// Checks the sources name existing objects and the ports suit the resulting protocol.
fn check(
    conn: &mut DbConnection,
    fields: &RulePatch,
    current: Option<&Rule>,
    errors: &mut FieldErrors,
) -> StoreResult<Option<(Protocol, PortSpec)>> {
    // Like a model's clean(), the ports are checked only once the fields themselves are valid.
    let ports = if errors.has("destination_protocol") || errors.has("destination_ports") {
        None
    } else {
        match fields.resulting_ports(current) {
            Some(Ok(resolved)) => Some(resolved),
            Some(Err(message)) => {
                errors.add("destination_ports", message);
                None
            }
            None => None,
        }
    };
    relations::check_references(
        conn,
        &[
            (
                "source_users",
                &fields.source_users,
                crate::users::existing_ids,
            ),
            (
                "source_groups",
                &fields.source_groups,
                crate::groups::existing_ids,
            ),
            (
                "source_servers",
                &fields.source_servers,
                crate::servers::existing_ids,
            ),
            (
                "source_servergroups",
                &fields.source_servergroups,
                crate::server_groups::existing_ids,
            ),
        ],
        errors,
    )?;
    Ok(ports)
}

fn write_sources(conn: &mut DbConnection, id: i32, fields: &RulePatch) -> StoreResult<()> {
    if let Some(ids) = &fields.source_users {
        relations::rule_source_users::replace(conn, id, &canonical_ids(ids.clone()))?;
    }
    if let Some(ids) = &fields.source_groups {
        relations::rule_source_groups::replace(conn, id, &canonical_ids(ids.clone()))?;
    }
    if let Some(ids) = &fields.source_servers {
        relations::rule_source_servers::replace(conn, id, &canonical_ids(ids.clone()))?;
    }
    if let Some(ids) = &fields.source_servergroups {
        relations::rule_source_servergroups::replace(conn, id, &canonical_ids(ids.clone()))?;
    }
    Ok(())
}

pub fn create(
    conn: &mut DbConnection,
    fields: &RulePatch,
    errors: &FieldErrors,
) -> StoreResult<Rule> {
    let mut errors = errors.clone();
    let ports = check(conn, fields, None, &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    let (Some(name), Some((protocol, ports))) = (fields.name.as_deref(), ports) else {
        return Err(StoreError::Validation(FieldErrors::single(
            "name",
            evon_domain::validate::REQUIRED,
        )));
    };
    let id = crate::per_backend!(conn, c => diesel::insert_into(rules::table)
        .values((
            rules::name.eq(name),
            rules::destination_protocol.eq(protocol.as_str()),
            rules::destination_ports.eq(ports.to_string()),
        ))
        .returning(rules::id)
        .get_result::<i32>(c))?;
    write_sources(conn, id, fields)?;
    get(conn, id)
}

pub fn update(
    conn: &mut DbConnection,
    id: i32,
    fields: &RulePatch,
    errors: &FieldErrors,
) -> StoreResult<Rule> {
    let current = get(conn, id)?;
    let mut errors = errors.clone();
    let ports = check(conn, fields, Some(&current), &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    if let Some(name) = &fields.name {
        diesel::update(rules::table.find(id))
            .set(rules::name.eq(name))
            .execute(conn)?;
    }
    if let Some((protocol, ports)) = ports {
        diesel::update(rules::table.find(id))
            .set((
                rules::destination_protocol.eq(protocol.as_str()),
                rules::destination_ports.eq(ports.to_string()),
            ))
            .execute(conn)?;
    }
    write_sources(conn, id, fields)?;
    get(conn, id)
}

pub fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()> {
    get(conn, id)?;
    touched_one(diesel::delete(rules::table.find(id)).execute(conn)?)
}
