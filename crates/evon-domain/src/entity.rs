//! The identity half of the hub: users, groups, profiles, and who is asking.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::builtin::{self, ALL_USERS_GROUP_ID};
use crate::permission::{self, Action, Model, PermissionId};

/// A user account as the API shows it (the password hash never leaves the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i32,
    pub username: String,
    pub is_superuser: bool,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub is_active: bool,
    /// Group ids, ascending.
    pub groups: Vec<i32>,
    /// Directly held permission ids, ascending.
    pub user_permissions: Vec<PermissionId>,
}

/// A validated new user. The password is still clear text: hashing is the caller's job.
#[derive(Debug, Clone)]
pub struct UserDraft {
    pub username: String,
    pub password: String,
    pub is_superuser: bool,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub is_active: bool,
    pub groups: Vec<i32>,
    pub user_permissions: Vec<PermissionId>,
}

/// A validated partial update of a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub username: Option<String>,
    pub password: Option<String>,
    pub is_superuser: Option<bool>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub is_active: Option<bool>,
    pub groups: Option<Vec<i32>>,
    pub user_permissions: Option<Vec<PermissionId>>,
}

impl UserPatch {
    /// Drops the changes a built-in account must never undergo: its name, its superuser flag and
    /// its active flag keep their values while the rest of the patch applies.
    pub fn protect_builtin(&mut self, user_id: i32) {
        if builtin::is_builtin_user(user_id) {
            self.username = None;
            self.is_superuser = None;
            self.is_active = None;
        }
    }
}

/// A group as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i32,
    pub name: String,
    /// Member user ids, ascending.
    pub user_set: Vec<i32>,
    /// Permission ids, ascending.
    pub permissions: Vec<PermissionId>,
}

/// A validated new group.
#[derive(Debug, Clone)]
pub struct GroupDraft {
    pub name: String,
    pub user_set: Vec<i32>,
    pub permissions: Vec<PermissionId>,
}

/// A validated partial update of a group.
#[derive(Debug, Clone, Default)]
pub struct GroupPatch {
    pub name: Option<String>,
    pub user_set: Option<Vec<i32>>,
    pub permissions: Option<Vec<PermissionId>>,
}

/// A user's overlay profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserProfile {
    pub user_id: i32,
    pub shared: bool,
    pub ipv4_address: Ipv4Addr,
}

/// Sorts and deduplicates a list of ids, the canonical form of every relation.
pub fn canonical_ids(mut ids: Vec<i32>) -> Vec<i32> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A user's groups always include All Users, whatever a client sends.
pub fn groups_with_all_users(mut groups: Vec<i32>) -> Vec<i32> {
    groups.push(ALL_USERS_GROUP_ID);
    canonical_ids(groups)
}

/// The authenticated user behind a request, with every permission it holds directly or
/// through its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i32,
    pub username: String,
    pub is_superuser: bool,
    pub permissions: BTreeSet<PermissionId>,
}

impl Principal {
    /// Whether this user may perform `action` on `model`. Superusers may do everything; others
    /// need the model permission, and actions with no grantable permission are superuser-only.
    pub fn may(&self, model: Model, action: Action) -> bool {
        self.is_superuser
            || permission::id_of(model, action).is_some_and(|id| self.permissions.contains(&id))
    }

    /// Whether this user may give others every permission in `granted`: a non-superuser can
    /// only pass on what it holds itself.
    pub fn may_grant<'a>(&self, granted: impl IntoIterator<Item = &'a PermissionId>) -> bool {
        self.is_superuser || granted.into_iter().all(|id| self.permissions.contains(id))
    }

    /// Whether this user may change or delete an account. Only superusers may touch a
    /// superuser's account: changing its password or groups would be a way to become it.
    pub fn may_manage_account(&self, target_is_superuser: bool) -> bool {
        self.is_superuser || !target_is_superuser
    }

    /// Whether this user may download bootstrap installers and open their sealed secrets.
    pub fn may_bootstrap(&self) -> bool {
        self.is_superuser || self.user_id == builtin::DEPLOYER_USER_ID
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(is_superuser: bool, permissions: &[PermissionId]) -> Principal {
        Principal {
            user_id: 7,
            username: "carol".into(),
            is_superuser,
            permissions: permissions.iter().copied().collect(),
        }
    }

    #[test]
    fn model_permissions() {
        let viewer = principal(false, &[4]);
        assert!(viewer.may(Model::User, Action::View));
        assert!(!viewer.may(Model::User, Action::Change));
        assert!(
            !viewer.may(Model::Server, Action::Add),
            "not grantable: superusers only"
        );
        assert!(principal(true, &[]).may(Model::Server, Action::Add));
    }

    #[test]
    fn grants_are_bounded_by_what_one_holds() {
        let actor = principal(false, &[1, 2, 4]);
        assert!(actor.may_grant(&[1, 4]));
        assert!(!actor.may_grant(&[1, 3]));
        assert!(actor.may_grant(&[]));
        assert!(principal(true, &[]).may_grant(&[25]));
    }

    #[test]
    fn superuser_accounts_are_off_limits_to_others() {
        assert!(!principal(false, &[2]).may_manage_account(true));
        assert!(principal(false, &[2]).may_manage_account(false));
        assert!(principal(true, &[]).may_manage_account(true));
    }

    #[test]
    fn builtin_patches_keep_identity_fields() {
        let mut patch = UserPatch {
            username: Some("root".into()),
            is_superuser: Some(false),
            is_active: Some(false),
            first_name: Some("Ada".into()),
            ..UserPatch::default()
        };
        patch.protect_builtin(1);
        assert_eq!(patch.username, None);
        assert_eq!(patch.is_superuser, None);
        assert_eq!(patch.is_active, None);
        assert_eq!(patch.first_name.as_deref(), Some("Ada"));
        let mut other = UserPatch {
            username: Some("x".into()),
            ..UserPatch::default()
        };
        other.protect_builtin(3);
        assert_eq!(other.username.as_deref(), Some("x"));
    }

    #[test]
    fn all_users_is_always_a_group() {
        assert_eq!(groups_with_all_users(vec![5, 3, 5]), vec![1, 3, 5]);
        assert_eq!(groups_with_all_users(vec![]), vec![1]);
    }
}
