//! The API, driven in-process through the real actix application, on a fresh database per test.
//! Every test that touches the database runs twice, on SQLite and on PostgreSQL, against the
//! same snapshots: both backends must answer byte for byte alike.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod harness;

mod auth;
mod bootstrap;
mod builtins;
mod config;
mod errors;
mod escalation;
mod groups;
mod headers;
mod hostile_bodies;
mod matrix;
mod network;
mod pagination;
mod profiles;
mod secrets;
mod servers;
mod users;
