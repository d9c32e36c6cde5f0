//! The integration tests' harness: builds the real node libraries, lays out temporary hives,
//! runs the real `hm` binary on them, and talks to it over HTTP and stdin.

pub mod browser;

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The repository's root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// The cargo this test runs under.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The target folder of this build (`target/debug`), found from the test binary's own path.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// Builds `hm` and the nodes the tests load (once per test binary); returns `target/<profile>`.
pub fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        say(&format!(
            "building hm and the nodes the tests load (probe, probe2, oracle, keeper, batsignal, batman) with cargo, dev profile; \
             a first build takes minutes, then seconds ({})",
            std::env::current_exe()
                .ok()
                .and_then(|e| e.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default()
        ));
        let status = cargo()
            .current_dir(repo_root())
            .args([
                "build",
                "-p",
                "hivemind-host",
                "-p",
                "probe",
                "-p",
                "probe2",
                "-p",
                "batsignal",
                "-p",
                "batman",
                "-p",
                "oracle",
                "-p",
                "keeper",
            ])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building hm and the test nodes failed");
        target_dir()
    })
}

/// Writes `line` to the terminal at once, past the test harness's capture, so that a test
/// that builds for minutes says what it builds.
pub fn say(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "hivemind-tests: {line}");
}

/// The `hm` binary.
pub fn hm() -> PathBuf {
    built().join("hm")
}

/// Runs `hm` with `args` in `dir` to completion.
pub fn hm_output(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(hm())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("hm runs")
}

/// A temporary hive: a folder with `config/hive.toml` and `nodes/`.
pub struct Hive {
    dir: tempfile::TempDir,
}

impl Default for Hive {
    fn default() -> Self {
        Self::new()
    }
}

impl Hive {
    /// An empty hive on any free port.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hm-test-hive-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::create_dir_all(dir.path().join("nodes")).unwrap();
        let hive = Hive { dir };
        hive.configure("");
        hive
    }

    /// Writes `config/hive.toml`: `[hive]` on any free port, then `rest` (more sections and
    /// the node tables).
    pub fn configure(&self, rest: &str) {
        let config = format!("[hive]\nname = \"test-hive\"\nport = 0\n\n{rest}");
        std::fs::write(self.path().join("config/hive.toml"), config).unwrap();
    }

    /// The hive's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file path inside the hive, for nodes to record into.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Copies the compiled library `lib<name>.so` into the hive's `nodes/`.
    pub fn install(&self, name: &str) {
        let file = format!("lib{name}.so");
        std::fs::copy(built().join(&file), self.path().join("nodes").join(&file))
            .unwrap_or_else(|e| panic!("cannot install {file}: {e}"));
    }

    /// Starts `hm run` (plus `args`) and waits until it serves.
    pub fn run(&self, args: &[&str]) -> Running {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        Running::start(self.path(), &all)
    }
}

/// A running `hm` process with its output collected.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// The base URL of its web server.
    pub url: String,
}

