//! The diesel schema, shared by both backends; `migrations/sqlite` and `migrations/postgres`
//! create the same tables.

diesel::table! {
    hub (id) {
        id -> Integer,
        domain -> Text,
        subnet_key -> Integer,
        initialised_at -> Timestamp,
        generation -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Integer,
        username -> Text,
        password_hash -> Nullable<Text>,
        is_superuser -> Bool,
        first_name -> Text,
        last_name -> Text,
        email -> Text,
        is_active -> Bool,
        date_joined -> Timestamp,
    }
}

diesel::table! {
    api_tokens (user_id) {
        user_id -> Integer,
        digest -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_profiles (user_id) {
        user_id -> Integer,
        shared -> Bool,
        ipv4_address -> Text,
    }
}

diesel::table! {
    user_groups (id) {
        id -> Integer,
        name -> Text,
    }
}

diesel::table! {
    user_group_members (user_id, group_id) {
        user_id -> Integer,
        group_id -> Integer,
    }
}

diesel::table! {
    user_permissions (user_id, permission_id) {
        user_id -> Integer,
        permission_id -> Integer,
    }
}

diesel::table! {
    user_group_permissions (group_id, permission_id) {
        group_id -> Integer,
        permission_id -> Integer,
    }
}

diesel::table! {
    config (id) {
        id -> Integer,
        ec2_iam_role_status -> Bool,
        timezone -> Text,
        auto_update -> Bool,
        auto_update_time -> Text,
        discovery_mode -> Bool,
        uuid_blacklist -> Text,
        uuid_whitelist -> Text,
    }
}

diesel::table! {
    server_groups (id) {
        id -> Integer,
        name -> Text,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    servers (id) {
        id -> Integer,
        uuid -> Text,
        fqdn -> Text,
        ipv4_address -> Text,
        connected -> Bool,
        disconnected_since -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    auth_throttle (username, source) {
        username -> Text,
        source -> Text,
        failures -> Integer,
        window_start -> Timestamp,
        lockouts -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_attempt -> Timestamp,
    }
}

diesel::table! {
    rules (id) {
        id -> Integer,
        name -> Text,
        destination_protocol -> Text,
        destination_ports -> Text,
    }
}

diesel::table! {
    policies (id) {
        id -> Integer,
        name -> Text,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    server_group_members (server_id, group_id) {
        server_id -> Integer,
        group_id -> Integer,
    }
}

diesel::table! {
    rule_source_users (rule_id, user_id) {
        rule_id -> Integer,
        user_id -> Integer,
    }
}

diesel::table! {
    rule_source_groups (rule_id, group_id) {
        rule_id -> Integer,
        group_id -> Integer,
    }
}

diesel::table! {
    rule_source_servers (rule_id, server_id) {
        rule_id -> Integer,
        server_id -> Integer,
    }
}

diesel::table! {
    rule_source_servergroups (rule_id, group_id) {
        rule_id -> Integer,
        group_id -> Integer,
    }
}

diesel::table! {
    policy_rules (policy_id, rule_id) {
        policy_id -> Integer,
        rule_id -> Integer,
    }
}

diesel::table! {
    policy_servers (policy_id, server_id) {
        policy_id -> Integer,
        server_id -> Integer,
    }
}

diesel::table! {
    policy_servergroups (policy_id, group_id) {
        policy_id -> Integer,
        group_id -> Integer,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(user_profiles -> users (user_id));
diesel::joinable!(user_group_members -> users (user_id));
diesel::joinable!(user_group_members -> user_groups (group_id));
diesel::joinable!(user_permissions -> users (user_id));
diesel::joinable!(user_group_permissions -> user_groups (group_id));
diesel::joinable!(server_group_members -> servers (server_id));
diesel::joinable!(server_group_members -> server_groups (group_id));

diesel::allow_tables_to_appear_in_same_query!(
    hub,
    users,
    api_tokens,
    user_profiles,
    user_groups,
    user_group_members,
    user_permissions,
    user_group_permissions,
    config,
    server_groups,
    servers,
    rules,
    policies,
    server_group_members,
    rule_source_users,
    rule_source_groups,
    rule_source_servers,
    rule_source_servergroups,
    policy_rules,
    policy_servers,
    policy_servergroups,
);
