//! `/api/group`, `/api/servergroup`, `/api/rule` and `/api/policy`: plain model resources.

use evon_domain::pagination::Page;
use evon_domain::policy::{Policy, PolicyPatch, Rule, RulePatch};
use evon_domain::server::{ServerGroup, ServerGroupPatch};
use evon_domain::{FieldErrors, Group, GroupPatch, Model, Principal};
use evon_store::{groups, policies, rules, server_groups, DbConnection, StoreResult};
use serde_json::{Map, Value};

use super::crud::Resource;
use crate::forms::{self, Mode, Parsed};
use crate::wire::{GroupOut, PolicyOut, RuleOut, ServerGroupOut};

pub(crate) struct Groups;

impl Resource for Groups {
    type Item = Group;
    type Patch = GroupPatch;
    type Out = GroupOut;
    const MODEL: Model = Model::Group;
    const PATH: &'static str = "/api/group";

    fn form(body: &Map<String, Value>, mode: Mode) -> Parsed<GroupPatch> {
        forms::group(body, mode)
    }
    fn count(conn: &mut DbConnection) -> StoreResult<u64> {
        groups::count(conn)
    }
    fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<Group>> {
        groups::list(conn, page)
    }
    fn get(conn: &mut DbConnection, id: i32) -> StoreResult<Group> {
        groups::get(conn, id)
    }
    fn create(
        conn: &mut DbConnection,
        actor: &Principal,
        fields: &GroupPatch,
        errors: &FieldErrors,
    ) -> StoreResult<Group> {
        groups::create(conn, actor, fields, errors)
    }
    fn update(
        conn: &mut DbConnection,
        actor: &Principal,
        id: i32,
        fields: &GroupPatch,
        errors: &FieldErrors,
    ) -> StoreResult<Group> {
        groups::update(conn, actor, id, fields, errors)
    }
    fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()> {
        groups::delete(conn, id)
    }
}

pub(crate) struct ServerGroups;

impl Resource for ServerGroups {
    type Item = ServerGroup;
    type Patch = ServerGroupPatch;
    type Out = ServerGroupOut;
    const MODEL: Model = Model::ServerGroup;
    const PATH: &'static str = "/api/servergroup";

    fn form(body: &Map<String, Value>, mode: Mode) -> Parsed<ServerGroupPatch> {
        forms::server_group(body, mode)
    }
    fn count(conn: &mut DbConnection) -> StoreResult<u64> {
        server_groups::count(conn)
    }
    fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<ServerGroup>> {
        server_groups::list(conn, page)
    }
    fn get(conn: &mut DbConnection, id: i32) -> StoreResult<ServerGroup> {
        server_groups::get(conn, id)
    }
    fn create(
        conn: &mut DbConnection,
        _: &Principal,
        fields: &ServerGroupPatch,
        errors: &FieldErrors,
    ) -> StoreResult<ServerGroup> {
        server_groups::create(conn, fields, errors)
    }
    fn update(
        conn: &mut DbConnection,
        _: &Principal,
        id: i32,
        fields: &ServerGroupPatch,
        errors: &FieldErrors,
    ) -> StoreResult<ServerGroup> {
        server_groups::update(conn, id, fields, errors)
    }
    fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()> {
        server_groups::delete(conn, id)
    }
}

pub(crate) struct Rules;

impl Resource for Rules {
    type Item = Rule;
    type Patch = RulePatch;
    type Out = RuleOut;
    const MODEL: Model = Model::Rule;
    const PATH: &'static str = "/api/rule";

    fn form(body: &Map<String, Value>, mode: Mode) -> Parsed<RulePatch> {
        forms::rule(body, mode)
    }
    fn count(conn: &mut DbConnection) -> StoreResult<u64> {
        rules::count(conn)
    }
    fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<Rule>> {
        rules::list(conn, page)
    }
    fn get(conn: &mut DbConnection, id: i32) -> StoreResult<Rule> {
        rules::get(conn, id)
    }
    fn create(
        conn: &mut DbConnection,
        _: &Principal,
        fields: &RulePatch,
        errors: &FieldErrors,
    ) -> StoreResult<Rule> {
        rules::create(conn, fields, errors)
    }
    fn update(
        conn: &mut DbConnection,
        _: &Principal,
        id: i32,
        fields: &RulePatch,
        errors: &FieldErrors,
    ) -> StoreResult<Rule> {
        rules::update(conn, id, fields, errors)
    }
    fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()> {
        rules::delete(conn, id)
    }
}

pub(crate) struct Policies;

impl Resource for Policies {
    type Item = Policy;
    type Patch = PolicyPatch;
    type Out = PolicyOut;
    const MODEL: Model = Model::Policy;
    const PATH: &'static str = "/api/policy";

    fn form(body: &Map<String, Value>, mode: Mode) -> Parsed<PolicyPatch> {
        forms::policy(body, mode)
    }
    fn count(conn: &mut DbConnection) -> StoreResult<u64> {
        policies::count(conn)
    }
    fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<Policy>> {
        policies::list(conn, page)
    }
    fn get(conn: &mut DbConnection, id: i32) -> StoreResult<Policy> {
        policies::get(conn, id)
    }
    fn create(
        conn: &mut DbConnection,
        _: &Principal,
        fields: &PolicyPatch,
        errors: &FieldErrors,
    ) -> StoreResult<Policy> {
        policies::create(conn, fields, errors)
    }
    fn update(
        conn: &mut DbConnection,
        _: &Principal,
        id: i32,
        fields: &PolicyPatch,
        errors: &FieldErrors,
    ) -> StoreResult<Policy> {
        policies::update(conn, id, fields, errors)
    }
    fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()> {
        policies::delete(conn, id)
    }
}