impl Running {
    /// Starts `hm args...` in `dir` and waits (up to 300 s for `hm dev`, which covers a first
    /// build of the hive's node crates on a loaded machine; 120 s otherwise) until it says where
    /// it serves.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_with_env(dir, args, &[])
    }

    /// Starts `hm args...` in `dir` serving on `port` (the config must name it) and returns as
    /// soon as `/healthz` answers, without waiting for the nodes to start.
    pub fn start_serving(
        dir: &Path,
        args: &[&str],
        port: u16,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Self {
        let mut running = Self::spawn(dir, args, env);
        running.url = format!("http://127.0.0.1:{port}");
        let served = running.wait_for(Duration::from_secs(120), |r| {
            if r.exited() {
                return Some(false);
            }
            let address = r.address().to_owned();
            std::net::TcpStream::connect(address).ok().map(|_| true)
        });
        assert!(
            served == Some(true),
            "hm did not start serving on port {port}.\nstderr:\n{}",
            running.stderr()
        );
        running
    }

    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        Self::spawn_command(Command::new(hm()).args(args), dir, env)
    }

    fn spawn_command(command: &mut Command, dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Self {
        let mut child = command
            .envs(env.iter().copied())
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hm starts");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        Running {
            child,
            stdin,
            stdout,
            stderr,
            url: String::new(),
        }
    }

    /// [`Running::start`] with extra environment variables.
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        let dev = args.first() == Some(&"dev");
        if dev && crates_in(dir) {
            say(&format!(
                "`hm dev` in {} builds that hive's node crates with cargo (a first build compiles the node API's dependencies: a minute or two)",
                dir.display()
            ));
        }
        let running = Self::spawn(dir, args, env);
        running.serving(if dev { 300 } else { 120 })
    }

    /// [`Running::start_with_env`] with the process's file mode creation mask set to `umask`
    /// (through `sh -c 'umask ...; exec hm ...'`: the same process, so [`Running::pid`] is
    /// `hm`'s).
    pub fn start_under_umask(
        dir: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        umask: u32,
    ) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
            .arg(hm())
            .args(args);
        Self::spawn_command(&mut command, dir, env).serving(120)
    }

    /// Waits up to `seconds` for the `http://` line and takes the address from it.
    fn serving(mut self, seconds: u64) -> Self {
        let running = &mut self;
        let starting = Duration::from_secs(seconds);
        let found = running.wait_for(starting, |r| {
            if r.exited() {
                return Some(None);
            }
            r.stderr().lines().find_map(|line| {
                let at = line.find("http://")?;
                Some(Some(line[at..].split_whitespace().next()?.to_owned()))
            })
        });
        running.url = found.flatten().unwrap_or_else(|| {
            panic!(
                "hm did not start serving.\nstdout:\n{}\nstderr:\n{}",
                running.stdout(),
                running.stderr()
            )
        });
        self
    }

    /// Everything it printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// Everything it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls `check` until it returns Some or `timeout` passes.
    pub fn wait_for<T>(&self, timeout: Duration, check: impl Fn(&Self) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = check(self) {
                return Some(found);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GETs `path` and returns the status and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut response = agent
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap();
        (status, body)
    }

    /// POSTs `body` to `path` with extra `headers`; returns the status and the body.
    pub fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut request = http_agent().post(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap();
        (status, body)
    }

    /// Opens the server-sent event stream at `path` and returns its lines as they arrive.
    pub fn sse_lines(&self, path: &str) -> impl Iterator<Item = String> {
        let response = http_agent()
            .get(format!("{}{path}", self.url))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        BufReader::new(response.into_body().into_reader())
            .lines()
            .map_while(Result::ok)
    }

    /// The `host:port` it serves on.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// `GET /api/nodes/{name}` as JSON.
    pub fn node(&self, name: &str) -> Value {
        let (status, body) = self.get(&format!("/api/nodes/{name}"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Sends `q` on stdin and waits for the exit; returns the status and how long it took.
    pub fn quit(mut self) -> (ExitStatus, Duration, Self) {
        let asked = Instant::now();
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"q\n");
        }
        let status = self.wait_exit(Duration::from_secs(30));
        (status, asked.elapsed(), self)
    }

    /// Waits for the process to exit by itself (killing it after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the output threads catch the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "hm did not exit within {timeout:?}\nstderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether `hm` has reported a fatal error (it prints `error: ...` and exits).
    fn exited(&self) -> bool {
        let stderr = self.stderr();
        stderr.starts_with("error: ") || stderr.contains("\nerror: ")
    }

    /// Closes its stdin (end of input must not stop a hive).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// The process's memory map (`/proc/<pid>/maps`): which files it has mapped.
    pub fn maps(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/maps", self.child.id())).unwrap_or_default()
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the hive at `dir` has node crates (`nodes/*/Cargo.toml`) for `hm dev` to build.
fn crates_in(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("nodes")).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().join("Cargo.toml").is_file())
    })
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// An HTTP client that returns error statuses as answers, with a 20 s deadline per request.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// A TCP port that was free a moment ago (for a hive whose config must name its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Where tests leave files for people to look at: `target/test-output/<name>/`, emptied first.
pub fn output_dir(name: &str) -> PathBuf {
    let dir = target_dir()
        .parent()
        .expect("target/<profile> has a parent")
        .join("test-output")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON lines a probe node recorded in `path` (none if the file does not exist yet). A
/// last line not yet ended by a newline is still being written and is left for the next read.
pub fn records(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    whole
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// The payloads a probe recorded as received from `service`.
pub fn received_from(path: &Path, service: &str) -> Vec<Value> {
    records(path)
        .into_iter()
        .filter(|r| r["event"] == "received" && r["service"] == service)
        .map(|r| r["payload"].clone())
        .collect()
}

/// The `seq` of each `{"seq": n}` payload a probe recorded from `service`, in arrival order.
pub fn seqs_from(path: &Path, service: &str) -> Vec<u64> {
    received_from(path, service)
        .iter()
        .map(|p| p["seq"].as_u64().expect("a {\"seq\": n} payload"))
        .collect()
}

/// Waits until `{"seq": 0}` … `{"seq": count - 1}` have arrived from `service`, then checks
/// that each arrived once and in order.
pub fn assert_every_seq_once_in_order(path: &Path, service: &str, count: u64, timeout: Duration) {
    assert!(
        eventually(timeout, || received_from(path, service).len() as u64
            >= count),
        "received {} of {count}",
        received_from(path, service).len()
    );
    assert_eq!(
        seqs_from(path, service),
        (0..count).collect::<Vec<_>>(),
        "every message once, in order"
    );
}

/// Polls until `check` holds or `timeout` passes; returns whether it held.
pub fn eventually(timeout: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

/// Polls until `check` holds; fails the test, saying what never happened, if it has not
/// within `timeout`. For waits that are not the test's assertion (a client connected, a
/// handler finished) so that the test goes on as soon as it may, however loaded the machine.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, check: impl Fn() -> bool) {
    assert!(
        eventually(timeout, check),
        "never happened within {timeout:?}: {what}"
    );
}

/// A TOML string literal for a path.
pub fn toml_path(path: &Path) -> String {
    toml_edit::Value::from(path.display().to_string()).to_string()
}

/// A `[mesh]` section over plain TCP on loopback: host `host` listening on `listen`,
/// connecting to `connect`.
pub fn tcp_mesh(host: &str, listen: u16, connect: &[u16]) -> String {
    let connect: Vec<String> = connect
        .iter()
        .map(|port| format!("\"tcp/127.0.0.1:{port}\""))
        .collect();
    format!(
        "[mesh]\nenabled = true\nhost = \"{host}\"\nlisten = [\"tcp/127.0.0.1:{listen}\"]\nconnect = [{}]\n\n",
        connect.join(", ")
    )
}

/// `[mesh]` for `host` with TLS files from `dir` (made by `hm mesh certs`), listening on
/// `listen` and connecting to `connect` (ports on loopback).
pub fn tls_mesh(host: &str, dir: &Path, listen: u16, connect: &[u16]) -> String {
    let connect: Vec<String> = connect
        .iter()
        .map(|port| format!("\"quic/127.0.0.1:{port}\""))
        .collect();
    format!(
        "[mesh]\nenabled = true\nhost = \"{host}\"\nlisten = [\"quic/127.0.0.1:{listen}\"]\nconnect = [{}]\n\
         tls_ca = {}\ntls_cert = {}\ntls_key = {}\n\n",
        connect.join(", "),
        toml_path(&dir.join("ca.pem")),
        toml_path(&dir.join(format!("{host}.pem"))),
        toml_path(&dir.join(format!("{host}.key"))),
    )
}

/// `POST /api/request/{name}{query}` to `running` with `args`: the status and the JSON body.
pub fn ask(running: &Running, name: &str, args: &Value, query: &str) -> (u16, Value) {
    let (status, body) = running.post(
        &format!("/api/request/{name}{query}"),
        &args.to_string(),
        &[("content-type", "application/json")],
    );
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
    (status, value)
}

/// `hm call ARGS --url` against `running`: exit code, stdout, stderr.
pub fn call(running: &Running, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(hm())
        .arg("call")
        .args(args)
        .args(["--url", &running.url])
        .output()
        .expect("hm call runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
