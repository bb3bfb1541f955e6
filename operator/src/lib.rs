//! The ahlt operator: reconciles `AhltEnvironment` resources.

pub mod crd;
pub mod crdgen;
pub mod names;
pub mod validate;
