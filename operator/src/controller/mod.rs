//! The AhltEnvironment controller.

pub mod apply;
pub mod backoff;
pub mod error;
pub mod observe;
pub mod provision;
pub mod status;
