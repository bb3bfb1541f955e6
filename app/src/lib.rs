//! ahlt: a governance web app on an EAV ontology in PostgreSQL.
// Deep handler futures (pages -> domain -> graph reads -> tokio net) need more than 128.
#![recursion_limit = "256"]

pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data_cli;
pub mod db;
pub mod domain;
pub mod graph;
pub mod http;
pub mod http_bench;
pub mod local_postgres;
pub mod memory;
pub mod seed;
pub mod server;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod test_app;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
