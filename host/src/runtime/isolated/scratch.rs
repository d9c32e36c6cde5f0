//! The host's scratch folder: where node libraries are copied before they are loaded, in
//! process or by an isolated node's process.
//!
//! Guarantees: the folder is created `0700` (only this user can list it or open what is in
//! it) under the system's temporary folder (`$TMPDIR`), named `hm-scratch-<pid>-<random>`
//! after the host's process id. A host removes it when it exits; a host that was killed
//! cannot, so each host at its start removes the scratch folders of hosts that are no longer
//! running (their pid is gone) and that belong to this user. Folders of running hosts, of other
//! users and anything else in the temporary folder are left alone.

use anyhow::{Context as _, Result};
use std::fs::Permissions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The start of every scratch folder's name; the owner's pid and `-` follow.
pub(super) const PREFIX: &str = "hm-scratch-";

/// Creates this host's scratch folder, after removing those that killed hosts left.
pub(crate) fn scratch_folder() -> Result<tempfile::TempDir> {
    let folder = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{}-", std::process::id()))
        .permissions(Permissions::from_mode(0o700))
        .tempdir()
        .context(
            "cannot create a temporary folder for loading node libraries (is $TMPDIR writable?)",
        )?;
    let uid = std::fs::metadata(folder.path())
        .context("cannot read the scratch folder it just created")?
        .uid();
    let parent = folder.path().parent().unwrap_or(Path::new("/tmp"));
    let removed = remove_stale(parent, uid, |pid| {
        Path::new(&format!("/proc/{pid}")).exists()
    });
    if removed > 0 {
        tracing::info!(
            "removed {removed} scratch folder(s) left in {} by hm processes that were killed",
            parent.display()
        );
    }
    Ok(folder)
}

/// Removes the scratch folders in `parent` owned by `uid` whose host is not `alive`; returns
/// how many.
fn remove_stale(parent: &Path, uid: u32, alive: impl Fn(u32) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        // Not following links: only a real folder of this user's is removed.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid || pid == std::process::id() || alive(pid) {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_of_dead_hosts_go() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = std::fs::metadata(tmp.path()).unwrap().uid();
        for name in [
            "hm-scratch-4000001-abc",
            "hm-scratch-4000002-def",
            "hm-scratch-x-1",
            "other",
        ] {
            std::fs::create_dir(tmp.path().join(name)).unwrap();
            std::fs::write(tmp.path().join(name).join("lib.so"), b"x").unwrap();
        }
        std::fs::write(tmp.path().join("hm-scratch-4000003-file"), b"").unwrap();
        let removed = remove_stale(tmp.path(), uid, |pid| pid == 4000002);
        assert_eq!(removed, 1);
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "hm-scratch-4000002-def",
                "hm-scratch-4000003-file",
                "hm-scratch-x-1",
                "other"
            ]
        );
        assert_eq!(
            remove_stale(tmp.path(), uid + 1, |_| false),
            0,
            "other users' folders stay"
        );
    }

    #[test]
    fn the_folder_is_private() {
        let folder = scratch_folder().unwrap();
        let mode = std::fs::metadata(folder.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
