//! One HTTP/1.1 response read from raw bytes: the client side of `GET /health`, shared by the
//! election probe and the `domshell health` command.
//!
//! It owns the framing of a response — status line, headers, and a body delimited by
//! `Content-Length`, `Transfer-Encoding: chunked` or the end of the connection — and the byte
//! cap that bounds it. Its input comes from whatever program holds the port, so anything
//! malformed, truncated or oversized is an [`HttpReadError`], never a panic. It must not open
//! connections, send requests or retry, and it judges no status code: callers decide what a
//! 404 means.
//!
//! [`parse`] and [`ResponseBuffer`] do no I/O; [`read_response`] (tokio) and
//! [`read_response_blocking`] (std) are thin read loops around [`ResponseBuffer`].

use std::io::Read;
use std::ops::Range;

use tokio::io::{AsyncRead, AsyncReadExt};

/// A complete response, its body decoded as UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of header `name`, whatever the case of either.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How far the bytes received so far go towards a whole response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The response is the first `len` bytes; anything after them is not part of it.
    Complete { len: usize },
    /// At least `at_least` more bytes are needed (exactly that many for the rest of a
    /// `Content-Length` body).
    NeedMore { at_least: usize },
    /// No length was given: the body ends when the peer closes the connection.
    UntilClose,
}

/// Why bytes received are not a usable response.
#[derive(Debug, thiserror::Error)]
pub enum HttpReadError {
    #[error("the connection closed without any answer")]
    NoResponse,
    #[error("the answer is not HTTP/1.x: it starts with {0:?}")]
    NotHttp(String),
    #[error("malformed status line {0:?}")]
    BadStatusLine(String),
    #[error("malformed header line {0:?}")]
    BadHeader(String),
    #[error("Content-Length {0:?} is not one byte count")]
    BadContentLength(String),
    #[error("Transfer-Encoding {0:?} is not supported (only `chunked` is)")]
    UnsupportedTransferEncoding(String),
    #[error("chunk size line {line:?} is invalid: {why}")]
    BadChunkSize { line: String, why: &'static str },
    #[error("a chunk's data is not followed by CRLF: its size and its data disagree")]
    MissingChunkEnd,
    #[error("the connection closed {0}")]
    Truncated(&'static str),
    #[error("the answer is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body is not UTF-8 text (invalid bytes at offset {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("reading the answer failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads `raw` as a whole exchange: everything the peer sent before it closed the connection.
/// Bytes after a complete response are ignored.
pub fn parse(raw: &[u8]) -> Result<Response, HttpReadError> {
    let mut framing = Framing::default();
    framing.advance(raw)?;
    let body = match framing.stage {
        Stage::Done { .. } => {
            let mut body = Vec::new();
            for piece in &framing.body {
                body.extend_from_slice(raw.get(piece.clone()).unwrap_or_default());
            }
            body
        }
        Stage::UntilClose { start } => raw.get(start..).unwrap_or_default().to_vec(),
        Stage::Head if raw.is_empty() => return Err(HttpReadError::NoResponse),
        Stage::Head => return Err(HttpReadError::Truncated("before the end of the headers")),
        Stage::Sized { .. } | Stage::ChunkData { .. } => {
            return Err(HttpReadError::Truncated("in the middle of the body"))
        }
        Stage::ChunkSizeLine { .. } => {
            return Err(HttpReadError::Truncated("before the last chunk"))
        }
        Stage::TrailerLine { .. } => {
            return Err(HttpReadError::Truncated(
                "in the trailers after the last chunk",
            ))
        }
    };
    let Some(head) = framing.head else {
        return Err(HttpReadError::Truncated("before the end of the headers"));
    };
    let body = String::from_utf8(body).map_err(|e| HttpReadError::NotUtf8 {
        valid_up_to: e.utf8_error().valid_up_to(),
    })?;
    Ok(Response {
        status: head.status,
        reason: head.reason,
        headers: head.headers,
        body,
    })
}

/// One response's bytes as they arrive, so a reader knows when to stop without waiting for
/// the peer to close.
#[derive(Debug)]
pub struct ResponseBuffer {
    received: Vec<u8>,
    framing: Framing,
    max_bytes: usize,
}

impl ResponseBuffer {
    /// `max_bytes` bounds the whole response: status line, headers, framing and body.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            received: Vec::new(),
            framing: Framing::default(),
            max_bytes,
        }
    }

    /// Adds bytes as received. A response that cannot fit the cap is [`HttpReadError::TooLarge`]
    /// as soon as that is known, e.g. from its `Content-Length`, before its body arrives.
    /// Bytes pushed once the response is complete are ignored.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Progress, HttpReadError> {
        if let Stage::Done { len } = self.framing.stage {
            return Ok(Progress::Complete { len });
        }
        self.received.extend_from_slice(bytes);
        let progress = self.framing.advance(&self.received)?;
        let needed = match progress {
            Progress::Complete { len } => len,
            Progress::NeedMore { at_least } => self.received.len().saturating_add(at_least),
            Progress::UntilClose => self.received.len(),
        };
        if needed > self.max_bytes {
            return Err(HttpReadError::TooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(progress)
    }

    /// The response, once [`push`](Self::push) said it is complete or the peer closed the
    /// connection.
    pub fn finish(self) -> Result<Response, HttpReadError> {
        parse(&self.received)
    }
}

/// One read's worth: small enough for a stack buffer, large enough for a health document.
const READ_SIZE: usize = 8 * 1024;

/// Reads one response of at most `max_bytes`, stopping as soon as it is complete.
pub async fn read_response<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<Response, HttpReadError> {
    let mut buffer = ResponseBuffer::new(max_bytes);
    let mut chunk = [0u8; READ_SIZE];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 || matches!(buffer.push(&chunk[..n])?, Progress::Complete { .. }) {
            return buffer.finish();
        }
    }
}

/// [`read_response`] for a blocking reader; its own timeouts bound the wait.
pub fn read_response_blocking<R: Read>(
    reader: &mut R,
    max_bytes: usize,
) -> Result<Response, HttpReadError> {
    let mut buffer = ResponseBuffer::new(max_bytes);
    let mut chunk = [0u8; READ_SIZE];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 || matches!(buffer.push(&chunk[..n])?, Progress::Complete { .. }) {
            return buffer.finish();
        }
    }
}

