//! A headless Chromium driven through `chromedriver`'s W3C WebDriver API: just what the
//! dashboard test needs (open a page, run a script, click, take a screenshot).
//!
//! Both programs come from Debian's `chromium` and `chromium-driver` packages, which `.ci/run`
//! installs; without them [`Browser::start`] fails and says so.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one browser session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

/// Finds a program on PATH.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, `width`×`height`.
    pub fn start(width: u32, height: u32) -> Self {
        let chromium = which("chromium").unwrap_or_else(|| {
            panic!("chromium is not installed: this test needs it (run `apt-get install -y chromium chromium-driver`; .ci/run does)")
        });
        let chromedriver = which("chromedriver").unwrap_or_else(|| {
            panic!("chromedriver is not installed: this test needs it (run `apt-get install -y chromium chromium-driver`; .ci/run does)")
        });
        let port = crate::free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = agent
                .get(format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::Builder::new()
            .prefix("hm-chromium-")
            .tempdir()
            .unwrap();
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args}
            }}})),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body) {
            Ok(value) => value,
            Err((status, value)) => panic!("{method} {path} answered {status}: {value}"),
        }
    }

    /// [`Browser::call`], with chromedriver's refusal as `(status, body)` instead of a panic.
    fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (u16, Value)> {
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(body.unwrap_or_else(|| json!({})).to_string()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let value: Value = response
            .body_mut()
            .read_to_string()
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        if status >= 300 {
            return Err((status, value));
        }
        Ok(value["value"].clone())
    }

    fn session_path(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    /// Opens `url` and waits for it to load.
    pub fn open(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        );
    }

    /// Runs `script` (a function body: `return ...;`) in the page and returns its value.
    pub fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
    }

    /// Polls `script` until it returns `true`; panics with `what` after `timeout`.
    pub fn wait_until(&self, what: &str, timeout: Duration, script: &str) {
        let deadline = Instant::now() + timeout;
        while self.eval(script) != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `css` selects, as a person would. The live pages redraw parts of
    /// themselves every second: an element replaced between finding it and clicking it
    /// ("stale element reference") is found again and clicked, up to five times.
    pub fn click(&self, css: &str) {
        for _ in 0..5 {
            let found = self.call(
                "POST",
                &self.session_path("/element"),
                Some(json!({ "using": "css selector", "value": css })),
            );
            let id = found[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}: {found}"));
            match self.try_call(
                "POST",
                &self.session_path(&format!("/element/{id}/click")),
                None,
            ) {
                Ok(_) => return,
                Err((_, value)) if value["value"]["error"] == "stale element reference" => {}
                Err((status, value)) => panic!("clicking {css} answered {status}: {value}"),
            }
        }
        panic!("{css} was replaced before every one of five clicks");
    }

    /// Runs `source` in every page opened from now on, before the page's own scripts (Chrome's
    /// `Page.addScriptToEvaluateOnNewDocument`, through chromedriver); returns its id for
    /// [`Browser::forget_script`].
    pub fn before_each_page(&self, source: &str) -> String {
        let added = self.call(
            "POST",
            &self.session_path("/goog/cdp/execute"),
            Some(json!({
                "cmd": "Page.addScriptToEvaluateOnNewDocument",
                "params": { "source": source },
            })),
        );
        added["identifier"]
            .as_str()
            .unwrap_or_else(|| panic!("no script identifier: {added}"))
            .to_owned()
    }

    /// Stops running the script [`Browser::before_each_page`] added.
    pub fn forget_script(&self, id: &str) {
        self.call(
            "POST",
            &self.session_path("/goog/cdp/execute"),
            Some(json!({
                "cmd": "Page.removeScriptToEvaluateOnNewDocument",
                "params": { "identifier": id },
            })),
        );
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let data = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("screenshot data"))
            .expect("screenshot is base64");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
