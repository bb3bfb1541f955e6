//! `ahlt bench http`: authenticated reads through the app, next to pgbench running the SQL
//! that reads one entity alone (the app coalesces concurrent reads into fewer statements,
//! `store::EntityReads`), on the same scratch database and machine (a benchmark, not a test;
//! docs/benchmarks.md records its numbers and method).
//!
//! It seeds a scratch database (never the one DATABASE_URL names), starts `ahlt serve` on
//! it as a child process with production defaults, and drives it with `wrk`:
//! 1. `GET /api/v1/entities/{random id}` with a bearer token at N connections, against
//!    pgbench (prepared statements, N clients) of the entity and properties SQL alone;
//! 2. the transaction ids handed out during that load: every write takes one (hint bits
//!    and page pruning, which PostgreSQL does on reads, take none), so an authenticated read
//!    that writes nothing leaves the count at 0;
//! 3. `GET /api/v1/abac/check` with one connection: the latency of one ABAC decision.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::auth::tokens;
use crate::domain::{Capability, kind, users};
use crate::graph::bench::ScratchDatabase;
use crate::local_postgres::default_search_path;
use crate::{seed, store};

const BENCH_TYPE: &str = "bench_item";

#[derive(Debug, Clone, clap::Args)]
pub struct HttpBenchArgs {
    /// Entities to generate (two properties each); the reads pick among them at random.
    #[arg(long, default_value_t = 20_000)]
    pub entities: u64,
    /// Concurrent connections of the read load (wrk) and clients of pgbench.
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Seconds each load runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct HttpBenchReport {
    pub entities: u64,
    pub connections: u32,
    pub app_reads_per_sec: f64,
    pub app_read_p50_ms: f64,
    /// CPU time of the `ahlt serve` process per read (user + system).
    pub app_cpu_per_read_us: f64,
    pub pgbench_tps: f64,
    pub writes_during_reads: i64,
    pub abac_p50_ms: f64,
    pub abac_p99_ms: f64,
}

impl HttpBenchReport {
    pub fn ratio(&self) -> f64 {
        self.app_reads_per_sec / self.pgbench_tps
    }
}

impl fmt::Display for HttpBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "entities: {}, connections: {}",
            self.entities, self.connections
        )?;
        writeln!(
            f,
            "GET /api/v1/entities/{{id}} (bearer token): {:.0} req/s, p50 {:.2} ms",
            self.app_reads_per_sec, self.app_read_p50_ms
        )?;
        writeln!(
            f,
            "  app CPU per read (user + system):      {:.0} us",
            self.app_cpu_per_read_us
        )?;
        writeln!(
            f,
            "pgbench, entity + properties SQL only:   {:.0} tps",
            self.pgbench_tps
        )?;
        writeln!(
            f,
            "ratio app / pgbench:                      {:.2}x",
            self.ratio()
        )?;
        writeln!(
            f,
            "writing transactions during the reads:   {}",
            self.writes_during_reads
        )?;
        write!(
            f,
            "ABAC decision (GET /api/v1/abac/check, 1 connection): p50 {:.3} ms, p99 {:.3} ms",
            self.abac_p50_ms, self.abac_p99_ms
        )
    }
}

/// Runs the benchmark; everything it created is removed afterwards, also on failure.
pub async fn run(
    database_url: Option<&str>,
    args: &HttpBenchArgs,
) -> anyhow::Result<HttpBenchReport> {
    let tools = Tools::find()?;
    let scratch = ScratchDatabase::create(database_url).await?;
    let result = run_on(&scratch, &tools, args).await;
    if let Err(e) = scratch.remove().await {
        tracing::warn!(error = format!("{e:#}"), "removing the scratch database");
    }
    result
}

struct Tools {
    wrk: PathBuf,
    pgbench: PathBuf,
}

impl Tools {
    fn find() -> anyhow::Result<Tools> {
        let in_path = |name: &str| {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .chain(default_search_path())
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        };
        let wrk = in_path("wrk").context("wrk not found (Debian: apt-get install wrk)")?;
        let pgbench =
            in_path("pgbench").context("pgbench not found (Debian: it comes with postgresql)")?;
        Ok(Tools { wrk, pgbench })
    }
}

