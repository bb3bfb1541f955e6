//! Authentication: password hashing, sessions, CSRF, login rate limiting and API tokens.

pub mod access;
pub mod csrf;
pub mod login;
pub mod password;
pub mod rate_limit;
pub mod session;
pub mod tokens;
