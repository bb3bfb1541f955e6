//! Tests of the throwaway-PostgreSQL harness and of `LocalPostgres`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ahlt::local_postgres::{
    LocalAuth, LocalPostgres, LocalPostgresError, LocalPostgresOptions, default_search_path,
    find_binaries,
};
use ahlt::testing::{TestDatabase, admin_url, unique_name};
use sqlx::{Connection, PgConnection};

async fn database_exists(name: &str) -> bool {
    let mut admin = PgConnection::connect(&admin_url().await).await.unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    admin.close().await.unwrap();
    exists
}

async fn has_table(pool: &sqlx::PgPool, table: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A temp dir the `postgres` user can traverse (the server runs as it under root).
fn server_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("ahlt-harness-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    dir
}

fn options(data_dir: &Path, auth: LocalAuth) -> LocalPostgresOptions {
    LocalPostgresOptions {
        data_dir: data_dir.to_path_buf(),
        port: None,
        auth,
    }
}

#[tokio::test]
async fn test_databases_are_isolated() {
    let a = TestDatabase::create().await;
    let b = TestDatabase::create().await;
    assert_ne!(a.name(), b.name());
    assert!(a.url().ends_with(a.name()) || a.url().contains(&format!("/{}?", a.name())));

    sqlx::query("CREATE TABLE only_in_a (id int)")
        .execute(a.pool())
        .await
        .unwrap();
    assert!(has_table(a.pool(), "only_in_a").await);
    assert!(!has_table(b.pool(), "only_in_a").await);

    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(b.pool())
        .await
        .unwrap();
    assert_eq!(current, b.name());
}

#[tokio::test]
async fn dropping_a_test_database_removes_it() {
    let db = TestDatabase::create().await;
    let name = db.name().to_string();
    assert!(database_exists(&name).await);
    drop(db);
    assert!(!database_exists(&name).await);
}

#[tokio::test]
async fn test_database_is_dropped_when_the_test_body_panics() {
    let (name_tx, name_rx) = tokio::sync::oneshot::channel();
    let outcome = tokio::spawn(async move {
        let db = TestDatabase::create().await;
        name_tx.send(db.name().to_string()).unwrap();
        panic!("deliberate panic with a live TestDatabase");
    })
    .await;
    assert!(outcome.unwrap_err().is_panic());
    let name = name_rx.await.unwrap();
    assert!(!database_exists(&name).await);
}

#[tokio::test]
async fn one_server_is_shared_by_all_runtimes_in_the_process() {
    // Each #[tokio::test] has its own runtime; threads with their own runtimes,
    // started together, stand in for tests starting at the same time.
    let barrier = std::sync::Barrier::new(4);
    let servers: Vec<(String, u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(async {
                            let url = admin_url().await;
                            let mut conn = PgConnection::connect(&url).await.unwrap();
                            let (port, started): (i32, String) = sqlx::query_as(
                                "SELECT inet_server_port(), pg_postmaster_start_time()::text",
                            )
                            .fetch_one(&mut conn)
                            .await
                            .unwrap();
                            conn.close().await.unwrap();
                            (url, u16::try_from(port).unwrap(), started)
                        })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // The runtimes above are gone; the server must still serve this one.
    let url = admin_url().await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let port: i32 = sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    for server in &servers {
        assert_eq!(server, &servers[0]);
    }
    assert_eq!(servers[0].0, url);
    assert_eq!(i32::from(servers[0].1), port);
}

#[test]
fn unique_names_are_safe_identifiers() {
    let a = unique_name("My-Role");
    let b = unique_name("My-Role");
    assert_ne!(a, b);
    for name in [&a, &b, &unique_name(""), &unique_name("9lives")] {
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_'));
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}"
        );
    }
    assert!(a.starts_with("my_role_"), "{a}");
}