async fn run_on(
    scratch: &ScratchDatabase,
    tools: &Tools,
    args: &HttpBenchArgs,
) -> anyhow::Result<HttpBenchReport> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(scratch.url())
        .await
        .context("connecting to the scratch database")?;
    scratch.prepare(&pool).await?;
    seed::demo(&pool).await.context("applying the demo seed")?;
    let (lo, hi) = seed_entities(&pool, args.entities).await?;
    let admin = users::find_by_username(&pool, "admin")
        .await?
        .context("the base seed's admin")?;
    let (_, token) = tokens::create(&pool, admin.id, "bench").await?;
    let tor_id: i64 =
        sqlx::query_scalar("SELECT id FROM entities WHERE entity_type = $1 ORDER BY id LIMIT 1")
            .bind(kind::TOR)
            .fetch_one(&pool)
            .await
            .context("a ToR from the demo seed")?;
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;

    let dir = tempfile::tempdir()?;
    let server = Server::start(scratch.url(), &dir.path().join("serve.log")).await?;
    let auth = format!("Authorization: Bearer {token}");
    // One read first: the token's first use is recorded (once a minute at most) now.
    server
        .get(&format!("/api/v1/entities/{lo}"), &token)
        .await?;

    let reads_script = dir.path().join("reads.lua");
    std::fs::write(
        &reads_script,
        format!(
            "request = function()\n  return wrk.format(\"GET\", \"/api/v1/entities/\" .. math.random({lo}, {hi}))\nend\n"
        ),
    )?;
    let xid_before = next_transaction_id(&pool).await?;
    let cpu_before = server.cpu_time()?;
    let reads = wrk(
        &tools.wrk,
        &server.base_url,
        args.connections,
        args.seconds,
        &auth,
        Some(&reads_script),
    )
    .await?;
    let writes = next_transaction_id(&pool).await? - xid_before;
    let app_cpu = server.cpu_time()? - cpu_before;

    let capability = Capability::ALL[0].as_str();
    let abac = wrk(
        &tools.wrk,
        &format!(
            "{}/api/v1/abac/check?user_id={}&capability={capability}&tor_id={tor_id}",
            server.base_url, admin.id
        ),
        1,
        args.seconds,
        &auth,
        None,
    )
    .await?;
    server.stop().await;

    let pgbench_tps = pgbench(tools, scratch.url(), dir.path(), lo, hi, args).await?;
    Ok(HttpBenchReport {
        entities: args.entities,
        connections: args.connections,
        app_reads_per_sec: reads.requests_per_sec,
        app_read_p50_ms: reads.p50_ms,
        app_cpu_per_read_us: app_cpu.as_secs_f64() * 1e6
            / (reads.requests_per_sec * f64::from(args.seconds)),
        pgbench_tps,
        writes_during_reads: writes,
        abac_p50_ms: abac.p50_ms,
        abac_p99_ms: abac.p99_ms,
    })
}

/// Inserts `count` entities with two properties each; returns the first and last id.
async fn seed_entities(pool: &PgPool, count: u64) -> anyhow::Result<(i64, i64)> {
    let mut tx = pool.begin().await?;
    let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(
        "WITH added AS ( \
             INSERT INTO entities (entity_type, name, label, sort_order) \
             SELECT $1, 'item-' || g, 'Bench item ' || g, (g % 1000)::int \
             FROM generate_series(1, $2::bigint) g RETURNING id) \
         SELECT min(id), max(id) FROM added",
    )
    .bind(BENCH_TYPE)
    .bind(count as i64)
    .fetch_one(&mut *tx)
    .await
    .context("seeding entities")?;
    sqlx::query(
        "INSERT INTO entity_properties (entity_id, key, value) \
         SELECT id, 'title', to_jsonb('Item number ' || id) FROM entities WHERE entity_type = $1 \
         UNION ALL \
         SELECT id, 'rank', to_jsonb(id % 97) FROM entities WHERE entity_type = $1",
    )
    .bind(BENCH_TYPE)
    .execute(&mut *tx)
    .await
    .context("seeding entity properties")?;
    tx.commit().await?;
    match (lo, hi) {
        (Some(lo), Some(hi)) if hi - lo + 1 == count as i64 => Ok((lo, hi)),
        _ => bail!("--entities must be at least 1 (and the seeded ids consecutive)"),
    }
}

/// The next transaction id the server will hand out (reading it takes none).
async fn next_transaction_id(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
            .fetch_one(pool)
            .await?,
    )
}

/// `ahlt serve` (this binary) on the scratch database, on a free loopback port.
struct Server {
    child: Child,
    base_url: String,
    address: String,
}

