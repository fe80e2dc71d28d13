//! Small Markdown helpers shared by the benchmark reports: table cells that cannot break a
//! table, code spans and fences that cannot be closed early by their content, and number
//! formats where a missing value is `—` and never 0.

/// Rendered for a value that was not measured or not recorded.
pub const MISSING: &str = "—";

/// Text safe inside a Markdown table cell: `|` escaped, line breaks folded to spaces.
pub fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '|' => out.push_str("\\|"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push(' ');
            }
            '\n' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

/// A code span for a table cell (`|` escaped, which GFM tables honour inside code spans).
/// The delimiter is one backtick longer than any backtick run in the text.
pub fn code_cell(text: &str) -> String {
    let ticks = "`".repeat(longest_backtick_run(text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    cell(&format!("{ticks}{pad}{text}{pad}{ticks}"))
}

/// A fenced code block whose fence is longer than any backtick run in `body`.
pub fn fenced(lang: &str, body: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(body) + 1).max(3));
    let body = body.trim_end_matches(['\n', '\r']);
    format!("{fence}{lang}\n{body}\n{fence}\n")
}

fn longest_backtick_run(text: &str) -> usize {
    let mut best = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// A number with `decimals` places, or `—`.
pub fn num(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => MISSING.to_string(),
    }
}

/// A fraction in [0, 1] as a percentage with one decimal, or `—`.
pub fn pct_of_fraction(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{:.1}%", v * 100.0),
        _ => MISSING.to_string(),
    }
}

/// A signed percentage (`+1.23%`), or `—`.
pub fn signed_pct(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:+.2}%"),
        _ => MISSING.to_string(),
    }
}

/// A signed millisecond delta (`+12.3 ms`), or `—`.
pub fn signed_ms(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:+.1} ms"),
        _ => MISSING.to_string(),
    }
}

/// Any displayable optional value, or `—`.
pub fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| MISSING.to_string(), |v| v.to_string())
}

/// One Markdown table row from already-escaped cells.
pub fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// A header row plus its separator.
pub fn header(names: &[&str]) -> String {
    let sep: Vec<&str> = names.iter().map(|_| "---").collect();
    format!("| {} |\n| {} |\n", names.join(" | "), sep.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_escape_pipes_and_newlines() {
        assert_eq!(cell("a | b\nc\r\nd"), "a \\| b c d");
        assert_eq!(code_cell("x | tee log"), "`x \\| tee log`");
        assert_eq!(code_cell("echo `date`"), "`` echo `date` ``");
    }

    #[test]
    fn fences_outgrow_their_content() {
        let body = "```\ninner\n```";
        let out = fenced("bash", body);
        assert!(out.starts_with("````bash\n"), "{out}");
        assert!(out.ends_with("\n````\n"), "{out}");
    }

    #[test]
    fn missing_numbers_are_dashes_never_zero() {
        assert_eq!(num(None, 2), "—");
        assert_eq!(num(Some(f64::NAN), 2), "—");
        assert_eq!(num(Some(0.0), 1), "0.0");
        assert_eq!(pct_of_fraction(Some(0.995)), "99.5%");
        assert_eq!(signed_pct(Some(-1.234)), "-1.23%");
    }
}
