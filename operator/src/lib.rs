//! The ahlt operator: reconciles `AhltEnvironment` resources.

pub mod controller;
pub mod crd;
pub mod http;
pub mod metrics;
pub mod names;
pub mod validate;
