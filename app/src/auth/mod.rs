//! Authentication: password hashing, sessions, CSRF, login rate limiting and API tokens.

pub mod csrf;
pub mod password;
pub mod session;
pub mod tokens;
