//! Streaming scanner over a Chrome-trace JSON document.
//!
//! Traces reach hundreds of MB, so the document is never materialised: the scanner walks
//! the top-level structure byte by byte, hands out one `traceEvents` element at a time as
//! a byte slice (parsed by the caller with serde_json), and keeps a few small top-level
//! values (`distributedInfo`, `deviceProperties`) whole. Every error carries the byte
//! offset into the (decompressed) JSON text.

use std::io::BufRead;

use super::simd::block_masks;

/// What went wrong while scanning, and where.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScanError {
    /// The input ended before the JSON document was complete.
    #[error("trace is truncated: input ended at byte {offset} while reading {context}")]
    Truncated { offset: u64, context: &'static str },
    /// A byte that the Chrome-trace shape does not allow at this place.
    #[error("malformed trace JSON at byte {offset}: expected {expected}, found {found:?}")]
    Unexpected {
        offset: u64,
        expected: &'static str,
        found: char,
    },
    /// The document has no `traceEvents` array.
    #[error("no `traceEvents` array found (read {offset} bytes)")]
    NoEvents { offset: u64 },
    /// The underlying reader failed.
    #[error("read error at byte {offset}: {message}")]
    Io { offset: u64, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// Inside the top-level object, before a key (or its closing brace).
    Keys,
    /// Inside the events array, before the first element.
    EventsFirst,
    /// Inside the events array, after an element.
    EventsNext,
    /// Top-level was a bare array; after the array the document ends.
    Done,
}

/// Top-level values kept whole because they are small and useful (rank, GPU).
#[derive(Debug, Default, Clone)]
pub struct TopLevel {
    /// Raw JSON of `distributedInfo`, when present.
    pub distributed_info: Option<Vec<u8>>,
    /// Raw JSON of `deviceProperties`, when present.
    pub device_properties: Option<Vec<u8>>,
}

/// Yields the elements of `traceEvents` one at a time.
pub struct EventScanner<R: BufRead> {
    reader: R,
    offset: u64,
    state: State,
    bare_array: bool,
    saw_events: bool,
    buf: Vec<u8>,
    top: TopLevel,
}

const KEPT_KEYS: [&[u8]; 2] = [b"distributedInfo", b"deviceProperties"];

impl<R: BufRead> EventScanner<R> {
    /// Wraps a reader positioned at the start of the JSON text.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            offset: 0,
            state: State::Start,
            bare_array: false,
            saw_events: false,
            buf: Vec::with_capacity(4096),
            top: TopLevel::default(),
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The kept top-level values seen so far (complete once `next_event` returned `None`).
    pub fn top_level(&self) -> &TopLevel {
        &self.top
    }

    /// The next event as raw JSON bytes with its starting byte offset, or `None` at the end.
    pub fn next_event(&mut self) -> Result<Option<(u64, &[u8])>, ScanError> {
        loop {
            match self.state {
                State::Start => {
                    let b = self.next_non_ws("the start of the trace")?;
                    match b {
                        b'{' => self.state = State::Keys,
                        b'[' => {
                            self.bare_array = true;
                            self.saw_events = true;
                            self.state = State::EventsFirst;
                        }
                        other => return Err(self.unexpected("`{` or `[`", other)),
                    }
                }
                State::Keys => {
                    let b = self.next_non_ws("a top-level key")?;
                    match b {
                        b'}' => {
                            self.state = State::Done;
                            self.expect_end()?;
                        }
                        b',' => {}
                        b'"' => {
                            let key = self.read_string_raw("a top-level key")?;
                            let colon = self.next_non_ws("`:` after a key")?;
                            if colon != b':' {
                                return Err(self.unexpected("`:`", colon));
                            }
                            if key == b"traceEvents" {
                                let open = self.next_non_ws("the traceEvents array")?;
                                if open != b'[' {
                                    return Err(self.unexpected("`[` for traceEvents", open));
                                }
                                self.saw_events = true;
                                self.state = State::EventsFirst;
                            } else if KEPT_KEYS.contains(&key.as_slice()) {
                                let mut value = Vec::new();
                                self.read_value(Some(&mut value))?;
                                if key == b"distributedInfo" {
                                    self.top.distributed_info = Some(value);
                                } else {
                                    self.top.device_properties = Some(value);
                                }
                            } else {
                                self.read_value(None)?;
                            }
                        }
                        other => return Err(self.unexpected("a key or `}`", other)),
                    }
                }
                State::EventsFirst | State::EventsNext => {
                    let b = self.next_non_ws("the traceEvents array")?;
                    match b {
                        b']' => {
                            if self.bare_array {
                                self.state = State::Done;
                                self.expect_end()?;
                            } else {
                                self.state = State::Keys;
                            }
                        }
                        b',' if self.state == State::EventsNext => {
                            let b = self.next_non_ws("an event")?;
                            if b != b'{' {
                                return Err(self.unexpected("`{` starting an event", b));
                            }
                            return self.yield_object();
                        }
                        b'{' if self.state == State::EventsFirst => return self.yield_object(),
                        other => return Err(self.unexpected("an event, `,` or `]`", other)),
                    }
                }
                State::Done => {
                    if !self.saw_events {
                        return Err(ScanError::NoEvents {
                            offset: self.offset,
                        });
                    }
                    return Ok(None);
                }
            }
        }
    }

    fn yield_object(&mut self) -> Result<Option<(u64, &[u8])>, ScanError> {
        let start = self.offset - 1;
        self.buf.clear();
        self.buf.push(b'{');
        self.copy_container_rest(b'{', b'}', "an event object")?;
        self.state = State::EventsNext;
        Ok(Some((start, &self.buf)))
    }

    /// Copies the rest of an object or array (the opening byte already consumed) into
    /// `self.buf`, tracking strings and nesting of `open`/`close` only.
    fn copy_container_rest(
        &mut self,
        open: u8,
        close: u8,
        context: &'static str,
    ) -> Result<(), ScanError> {
        let mut depth: u32 = 1;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) => {
                    return Err(ScanError::Io {
                        offset: self.offset,
                        message: e.to_string(),
                    })
                }
            };
            if chunk.is_empty() {
                return Err(ScanError::Truncated {
                    offset: self.offset,
                    context,
                });
            }
            let mut i = 0;
            let mut done_at = None;
            'chunk: while i < chunk.len() {
                // 64 bytes at a time while there is no escape to follow: quotes, opening
                // and closing bytes as bit masks, strings masked out by the running parity
                // of quotes, then only the structural bytes are visited.
                let end = match chunk.get(i..i + 64) {
                    Some(window) if !escaped => {
                        let block: &[u8; 64] = window.try_into().unwrap_or(&[0; 64]);
                        let [quotes, backslashes, opens, closes] =
                            block_masks(block, [b'"', b'\\', open, close]);
                        if backslashes == 0 {
                            let carry = if in_string { u64::MAX } else { 0 };
                            let inside = prefix_xor(quotes) ^ carry;
                            let mut structural = (opens | closes) & !inside;
                            while structural != 0 {
                                let p = structural.trailing_zeros() as usize;
                                structural &= structural - 1;
                                if opens >> p & 1 == 1 {
                                    depth += 1;
                                } else {
                                    depth -= 1;
                                    if depth == 0 {
                                        done_at = Some(i + p + 1);
                                        break 'chunk;
                                    }
                                }
                            }
                            in_string = inside >> 63 == 1;
                            i += 64;
                            continue;
                        }
                        i + 64
                    }
                    _ => (i + 64).min(chunk.len()),
                };
                // Byte by byte where escapes are (or at the end of the buffer).
                while i < end {
                    let c = chunk[i];
                    if escaped {
                        escaped = false;
                    } else if in_string {
                        if c == b'\\' {
                            escaped = true;
                        } else if c == b'"' {
                            in_string = false;
                        }
                    } else if c == b'"' {
                        in_string = true;
                    } else if c == open {
                        depth += 1;
                    } else if c == close {
                        depth -= 1;
                        if depth == 0 {
                            done_at = Some(i + 1);
                            break 'chunk;
                        }
                    }
                    i += 1;
                }
            }
            let take = done_at.unwrap_or(chunk.len());
            self.buf.extend_from_slice(&chunk[..take]);
            self.reader.consume(take);
            self.offset += take as u64;
            if done_at.is_some() {
                return Ok(());
            }
        }
    }

    /// Reads (and optionally keeps) one JSON value of any kind.
    fn read_value(&mut self, keep: Option<&mut Vec<u8>>) -> Result<(), ScanError> {
        let first = self.next_non_ws("a value")?;
        match first {
            b'{' | b'[' => {
                let close = if first == b'{' { b'}' } else { b']' };
                let saved = std::mem::take(&mut self.buf);
                self.buf.push(first);
                let result = self.copy_container_rest(first, close, "a top-level value");
                let value = std::mem::replace(&mut self.buf, saved);
                result?;
                if let Some(k) = keep {
                    *k = value;
                }
                Ok(())
            }
            b'"' => {
                let s = self.read_string_raw("a string value")?;
                if let Some(k) = keep {
                    k.push(b'"');
                    k.extend_from_slice(&s);
                    k.push(b'"');
                }
                Ok(())
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                let mut out = vec![first];
                loop {
                    match self.peek("a scalar value")? {
                        Some(b)
                            if b == b',' || b == b'}' || b == b']' || b.is_ascii_whitespace() =>
                        {
                            break
                        }
                        Some(b) => {
                            out.push(b);
                            self.advance(1);
                        }
                        None => {
                            return Err(ScanError::Truncated {
                                offset: self.offset,
                                context: "a scalar value",
                            })
                        }
                    }
                }
                if let Some(k) = keep {
                    *k = out;
                }
                Ok(())
            }
            other => Err(self.unexpected("a JSON value", other)),
        }
    }

    /// Reads a string body (opening quote consumed) without unescaping.
    fn read_string_raw(&mut self, context: &'static str) -> Result<Vec<u8>, ScanError> {
        let mut out = Vec::new();
        let mut escaped = false;
        loop {
            let b = self.next_byte(context)?;
            if escaped {
                escaped = false;
                out.push(b);
            } else if b == b'\\' {
                escaped = true;
                out.push(b);
            } else if b == b'"' {
                return Ok(out);
            } else {
                out.push(b);
            }
        }
    }

    fn expect_end(&mut self) -> Result<(), ScanError> {
        loop {
            match self.peek("the end of the trace")? {
                None => return Ok(()),
                Some(b) if b.is_ascii_whitespace() || b == 0 => self.advance(1),
                Some(b) => return Err(self.unexpected("the end of the document", b)),
            }
        }
    }

    fn peek(&mut self, _context: &'static str) -> Result<Option<u8>, ScanError> {
        match self.reader.fill_buf() {
            Ok(c) => Ok(c.first().copied()),
            Err(e) => Err(ScanError::Io {
                offset: self.offset,
                message: e.to_string(),
            }),
        }
    }

    fn advance(&mut self, n: usize) {
        self.reader.consume(n);
        self.offset += n as u64;
    }

    fn next_byte(&mut self, context: &'static str) -> Result<u8, ScanError> {
        match self.peek(context)? {
            Some(b) => {
                self.advance(1);
                Ok(b)
            }
            None => Err(ScanError::Truncated {
                offset: self.offset,
                context,
            }),
        }
    }

    fn next_non_ws(&mut self, context: &'static str) -> Result<u8, ScanError> {
        loop {
            let b = self.next_byte(context)?;
            if !b.is_ascii_whitespace() {
                return Ok(b);
            }
        }
    }

    fn unexpected(&self, expected: &'static str, found: u8) -> ScanError {
        ScanError::Unexpected {
            offset: self.offset.saturating_sub(1),
            expected,
            found: found as char,
        }
    }
}

