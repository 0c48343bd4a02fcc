//! Server-sent events, as the owner's `/mcp` streams them to an attached relay: bytes fed in
//! whatever chunks the network delivers, the `data` of each complete event out.
//!
//! It owns line splitting (`\n` or `\r\n`), `data:` fields (one or several lines), comments
//! and the cap on one event's size. It must not interpret the data (the relay parses it as
//! JSON-RPC) and ignores the other fields (`event`, `id`, `retry`): the relay needs none.

/// Largest event kept; beyond it the event is dropped, so a runaway stream cannot grow the
/// buffer without bound.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Events reassembled from a byte stream fed in arbitrary chunks.
pub struct SseParser {
    /// The line being received. Raw bytes: a character split across chunks is decoded only
    /// once its line is whole.
    line: Vec<u8>,
    /// The `data` lines of the event being received, each followed by `\n`.
    data: String,
    /// The event outgrew the cap: its lines are skipped up to the blank line that ends it.
    /// Meanwhile `line` keeps at most the first two bytes of each line, enough to tell a
    /// blank one (`""` or `"\r"`).
    skipping: bool,
    max_event_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self {
            line: Vec::new(),
            data: String::new(),
            skipping: false,
            max_event_bytes: MAX_EVENT_BYTES,
        }
    }
}

