//! Headless Chromium for tests, driven over WebDriver ([`fantoccini`]).
//!
//! [`Browser::start`] starts `chromedriver` itself on a free loopback port (headless
//! Chromium, `--no-sandbox` because CI runs as root, a private profile directory) and kills
//! it, with the browser, on drop. Where Chromium or chromedriver is not installed it prints
//! why the test is skipped and returns `None`; when they are installed but fail, it panics.
//!
//! ```no_run
//! # async fn demo() {
//! use ahlt::test_app::{ADMIN_PASSWORD, TestApp};
//! use ahlt::testing::browser::Browser;
//! let server = TestApp::new().await.serve().await;
//! let Some(browser) = Browser::start(390, 844).await else { return };
//! browser.login(&server.base_url, "admin", ADMIN_PASSWORD).await;
//! browser.goto(&server.url("/audit")).await;
//! assert!(browser.overflow().await.fits());
//! # }
//! ```
//!
//! Binaries: `AHLT_CHROMEDRIVER` and `AHLT_CHROMIUM` when set, else `chromedriver` and
//! `chromium` (or `chromium-browser`, `google-chrome`) on PATH or in `/usr/bin`
//! (Debian: `apt-get install chromium chromium-driver`).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::local_postgres::spawn_from_spawner_thread;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How long a page may take to load after a navigation or a form submission.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// One headless Chromium session with its own chromedriver.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// The page's width against the viewport's (CSS pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// `document.documentElement.scrollWidth`
    pub scroll_width: u64,
    /// `window.innerWidth`
    pub inner_width: u64,
}

impl Overflow {
    /// No horizontal scrolling: `scrollWidth <= innerWidth`.
    pub fn fits(&self) -> bool {
        self.scroll_width <= self.inner_width
    }
}

