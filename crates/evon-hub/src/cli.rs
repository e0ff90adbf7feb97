//! Command-line interface. Every option can also come from an `EVON_HUB_*` environment variable
//! and, but for the data directory itself, from `evon-hub.toml` in the data directory; flags win
//! over the environment, which wins over the file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "evon-hub",
    version,
    about = "The hub of an OpenVPN hub-and-spoke overlay network"
)]
pub struct Cli {
    #[command(flatten)]
    pub location: Location,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the hub keeps its state; shared by every subcommand, and accepted before or after it.
#[derive(Debug, Clone, Args)]
pub struct Location {
    /// Directory for the embedded database, the hub key and evon-hub.toml [default: ./evon-data]
    #[arg(long, env = "EVON_HUB_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://DATA_DIR/evon-hub.sqlite3]
    #[arg(
        long,
        env = "EVON_HUB_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (initialising an empty database first)
    Serve {
        /// Address to listen on [default: 127.0.0.1:8000]
        #[arg(long, env = "EVON_HUB_BIND")]
        bind: Option<String>,
        /// URL clients reach the hub at, used in pagination links [default: from each request]
        #[arg(long, env = "EVON_HUB_PUBLIC_URL")]
        public_url: Option<String>,
        /// HTTP worker threads [default: one per CPU]
        #[arg(long, env = "EVON_HUB_WORKERS")]
        workers: Option<usize>,
        #[command(flatten)]
        openvpn: OpenVpnArgs,
        /// Keep the kernel's nftables table inet evon in step with the policies [default: on]
        #[arg(long, env = "EVON_HUB_FIREWALL", value_enum)]
        firewall: Option<crate::firewall::FirewallMode>,
    },
    /// Create the schema, the built-in accounts and the hub key
    Init {
        /// Account domain that server names end with [default: hub.evon.local]
        #[arg(long, env = "EVON_HUB_DOMAIN")]
        domain: Option<String>,
        /// Second octet of every overlay address, 0-255 [default: 111]
        #[arg(long, env = "EVON_HUB_SUBNET_KEY")]
        subnet_key: Option<String>,
        /// Print the new credentials as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Manage API tokens
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Manage users
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
    /// The hub's OpenVPN servers
    Openvpn {
        #[command(subcommand)]
        action: OpenVpnCommand,
    },
    /// The hub's firewall: the nftables table inet evon
    Firewall {
        #[command(subcommand)]
        action: crate::firewall::FirewallCommand,
    },
    /// Apply pending database migrations
    Migrate,
    /// Write the whole hub as one JSON document: a backup (it holds password hashes and token
    /// digests, so keep it private)
    Export {
        /// File to write, created readable by its owner only [default: standard output]
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Load a document made by `export` or `fixture` into a freshly initialised, empty hub,
    /// keeping every id
    Import {
        /// The document to load
        file: PathBuf,
    },
    /// Generate a deterministic import document of realistic shape, for tests and benchmarks
    Fixture {
        /// How big a hub to generate
        #[arg(long, value_enum)]
        size: FixtureSize,
        /// The same seed always gives the same document
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// File to write, created readable by its owner only [default: standard output]
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// The sizes of `evon-hub fixture`; counts include the built-in objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FixtureSize {
    /// A handful of each kind, covering every kind of source and target
    Small,
    /// 1,000 servers, 200 users, 50 groups, 40 server groups, 300 rules, 200 policies
    #[value(name = "1k")]
    OneK,
    /// As large as the address ranges allow: 2,000 servers, 1,000 users, 300 groups, 200 server
    /// groups, 2,000 rules, 1,000 policies
    #[value(name = "10k")]
    TenK,
}

/// Where joining servers and people reach the hub's OpenVPN servers.
#[derive(Debug, Clone, Args)]
pub struct OpenVpnArgs {
    /// Host name or address in the `remote` line of client configs [default: the public URL's host, else the account domain]
    #[arg(long, env = "EVON_HUB_OPENVPN_HOST")]
    pub openvpn_host: Option<String>,
    /// TCP port of the OpenVPN server that servers join [default: 1194]
    #[arg(long, env = "EVON_HUB_OPENVPN_SERVER_PORT")]
    pub openvpn_server_port: Option<u16>,
    /// UDP port of the OpenVPN server that people join [default: 1194]
    #[arg(long, env = "EVON_HUB_OPENVPN_USER_PORT")]
    pub openvpn_user_port: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum OpenVpnCommand {
    /// Print the configuration of one of the hub's two OpenVPN servers
    ServerConfig {
        /// Which server: the one servers join (TCP) or the one people join (UDP)
        #[arg(long = "for", value_enum)]
        instance: Instance,
        #[command(flatten)]
        openvpn: OpenVpnArgs,
    },
    /// The hooks OpenVPN runs: server-auth, server-connect, server-disconnect, user-auth, user-connect
    #[command(flatten)]
    Hook(crate::hooks::HookCommand),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Instance {
    Servers,
    Users,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Replace a user's token; the old one stops working at once
    Rotate {
        username: String,
        /// Print {"token": "..."}
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Set a user's password, read from standard input
    SetPassword { username: String },
}
