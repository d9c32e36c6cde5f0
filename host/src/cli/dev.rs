//! `hm dev` and `hm run`: build (dev only), load and run a hive until asked to stop.

use super::running;
use crate::build::BuildOutcome;
use crate::config::{self, HiveConfig};
use crate::controller::{Controller, HEALTH_CHECK_EVERY, Selection};
use crate::loader::library_path;
use crate::reconcile::{self, Rebuild};
use crate::{build, logging, scaffold, watch, web};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

/// Build the hive's nodes, run the hive, and rebuild and reload nodes as you edit them.
///
/// Builds every node crate in nodes/ with cargo, loads the enabled nodes, routes their
/// messages, writes logs and serves the page. While it runs, a saved change to a node's sources
/// rebuilds it and swaps the new code in; a changed config/hive.toml is applied at once.
/// Stop with Ctrl-C, SIGTERM, or `q` then Enter.
#[derive(Debug, Args)]
pub(super) struct DevArgs {
    #[command(flatten)]
    common: RunArgs,
    /// Build the nodes with cargo's release profile.
    #[arg(long)]
    release: bool,
}

/// Run the hive from the compiled node libraries in nodes/, building nothing.
///
/// Loads nodes/lib<name>.so for each enabled node. While it runs, a library dropped into,
/// replaced in or removed from nodes/ is loaded, reloaded or unloaded, and a changed
/// config/hive.toml is applied at once. Stop with Ctrl-C, SIGTERM, or `q` then Enter.
#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// Write debug lines to the log files.
    #[arg(short, long)]
    verbose: bool,
    /// Run only these nodes, even if they are disabled in config/hive.toml (repeatable).
    #[arg(short = 'n', long = "node", value_name = "NODE")]
    nodes: Vec<String>,
    /// Serve on this port instead of [hive] port from config/hive.toml (0: any free port).
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
}

/// `hm dev`.
pub(super) fn run_dev(args: DevArgs) -> Result<()> {
    let root = scaffold::find_hive_root(&std::env::current_dir()?)?;
    let config = config::load(&root)?;
    let crates = build::node_crates(&root)?;
    // A crate that does not build is reported once the hive's logs are open; the hive runs
    // what it has, and saving the fix rebuilds.
    let built = build::build_and_install(&root, &crates, args.release);
    run_hive(
        config,
        &args.common,
        Some((
            Rebuild {
                release: args.release,
            },
            built,
        )),
    )
}

/// `hm run`.
pub(super) fn run_prod(args: RunArgs) -> Result<()> {
    let root = scaffold::find_hive_root(&std::env::current_dir()?)?;
    let config = config::load(&root)?;
    run_hive(config, &args, None)
}