impl SseParser {
    /// The data of every event that `chunk` completes, in order. Only `chunk` is scanned, so
    /// a long event fed in many pieces costs time linear in its size.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut events = Vec::new();
        let mut rest = chunk;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.take(&rest[..newline]);
            let line = std::mem::take(&mut self.line);
            self.end_line(&line, &mut events);
            rest = &rest[newline + 1..];
        }
        self.take(rest);
        events
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.skipping {
            let room = 2usize.saturating_sub(self.line.len());
            self.line.extend(bytes.iter().take(room));
            return;
        }
        self.line.extend_from_slice(bytes);
        self.check_size();
    }

    fn end_line(&mut self, line: &[u8], events: &mut Vec<String>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.skipping {
            self.skipping = !line.is_empty();
            return;
        }
        if line.is_empty() {
            let mut data = std::mem::take(&mut self.data);
            if data.ends_with('\n') {
                data.pop();
            }
            // An event without data (a priming event, `data:` alone) has nothing to relay.
            if !data.is_empty() {
                events.push(data);
            }
            return;
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        if field == "data" {
            self.data.push_str(value);
            self.data.push('\n');
            self.check_size();
        }
    }

    fn check_size(&mut self) {
        if self.line.len() + self.data.len() <= self.max_event_bytes {
            return;
        }
        tracing::warn!(
            limit = self.max_event_bytes,
            "an event from the owner's stream is too large; it is dropped"
        );
        self.data.clear();
        self.line.truncate(2);
        self.line.shrink_to_fit();
        self.data.shrink_to_fit();
        self.skipping = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sse_events_are_reassembled_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b"id: 1\ndata: {\"a\"").is_empty());
        assert_eq!(p.feed(b":1}\n\ndata:\n\n"), vec!["{\"a\":1}".to_string()]);
        assert_eq!(
            p.feed(b"event: message\r\ndata: x\r\ndata: y\r\n\r\n"),
            vec!["x\ny".to_string()]
        );
    }

    #[test]
    fn fields_comments_and_spacing_follow_the_format() {
        let mut p = SseParser::default();
        assert_eq!(
            p.feed(b": keep-alive\ndata:tight\ndata:  two spaces\nretry: 10\ndata\n\n"),
            vec!["tight\n two spaces\n".to_string()]
        );
        assert!(p.feed(b"event: ping\nid: 7\n\n").is_empty());
    }

    #[test]
    fn a_character_split_across_two_feeds_is_intact() {
        let mut p = SseParser::default();
        let text = "data: é漢🎉\n\n".as_bytes();
        for split in 0..text.len() {
            let mut events = p.feed(&text[..split]);
            events.extend(p.feed(&text[split..]));
            assert_eq!(events, vec!["é漢🎉".to_string()], "split at {split}");
        }
    }

    #[test]
    fn invalid_bytes_alone_are_replaced() {
        let mut p = SseParser::default();
        assert_eq!(p.feed(b"data: a\xffb\n\n"), vec!["a\u{fffd}b".to_string()]);
    }

    #[test]
    fn an_event_fed_one_byte_at_a_time_is_whole() {
        let mut p = SseParser::default();
        let stream = "data: {\"jsonrpc\":\"2.0\",\"result\":\"ok ✓\"}\r\ndata: second\r\n\r\n";
        let mut events = Vec::new();
        for byte in stream.as_bytes() {
            events.extend(p.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(
            events,
            vec!["{\"jsonrpc\":\"2.0\",\"result\":\"ok ✓\"}\nsecond".to_string()]
        );
    }

    #[test]
    fn an_oversized_event_is_dropped_and_the_next_one_read() {
        let mut p = SseParser {
            max_event_bytes: 16,
            ..SseParser::default()
        };
        assert!(p.feed(b"data: 0123456789\ndata: 0123456789\n").is_empty());
        assert!(p.feed(b"data: more of the same\n").is_empty());
        assert_eq!(p.feed(b"\ndata: next\n\n"), vec!["next".to_string()]);

        // Cut off in the middle of a line that never ends before the cap.
        assert!(p.feed(&[b'x'; 40]).is_empty());
        assert!(p.feed(b"\n").is_empty());
        assert!(p.feed(b"data: still skipped\n").is_empty());
        assert_eq!(p.feed(b"\r\ndata: ok\n\n"), vec!["ok".to_string()]);

        // Cut off by the cap at the very end of a line: that line, empty as far as the
        // buffer holds, is not taken for the blank one that ends the event.
        let mut p = SseParser {
            max_event_bytes: 8,
            ..SseParser::default()
        };
        assert!(p.feed(b"data: 123").is_empty());
        assert!(p.feed(b"\ndata: y\n").is_empty());
        assert_eq!(p.feed(b"\ndata: z\n\n"), vec!["z".to_string()]);
    }

    /// A stream and the events it carries, built line by line.
    fn any_stream() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
        // (line as sent, the data it adds if any)
        let line = prop_oneof![
            "\\PC{0,24}".prop_map(|text| (format!("data: {text}"), Some(text))),
            "\\PC{0,24}".prop_map(|text| {
                // Without a space after the colon, a space that starts the text is the one
                // the format strips.
                let data = text.strip_prefix(' ').unwrap_or(&text).to_string();
                (format!("data:{text}"), Some(data))
            }),
            "[a-z]{0,6}".prop_map(|text| (format!(": {text}"), None)),
            "[0-9]{1,3}".prop_map(|id| (format!("id: {id}"), None)),
            Just((String::new(), None)),
        ];
        proptest::collection::vec((line, any::<bool>()), 0..24).prop_map(|lines| {
            let mut stream = String::new();
            let mut events = Vec::new();
            let mut data: Vec<String> = Vec::new();
            for ((line, adds), crlf) in lines {
                stream.push_str(&line);
                stream.push_str(if crlf { "\r\n" } else { "\n" });
                match adds {
                    Some(text) => data.push(text),
                    None if line.is_empty() => {
                        let event = data.join("\n");
                        data.clear();
                        if !event.is_empty() {
                            events.push(event);
                        }
                    }
                    None => {}
                }
            }
            (stream.into_bytes(), events)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(384))]

        #[test]
        fn split_points_do_not_change_the_events(
            (stream, expected) in any_stream(),
            cuts in proptest::collection::vec(any::<usize>(), 0..16),
        ) {
            let whole = SseParser::default().feed(&stream);
            prop_assert_eq!(&whole, &expected);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut parser = SseParser::default();
            let mut pieces = Vec::new();
            let mut from = 0;
            for cut in cuts {
                pieces.extend(parser.feed(&stream[from..cut]));
                from = cut;
            }
            prop_assert_eq!(pieces, whole);
        }
    }
}
