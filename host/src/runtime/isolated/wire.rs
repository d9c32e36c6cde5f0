//! The frames an isolated node's process and its host exchange over their socket.
//!
//! A frame is a little-endian `u32` length, a one-byte tag, then the tag's fields: integers as
//! little-endian `u32`/`u64`, text as a `u32` length and UTF-8 bytes. Messages, the hot path,
//! are laid out by hand and decoded as borrowed slices of the read buffer; the rare frames
//! (the start, the build report, status reports) carry JSON.

use std::io::{self, Read, Write};

/// Room in a frame beside its payload: the tag, the sequence number, the service, node and
/// host names, a log line or a status report.
pub(super) const FRAME_SLACK: usize = 1024 * 1024;

/// The largest frame a side accepts when the payload limit is `max_payload_bytes`: one
/// payload (or a saved state, allowed at least 16 MiB) with [`FRAME_SLACK`] to spare. A bigger
/// header means a corrupt or hostile stream.
pub(super) fn max_frame(max_payload_bytes: usize) -> usize {
    max_payload_bytes
        .max(16 * 1024 * 1024)
        .saturating_add(FRAME_SLACK)
        .min(u32::MAX as usize)
}

/// Bytes read at a time into a frame's buffer: a header alone never makes the reader allocate
/// more than the bytes that actually arrived, plus this.
const READ_CHUNK: usize = 64 * 1024;

/// Host → process: the node to run ([`super::ChildSpec`], JSON).
pub(super) const INIT: u8 = 1;
/// Host → process: start the services and deliveries, with the saved state if any.
pub(super) const START: u8 = 2;
/// Host → process: one message for the node's subscriptions.
pub(super) const DELIVER: u8 = 3;
/// Host → process: finish what was delivered, save the state, reply [`STATE`], exit.
pub(super) const HAND_OVER: u8 = 4;
/// Host → process: stop and exit.
pub(super) const STOP: u8 = 5;
/// Host → process: a request for the node: id, timeout left (ms), name, asker, asker's host,
/// arguments (JSON text).
pub(super) const REQUEST: u8 = 6;
/// Host → process: the outcome of the node's ask: its token and the outcome (JSON).
pub(super) const ASKED: u8 = 7;
/// Process → host: the node is built ([`super::BuiltReport`], JSON).
pub(super) const BUILT: u8 = 11;
/// Process → host: the node could not be built; the text says why.
pub(super) const BUILD_FAILED: u8 = 12;
/// Process → host: a service sent a message.
pub(super) const PUBLISH: u8 = 13;
/// Process → host: the node has handled every delivery up to this sequence number.
pub(super) const ACK: u8 = 14;
/// Process → host: a line for the node's log.
pub(super) const LOG: u8 = 15;
/// Process → host: the node's status and counters (a `NodeSnapshot`, JSON).
pub(super) const REPORT: u8 = 16;
/// Process → host: the state saved for the next instance (reply to [`HAND_OVER`]).
pub(super) const STATE: u8 = 17;
/// Process → host: the answer to a [`REQUEST`]: its id and the outcome (JSON).
pub(super) const ANSWER: u8 = 18;
/// Process → host: the node asks: its token, timeout (ms), whether of all, name, arguments.
pub(super) const ASK: u8 = 19;

/// Appends frames to a buffer, to be written in one go.
#[derive(Default)]
pub(super) struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts a frame with `tag`; finish it with [`Frame::end`].
    pub(super) fn frame(&mut self, tag: u8) -> Frame<'_> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.push(tag);
        Frame {
            buf: &mut self.buf,
            start,
        }
    }

    /// The encoded bytes.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes encoded and not yet taken.
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends frames encoded elsewhere.
    pub(super) fn append(&mut self, frames: &[u8]) {
        self.buf.extend_from_slice(frames);
    }

    /// Forgets the first `n` bytes (written out).
    pub(super) fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
    }

    /// Writes everything out and empties the buffer.
    pub(super) fn write_all(&mut self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.buf)?;
        out.flush()?;
        self.buf.clear();
        Ok(())
    }
}

