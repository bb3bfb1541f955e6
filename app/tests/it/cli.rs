//! The real `ahlt` binary: `migrate` exit codes and the embedded default of `serve`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use ahlt::graph::{FalkorBackend, GraphBackend};
use ahlt::testing::{TestDatabase, falkordb_url, unique_name};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Only guards against a hung child; never part of what is asserted.
const STARTUP_GUARD: Duration = Duration::from_secs(180);

/// The binary with none of the caller's ahlt settings.
fn ahlt() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ahlt"));
    for var in [
        "DATABASE_URL",
        "SESSION_KEY",
        "ADMIN_PASSWORD",
        "APP_ENV",
        "PORT",
        "BIND_ADDRESS",
        "AHLT_DATA_DIR",
        "COOKIE_SECURE",
        "GRAPH_URI",
        "GRAPH_NAME",
        "AHLT_ENV_NAME",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

async fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().await.expect("running ahlt");
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn migrate(url: &str) -> Output {
    run(ahlt()
        .arg("migrate")
        .env("DATABASE_URL", url)
        .env("ADMIN_PASSWORD", "cli-test-admin-password"))
    .await
}

#[tokio::test]
async fn migrate_succeeds_and_succeeds_again_with_nothing_to_do() {
    let db = TestDatabase::create().await;
    let first = migrate(db.url()).await;
    assert!(first.status.success(), "{}{}", first.stdout, first.stderr);
    assert!(
        !first.stdout.contains("0 migration(s) applied"),
        "{}",
        first.stdout
    );

    let second = migrate(db.url()).await;
    assert!(
        second.status.success(),
        "{}{}",
        second.stdout,
        second.stderr
    );
    assert!(
        second
            .stdout
            .contains("0 migration(s) applied, 0 seed item(s) created"),
        "{}",
        second.stdout
    );
}

#[tokio::test]
async fn migrate_refuses_a_database_newer_than_the_binary() {
    let db = TestDatabase::create().await;
    assert!(migrate(db.url()).await.status.success());
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'from a newer ahlt', TRUE, '\\x00'::bytea, 0)",
    )
    .execute(db.pool())
    .await
    .unwrap();

    let out = migrate(db.url()).await;
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("downgrade") && out.stderr.contains("does not know"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("99991231000000"), "{}", out.stderr);
}

