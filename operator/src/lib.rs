//! The ahlt operator: reconciles `AhltEnvironment` resources.

pub mod build;
pub mod crd;
pub mod database;
pub mod names;
pub mod render;
pub mod validate;
