//! Request/reply benchmark (issue 16): round trip p50/p99 and requests per second, one caller
//! and [`CALLERS`] callers, asking the bench node's `bench/echo` handler through the host's
//! request router (in process, and with the responder isolated), beside a Zenoh queryable asked
//! with `get` within one session, measured in the same run; and the round trip of a raw Zenoh
//! `get` to a queryable in a second process (the bench binary again, as
//! [`ZENOH_RESPONDER_COMMAND`]), beside the same request from this process's host to the
//! responder node of a second `hm` over the mesh.
//!
//! Every side does the same JSON work per request: the caller encodes the arguments
//! (`{"seq": n, "text": <32 bytes>}`) with `serde_json` and parses the reply into a
//! `serde_json::Value`; the responder parses the arguments into a `Value` and encodes it as the
//! reply (the bench node's `responder` role does exactly that).
//!
//! The trials of the sides are interleaved (trial 1 of every side, then trial 2, …) so that a
//! machine getting busier or quieter part-way weighs on every side alike.

use crate::messages::BenchHive;
use crate::stats::{Spread, percentile};
use crate::table;
use anyhow::{Context as _, Result, anyhow, bail};
use hivemind_host::Controller;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use zenoh::Wait;
use zenoh::query::ConsolidationMode;

/// The command that makes the bench binary the far side of the two-process Zenoh queryable.
pub const ZENOH_RESPONDER_COMMAND: &str = "__zenoh_responder";