/// Where the scan of a response stands. Positions are offsets into the bytes received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Head,
    Sized {
        start: usize,
        end: usize,
    },
    UntilClose {
        start: usize,
    },
    ChunkSizeLine {
        start: usize,
    },
    /// `end + 2` (the CRLF after the data) is known not to overflow.
    ChunkData {
        start: usize,
        end: usize,
    },
    TrailerLine {
        start: usize,
    },
    Done {
        len: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
}

/// A resumable scan over a growing buffer, so bytes that arrive one at a time do not make
/// each step re-read everything before them.
#[derive(Debug)]
struct Framing {
    stage: Stage,
    /// Bytes before this hold no match for the delimiter being looked for.
    searched_to: usize,
    head: Option<Head>,
    body: Vec<Range<usize>>,
}

impl Default for Framing {
    fn default() -> Self {
        Self {
            stage: Stage::Head,
            searched_to: 0,
            head: None,
            body: Vec::new(),
        }
    }
}

impl Framing {
    /// `raw` must be the bytes of the previous call with more appended.
    fn advance(&mut self, raw: &[u8]) -> Result<Progress, HttpReadError> {
        const NEED_ONE: Progress = Progress::NeedMore { at_least: 1 };
        loop {
            self.stage = match self.stage {
                Stage::Head => {
                    expect_http(raw)?;
                    let Some(end) = self.find(raw, 0, b"\r\n\r\n") else {
                        return Ok(NEED_ONE);
                    };
                    let head = parse_head(&raw[..end])?;
                    let next = body_stage(&head, end + 4)?;
                    self.head = Some(head);
                    next
                }
                Stage::Sized { start, end } => {
                    if raw.len() < end {
                        return Ok(Progress::NeedMore {
                            at_least: end - raw.len(),
                        });
                    }
                    self.body.push(start..end);
                    Stage::Done { len: end }
                }
                Stage::UntilClose { .. } => return Ok(Progress::UntilClose),
                Stage::ChunkSizeLine { start } => {
                    let Some(line_end) = self.find(raw, start, b"\r\n") else {
                        return Ok(NEED_ONE);
                    };
                    let line = &raw[start..line_end];
                    let size = chunk_size(line)?;
                    let data_start = line_end + 2;
                    if size == 0 {
                        Stage::TrailerLine { start: data_start }
                    } else {
                        let end = data_start
                            .checked_add(size)
                            .filter(|end| end.checked_add(2).is_some())
                            .ok_or_else(|| bad_chunk_size(line, "too large"))?;
                        Stage::ChunkData {
                            start: data_start,
                            end,
                        }
                    }
                }
                Stage::ChunkData { start, end } => {
                    let after = end + 2;
                    match raw.get(end..after) {
                        Some(b"\r\n") => {
                            self.body.push(start..end);
                            Stage::ChunkSizeLine { start: after }
                        }
                        Some(_) => return Err(HttpReadError::MissingChunkEnd),
                        None => {
                            // Said as soon as the first byte after the data is wrong: a peer
                            // that keeps the connection open must not make us wait for it.
                            let seen = raw.get(end..).unwrap_or_default();
                            if !b"\r\n".starts_with(seen) {
                                return Err(HttpReadError::MissingChunkEnd);
                            }
                            return Ok(Progress::NeedMore {
                                at_least: after - raw.len(),
                            });
                        }
                    }
                }
                Stage::TrailerLine { start } => {
                    let Some(line_end) = self.find(raw, start, b"\r\n") else {
                        return Ok(NEED_ONE);
                    };
                    // Trailers carry nothing a health check needs; the empty line ends them.
                    if line_end == start {
                        Stage::Done { len: line_end + 2 }
                    } else {
                        Stage::TrailerLine {
                            start: line_end + 2,
                        }
                    }
                }
                Stage::Done { len } => return Ok(Progress::Complete { len }),
            };
        }
    }

