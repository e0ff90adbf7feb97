//! Users, their tokens and their overlay profiles.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use chrono::Utc;
use diesel::prelude::*;
use evon_crypto::{ApiToken, TokenDigest};
use evon_domain::builtin;
use evon_domain::config::HubSettings;
use evon_domain::entity::{canonical_ids, groups_with_all_users};
use evon_domain::errors::NON_FIELD_ERRORS;
use evon_domain::pagination::Page;
use evon_domain::{
    AddressPool, FieldErrors, OverlayRange, PermissionId, Principal, User, UserPatch, UserProfile,
};

use crate::db::DbConnection;
use crate::error::{touched_one, StoreError, StoreResult};
use crate::relations::{self, first_missing, invalid_pk};
use crate::schema::{
    api_tokens, user_group_members, user_group_permissions, user_groups, user_permissions,
    user_profiles, users,
};
use crate::{to_i64, to_u64};

pub const USERNAME_TAKEN: &str = "A user with that username already exists.";

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: i32,
    username: String,
    is_superuser: bool,
    first_name: String,
    last_name: String,
    email: String,
    is_active: bool,
}

impl UserRow {
    fn into_user(self, groups: Vec<i32>, user_permissions: Vec<PermissionId>) -> User {
        User {
            id: self.id,
            username: self.username,
            is_superuser: self.is_superuser,
            first_name: self.first_name,
            last_name: self.last_name,
            email: self.email,
            is_active: self.is_active,
            groups,
            user_permissions,
        }
    }
}

/// Loads users with their relations: three queries whatever their number.
fn hydrate(conn: &mut DbConnection, rows: Vec<UserRow>) -> StoreResult<Vec<User>> {
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let mut groups = relations::user_groups_of_user::load(conn, &ids)?;
    let mut permissions = relations::permissions_of_user::load(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            row.into_user(
                groups.remove(&id).unwrap_or_default(),
                permissions.remove(&id).unwrap_or_default(),
            )
        })
        .collect())
}

/// The number of users.
pub fn count(conn: &mut DbConnection) -> StoreResult<u64> {
    let count: i64 = users::table.count().get_result(conn)?;
    Ok(to_u64(count))
}

/// One page of users, ordered by id.
pub fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<User>> {
    let rows = users::table
        .order(users::id)
        .offset(to_i64(page.offset))
        .limit(to_i64(page.limit))
        .select(UserRow::as_select())
        .load(conn)?;
    hydrate(conn, rows)
}

pub fn get(conn: &mut DbConnection, id: i32) -> StoreResult<User> {
    let row = users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    let row = row.ok_or(StoreError::NotFound)?;
    hydrate(conn, vec![row])?.pop().ok_or(StoreError::NotFound)
}

/// The id of the user with this exact username.
pub fn id_by_username(conn: &mut DbConnection, username: &str) -> StoreResult<i32> {
    users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Every user id, ascending.
pub fn all_ids(conn: &mut DbConnection) -> StoreResult<Vec<i32>> {
    Ok(users::table.order(users::id).select(users::id).load(conn)?)
}

/// The ids among `ids` that exist.
pub(crate) fn existing_ids(conn: &mut DbConnection, ids: &[i32]) -> StoreResult<Vec<i32>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select(users::id)
        .load(conn)?)
}

/// The permissions held through these groups.
pub(crate) fn permissions_of_groups(
    conn: &mut DbConnection,
    group_ids: &[i32],
) -> StoreResult<BTreeSet<PermissionId>> {
    let ids: Vec<PermissionId> = user_group_permissions::table
        .filter(user_group_permissions::group_id.eq_any(group_ids))
        .select(user_group_permissions::permission_id)
        .load(conn)?;
    Ok(ids.into_iter().collect())
}

/// A user about to be inserted.
#[derive(Debug)]
pub struct NewAccount {
    /// `username` is required; absent flags take their defaults.
    pub fields: UserPatch,
    pub password_hash: Option<String>,
    pub token: TokenDigest,
}