/// The request name (and the Zenoh key expression) asked.
const NAME: &str = "bench/echo";
/// How many threads ask at once in the "many callers" figures.
pub const CALLERS: usize = 4;
/// Trials of each figure.
const TRIALS: usize = 3;
/// Longest wait for one reply.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One request's arguments.
fn args(seq: u64) -> Value {
    json!({ "seq": seq, "text": "x".repeat(32) })
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// One trial's figures.
#[derive(Clone, Copy)]
struct Run {
    p50_us: f64,
    p99_us: f64,
    per_s: f64,
}

/// Repeated trials of one way of asking: round trip p50 and p99 (µs), requests per second.
#[derive(Default)]
struct Trials {
    p50: Spread,
    p99: Spread,
    rate: Spread,
}

impl Trials {
    fn push(&mut self, run: Run) {
        self.p50.samples.push(run.p50_us);
        self.p99.samples.push(run.p99_us);
        self.rate.samples.push(run.per_s);
    }

    fn json(&self) -> Value {
        json!({
            "round_trip_p50_us": self.p50.json(),
            "round_trip_p99_us": self.p99.json(),
            "requests_per_s": self.rate.json(),
        })
    }
}

/// One side: its trials with one caller and with [`CALLERS`].
#[derive(Default)]
struct Side {
    one: Trials,
    many: Trials,
}

/// What the request benchmark measured.
pub struct Report {
    in_process: Side,
    isolated: Side,
    zenoh: Side,
    /// Raw Zenoh `get` to a queryable in a second process, one caller.
    zenoh_two_processes: Trials,
    /// This process's host asking the responder node of a second `hm` over the mesh, one
    /// caller.
    mesh: Trials,
    requests_per_trial: usize,
}

/// `callers` threads each ask `per_caller` times (after a tenth as many untimed), all starting
/// together; every round trip is timed, and the rate is all timed requests over the wall time.
fn trial(
    callers: usize,
    per_caller: usize,
    ask: &(dyn Fn(u64) -> Result<()> + Sync),
) -> Result<Run> {
    let warm = per_caller / 10;
    let start = Barrier::new(callers + 1);
    let (took, wall) = std::thread::scope(|scope| -> Result<(Vec<f64>, Duration)> {
        let threads: Vec<_> = (0..callers)
            .map(|caller| {
                let start = &start;
                scope.spawn(move || -> Result<Vec<f64>> {
                    let base = (caller * (per_caller + warm)) as u64;
                    for seq in 0..warm as u64 {
                        ask(base + seq)?;
                    }
                    start.wait();
                    let mut took = Vec::with_capacity(per_caller);
                    for seq in warm as u64..(warm + per_caller) as u64 {
                        let started = Instant::now();
                        ask(base + seq)?;
                        took.push(started.elapsed().as_secs_f64() * 1e6);
                    }
                    Ok(took)
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        let mut all = Vec::with_capacity(callers * per_caller);
        for thread in threads {
            all.extend(thread.join().map_err(|_| anyhow!("a caller panicked"))??);
        }
        Ok((all, started.elapsed()))
    })?;
    let mut took = took;
    took.sort_by(f64::total_cmp);
    Ok(Run {
        p50_us: percentile(&took, 50.0),
        p99_us: percentile(&took, 99.0),
        per_s: took.len() as f64 / wall.as_secs_f64(),
    })
}

/// A hive of one responder node (`extra` goes into its table), ready: it has answered once.
fn responder_hive(libraries: &Path, extra: &str) -> Result<BenchHive> {
    let hive = BenchHive::start(
        libraries,
        &format!(
            "[nodes.responder]\nenabled = true\nlibrary = \"bench_node\"\nrole = \"responder\"\nservice = \"{NAME}\"\n{extra}\n"
        ),
    )?;
    let started = Instant::now();
    loop {
        match hivemind_host::benching::request(&hive.controller, NAME, "0", Duration::from_secs(1))
        {
            Ok(_) => return Ok(hive),
            Err(error) if started.elapsed() > Duration::from_secs(60) => {
                bail!("the responder never answered `{NAME}`: {error}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One request through the host's router, with the caller's JSON work.
fn ask_hive(hive: &BenchHive, seq: u64) -> Result<()> {
    ask_controller(&hive.controller, seq)
}

/// Host b, a real `hm run` with the responder node and the mesh on, and host a, this
/// process's controller with no nodes, joined to b; returned once a has had an answer from b.
fn mesh_pair(
    libraries: &Path,
) -> Result<(
    crate::mesh::HmProcess,
    tempfile::TempDir,
    std::sync::Arc<Controller>,
    tempfile::TempDir,
)> {
    let port = crate::mesh::free_port()?;
    let b = crate::mesh::hive(
        libraries,
        &format!(
            "[hive]\nname = \"bench\"\nport = 0\n[mesh]\nenabled = true\nhost = \"b\"\n\
             listen = [\"tcp/127.0.0.1:{port}\"]\n\n[nodes.responder]\nenabled = true\n\
             library = \"bench_node\"\nrole = \"responder\"\nservice = \"{NAME}\"\n"
        ),
    )?;
    let host_b = crate::mesh::HmProcess::start(&libraries.join("hm"), b.path())?;
    let a = crate::mesh::hive(
        libraries,
        &format!(
            "[hive]\nname = \"bench\"\nport = 0\n[mesh]\nenabled = true\nhost = \"a\"\n\
             connect = [\"tcp/127.0.0.1:{port}\"]\n"
        ),
    )?;
    let controller = std::sync::Arc::new(crate::hive::controller(a.path())?);
    controller.start_mesh()?;
    let started = Instant::now();
    loop {
        match hivemind_host::benching::request(&controller, NAME, "0", Duration::from_secs(1)) {
            Ok(_) => return Ok((host_b, b, controller, a)),
            Err(error) if started.elapsed() > Duration::from_secs(30) => {
                bail!("host b's responder never answered `{NAME}` over the mesh: {error}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One request through `controller`'s router, with the caller's JSON work.
fn ask_controller(controller: &Controller, seq: u64) -> Result<()> {
    let text = serde_json::to_string(&args(seq))?;
    let reply = hivemind_host::benching::request(controller, NAME, &text, TIMEOUT)
        .map_err(|e| anyhow!("request `{NAME}`: {e}"))?;
    let value: Value = serde_json::from_str(&reply)?;
    if value.is_null() {
        bail!("request `{NAME}` came back empty");
    }
    Ok(())
}

/// One Zenoh `get` of [`NAME`] with the caller's JSON work: the first reply, parsed.
fn ask_zenoh(session: &zenoh::Session, seq: u64, timeout: Duration) -> Result<()> {
    let bytes = serde_json::to_vec(&args(seq))?;
    let replies = session
        .get(NAME)
        .payload(bytes)
        .consolidation(ConsolidationMode::None)
        .timeout(timeout)
        .wait()
        .map_err(|e| anyhow!("zenoh get: {e}"))?;
    let reply = replies
        .recv()
        .map_err(|e| anyhow!("zenoh get `{NAME}`: no reply ({e})"))?;
    let sample = reply
        .result()
        .map_err(|e| anyhow!("zenoh get `{NAME}`: an error reply ({e:?})"))?;
    if parse(&sample.payload().to_bytes()).is_null() {
        bail!("zenoh get `{NAME}` came back empty");
    }
    Ok(())
}

/// A queryable on [`NAME`] in `session` answering each query with its payload, parsed and
/// encoded again.
fn echo_queryable(session: &zenoh::Session) -> Result<zenoh::query::Queryable<()>> {
    session
        .declare_queryable(NAME)
        .callback(|query| {
            let value = query
                .payload()
                .map_or(Value::Null, |p| parse(&p.to_bytes()));
            let bytes = serde_json::to_vec(&value).unwrap_or_default();
            let _ = query.reply(query.key_expr().clone(), bytes).wait();
        })
        .wait()
        .map_err(|e| anyhow!("zenoh queryable: {e}"))
}

/// Asks until a reply comes: the queryable is declared and, across processes, connected.
fn wait_for_queryable(session: &zenoh::Session) -> Result<()> {
    let started = Instant::now();
    while ask_zenoh(session, 0, Duration::from_millis(200)).is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("the zenoh queryable never answered");
        }
    }
    Ok(())
}

/// The far side of the two-process peer: connects to `endpoint` and answers [`NAME`] until
/// killed.
pub fn zenoh_responder_main(endpoint: &str) -> Result<()> {
    let session = crate::peers::zenoh_session(&[], &[endpoint.to_owned()])?;
    let _queryable = echo_queryable(&session)?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A second process answering [`NAME`] with a Zenoh queryable, connected to `session`.
struct ResponderProcess {
    child: std::process::Child,
}

impl ResponderProcess {
    fn start() -> Result<(zenoh::Session, Self)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let endpoint = format!("tcp/127.0.0.1:{port}");
        let session = crate::peers::zenoh_session(std::slice::from_ref(&endpoint), &[])?;
        let child = std::process::Command::new(std::env::current_exe()?)
            .args([ZENOH_RESPONDER_COMMAND, &endpoint])
            .stdin(std::process::Stdio::null())
            .spawn()
            .context("cannot start the bench's second process")?;
        let process = Self { child };
        wait_for_queryable(&session)?;
        Ok((session, process))
    }
}

impl Drop for ResponderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the request benchmark with the release libraries in `libraries`.
pub fn run(libraries: &Path, quick: bool) -> Result<Report> {
    let n: usize = if quick { 2_000 } else { 20_000 };
    let in_process = responder_hive(libraries, "")?;
    let isolated = responder_hive(libraries, "isolate = true")?;
    let session = crate::peers::zenoh_session(&[], &[])?;
    let queryable = echo_queryable(&session)?;
    wait_for_queryable(&session)?;
    let (far_session, far) = ResponderProcess::start()?;
    let mut report = Report {
        in_process: Side::default(),
        isolated: Side::default(),
        zenoh: Side::default(),
        zenoh_two_processes: Trials::default(),
        mesh: Trials::default(),
        requests_per_trial: n,
    };
    let (far_hive, _far_folder, near, _near_folder) = mesh_pair(libraries)?;
    for _ in 0..TRIALS {
        let ask = |seq| ask_hive(&in_process, seq);
        report.in_process.one.push(trial(1, n, &ask)?);
        report
            .in_process
            .many
            .push(trial(CALLERS, n / CALLERS, &ask)?);
        let ask = |seq| ask_hive(&isolated, seq);
        report.isolated.one.push(trial(1, n, &ask)?);
        report
            .isolated
            .many
            .push(trial(CALLERS, n / CALLERS, &ask)?);
        let ask = |seq| ask_zenoh(&session, seq, TIMEOUT);
        report.zenoh.one.push(trial(1, n, &ask)?);
        report.zenoh.many.push(trial(CALLERS, n / CALLERS, &ask)?);
        let ask = |seq| ask_zenoh(&far_session, seq, TIMEOUT);
        report.zenoh_two_processes.push(trial(1, n, &ask)?);
        let ask = |seq| ask_controller(&near, seq);
        report.mesh.push(trial(1, n, &ask)?);
    }
    near.stop();
    drop(far_hive);
    drop(far);
    let _ = far_session.close().wait();
    drop(queryable);
    let _ = session.close().wait();
    Ok(report)
}

fn spread(s: &Spread, rate: bool) -> String {
    if rate {
        format!(
            "{:.0} k/s [{:.0}–{:.0}]",
            s.median() / 1e3,
            s.min() / 1e3,
            s.max() / 1e3
        )
    } else {
        format!("{:.1} µs [{:.1}–{:.1}]", s.median(), s.min(), s.max())
    }
}

/// Which of a [`Trials`]' figures a row shows.
type Pick = fn(&Trials) -> &Spread;

/// How many times better hivemind's median is than the peer's (above 1: hivemind is ahead).
fn ahead(hive: &Spread, peer: &Spread, rate: bool) -> f64 {
    if rate {
        hive.median() / peer.median()
    } else {
        peer.median() / hive.median()
    }
}

impl Report {
    /// Whether the in-process figures are all ahead of Zenoh in one session (the issue's
    /// target).
    /// The mesh's round trip p50 over raw Zenoh's between two processes (medians).
    fn mesh_ratio(&self) -> f64 {
        self.mesh.p50.median() / self.zenoh_two_processes.p50.median()
    }

    fn in_process_ahead(&self) -> bool {
        [
            (&self.in_process.one, &self.zenoh.one),
            (&self.in_process.many, &self.zenoh.many),
        ]
        .iter()
        .all(|(hive, peer)| {
            ahead(&hive.p50, &peer.p50, false) > 1.0
                && ahead(&hive.p99, &peer.p99, false) > 1.0
                && ahead(&hive.rate, &peer.rate, true) > 1.0
        })
    }

    /// Prints the tables.
    pub fn print(&self) {
        let mut rows = Vec::new();
        let sides = [
            (
                "1 caller",
                &self.in_process.one,
                &self.isolated.one,
                &self.zenoh.one,
            ),
            (
                "4 callers",
                &self.in_process.many,
                &self.isolated.many,
                &self.zenoh.many,
            ),
        ];
        for (callers, here, isolated, zenoh) in sides {
            let figures: [(&str, Pick, bool); 3] = [
                ("round trip p50", |t| &t.p50, false),
                ("round trip p99", |t| &t.p99, false),
                ("requests per second", |t| &t.rate, true),
            ];
            for (name, pick, rate) in figures {
                let in_process_ahead = ahead(pick(here), pick(zenoh), rate);
                rows.push(vec![
                    format!("{callers}: {name}"),
                    spread(pick(here), rate),
                    spread(pick(isolated), rate),
                    spread(pick(zenoh), rate),
                    format!(
                        "{in_process_ahead:.2}× / {:.2}×",
                        ahead(pick(isolated), pick(zenoh), rate)
                    ),
                    "in process ahead of zenoh".to_owned(),
                    if in_process_ahead > 1.0 {
                        "met"
                    } else {
                        "MISSED"
                    }
                    .to_owned(),
                ]);
            }
        }
        table::print_rows(
            &[
                &format!(
                    "requests, `{NAME}` (median [min–max] of {TRIALS} trials of {} requests)",
                    self.requests_per_trial
                ),
                "hivemind in process",
                "hivemind, responder isolated",
                "zenoh get, one session",
                "ahead of zenoh: in process / isolated",
                "target",
                "met",
            ],
            &rows,
        );
        let far = &self.zenoh_two_processes;
        let mesh = &self.mesh;
        let ratio = self.mesh_ratio();
        table::print_rows(
            &[
                "requests across processes, 1 caller",
                "hm over the mesh",
                "raw zenoh get, two processes",
                "target",
                "met",
            ],
            &[
                vec![
                    "round trip p50".to_owned(),
                    spread(&mesh.p50, false),
                    spread(&far.p50, false),
                    "≤ 1.2× raw zenoh".to_owned(),
                    format!("{:.2}× {}", ratio, if ratio <= 1.2 { "yes" } else { "NO" }),
                ],
                vec![
                    "round trip p99".to_owned(),
                    spread(&mesh.p99, false),
                    spread(&far.p99, false),
                    String::new(),
                    String::new(),
                ],
                vec![
                    "requests per second".to_owned(),
                    spread(&mesh.rate, true),
                    spread(&far.rate, true),
                    String::new(),
                    String::new(),
                ],
            ],
        );
        println!(
            "requests: in process {} zenoh in one session on every figure (target: ahead); across the mesh {:.2}× raw zenoh's round trip p50 (target: within 1.2×)",
            if self.in_process_ahead() {
                "ahead of"
            } else {
                "NOT ahead of"
            },
            self.mesh_ratio()
        );
    }

    /// The figures for the JSON report.
    pub fn json(&self) -> Value {
        let side = |side: &Side| {
            json!({
                "one_caller": side.one.json(),
                format!("callers_{CALLERS}"): side.many.json(),
            })
        };
        json!({
            "requests_per_trial": self.requests_per_trial,
            "in_process": side(&self.in_process),
            "isolated": side(&self.isolated),
            "zenoh_one_session": side(&self.zenoh),
            "zenoh_two_processes": { "one_caller": self.zenoh_two_processes.json() },
            "mesh": { "one_caller": self.mesh.json() },
            "in_process_ahead_of_zenoh_one_session": self.in_process_ahead(),
            "mesh_over_raw_zenoh_p50": self.mesh_ratio(),
            "mesh_within_1_2x_of_raw_zenoh": self.mesh_ratio() <= 1.2,
        })
    }
}
