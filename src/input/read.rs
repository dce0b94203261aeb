//! Reading sources into batches of raw records.
//!
//! A record is one line of a JSON Lines input or one whole text document. Records are
//! copied into large batch buffers so that the parallel stage gets big units of work and
//! the reader does one allocation per batch, not per record.

use std::io::{BufRead, Read};

use super::problem::{Problem, ProblemKind};
use super::source::{InputFormat, Source, exhaustion, is_stream, open_buffered, open_decoded};

/// Where a record came from: the source's index and its 1-based line (0 for a whole file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordLocation {
    /// Index of the source in the planned source list.
    pub source: u32,
    /// 1-based line number; 0 for a text document.
    pub line: u64,
}

/// One raw record inside a [`Batch`].
#[derive(Clone, Debug)]
pub struct RawRecord {
    /// Where it came from.
    pub location: RecordLocation,
    /// Byte range of the record in the batch buffer (without the line ending). A text
    /// document's range holds its whole file, a byte order mark included, so that passage
    /// offsets are offsets into the file; [`document_text`] leaves the mark out.
    pub range: std::ops::Range<usize>,
    /// Bytes of the line ending that follow `range` in the buffer: 2 for `\r\n`, 1 for
    /// `\n`, 0 for a last line without one and for a text document.
    pub ending: u8,
}

/// The text of a text document without its byte order mark, if it has one.
pub fn document_text(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Raw records read in input order, sharing one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    /// The records' bytes.
    pub buf: Vec<u8>,
    /// The records, in input order.
    pub records: Vec<RawRecord>,
}

impl Batch {
    /// The bytes of one record of this batch.
    pub fn bytes(&self, record: &RawRecord) -> &[u8] {
        &self.buf[record.range.clone()]
    }

    /// The line ending of one record of this batch as it was read (`\r\n`, `\n`, or
    /// empty), for writers that copy records byte for byte.
    pub fn ending(&self, record: &RawRecord) -> &[u8] {
        let end = record.range.end;
        &self.buf[end..end + usize::from(record.ending)]
    }
}

/// What the reader produces, in input order.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadEvent {
    /// A batch of records.
    Batch(Batch),
    /// An input that could not be opened or read to its end.
    Problem(Problem),
    /// The process or the system ran out of open files or memory: no input's fault, and
    /// the last event; the run stops with this error.
    Failed(crate::Error),
}

/// Limits for reading.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    /// Longest record accepted, in bytes.
    pub max_record_bytes: u64,
    /// A batch is handed on once it holds this many bytes.
    pub batch_bytes: usize,
    /// ... or this many records.
    pub batch_records: usize,
    /// JSON Lines read from a stream (a pipe, a terminal): a batch is also handed on
    /// whenever no whole line is waiting, so each record is answered once it arrives
    /// rather than when a batch fills or the input ends (`index query -`).
    pub hand_on_when_waiting: bool,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_record_bytes: 256 << 20,
            batch_bytes: 4 << 20,
            batch_records: 4096,
            hand_on_when_waiting: false,
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads every source in order and hands batches and problems to `sink`, which returns
/// `false` to stop early. `on_read` is told how many raw bytes were read, for progress.
pub fn read_sources(
    sources: &[Source],
    limits: ReadLimits,
    on_read: &mut dyn FnMut(u64),
    sink: &mut dyn FnMut(ReadEvent) -> bool,
) {
    read_sources_passing_oversized(sources, limits, on_read, &mut |_| true, sink)
}

/// [`read_sources`], but a record over `max_record_bytes` is not only skipped: its bytes
/// (a line's with its line ending, if it has one) go to `oversized` in pieces as they are
/// read, after the
/// batch before it and before its `RecordTooLarge` problem, so that a caller can copy it
/// somewhere without holding it whole (`dedup --rejects`). `oversized` returns `false`
/// to stop.
pub fn read_sources_passing_oversized(
    sources: &[Source],
    limits: ReadLimits,
    on_read: &mut dyn FnMut(u64),
    oversized: &mut dyn FnMut(&[u8]) -> bool,
    sink: &mut dyn FnMut(ReadEvent) -> bool,
) {
    let mut batch = Batch::default();
    for (index, source) in sources.iter().enumerate() {
        let index = index as u32;
        let flow = match source.format {
            InputFormat::JsonLines => {
                read_lines(index, source, limits, on_read, oversized, &mut batch, sink)
            }
            InputFormat::Text => {
                read_document(index, source, limits, on_read, oversized, &mut batch, sink)
            }
        };
        if !flow {
            return;
        }
        let full =
            batch.buf.len() >= limits.batch_bytes || batch.records.len() >= limits.batch_records;
        if full && !sink(ReadEvent::Batch(std::mem::take(&mut batch))) {
            return;
        }
    }
    if !batch.records.is_empty() {
        sink(ReadEvent::Batch(batch));
    }
}

