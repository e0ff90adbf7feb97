-- The identity half of the hub: the hub's fixed settings, users, groups, permissions, profiles,
-- tokens, Config, and the server group table that init seeds with All Servers.
CREATE TABLE hub (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    domain TEXT NOT NULL,
    subnet_key INTEGER NOT NULL CHECK (subnet_key BETWEEN 0 AND 255),
    initialised_at TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username TEXT NOT NULL UNIQUE,
    -- NULL: the account has no usable password (the deployer).
    password_hash TEXT,
    is_superuser BOOLEAN NOT NULL DEFAULT 0,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    is_active BOOLEAN NOT NULL DEFAULT 1,
    date_joined TIMESTAMP NOT NULL
);

-- One token per user, kept only as the SHA-256 digest of the key.
CREATE TABLE api_tokens (
    user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE user_profiles (
    user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shared BOOLEAN NOT NULL DEFAULT 0,
    -- UNIQUE is what keeps two concurrent registrations from sharing an address.
    ipv4_address TEXT NOT NULL UNIQUE
);

CREATE TABLE user_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE user_group_members (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_group_members_by_group ON user_group_members (group_id);

-- Permission ids refer to the catalogue in the domain crate.
CREATE TABLE user_permissions (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, permission_id)
);

CREATE TABLE user_group_permissions (
    group_id INTEGER NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    permission_id INTEGER NOT NULL,
    PRIMARY KEY (group_id, permission_id)
);

CREATE TABLE config (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    ec2_iam_role_status BOOLEAN NOT NULL,
    timezone TEXT NOT NULL,
    auto_update BOOLEAN NOT NULL,
    auto_update_time TEXT NOT NULL,
    discovery_mode BOOLEAN NOT NULL,
    uuid_blacklist TEXT NOT NULL,
    uuid_whitelist TEXT NOT NULL
);

CREATE TABLE server_groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL,
    description TEXT
);