#[tokio::test]
async fn password_auth_survives_restart_with_the_same_password_and_data() {
    let dir = server_dir();
    let data_dir = dir.path().join("data");

    let server = LocalPostgres::start(options(&data_dir, LocalAuth::Password))
        .await
        .unwrap();
    let url = server.url("postgres");
    let prefix = format!("postgres://{}:", server.superuser());
    assert!(url.starts_with(&prefix), "{url}");

    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE persisted (v text); INSERT INTO persisted VALUES ('kept')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let no_password = format!(
        "postgres://{}@127.0.0.1:{}/postgres?sslmode=disable",
        server.superuser(),
        server.port()
    );
    let wrong_password = format!(
        "postgres://{}:wrong@127.0.0.1:{}/postgres?sslmode=disable",
        server.superuser(),
        server.port()
    );
    for bad in [no_password, wrong_password] {
        let err = PgConnection::connect(&bad).await.unwrap_err();
        let code = err.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("28P01"), "{err}");
    }

    let password_file = PathBuf::from(format!("{}.password", data_dir.display()));
    let meta = std::fs::metadata(&password_file).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), nix::unistd::Uid::effective().as_raw());

    server.stop().await.unwrap();
    assert!(PgConnection::connect(&url).await.is_err());

    let server = LocalPostgres::start(options(&data_dir, LocalAuth::Password))
        .await
        .unwrap();
    let url_again = server.url("postgres");
    let password = |u: &str| u[prefix.len()..u.find('@').unwrap()].to_string();
    assert_eq!(password(&url_again), password(&url));
    let mut conn = PgConnection::connect(&url_again).await.unwrap();
    let kept: String = sqlx::query_scalar("SELECT v FROM persisted")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, "kept");
    conn.close().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_data_dir_in_use_is_refused() {
    let dir = server_dir();
    let data_dir = dir.path().join("data");
    let first = LocalPostgres::start(options(&data_dir, LocalAuth::Trust))
        .await
        .unwrap();

    let err = LocalPostgres::start(options(&data_dir, LocalAuth::Trust))
        .await
        .unwrap_err();
    match &err {
        LocalPostgresError::DataDirInUse { data_dir: d, pid } => {
            assert_eq!(d, &data_dir);
            assert_eq!(*pid, first.pid());
        }
        other => panic!("expected DataDirInUse, got {other}"),
    }
    assert!(err.to_string().contains("in use"), "{err}");

    // The refused start must not have disturbed the running server.
    let conn = PgConnection::connect(&first.url("postgres")).await.unwrap();
    conn.close().await.unwrap();
    first.stop().await.unwrap();
}

#[tokio::test]
async fn a_stale_postmaster_pid_does_not_block_start() {
    let dir = server_dir();
    let data_dir = dir.path().join("data");
    let pid_file = data_dir.join("postmaster.pid");

    let server = LocalPostgres::start(options(&data_dir, LocalAuth::Trust))
        .await
        .unwrap();
    let stale = std::fs::read_to_string(&pid_file).unwrap();
    let old_pid = server.pid();
    server.stop().await.unwrap();

    // What a crash leaves behind: the lock file naming a dead postmaster.
    assert!(!pid_file.exists());
    std::fs::write(&pid_file, &stale).unwrap();
    let owner = std::fs::metadata(&data_dir).unwrap();
    std::os::unix::fs::chown(&pid_file, Some(owner.uid()), Some(owner.gid())).unwrap();
    assert_eq!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(old_pid), None),
        Err(nix::errno::Errno::ESRCH),
        "the old postmaster pid was reused; cannot simulate a crash"
    );

    let server = LocalPostgres::start(options(&data_dir, LocalAuth::Trust))
        .await
        .unwrap();
    assert_ne!(server.pid(), old_pid);
    let conn = PgConnection::connect(&server.url("postgres"))
        .await
        .unwrap();
    conn.close().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_taken_fixed_port_is_reported() {
    let dir = server_dir();
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = LocalPostgres::start(LocalPostgresOptions {
        data_dir: dir.path().join("data"),
        port: Some(port),
        auth: LocalAuth::Trust,
    })
    .await
    .unwrap_err();
    match &err {
        LocalPostgresError::PortInUse { port: p, log_tail } => {
            assert_eq!(*p, port);
            assert!(log_tail.contains("could not"), "{log_tail}");
        }
        other => panic!("expected PortInUse, got {other}"),
    }
}