    /// Where `delimiter` starts at or after `from`, skipping what an earlier unsuccessful
    /// search already looked at.
    fn find(&mut self, raw: &[u8], from: usize, delimiter: &[u8]) -> Option<usize> {
        let resume = from.max(self.searched_to.saturating_sub(delimiter.len() - 1));
        match find(raw.get(resume..)?, delimiter) {
            Some(at) => {
                self.searched_to = resume + at + delimiter.len();
                Some(resume + at)
            }
            None => {
                self.searched_to = raw.len();
                None
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Fails as soon as the first bytes cannot begin a status line, so a program that speaks
/// another protocol and then waits is recognised without a timeout.
fn expect_http(raw: &[u8]) -> Result<(), HttpReadError> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let seen = &raw[..raw.len().min(PREFIX.len())];
    if PREFIX.starts_with(seen) {
        Ok(())
    } else {
        Err(HttpReadError::NotHttp(excerpt(raw)))
    }
}

fn parse_head(head: &[u8]) -> Result<Head, HttpReadError> {
    let mut lines = crlf_lines(head);
    let (status, reason) = parse_status_line(lines.next().unwrap_or_default())?;
    let headers = lines.map(parse_header).collect::<Result<_, _>>()?;
    Ok(Head {
        status,
        reason,
        headers,
    })
}

fn crlf_lines(mut bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match find(bytes, b"\r\n") {
            Some(at) => {
                let line = &bytes[..at];
                bytes = &bytes[at + 2..];
                Some(line)
            }
            None => {
                done = true;
                Some(bytes)
            }
        }
    })
}

fn parse_status_line(line: &[u8]) -> Result<(u16, String), HttpReadError> {
    let bad = || HttpReadError::BadStatusLine(excerpt(line));
    let [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor, b' ', hundreds, tens, units, rest @ ..] =
        line
    else {
        return Err(bad());
    };
    let reason = match rest {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return Err(bad()),
    };
    if !minor.is_ascii_digit()
        || !(b'1'..=b'9').contains(hundreds)
        || !tens.is_ascii_digit()
        || !units.is_ascii_digit()
        || !reason.iter().all(|&b| is_field_byte(b))
    {
        return Err(bad());
    }
    let status = [hundreds, tens, units]
        .iter()
        .fold(0u16, |n, &&digit| n * 10 + u16::from(digit - b'0'));
    Ok((status, String::from_utf8_lossy(reason).into_owned()))
}

fn parse_header(line: &[u8]) -> Result<(String, String), HttpReadError> {
    let bad = || HttpReadError::BadHeader(excerpt(line));
    let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // Also refuses folded continuation lines (they start with a space) and a space before
    // the colon, which proxies are known to read differently.
    if name.is_empty()
        || !name.iter().all(|&b| is_token_byte(b))
        || !value.iter().all(|&b| is_field_byte(b))
    {
        return Err(bad());
    }
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(trim_ows(value)).into_owned(),
    ))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Tab, printable ASCII and non-ASCII: control bytes would reach terminals in error messages.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