impl Server {
    /// Its log goes to `log` (one line per request: a terminal would slow it down).
    async fn start(database_url: &str, log: &Path) -> anyhow::Result<Server> {
        let port = {
            let probe = std::net::TcpListener::bind(("127.0.0.1", 0))?;
            probe.local_addr()?.port()
        };
        let exe = std::env::current_exe().context("locating the ahlt binary")?;
        let child = Command::new(exe)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            // As in production, but over plain HTTP on loopback.
            .env("APP_ENV", "prod")
            .env("SESSION_KEY", random_key())
            .env("COOKIE_SECURE", "false")
            .env_remove("GRAPH_URI")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(log)?))
            .stderr(Stdio::from(std::fs::File::create(
                log.with_extension("err"),
            )?))
            .kill_on_drop(true)
            .spawn()
            .context("starting ahlt serve")?;
        let address = format!("127.0.0.1:{port}");
        let server = Server {
            child,
            base_url: format!("http://{address}"),
            address,
        };
        for _ in 0..300 {
            if server.status("/readyz", None).await.ok() == Some(200) {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
        bail!("ahlt serve did not become ready within 30 s:\n{log}")
    }

    /// The status code of a GET (HTTP/1.0, so the server closes the connection).
    async fn status(&self, path: &str, token: Option<&str>) -> anyhow::Result<u16> {
        let mut stream = tokio::net::TcpStream::connect(&self.address).await?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        stream
            .write_all(
                format!(
                    "GET {path} HTTP/1.0\r\nHost: {}\r\n{auth}\r\n",
                    self.address
                )
                .as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let head = String::from_utf8_lossy(&response);
        head.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no HTTP status line")
    }

    async fn get(&self, path: &str, token: &str) -> anyhow::Result<()> {
        match self.status(path, Some(token)).await? {
            200 => Ok(()),
            status => bail!("GET {path} answered {status}"),
        }
    }

    /// User plus system CPU time the server process has used so far.
    fn cpu_time(&self) -> anyhow::Result<Duration> {
        let pid = self.child.id().context("the server has exited")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let after_name = stat.rsplit_once(')').context("/proc/<pid>/stat")?.1;
        let fields: Vec<u64> = after_name
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let ticks_per_sec = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        Ok(Duration::from_secs_f64(
            fields.iter().sum::<u64>() as f64 / ticks_per_sec,
        ))
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

struct WrkResult {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn wrk(
    wrk: &Path,
    url: &str,
    connections: u32,
    seconds: u32,
    header: &str,
    script: Option<&Path>,
) -> anyhow::Result<WrkResult> {
    let mut command = Command::new(wrk);
    command
        .arg(format!("-t{}", connections.min(2)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-H")
        .arg(header);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(url).output().await.context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
    {
        bail!("the load saw errors: {}", line.trim());
    }
    parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    Some(WrkResult {
        requests_per_sec: field("Requests/sec:")?.parse().ok()?,
        p50_ms: wrk_duration_ms(field("50%")?)?,
        p99_ms: wrk_duration_ms(field("99%")?)?,
    })
}

/// wrk prints durations as `812.00us`, `1.23ms` or `2.01s`.
fn wrk_duration_ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number / 1000.0),
        "ms" => Some(number),
        "s" => Some(number * 1000.0),
        "m" => Some(number * 60_000.0),
        _ => None,
    }
}

/// pgbench of the statement that reads one entity alone
/// ([`store::ENTITY_WITH_PROPERTIES_BY_ID`]), prepared like sqlx prepares it; returns
/// transactions (= statements) per second.
async fn pgbench(
    tools: &Tools,
    database_url: &str,
    dir: &Path,
    lo: i64,
    hi: i64,
    args: &HttpBenchArgs,
) -> anyhow::Result<f64> {
    let script = dir.join("entity.sql");
    let statement = store::ENTITY_WITH_PROPERTIES_BY_ID.replace("$1", ":id");
    std::fs::write(
        &script,
        format!("\\set id random({lo}, {hi})\n{statement};\n"),
    )?;
    let url = url::Url::parse(database_url).context("the scratch database URL")?;
    let mut command = Command::new(&tools.pgbench);
    command
        .args(["-n", "-M", "prepared"])
        .arg(format!("-c{}", args.connections))
        .arg(format!("-j{}", args.connections.min(2)))
        .arg(format!("-T{}", args.seconds))
        .arg("-f")
        .arg(&script)
        .env("PGHOST", url.host_str().unwrap_or("127.0.0.1"))
        .env("PGPORT", url.port().unwrap_or(5432).to_string())
        .env("PGUSER", url.username())
        .env("PGDATABASE", url.path().trim_start_matches('/'));
    // The password goes by environment, never on a command line others can read.
    if let Some(password) = url.password() {
        let password = percent_decode(password);
        command.env("PGPASSWORD", password);
    }
    let output = command.output().await.context("running pgbench")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("unexpected pgbench output:\n{text}"))
}

fn random_key() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

fn percent_decode(value: &str) -> String {
    // Form decoding, with `+` kept (it is no space in a URL's userinfo).
    let value = value.replace('+', "%2B");
    url::form_urlencoded::parse(format!("p={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_understood() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 16 connections\n  \
            Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     90%    1.90ms\n     \
            99%    3.21ms\n  123456 requests in 10.00s, 40.00MB read\nRequests/sec:  12345.67\n\
            Transfer/sec:      4.00MB\n";
        let parsed = parse_wrk(text).unwrap();
        assert_eq!(parsed.requests_per_sec, 12345.67);
        assert_eq!(parsed.p50_ms, 0.812);
        assert_eq!(parsed.p99_ms, 3.21);
        assert_eq!(wrk_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(wrk_duration_ms("fast"), None);
    }

    #[test]
    fn passwords_are_percent_decoded() {
        assert_eq!(percent_decode("a%2Fb%40c"), "a/b@c");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("a+b"), "a+b");
    }
}