#[tokio::test]
async fn initdb_failure_includes_its_stderr() {
    let dir = server_dir();
    let data_dir = dir.path().join("data");
    // Not empty and not a cluster: initdb refuses it.
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::write(data_dir.join("unrelated"), "x").unwrap();
    let err = LocalPostgres::start(options(&data_dir, LocalAuth::Trust))
        .await
        .unwrap_err();
    match &err {
        LocalPostgresError::InitdbFailed { stderr, .. } => {
            assert!(stderr.contains("not empty"), "{stderr}");
        }
        other => panic!("expected InitdbFailed, got {other}"),
    }
}

#[test]
fn missing_binaries_are_named_with_the_places_searched() {
    let err = find_binaries(&[]).unwrap_err();
    assert!(matches!(err, LocalPostgresError::BinariesNotFound { .. }));
    let message = err.to_string();
    for expected in ["initdb", "postgres", "PATH", "/usr/lib/postgresql/*/bin"] {
        assert!(message.contains(expected), "{message}");
    }

    // Only `postgres` present: only `initdb` is missing.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("postgres");
    std::fs::write(&fake, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let message = find_binaries(&[dir.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    assert!(message.contains("not found: initdb ("), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );

    let found = find_binaries(&default_search_path()).unwrap();
    assert_eq!(found.initdb.parent(), found.postgres.parent());
}

const OWNER_DATA_DIR: &str = "AHLT_HARNESS_OWNER_DATA_DIR";

/// Body of the child process of `server_stops_when_its_owner_process_dies`.
#[test]
#[ignore = "helper process, run by server_stops_when_its_owner_process_dies"]
fn owner_process() {
    let Some(data_dir) = std::env::var_os(OWNER_DATA_DIR) else {
        return;
    };
    // Started from a thread that then exits, like a #[tokio::test] runtime: the
    // server must outlive it.
    let server = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(LocalPostgres::start(options(
                Path::new(&data_dir),
                LocalAuth::Trust,
            )))
            .unwrap()
    })
    .join()
    .unwrap();
    println!("POSTMASTER {} {}", server.pid(), server.url("postgres"));
    // Block until the parent kills us.
    let _ = std::io::stdin().read_line(&mut String::new());
    std::mem::forget(server);
}

#[tokio::test]
async fn server_stops_when_its_owner_process_dies() {
    use std::io::BufRead;
    use std::os::fd::{FromRawFd, OwnedFd};

    let dir = server_dir();
    let data_dir = dir.path().join("data");
    let mut owner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "harness::owner_process",
            "--ignored",
            "--nocapture",
        ])
        .env(OWNER_DATA_DIR, &data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(owner.stdout.take().unwrap());
    let line = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with("POSTMASTER "))
        .expect("the owner process did not start a server");
    let mut fields = line.split(' ').skip(1);
    let pid: i32 = fields.next().unwrap().parse().unwrap();
    let url = fields.next().unwrap().to_string();

    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: the fd is fresh and owned by the OwnedFd, itself owned by the AsyncFd.
    let pidfd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            OwnedFd::from_raw_fd(fd as i32),
            tokio::io::Interest::READABLE,
        )
    }
    .unwrap();

    // Alive although the thread that started it has exited.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();

    owner.kill().unwrap();
    owner.wait().unwrap();
    // A pidfd turns readable when the process exits; the timeout only guards a hang.
    tokio::time::timeout(std::time::Duration::from_secs(60), pidfd.readable())
        .await
        .expect("PostgreSQL still running a minute after its owner died")
        .unwrap()
        .retain_ready();
    let log = std::fs::read_to_string(data_dir.join("postgres.log")).unwrap();
    assert!(log.contains("received fast shutdown request"), "{log}");
    assert!(log.contains("database system is shut down"), "{log}");
}
