-- The network half: servers and their groups, rules and their sources, policies and their targets.
CREATE TABLE servers (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    -- Dashed lower-case version-4 UUID: the canonical form of evon-domain's ServerUuid.
    uuid TEXT NOT NULL UNIQUE,
    -- Lower case; UNIQUE keeps two registrations from sharing a name.
    fqdn TEXT NOT NULL UNIQUE,
    ipv4_address TEXT NOT NULL UNIQUE,
    connected BOOLEAN NOT NULL DEFAULT 0,
    disconnected_since TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE server_group_members (
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES server_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (server_id, group_id)
);
CREATE INDEX server_group_members_by_group ON server_group_members (group_id);

CREATE TABLE rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    -- TCP, UDP, ICMP or ALL.
    destination_protocol TEXT NOT NULL,
    -- Canonical port spec ("80,443,7000-8000"), empty for ICMP and ALL.
    destination_ports TEXT NOT NULL DEFAULT ''
);

CREATE TABLE rule_source_users (
    rule_id INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, user_id)
);
CREATE INDEX rule_source_users_by_user ON rule_source_users (user_id);

CREATE TABLE rule_source_groups (
    rule_id INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, group_id)
);
CREATE INDEX rule_source_groups_by_group ON rule_source_groups (group_id);

CREATE TABLE rule_source_servers (
    rule_id INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, server_id)
);
CREATE INDEX rule_source_servers_by_server ON rule_source_servers (server_id);

CREATE TABLE rule_source_servergroups (
    rule_id INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES server_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (rule_id, group_id)
);
CREATE INDEX rule_source_servergroups_by_group ON rule_source_servergroups (group_id);

CREATE TABLE policies (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT
);

CREATE TABLE policy_rules (
    policy_id INTEGER NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    rule_id INTEGER NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, rule_id)
);
CREATE INDEX policy_rules_by_rule ON policy_rules (rule_id);

CREATE TABLE policy_servers (
    policy_id INTEGER NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, server_id)
);
CREATE INDEX policy_servers_by_server ON policy_servers (server_id);

CREATE TABLE policy_servergroups (
    policy_id INTEGER NOT NULL REFERENCES policies (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES server_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, group_id)
);
CREATE INDEX policy_servergroups_by_group ON policy_servergroups (group_id);
