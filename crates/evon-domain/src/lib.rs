//! Evon Hub's domain model.
//!
//! Plain types and pure functions: validation of every value a client can send, overlay address
//! allocation, rules' protocols and ports, the access engine that resolves policies into who may
//! reach what, the permission catalogue, the rules that protect built-in objects and prevent
//! privilege escalation, pagination, the rendering of times, and the rendering of the files the
//! hub hands out (installers and OpenVPN configurations, from the workspace's `templates/`).
//! Nothing here performs I/O or knows about HTTP or SQL; the store and the HTTP crate call into it.

pub mod access;
pub mod address;
pub mod artifacts;
pub mod builtin;
pub mod config;
pub mod entity;
pub mod errors;
pub mod firewall;
pub mod pagination;
pub mod permission;
pub mod policy;
pub mod rule;
pub mod server;
pub mod throttle;
pub mod time;
pub mod validate;

pub use access::{
    AccessIndex, AllowEntry, GroupNode, NetworkSnapshot, PolicyNode, ResolvedPair, RuleNode,
    ServerGroupNode, ServerNode, UserNode,
};
pub use address::{AddressPool, OverlayRange, SubnetKey};
pub use entity::{
    Group, GroupDraft, GroupPatch, Principal, User, UserDraft, UserPatch, UserProfile,
};
pub use errors::FieldErrors;
pub use permission::{Action, Model, Permission, PermissionId};
pub use rule::{PortRange, PortSpec, Protocol};
