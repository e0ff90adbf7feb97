//! Policies: rules applied to target servers and server groups.

use diesel::prelude::*;
use evon_domain::entity::canonical_ids;
use evon_domain::pagination::Page;
use evon_domain::policy::{Policy, PolicyPatch};
use evon_domain::FieldErrors;

use crate::db::DbConnection;
use crate::error::{touched_one, StoreError, StoreResult};
use crate::relations;
use crate::schema::policies;
use crate::{to_i64, to_u64};

type Row = (i32, String, Option<String>);

fn columns() -> (policies::id, policies::name, policies::description) {
    (policies::id, policies::name, policies::description)
}

fn hydrate(conn: &mut DbConnection, rows: Vec<Row>) -> StoreResult<Vec<Policy>> {
    let ids: Vec<i32> = rows.iter().map(|(id, ..)| *id).collect();
    let mut rules = relations::policy_rules::load(conn, &ids)?;
    let mut servers = relations::policy_servers::load(conn, &ids)?;
    let mut servergroups = relations::policy_servergroups::load(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, description)| Policy {
            id,
            name,
            description,
            rules: rules.remove(&id).unwrap_or_default(),
            servers: servers.remove(&id).unwrap_or_default(),
            servergroups: servergroups.remove(&id).unwrap_or_default(),
        })
        .collect())
}

pub fn count(conn: &mut DbConnection) -> StoreResult<u64> {
    let count: i64 = policies::table.count().get_result(conn)?;
    Ok(to_u64(count))
}

pub fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<Policy>> {
    let rows = policies::table
        .order(policies::id)
        .offset(to_i64(page.offset))
        .limit(to_i64(page.limit))
        .select(columns())
        .load(conn)?;
    hydrate(conn, rows)
}

/// Every policy, ordered by id.
pub fn all(conn: &mut DbConnection) -> StoreResult<Vec<Policy>> {
    let rows = policies::table
        .order(policies::id)
        .select(columns())
        .load(conn)?;
    hydrate(conn, rows)
}

pub fn get(conn: &mut DbConnection, id: i32) -> StoreResult<Policy> {
    let row = policies::table
        .find(id)
        .select(columns())
        .first(conn)
        .optional()?;
    hydrate(conn, vec![row.ok_or(StoreError::NotFound)?])?
        .pop()
        .ok_or(StoreError::NotFound)
}

fn check(
    conn: &mut DbConnection,
    fields: &PolicyPatch,
    errors: &mut FieldErrors,
) -> StoreResult<()> {
    relations::check_references(
        conn,
        &[
            ("rules", &fields.rules, crate::rules::existing_ids),
            ("servers", &fields.servers, crate::servers::existing_ids),
            (
                "servergroups",
                &fields.servergroups,
                crate::server_groups::existing_ids,
            ),
        ],
        errors,
    )?;
    Ok(())
}

fn write_relations(conn: &mut DbConnection, id: i32, fields: &PolicyPatch) -> StoreResult<()> {
    if let Some(ids) = &fields.rules {
        relations::policy_rules::replace(conn, id, &canonical_ids(ids.clone()))?;
    }
    if let Some(ids) = &fields.servers {
        relations::policy_servers::replace(conn, id, &canonical_ids(ids.clone()))?;
    }
    if let Some(ids) = &fields.servergroups {
        relations::policy_servergroups::replace(conn, id, &canonical_ids(ids.clone()))?;
    }
    Ok(())
}

pub fn create(
    conn: &mut DbConnection,
    fields: &PolicyPatch,
    errors: &FieldErrors,
) -> StoreResult<Policy> {
    let mut errors = errors.clone();
    check(conn, fields, &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    let name = fields.name.as_deref().ok_or_else(|| {
        StoreError::Validation(FieldErrors::single("name", evon_domain::validate::REQUIRED))
    })?;
    let description = fields.description.clone().flatten();
    let id = crate::per_backend!(conn, c => diesel::insert_into(policies::table)
        .values((policies::name.eq(name), policies::description.eq(&description)))
        .returning(policies::id)
        .get_result::<i32>(c))?;
    write_relations(conn, id, fields)?;
    get(conn, id)
}

pub fn update(
    conn: &mut DbConnection,
    id: i32,
    fields: &PolicyPatch,
    errors: &FieldErrors,
) -> StoreResult<Policy> {
    get(conn, id)?;
    let mut errors = errors.clone();
    check(conn, fields, &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    if let Some(name) = &fields.name {
        diesel::update(policies::table.find(id))
            .set(policies::name.eq(name))
            .execute(conn)?;
    }
    if let Some(description) = &fields.description {
        diesel::update(policies::table.find(id))
            .set(policies::description.eq(description))
            .execute(conn)?;
    }
    write_relations(conn, id, fields)?;
    get(conn, id)
}

pub fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()> {
    get(conn, id)?;
    touched_one(diesel::delete(policies::table.find(id)).execute(conn)?)
}
