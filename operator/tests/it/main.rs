//! The operator's integration tests as one binary: one link, tests in parallel across
//! modules.

mod cache_flows;
mod cli;
mod controller;
mod crd_schema;
mod database;
mod docs;
mod flows;
mod graph_flows;
mod route_flows;
mod support;
