//! The host's own events, as records in root.log: a `tracing-subscriber` formatter and writer.

use super::file::SharedFile;
use super::line::{Body, INDENT, write_header};
use std::fmt::{self, Write};
use std::io;
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The layer writing host events at INFO+ (DEBUG+ with `verbose`) to root.log.
pub(crate) fn layer<S>(file: SharedFile, verbose: bool) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(RootFields)
        .event_format(RootFormat)
        .with_ansi(false)
        .with_writer(RootWriter(file))
        .with_filter(super::default_targets(verbose))
}

/// Formats an event as one record: `<time>  INFO span{k=v}: message key=value …`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RootFormat;

impl<S> FormatEvent<S, RootFields> for RootFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, RootFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_header(
            &mut writer,
            OffsetDateTime::now_utc(),
            *event.metadata().level(),
        )?;
        let mut body = Body::new(&mut writer, INDENT);
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                any = true;
                body.write_str(span.name())?;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<RootFields>>()
                    && !fields.fields.is_empty()
                {
                    write!(body, "{{{}}}", fields.fields)?;
                }
                body.write_char(':')?;
            }
            if any {
                body.write_char(' ')?;
            }
        }
        let mut visitor = FieldWriter::new(&mut body);
        event.record(&mut visitor);
        visitor.result?;
        body.finish()
    }
}

/// Formats fields as `message key=value key2="text"` (values in their `Debug` form, the message
/// bare), for events and for span fields alike.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RootFields;

impl<'w> FormatFields<'w> for RootFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = FieldWriter::new(&mut writer);
        fields.record(&mut visitor);
        visitor.result
    }
}

struct FieldWriter<'a> {
    out: &'a mut dyn Write,
    first: bool,
    result: fmt::Result,
}

impl<'a> FieldWriter<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        FieldWriter {
            out,
            first: true,
            result: Ok(()),
        }
    }

    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>, bare: fmt::Arguments<'_>) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let separator = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = if name == "message" {
            write!(self.out, "{separator}{bare}")
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            write!(self.out, "{separator}{name}={value}")
        };
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, format_args!("{value:?}"), format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, format_args!("{value:?}"), format_args!("{value:?}"));
    }
}

/// Hands each formatted event to root.log's file as one write.
#[derive(Debug, Clone)]
pub(super) struct RootWriter(pub(crate) SharedFile);

impl<'a> MakeWriter<'a> for RootWriter {
    type Writer = RootLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        RootLine(&self.0)
    }
}

/// One event's bytes on their way to root.log.
#[derive(Debug)]
pub(super) struct RootLine<'a>(&'a SharedFile);

impl io::Write for RootLine<'_> {
    /// Takes the whole buffer (the fmt layer writes one record per call); failures are reported
    /// once by the file, never returned, so the fmt layer does not report them again.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_bytes(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::file::RotatingFile;
    use crate::logging::line::tests::record_re;
    use tracing_subscriber::layer::SubscriberExt;

    /// Runs `f` with a root.log-only subscriber as this thread's default (not the global one).
    fn root_log(verbose: bool, f: impl FnOnce()) -> String {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("root.log");
        let file = SharedFile::new(RotatingFile::new(&path, 0, 1));
        let subscriber = tracing_subscriber::registry().with(layer(file, verbose));
        tracing::subscriber::with_default(subscriber, f);
        std::fs::read_to_string(&path).unwrap_or_default()
    }

    #[test]
    fn events_become_records_with_their_fields() {
        let log = root_log(false, || {
            let span = tracing::info_span!("node", name = "batman");
            let _entered = span.enter();
            tracing::warn!(count = 3, path = "/tmp/x y", "loaded {}", "lib");
        });
        assert!(record_re().is_match(&log), "{log:?}");
        assert!(
            log.ends_with("  WARN node{name=\"batman\"}: loaded lib count=3 path=\"/tmp/x y\"\n"),
            "{log:?}"
        );
    }

    #[test]
    fn multiline_messages_are_indented() {
        let log = root_log(false, || {
            tracing::error!(code = 2, "failed:\ncaused by: nope");
        });
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log:?}");
        assert!(lines[0].ends_with("Z ERROR failed:"), "{log:?}");
        assert_eq!(lines[1], format!("{INDENT}caused by: nope code=2"));
    }

    #[test]
    fn debug_events_need_verbose() {
        let emit = || {
            tracing::debug!("detail");
            tracing::info!("normal");
        };
        let quiet = root_log(false, emit);
        assert_eq!(quiet.lines().count(), 1, "{quiet:?}");
        assert!(quiet.contains(" INFO normal"));
        let verbose = root_log(true, emit);
        assert_eq!(verbose.lines().count(), 2, "{verbose:?}");
        assert!(verbose.contains("DEBUG detail"));
    }
}
