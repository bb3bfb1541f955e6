//! A private PostgreSQL server started from the machine's binaries.
//!
//! Used by `ahlt serve` without `DATABASE_URL` (persistent data dir, password
//! auth) and by the test harness (throwaway cluster, trust auth). The server is
//! our direct child and does a fast shutdown when our process dies.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, mpsc};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::{Gid, Pid, Uid, User};
use rand::Rng;
use tokio::sync::{oneshot, watch};

const SUPERUSER: &str = "ahlt";
const LOG_FILE: &str = "postgres.log";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Attempts when we pick the port: another process may grab it before postgres binds.
const PORT_ATTEMPTS: usize = 5;
const LOG_TAIL_LINES: usize = 20;
/// Shutdown escalation: fast, then immediate, then kill.
const SHUTDOWN_STEPS: [(Signal, Duration); 3] = [
    (Signal::SIGINT, Duration::from_secs(30)),
    (Signal::SIGQUIT, Duration::from_secs(10)),
    (Signal::SIGKILL, Duration::from_secs(10)),
];

/// How to start a [`LocalPostgres`].
#[derive(Debug, Clone)]
pub struct LocalPostgresOptions {
    /// Created and initialised if missing or empty; reused if already initialised.
    pub data_dir: PathBuf,
    /// `None` picks a free port on 127.0.0.1.
    pub port: Option<u16>,
    pub auth: LocalAuth,
}

