//! The app's integration tests as one binary: one link and one throwaway PostgreSQL for
//! all of them, and their tests run in parallel across modules. Two tests keep a binary of
//! their own: `request_logs` installs a global tracing subscriber, and `login_burst`
//! measures the process's peak memory.

mod access_cache;
mod admin_pages;
mod api_entities;
mod api_support;
mod api_tors;
mod api_users;
mod auth;
mod browser_harness;
mod browser_pages;
mod cli;
mod coalesced_reads;
mod concurrency;
mod data_exchange;
mod domain;
mod error_pages;
mod falkordb_provision;
mod foundation;
mod fuzz;
mod governance_map_api;
mod governance_map_browser;
mod governance_pages;
mod graph;
mod graph_check;
mod graph_queries;
mod graph_sync;
mod harness;
mod hostile_input;
mod lockout;
mod migrations;
mod ops;
mod outlook;
mod pipeline_api;
mod pipeline_browser;
mod pipeline_graph;
mod pipeline_minutes;
mod pipeline_pages;
mod tor_dependencies;
mod visibility;
