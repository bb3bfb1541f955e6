//! Throwaway PostgreSQL for tests.
//!
//! With `TEST_DATABASE_URL` (an admin URL) tests use that server; otherwise one
//! [`LocalPostgres`] is started lazily per test process and shared by all its
//! tests. Each test gets its own database from [`TestDatabase::create`].

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rand::Rng;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;

use crate::local_postgres::{LocalAuth, LocalPostgres, LocalPostgresOptions};

/// Temp dirs of shared test servers are `<tmp>/ahlt-test-pg-<pid>-<random>`.
const DIR_PREFIX: &str = "ahlt-test-pg-";

/// Only the URL: each `#[tokio::test]` has its own runtime, so nothing bound to
/// one (like a pool) may be shared.
static ADMIN_URL: OnceCell<Result<String, String>> = OnceCell::const_new();

/// Kept so the `atexit` hook can stop the server and remove its files.
static SHARED_SERVER: Mutex<Option<(LocalPostgres, tempfile::TempDir)>> = Mutex::new(None);

/// Superuser URL (maintenance database `postgres`) of the shared test server.
pub async fn admin_url() -> String {
    match ADMIN_URL.get_or_init(init_server).await {
        Ok(url) => url.clone(),
        Err(e) => panic!("test PostgreSQL unavailable: {e}"),
    }
}

async fn init_server() -> Result<String, String> {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.is_empty()
    {
        return Ok(url);
    }
    let tmp = std::env::temp_dir();
    remove_stale_dirs(&tmp);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
        .tempdir_in(&tmp)
        .map_err(|e| format!("creating a temp dir in {}: {e}", tmp.display()))?;
    // As root the server runs as `postgres`, which must reach the data dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
        .map_err(|e| format!("chmod {}: {e}", dir.path().display()))?;
    let server = LocalPostgres::start(LocalPostgresOptions {
        data_dir: dir.path().join("data"),
        port: None,
        auth: LocalAuth::Trust,
    })
    .await
    .map_err(|e| e.to_string())?;
    let url = server.url("postgres");
    *SHARED_SERVER.lock().unwrap_or_else(PoisonError::into_inner) = Some((server, dir));
    // SAFETY: registering a plain `extern "C" fn` has no preconditions.
    if unsafe { nix::libc::atexit(stop_shared_server) } != 0 {
        // Not fatal: the server still dies with us, the next run removes the files.
        eprintln!("ahlt::testing: could not register the atexit cleanup");
    }
    Ok(url)
}

/// Stops the shared server at process exit and removes its files, so test runs
/// leave nothing behind. Killed processes skip this; see [`remove_stale_dirs`].
extern "C" fn stop_shared_server() {
    let shared = SHARED_SERVER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some((server, dir)) = shared {
        if let Err(e) = server.stop_blocking() {
            eprintln!("ahlt::testing: stopping the test PostgreSQL: {e}");
        }
        drop(dir);
    }
}

/// Removes temp dirs of earlier test processes that died without cleaning up.
fn remove_stale_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // A server orphaned by a killed test process is still shutting down:
        // leave it, the next run gets it.
        let postmaster = std::fs::read_to_string(entry.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        if !pid_alive(pid) && !postmaster.is_some_and(pid_alive) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    pid > 0
        && !matches!(
            kill(nix::unistd::Pid::from_raw(pid), None),
            Err(Errno::ESRCH)
        )
}

/// A fresh, empty, uniquely named database, dropped on drop.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    pool: PgPool,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let admin_url = admin_url().await;
        let name = unique_name("ahlt_test");
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test server: {e}"));
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect_lazy(&url)
            .unwrap_or_else(|e| panic!("bad test database URL {url}: {e}"));
        // Built before the first connection so a failure still drops the database.
        let db = TestDatabase {
            name,
            url,
            admin_url,
            pool,
        };
        if let Err(e) = db.pool.acquire().await {
            panic!("connecting to test database {}: {e}", db.name);
        }
        db
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Own thread and runtime: we may be inside the test's runtime (blocking
        // on it would deadlock) or unwinding after a panic.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                // FORCE: our own pool is still connected.
                admin
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok(())
            })
        })
        .join()
        .unwrap_or_else(|_| Err("the drop thread panicked".to_string()));
        if let Err(e) = dropped {
            let message = format!("dropping test database {}: {e}", self.name);
            // A second panic while unwinding would abort the whole test binary.
            if std::thread::panicking() {
                eprintln!("{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

/// A lowercase identifier, safe unquoted, unique per call: `<prefix>_<random>`.
pub fn unique_name(prefix: &str) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut name: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        name.insert(0, 't');
    }
    name.push('_');
    let mut rng = rand::thread_rng();
    // 16 of 36 symbols: ~82 bits, collisions are not a concern.
    name.extend((0..16).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char));
    name
}

/// `url` with its path replaced by `/database`, keeping any query string.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    format!("{}/{database}{query}", &base[..path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
