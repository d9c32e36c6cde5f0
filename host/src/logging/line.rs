//! The shape of one log record, the same in root.log and in every node log.
//!
//! ```text
//! 2026-11-28T02:42:44.123456Z  INFO first line of the message
//!                                    continuation lines are indented to the message column
//! ```
//!
//! A record starts with an RFC 3339 UTC timestamp (6 fractional digits), a space, the level
//! right-aligned in 5 columns (so `INFO` and `WARN` follow two spaces, as in `tracing`'s own
//! format), one space, then the message. Only a record's first line starts with
//! a non-space, so files can be merged by timestamp line by line.

use std::fmt::{self, Write};
use time::{OffsetDateTime, UtcOffset};
use tracing::Level;

/// Width of `2026-11-28T02:42:44.123456Z  INFO `: where the message starts.
pub(crate) const HEADER_WIDTH: usize = 34;

/// What continuation lines in a file start with: blanks up to the message column.
pub(crate) const INDENT: &str = "                                  ";
const _: () = assert!(INDENT.len() == HEADER_WIDTH);

/// The level as written in a record: right-aligned in 5 columns.
pub(crate) fn level_label(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => " WARN",
        Level::INFO => " INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// Writes a record's header (timestamp, level, one space); the message follows through [`Body`].
pub(crate) fn write_header(
    out: &mut (impl Write + ?Sized),
    at: OffsetDateTime,
    level: Level,
) -> fmt::Result {
    let at = at.to_offset(UtcOffset::UTC);
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z {} ",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond(),
        level_label(level),
    )
}

/// Appends one whole record, ending in a newline, to `out`.
pub(crate) fn format_line(out: &mut String, at: OffsetDateTime, level: Level, message: &str) {
    // Writing to a `String` cannot fail.
    let _ = write_header(out, at, level);
    let mut body = Body::new(out, INDENT);
    let _ = body.write_str(message);
    let _ = body.finish();
}

/// Writes a message so that every line after the first starts with `indent`.
///
/// `\n`, `\r\n` and `\r` all break lines; trailing line breaks are dropped.
pub(crate) struct Body<'a, W: Write + ?Sized> {
    out: &'a mut W,
    indent: &'a str,
    /// Line breaks seen but not yet written (held back so trailing ones can be dropped).
    pending: usize,
    after_cr: bool,
}

impl<'a, W: Write + ?Sized> Body<'a, W> {
    pub(crate) fn new(out: &'a mut W, indent: &'a str) -> Self {
        Body {
            out,
            indent,
            pending: 0,
            after_cr: false,
        }
    }

    /// Ends the record with its newline.
    pub(crate) fn finish(self) -> fmt::Result {
        self.out.write_char('\n')
    }

    fn text(&mut self, text: &str) -> fmt::Result {
        if text.is_empty() {
            return Ok(());
        }
        self.after_cr = false;
        for _ in 0..self.pending {
            self.out.write_char('\n')?;
            self.out.write_str(self.indent)?;
        }
        self.pending = 0;
        self.out.write_str(text)
    }
}

impl<W: Write + ?Sized> Write for Body<'_, W> {
    fn write_str(&mut self, mut s: &str) -> fmt::Result {
        while let Some(at) = s.find(['\r', '\n']) {
            self.text(&s[..at])?;
            let cr = s.as_bytes()[at] == b'\r';
            if cr || !self.after_cr {
                self.pending += 1;
            }
            self.after_cr = cr;
            s = &s[at + 1..];
        }
        self.text(s)
    }
}

/// `message` with continuation lines indented by `indent`, for one-off lines such as the
/// terminal's.
pub(crate) struct Indented<'a>(pub &'a str, pub &'a str);

impl fmt::Display for Indented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Body::new(f, self.1).write_str(self.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use regex::Regex;
    use time::macros::datetime;

    /// A record's first line.
    pub(crate) fn record_re() -> Regex {
        Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z (ERROR| WARN| INFO|DEBUG|TRACE) ")
            .unwrap()
    }

    fn line(level: Level, message: &str) -> String {
        let mut out = String::new();
        format_line(
            &mut out,
            datetime!(2026-11-28 02:42:44.123456789 UTC),
            level,
            message,
        );
        out
    }

    #[test]
    fn a_record_has_the_exact_layout() {
        assert_eq!(
            line(Level::INFO, "hello"),
            "2026-11-28T02:42:44.123456Z  INFO hello\n"
        );
        assert_eq!(
            line(Level::ERROR, "x"),
            "2026-11-28T02:42:44.123456Z ERROR x\n"
        );
        assert_eq!(
            line(Level::WARN, "x"),
            "2026-11-28T02:42:44.123456Z  WARN x\n"
        );
        assert_eq!(
            line(Level::DEBUG, "x"),
            "2026-11-28T02:42:44.123456Z DEBUG x\n"
        );
    }

    #[test]
    fn the_timestamp_is_utc_with_six_digits() {
        let mut out = String::new();
        let at = datetime!(2026-01-02 03:04:05.000007 +02:00);
        format_line(&mut out, at, Level::INFO, "m");
        assert_eq!(out, "2026-01-02T01:04:05.000007Z  INFO m\n");

        let mut now = String::new();
        format_line(&mut now, OffsetDateTime::now_utc(), Level::WARN, "now");
        assert!(record_re().is_match(&now), "{now:?}");
        assert!(now.ends_with("  WARN now\n"), "{now:?}");
    }

    #[test]
    fn continuation_lines_are_indented_to_the_message() {
        let out = line(Level::WARN, "first\nsecond\r\nthird\r\n\nfifth\n\n");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5, "{out:?}");
        assert_eq!(lines[0], "2026-11-28T02:42:44.123456Z  WARN first");
        assert_eq!(lines[1], format!("{INDENT}second"));
        assert_eq!(lines[2], format!("{INDENT}third"));
        assert_eq!(lines[3], INDENT);
        assert_eq!(lines[4], format!("{INDENT}fifth"));
        assert!(out.ends_with("fifth\n"));
        // A message that looks like a record cannot forge one.
        let forged = line(
            Level::INFO,
            "x\n2026-11-28T02:42:44.123456Z ERROR forged\r2026-11-28T02:42:44.123456Z ERROR again",
        );
        assert_eq!(
            forged.lines().filter(|l| record_re().is_match(l)).count(),
            1
        );
    }

    #[test]
    fn indented_display_for_the_terminal() {
        assert_eq!(Indented("a\nb\n", "  ").to_string(), "a\n  b");
    }
}
