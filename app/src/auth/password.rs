//! Argon2id password hashing. Hashing is CPU-heavy (and takes 19 MiB per hash), so async
//! callers run it on the blocking pool, and at most [`concurrency`] hashes run at once: a
//! burst of logins waits for a slot (up to [`SLOT_WAIT`]) instead of allocating 19 MiB per
//! request. Excess beyond that wait is [`Busy`] (HTTP 503 with `Retry-After`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

pub const MIN_PASSWORD_LEN: usize = 10;
pub const MAX_PASSWORD_LEN: usize = 256;

/// Environment variable overriding [`concurrency`].
pub const CONCURRENCY_VAR: &str = "PASSWORD_HASH_CONCURRENCY";
/// Default upper bound of concurrent hashes, whatever the core count: 4 x 19 MiB.
const DEFAULT_MAX_CONCURRENCY: usize = 4;
/// How long a request waits for a hashing slot before it is refused as [`Busy`].
pub const SLOT_WAIT: Duration = Duration::from_secs(10);
/// `Retry-After` for [`Busy`].
pub const BUSY_RETRY_AFTER_SECS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be between {MIN_PASSWORD_LEN} and {MAX_PASSWORD_LEN} characters")]
    Policy,
    #[error("password hashing failed")]
    Hash,
    #[error(transparent)]
    Busy(#[from] Busy),
}

/// Every hashing slot stayed taken for [`SLOT_WAIT`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the server is busy checking passwords")]
pub struct Busy;

/// How many hashes may run at once: `PASSWORD_HASH_CONCURRENCY`, else the number of CPUs
/// available to the process, at most 4.
pub fn concurrency() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var(CONCURRENCY_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .min(DEFAULT_MAX_CONCURRENCY)
            })
    })
}

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(concurrency()))
}

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static PEAK_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The most hashes that ever ran at the same time in this process.
pub fn peak_concurrent_hashes() -> usize {
    PEAK_IN_FLIGHT.load(Ordering::SeqCst)
}

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<Option<T>, Busy> {
    let permit = match tokio::time::timeout(SLOT_WAIT, slots().acquire()).await {
        Ok(Ok(permit)) => permit,
        _ => return Err(Busy),
    };
    let result = tokio::task::spawn_blocking(move || {
        let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
        let out = work();
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        out
    })
    .await
    .ok();
    drop(permit);
    Ok(result)
}

pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        Ok(())
    } else {
        Err(PasswordError::Policy)
    }
}

pub fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Checks the policy and hashes on the blocking pool, within the concurrency bound.
pub async fn hash(password: &str) -> Result<String, PasswordError> {
    check_policy(password)?;
    let password = password.to_owned();
    bounded(move || hash_blocking(&password))
        .await?
        .unwrap_or(Err(PasswordError::Hash))
}

/// Verifies on the blocking pool, within the concurrency bound.
pub async fn verify(password: &str, hash: &str) -> Result<bool, Busy> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    Ok(bounded(move || verify_blocking(&password, &hash))
        .await?
        .unwrap_or(false))
}

/// A dummy hash verified when a user does not exist, so timing does not reveal usernames.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking("not-a-real-password-0000").expect("argon2 with default params")
    })
}

/// A random password for generated credentials: 24 characters from an unambiguous alphabet.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_blocking("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_blocking("correct horse battery", &h));
        assert!(!verify_blocking("correct horse batterY", &h));
        assert!(!verify_blocking("anything", "not a hash"));
    }

    #[test]
    fn policy_rejects_short_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(257)).is_err());
        assert!(check_policy("long enough pw").is_ok());
    }

    #[test]
    fn generated_passwords_differ_and_pass_policy() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(check_policy(&a).is_ok());
    }
}
