//! Benchmark, not a test: creates N environments one after another against the stateful fake
//! API server (`ahlt_operator::testing`) and a real PostgreSQL, runs reconcile passes until
//! each reports DatabaseReady, and prints per environment the passes it took, the requests it
//! sent (GETs among them) and its time. The database and role of each are dropped afterwards.
//!
//! Passes read children from watch caches, as the running controller's do
//! (`controller::cache`); `--live` runs them without caches (every child read by a GET), as
//! before issue 15. GETs are split into the two reads that stay live by design (admin and
//! database Secret), GETs of objects of a kind the caches hold (the goal: none), and others
//! (Gateway API discovery, cached for 60 s).
//!
//!     cargo run --release -p ahlt-operator --features testing --example reconcile_bench -- 20 [--live]
//!
//! PostgreSQL: `TEST_DATABASE_URL` (a superuser URL), else a private server started from the
//! machine's binaries, as the tests do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ahlt_operator::controller::{self, Context, DatabaseProvisioner, Postgres};
use ahlt_operator::crd::AhltEnvironment;
use ahlt_operator::database::AdminCredentials;
use ahlt_operator::http::Health;
use ahlt_operator::metrics::Metrics;
use ahlt_operator::testing::{FakeApiServer, RequestRecord, client};
use base64::Engine;
use futures::StreamExt;
use serde_json::{Value, json};

const NS: &str = "bench";

fn admin_secret(url: &url::Url) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .unwrap()
            .into_owned()
    };
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "pg-admin", "namespace": NS},
        "data": {
            "host": b64(url.host_str().unwrap_or("127.0.0.1")),
            "port": b64(&url.port().unwrap_or(5432).to_string()),
            "username": b64(&decode(url.username())),
            "password": b64(&decode(url.password().unwrap_or_default())),
        }
    })
}

fn environment(name: &str) -> Value {
    json!({
        "apiVersion": "ahlt.io/v1alpha1", "kind": "AhltEnvironment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "environment": "dev",
            "image": {"repository": "registry.example/ahlt", "tag": "1"},
            "database": {"adminSecretRef": {"name": "pg-admin"}},
            "ingress": {"host": format!("{name}.example.org")},
        }
    })
}

fn database_ready(env: &Value) -> bool {
    env["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "DatabaseReady" && c["status"] == "True")
    })
}

struct Sample {
    passes: u32,
    requests: usize,
    gets: usize,
    cached_gets: usize,
    time: Duration,
}

/// Kinds the caches hold (plural as in the request path).
const CACHED: [&str; 7] = [
    "secrets",
    "configmaps",
    "jobs",
    "deployments",
    "services",
    "ingresses",
    "httproutes",
];

/// A GET of one object of a kind the caches hold, other than the two Secrets read live by
/// design (the admin Secret, the environment's database Secret `<name>-db`).
fn get_of_cached_kind(record: &RequestRecord) -> bool {
    let parts: Vec<&str> = record.path.trim_matches('/').split('/').collect();
    let [.., "namespaces", _, plural, name] = parts.as_slice() else {
        return false;
    };
    let live_by_design = *plural == "secrets" && (*name == "pg-admin" || name.ends_with("-db"));
    record.method == "GET" && CACHED.contains(plural) && !live_by_design
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let live = args.iter().any(|a| a == "--live");
    let n: usize = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20);
    let admin_url = url::Url::parse(&ahlt::testing::admin_url().await)?;
    let api = FakeApiServer::start().await;
    api.create(admin_secret(&admin_url));
    let client = client(&api.url());
    let mut ctx = Context::new(
        client.clone(),
        Arc::new(Postgres),
        Arc::new(Metrics::default()),
        Arc::new(Health::new(Duration::from_secs(3600), None)),
        Some("bench".into()),
    );
    let feed = if live {
        None
    } else {
        let (caches, watches) = controller::cache::watch_alone(&client, Some(NS), true);
        let feed = tokio::spawn(watches.for_each(|()| std::future::ready(())));
        caches.listed().await;
        ctx = ctx.with_caches(caches);
        Some(feed)
    };
    let ctx = Arc::new(ctx);
    let run = std::process::id();
    let mut samples = Vec::new();
    println!(
        "passes read children {}",
        if live {
            "live (--live)"
        } else {
            "from the watch caches"
        }
    );
    println!("env\tpasses\trequests\tGETs\tGETs of cached kinds\tms");
    for i in 0..n {
        let name = format!("b{run}-{i}");
        let before = api.requests().len();
        let started = Instant::now();
        api.create(environment(&name));
        let mut passes = 0;
        while !database_ready(&api.get("ahltenvironments", NS, &name).unwrap()) {
            passes += 1;
            anyhow::ensure!(passes <= 5, "{name}: no DatabaseReady after 5 passes");
            let env: AhltEnvironment =
                serde_json::from_value(api.get("ahltenvironments", NS, &name).unwrap())?;
            if let Err(e) = controller::reconcile(Arc::new(env), ctx.clone()).await {
                println!("{name}: pass {passes} failed: {e}");
            }
        }
        let time = started.elapsed();
        // The caches' own lists and watches (by the managed-by label) are not the passes'.
        let log: Vec<RequestRecord> = api.requests()[before..]
            .iter()
            .filter(|r| !r.query.contains("labelSelector"))
            .cloned()
            .collect();
        let gets = log.iter().filter(|r| r.method == "GET").count();
        let cached_gets = log.iter().filter(|r| get_of_cached_kind(r)).count();
        println!(
            "{name}\t{passes}\t{}\t{gets}\t{cached_gets}\t{:.1}",
            log.len(),
            time.as_secs_f64() * 1000.0
        );
        samples.push(Sample {
            passes,
            requests: log.len(),
            gets,
            cached_gets,
            time,
        });
    }

    let mut times: Vec<Duration> = samples.iter().map(|s| s.time).collect();
    times.sort();
    let mean = |f: fn(&Sample) -> f64| samples.iter().map(f).sum::<f64>() / samples.len() as f64;
    println!(
        "\n{n} environments: median {:.1} ms, mean {:.1} ms per environment; {:.2} passes, {:.1} requests ({:.1} GETs, {:.1} of cached kinds) each",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        mean(|s| s.time.as_secs_f64() * 1000.0),
        mean(|s| f64::from(s.passes)),
        mean(|s| s.requests as f64),
        mean(|s| s.gets as f64),
        mean(|s| s.cached_gets as f64),
    );
    if let Some(feed) = feed {
        feed.abort();
    }

    // Clean up what the environments created in PostgreSQL.
    let admin = AdminCredentials {
        host: admin_url.host_str().unwrap_or("127.0.0.1").to_owned(),
        port: admin_url.port().unwrap_or(5432),
        username: admin_url.username().to_owned(),
        password: admin_url.password().unwrap_or_default().to_owned(),
        sslmode: None,
        database: None,
    };
    for i in 0..n {
        let name = format!("b{run}-{i}");
        let db = format!("ahlt_{}", name.replace('-', "_"));
        let owner = ahlt_operator::database::environment_owner(NS, &name);
        Postgres.drop_database(&admin, &db, &db, &owner).await?;
    }
    Ok(())
}
