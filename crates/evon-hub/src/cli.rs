//! Command-line interface. Every option can also come from an `EVON_HUB_*` environment variable
//! and, but for the data directory itself, from `evon-hub.toml` in the data directory; flags win
//! over the environment, which wins over the file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Apply pending database migrations
    Migrate,
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
