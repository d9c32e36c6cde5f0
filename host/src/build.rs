//! Builds a hive's node crates with cargo and installs their libraries into `nodes/`, and says
//! which crate each compiler error belongs to.
//!
//! Guarantees:
//! - Every build uses the same package selection (all node crates of the hive), so cargo never
//!   rebuilds dependencies for a different feature unification.
//! - Cargo runs with `--keep-going`: a crate with errors does not keep the others from building,
//!   and every crate that built is installed.
//! - Each crate's outcome is reported on its own ([`BuildOutcome`]): its library, or its
//!   compiler errors as cargo renders them (read from `--message-format=json`, and also printed
//!   to the terminal as cargo would). A failure tied to no crate (cargo missing, a broken
//!   `Cargo.toml`) is reported with cargo's own error lines.
//! - A library is installed by writing a temporary file beside the target and renaming it over,
//!   so a running loader never sees a half-written file and an already-mapped file is never
//!   overwritten in place.

use anyhow::{Context as _, Result};
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A node crate in a hive's `nodes/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCrate {
    /// The package name (`batsignal`).
    pub package: String,
    /// The crate's folder.
    pub dir: PathBuf,
}

impl NodeCrate {
    /// The library's file name once installed: `lib<package with _ for ->.so`.
    pub fn library_file(&self) -> String {
        crate::loader::library_file_name(&self.package)
    }

    /// The library target's name, as cargo and rustc call it.
    fn lib_name(&self) -> String {
        self.package.replace('-', "_")
    }
}

/// Every crate directly under `<hive>/nodes/` (folders holding a `Cargo.toml`), sorted.
pub(crate) fn node_crates(hive: &Path) -> Result<Vec<NodeCrate>> {
    let nodes = hive.join("nodes");
    if !nodes.is_dir() {
        return Ok(Vec::new());
    }
    let mut crates = Vec::new();
    for entry in
        std::fs::read_dir(&nodes).with_context(|| format!("cannot list {}", nodes.display()))?
    {
        let dir = entry?.path();
        let manifest = dir.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let parsed: toml::Table = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("{} is not valid TOML", manifest.display()))?;
        let package = parsed
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .with_context(|| format!("{} has no [package] name", manifest.display()))?;
        crates.push(NodeCrate {
            package: package.to_owned(),
            dir,
        });
    }
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(crates)
}

/// What one build of a hive's node crates gave.
#[derive(Debug, Default)]
pub struct BuildOutcome {
    /// The crates that built, each with its installed library in `nodes/`.
    pub built: Vec<(NodeCrate, PathBuf)>,
    /// The crates that did not build.
    pub failed: Vec<CrateFailure>,
    /// What went wrong beyond single crates (cargo could not run, or failed before building
    /// them), in cargo's words.
    pub error: Option<String>,
}

/// A node crate that did not build.
#[derive(Debug, Clone)]
pub struct CrateFailure {
    /// The crate.
    pub node: NodeCrate,
    /// How many errors the compiler reported in it (0: it was not built, because a crate it
    /// needs failed or cargo stopped).
    pub errors: usize,
    /// The compiler's errors as cargo renders them (file, line, caret), or why it was not built.
    pub rendered: String,
}

impl BuildOutcome {
    /// Whether every crate built.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.error.is_none()
    }
}

/// Builds `crates` of the hive at `hive` (cargo's progress and the compiler's messages go to
/// the terminal) and installs each library that built into `<hive>/nodes/`.
pub(crate) fn build_and_install(hive: &Path, crates: &[NodeCrate], release: bool) -> BuildOutcome {
    if crates.is_empty() {
        return BuildOutcome::default();
    }
    announce(hive, crates, release);
    let run = match cargo_build(hive, crates, release) {
        Ok(run) => run,
        Err(error) => {
            return BuildOutcome {
                error: Some(format!("{error:#}")),
                ..BuildOutcome::default()
            };
        }
    };
    let mut outcome = BuildOutcome::default();
    for node in crates {
        let lib_name = node.lib_name();
        let errors: Vec<&String> = run
            .errors
            .iter()
            .filter(|(target, _)| *target == lib_name)
            .map(|(_, rendered)| rendered)
            .collect();
        let library = run.libraries.iter().find(|(target, _)| *target == lib_name);
        match library {
            Some((_, source)) if errors.is_empty() => {
                let target = hive.join("nodes").join(node.library_file());
                match install(source, &target) {
                    Ok(_) => outcome.built.push((node.clone(), target)),
                    Err(error) => outcome.failed.push(CrateFailure {
                        node: node.clone(),
                        errors: 0,
                        rendered: format!("{error:#}"),
                    }),
                }
            }
            _ if !errors.is_empty() => outcome.failed.push(CrateFailure {
                node: node.clone(),
                errors: errors.len(),
                rendered: errors
                    .iter()
                    .map(|e| e.trim_end())
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            }),
            _ if run.success => outcome.failed.push(CrateFailure {
                node: node.clone(),
                errors: 0,
                rendered: format!(
                    "cargo built no library for node crate `{}`; its Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`",
                    node.package
                ),
            }),
            _ => outcome.failed.push(CrateFailure {
                node: node.clone(),
                errors: 0,
                rendered: "not built: cargo stopped before it (see the errors of the crates it needs)"
                    .to_owned(),
            }),
        }
    }
    if !run.success && outcome.failed.iter().all(|f| f.errors == 0) {
        // No crate of the hive has errors of its own: the failure is elsewhere.
        let said = if run.cargo_errors.is_empty() {
            "cargo build failed without saying why".to_owned()
        } else {
            run.cargo_errors.join("\n")
        };
        outcome.error = Some(said);
    }
    outcome
}

