//! Delivery consistency checks and the opt-in end-to-end tests, as one binary.

mod consistency;
mod e2e;
