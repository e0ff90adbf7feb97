//! Groups of users, their members and the permissions they confer.

use std::collections::BTreeSet;

use diesel::prelude::*;
use evon_domain::builtin::{self, ALL_USERS_GROUP_ID};
use evon_domain::entity::canonical_ids;
use evon_domain::pagination::Page;
use evon_domain::{FieldErrors, Group, GroupPatch, PermissionId, Principal};

use crate::db::DbConnection;
use crate::error::{touched_one, StoreError, StoreResult};
use crate::relations::{self, first_missing, invalid_pk};
use crate::schema::user_groups;
use crate::{to_i64, to_u64};

pub const NAME_TAKEN: &str = "group with this name already exists.";

fn hydrate(conn: &mut DbConnection, rows: Vec<(i32, String)>) -> StoreResult<Vec<Group>> {
    let ids: Vec<i32> = rows.iter().map(|(id, _)| *id).collect();
    let mut members = relations::members_of_group::load(conn, &ids)?;
    let mut permissions = relations::permissions_of_group::load(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Group {
            id,
            name,
            user_set: members.remove(&id).unwrap_or_default(),
            permissions: permissions.remove(&id).unwrap_or_default(),
        })
        .collect())
}

pub fn count(conn: &mut DbConnection) -> StoreResult<u64> {
    let count: i64 = user_groups::table.count().get_result(conn)?;
    Ok(to_u64(count))
}

/// One page of groups, ordered by id.
pub fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<Group>> {
    let rows = user_groups::table
        .order(user_groups::id)
        .offset(to_i64(page.offset))
        .limit(to_i64(page.limit))
        .select((user_groups::id, user_groups::name))
        .load(conn)?;
    hydrate(conn, rows)
}

pub fn get(conn: &mut DbConnection, id: i32) -> StoreResult<Group> {
    let row = user_groups::table
        .find(id)
        .select((user_groups::id, user_groups::name))
        .first(conn)
        .optional()?;
    hydrate(conn, vec![row.ok_or(StoreError::NotFound)?])?
        .pop()
        .ok_or(StoreError::NotFound)
}

fn check_references(
    conn: &mut DbConnection,
    fields: &GroupPatch,
    own_id: Option<i32>,
    errors: &mut FieldErrors,
) -> StoreResult<()> {
    if let Some(name) = &fields.name {
        let holder: Option<i32> = user_groups::table
            .filter(user_groups::name.eq(name))
            .select(user_groups::id)
            .first(conn)
            .optional()?;
        if holder.is_some_and(|holder| Some(holder) != own_id) {
            errors.add("name", NAME_TAKEN);
        }
    }
    if let Some(members) = &fields.user_set {
        let existing = crate::users::existing_ids(conn, members)?;
        if let Some(missing) = first_missing(members, &existing) {
            errors.add("user_set", invalid_pk(missing));
        }
    }
    Ok(())
}

/// Creates a group. A non-superuser may only put permissions it holds into a group.
pub fn create(
    conn: &mut DbConnection,
    actor: &Principal,
    fields: &GroupPatch,
    errors: &FieldErrors,
) -> StoreResult<Group> {
    let mut errors = errors.clone();
    check_references(conn, fields, None, &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    let permissions = canonical_ids(fields.permissions.clone().unwrap_or_default());
    if !actor.may_grant(&permissions) {
        return Err(StoreError::Forbidden);
    }
    let name = fields.name.as_deref().ok_or_else(|| {
        StoreError::Validation(FieldErrors::single("name", evon_domain::validate::REQUIRED))
    })?;
    diesel::insert_into(user_groups::table)
        .values(user_groups::name.eq(name))
        .execute(conn)?;
    let id: i32 = user_groups::table
        .filter(user_groups::name.eq(name))
        .select(user_groups::id)
        .first(conn)?;
    relations::members_of_group::replace(
        conn,
        id,
        &canonical_ids(fields.user_set.clone().unwrap_or_default()),
    )?;
    relations::permissions_of_group::replace(conn, id, &permissions)?;
    get(conn, id)
}

/// Applies a partial update. All Users keeps its name and every user. A non-superuser may
/// neither add permissions it lacks nor add members to a group whose permissions it lacks.
pub fn update(
    conn: &mut DbConnection,
    actor: &Principal,
    id: i32,
    fields: &GroupPatch,
    errors: &FieldErrors,
) -> StoreResult<Group> {
    let current = get(conn, id)?;
    let mut errors = errors.clone();
    if id == ALL_USERS_GROUP_ID {
        if fields
            .name
            .as_ref()
            .is_some_and(|name| *name != current.name)
        {
            errors.add("name", builtin::ALL_USERS_RENAME);
        }
        if let Some(members) = &fields.user_set {
            let everyone = crate::users::all_ids(conn)?;
            if everyone.iter().any(|user| !members.contains(user)) {
                errors.add("user_set", builtin::ALL_USERS_MEMBERSHIP);
            }
        }
    }
    check_references(conn, fields, Some(id), &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;

    let new_permissions = fields
        .permissions
        .as_ref()
        .map(|p| canonical_ids(p.clone()));
    let added: BTreeSet<PermissionId> = new_permissions
        .iter()
        .flatten()
        .copied()
        .filter(|p| !current.permissions.contains(p))
        .collect();
    if !actor.may_grant(&added) {
        return Err(StoreError::Forbidden);
    }
    let new_members = fields.user_set.as_ref().map(|m| canonical_ids(m.clone()));
    let joins = new_members
        .iter()
        .flatten()
        .any(|user| !current.user_set.contains(user));
    let resulting_permissions = new_permissions.as_ref().unwrap_or(&current.permissions);
    if joins && !actor.may_grant(resulting_permissions) {
        return Err(StoreError::Forbidden);
    }

    if let Some(name) = &fields.name {
        diesel::update(user_groups::table.find(id))
            .set(user_groups::name.eq(name))
            .execute(conn)?;
    }
    if let Some(members) = &new_members {
        relations::members_of_group::replace(conn, id, members)?;
    }
    if let Some(permissions) = &new_permissions {
        relations::permissions_of_group::replace(conn, id, permissions)?;
    }
    get(conn, id)
}

/// Deletes a group; All Users cannot be deleted.
pub fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()> {
    get(conn, id)?;
    if id == ALL_USERS_GROUP_ID {
        return Err(StoreError::Forbidden);
    }
    touched_one(diesel::delete(user_groups::table.find(id)).execute(conn)?)
}

/// The ids among `ids` that name groups.
pub(crate) fn existing_ids(conn: &mut DbConnection, ids: &[i32]) -> StoreResult<Vec<i32>> {
    Ok(user_groups::table
        .filter(user_groups::id.eq_any(ids))
        .select(user_groups::id)
        .load(conn)?)
}