fn problem(source: &Source, line: Option<u64>, kind: ProblemKind) -> Problem {
    Problem {
        source: source.name.clone(),
        line,
        kind,
    }
}

/// Reads one JSON Lines source. Returns `false` if the sink asked to stop.
fn read_lines(
    index: u32,
    source: &Source,
    limits: ReadLimits,
    on_read: &mut dyn FnMut(u64),
    oversized: &mut dyn FnMut(&[u8]) -> bool,
    batch: &mut Batch,
    sink: &mut dyn FnMut(ReadEvent) -> bool,
) -> bool {
    let mut reader = match open_buffered(&source.location, on_read) {
        Ok(r) => r,
        Err(e) => {
            // Keep input order: records read so far go before the problem.
            if !flush(batch, sink) {
                return false;
            }
            if let Some(error) = exhaustion(&source.name, &e) {
                return fail(sink, error);
            }
            return sink(ReadEvent::Problem(problem(
                source,
                None,
                ProblemKind::Unreadable {
                    reason: e.to_string(),
                },
            )));
        }
    };
    let hand_on_when_waiting = limits.hand_on_when_waiting && is_stream(&source.location);
    let mut line = 0u64;
    loop {
        // The next read may wait for the writer: what is read goes on first.
        if hand_on_when_waiting
            && !batch.records.is_empty()
            && !reader.holds_line()
            && !sink(ReadEvent::Batch(std::mem::take(batch)))
        {
            return false;
        }
        line += 1;
        let start = batch.buf.len();
        let read = (&mut reader)
            .take(limits.max_record_bytes + 1)
            .read_until(b'\n', &mut batch.buf);
        match read {
            Ok(0) => break,
            Ok(n) => {
                let has_newline = batch.buf.last() == Some(&b'\n');
                if !has_newline && n as u64 > limits.max_record_bytes {
                    // The bytes read so far leave the batch; the batch goes first so
                    // that `oversized` sees the record in input order.
                    let head = batch.buf.split_off(start);
                    if !flush(batch, sink) || !oversized(&head) {
                        return false;
                    }
                    drop(head);
                    let Some(rest) = pass_rest(&mut reader, true, oversized) else {
                        return false;
                    };
                    let kind = ProblemKind::RecordTooLarge {
                        bytes: n as u64 + rest,
                        limit: limits.max_record_bytes,
                    };
                    if !sink(ReadEvent::Problem(problem(source, Some(line), kind))) {
                        return false;
                    }
                    continue;
                }
                let mut end = batch.buf.len();
                if has_newline {
                    end -= 1;
                    if end > start && batch.buf[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                let mut begin = start;
                if line == 1 && batch.buf[start..end].starts_with(BOM) {
                    begin += BOM.len();
                }
                if batch.buf[begin..end].iter().all(u8::is_ascii_whitespace) {
                    // Blank lines carry no record.
                    batch.buf.truncate(start);
                    continue;
                }
                batch.records.push(RawRecord {
                    location: RecordLocation {
                        source: index,
                        line,
                    },
                    range: begin..end,
                    ending: (batch.buf.len() - end) as u8,
                });
                if (batch.buf.len() >= limits.batch_bytes
                    || batch.records.len() >= limits.batch_records)
                    && !sink(ReadEvent::Batch(std::mem::take(batch)))
                {
                    return false;
                }
            }
            Err(e) => {
                batch.buf.truncate(start);
                if !flush(batch, sink) {
                    return false;
                }
                if let Some(error) = exhaustion(&source.name, &e) {
                    return fail(sink, error);
                }
                let mut reason = describe_read_error(&e, &source.name);
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    reason.push_str("; the partial last line is dropped");
                }
                return sink(ReadEvent::Problem(problem(
                    source,
                    Some(line),
                    ProblemKind::ReadFailed { reason },
                )));
            }
        }
    }
    true
}

/// Passes the rest of an oversized record to `oversized`: up to and including its line
/// ending when `line`, else to the end of the input. Returns the bytes
/// read (`None`: `oversized` asked to stop). A read error ends the record where it
/// happened; the next read reports it.
fn pass_rest(
    reader: &mut dyn BufRead,
    line: bool,
    oversized: &mut dyn FnMut(&[u8]) -> bool,
) -> Option<u64> {
    let mut total = 0u64;
    loop {
        let Ok(buf) = reader.fill_buf() else {
            return Some(total);
        };
        if buf.is_empty() {
            return Some(total);
        }
        let newline = if line {
            buf.iter().position(|&b| b == b'\n')
        } else {
            None
        };
        let used = newline.map_or(buf.len(), |i| i + 1);
        let piece = &buf[..used];
        if !oversized(piece) {
            return None;
        }
        reader.consume(used);
        total += used as u64;
        if newline.is_some() {
            return Some(total);
        }
    }
}

/// Reads one text document. Returns `false` if the sink asked to stop.
fn read_document(
    index: u32,
    source: &Source,
    limits: ReadLimits,
    on_read: &mut dyn FnMut(u64),
    oversized: &mut dyn FnMut(&[u8]) -> bool,
    batch: &mut Batch,
    sink: &mut dyn FnMut(ReadEvent) -> bool,
) -> bool {
    let start = batch.buf.len();
    let mut stopped = false;
    let mut exhausted = None;
    let result = open_decoded(&source.location, on_read)
        .map_err(|e| {
            exhausted = exhaustion(&source.name, &e);
            ProblemKind::Unreadable {
                reason: e.to_string(),
            }
        })
        .and_then(|mut reader| {
            let n = (&mut reader)
                .take(limits.max_record_bytes + 1)
                .read_to_end(&mut batch.buf)
                .map_err(|e| {
                    exhausted = exhaustion(&source.name, &e);
                    ProblemKind::ReadFailed {
                        reason: describe_read_error(&e, &source.name),
                    }
                })?;
            if n as u64 > limits.max_record_bytes {
                // As for a long line: the batch before it, then the document in pieces.
                let head = batch.buf.split_off(start);
                let rest = if flush(batch, sink) && oversized(&head) {
                    pass_rest(&mut reader, false, oversized)
                } else {
                    None
                };
                stopped = rest.is_none();
                return Err(ProblemKind::RecordTooLarge {
                    bytes: n as u64 + rest.unwrap_or(0),
                    limit: limits.max_record_bytes,
                });
            }
            Ok(())
        });
    if stopped {
        return false;
    }
    match result {
        Ok(()) => {
            let end = batch.buf.len();
            batch.records.push(RawRecord {
                location: RecordLocation {
                    source: index,
                    line: 0,
                },
                range: start..end,
                ending: 0,
            });
            true
        }
        Err(kind) => {
            batch.buf.truncate(start);
            flush(batch, sink)
                && match exhausted {
                    Some(error) => fail(sink, error),
                    None => sink(ReadEvent::Problem(problem(source, None, kind))),
                }
        }
    }
}

/// Hands on the error that ends the reading; returns `false`, to stop.
fn fail(sink: &mut dyn FnMut(ReadEvent) -> bool, error: crate::Error) -> bool {
    sink(ReadEvent::Failed(error));
    false
}

fn flush(batch: &mut Batch, sink: &mut dyn FnMut(ReadEvent) -> bool) -> bool {
    batch.records.is_empty() || sink(ReadEvent::Batch(std::mem::take(batch)))
}

/// Why reading the input named `name` stopped, for a message naming where.
pub(crate) fn describe_read_error(e: &std::io::Error, name: &str) -> String {
    let compressed = {
        let n = name.to_ascii_lowercase();
        n.ends_with(".gz") || n.ends_with(".zst")
    };
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof if compressed => {
            format!("truncated compressed stream ({e})")
        }
        std::io::ErrorKind::UnexpectedEof => format!("unexpected end of input ({e})"),
        _ => e.to_string(),
    }
}
