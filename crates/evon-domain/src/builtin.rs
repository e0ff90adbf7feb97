//! Built-in objects every hub has, and the ids they always carry.

/// User 1, the superuser made at initialisation.
pub const ADMIN_USER_ID: i32 = 1;
pub const ADMIN_USERNAME: &str = "admin";
/// User 2, the account bootstrap installers authenticate as.
pub const DEPLOYER_USER_ID: i32 = 2;
pub const DEPLOYER_USERNAME: &str = "deployer";
/// Group 1 holds every user.
pub const ALL_USERS_GROUP_ID: i32 = 1;
pub const ALL_USERS_GROUP_NAME: &str = "All Users";
/// Server group 1 holds every server.
pub const ALL_SERVERS_GROUP_ID: i32 = 1;
pub const ALL_SERVERS_GROUP_NAME: &str = "All Servers";
pub const ALL_SERVERS_GROUP_DESCRIPTION: &str = "Every server on this hub";
/// The Config singleton's id.
pub const CONFIG_ID: i32 = 1;

/// Whether a user is one of the two built-in accounts, which cannot be deleted, renamed,
/// demoted, promoted or deactivated.
pub fn is_builtin_user(user_id: i32) -> bool {
    user_id == ADMIN_USER_ID || user_id == DEPLOYER_USER_ID
}

/// Messages for the protections that are validation errors rather than refusals.
pub const ALL_USERS_RENAME: &str = "The All Users group cannot be renamed.";
pub const ALL_USERS_MEMBERSHIP: &str =
    "Every user is a member of All Users; no user can be removed from it.";
pub const ALL_SERVERS_RENAME: &str = "The All Servers group cannot be renamed.";
pub const ALL_SERVERS_MEMBERSHIP: &str =
    "Every server is a member of All Servers; no server can be removed from it.";