/// Inserts a user with its token, profile (at the lowest free user address) and memberships,
/// and returns its id. Callers run it inside a write transaction and have validated the fields.
pub fn insert_account(
    conn: &mut DbConnection,
    settings: &HubSettings,
    account: &NewAccount,
) -> StoreResult<i32> {
    let fields = &account.fields;
    let username = fields.username.as_deref().ok_or_else(|| {
        StoreError::Validation(FieldErrors::single(
            "username",
            evon_domain::validate::REQUIRED,
        ))
    })?;
    let now = Utc::now().naive_utc();
    diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::password_hash.eq(account.password_hash.as_deref()),
            users::is_superuser.eq(fields.is_superuser.unwrap_or(false)),
            users::first_name.eq(fields.first_name.as_deref().unwrap_or("")),
            users::last_name.eq(fields.last_name.as_deref().unwrap_or("")),
            users::email.eq(fields.email.as_deref().unwrap_or("")),
            users::is_active.eq(fields.is_active.unwrap_or(true)),
            users::date_joined.eq(now),
        ))
        .execute(conn)?;
    let id = id_by_username(conn, username)?;
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(id),
            api_tokens::digest.eq(account.token.as_str()),
            api_tokens::created_at.eq(now),
        ))
        .execute(conn)?;
    let address = allocate_user_address(conn, settings)?;
    diesel::insert_into(user_profiles::table)
        .values((
            user_profiles::user_id.eq(id),
            user_profiles::shared.eq(false),
            user_profiles::ipv4_address.eq(address.to_string()),
        ))
        .execute(conn)?;
    let groups = groups_with_all_users(fields.groups.clone().unwrap_or_default());
    relations::user_groups_of_user::replace(conn, id, &groups)?;
    relations::permissions_of_user::replace(
        conn,
        id,
        &canonical_ids(fields.user_permissions.clone().unwrap_or_default()),
    )?;
    Ok(id)
}

fn allocate_user_address(conn: &mut DbConnection, settings: &HubSettings) -> StoreResult<Ipv4Addr> {
    crate::db::lock_for_transaction(conn, crate::db::TransactionLock::UserAddresses)?;
    let pool = AddressPool::new(settings.subnet_key, OverlayRange::Users);
    let used: Vec<String> = user_profiles::table
        .select(user_profiles::ipv4_address)
        .load(conn)?;
    pool.lowest_free(used.iter().filter_map(|a| a.parse().ok()))
        .ok_or_else(|| {
            StoreError::Validation(FieldErrors::single(
                NON_FIELD_ERRORS,
                "Your overlay network is out of addresses! Consider deleting one or more users.",
            ))
        })
}

/// Checks what only stored state can tell about a user write: a free username and existing
/// groups. Adds to `errors`, in field order after the username.
fn check_references(
    conn: &mut DbConnection,
    fields: &UserPatch,
    own_id: Option<i32>,
    errors: &mut FieldErrors,
) -> StoreResult<()> {
    if let Some(username) = &fields.username {
        let holder: Option<i32> = users::table
            .filter(users::username.eq(username))
            .select(users::id)
            .first(conn)
            .optional()?;
        if holder.is_some_and(|holder| Some(holder) != own_id) {
            errors.add("username", USERNAME_TAKEN);
        }
    }
    if let Some(groups) = &fields.groups {
        let existing: Vec<i32> = user_groups::table
            .filter(user_groups::id.eq_any(groups))
            .select(user_groups::id)
            .load(conn)?;
        if let Some(missing) = first_missing(groups, &existing) {
            errors.add("groups", invalid_pk(missing));
        }
    }
    Ok(())
}

/// A created user and its token, shown this once.
#[derive(Debug)]
pub struct CreatedUser {
    pub user: User,
    pub token: ApiToken,
}

