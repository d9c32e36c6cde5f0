//! One log file on disk: opened on the first line, appended to, rotated by size.

use anyhow::{Context, Result};
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A size-rotated log file, `name.log` with backups `name.log.1` (newest) … `name.log.N`.
///
/// Nothing touches the disk until the first [`write`](Self::write): the directory and the file are
/// created then. The size starts from the file's length when it is opened, so a restarted host keeps
/// counting where the previous one stopped.
#[derive(Debug)]
pub(crate) struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    backups: u32,
    open: Option<OpenFile>,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    size: u64,
}

impl RotatingFile {
    /// A log at `path` holding at most `max_bytes` per file (`0`: no limit) and `backups` old
    /// files (`0`: truncate and start over when full).
    pub(crate) fn new(path: impl Into<PathBuf>, max_bytes: u64, backups: u32) -> Self {
        RotatingFile {
            path: path.into(),
            max_bytes,
            backups,
            open: None,
        }
    }

    /// The current file's path (`name.log`).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` (one or more complete lines, newline included) in a single write.
    ///
    /// Rotates first if the line would push the file past the size limit; a line longer than the
    /// limit still goes whole into a fresh file. If rotating fails the line is appended to the
    /// current file anyway and the rotation error is returned.
    pub(crate) fn write(&mut self, line: &[u8]) -> Result<()> {
        let len = line.len() as u64;
        let mut rotate_error = None;
        let size = self.open_file()?.size;
        if self.max_bytes > 0 && size > 0 && size.saturating_add(len) > self.max_bytes {
            rotate_error = self.rotate().err();
        }
        let open = self.open_file()?;
        if let Err(error) = open.file.write_all(line) {
            // The file's length is unknown after a partial write: reopen (and re-measure) next time.
            self.open = None;
            return Err(error).with_context(|| format!("cannot write to {}", self.path.display()));
        }
        open.size += len;
        match rotate_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn open_file(&mut self) -> Result<&mut OpenFile> {
        match self.open {
            Some(ref mut open) => Ok(open),
            None => Ok(self.open.insert(open_append(&self.path)?)),
        }
    }

    /// Moves `name.log` to `name.log.1` (shifting older backups up by one, dropping the oldest) and
    /// leaves no file open; with no backups, truncates `name.log` instead.
    fn rotate(&mut self) -> Result<()> {
        if self.backups == 0 {
            if let Some(open) = self.open.as_mut() {
                open.file
                    .set_len(0)
                    .with_context(|| format!("cannot truncate {}", self.path.display()))?;
                open.size = 0;
            }
            return Ok(());
        }
        self.open = None;
        for k in (1..self.backups).rev() {
            rename_if_exists(&self.backup(k), &self.backup(k + 1))?;
        }
        rename_if_exists(&self.path, &self.backup(1))
    }

    /// `name.log.{k}`.
    fn backup(&self, k: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{k}"));
        PathBuf::from(name)
    }
}

/// Opens `path` for appending, creating it and its directory if needed.
fn open_append(path: &Path) -> Result<OpenFile> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot read the size of {}", path.display()))?
        .len();
    Ok(OpenFile { file, size })
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<()> {
    match fs::rename(from, to) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error)
            .with_context(|| format!("cannot rotate {} to {}", from.display(), to.display())),
        _ => Ok(()),
    }
}

/// A [`RotatingFile`] shared by every writer of one log, with a reusable line buffer.
///
/// Write failures never panic: the first one is reported on stderr, later ones are silent, and
/// every line is still attempted (the disk may free up).
#[derive(Debug, Clone)]
pub(crate) struct SharedFile(Arc<Mutex<FileState>>);

#[derive(Debug)]
pub(crate) struct FileState {
    file: RotatingFile,
    /// Scratch space for formatting a line under the lock; keeps its capacity between lines.
    pub(crate) buf: String,
    reported: bool,
}

/// Above this capacity the line buffer is released after use rather than kept.
const KEEP_BUF: usize = 64 * 1024;

impl SharedFile {
    pub(crate) fn new(file: RotatingFile) -> Self {
        SharedFile(Arc::new(Mutex::new(FileState {
            file,
            buf: String::new(),
            reported: false,
        })))
    }

    /// Writes `bytes` as one unit.
    pub(crate) fn write_bytes(&self, bytes: &[u8]) {
        let mut state = self.0.lock();
        let result = state.file.write(bytes);
        state.settle(result);
    }

    /// Formats a line into the shared buffer with `format` and writes it, all under the lock, so
    /// lines land in the file in the order of their timestamps.
    pub(crate) fn write_with(&self, format: impl FnOnce(&mut String)) {
        let mut state = self.0.lock();
        let state = &mut *state;
        state.buf.clear();
        format(&mut state.buf);
        let result = state.file.write(state.buf.as_bytes());
        if state.buf.capacity() > KEEP_BUF {
            state.buf = String::new();
        }
        state.settle(result);
    }