/// Authentication for TCP connections, fixed when the data dir is initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalAuth {
    /// No password; throwaway test clusters. Also turns durability off for speed.
    Trust,
    /// scram-sha-256 with a generated password kept in `<data_dir>.password`.
    Password,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalPostgresError {
    #[error(
        "PostgreSQL binaries not found: {missing} (searched PATH and /usr/lib/postgresql/*/bin: {searched})"
    )]
    BinariesNotFound { missing: String, searched: String },
    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` system user to run it as"
    )]
    NoPostgresUser,
    #[error("initdb failed for {data_dir} ({status}): {stderr}")]
    InitdbFailed {
        data_dir: PathBuf,
        status: String,
        stderr: String,
    },
    #[error(
        "data directory {data_dir} is initialised but its password file {password_file} is missing (was it created with trust auth?)"
    )]
    MissingPassword {
        data_dir: PathBuf,
        password_file: PathBuf,
    },
    #[error("data directory {data_dir} is in use by another running PostgreSQL server (pid {pid})")]
    DataDirInUse { data_dir: PathBuf, pid: i32 },
    #[error("PostgreSQL could not listen on 127.0.0.1:{port}; last lines of its log:\n{log_tail}")]
    PortInUse { port: u16, log_tail: String },
    #[error("PostgreSQL exited during start-up ({status}); last lines of {log}:\n{log_tail}")]
    ExitedDuringStartup {
        status: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("PostgreSQL was not ready within {timeout:?}; last lines of {log}:\n{log_tail}")]
    StartupTimedOut {
        timeout: Duration,
        log: PathBuf,
        log_tail: String,
    },
    #[error("PostgreSQL did not shut down cleanly: {detail}; last lines of {log}:\n{log_tail}")]
    ShutdownFailed {
        detail: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = LocalPostgresError> = std::result::Result<T, E>;

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> LocalPostgresError {
    let context = context.into();
    move |source| LocalPostgresError::Io { context, source }
}

/// Where the server binaries live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

/// PATH, then `/usr/lib/postgresql/*/bin`, newest version first.
pub fn default_search_path() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut versioned: Vec<((u32, u32), PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let mut parts = name.split('.');
            let major = parts.next()?.parse().ok()?;
            let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
            Some(((major, minor), entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    dirs
}

/// The first directory holding both `initdb` and `postgres`, so their versions match.
pub fn find_binaries(search_path: &[PathBuf]) -> Result<PgBinaries> {
    let search_path: Vec<&PathBuf> = search_path
        .iter()
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    for dir in &search_path {
        let (initdb, postgres) = (dir.join("initdb"), dir.join("postgres"));
        if is_executable(&initdb) && is_executable(&postgres) {
            return Ok(PgBinaries { initdb, postgres });
        }
    }
    let missing: Vec<&str> = ["initdb", "postgres"]
        .into_iter()
        .filter(|bin| !search_path.iter().any(|d| is_executable(&d.join(bin))))
        .collect();
    let missing = if missing.is_empty() {
        "initdb and postgres are never in the same directory".to_string()
    } else {
        missing.join(", ")
    };
    let searched = if search_path.is_empty() {
        "no directories".to_string()
    } else {
        search_path
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    Err(LocalPostgresError::BinariesNotFound { missing, searched })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running private PostgreSQL server.
#[derive(Debug)]
pub struct LocalPostgres {
    data_dir: PathBuf,
    port: u16,
    password: Option<String>,
    process: ServerProcess,
    stopped: bool,
}

impl LocalPostgres {
    /// Initialises the data dir if needed, starts the server and waits until it accepts connections.
    pub async fn start(opts: LocalPostgresOptions) -> Result<LocalPostgres> {
        let bins = find_binaries(&default_search_path())?;
        let data_dir: PathBuf = std::path::absolute(&opts.data_dir)
            .map_err(io_err(format!("resolving {}", opts.data_dir.display())))?
            .components()
            .collect();
        let run_as = run_as_user()?;
        check_not_in_use(&data_dir)?;

        let password = if data_dir.join("PG_VERSION").is_file() {
            read_password(&data_dir, opts.auth)?
        } else {
            init_cluster(&bins, &data_dir, opts.auth, run_as).await?
        };

        let log_path = data_dir.join(LOG_FILE);
        // Keep the previous run's log for post-mortems, but only one.
        if log_path.exists() {
            let old = data_dir.join(format!("{LOG_FILE}.1"));
            fs::rename(&log_path, &old)
                .map_err(io_err(format!("rotating {}", log_path.display())))?;
        }

        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = match opts.port {
                Some(port) => port,
                None => free_port()?,
            };
            match launch(&bins, &data_dir, port, opts.auth, run_as, &log_path).await {
                Ok(process) => {
                    tracing::info!(port, data_dir = %data_dir.display(), "local PostgreSQL ready");
                    return Ok(LocalPostgres {
                        data_dir,
                        port,
                        password,
                        process,
                        stopped: false,
                    });
                }
                Err(LocalPostgresError::PortInUse { port, .. })
                    if opts.port.is_none() && attempt < PORT_ATTEMPTS =>
                {
                    tracing::debug!(port, "port taken before PostgreSQL could bind it, retrying");
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> i32 {
        self.process.pid.as_raw()
    }

    /// `postgres://user[:password]@127.0.0.1:port/database`.
    pub fn url(&self, database: &str) -> String {
        let mut url = format!("postgres://{}", percent_encode(SUPERUSER));
        if let Some(password) = &self.password {
            let _ = write!(url, ":{}", percent_encode(password));
        }
        let _ = write!(
            url,
            "@127.0.0.1:{}/{}?sslmode=disable",
            self.port,
            percent_encode(database)
        );
        url
    }

    /// Fast shutdown, waiting for the server to exit.
    pub async fn stop(mut self) -> Result<()> {
        self.stopped = true;
        let mut outcome = None;
        for (step, (signal, timeout)) in SHUTDOWN_STEPS.into_iter().enumerate() {
            self.process.signal(signal);
            if let Some(exit) = self.process.wait(timeout).await {
                outcome = Some((step, exit));
                break;
            }
        }
        self.shutdown_result(outcome)
    }

    /// [`stop`](Self::stop) for places without an async runtime (e.g. `atexit`).
    pub fn stop_blocking(mut self) -> Result<()> {
        self.stopped = true;
        let mut outcome = None;
        for (step, (signal, timeout)) in SHUTDOWN_STEPS.into_iter().enumerate() {
            self.process.signal(signal);
            if let Some(exit) = self.process.wait_blocking(timeout) {
                outcome = Some((step, exit));
                break;
            }
        }
        self.shutdown_result(outcome)
    }

    fn shutdown_result(&self, outcome: Option<(usize, Exit)>) -> Result<()> {
        let detail = match outcome {
            Some((0, exit)) if exit.success => return Ok(()),
            Some((0, exit)) => format!("exited with {}", exit.description),
            Some((step, exit)) => format!(
                "needed {:?} to stop ({})",
                SHUTDOWN_STEPS[step].0, exit.description
            ),
            None => "still running after SIGKILL".to_string(),
        };
        let log = self.data_dir.join(LOG_FILE);
        Err(LocalPostgresError::ShutdownFailed {
            detail,
            log_tail: log_tail(&log, 0),
            log,
        })
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        if !self.stopped {
            // Best effort: don't block; the waiter thread reaps it.
            self.process.signal(Signal::SIGINT);
        }
    }
}

/// The uid/gid to run the server as: postgres refuses to run as root.
fn run_as_user() -> Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres") {
        Ok(Some(user)) => Ok(Some((user.uid, user.gid))),
        Ok(None) => Err(LocalPostgresError::NoPostgresUser),
        Err(e) => Err(io_err("looking up the postgres user")(e.into())),
    }
}

fn chown_to(path: &Path, run_as: Option<(Uid, Gid)>) -> Result<()> {
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw()))
            .map_err(io_err(format!("chown {} to postgres", path.display())))?;
    }
    Ok(())
}

fn pid_alive(pid: i32) -> bool {
    // EPERM means it exists but belongs to someone else.
    pid > 0 && !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// postmaster.pid with a live pid means another server owns the data dir; a
/// stale one (dead pid) is left for postgres, which replaces it itself.
fn check_not_in_use(data_dir: &Path) -> Result<()> {
    let Ok(text) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return Ok(());
    };
    // Negative for a single-user backend.
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
        .map(i32::abs);
    match pid {
        Some(pid) if pid_alive(pid) => Err(LocalPostgresError::DataDirInUse {
            data_dir: data_dir.to_path_buf(),
            pid,
        }),
        _ => Ok(()),
    }
}

fn password_file(data_dir: &Path) -> PathBuf {
    let mut name = data_dir.as_os_str().to_owned();
    name.push(".password");
    PathBuf::from(name)
}

fn read_password(data_dir: &Path, auth: LocalAuth) -> Result<Option<String>> {
    let path = password_file(data_dir);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim_end().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound && auth == LocalAuth::Trust => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LocalPostgresError::MissingPassword {
            data_dir: data_dir.to_path_buf(),
            password_file: path,
        }),
        Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
    }
}

/// Writes a 0600 file atomically, so a crash never leaves half a password.
fn write_secret(path: &Path, contents: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(format!("creating {}", tmp.display())))?;
    // `mode` is ignored for an existing file.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(contents.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(io_err(format!("writing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(io_err(format!("creating {}", path.display())))
}

fn generate_password() -> String {
    rand::rngs::OsRng
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

async fn init_cluster(
    bins: &PgBinaries,
    data_dir: &Path,
    auth: LocalAuth,
    run_as: Option<(Uid, Gid)>,
) -> Result<Option<String>> {
    fs::create_dir_all(data_dir).map_err(io_err(format!("creating {}", data_dir.display())))?;
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod {}", data_dir.display())))?;
    chown_to(data_dir, run_as)?;

    let mut cmd = tokio::process::Command::new(&bins.initdb);
    cmd.arg("-D")
        .arg(data_dir)
        .args(["--no-sync", "-E", "UTF8", "--locale=C", "-U", SUPERUSER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Our cwd may be unreadable for the postgres user.
        .current_dir("/");
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }

    let (password, pwfile) = match auth {
        LocalAuth::Trust => {
            cmd.arg("--auth=trust");
            (None, None)
        }
        LocalAuth::Password => {
            let password = generate_password();
            // Persist before initdb: a crash right after it must not lose the password.
            write_secret(&password_file(data_dir), &password)?;
            let mut pwfile = tempfile::Builder::new()
                .prefix("ahlt-pwfile-")
                .tempfile()
                .map_err(io_err("creating initdb password file"))?;
            writeln!(pwfile, "{password}").map_err(io_err("writing initdb password file"))?;
            chown_to(pwfile.path(), run_as)?;
            cmd.arg("--auth=scram-sha-256")
                .arg("--pwfile")
                .arg(pwfile.path());
            (Some(password), Some(pwfile))
        }
    };

    let output = cmd
        .output()
        .await
        .map_err(io_err(format!("running {}", bins.initdb.display())))?;
    drop(pwfile);
    if !output.status.success() {
        if password.is_some() {
            let _ = fs::remove_file(password_file(data_dir));
        }
        return Err(LocalPostgresError::InitdbFailed {
            data_dir: data_dir.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(password)
}

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io_err("picking a free port"))
}

async fn launch(
    bins: &PgBinaries,
    data_dir: &Path,
    port: u16,
    auth: LocalAuth,
    run_as: Option<(Uid, Gid)>,
    log_path: &Path,
) -> Result<ServerProcess> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_path)
        .map_err(io_err(format!("opening {}", log_path.display())))?;
    chown_to(log_path, run_as)?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log
        .try_clone()
        .map_err(io_err(format!("opening {}", log_path.display())))?;

    let mut cmd = std::process::Command::new(&bins.postgres);
    cmd.arg("-D")
        .arg(data_dir)
        .arg("-p")
        .arg(port.to_string())
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        .args(["-c", "max_connections=200"])
        .args(["-c", "synchronous_commit=off"]);
    if auth == LocalAuth::Trust {
        // Only for throwaway clusters: these risk corruption on an OS crash.
        cmd.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
    }
    cmd.stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .current_dir("/")
        // Own process group: a terminal's Ctrl-C must reach only us, so we can
        // drain requests before the database goes away.
        .process_group(0);
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    let parent = Pid::this();
    // SAFETY: only async-signal-safe calls (prctl, getppid), no allocation.
    unsafe {
        cmd.pre_exec(move || {
            // Runs after setuid, which would otherwise clear the death signal.
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT)
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            // We may have died before prctl took effect.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(Errno::ESRCH as i32));
            }
            Ok(())
        });
    }

    let child = spawn_from_spawner_thread(cmd)
        .await
        .map_err(io_err(format!("starting {}", bins.postgres.display())))?;
    let process = ServerProcess::watch(child)?;
    wait_ready(&process, data_dir, port, log_path, log_start).await?;
    Ok(process)
}

async fn wait_ready(
    process: &ServerProcess,
    data_dir: &Path,
    port: u16,
    log_path: &Path,
    log_start: u64,
) -> Result<()> {
    let mut exited = process.exited.clone();
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(exit) = process.exit() {
            let tail = log_tail(log_path, log_start);
            if tail.contains("could not bind") || tail.contains("could not create any TCP/IP") {
                return Err(LocalPostgresError::PortInUse {
                    port,
                    log_tail: tail,
                });
            }
            // Lost a race with another server starting on the same data dir.
            check_not_in_use(data_dir)?;
            return Err(LocalPostgresError::ExitedDuringStartup {
                status: exit.description,
                log: log_path.to_path_buf(),
                log_tail: tail,
            });
        }
        if postmaster_ready(data_dir, process.pid) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            for (signal, timeout) in SHUTDOWN_STEPS {
                process.signal(signal);
                if process.wait(timeout).await.is_some() {
                    break;
                }
            }
            return Err(LocalPostgresError::StartupTimedOut {
                timeout: START_TIMEOUT,
                log: log_path.to_path_buf(),
                log_tail: log_tail(log_path, log_start),
            });
        }
        tokio::select! {
            _ = exited.changed() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// postmaster.pid names our child and its status line (8th) says "ready".
fn postmaster_ready(data_dir: &Path, pid: Pid) -> bool {
    let Ok(text) = fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.first().and_then(|l| l.trim().parse::<i32>().ok()) == Some(pid.as_raw())
        && lines.get(7).map(|l| l.trim()) == Some("ready")
}

/// The last lines of the log written since `from`.
fn log_tail(path: &Path, from: u64) -> String {
    const MAX_BYTES: u64 = 64 * 1024;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(from.max(len.saturating_sub(MAX_BYTES))))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(log unreadable: {e})"),
    }
}

type SpawnJob = Box<dyn FnOnce() + Send>;

/// Spawns `cmd` from one long-lived thread.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the
/// process. Tokio workers and per-test runtimes come and go, so forking from
/// them would shut the server down at random; this thread lives as long as the
/// process.
pub(crate) async fn spawn_from_spawner_thread(cmd: std::process::Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("postgres-spawner".into())
            .spawn(move || rx.into_iter().for_each(|job| job()))
            .expect("cannot start the postgres spawner thread");
        tx
    });
    let (reply_tx, reply_rx) = oneshot::channel();
    let mut cmd = cmd;
    spawner
        .send(Box::new(move || {
            let _ = reply_tx.send(cmd.spawn());
        }))
        .map_err(|_| io::Error::other("postgres spawner thread is gone"))?;
    reply_rx
        .await
        .map_err(|_| io::Error::other("postgres spawner thread is gone"))?
}

#[derive(Debug, Clone)]
struct Exit {
    success: bool,
    description: String,
}

#[derive(Debug)]
struct ExitState {
    exit: Mutex<Option<Exit>>,
    cond: Condvar,
}

/// The server child, reaped by its own waiter thread.
#[derive(Debug)]
struct ServerProcess {
    pid: Pid,
    state: Arc<ExitState>,
    exited: watch::Receiver<bool>,
}

impl ServerProcess {
    fn watch(mut child: Child) -> Result<ServerProcess> {
        let pid = Pid::from_raw(child.id() as i32);
        let state = Arc::new(ExitState {
            exit: Mutex::new(None),
            cond: Condvar::new(),
        });
        let (tx, exited) = watch::channel(false);
        let thread_state = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name(format!("postgres-{pid}-waiter"))
            .spawn(move || {
                // Wait without reaping, then reap under the lock: `signal` holds
                // that lock, so it can never hit a recycled pid.
                while let Err(Errno::EINTR) =
                    waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
                {
                }
                let mut exit = lock(&thread_state.exit);
                *exit = Some(match child.wait() {
                    Ok(status) => Exit {
                        success: status.success(),
                        description: status.to_string(),
                    },
                    Err(e) => Exit {
                        success: false,
                        description: format!("unknown exit status ({e})"),
                    },
                });
                thread_state.cond.notify_all();
                drop(exit);
                tx.send_replace(true);
            });
        if let Err(e) = spawned {
            let _ = kill(pid, Signal::SIGKILL);
            return Err(io_err("starting the postgres waiter thread")(e));
        }
        Ok(ServerProcess { pid, state, exited })
    }

    fn exit(&self) -> Option<Exit> {
        lock(&self.state.exit).clone()
    }

    /// Signals the server unless it has already exited.
    fn signal(&self, signal: Signal) {
        let exit = lock(&self.state.exit);
        if exit.is_none() {
            let _ = kill(self.pid, signal);
        }
    }

    async fn wait(&self, timeout: Duration) -> Option<Exit> {
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(timeout, exited.wait_for(|e| *e)).await;
        self.exit()
    }

    fn wait_blocking(&self, timeout: Duration) -> Option<Exit> {
        let guard = lock(&self.state.exit);
        let (guard, _) = self
            .state
            .cond
            .wait_timeout_while(guard, timeout, |e| e.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encode_escapes_reserved_characters() {
        assert_eq!(percent_encode("aZ9-._~"), "aZ9-._~");
        assert_eq!(
            percent_encode("p@ss:w/rd%?é"),
            "p%40ss%3Aw%2Frd%25%3F%C3%A9"
        );
    }

    #[test]
    fn password_file_sits_next_to_the_data_dir() {
        assert_eq!(
            password_file(Path::new("/var/lib/ahlt/pg")),
            Path::new("/var/lib/ahlt/pg.password")
        );
    }
}