/// Creates a user for `actor`. `errors` holds what validation found already; stored-state
/// checks are added to it and any error aborts the change. A non-superuser can neither make a
/// superuser nor give permissions it lacks, directly or through a group.
pub fn create(
    conn: &mut DbConnection,
    actor: &Principal,
    fields: &UserPatch,
    password_hash: Option<&str>,
    errors: &FieldErrors,
) -> StoreResult<CreatedUser> {
    let mut errors = errors.clone();
    check_references(conn, fields, None, &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    if !actor.is_superuser && fields.is_superuser == Some(true) {
        return Err(StoreError::Forbidden);
    }
    let mut granted: BTreeSet<PermissionId> =
        fields.user_permissions.iter().flatten().copied().collect();
    granted.extend(permissions_of_groups(
        conn,
        fields.groups.as_deref().unwrap_or_default(),
    )?);
    if !actor.may_grant(&granted) {
        return Err(StoreError::Forbidden);
    }
    let settings = crate::hub::settings(conn)?;
    let token = ApiToken::generate();
    let account = NewAccount {
        fields: fields.clone(),
        password_hash: password_hash.map(str::to_owned),
        token: token.digest(),
    };
    let id = insert_account(conn, &settings, &account)?;
    Ok(CreatedUser {
        user: get(conn, id)?,
        token,
    })
}

/// Applies a partial update for `actor`, with the same checks as [`create`]; built-in accounts
/// keep their name and flags, and only superusers may touch a superuser's account.
pub fn update(
    conn: &mut DbConnection,
    actor: &Principal,
    id: i32,
    fields: &UserPatch,
    password_hash: Option<&str>,
    errors: &FieldErrors,
) -> StoreResult<User> {
    let current = get(conn, id)?;
    if !actor.may_manage_account(current.is_superuser) {
        return Err(StoreError::Forbidden);
    }
    let mut fields = fields.clone();
    fields.protect_builtin(id);
    let mut errors = errors.clone();
    check_references(conn, &fields, Some(id), &mut errors)?;
    errors.into_result().map_err(StoreError::Validation)?;
    if !actor.is_superuser && fields.is_superuser == Some(true) {
        return Err(StoreError::Forbidden);
    }
    let new_groups = fields
        .groups
        .as_ref()
        .map(|g| groups_with_all_users(g.clone()));
    let mut granted: BTreeSet<PermissionId> = BTreeSet::new();
    if let Some(permissions) = &fields.user_permissions {
        granted.extend(
            permissions
                .iter()
                .filter(|p| !current.user_permissions.contains(p)),
        );
    }
    if let Some(groups) = &new_groups {
        let joined: Vec<i32> = groups
            .iter()
            .copied()
            .filter(|g| !current.groups.contains(g))
            .collect();
        granted.extend(permissions_of_groups(conn, &joined)?);
    }
    if !actor.may_grant(&granted) {
        return Err(StoreError::Forbidden);
    }

    let changes = UserChanges {
        username: fields.username.as_deref(),
        password_hash,
        is_superuser: fields.is_superuser,
        first_name: fields.first_name.as_deref(),
        last_name: fields.last_name.as_deref(),
        email: fields.email.as_deref(),
        is_active: fields.is_active,
    };
    if changes.has_any() {
        diesel::update(users::table.find(id))
            .set(&changes)
            .execute(conn)?;
    }
    if let Some(groups) = &new_groups {
        relations::user_groups_of_user::replace(conn, id, groups)?;
    }
    if let Some(permissions) = &fields.user_permissions {
        relations::permissions_of_user::replace(conn, id, &canonical_ids(permissions.clone()))?;
    }
    get(conn, id)
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct UserChanges<'a> {
    username: Option<&'a str>,
    password_hash: Option<&'a str>,
    is_superuser: Option<bool>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    email: Option<&'a str>,
    is_active: Option<bool>,
}

impl UserChanges<'_> {
    fn has_any(&self) -> bool {
        self.username.is_some()
            || self.password_hash.is_some()
            || self.is_superuser.is_some()
            || self.first_name.is_some()
            || self.last_name.is_some()
            || self.email.is_some()
            || self.is_active.is_some()
    }
}