impl Browser {
    /// A browser whose viewport is `width` x `height` CSS pixels, or `None` (with the reason
    /// on stderr) when Chromium or chromedriver is not installed.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        let (driver_bin, chromium_bin) = match binaries() {
            Ok(found) => found,
            Err(reason) => {
                eprintln!("skipped: {reason}");
                return None;
            }
        };
        let profile = tempfile::Builder::new()
            .prefix(&format!("ahlt-test-chromium-{}-", std::process::id()))
            .tempdir()
            .expect("creating a Chromium profile directory");
        let mut last_error = String::new();
        // A free port can be taken by someone else before chromedriver binds it.
        for _ in 0..3 {
            let port = free_port();
            let mut driver = spawn_driver(&driver_bin, port, profile.path()).await;
            match connect(port, &chromium_bin, profile.path(), width, height).await {
                Ok(client) => {
                    let browser = Browser {
                        client: Some(client),
                        driver,
                        _profile: profile,
                    };
                    browser.resize(width, height).await;
                    return Some(browser);
                }
                Err(e) => {
                    kill_group(&mut driver);
                    last_error = e;
                }
            }
        }
        let log =
            std::fs::read_to_string(profile.path().join("chromedriver.log")).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "{} and {} are installed but did not start: {last_error}\nchromedriver log (end):\n{tail}",
            driver_bin.display(),
            chromium_bin.display()
        );
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until close()")
    }

    /// Sets the viewport (not the outer window) to `width` x `height` CSS pixels.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client()
            .set_window_size(width, height)
            .await
            .expect("setting the window size");
        // Headless windows have no chrome, but be exact anyway: correct by the difference.
        let inner = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        let (iw, ih) = (
            inner[0].as_u64().unwrap_or(0),
            inner[1].as_u64().unwrap_or(0),
        );
        if iw != u64::from(width) || ih != u64::from(height) {
            let w = (2 * i64::from(width) - iw as i64).max(1) as u32;
            let h = (2 * i64::from(height) - ih as i64).max(1) as u32;
            self.client()
                .set_window_size(w, h)
                .await
                .expect("setting the window size");
        }
    }

    /// Loads `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("loading {url}: {e}"));
        self.wait_loaded().await;
    }

    /// The current URL.
    pub async fn url(&self) -> url::Url {
        self.client().current_url().await.expect("current URL")
    }

    /// The path (and query) of the current URL.
    pub async fn path(&self) -> String {
        let url = self.url().await;
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The page's full HTML.
    pub async fn source(&self) -> String {
        self.client().source().await.expect("page source")
    }

    /// The visible text of the body.
    pub async fn body_text(&self) -> String {
        self.script("return document.body ? document.body.innerText : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `return` a value) in the page.
    pub async fn script(&self, script: &str) -> Value {
        self.client()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("running script {script:?}: {e}"))
    }

    /// Page width against viewport width (no horizontal overflow when [`Overflow::fits`]).
    pub async fn overflow(&self) -> Overflow {
        let v = self
            .script("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        Overflow {
            scroll_width: v[0].as_u64().expect("scrollWidth"),
            inner_width: v[1].as_u64().expect("innerWidth"),
        }
    }

    /// Elements wider than the viewport or reaching past its right edge (tag, class and
    /// width), to explain an overflow in a failure message.
    pub async fn overflowing_elements(&self) -> Vec<String> {
        let v = self
            .script(
                "const w = document.documentElement.clientWidth; const out = [];\
                 for (const e of document.body.querySelectorAll('*')) {\
                   const r = e.getBoundingClientRect();\
                   if (r.right > w + 0.5) out.push(e.tagName.toLowerCase() +\
                     (e.className ? '.' + String(e.className).split(' ').join('.') : '') +\
                     ' right=' + Math.round(r.right));\
                   if (out.length >= 12) break; }\
                 return out;",
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element matching the CSS selector.
    pub async fn find(&self, css: &str) -> Element {
        match self.client().find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no element {css:?} on {}: {e}", self.url().await),
        }
    }

    /// Whether an element matches the CSS selector.
    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client()
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .is_empty()
    }

    /// Types into the fields of the form matching `form_css`: text inputs and text areas
    /// are cleared first; for a checkbox, `"on"`/`"off"` sets it; a select gets the option
    /// with that value.
    pub async fn fill(&self, form_css: &str, fields: &[(&str, &str)]) {
        for (name, value) in fields {
            let css = format!("{form_css} [name=\"{name}\"]");
            let element = self.find(&css).await;
            let tag = element.tag_name().await.expect("tag name");
            let kind = element
                .attr("type")
                .await
                .expect("type attribute")
                .unwrap_or_default();
            if kind == "checkbox" || kind == "radio" {
                let checked =
                    element.prop("checked").await.expect("checked").as_deref() == Some("true");
                if checked != (*value == "on") {
                    element.click().await.expect("clicking a checkbox");
                }
            } else if tag == "select" {
                element
                    .select_by_value(value)
                    .await
                    .unwrap_or_else(|e| panic!("selecting {value:?} in {css}: {e}"));
            } else {
                element.clear().await.expect("clearing a field");
                element
                    .send_keys(value)
                    .await
                    .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
            }
        }
    }

    /// Submits the form matching `form_css` with its first submit button (a real click, so
    /// the browser's own validation runs) and waits for the next page to load.
    pub async fn submit(&self, form_css: &str) {
        self.script("window.__ahltBeforeSubmit = true; return null;")
            .await;
        let button = self
            .find(&format!(
                "{form_css} button[type=submit], {form_css} input[type=submit], {form_css} button:not([type])"
            ))
            .await;
        button.click().await.expect("clicking submit");
        self.wait_for_new_document().await;
    }

    /// Clicks the link (or button) matching `css` and waits for the next page to load.
    pub async fn follow(&self, css: &str) {
        self.script("window.__ahltBeforeSubmit = true; return null;")
            .await;
        self.find(css).await.click().await.expect("clicking");
        self.wait_for_new_document().await;
    }

    /// [`Browser::fill`] then [`Browser::submit`].
    pub async fn fill_and_submit(&self, form_css: &str, fields: &[(&str, &str)]) {
        self.fill(form_css, fields).await;
        self.submit(form_css).await;
    }

    /// Logs in through the real login form at `base_url`/login and checks it worked.
    pub async fn login(&self, base_url: &str, username: &str, password: &str) {
        self.goto(&format!("{base_url}/login")).await;
        self.fill_and_submit(
            "form[action=\"/login\"]",
            &[("username", username), ("password", password)],
        )
        .await;
        let path = self.path().await;
        assert!(
            !path.starts_with("/login"),
            "logging in as {username} failed; the page says: {}",
            self.body_text().await
        );
    }

    /// Deletes all cookies of the current site (a lost or expired session).
    pub async fn delete_cookies(&self) {
        self.client()
            .delete_all_cookies()
            .await
            .expect("deleting cookies");
    }

    /// Ends the WebDriver session; the driver is killed when the browser is dropped.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        kill_group(&mut self.driver);
    }

    async fn wait_loaded(&self) {
        self.poll(
            "the page to load",
            "return document.readyState === 'complete';",
        )
        .await;
    }

    async fn wait_for_new_document(&self) {
        self.poll(
            "the next page to load",
            "return window.__ahltBeforeSubmit !== true && document.readyState === 'complete';",
        )
        .await;
    }

    /// Polls `script` until it returns true (a condition, not a guess of how long to wait).
    async fn poll(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
        loop {
            // A script can fail while a navigation replaces the document: poll again.
            if let Ok(Value::Bool(true)) = self.client().execute(script, vec![]).await {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kills chromedriver and everything it started (its process group), then reaps it.
fn kill_group(driver: &mut Child) {
    if let Ok(Some(_)) = driver.try_wait() {
        return;
    }
    let pid = Pid::from_raw(driver.id() as i32);
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = driver.kill();
    let _ = driver.wait();
}

/// (chromedriver, chromium), or why they cannot be used.
fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let driver = from_env("AHLT_CHROMEDRIVER")
        .or_else(|| which(&["chromedriver"]))
        .or_else(|| {
            let debian = Path::new("/usr/lib/chromium/chromedriver");
            debian.is_file().then(|| debian.to_path_buf())
        });
    let chromium = from_env("AHLT_CHROMIUM")
        .or_else(|| which(&["chromium", "chromium-browser", "google-chrome"]));
    match (driver, chromium) {
        (Some(d), Some(c)) => Ok((d, c)),
        (None, None) => Err("Chromium and chromedriver are not installed \
             (Debian: apt-get install chromium chromium-driver)"
            .into()),
        (None, Some(_)) => {
            Err("chromedriver is not installed (Debian: apt-get install chromium-driver)".into())
        }
        (Some(_), None) => {
            Err("Chromium is not installed (Debian: apt-get install chromium)".into())
        }
    }
}

fn from_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push("/usr/bin".into());
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file() && executable(p))
    })
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("picking a free port")
}

/// Starts chromedriver on `port` in a process group of its own (so Chromium can be killed
/// with it); it dies with the test process.
async fn spawn_driver(bin: &Path, port: u16, profile: &Path) -> Child {
    let log_path = profile.join("chromedriver.log");
    let mut cmd = std::process::Command::new(bin);
    cmd.arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .arg(format!("--log-path={}", log_path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let parent = nix::unistd::Pid::this();
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
    spawn_from_spawner_thread(cmd)
        .await
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()))
}

/// Waits for chromedriver to listen, then opens a headless Chromium session.
async fn connect(
    port: u16,
    chromium: &Path,
    profile: &Path,
    width: u32,
    height: u32,
) -> Result<Client, String> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("chromedriver did not listen on port {port}"));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let user_data = profile.join("chromium");
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--hide-scrollbars",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", user_data.display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .map_err(|e| format!("opening a Chromium session: {e}"))
}