    #[cfg(test)]
    pub(crate) fn same_file(&self, other: &SharedFile) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    #[cfg(test)]
    pub(crate) fn reported(&self) -> bool {
        self.0.lock().reported
    }
}

impl FileState {
    fn settle(&mut self, result: Result<()>) {
        if let Err(error) = result
            && !self.reported
        {
            self.reported = true;
            // Not through `tracing`: this may run inside the root log's own writer.
            eprintln!(
                "hm: logging to {} failed: {error:#} (further errors for this log are not shown)",
                self.file.path().display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: impl AsRef<Path>) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn nothing_is_created_before_the_first_write() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let mut log = RotatingFile::new(dir.join("x.log"), 100, 2);
        assert!(!dir.exists());
        log.write(b"one\n").unwrap();
        assert_eq!(read(dir.join("x.log")), "one\n");
    }

    #[test]
    fn rotates_keeping_two_backups() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        // 10-byte lines, 25 bytes per file: two lines per file.
        let mut log = RotatingFile::new(&path, 25, 2);
        for i in 0..7 {
            log.write(format!("line {i:04}\n").as_bytes()).unwrap();
        }
        assert_eq!(read(&path), "line 0006\n");
        assert_eq!(read(tmp.path().join("x.log.1")), "line 0004\nline 0005\n");
        assert_eq!(read(tmp.path().join("x.log.2")), "line 0002\nline 0003\n");
        assert!(!tmp.path().join("x.log.3").exists());
        let mut names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["x.log", "x.log.1", "x.log.2"]);
    }

    #[test]
    fn a_file_may_reach_exactly_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        let mut log = RotatingFile::new(&path, 20, 1);
        log.write(b"line 0000\n").unwrap();
        log.write(b"line 0001\n").unwrap(); // 20 bytes: full, not over
        assert_eq!(read(&path), "line 0000\nline 0001\n");
        log.write(b"x\n").unwrap();
        assert_eq!(read(&path), "x\n");
    }

    #[test]
    fn without_backups_the_file_starts_over() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        let mut log = RotatingFile::new(&path, 25, 0);
        for i in 0..5 {
            log.write(format!("line {i:04}\n").as_bytes()).unwrap();
        }
        assert_eq!(read(&path), "line 0004\n");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_line_longer_than_the_limit_gets_a_fresh_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        let mut log = RotatingFile::new(&path, 10, 3);
        log.write(b"short\n").unwrap();
        let long = format!("{}\n", "x".repeat(30));
        log.write(long.as_bytes()).unwrap();
        log.write(b"after\n").unwrap();
        assert_eq!(read(&path), "after\n");
        assert_eq!(read(tmp.path().join("x.log.1")), long);
        assert_eq!(read(tmp.path().join("x.log.2")), "short\n");
    }

    #[test]
    fn a_reopened_log_counts_from_the_existing_size() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        let mut first = RotatingFile::new(&path, 25, 1);
        first.write(b"line 0000\n").unwrap();
        drop(first);
        let mut second = RotatingFile::new(&path, 25, 1);
        second.write(b"line 0001\n").unwrap(); // 20 bytes: still fits
        assert_eq!(read(&path), "line 0000\nline 0001\n");
        second.write(b"line 0002\n").unwrap(); // 30 > 25: rotates
        assert_eq!(read(&path), "line 0002\n");
        assert_eq!(read(tmp.path().join("x.log.1")), "line 0000\nline 0001\n");
    }

    #[test]
    fn zero_max_bytes_never_rotates() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        let mut log = RotatingFile::new(&path, 0, 1);
        for _ in 0..100 {
            log.write(b"0123456789\n").unwrap();
        }
        assert_eq!(read(&path).len(), 1100);
        assert!(!tmp.path().join("x.log.1").exists());
    }

    #[test]
    fn an_unwritable_log_reports_instead_of_panicking() {
        let tmp = tempfile::tempdir().unwrap();
        // A regular file where the directory should be: fails even when running as root.
        let blocker = tmp.path().join("blocker");
        fs::write(&blocker, "").unwrap();
        let path = blocker.join("logs/x.log");
        let error = RotatingFile::new(&path, 100, 1)
            .write(b"line\n")
            .unwrap_err();
        assert!(format!("{error:#}").contains(&blocker.display().to_string()));

        let shared = SharedFile::new(RotatingFile::new(&path, 100, 1));
        assert!(!shared.reported());
        shared.write_bytes(b"line\n");
        shared.write_with(|buf| buf.push_str("line\n"));
        assert!(shared.reported());
    }
}