fn header_values<'h>(
    headers: &'h [(String, String)],
    name: &'static str,
) -> impl Iterator<Item = &'h str> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn body_stage(head: &Head, start: usize) -> Result<Stage, HttpReadError> {
    // These never carry a body, whatever their headers say (RFC 9112 §6.3).
    if matches!(head.status, 100..=199 | 204 | 304) {
        return Ok(Stage::Done { len: start });
    }
    let codings: Vec<&str> = header_values(&head.headers, "transfer-encoding").collect();
    if !codings.is_empty() {
        // Transfer-Encoding overrides Content-Length; we never ask for a coding but chunked.
        let codings = codings.join(", ");
        return if codings.eq_ignore_ascii_case("chunked") {
            Ok(Stage::ChunkSizeLine { start })
        } else {
            Err(HttpReadError::UnsupportedTransferEncoding(codings))
        };
    }
    let lengths: Vec<&str> = header_values(&head.headers, "content-length").collect();
    let Some(first) = lengths.first() else {
        return Ok(Stage::UntilClose { start });
    };
    let bad = || HttpReadError::BadContentLength(lengths.join(", "));
    if lengths.iter().any(|length| length != first) || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let end = first
        .parse::<usize>()
        .ok()
        .and_then(|length| start.checked_add(length))
        .ok_or_else(bad)?;
    Ok(Stage::Sized { start, end })
}

fn chunk_size(line: &[u8]) -> Result<usize, HttpReadError> {
    // Extensions (`;name=value`) carry nothing this reader needs.
    let size = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = trim_ows(size);
    if digits.is_empty() {
        return Err(bad_chunk_size(line, "no size"));
    }
    digits.iter().try_fold(0usize, |size, &b| {
        let digit = char::from(b)
            .to_digit(16)
            .ok_or_else(|| bad_chunk_size(line, "not hexadecimal"))?;
        size.checked_mul(16)
            .and_then(|size| size.checked_add(digit as usize))
            .ok_or_else(|| bad_chunk_size(line, "too large"))
    })
}

fn bad_chunk_size(line: &[u8], why: &'static str) -> HttpReadError {
    HttpReadError::BadChunkSize {
        line: excerpt(line),
        why,
    }
}