/// Deletes a user (its token, profile and memberships go with it). The built-in accounts
/// cannot be deleted, nor a superuser by anyone but a superuser.
pub fn delete(conn: &mut DbConnection, actor: &Principal, id: i32) -> StoreResult<()> {
    let current = get(conn, id)?;
    if builtin::is_builtin_user(id) || !actor.may_manage_account(current.is_superuser) {
        return Err(StoreError::Forbidden);
    }
    touched_one(diesel::delete(users::table.find(id)).execute(conn)?)
}

/// Replaces a user's token; the old one stops working with this transaction's commit.
pub fn rotate_token(conn: &mut DbConnection, username: &str) -> StoreResult<ApiToken> {
    let id = id_by_username(conn, username)?;
    let token = ApiToken::generate();
    let now = Utc::now().naive_utc();
    diesel::delete(api_tokens::table.find(id)).execute(conn)?;
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(id),
            api_tokens::digest.eq(token.digest().as_str()),
            api_tokens::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Sets a user's password hash.
pub fn set_password_hash(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
) -> StoreResult<()> {
    let id = id_by_username(conn, username)?;
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(password_hash))
        .execute(conn)?;
    Ok(())
}

fn profile_from_row((user_id, shared, address): (i32, bool, String)) -> StoreResult<UserProfile> {
    let ipv4_address = address
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("user {user_id} has address {address:?}")))?;
    Ok(UserProfile {
        user_id,
        shared,
        ipv4_address,
    })
}

pub fn profile(conn: &mut DbConnection, user_id: i32) -> StoreResult<UserProfile> {
    let row: Option<(i32, bool, String)> = user_profiles::table
        .find(user_id)
        .select((
            user_profiles::user_id,
            user_profiles::shared,
            user_profiles::ipv4_address,
        ))
        .first(conn)
        .optional()?;
    profile_from_row(row.ok_or(StoreError::NotFound)?)
}

pub fn set_shared(conn: &mut DbConnection, user_id: i32, shared: bool) -> StoreResult<UserProfile> {
    let updated = diesel::update(user_profiles::table.find(user_id))
        .set(user_profiles::shared.eq(shared))
        .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    profile(conn, user_id)
}

/// The group ids and permissions a principal is made of, for `auth`.
pub(crate) fn effective_permissions(
    conn: &mut DbConnection,
    user_id: i32,
) -> StoreResult<BTreeSet<PermissionId>> {
    let mut held: BTreeSet<PermissionId> = user_permissions::table
        .filter(user_permissions::user_id.eq(user_id))
        .select(user_permissions::permission_id)
        .load::<PermissionId>(conn)?
        .into_iter()
        .collect();
    let through_groups: Vec<PermissionId> = user_group_permissions::table
        .inner_join(
            user_group_members::table
                .on(user_group_members::group_id.eq(user_group_permissions::group_id)),
        )
        .filter(user_group_members::user_id.eq(user_id))
        .select(user_group_permissions::permission_id)
        .load(conn)?;
    held.extend(through_groups);
    Ok(held)
}

/// The stored password hash of an active user, for password logins (OpenVPN user auth).
/// `None` for unknown or inactive users and for accounts without a usable password.
pub fn active_password_hash(
    conn: &mut DbConnection,
    username: &str,
) -> StoreResult<Option<String>> {
    let hash: Option<Option<String>> = users::table
        .filter(users::username.eq(username))
        .filter(users::is_active.eq(true))
        .select(users::password_hash)
        .first(conn)
        .optional()?;
    Ok(hash.flatten())
}