/// Says what is about to be built, and that the first build takes minutes.
fn announce(hive: &Path, crates: &[NodeCrate], release: bool) {
    let names: Vec<&str> = crates.iter().map(|c| c.package.as_str()).collect();
    let profile = if release { "release" } else { "debug" };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| hive.join("target"));
    let first = !target.join(profile).is_dir();
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "building the node crate{} {} with cargo ({} profile){}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        if release { "release" } else { "dev" },
        if first {
            ": the first build compiles their dependencies too and takes a minute or two; later ones take seconds"
        } else {
            ""
        }
    );
}

/// What cargo said: the libraries it built and the errors, each by lib target name.
struct CargoRun {
    success: bool,
    libraries: Vec<(String, PathBuf)>,
    errors: Vec<(String, String)>,
    /// Cargo's own `error:` lines (from its stderr), for failures outside the crates.
    cargo_errors: Vec<String>,
}

/// The most of cargo's own error lines kept for the report.
const CARGO_ERROR_LINES: usize = 40;

/// Runs `cargo build` for `crates` and reads its JSON messages.
fn cargo_build(hive: &Path, crates: &[NodeCrate], release: bool) -> Result<CargoRun> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(hive.join("Cargo.toml"))
        .arg("--keep-going")
        .arg("--message-format=json");
    if release {
        command.arg("--release");
    }
    for node in crates {
        command.arg("-p").arg(&node.package);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {}; is Rust installed (https://rustup.rs)?",
                cargo.to_string_lossy()
            )
        })?;
    // Cargo's progress goes on to the terminal; its own errors are kept for the report.
    let stderr = child.stderr.take().expect("stderr is piped");
    let forwarding = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut in_error = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            if line.starts_with("error") {
                in_error = true;
            } else if line.trim().is_empty() || line.starts_with("warning") {
                in_error = false;
            }
            if in_error && kept.len() < CARGO_ERROR_LINES {
                kept.push(line);
            }
        }
        kept
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut run = CargoRun {
        success: false,
        libraries: Vec::new(),
        errors: Vec::new(),
        cargo_errors: Vec::new(),
    };
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo's output")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            // Not a message: a build script's or cargo's own line; show it.
            println!("{line}");
            continue;
        };
        read_message(&message, &mut run);
    }
    let status = child.wait().context("cargo did not finish")?;
    run.cargo_errors = forwarding.join().unwrap_or_default();
    // Compiler errors are already tied to their crates: keep only cargo's own lines.
    run.cargo_errors
        .retain(|line| !line.starts_with("error: could not compile"));
    run.success = status.success();
    Ok(run)
}

/// Takes one of cargo's JSON messages into `run`: a built library, or a compiler message (shown
/// on the terminal; errors kept).
fn read_message(message: &Value, run: &mut CargoRun) {
    let target = message["target"]["name"].as_str().unwrap_or_default();
    match message["reason"].as_str() {
        Some("compiler-artifact") => {
            let cdylib = message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
            let library = message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find(|f| f.ends_with(".so"));
            if let (true, Some(library)) = (cdylib, library) {
                run.libraries
                    .push((target.to_owned(), PathBuf::from(library)));
            }
        }
        Some("compiler-message") => {
            let diagnostic = &message["message"];
            let rendered = diagnostic["rendered"]
                .as_str()
                .or_else(|| diagnostic["message"].as_str())
                .unwrap_or_default();
            eprint!("{rendered}");
            if diagnostic["level"] == "error" && !rendered.starts_with("error: aborting") {
                run.errors.push((target.to_owned(), rendered.to_owned()));
            }
        }
        _ => {}
    }
}

/// Copies `source` to `target` through a temporary file and a rename, unless they are equal.
pub(crate) fn install(source: &Path, target: &Path) -> Result<bool> {
    let bytes =
        std::fs::read(source).with_context(|| format!("cannot read {}", source.display()))?;
    if std::fs::read(target).is_ok_and(|current| current == bytes) {
        return Ok(false);
    }
    let dir = target.parent().context("the target has no folder")?;
    let mut temporary = tempfile::Builder::new()
        .prefix(".installing-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut temporary, &bytes)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    temporary
        .persist(target)
        .with_context(|| format!("cannot install {}", target.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_node_crates_by_their_manifests() {
        let hive = tempfile::tempdir().unwrap();
        let crate_dir = hive.path().join("nodes/batman");
        std::fs::create_dir_all(&crate_dir).unwrap();
        std::fs::write(
            crate_dir.join("Cargo.toml"),
            "[package]\nname = \"batman\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(hive.path().join("nodes/not-a-crate")).unwrap();
        std::fs::write(hive.path().join("nodes/libbatman.so"), b"").unwrap();
        let crates = node_crates(hive.path()).unwrap();
        assert_eq!(
            crates,
            vec![NodeCrate {
                package: "batman".into(),
                dir: crate_dir
            }]
        );
        assert_eq!(crates[0].library_file(), "libbatman.so");
    }

    #[test]
    fn install_replaces_by_rename_and_skips_identical_content() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("built.so");
        let target = dir.path().join("libnode.so");
        std::fs::write(&source, b"version 1").unwrap();
        assert!(install(&source, &target).unwrap());
        let first_inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&target).unwrap());
        assert!(!install(&source, &target).unwrap());
        std::fs::write(&source, b"version 2").unwrap();
        assert!(install(&source, &target).unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"version 2");
        let second_inode =
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&target).unwrap());
        assert_ne!(
            first_inode, second_inode,
            "a rename gives the file a new inode"
        );
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary file is left behind");
    }
}
