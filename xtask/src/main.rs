//! `cargo xtask test`: the README's test command. It gets what the tests need, then runs every
//! test of the workspace and reports all failures, not just the first.
//!
//! Guarantees:
//! - The dashboard test needs headless Chromium (`chromium` and `chromedriver` on `PATH`). When
//!   they are missing and this runs as root on a machine with `apt-get`, it installs Debian's
//!   `chromium` and `chromium-driver` (one `apt-get update`, one `apt-get install`). Otherwise
//!   it prints the one command to run and exits 1 before building anything.
//! - Then it runs `cargo test --workspace --no-fail-fast` (plus any arguments given after
//!   `test`), so a failing test binary does not hide the results of the others, and exits with
//!   cargo's status: 0 only when every test passed.
//!
//! It has no dependencies, so it builds in about a second before anything else does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The Debian packages that provide `chromium` and `chromedriver`.
const PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];

const USAGE: &str = "usage: cargo xtask test [ARGS...]

  test    installs headless Chromium for the dashboard test if it is missing (as root, with
          apt-get), then runs `cargo test --workspace --no-fail-fast [ARGS...]`: every test,
          reporting every failure; exits non-zero if any test failed";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next().as_ref().and_then(|a| a.to_str()) {
        Some("test") => test(args.collect()),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!(
                "error: {}\n\n{USAGE}",
                match other {
                    Some(command) => format!("unknown command `{command}`"),
                    None => "no command given".to_owned(),
                }
            );
            ExitCode::from(2)
        }
    }
}

/// `cargo xtask test`.
fn test(extra: Vec<OsString>) -> ExitCode {
    if let Err(message) = ensure_browser() {
        eprintln!("error: {message}");
        return ExitCode::FAILURE;
    }
    let root = workspace_root();
    let mut command = cargo();
    // Packages named after `test` replace the whole workspace.
    let scope: &[&str] = if names_packages(&extra) {
        &[]
    } else {
        &["--workspace"]
    };
    command
        .current_dir(&root)
        .arg("test")
        .args(scope)
        .arg("--no-fail-fast")
        .args(&extra);
    eprintln!(
        "== cargo test{} --no-fail-fast{}\n   \
         (the first run builds hm, the example and test nodes and every test: about 5 to 6 minutes on \
         2 cores; later runs rebuild only what changed)",
        scope.iter().map(|a| format!(" {a}")).collect::<String>(),
        extra
            .iter()
            .map(|a| format!(" {}", a.to_string_lossy()))
            .collect::<String>()
    );
    match command.status() {
        Ok(status) if status.success() => {
            eprintln!("== every test passed");
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!(
                "== some tests failed ({status}): cargo ran every test binary; each failure is \
                 listed under `failures:` above, and the `error: N targets failed` lines name \
                 the binaries"
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: cannot run cargo: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `args` (given to `cargo test`) choose packages themselves (`-p`, `--package`).
fn names_packages(args: &[OsString]) -> bool {
    args.iter().any(|a| {
        a.to_str().is_some_and(|a| {
            a == "-p" || a == "--package" || a.starts_with("--package=") || a.starts_with("-p")
        })
    })
}

/// Makes sure `chromium` and `chromedriver` are on `PATH`, installing them when it may.
fn ensure_browser() -> Result<(), String> {
    let missing = missing_programs();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get install -y {}", PACKAGES.join(" "));
    let what = format!(
        "the dashboard test drives headless Chromium, and {} {} not installed",
        missing.join(" and "),
        if missing.len() == 1 { "is" } else { "are" }
    );
    if which("apt-get").is_none() {
        return Err(format!(
            "{what}.\nInstall Chromium and its chromedriver with your system's package manager \
             (on Debian or Ubuntu: `sudo {install}`), then run `cargo xtask test` again."
        ));
    }
    if !is_root() {
        return Err(format!(
            "{what}.\nInstall them once with:\n\n    sudo apt-get update && sudo {install}\n\n\
             then run `cargo xtask test` again (run as root, it installs them itself)."
        ));
    }
    eprintln!(
        "== {what}: installing Debian's {} (apt-get update, then apt-get install; once)",
        PACKAGES.join(" and ")
    );
    run_apt(&["update", "-qq"])?;
    let mut install_args = vec!["install", "-y", "-qq"];
    install_args.extend(PACKAGES);
    run_apt(&install_args)?;
    let still = missing_programs();
    if !still.is_empty() {
        return Err(format!(
            "apt-get installed {} but {} is still not on PATH ({}); install it by hand and run \
             `cargo xtask test` again",
            PACKAGES.join(" and "),
            still.join(" and "),
            std::env::var("PATH").unwrap_or_default()
        ));
    }
    eprintln!("== installed {}", PACKAGES.join(" and "));
    Ok(())
}

/// Runs `apt-get ARGS` without questions; an error names the command.
fn run_apt(args: &[&str]) -> Result<(), String> {
    let shown = format!("apt-get {}", args.join(" "));
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{shown}` failed ({status}); its output is above. Fix that (network, disk space, \
             apt sources), then run `cargo xtask test` again"
        ))
    }
}

/// Which of the programs the dashboard test needs are not on `PATH`.
fn missing_programs() -> Vec<&'static str> {
    ["chromium", "chromedriver"]
        .into_iter()
        .filter(|program| which(program).is_none())
        .collect()
}

/// Finds a program on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// Whether this process runs as root (effective user id 0, from `/proc/self/status`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            // Real, effective, saved, filesystem.
            line.split_whitespace().nth(2).map(|uid| uid == "0")
        })
        .unwrap_or(false)
}

/// The cargo that runs this (`cargo xtask` sets `CARGO`).
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The workspace root: this crate's parent folder.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ lives in the workspace")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_the_path_and_not_elsewhere() {
        assert!(which("sh").is_some(), "sh is on every PATH");
        assert!(which("surely-not-a-program-hivemind").is_none());
    }

    #[test]
    fn named_packages_replace_the_workspace() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(names_packages(&args(&["-p", "hivemind-tests"])));
        assert!(names_packages(&args(&["--package=hivemind-host"])));
        assert!(!names_packages(&args(&[
            "--test",
            "api",
            "--",
            "--nocapture"
        ])));
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
        assert!(
            manifest.contains("\"xtask\""),
            "xtask is a workspace member"
        );
    }
}
