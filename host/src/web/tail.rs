//! Follows one log file as it grows, across rotation, for the node page's live log.
//!
//! [`LogTail::poll`] returns the complete lines written since the last call. When the file is
//! rotated (renamed away and a new one created) the rest of the old file is read first, then
//! the new file from its start; when it shrinks (truncated in place) reading restarts at 0.
//! A file that does not exist yet is waited for.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

/// How much of the end of a file is read for its last lines.
const LAST_LINES_WINDOW: u64 = 256 * 1024;

/// A followed file.
pub(crate) struct LogTail {
    path: PathBuf,
    open: Option<Open>,
    /// An unfinished last line, kept until its newline arrives.
    partial: Vec<u8>,
}

struct Open {
    file: File,
    inode: u64,
    position: u64,
}

impl LogTail {
    /// Starts following `path`; returns it with the file's last `count` lines.
    pub(crate) fn start(path: PathBuf, count: usize) -> (Self, Vec<String>) {
        let mut tail = Self {
            path,
            open: None,
            partial: Vec::new(),
        };
        let mut lines = Vec::new();
        if let Some(mut open) = tail.open_file() {
            let length = open.file.metadata().map(|m| m.len()).unwrap_or(0);
            let from = length.saturating_sub(LAST_LINES_WINDOW);
            open.position = from;
            tail.open = Some(open);
            lines = tail.read_new();
            if from > 0 && !lines.is_empty() {
                // The window may start inside a line.
                lines.remove(0);
            }
            let skip = lines.len().saturating_sub(count);
            lines.drain(..skip);
        }
        (tail, lines)
    }

    /// Starts following `path`; returns it with every line the file has now.
    pub(crate) fn whole(path: PathBuf) -> (Self, Vec<String>) {
        let mut tail = Self {
            path,
            open: None,
            partial: Vec::new(),
        };
        tail.open = tail.open_file();
        let lines = tail.read_new();
        (tail, lines)
    }

    /// The complete lines written since the last call.
    pub(crate) fn poll(&mut self) -> Vec<String> {
        let current = std::fs::metadata(&self.path).ok();
        let mut lines = Vec::new();
        match (&self.open, &current) {
            (None, Some(_)) => {
                self.open = self.open_file();
            }
            (Some(open), Some(meta)) if meta.ino() != open.inode => {
                // Rotated: finish the old file, then follow the new one.
                lines = self.read_new();
                self.flush_partial(&mut lines);
                self.open = self.open_file();
            }
            (Some(open), Some(meta)) if meta.len() < open.position => {
                self.partial.clear();
                self.open = self.open_file();
            }
            _ => {}
        }
        lines.extend(self.read_new());
        lines
    }

    fn open_file(&self) -> Option<Open> {
        let file = File::open(&self.path).ok()?;
        let inode = file.metadata().ok()?.ino();
        Some(Open {
            file,
            inode,
            position: 0,
        })
    }

    fn read_new(&mut self) -> Vec<String> {
        let Some(open) = &mut self.open else {
            return Vec::new();
        };
        let mut bytes = std::mem::take(&mut self.partial);
        let read = open
            .file
            .seek(SeekFrom::Start(open.position))
            .and_then(|_| open.file.read_to_end(&mut bytes));
        let Ok(read) = read else {
            return Vec::new();
        };
        open.position += read as u64;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = bytes.split_off(complete);
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn flush_partial(&mut self, lines: &mut Vec<String>) {
        if !self.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&self.partial).into_owned());
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn append(path: &std::path::Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[test]
    fn starts_with_the_last_lines_then_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batman.log");
        append(&path, "one\ntwo\nthree\n");
        let (mut tail, last) = LogTail::start(path.clone(), 2);
        assert_eq!(last, ["two", "three"]);
        assert!(tail.poll().is_empty());
        append(&path, "four\nfi");
        assert_eq!(tail.poll(), ["four"]);
        append(&path, "ve\n");
        assert_eq!(tail.poll(), ["five"]);
    }

    #[test]
    fn waits_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batman.log");
        let (mut tail, last) = LogTail::start(path.clone(), 10);
        assert!(last.is_empty());
        assert!(tail.poll().is_empty());
        append(&path, "hello\n");
        let mut seen = tail.poll();
        append(&path, "again\n");
        seen.extend(tail.poll());
        assert_eq!(seen, ["hello", "again"]);
    }

    #[test]
    fn follows_rotation_without_losing_the_old_files_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batman.log");
        append(&path, "old 1\n");
        let (mut tail, _) = LogTail::start(path.clone(), 10);
        append(&path, "old 2\n");
        std::fs::rename(&path, dir.path().join("batman.log.1")).unwrap();
        append(&path, "new 1\n");
        assert_eq!(tail.poll(), ["old 2", "new 1"]);
    }

    #[test]
    fn restarts_when_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batman.log");
        append(&path, "a long first line\n");
        let (mut tail, _) = LogTail::start(path.clone(), 10);
        std::fs::write(&path, "b\n").unwrap();
        assert_eq!(tail.poll(), ["b"]);
    }
}
