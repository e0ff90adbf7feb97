//! Server groups and their members.

use diesel::prelude::*;
use evon_domain::builtin::{self, ALL_SERVERS_GROUP_ID};
use evon_domain::entity::canonical_ids;
use evon_domain::pagination::Page;
use evon_domain::server::{ServerGroup, ServerGroupPatch};
use evon_domain::FieldErrors;

use crate::db::DbConnection;
use crate::error::{touched_one, StoreError, StoreResult};
use crate::relations::{self, first_missing, invalid_pk};
use crate::schema::server_groups;
use crate::{to_i64, to_u64};

type Row = (i32, String, Option<String>);

fn hydrate(conn: &mut DbConnection, rows: Vec<Row>) -> StoreResult<Vec<ServerGroup>> {
    let ids: Vec<i32> = rows.iter().map(|(id, _, _)| *id).collect();
    let mut members = relations::members_of_server_group::load(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, description)| ServerGroup {
            id,
            name,
            description,
            server_set: members.remove(&id).unwrap_or_default(),
        })
        .collect())
}

fn columns() -> (
    server_groups::id,
    server_groups::name,
    server_groups::description,
) {
    (
        server_groups::id,
        server_groups::name,
        server_groups::description,
    )
}

pub fn count(conn: &mut DbConnection) -> StoreResult<u64> {
    let count: i64 = server_groups::table.count().get_result(conn)?;
    Ok(to_u64(count))
}

pub fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<ServerGroup>> {
    let rows = server_groups::table
        .order(server_groups::id)
        .offset(to_i64(page.offset))
        .limit(to_i64(page.limit))
        .select(columns())
        .load(conn)?;
    hydrate(conn, rows)
}

pub fn get(conn: &mut DbConnection, id: i32) -> StoreResult<ServerGroup> {
    let row = server_groups::table
        .find(id)
        .select(columns())
        .first(conn)
        .optional()?;
    hydrate(conn, vec![row.ok_or(StoreError::NotFound)?])?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// The ids among `ids` that name server groups.
pub(crate) fn existing_ids(conn: &mut DbConnection, ids: &[i32]) -> StoreResult<Vec<i32>> {
    Ok(server_groups::table
        .filter(server_groups::id.eq_any(ids))
        .select(server_groups::id)
        .load(conn)?)
}

fn check_members(
    conn: &mut DbConnection,
    fields: &ServerGroupPatch,
    errors: &mut FieldErrors,
) -> StoreResult<()> {
    if let Some(members) = &fields.server_set {
        let existing = crate::servers::existing_ids(conn, members)?;
        if let Some(missing) = first_missing(members, &existing) {
            errors.add("server_set", invalid_pk(missing));
        }
    }
    Ok(())
}

pub fn create(
    conn: &mut DbConnection,
    fields: &ServerGroupPatch,
    errors: &FieldErrors,
) -> StoreResult<ServerGroup> {
    let mut errors = errors.clone();
    check_members(conn, fields, &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    let name = fields.name.as_deref().ok_or_else(|| {
        StoreError::Validation(FieldErrors::single("name", evon_domain::validate::REQUIRED))
    })?;
    let description = fields.description.clone().flatten();
    let id = crate::per_backend!(conn, c => diesel::insert_into(server_groups::table)
        .values((server_groups::name.eq(name), server_groups::description.eq(&description)))
        .returning(server_groups::id)
        .get_result::<i32>(c))?;
    relations::members_of_server_group::replace(
        conn,
        id,
        &canonical_ids(fields.server_set.clone().unwrap_or_default()),
    )?;
    get(conn, id)
}

/// Applies a partial update. All Servers keeps its name and every server.
pub fn update(
    conn: &mut DbConnection,
    id: i32,
    fields: &ServerGroupPatch,
    errors: &FieldErrors,
) -> StoreResult<ServerGroup> {
    let current = get(conn, id)?;
    let mut errors = errors.clone();
    if id == ALL_SERVERS_GROUP_ID {
        if fields
            .name
            .as_ref()
            .is_some_and(|name| *name != current.name)
        {
            errors.add("name", builtin::ALL_SERVERS_RENAME);
        }
        if let Some(members) = &fields.server_set {
            let everyone = crate::servers::all_ids(conn)?;
            if everyone.iter().any(|server| !members.contains(server)) {
                errors.add("server_set", builtin::ALL_SERVERS_MEMBERSHIP);
            }
        }
    }
    check_members(conn, fields, &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    if let Some(name) = &fields.name {
        diesel::update(server_groups::table.find(id))
            .set(server_groups::name.eq(name))
            .execute(conn)?;
    }
    if let Some(description) = &fields.description {
        diesel::update(server_groups::table.find(id))
            .set(server_groups::description.eq(description))
            .execute(conn)?;
    }
    if let Some(members) = &fields.server_set {
        relations::members_of_server_group::replace(conn, id, &canonical_ids(members.clone()))?;
    }
    get(conn, id)
}

/// Deletes a server group; All Servers cannot be deleted.
pub fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()> {
    get(conn, id)?;
    if id == ALL_SERVERS_GROUP_ID {
        return Err(StoreError::Forbidden);
    }
    touched_one(diesel::delete(server_groups::table.find(id)).execute(conn)?)
}
