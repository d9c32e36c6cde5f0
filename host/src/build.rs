//! Builds a hive's node crates with cargo and installs their libraries into `nodes/`.
//!
//! Every build uses the same package selection (all node crates of the hive), so cargo never
//! rebuilds dependencies for a different feature unification. A library is installed by writing
//! a temporary file beside the target and renaming it over, so a running loader never sees a
//! half-written file and an already-mapped file is never overwritten in place.

use anyhow::{Context as _, Result, bail};
use cargo_metadata::Message;
use std::io::BufReader;
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
        format!("lib{}.so", self.package.replace('-', "_"))
    }
}

/// Every crate directly under `<hive>/nodes/` (folders holding a `Cargo.toml`), sorted.
pub fn node_crates(hive: &Path) -> Result<Vec<NodeCrate>> {
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

/// Builds `crates` of the hive at `hive` (cargo's progress and errors go to the terminal) and
/// installs each library into `<hive>/nodes/`; returns the installed paths.
pub fn build_and_install(hive: &Path, crates: &[NodeCrate], release: bool) -> Result<Vec<PathBuf>> {
    if crates.is_empty() {
        return Ok(Vec::new());
    }
    let built = cargo_build(hive, crates, release)?;
    let mut installed = Vec::new();
    for node in crates {
        let lib_name = node.package.replace('-', "_");
        let Some(source) = built.iter().find(|(target, _)| *target == lib_name) else {
            bail!(
                "cargo built no library for node crate `{}`; its Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`",
                node.package
            );
        };
        let target = hive.join("nodes").join(node.library_file());
        install(&source.1, &target)?;
        installed.push(target);
    }
    Ok(installed)
}

/// Runs `cargo build` for `crates`; returns (lib target name, path) for each built cdylib.
fn cargo_build(hive: &Path, crates: &[NodeCrate], release: bool) -> Result<Vec<(String, PathBuf)>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(hive.join("Cargo.toml"))
        .arg("--message-format=json-render-diagnostics");
    if release {
        command.arg("--release");
    }
    for node in crates {
        command.arg("-p").arg(&node.package);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {}; is Rust installed (https://rustup.rs)?",
                cargo.to_string_lossy()
            )
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut built = Vec::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(artifact) =
            message.context("cannot read cargo's output")?
            && artifact
                .target
                .kind
                .iter()
                .any(|k| k.to_string() == "cdylib")
        {
            let library = artifact
                .filenames
                .iter()
                .find(|f| f.extension() == Some("so"));
            if let Some(library) = library {
                built.push((
                    artifact.target.name.clone(),
                    library.clone().into_std_path_buf(),
                ));
            }
        }
    }
    let status = child.wait().context("cargo did not finish")?;
    if !status.success() {
        bail!("cargo build failed (its errors are above); fix them and run `hm dev` again");
    }
    Ok(built)
}

/// Copies `source` to `target` through a temporary file and a rename, unless they are equal.
pub fn install(source: &Path, target: &Path) -> Result<bool> {
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
