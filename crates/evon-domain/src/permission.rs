//! The Django-style model permission catalogue.
//!
//! Only the 25 permissions the API lets anyone grant exist here: the original also has "add
//! server", "add/delete Config" and user-profile permissions, but granting them does nothing
//! useful (servers are created by OpenVPN, Config is a singleton, profiles belong to their users),
//! so they are not grantable and therefore not listed.

use serde::Serialize;

/// A permission's stable id, as stored in the database and shown by `/api/permission`.
pub type PermissionId = i32;

/// The models permissions apply to, by their Django names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    User,
    Group,
    Server,
    ServerGroup,
    Rule,
    Policy,
    Config,
    UserProfile,
}

impl Model {
    /// The lower-case model name used in codenames (`view_servergroup`).
    pub fn codename(self) -> &'static str {
        match self {
            Model::User => "user",
            Model::Group => "group",
            Model::Server => "server",
            Model::ServerGroup => "servergroup",
            Model::Rule => "rule",
            Model::Policy => "policy",
            Model::Config => "config",
            Model::UserProfile => "userprofile",
        }
    }

    /// The verbose name used in permission names (`Can add server group`, `Can view Config`).
    pub fn verbose_name(self) -> &'static str {
        match self {
            Model::User => "user",
            Model::Group => "group",
            Model::Server => "server",
            Model::ServerGroup => "server group",
            Model::Rule => "rule",
            Model::Policy => "policy",
            Model::Config => "Config",
            Model::UserProfile => "user profile",
        }
    }
}

/// What a permission allows on its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Add,
    Change,
    Delete,
    View,
}

impl Action {
    pub fn codename(self) -> &'static str {
        match self {
            Action::Add => "add",
            Action::Change => "change",
            Action::Delete => "delete",
            Action::View => "view",
        }
    }
}

/// One grantable permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub id: PermissionId,
    pub model: Model,
    pub action: Action,
}

impl Permission {
    /// Django's codename, such as `change_servergroup`.
    pub fn codename(&self) -> String {
        format!("{}_{}", self.action.codename(), self.model.codename())
    }

    /// The human name, such as `Can change server group`.
    pub fn name(&self) -> String {
        format!(
            "Can {} {}",
            self.action.codename(),
            self.model.verbose_name()
        )
    }
}

const fn perm(id: PermissionId, model: Model, action: Action) -> Permission {
    Permission { id, model, action }
}

/// Every grantable permission, ordered by id. Ids are part of the API: never renumber.
pub const CATALOGUE: [Permission; 25] = [
    perm(1, Model::User, Action::Add),
    perm(2, Model::User, Action::Change),
    perm(3, Model::User, Action::Delete),
    perm(4, Model::User, Action::View),
    perm(5, Model::Group, Action::Add),
    perm(6, Model::Group, Action::Change),
    perm(7, Model::Group, Action::Delete),
    perm(8, Model::Group, Action::View),
    perm(9, Model::Server, Action::Change),
    perm(10, Model::Server, Action::Delete),
    perm(11, Model::Server, Action::View),
    perm(12, Model::ServerGroup, Action::Add),
    perm(13, Model::ServerGroup, Action::Change),
    perm(14, Model::ServerGroup, Action::Delete),
    perm(15, Model::ServerGroup, Action::View),
    perm(16, Model::Rule, Action::Add),
    perm(17, Model::Rule, Action::Change),
    perm(18, Model::Rule, Action::Delete),
    perm(19, Model::Rule, Action::View),
    perm(20, Model::Policy, Action::Add),
    perm(21, Model::Policy, Action::Change),
    perm(22, Model::Policy, Action::Delete),
    perm(23, Model::Policy, Action::View),
    perm(24, Model::Config, Action::Change),
    perm(25, Model::Config, Action::View),
];

/// The permission with this id, if it is grantable.
pub fn by_id(id: PermissionId) -> Option<&'static Permission> {
    CATALOGUE.iter().find(|p| p.id == id)
}

/// The id of the permission for `action` on `model`; `None` when it is not grantable (and so only
/// superusers may perform that action).
pub fn id_of(model: Model, action: Action) -> Option<PermissionId> {
    CATALOGUE
        .iter()
        .find(|p| p.model == model && p.action == action)
        .map(|p| p.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_ids_are_dense_and_ordered() {
        for (index, permission) in CATALOGUE.iter().enumerate() {
            assert_eq!(permission.id as usize, index + 1);
        }
    }

    #[test]
    fn names_follow_django() {
        let names: Vec<String> = CATALOGUE
            .iter()
            .map(|p| format!("{} {}", p.codename(), p.name()))
            .collect();
        insta::assert_snapshot!(names.join("\n"));
    }

    #[test]
    fn ungrantable_permissions_do_not_exist() {
        assert_eq!(id_of(Model::Server, Action::Add), None);
        assert_eq!(id_of(Model::Config, Action::Delete), None);
        assert_eq!(id_of(Model::UserProfile, Action::View), None);
        assert_eq!(id_of(Model::Config, Action::View), Some(25));
        assert!(by_id(0).is_none());
        assert!(by_id(26).is_none());
    }
}