/// Bit `i` of the result is the parity of the set bits `0..=i` of `x`: with `x` the
/// quotes of a block, the bytes inside strings (opening quote included).
fn prefix_xor(mut x: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        x ^= x << shift;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Result<Vec<String>, ScanError> {
        let mut s = EventScanner::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some((_, ev)) = s.next_event()? {
            out.push(String::from_utf8_lossy(ev).into_owned());
        }
        Ok(out)
    }

    /// Hands out its bytes in chunks of a fixed size (events then straddle buffer ends).
    struct Chunked<'a> {
        data: &'a [u8],
        at: usize,
        size: usize,
    }

    impl std::io::Read for Chunked<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.size.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn event_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        // Strings without escapes take the 64-byte block path, those with escapes the
        // byte-by-byte one.
        let text = || {
            prop_oneof![
                proptest::string::string_regex(r#"[a-z{}\[\] ,:é]{0,120}"#).unwrap(),
                proptest::string::string_regex(r#"[a-z{}\[\]"\\ ,:é\n]{0,90}"#).unwrap(),
            ]
        };
        let leaf = prop_oneof![
            text().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ];
        let value = leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z{\"}]{1,8}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        proptest::collection::btree_map(text(), value, 0..6)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()))
    }

    proptest::proptest! {
        /// Events with braces, brackets, quotes and backslashes inside strings, at any
        /// position relative to 64-byte blocks and read buffers, come out whole.
        #[test]
        fn events_come_out_whole(
            events in proptest::collection::vec(event_value(), 0..12),
            pad in 0usize..70,
            chunk in 1usize..300,
        ) {
            let mut text = format!("{{\"pad\": \"{}\", \"traceEvents\": [", "x".repeat(pad));
            for (i, e) in events.iter().enumerate() {
                if i > 0 {
                    text.push_str(if i % 2 == 0 { ",\n  " } else { "," });
                }
                text.push_str(&e.to_string());
            }
            text.push_str("]}");
            let reader = std::io::BufReader::with_capacity(
                chunk.max(8),
                Chunked { data: text.as_bytes(), at: 0, size: chunk },
            );
            let mut s = EventScanner::new(reader);
            let mut out = Vec::new();
            while let Some((offset, ev)) = s.next_event().unwrap() {
                proptest::prop_assert_eq!(text.as_bytes()[offset as usize], b'{');
                out.push(serde_json::from_slice::<serde_json::Value>(ev).unwrap());
            }
            proptest::prop_assert_eq!(out, events);
        }
    }

    #[test]
    fn prefix_xor_marks_string_bytes() {
        // `a"b{c"d`: quote at 1 and 5; bytes 1..5 are inside the string.
        assert_eq!(prefix_xor(0b10_0010), 0b01_1110);
        let block = *b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc{\"}";
        let [q, b, o, c] = block_masks(&block, [b'"', b'\\', b'{', b'}']);
        assert_eq!((q, b, o, c), (1 << 62, 0, 1 << 61, 1 << 63));
    }

    #[test]
    fn object_with_events_and_other_keys() {
        let t = r#"{"a": [1, {"x": "}"}], "distributedInfo": {"rank": 1},
            "traceEvents": [{"name": "k}{\"", "args": {"n": [1,2]}}, {"ph":"X"}], "z": "q"}"#;
        let evs = collect(t).unwrap();
        assert_eq!(
            evs,
            vec![
                r#"{"name": "k}{\"", "args": {"n": [1,2]}}"#,
                r#"{"ph":"X"}"#
            ]
        );
    }

    #[test]
    fn bare_array_and_empty() {
        assert_eq!(collect(r#"[{"a":1} , {"b":2}]"#).unwrap().len(), 2);
        assert_eq!(collect("[]").unwrap().len(), 0);
        assert_eq!(collect(r#"{"traceEvents": []}"#).unwrap().len(), 0);
    }

    #[test]
    fn keeps_small_top_level_values() {
        let t = r#"{"distributedInfo": {"rank": 3}, "traceEvents": []}"#;
        let mut s = EventScanner::new(t.as_bytes());
        while s.next_event().unwrap().is_some() {}
        assert_eq!(
            s.top_level().distributed_info.as_deref(),
            Some(&br#"{"rank": 3}"#[..])
        );
    }

    #[test]
    fn truncation_reports_offset() {
        let t = r#"{"traceEvents": [{"a": 1}, {"b": "#;
        let err = collect(t).unwrap_err();
        assert_eq!(
            err,
            ScanError::Truncated {
                offset: t.len() as u64,
                context: "an event object"
            }
        );
        assert!(matches!(
            collect(r#"{"traceEvents": [{"a": 1}"#),
            Err(ScanError::Truncated { .. })
        ));
    }

    #[test]
    fn malformed_reports_offset() {
        let err = collect(r#"{"traceEvents": [{"a": 1} x]}"#).unwrap_err();
        assert!(
            matches!(
                err,
                ScanError::Unexpected {
                    offset: 26,
                    found: 'x',
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(matches!(
            collect(r#"{"other": 1}"#),
            Err(ScanError::NoEvents { .. })
        ));
        assert!(matches!(
            collect("nope"),
            Err(ScanError::Unexpected { offset: 0, .. })
        ));
    }
}