/// The start of the first line, for error messages.
fn excerpt(bytes: &[u8]) -> String {
    const SHOWN: usize = 80;
    let line = bytes
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    String::from_utf8_lossy(&line[..line.len().min(SHOWN)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OK_CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

    fn chunked(body: &str) -> Vec<u8> {
        format!("{OK_CHUNKED}{body}").into_bytes()
    }

    #[test]
    fn well_formed_answers_are_read() {
        let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
            (
                "read to close",
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"a\":1}".to_vec(),
                200,
                "{\"a\":1}",
            ),
            (
                "content-length, bytes after the body ignored",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200".to_vec(),
                200,
                "{}",
            ),
            (
                "header names in any case, padded values",
                b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: \t 3 \r\n\r\nabc".to_vec(),
                200,
                "abc",
            ),
            (
                "content-length zero",
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
                200,
                "",
            ),
            (
                "repeated equal content-length",
                b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nContent-Length: 1\r\n\r\nx".to_vec(),
                200,
                "x",
            ),
            (
                "chunked",
                chunked("7\r\n{\"a\":1}\r\n0\r\n\r\n"),
                200,
                "{\"a\":1}",
            ),
            (
                "chunked with extensions and trailers",
                chunked("3;name=value\r\nabc\r\n2 ; x ; y=\"q\"\r\nde\r\n0;last\r\nExpires: never\r\nX-A: b\r\n\r\n"),
                200,
                "abcde",
            ),
            (
                "chunk sizes in either case",
                chunked("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"),
                200,
                "01234567890123456789",
            ),
            (
                "chunked wins over content-length",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ntransfer-encoding: CHUNKED\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
                200,
                "ok",
            ),
            (
                "a character split across chunks",
                [
                    OK_CHUNKED.as_bytes(),
                    b"1\r\n\xc3\r\n2\r\n\xa9\xe6\r\n2\r\n\xbc\xa2\r\n0\r\n\r\n",
                ]
                .concat(),
                200,
                "é漢",
            ),
            (
                "a four-byte character split byte by byte",
                [
                    OK_CHUNKED.as_bytes(),
                    b"1\r\n\xf0\r\n1\r\n\x9f\r\n1\r\n\x8e\r\n1\r\n\x89\r\n0\r\n\r\n",
                ]
                .concat(),
                200,
                "🎉",
            ),
            (
                "status not 200 is a response, not an error",
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope".to_vec(),
                404,
                "nope",
            ),
            (
                "no reason phrase, HTTP/1.0",
                b"HTTP/1.0 503\r\n\r\n".to_vec(),
                503,
                "",
            ),
            (
                "204 has no body whatever its headers say",
                b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n".to_vec(),
                204,
                "",
            ),
        ];
        for (name, raw, status, body) in cases {
            let response = parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (response.status, response.body.as_str()),
                (status, body),
                "{name}"
            );
        }
    }

    #[test]
    fn headers_are_looked_up_in_any_case() {
        let response =
            parse(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Empty:\r\n\r\n").unwrap();
        assert_eq!(response.header("content-type"), Some("text/html"));
        assert_eq!(response.header("CONTENT-TYPE"), Some("text/html"));
        assert_eq!(response.header("x-empty"), Some(""));
        assert_eq!(response.header("x-missing"), None);
        assert_eq!(response.reason, "OK");
    }

    #[test]
    fn malformed_answers_are_errors_that_say_why() {
        type Expect = fn(&HttpReadError) -> bool;
        let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
            ("nothing", b"".to_vec(), |e| {
                matches!(e, HttpReadError::NoResponse)
            }),
            (
                "an SSH banner",
                b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
                |e| matches!(e, HttpReadError::NotHttp(s) if s == "SSH-2.0-OpenSSH_9.2"),
            ),
            (
                "binary garbage",
                b"\x00\xff\xfe\x16\x03\x01".to_vec(),
                |e| matches!(e, HttpReadError::NotHttp(_)),
            ),
            ("HTTP/2", b"HTTP/2 200\r\n\r\n".to_vec(), |e| {
                matches!(e, HttpReadError::NotHttp(_))
            }),
            (
                "a status code with letters",
                b"HTTP/1.1 2x0 OK\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadStatusLine(_)),
            ),
            (
                "a two-digit status",
                b"HTTP/1.1 20 OK\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadStatusLine(_)),
            ),
            (
                "a control byte in the reason",
                b"HTTP/1.1 200 O\x1bK\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadStatusLine(_)),
            ),
            (
                "LF-only line ends: the headers never end",
                b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}".to_vec(),
                |e| matches!(e, HttpReadError::Truncated(_)),
            ),
            (
                "a bare LF after the status line",
                b"HTTP/1.1 200 OK\nX: y\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadStatusLine(_)),
            ),
            (
                "a header without a colon",
                b"HTTP/1.1 200 OK\r\nnonsense\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadHeader(s) if s == "nonsense"),
            ),
            (
                "a folded header",
                b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadHeader(_)),
            ),
            (
                "a space before the colon",
                b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx".to_vec(),
                |e| matches!(e, HttpReadError::BadHeader(_)),
            ),
            (
                "a bare CR in a value",
                b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadHeader(_)),
            ),
            (
                "a content-length that is not a number",
                b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadContentLength(_)),
            ),
            (
                "content-lengths that disagree",
                b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxy".to_vec(),
                |e| matches!(e, HttpReadError::BadContentLength(s) if s == "1, 2"),
            ),
            (
                "a content-length beyond any size",
                b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::BadContentLength(_)),
            ),
            (
                "a body shorter than its content-length",
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort".to_vec(),
                |e| matches!(e, HttpReadError::Truncated(_)),
            ),
            (
                "a coding we never asked for",
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n".to_vec(),
                |e| matches!(e, HttpReadError::UnsupportedTransferEncoding(_)),
            ),
            (
                "a chunk size that is not hex",
                chunked("zz\r\nab\r\n0\r\n\r\n"),
                |e| {
                    matches!(
                        e,
                        HttpReadError::BadChunkSize {
                            why: "not hexadecimal",
                            ..
                        }
                    )
                },
            ),
            ("an empty chunk size", chunked("\r\nab\r\n0\r\n\r\n"), |e| {
                matches!(e, HttpReadError::BadChunkSize { why: "no size", .. })
            }),
            (
                "a negative chunk size",
                chunked("-1\r\nab\r\n0\r\n\r\n"),
                |e| matches!(e, HttpReadError::BadChunkSize { .. }),
            ),
            (
                "a chunk size that overflows",
                chunked("fffffffffffffffffffff\r\nab\r\n0\r\n\r\n"),
                |e| {
                    matches!(
                        e,
                        HttpReadError::BadChunkSize {
                            why: "too large",
                            ..
                        }
                    )
                },
            ),
            (
                "a chunk size whose end overflows",
                chunked("ffffffffffffffff\r\nab\r\n0\r\n\r\n"),
                |e| {
                    matches!(
                        e,
                        HttpReadError::BadChunkSize {
                            why: "too large",
                            ..
                        }
                    )
                },
            ),
            (
                "a chunk size beyond the data",
                chunked("10\r\nabc\r\n0\r\n\r\n"),
                |e| matches!(e, HttpReadError::Truncated(_)),
            ),
            (
                "chunk data longer than its size",
                chunked("2\r\nabc\r\n0\r\n\r\n"),
                |e| matches!(e, HttpReadError::MissingChunkEnd),
            ),
            (
                "no CRLF after chunk data",
                chunked("3\r\nabc0\r\n\r\n"),
                |e| matches!(e, HttpReadError::MissingChunkEnd),
            ),
            (
                "an LF-only chunk size line",
                chunked("3\nabc\r\n0\r\n\r\n"),
                |e| matches!(e, HttpReadError::BadChunkSize { .. }),
            ),
            ("no last chunk", chunked("3\r\nabc\r\n"), |e| {
                matches!(e, HttpReadError::Truncated("before the last chunk"))
            }),
            (
                "no empty line after the last chunk",
                chunked("3\r\nabc\r\n0\r\n"),
                |e| matches!(e, HttpReadError::Truncated(_)),
            ),
            (
                "a body that is not UTF-8",
                b"HTTP/1.1 200 OK\r\n\r\nok\xff".to_vec(),
                |e| matches!(e, HttpReadError::NotUtf8 { valid_up_to: 2 }),
            ),
            (
                "a character cut by the end of the body",
                [OK_CHUNKED.as_bytes(), b"1\r\n\xc3\r\n0\r\n\r\n"].concat(),
                |e| matches!(e, HttpReadError::NotUtf8 { valid_up_to: 0 }),
            ),
        ];
        for (name, raw, expect) in cases {
            match parse(&raw) {
                Ok(response) => panic!("{name}: parsed as {response:?}"),
                Err(e) => {
                    assert!(expect(&e), "{name}: unexpected {e:?}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn a_sized_answer_is_complete_without_waiting_for_close() {
        let mut buffer = ResponseBuffer::new(1024);
        assert_eq!(
            buffer
                .push(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n")
                .unwrap(),
            Progress::NeedMore { at_least: 1 }
        );
        assert_eq!(
            buffer.push(b"\r\nab").unwrap(),
            Progress::NeedMore { at_least: 3 }
        );
        let len = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde".len();
        assert_eq!(
            buffer.push(b"cde and more").unwrap(),
            Progress::Complete { len }
        );
        assert_eq!(buffer.push(b"ignored").unwrap(), Progress::Complete { len });
        assert_eq!(buffer.finish().unwrap().body, "abcde");
    }

    #[test]
    fn the_cap_is_enforced_as_soon_as_it_is_known_to_be_exceeded() {
        let mut buffer = ResponseBuffer::new(100);
        assert!(matches!(
            buffer.push(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n"),
            Err(HttpReadError::TooLarge { limit: 100 })
        ));

        let mut buffer = ResponseBuffer::new(100);
        assert!(matches!(
            buffer.push(&chunked("ffffffff\r\n")),
            Err(HttpReadError::TooLarge { .. })
        ));

        let mut buffer = ResponseBuffer::new(100);
        assert_eq!(
            buffer.push(b"HTTP/1.1 200 OK\r\n\r\n").unwrap(),
            Progress::UntilClose
        );
        assert!(matches!(
            buffer.push(&[b'x'; 100]),
            Err(HttpReadError::TooLarge { .. })
        ));

        // Headers that never end.
        let mut buffer = ResponseBuffer::new(100);
        assert!(buffer.push(b"HTTP/1.1 200 OK\r\n").is_ok());
        assert!(matches!(
            buffer.push(&[b'x'; 100]),
            Err(HttpReadError::TooLarge { .. })
        ));
    }

    #[test]
    fn an_answer_exactly_at_the_cap_is_accepted() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
        let mut buffer = ResponseBuffer::new(raw.len());
        assert_eq!(
            buffer.push(raw).unwrap(),
            Progress::Complete { len: raw.len() }
        );
        let mut buffer = ResponseBuffer::new(raw.len() - 1);
        assert!(matches!(
            buffer.push(raw),
            Err(HttpReadError::TooLarge { .. })
        ));
    }

    #[test]
    fn another_protocol_is_recognised_from_its_first_bytes() {
        let mut buffer = ResponseBuffer::new(1024);
        assert!(matches!(
            buffer.push(b"SSH-2"),
            Err(HttpReadError::NotHttp(_))
        ));
    }

    /// Hands out its bytes a few at a time, with interruptions, like a slow socket.
    struct Trickle<'a> {
        bytes: &'a [u8],
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = self.bytes.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_blocking_reader_reads_slow_sockets_and_keeps_to_the_cap() {
        let raw = chunked("5\r\nhéll\r\n1\r\no\r\n0\r\n\r\n");
        let mut slow = Trickle {
            bytes: &raw,
            interrupt: false,
        };
        assert_eq!(
            read_response_blocking(&mut slow, 1024).unwrap().body,
            "héllo"
        );
        let mut big = &[b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), &[b'x'; 50_000]].concat()[..];
        assert!(matches!(
            read_response_blocking(&mut big, 10_000),
            Err(HttpReadError::TooLarge { limit: 10_000 })
        ));
    }

    #[tokio::test]
    async fn the_async_reader_stops_at_the_end_of_a_sized_body() {
        use tokio::io::AsyncWriteExt;
        let (mut client, mut server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            server
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
            // Kept open: the reader must not wait for the close.
            server
        });
        let response = read_response(&mut client, 1024).await.unwrap();
        assert_eq!((response.status, response.body.as_str()), (200, "{}"));
        drop(writer.await.unwrap());

        let mut closed: &[u8] = b"HTTP/1.1 200 OK\r\n\r\nuntil close";
        assert_eq!(
            read_response(&mut closed, 1024).await.unwrap().body,
            "until close"
        );
    }

    /// `body` as a chunked response, cut at `cuts` (offsets into the body), each chunk with
    /// its extension (if any), sizes in upper or lower case, and optional trailers.
    fn chunk_body(
        body: &[u8],
        cuts: &[usize],
        extensions: &[String],
        upper: bool,
        trailers: &str,
    ) -> Vec<u8> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.push(0);
        cuts.push(body.len());
        cuts.sort_unstable();
        cuts.dedup();
        let mut raw = OK_CHUNKED.as_bytes().to_vec();
        for (i, piece) in cuts.windows(2).enumerate() {
            let data = &body[piece[0]..piece[1]];
            let size = if upper {
                format!("{:X}", data.len())
            } else {
                format!("{:x}", data.len())
            };
            let extension = extensions
                .get(i % extensions.len().max(1))
                .map_or("", String::as_str);
            raw.extend_from_slice(format!("{size}{extension}\r\n").as_bytes());
            raw.extend_from_slice(data);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(format!("0\r\n{trailers}\r\n").as_bytes());
        raw
    }

    fn any_body() -> impl Strategy<Value = String> {
        let json = proptest::collection::btree_map("\\PC{0,8}", "\\PC{0,24}", 0..8)
            .prop_map(|map| serde_json::to_string(&map).unwrap_or_default());
        prop_oneof![json, any::<String>(), "[aé漢🎉\\n ]{0,64}"]
    }

    fn any_extensions() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec("(;[a-z]{1,6}(=[a-z0-9\"]{0,6})?){0,2}", 0..4)
    }

    fn any_trailers() -> impl Strategy<Value = String> {
        "([A-Z][a-z-]{0,8}: [a-z0-9 ]{0,10}\r\n){0,2}"
    }

    /// Feeds `raw` to a buffer in pieces cut at `cuts`; the last progress reported.
    fn push_in_pieces(
        buffer: &mut ResponseBuffer,
        raw: &[u8],
        cuts: &[usize],
    ) -> Result<Progress, HttpReadError> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (raw.len() + 1)).collect();
        cuts.push(raw.len());
        cuts.sort_unstable();
        let mut from = 0;
        let mut progress = Progress::NeedMore { at_least: 1 };
        for cut in cuts {
            progress = buffer.push(&raw[from..cut])?;
            from = cut;
        }
        Ok(progress)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(384))]

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let _ = parse(&bytes);
            let mut buffer = ResponseBuffer::new(256);
            let _ = push_in_pieces(&mut buffer, &bytes, &cuts);
            let _ = buffer.finish();
        }

        #[test]
        fn arbitrary_bodies_after_a_real_head_never_panic(
            head in prop_oneof![
                Just(OK_CHUNKED.to_string()),
                Just("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n".to_string()),
                Just("HTTP/1.1 200 OK\r\n\r\n".to_string()),
            ],
            tail in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'\r'), Just(b'\n'), Just(b';'), Just(b'0'), Just(b'f')],
                0..256,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let raw = [head.as_bytes(), &tail].concat();
            let _ = parse(&raw);
            let mut buffer = ResponseBuffer::new(200);
            let _ = push_in_pieces(&mut buffer, &raw, &cuts);
            let _ = buffer.finish();
        }

        #[test]
        fn chunked_bodies_round_trip_whatever_the_chunking(
            body in any_body(),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
            extensions in any_extensions(),
            upper in any::<bool>(),
            trailers in any_trailers(),
            push_cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let raw = chunk_body(body.as_bytes(), &cuts, &extensions, upper, &trailers);
            let response = parse(&raw).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&response.body, &body);

            let mut buffer = ResponseBuffer::new(raw.len());
            let progress = push_in_pieces(&mut buffer, &raw, &push_cuts)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(progress, Progress::Complete { len: raw.len() });
            prop_assert_eq!(buffer.finish().map_err(|e| TestCaseError::fail(e.to_string()))?, response);
        }

        #[test]
        fn prefixes_of_a_response_are_incomplete_and_never_overestimated(
            body in any_body(),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
            extensions in any_extensions(),
            sized in any::<bool>(),
            prefix in any::<usize>(),
        ) {
            let raw = if sized {
                [format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes(), body.as_bytes()].concat()
            } else {
                chunk_body(body.as_bytes(), &cuts, &extensions, false, "")
            };
            let prefix = &raw[..prefix % raw.len()];
            prop_assert!(parse(prefix).is_err());
            let mut buffer = ResponseBuffer::new(raw.len());
            match buffer.push(prefix) {
                Ok(Progress::NeedMore { at_least }) => {
                    prop_assert!(at_least >= 1);
                    prop_assert!(prefix.len() + at_least <= raw.len());
                }
                other => prop_assert!(false, "prefix of {} bytes: {:?}", prefix.len(), other),
            }
        }
    }
}