#[tokio::test]
async fn migrate_without_database_url_fails_and_says_so() {
    let out = run(ahlt().arg("migrate")).await;
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("DATABASE_URL must be set for `ahlt migrate`"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn serve_with_database_url_outside_dev_requires_a_session_key() {
    let db = TestDatabase::create().await;
    let out = run(ahlt()
        .arg("serve")
        .env("DATABASE_URL", db.url())
        .env("APP_ENV", "prod")
        .env("PORT", free_port().to_string()))
    .await;
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("SESSION_KEY must be set"),
        "{}",
        out.stderr
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ahlt serve` on the embedded default, up and announced.
struct Served {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Everything printed on stdout so far.
    printed: Vec<String>,
    url: String,
    stderr_log: PathBuf,
}

impl Served {
    async fn start(data_dir: &Path, stderr_log: PathBuf) -> Served {
        let log = std::fs::File::create(&stderr_log).unwrap();
        let mut child = ahlt()
            .arg("serve")
            .env("AHLT_DATA_DIR", data_dir)
            .env("PORT", free_port().to_string())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting ahlt serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        // The URL line is printed once the server listens: wait for that event.
        let url = tokio::time::timeout(STARTUP_GUARD, async {
            while let Some(line) = stdout.next_line().await.unwrap() {
                printed.push(line.clone());
                if let Some(url) = line.strip_prefix("ahlt is running at ") {
                    return Some(url.to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(url) = url else {
            panic!(
                "ahlt serve never printed its URL; stdout: {printed:?}; stderr:\n{}",
                std::fs::read_to_string(&stderr_log).unwrap_or_default()
            );
        };
        Served {
            child,
            stdout,
            printed,
            url,
            stderr_log,
        }
    }

    async fn get(&self, path: &str) -> reqwest::StatusCode {
        reqwest::get(format!("{}{path}", self.url))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .status()
    }

    /// SIGTERM, then the exit status and all of stdout.
    async fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let pid = Pid::from_raw(self.child.id().unwrap() as i32);
        kill(pid, Signal::SIGTERM).unwrap();
        while let Some(line) = self.stdout.next_line().await.unwrap() {
            self.printed.push(line);
        }
        let status = self.child.wait().await.unwrap();
        if !status.success() {
            panic!(
                "ahlt serve exited with {status}; stderr:\n{}",
                std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
            );
        }
        (status, self.printed)
    }
}

#[tokio::test]
async fn serve_without_database_url_runs_a_persistent_embedded_database() {
    let tmp = tempfile::tempdir().unwrap();
    // Under root the embedded server runs as `postgres`, which must reach the data dir.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let data_dir = tmp.path().join("data");
    let cluster = data_dir.join("postgres");
    let key_file = data_dir.join("session.key");

    let first = Served::start(&data_dir, tmp.path().join("first.log")).await;
    assert!(first.url.starts_with("http://localhost:"), "{}", first.url);
    assert_eq!(first.get("/healthz").await, 200);
    assert_eq!(first.get("/readyz").await, 200);
    assert!(
        cluster.join("postmaster.pid").exists(),
        "PostgreSQL runs in the data dir"
    );
    let first_log = first.stderr_log.clone();
    let (status, printed) = first.terminate().await;
    assert!(status.success());
    let admin_password = printed
        .iter()
        .find_map(|l| {
            l.split_once("\"admin\" with password: ")
                .map(|(_, p)| p.to_owned())
        })
        .unwrap_or_else(|| panic!("no admin credentials in {printed:?}"));
    // PostgreSQL removes its pid file only on a clean shutdown.
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "PostgreSQL stopped"
    );
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let postgres_password = std::fs::read_to_string(data_dir.join("postgres.password")).unwrap();
    let log = std::fs::read_to_string(first_log).unwrap();
    assert!(log.contains("\"serving\""), "{log}");
    for secret in [
        admin_password.as_str(),
        key.trim(),
        postgres_password.trim(),
    ] {
        assert!(
            !log.contains(secret),
            "a secret leaked into the log:\n{log}"
        );
    }

    let second = Served::start(&data_dir, tmp.path().join("second.log")).await;
    assert_eq!(second.get("/readyz").await, 200);
    let (status, printed) = second.terminate().await;
    assert!(status.success());
    assert!(
        !printed.iter().any(|l| l.contains("password")),
        "the admin already exists: {printed:?}"
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "PostgreSQL stopped"
    );
}

#[tokio::test]
async fn graph_resync_projects_the_database_and_reports_counts() {
    let db = TestDatabase::create().await;
    let migrated = migrate(db.url()).await;
    assert!(migrated.status.success(), "{}", migrated.stderr);
    let graph_uri = falkordb_url().await;
    let graph_name = unique_name("cli_graph");
    let resync = || {
        let mut cmd = ahlt();
        cmd.args(["graph", "resync"])
            .env("DATABASE_URL", db.url())
            .env("GRAPH_URI", &graph_uri)
            .env("GRAPH_NAME", &graph_name)
            .env("AHLT_ENV_NAME", "ci");
        cmd
    };

    let first = run(&mut resync()).await;
    assert!(first.status.success(), "{}", first.stderr);
    let entities: i64 = sqlx::query_scalar("SELECT count(*) FROM entities")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(
        first
            .stdout
            .contains(&format!("environment \"ci\": {entities} node(s) and")),
        "{}",
        first.stdout
    );
    let backend = FalkorBackend::connect(&graph_uri, &graph_name)
        .await
        .unwrap();
    assert_eq!(backend.nodes("ci").await.unwrap().len() as i64, entities);

    let second = run(&mut resync()).await;
    assert!(second.status.success(), "{}", second.stderr);
    assert!(
        second.stdout.contains(" 0 stale item(s) removed"),
        "{}",
        second.stdout
    );
}

#[tokio::test]
async fn graph_resync_without_graph_uri_is_a_usage_error() {
    let db = TestDatabase::create().await;
    let out = run(ahlt()
        .args(["graph", "resync"])
        .env("DATABASE_URL", db.url()))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("--graph-uri"), "{}", out.stderr);
}

fn graph_command(args: &[&str], database_url: &str, graph_uri: &str, graph_name: &str) -> Command {
    let mut cmd = ahlt();
    cmd.args(args)
        .env("DATABASE_URL", database_url)
        .env("GRAPH_URI", graph_uri)
        .env("GRAPH_NAME", graph_name)
        .env("AHLT_ENV_NAME", "ci");
    cmd
}

#[tokio::test]
async fn graph_check_exits_0_when_identical_and_1_on_differences() {
    let db = TestDatabase::create().await;
    assert!(migrate(db.url()).await.status.success());
    let graph_uri = falkordb_url().await;
    let graph_name = unique_name("cli_check");
    let check = || graph_command(&["graph", "check"], db.url(), &graph_uri, &graph_name);
    let resynced = run(&mut graph_command(
        &["graph", "resync"],
        db.url(),
        &graph_uri,
        &graph_name,
    ))
    .await;
    assert!(resynced.status.success(), "{}", resynced.stderr);

    let same = run(&mut check()).await;
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}{}",
        same.stdout,
        same.stderr
    );
    assert!(
        same.stdout
            .contains("environment \"ci\": the graph matches PostgreSQL"),
        "{}",
        same.stdout
    );

    let added: i64 = sqlx::query_scalar(
        "INSERT INTO entities (entity_type, name) VALUES ('team', 'unsynced') RETURNING id",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE entities SET label = 'changed secretly' WHERE entity_type = 'role'")
        .execute(db.pool())
        .await
        .unwrap();
    let differs = run(check().arg("--max-differences").arg("1")).await;
    assert_eq!(
        differs.status.code(),
        Some(1),
        "{}{}",
        differs.stdout,
        differs.stderr
    );
    assert!(
        differs
            .stdout
            .contains("the graph DIFFERS from PostgreSQL: 1 missing, 0 unexpected"),
        "{}",
        differs.stdout
    );
    assert!(
        differs.stdout.contains("  differing node "),
        "{}",
        differs.stdout
    );
    assert!(differs.stdout.contains("... and "), "{}", differs.stdout);
    assert!(!differs.stdout.contains(&format!("missing node {added}")));
    assert!(
        !differs.stdout.contains("changed secretly"),
        "{}",
        differs.stdout
    );
    assert!(
        differs.stderr.contains("differs from PostgreSQL in"),
        "{}",
        differs.stderr
    );
}

#[tokio::test]
async fn graph_check_exits_2_when_it_cannot_compare() {
    let db = TestDatabase::create().await;
    assert!(migrate(db.url()).await.status.success());
    let closed_port = free_port();

    let no_graph = run(&mut graph_command(
        &["graph", "check"],
        db.url(),
        &format!("falkor://127.0.0.1:{closed_port}"),
        "ahlt",
    ))
    .await;
    assert_eq!(no_graph.status.code(), Some(2), "{}", no_graph.stderr);
    assert!(
        no_graph.stderr.contains("cannot check the graph")
            && no_graph.stderr.contains("connecting to the graph"),
        "{}",
        no_graph.stderr
    );

    let no_database = run(&mut graph_command(
        &["graph", "check"],
        &format!("postgres://nobody@127.0.0.1:{closed_port}/ahlt"),
        &falkordb_url().await,
        "ahlt",
    ))
    .await;
    assert_eq!(no_database.status.code(), Some(2), "{}", no_database.stderr);
    assert!(
        no_database.stderr.contains("cannot check the graph")
            && no_database.stderr.contains("connecting to the database"),
        "{}",
        no_database.stderr
    );
}

#[tokio::test]
async fn graph_bench_runs_on_a_scratch_database_and_leaves_nothing_behind() {
    // DATABASE_URL names a database the bench must leave alone (not even migrated here).
    let db = TestDatabase::create().await;
    let graph_uri = falkordb_url().await;
    let graph_name = unique_name("cli_bench");
    let out = run(ahlt()
        .args(["graph", "bench", "--entities", "50", "--relations", "80"])
        .args(["--baseline-relations", "20"])
        .env("DATABASE_URL", db.url())
        .env("GRAPH_URI", &graph_uri)
        .env("GRAPH_NAME", &graph_name)
        .env("AHLT_ENV_NAME", "prod"))
    .await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    for expected in [
        "entities (nodes)",
        "(baseline: sample of 20)",
        "graph check after our resync: identical to PostgreSQL",
        "target >= 20000 entities/s",
    ] {
        assert!(
            out.stdout.contains(expected),
            "{expected:?} in {}",
            out.stdout
        );
    }
    let scratch = out
        .stdout
        .split_once("scratch database ")
        .and_then(|(_, rest)| rest.split(',').next())
        .unwrap_or_else(|| panic!("no scratch database in {}", out.stdout));
    assert!(scratch.starts_with("ahlt_bench_"), "{scratch}");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(scratch)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the scratch database is dropped");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(tables, 0, "DATABASE_URL's own database is untouched");
    let backend = FalkorBackend::connect(&graph_uri, &graph_name)
        .await
        .unwrap();
    assert!(backend.nodes("prod").await.unwrap().is_empty());
    let env = out
        .stdout
        .split_once("ours in environment \"")
        .and_then(|(_, rest)| rest.split('"').next())
        .unwrap();
    assert!(env.starts_with("bench-"), "{env}");
    assert!(
        backend.nodes(env).await.unwrap().is_empty(),
        "the bench's nodes are removed"
    );
}

#[tokio::test]
async fn graph_bench_refuses_an_environment_not_named_bench() {
    let out = run(ahlt()
        .args(["graph", "bench", "--env-name", "prod"])
        .env("GRAPH_URI", "falkor://127.0.0.1:1"))
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("must start with `bench-`"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn admin_grant_and_reset_password_recover_a_locked_out_installation() {
    let db = TestDatabase::create().await;
    assert!(migrate(db.url()).await.status.success());
    // Locked out: nobody holds a role any more.
    sqlx::query("DELETE FROM relations WHERE relation_type_id = (SELECT id FROM entities WHERE entity_type = 'relation_type' AND name = 'has_role')")
        .execute(db.pool())
        .await
        .unwrap();

    let out = run(ahlt()
        .args(["admin", "grant", "admin"])
        .env("DATABASE_URL", db.url()))
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("admin is an active administrator"),
        "{}",
        out.stdout
    );

    let out = run(ahlt()
        .args(["admin", "reset-password", "admin"])
        .env("DATABASE_URL", db.url()))
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    let password = out.stdout.trim().rsplit(": ").next().unwrap().to_owned();
    assert_eq!(password.len(), 24, "{}", out.stdout);
    assert!(
        !out.stderr.contains(&password),
        "the password is never logged"
    );
    let hash: String = sqlx::query_scalar(
        "SELECT c.password_hash FROM user_credentials c JOIN entities u ON u.id = c.user_id WHERE u.name = 'admin'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(ahlt::auth::password::verify_blocking(&password, &hash));
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action IN ('admin.grant', 'admin.reset_password')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(audited, 2);

    let out = run(ahlt()
        .args(["admin", "grant", "nobody"])
        .env("DATABASE_URL", db.url()))
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("no user") || out.stderr.contains("nobody"),
        "{}",
        out.stderr
    );
}