/// One frame being encoded.
pub(super) struct Frame<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl Frame<'_> {
    pub(super) fn u8(self, value: u8) -> Self {
        self.buf.push(value);
        self
    }

    pub(super) fn u32(self, value: u32) -> Self {
        self.buf.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(super) fn u64(self, value: u64) -> Self {
        self.buf.extend_from_slice(&value.to_le_bytes());
        self
    }

    pub(super) fn str(self, value: &str) -> Self {
        let len = u32::try_from(value.len()).expect("text over 4 GiB");
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self
    }

    /// The rest of the frame, as it is (a JSON document; see [`Fields::json`]).
    pub(super) fn raw(self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(super) fn opt_str(self, value: Option<&str>) -> Self {
        match value {
            Some(text) => self.u8(1).str(text),
            None => self.u8(0),
        }
    }

    /// Writes the frame's length.
    pub(super) fn end(self) {
        let len = u32::try_from(self.buf.len() - self.start - 4).expect("frame over 4 GiB");
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// Reads frames from a stream into one reused buffer, as many bytes per `read` as the stream
/// has ready (up to [`READ_CHUNK`] beyond what is held), so that at full rate one system call
/// brings many frames.
///
/// Bounds: a frame's length is checked against `max_frame` before anything of it is kept, and
/// the buffer grows only by what arrived plus [`READ_CHUNK`], never by what a header claims.
pub(super) struct Decoder<R> {
    input: R,
    /// Bytes read and not yet handed out: `buf[start..end]`. Invariant: `start <= end <=
    /// buf.len()`, and `buf.len()` is at most the largest frame seen plus [`READ_CHUNK`].
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Frames longer than this are refused before anything of them is kept.
    max_frame: usize,
}

impl<R: Read> Decoder<R> {
    /// Reads frames of at most `max_frame` bytes (see [`max_frame`]).
    pub(super) fn new(input: R, max_frame: usize) -> Self {
        Self {
            input,
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_frame,
        }
    }

    /// Changes the largest frame accepted from now on.
    pub(super) fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// The next frame's tag and fields; `None` when the stream ends between frames.
    pub(super) fn next(&mut self) -> io::Result<Option<(u8, Fields<'_>)>> {
        loop {
            let held = self.end - self.start;
            if held >= 4 {
                let header = &self.buf[self.start..self.start + 4];
                let len = u32::from_le_bytes(header.try_into().expect("4 bytes")) as usize;
                if len == 0 || len > self.max_frame {
                    return Err(invalid(format!(
                        "a frame of {len} bytes (at most {} are accepted)",
                        self.max_frame
                    )));
                }
                if held - 4 >= len {
                    let frame = self.start + 4..self.start + 4 + len;
                    self.start = frame.end;
                    if self.start == self.end {
                        (self.start, self.end) = (0, 0);
                    }
                    let frame = &self.buf[frame];
                    return Ok(Some((frame[0], Fields(&frame[1..]))));
                }
            }
            if self.fill()? == 0 {
                return if held == 0 {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    /// Reads what the stream has (at least one byte, blocking until then); returns how many
    /// bytes came, 0 at its end.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            // What is left of a frame moves to the front: room to read after it.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            // Grows by one chunk past what arrived, whatever the header claims.
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// The fields of one frame, read in order.
pub(super) struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(invalid("a frame shorter than its fields".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> io::Result<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("took 4")))
    }

    pub(super) fn u64(&mut self) -> io::Result<u64> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("took 8")))
    }

    pub(super) fn str(&mut self) -> io::Result<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|e| invalid(format!("text: {e}")))
    }

    pub(super) fn opt_str(&mut self) -> io::Result<Option<&'a str>> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.str().map(Some),
        }
    }

    /// The rest as one JSON document.
    pub(super) fn json<T: serde::de::DeserializeOwned>(&mut self) -> io::Result<T> {
        let rest = std::mem::take(&mut self.0);
        serde_json::from_slice(rest).map_err(|e| invalid(format!("JSON: {e}")))
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt isolation stream: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_as_written() {
        let mut out = Encoder::default();
        out.frame(DELIVER)
            .u64(7)
            .u8(2)
            .u32(1)
            .str("bat-signal-main")
            .opt_str(None)
            .opt_str(Some("gotham"))
            .str("")
            .end();
        out.frame(STOP).end();
        let mut input = Decoder::new(out.bytes(), 1 << 20);
        let (tag, mut fields) = input.next().unwrap().unwrap();
        assert_eq!(tag, DELIVER);
        assert_eq!(fields.u64().unwrap(), 7);
        assert_eq!(fields.u8().unwrap(), 2);
        assert_eq!(fields.u32().unwrap(), 1);
        assert_eq!(fields.str().unwrap(), "bat-signal-main");
        assert_eq!(fields.opt_str().unwrap(), None);
        assert_eq!(fields.opt_str().unwrap(), Some("gotham"));
        assert_eq!(fields.str().unwrap(), "");
        assert!(fields.u8().is_err(), "reading past the frame is an error");
        assert_eq!(input.next().unwrap().unwrap().0, STOP);
        assert!(input.next().unwrap().is_none(), "the end between frames");
    }

    #[test]
    fn corrupt_streams_are_errors_not_panics() {
        let cut_inside_a_frame: &[u8] = &[9, 0, 0, 0, DELIVER, 1];
        assert!(Decoder::new(cut_inside_a_frame, 1 << 20).next().is_err());
        let huge: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(Decoder::new(huge, 1 << 20).next().is_err());
        let empty_frame: &[u8] = &[0, 0, 0, 0];
        assert!(Decoder::new(empty_frame, 1 << 20).next().is_err());
        let mut out = Encoder::default();
        out.frame(LOG).u8(3).u32(10).end();
        let mut input = Decoder::new(out.bytes(), 1 << 20);
        let (_, mut fields) = input.next().unwrap().unwrap();
        fields.u8().unwrap();
        assert!(fields.str().is_err(), "text longer than the frame");
        let mut out = Encoder::default();
        out.frame(LOG).u32(2).u8(0xff).u8(0xfe).end();
        let mut input = Decoder::new(out.bytes(), 1 << 20);
        let (_, mut fields) = input.next().unwrap().unwrap();
        assert!(fields.str().is_err(), "text that is not UTF-8");
    }

    #[test]
    fn a_header_alone_costs_no_more_than_what_arrived() {
        // A header claiming 200 MB, then 10 bytes and the end of the stream.
        let mut forged = (200_000_000u32).to_le_bytes().to_vec();
        forged.extend_from_slice(&[PUBLISH; 10]);
        let mut input = Decoder::new(forged.as_slice(), 256 * 1024 * 1024);
        assert!(input.next().is_err(), "cut short");
        assert!(
            input.buf.capacity() <= 2 * READ_CHUNK,
            "allocated {} bytes for 10",
            input.buf.capacity()
        );
        let over = (max_frame(1024) as u32 + 1).to_le_bytes();
        let error = Decoder::new(over.as_slice(), max_frame(1024))
            .next()
            .err()
            .unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("at most"), "{error}");
    }

    /// A stream that counts its `read` calls and gives at most `step` bytes per call.
    struct Counted<'a> {
        bytes: &'a [u8],
        step: usize,
        reads: usize,
    }

    impl Read for Counted<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = self.step.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn deliveries(count: u64) -> Encoder {
        let mut out = Encoder::default();
        for seq in 1..=count {
            out.frame(DELIVER)
                .u64(seq)
                .str("bat-signal")
                .str(&format!("{{\"n\":{seq}}}"))
                .end();
        }
        out
    }

    fn read_all(input: &mut Decoder<Counted<'_>>) -> Vec<(u64, String)> {
        let mut seen = Vec::new();
        while let Some((tag, mut fields)) = input.next().unwrap() {
            assert_eq!(tag, DELIVER);
            let seq = fields.u64().unwrap();
            assert_eq!(fields.str().unwrap(), "bat-signal");
            seen.push((seq, fields.str().unwrap().to_owned()));
        }
        seen
    }

    #[test]
    fn one_read_brings_many_frames() {
        let out = deliveries(1000);
        assert!(out.len() < READ_CHUNK, "the test's frames fit one read");
        let mut input = Decoder::new(
            Counted {
                bytes: out.bytes(),
                step: usize::MAX,
                reads: 0,
            },
            1 << 20,
        );
        let seen = read_all(&mut input);
        assert_eq!(seen.len(), 1000);
        assert_eq!(seen[999], (1000, "{\"n\":1000}".to_owned()));
        // One read for the frames, one that sees the end.
        assert_eq!(input.input.reads, 2, "a read per frame, not per batch");
    }

    #[test]
    fn frames_cut_anywhere_come_back_whole_and_in_order() {
        let out = deliveries(300);
        for step in [1, 3, 7, 4096] {
            let mut input = Decoder::new(
                Counted {
                    bytes: out.bytes(),
                    step,
                    reads: 0,
                },
                1 << 20,
            );
            let seen = read_all(&mut input);
            let expected: Vec<u64> = (1..=300).collect();
            assert_eq!(
                seen.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
                expected,
                "{step} bytes a read"
            );
            assert!(
                seen.iter()
                    .all(|(seq, text)| *text == format!("{{\"n\":{seq}}}"))
            );
        }
    }

    #[test]
    fn a_big_frame_grows_the_buffer_only_as_it_arrives() {
        let payload = "x".repeat(3 * READ_CHUNK);
        let mut out = Encoder::default();
        out.frame(PUBLISH).str("s").str(&payload).end();
        let whole = out.bytes().to_vec();
        // Only half of it arrives, then the stream ends.
        let half = &whole[..whole.len() / 2];
        let mut input = Decoder::new(
            Counted {
                bytes: half,
                step: usize::MAX,
                reads: 0,
            },
            1 << 30,
        );
        assert!(input.next().is_err(), "cut short");
        assert!(
            input.buf.capacity() <= 2 * (half.len() + READ_CHUNK),
            "{} bytes held for {} arrived",
            input.buf.capacity(),
            half.len()
        );
        let mut input = Decoder::new(whole.as_slice(), 1 << 30);
        let (tag, mut fields) = input.next().unwrap().unwrap();
        assert_eq!(tag, PUBLISH);
        assert_eq!(fields.str().unwrap(), "s");
        assert_eq!(fields.str().unwrap().len(), payload.len());
        assert!(input.next().unwrap().is_none());
    }
}
