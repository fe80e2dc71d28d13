//! Line numbers for YAML keys.
//!
//! `serde_yaml_ng` reports locations for syntax errors only; once a document is a `Value`
//! the positions are gone. Validation reports every problem at once and each should say
//! where it is, so this scanner maps dotted key paths (`gpu.count`,
//! `workload.scenarios[1].input_len`) to 1-based line numbers with a light reading of
//! block-style YAML. It never fails: unknown shapes just yield no line, and lookups fall
//! back to the nearest enclosing key.

use std::collections::HashMap;

/// Key path -> first line where it appears.
#[derive(Debug, Default, Clone)]
pub struct KeyLines {
    lines: HashMap<String, usize>,
}

struct Frame {
    indent: usize,
    segment: String,
    is_item: bool,
}

impl KeyLines {
    /// Scans `text`; `first_line` is the line number of the text's first line (so YAML
    /// embedded in a larger document reports lines of the document).
    pub fn scan(text: &str, first_line: usize) -> KeyLines {
        let mut out = KeyLines::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut item_counts: HashMap<String, usize> = HashMap::new();
        let mut block_scalar_indent: Option<usize> = None;
        for (offset, raw) in text.lines().enumerate() {
            let line_no = first_line + offset;
            let trimmed = raw.trim_start_matches(' ');
            let indent = raw.len() - trimmed.len();
            let content = trimmed.trim_end();
            if let Some(limit) = block_scalar_indent {
                if content.is_empty() || indent > limit {
                    continue;
                }
                block_scalar_indent = None;
            }
            if content.is_empty()
                || content.starts_with('#')
                || content.starts_with("---")
                || content.starts_with("...")
            {
                continue;
            }
            let (mut indent, mut rest) = (indent, content);
            if rest == "-" || rest.starts_with("- ") {
                while stack
                    .last()
                    .is_some_and(|f| f.indent > indent || (f.indent == indent && f.is_item))
                {
                    stack.pop();
                }
                let parent = path_of(&stack);
                let count = item_counts.entry(parent).or_insert(0);
                let segment = format!("[{count}]");
                *count += 1;
                stack.push(Frame {
                    indent,
                    segment,
                    is_item: true,
                });
                out.record(path_of(&stack), line_no);
                let after = rest.get(1..).unwrap_or("");
                let after_trim = after.trim_start();
                indent += 1 + (after.len() - after_trim.len());
                rest = after_trim;
                if rest.is_empty() {
                    continue;
                }
            }
            let Some((key, value)) = split_key(rest) else {
                continue;
            };
            while stack.last().is_some_and(|f| f.indent >= indent) {
                stack.pop();
            }
            stack.push(Frame {
                indent,
                segment: key.to_string(),
                is_item: false,
            });
            let path = path_of(&stack);
            out.record(path.clone(), line_no);
            let value = value.trim();
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar_indent = Some(indent);
            } else if value.starts_with('{') {
                for inner in value.trim_matches(|c| c == '{' || c == '}').split(',') {
                    if let Some((k, _)) = split_key(inner.trim()) {
                        out.record(format!("{path}.{k}"), line_no);
                    }
                }
            }
        }
        out
    }

    fn record(&mut self, path: String, line: usize) {
        self.lines.entry(path).or_insert(line);
    }

    /// The line of `path`, or of its nearest enclosing key that was found.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut current = path;
        loop {
            if let Some(line) = self.lines.get(current) {
                return Some(*line);
            }
            let cut = current.rfind(['.', '['])?;
            current = current.get(..cut)?;
        }
    }
}

fn path_of(stack: &[Frame]) -> String {
    let mut path = String::new();
    for frame in stack {
        if !frame.segment.starts_with('[') && !path.is_empty() {
            path.push('.');
        }
        path.push_str(&frame.segment);
    }
    path
}

/// Splits `key: value` (quoted keys allowed). Returns None for lines that are no mapping key.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let (key, value) = if let Some(stripped) = text.strip_prefix('"') {
        let end = stripped.find('"')?;
        let after = stripped.get(end + 1..)?.trim_start();
        (stripped.get(..end)?, after.strip_prefix(':')?)
    } else if let Some(stripped) = text.strip_prefix('\'') {
        let end = stripped.find('\'')?;
        let after = stripped.get(end + 1..)?.trim_start();
        (stripped.get(..end)?, after.strip_prefix(':')?)
    } else {
        let colon = text
            .find(": ")
            .or_else(|| text.strip_suffix(':').map(|k| k.len()))?;
        let key = text.get(..colon)?.trim_end();
        if key.is_empty() || key.contains(['{', '[', '#']) {
            return None;
        }
        (key, text.get(colon + 1..).unwrap_or(""))
    };
    Some((key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_items_and_flow_maps() {
        let text = "model: m\ngpu:\n  model: h100\n  count: 8\nworkload:\n  scenarios:\n  - name: chat\n    input_len: 1000\n  - name: long\n    input_len: x\nnotes: |\n  fake: key\nsla: {max_p50_ttft_ms: 10, bad: 1}\n";
        let lines = KeyLines::scan(text, 1);
        assert_eq!(lines.line_of("model"), Some(1));
        assert_eq!(lines.line_of("gpu.count"), Some(4));
        assert_eq!(lines.line_of("workload.scenarios[0].name"), Some(7));
        assert_eq!(lines.line_of("workload.scenarios[1].input_len"), Some(10));
        assert_eq!(
            lines.line_of("notes.fake"),
            Some(11),
            "block scalar content is no key"
        );
        assert_eq!(lines.line_of("sla.bad"), Some(13));
        assert_eq!(
            lines.line_of("gpu.nothing"),
            Some(2),
            "falls back to the parent"
        );
        assert_eq!(lines.line_of("absent"), None);
        let offset = KeyLines::scan("a: 1\nb: 2", 10);
        assert_eq!(offset.line_of("b"), Some(11));
    }
}
