//! The `ahlt-operator` command line: `run`, `crd`, `render -f`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "ahlt-operator",
    version,
    about = "Kubernetes operator for AhltEnvironment resources"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the controller against the cluster in KUBECONFIG or the in-cluster config.
    Run(RunArgs),
    /// Print the AhltEnvironment CustomResourceDefinition as YAML.
    Crd,
    /// Print every object the operator would apply for an AhltEnvironment (Secrets redacted).
    Render {
        /// The AhltEnvironment manifest (YAML); `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

#[derive(Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// /healthz fails when there is work and no reconcile finished for this many seconds.
    #[arg(long, env = "STALL_AFTER_SECONDS", default_value_t = 900)]
    pub stall_after_seconds: u64,
    /// Name reported with events (the pod name in a cluster); also the leader election identity.
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Reconcile only while holding a Lease (coordination.k8s.io), so that one of several
    /// replicas reconciles. The chart turns it on.
    #[arg(
        long,
        env = "LEADER_ELECTION",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub leader_election: bool,
    /// Name of the leader election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "ahlt-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, or the kubeconfig context's).
    #[arg(long, env = "LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// A leader that has not renewed the Lease for this long is replaced.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// The leader renews this long before the Lease expires.
    #[arg(long, env = "LEASE_RENEW_GRACE_SECONDS", default_value_t = 5)]
    pub lease_renew_grace_seconds: u64,
}

impl From<RunArgs> for crate::controller::Config {
    fn from(args: RunArgs) -> Self {
        let leader_election = args.leader_election.then(|| crate::leader::LeaderElection {
            lease_name: args.lease_name,
            namespace: args.lease_namespace.filter(|n| !n.is_empty()),
            identity: crate::leader::identity(
                args.instance.as_deref(),
                std::env::var("HOSTNAME").ok().as_deref(),
                std::process::id(),
            ),
            lease_duration_seconds: args.lease_duration_seconds,
            renew_grace_seconds: args.lease_renew_grace_seconds,
        });
        crate::controller::Config {
            namespace: args.namespace.filter(|n| !n.is_empty()),
            http_addr: args.http_addr,
            stall_after: Duration::from_secs(args.stall_after_seconds),
            instance: args.instance,
            leader_election,
        }
    }
}

/// JSON logs filtered by RUST_LOG (default info).
fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .flatten_event(true)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crate::crdgen::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Render { file } => {
            let manifest = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&file)
            };
            let manifest = match manifest {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("ahlt-operator render: cannot read {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            match crate::render::render_manifest(&manifest) {
                Ok(yaml) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ahlt-operator render: {}: {e}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => {
            init_logging();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("ahlt-operator: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(crate::controller::run(args.into())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ahlt-operator: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
