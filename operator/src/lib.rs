//! The ahlt operator: reconciles `AhltEnvironment` resources.

pub mod crd;
pub mod database;
pub mod names;
pub mod validate;
