//! Tolerant reading of benchmark clients' JSON output.
//!
//! Python's `json` writes `Infinity`, `-Infinity` and `NaN` as bare tokens, which RFC 8259
//! and `serde_json` reject. They are rewritten (outside strings only) to the strings
//! `"inf"`, `"-inf"` and `"nan"`, which the row mapper understands. The text may hold one
//! object (pretty-printed or not), one object per line (`--append-result`, SGLang's
//! `--output-file`), objects appended without a newline, or an array of objects.

use super::{ParseError, ParseErrorKind};
use serde_json::{Map, Value};

/// Rewrites bare non-finite tokens outside strings to quoted strings.
pub fn quote_non_finite(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    let mut copied_to = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        let replacement = [
            ("-Infinity", "\"-inf\""),
            ("Infinity", "\"inf\""),
            ("NaN", "\"nan\""),
        ]
        .into_iter()
        .find(|(tok, _)| {
            rest.starts_with(tok.as_bytes())
                && !ident_char_before(bytes, i)
                && !ident_char_at(bytes, i + tok.len())
        });
        if let Some((tok, rep)) = replacement {
            out.push_str(&text[copied_to..i]);
            out.push_str(rep);
            i += tok.len();
            copied_to = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied_to..]);
    out
}

fn ident_char_at(bytes: &[u8], i: usize) -> bool {
    bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

fn ident_char_before(bytes: &[u8], i: usize) -> bool {
    i > 0 && ident_char_at(bytes, i - 1)
}

/// 1-based lines of increasing byte offsets, counting each newline once (records are
/// visited in order, so counting from the start for each would be quadratic).
struct LineCounter<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            bytes: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line of `offset` (not before the previous offset asked for).
    fn line_of(&mut self, offset: usize) -> usize {
        let to = offset.min(self.bytes.len()).max(self.at);
        self.line += memchr::memchr_iter(b'\n', &self.bytes[self.at..to]).count();
        self.at = to;
        self.line
    }
}

/// A result object and the 1-based line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub line: usize,
    pub object: Map<String, Value>,
}

fn push_value(out: &mut Vec<Record>, value: Value, line: usize) -> Result<(), ParseError> {
    match value {
        Value::Object(map) => {
            out.push(Record { line, object: map });
            Ok(())
        }
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(map) => out.push(Record { line, object: map }),
                    other => {
                        return Err(ParseError::new(
                            ParseErrorKind::NotAnObject,
                            format!(
                                "array item {} is {}, expected a result object",
                                i + 1,
                                kind_name(&other)
                            ),
                        )
                        .at_line(line))
                    }
                }
            }
            Ok(())
        }
        other => Err(ParseError::new(
            ParseErrorKind::NotAnObject,
            format!("found {}, expected a result object", kind_name(&other)),
        )
        .at_line(line)),
    }
}

/// Short name of a JSON value's type, for error messages.
pub fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a stream of JSON values (whitespace-separated, any layout).
pub fn read_stream(text: &str) -> Result<Vec<Record>, ParseError> {
    let clean = quote_non_finite(text);
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(&clean).into_iter::<Value>();
    let mut lines = LineCounter::new(&clean);
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                // Skip leading whitespace to report the line the object starts on.
                let skipped = clean
                    .get(start..)
                    .map(|s| s.len() - s.trim_start().len())
                    .unwrap_or(0);
                push_value(&mut out, value, lines.line_of(start + skipped))?;
            }
            Some(Err(e)) => {
                return Err(ParseError::new(ParseErrorKind::InvalidJson, e.to_string())
                    .at_record(out.len() + 1)
                    .at_line(e.line())
                    .at_column(e.column()))
            }
        }
    }
    Ok(out)
}

/// Reads one JSON value per non-blank line; errors carry the exact line.
pub fn read_lines(text: &str) -> Result<Vec<Record>, ParseError> {
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let clean = quote_non_finite(line);
        let value: Value = serde_json::from_str(&clean).map_err(|e| {
            ParseError::new(ParseErrorKind::InvalidJson, e.to_string())
                .at_record(out.len() + 1)
                .at_line(idx + 1)
                .at_column(e.column())
        })?;
        push_value(&mut out, value, idx + 1)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_tokens_are_quoted_outside_strings_only() {
        let t = r#"{"request_rate": Infinity, "x": -Infinity, "y": NaN, "s": "NaN Infinity", "InfinityKey": 1}"#;
        let out = quote_non_finite(t);
        assert_eq!(
            out,
            r#"{"request_rate": "inf", "x": "-inf", "y": "nan", "s": "NaN Infinity", "InfinityKey": 1}"#
        );
        let escaped = r#"{"s": "a\"NaN", "v": NaN}"#;
        assert_eq!(quote_non_finite(escaped), r#"{"s": "a\"NaN", "v": "nan"}"#);
    }

    #[test]
    fn stream_reads_every_layout() {
        let text = "{\"a\":1}\n{\"a\":2}{\"a\":3}\n[{\"a\":4}]\n{\n  \"a\": 5\n}\n";
        let recs = read_stream(text).unwrap();
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[0].line, 1);
        assert_eq!(recs[2].line, 2, "appended without a newline");
        assert_eq!(recs[4].line, 4);
        let err = read_stream("{\"a\":1}\n{\"a\":}\n").unwrap_err();
        assert_eq!(err.record, Some(2));
        assert_eq!(err.line, Some(2));
        let err = read_stream("3").unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::NotAnObject);
    }

    #[test]
    fn many_one_line_records_keep_their_lines() {
        // 20,000 records appended one per line (what timed out when each record's line was
        // counted from the start of the text).
        let text: String = (0..20_000)
            .map(|i| format!("{{\"completed\": {i}, \"request_rate\": Infinity}}\n"))
            .collect();
        let recs = read_stream(&text).unwrap();
        assert_eq!(recs.len(), 20_000);
        assert_eq!(recs[19_999].line, 20_000);
        assert_eq!(recs[12_345].object["completed"], 12_345);
    }

    proptest::proptest! {
        #[test]
        fn line_counter_agrees_with_counting_from_the_start(
            text in "[a-z\n{}]{0,200}",
            mut offsets in proptest::collection::vec(0usize..220, 0..10),
        ) {
            offsets.sort_unstable();
            let mut lines = LineCounter::new(&text);
            for o in offsets {
                let naive = text.as_bytes()[..o.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1;
                proptest::prop_assert_eq!(lines.line_of(o), naive);
            }
        }

        #[test]
        fn stream_records_start_on_their_own_lines(objects in proptest::collection::vec((0u32..100, 0usize..3), 1..30)) {
            let mut text = String::new();
            let mut expected = Vec::new();
            for (v, newlines) in &objects {
                text.push_str(&"\n".repeat(*newlines));
                expected.push(text.matches('\n').count() + 1);
                text.push_str(&format!("{{\"v\": {v}}}"));
            }
            let recs = read_stream(&text).unwrap();
            let got: Vec<usize> = recs.iter().map(|r| r.line).collect();
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
