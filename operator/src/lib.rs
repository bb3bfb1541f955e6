//! The ahlt operator: reconciles `AhltEnvironment` resources.

pub mod build;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod crdgen;
pub mod database;
pub mod gateway;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod names;
pub mod render;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;
