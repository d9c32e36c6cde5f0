//! Small file-system helpers that put the path into every error.

use anyhow::{Context as _, Result};
use std::fs;
use std::io::Write as _;
use std::path::Path;

/// Writes a new file below `root`, making its parent folders.
pub(super) fn write_new(root: &Path, relative: &str, contents: &str) -> Result<()> {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("could not create the folder `{}`", parent.display()))?;
    }
    fs::write(&path, contents).with_context(|| format!("could not write `{}`", path.display()))
}

/// Reads a text file.
pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("could not read `{}`", path.display()))
}

/// Replaces the contents of `path` at once: a reader sees the old file or the new one, never a
/// half-written one. Keeps the file's permissions, and writes through a symlink.
pub(crate) fn replace(path: &Path, contents: &str) -> Result<()> {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = path.parent().unwrap_or(Path::new("."));
    let result = (|| {
        let mut file = tempfile::Builder::new()
            .prefix(".hm-edit-")
            .tempfile_in(dir)?;
        file.write_all(contents.as_bytes())?;
        if let Ok(metadata) = fs::metadata(&path) {
            file.as_file().set_permissions(metadata.permissions())?;
        }
        file.persist(&path)?;
        std::io::Result::Ok(())
    })();
    result.with_context(|| format!("could not write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_swaps_the_contents_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        fs::write(&path, "old").unwrap();
        replace(&path, "new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn replace_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        replace(&path, "new").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/file.toml");
        let err = format!("{:#}", replace(&missing, "x").unwrap_err());
        assert!(err.contains("no/such/file.toml"), "{err}");
        let err = format!("{:#}", read(&missing).unwrap_err());
        assert!(err.contains("no/such/file.toml"), "{err}");
    }
}
