//! `hivemind-bench`: measures the real host loading, reloading and unloading real node
//! libraries, prints a table and writes a JSON report.
//!
//! ```text
//! cargo run --release -p hivemind-bench -- [--quick] [--json FILE] [--chart FILE.svg] [--messages-only] [--mesh-only] [--isolate-only] [--reload-only] [--requests-only]
//! ```
//!
//! It builds the `probe` and `probe2` test nodes with cargo's release profile, lays out a
//! temporary hive, and drives the host's controller directly (the same calls the file watcher
//! makes, so the watcher's debounce is not counted).

mod baseline;
mod chart;
mod dev_loop;
mod hive;
mod isolate;
mod mesh;
mod messages;
mod peers;
mod reload;
mod requests;
mod scale;
mod soak;
mod stats;
mod system;
mod table;

use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;

/// Command-line options.
struct Options {
    quick: bool,
    json: Option<PathBuf>,
    chart: Option<PathBuf>,
    profile: Option<u64>,
    profile_fan_out: Option<u64>,
    scale_only: Option<usize>,
    messages_only: bool,
    mesh_only: bool,
    isolate_only: bool,
    reload_only: bool,
    requests_only: bool,
}

fn options() -> Result<Options> {
    let mut options = Options {
        quick: false,
        json: None,
        chart: None,
        profile: None,
        profile_fan_out: None,
        scale_only: None,
        messages_only: false,
        mesh_only: false,
        isolate_only: false,
        reload_only: false,
        requests_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--messages-only" => options.messages_only = true,
            "--mesh-only" => options.mesh_only = true,
            "--isolate-only" => options.isolate_only = true,
            "--reload-only" => options.reload_only = true,
            "--requests-only" => options.requests_only = true,
            "--json" => options.json = Some(args.next().context("--json needs a file")?.into()),
            "--chart" => options.chart = Some(args.next().context("--chart needs a file")?.into()),
            "--scale-only" => {
                let nodes = args.next().context("--scale-only needs a node count")?;
                options.scale_only = Some(nodes.parse().context("--scale-only takes a number")?);
            }
            "--profile-1to16" => {
                let count = args
                    .next()
                    .context("--profile-1to16 needs a message count")?;
                options.profile_fan_out =
                    Some(count.parse().context("--profile-1to16 takes a number")?);
            }
            "--profile-1to1" => {
                let count = args
                    .next()
                    .context("--profile-1to1 needs a message count")?;
                options.profile = Some(count.parse().context("--profile-1to1 takes a number")?);
            }
            "-h" | "--help" => {
                println!(
                    "usage: hivemind-bench [--quick] [--json FILE] [--chart FILE.svg] [--messages-only] [--mesh-only] [--isolate-only] [--reload-only] [--requests-only] [--profile-1to1 N] [--profile-1to16 N]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    Ok(options)
}

fn print_figures(figures: &[messages::Figure]) {
    let spread = |s: &stats::Spread, unit: &str| {
        format!(
            "{} [{}–{}]",
            format_value(s.median(), unit),
            format_number(s.min(), unit),
            format_number(s.max(), unit)
        )
    };
    let rows: Vec<Vec<String>> = figures
        .iter()
        .map(|f| {
            let peers = f
                .peers
                .iter()
                .map(|(name, s)| format!("{name}: {}", spread(s, f.unit)))
                .collect::<Vec<_>>()
                .join("; ");
            let ratios = f
                .peers
                .iter()
                .map(|(_, s)| format!("{:.2}", f.hive / s.median()))
                .collect::<Vec<_>>()
                .join(" / ");
            vec![
                f.name.to_owned(),
                spread(&f.spread, f.unit),
                peers,
                ratios,
                f.target.to_owned(),
                match f.met {
                    Some(true) => "met".to_owned(),
                    Some(false) => "MISSED".to_owned(),
                    None => String::new(),
                },
                if f.stable() { "yes" } else { "NO" }.to_owned(),
            ]
        })
        .collect();
    table::print_rows(
        &[
            "messages (median [min–max] of 3 trials)",
            "hivemind",
            "peers, same run",
            "ratio",
            "target",
            "met",
            "stable ≤ 1.5×",
        ],
        &rows,
    );
    let unstable: Vec<&str> = figures
        .iter()
        .filter(|f| f.spread.samples.len() > 1 && !f.stable())
        .map(|f| f.name)
        .collect();
    if unstable.is_empty() {
        println!(
            "stability: every figure's trials (hivemind and peers) are within 1.5× of each other"
        );
    } else {
        println!(
            "stability: NOT within 1.5× across trials: {} (a busy machine; rerun when it is quiet)",
            unstable.join("; ")
        );
    }
    // What "2× zenoh" asks, against what the same JSON work through a bare channel (no
    // routing, no ABI, no counting) reaches on this machine in this run.
    for figure in figures.iter().filter(|f| f.target.contains("zenoh")) {
        let (zenoh, channel) = (figure.peer(messages::ZENOH), figure.peer(messages::CHANNEL));
        println!(
            "ceiling, {}: the plain channel moves {:.2}× zenoh one session in this run, hivemind {:.2}× ({:.2} of the channel)",
            figure.name,
            channel / zenoh,
            figure.hive / zenoh,
            figure.hive / channel
        );
    }
}

fn print_soak(soak: &soak::Report) {
    let mut rows = vec![(
        format!(
            "{} s at full rate, overflow = \"block\": messages sent, reloads, disable/enable cycles",
            soak.seconds
        ),
        format!("{} / {} / {}", soak.sent, soak.reloads, soak.toggles),
        String::new(),
    )];
    for (node, check) in &soak.checks {
        rows.push((
            format!("`{node}`: received, gaps (missing), duplicates or reordered"),
            format!(
                "{} / {} ({}) / {}",
                check["received"],
                check["gaps"],
                check["missing"],
                check["duplicates_or_reordered"]
            ),
            if node == "toggled" {
                "no duplicates; gaps only while disabled".to_owned()
            } else {
                "all, 0, 0".to_owned()
            },
        ));
    }
    rows.push((
        "exactly once and in order while enabled".to_owned(),
        if soak.exact() { "yes" } else { "NO" }.to_owned(),
        "yes".to_owned(),
    ));
    rows.push((
        "resident memory early → end".to_owned(),
        format!("{} → {} kB", soak.rss_kb.0, soak.rss_kb.1),
        "flat".to_owned(),
    ));
    rows.push((
        "threads / open files early → end".to_owned(),
        format!(
            "{} → {} / {} → {}",
            soak.threads.0, soak.threads.1, soak.fds.0, soak.fds.1
        ),
        "equal".to_owned(),
    ));
    table::print(&["soak", "measured", "expected"], &rows);
}

fn format_value(value: f64, unit: &str) -> String {
    if unit == "per message" {
        format!("{value:.4}")
    } else if unit == "µs" {
        format!("{value:.1} µs")
    } else {
        format!("{:.2} M {unit}", value / 1e6)
    }
}

/// A value in the unit of [`format_value`], without the unit.
fn format_number(value: f64, unit: &str) -> String {
    if unit == "per message" {
        format!("{value:.4}")
    } else if unit == "µs" {
        format!("{value:.1}")
    } else {
        format!("{:.2}", value / 1e6)
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == hivemind_host::CHILD_COMMAND)
    {
        // An isolated node's process, started by the host inside this benchmark (its link to
        // the host is its stdin).
        return hivemind_host::child_main();
    }
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(peers::ZENOH_PEER_COMMAND) {
        // The far side of the two-process Zenoh peer, started by this benchmark.
        let endpoint = args.next().context("no endpoint given")?;
        let flood = args.next().context("no flood size given")?;
        return peers::zenoh_peer_main(&endpoint, &flood);
    }
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(requests::ZENOH_RESPONDER_COMMAND) {
        // The far side of the two-process Zenoh queryable, started by this benchmark.
        let endpoint = args.next().context("no endpoint given")?;
        return requests::zenoh_responder_main(&endpoint);
    }
    let options = options()?;
    let libraries = system::build_bench_nodes()?;
    println!("hivemind-bench on {}", system::machine());
    if let Some(count) = options.profile {
        // Only the 1→1 path, for running under a profiler (valgrind --tool=callgrind).
        let rate = messages::throughput(&libraries, 1, 1, count, "")?;
        println!("1→1: {:.2} M msg/s", rate / 1e6);
        return Ok(());
    }
    if let Some(count) = options.profile_fan_out {
        // Only the 1→16 path, for a profiler.
        let rate = messages::throughput(&libraries, 1, 16, count, "")? * 16.0;
        println!("1→16: {:.2} M deliveries/s", rate / 1e6);
        return Ok(());
    }
    if options.mesh_only {
        let mesh = mesh::run(&libraries, options.quick)?;
        mesh.print();
        if let Some(path) = options.json {
            write_json(&path, &serde_json::json!({ "mesh": mesh.json() }))?;
        }
        return Ok(());
    }
    if options.reload_only {
        // Only the reload rows: first load, reload latency, leaks (to compare two builds).
        let reloads = reload::run(&libraries, options.quick)?;
        reloads.print();
        if let Some(path) = options.json {
            write_json(&path, &reloads.json())?;
        }
        return Ok(());
    }
    if options.isolate_only {
        let isolation = isolate::run(&libraries, options.quick)?;
        isolation.print();
        if let Some(path) = options.json {
            let json = serde_json::json!({ "isolate": isolation.json() });
            write_json(&path, &json)?;
        }
        return Ok(());
    }
    if options.requests_only {
        let requests = requests::run(&libraries, options.quick)?;
        requests.print();
        if let Some(path) = options.json {
            write_json(&path, &serde_json::json!({ "requests": requests.json() }))?;
        }
        return Ok(());
    }
    if let Some(nodes) = options.scale_only {
        let scale = scale::run(&libraries, nodes, 10)?;
        println!(
            "{nodes} nodes: start {:.2} s, route update {:.2} ms, {:.0} kB per node",
            scale.start_s, scale.route_recompute_ms, scale.rss_per_idle_node_kb
        );
        return Ok(());
    }
    let figures = messages::run(&libraries, options.quick)?;
    print_figures(&figures);
    if options.messages_only {
        // Only the message rows and their peers (to compare two builds of the bus).
        if let Some(path) = options.json {
            write_json(&path, &figures_json(&figures))?;
        }
        return Ok(());
    }
    if let Some(path) = &options.chart {
        std::fs::write(path, chart::svg(&figures))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    let nodes = if options.quick { 200 } else { 1000 };
    let scale = scale::run(&libraries, nodes, 10)?;
    table::print(
        &["scale", "measured", "target"],
        &[
            (
                format!(
                    "start {} nodes with {} subscriptions",
                    scale.nodes, scale.subscriptions
                ),
                format!("{:.2} s", scale.start_s),
                "≤ 2 s for 1,000".to_owned(),
            ),
            (
                "routes updated when one node joins".to_owned(),
                format!("{:.2} ms", scale.route_recompute_ms),
                String::new(),
            ),
            (
                "resident memory per idle node (beside its library's code)".to_owned(),
                format!("{:.0} kB", scale.rss_per_idle_node_kb),
                "≤ 1 MB".to_owned(),
            ),
        ],
    );
    let soak_seconds = if options.quick { 10 } else { 60 };
    let soak = soak::run(&libraries, soak_seconds)?;
    print_soak(&soak);
    let reloads = reload::run(&libraries, options.quick)?;
    reloads.print();
    let edits = if options.quick { 2 } else { 6 };
    let dev = dev_loop::run(
        &libraries.join("hm"),
        &dev_loop::cache_dir(&libraries),
        edits,
    )?;
    table::print(
        &["hm dev: edit a node's source", "measured", "target"],
        &[
            (
                format!("save → new code running, median of {edits} edits"),
                format!("{:.0} ms", dev.total_median_ms()),
                "cargo + ≤ 300 ms".to_owned(),
            ),
            (
                "of which beyond cargo's own build time (median)".to_owned(),
                format!("{:.0} ms", dev.overhead_ms()),
                "≤ 300 ms".to_owned(),
            ),
        ],
    );
    let isolation = isolate::run(&libraries, options.quick)?;
    isolation.print();
    let mesh = mesh::run(&libraries, options.quick)?;
    mesh.print();
    let requests = requests::run(&libraries, options.quick)?;
    requests.print();
    if let Some(path) = options.json {
        let mut json = reloads.json();
        json["mesh"] = mesh.json();
        json["requests"] = requests.json();
        json["isolate"] = isolation.json();
        let figures = figures_json(&figures);
        for (key, value) in figures.as_object().into_iter().flatten() {
            json[key] = value.clone();
        }
        json["soak_seconds"] = soak.seconds.into();
        json["soak_messages"] = soak.sent.into();
        json["soak_exactly_once_in_order"] = soak.exact().into();
        json["soak_rss_kb"] = serde_json::json!([soak.rss_kb.0, soak.rss_kb.1]);
        json["soak_threads"] = serde_json::json!([soak.threads.0, soak.threads.1]);
        json["soak_fds"] = serde_json::json!([soak.fds.0, soak.fds.1]);
        json["scale_nodes"] = scale.nodes.into();
        json["start_nodes_s"] = scale.start_s.into();
        json["start_1000_nodes_s"] = if scale.nodes == 1000 {
            scale.start_s.into()
        } else {
            serde_json::Value::Null
        };
        json["route_recompute_ms"] = scale.route_recompute_ms.into();
        json["rss_per_idle_node_kb"] = scale.rss_per_idle_node_kb.into();
        json["dev_edit_to_running_ms"] = dev.total_median_ms().into();
        json["dev_overhead_beyond_cargo_ms"] = dev.overhead_ms().into();
        write_json(&path, &json)?;
    }
    Ok(())
}

/// The message figures as the JSON report has them: each key with its median, their trials
/// under `trials`, and the machine.
fn figures_json(figures: &[messages::Figure]) -> serde_json::Value {
    let mut json = serde_json::json!({ "machine": system::machine() });
    for figure in figures {
        json[figure.key] = figure.hive.into();
        let mut detail = serde_json::json!({ "hivemind": figure.spread.json() });
        for (name, spread) in &figure.peers {
            detail[*name] = spread.json();
        }
        detail["met"] = figure.met.into();
        detail["stable"] = figure.stable().into();
        json["trials"][figure.key] = detail;
    }
    json
}

fn write_json(path: &std::path::Path, json: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(json)?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