/// Runs the hive; `dev` is `hm dev`'s way to rebuild, and the outcome of its first build.
fn run_hive(
    mut config: HiveConfig,
    args: &RunArgs,
    dev: Option<(Rebuild, BuildOutcome)>,
) -> Result<()> {
    let (rebuild, first_build) = match dev {
        Some((rebuild, built)) => (Some(rebuild), Some(built)),
        None => (None, None),
    };
    if let Some(port) = args.port {
        config.port = port;
    }
    web::check_exposure(&config)?;
    let selection = select_nodes(&config, &args.nodes)?;
    let logs = logging::init(logging::LogSettings {
        dir: config.log.location.clone(),
        max_bytes: config.log.max_bytes,
        backups: config.log.backups,
        verbose: args.verbose,
    })?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hm-web")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        let mut stop = StopSignals::install()?;
        let address = SocketAddr::new(config.bind, config.port);
        let listener = web::bind(address).await?;
        let address = listener.local_addr()?;
        let name = config.name.clone();
        // Hosts on one machine are told apart by their port: the one really bound.
        let host = config.mesh.host_name(address.port());
        let controller = Arc::new(Controller::for_host(config, selection, logs, host)?);
        if let Some(built) = &first_build {
            controller
                .builds()
                .report(built, &controller.config(), controller.events());
        }
        let joining = controller.clone();
        tokio::task::spawn_blocking(move || joining.start_mesh()).await??;
        // The page and the stop signals answer from here on, whatever the nodes do meanwhile.
        let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(web::serve(listener, controller.clone(), async {
            let _ = server_stopped.await;
        }));
        let starting = controller.clone();
        let started = tokio::task::spawn_blocking(move || starting.start());
        let (mut watch, changes) = watch::watch(controller.root(), rebuild.is_some())?;
        let checking = Arc::downgrade(&controller);
        std::thread::Builder::new()
            .name("hm-health".into())
            .spawn(move || {
                while let Some(controller) = checking.upgrade() {
                    controller.check_health();
                    drop(controller);
                    std::thread::sleep(HEALTH_CHECK_EVERY);
                }
            })
            .context("cannot start the health checker")?;
        let reconciling = controller.clone();
        let reconciler = std::thread::Builder::new()
            .name("hm-reconcile".into())
            .spawn(move || reconcile::run(&reconciling, &changes, rebuild))
            .context("cannot start the reconciler")?;
        let marker = running::mark(
            controller.root(),
            if rebuild.is_some() { "dev" } else { "run" },
            &format!("http://{address}"),
        );
        if let Err(error) = &marker {
            tracing::warn!("{error:#} (other hm commands will not see that this hive runs)");
        }
        controller.watch_thread("the reconciler", reconciler);
        if let Some(watcher) = watch.thread() {
            controller.watch_thread("the file watcher", watcher);
        }
        // Say where it runs once the nodes are up (or failed, or past their build deadline);
        // a stop signal is heard meanwhile.
        let mut starting = Some(started);
        let reason = loop {
            let Some(started) = starting.as_mut() else {
                break stop.next().await;
            };
            tokio::select! {
                _ = started => {
                    starting = None;
                    tracing::info!(
                        "hive `{name}` is running at http://{address} (stop: Ctrl-C, or q then Enter)"
                    );
                }
                reason = stop.next() => break reason,
            }
        };
        tracing::info!("stopping the hive ({reason})");
        drop(marker);
        drop(watch);
        let stopping = controller.clone();
        let stuck = tokio::task::spawn_blocking(move || stopping.stop()).await?;
        drop(starting);
        let _ = stop_server.send(());
        // Open browser connections would hold a graceful shutdown; give them a moment only.
        let _ = tokio::time::timeout(Duration::from_millis(100), server).await;
        if stuck.is_empty() {
            tracing::info!("hive `{name}` stopped");
        } else {
            tracing::warn!(
                "hive `{name}` stopped; node(s) {} did not stop in time",
                stuck.join(", ")
            );
        }
        Ok(())
    });
    // A request still waiting on a node (or a constructor that never returns) must not hold
    // the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// The nodes to run: those enabled in the config, or exactly those named with `-n`.
fn select_nodes(config: &HiveConfig, named: &[String]) -> Result<Selection> {
    if named.is_empty() {
        return Ok(Selection::Enabled);
    }
    let mut selection = Vec::new();
    for wanted in named {
        let found = config
            .nodes
            .keys()
            .find(|name| name.eq_ignore_ascii_case(wanted))
            .cloned()
            .or_else(|| {
                let name = wanted.to_lowercase();
                library_path(&config.root, &name).exists().then_some(name)
            });
        match found {
            Some(name) if !selection.contains(&name) => selection.push(name),
            Some(_) => {}
            None => {
                let known: Vec<&str> = config.nodes.keys().map(String::as_str).collect();
                bail!(
                    "there is no node named `{wanted}` in this hive (its nodes: {}); create it with `hm create_node {wanted}`",
                    if known.is_empty() {
                        "none yet".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
    }
    Ok(Selection::Only(selection))
}

/// What can stop a running hive: Ctrl-C, SIGTERM, or a `q` line on stdin.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    quit: mpsc::Receiver<()>,
}

impl StopSignals {
    /// Installs the handlers now, so a signal that arrives from here on stops the hive cleanly.
    fn install() -> Result<Self> {
        let interrupt = signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?;
        let terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let (sender, quit) = mpsc::channel(1);
        std::thread::Builder::new()
            .name("hm-stdin".into())
            .spawn(move || watch_stdin(sender))
            .context("cannot start the stdin reader")?;
        Ok(Self {
            interrupt,
            terminate,
            quit,
        })
    }

    /// Waits for the first of them; says which.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "Ctrl-C",
            _ = self.terminate.recv() => "SIGTERM",
            Some(()) = self.quit.recv() => "q",
        }
    }
}

/// Sends on `quit` when a line reading `q` arrives. End of input is not a request to stop:
/// a hive started with no terminal keeps running.
fn watch_stdin(quit: mpsc::Sender<()>) {
    let mut line = String::new();
    loop {
        line.clear();
        match std::io::stdin().read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim() == "q" => {
                let _ = quit.blocking_send(());
                return;
            }
            Ok(_) => {}
        }
    }
}
