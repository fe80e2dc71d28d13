//! `/sota` commands in issue and PR comments (pure parsing, no I/O).
//!
//! A command counts only at the start of a line (up to three spaces of indentation) in text
//! that GitHub renders as plain Markdown: the comment is parsed as CommonMark (with tables), and
//! lines inside fenced or indented code, code spans, raw HTML such as `<!-- -->` comments,
//! tables and `>` quotes never count, so quoting or documenting a command never triggers it. A
//! line without a `>` of its own right after a quote counts: Markdown would continue the quote
//! with it, but it is the writer's own text. On an edited comment only commands that were
//! added by the edit run.

use std::collections::HashMap;
use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start the campaign of a request issue whose text a writer has read (needed when the
    /// text is by someone without write permission).
    Start,
    /// Start the next round (optionally with a note for the agent's prompt).
    Continue { note: Option<String> },
    /// End the campaign after the current step.
    Stop,
    /// Pause automatic round dispatch.
    Hold,
    /// Undo `hold`.
    Resume,
    /// Post the current status.
    Status,
    /// Re-dispatch the last failed workflow.
    Retry,
    /// Post the command reference.
    Help,
}

impl Command {
    /// The command word.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Continue { .. } => "continue",
            Self::Stop => "stop",
            Self::Hold => "hold",
            Self::Resume => "resume",
            Self::Status => "status",
            Self::Retry => "retry",
            Self::Help => "help",
        }
    }
}

/// Every command word, in help order.
pub const COMMAND_NAMES: [&str; 8] = [
    "start", "continue", "stop", "hold", "resume", "status", "retry", "help",
];

/// One command found in a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCommand {
    /// 1-based line number in the comment.
    pub line: usize,
    pub command: Command,
}

/// A `/sota` line that is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("line {line}: `/sota` needs a command (try `/sota help`)")]
    Missing { line: usize },
    #[error("line {line}: unknown command `{word}`{}", .suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Unknown {
        line: usize,
        word: String,
        suggestion: Option<&'static str>,
    },
    #[error("line {line}: `{command}` takes no argument, got `{argument}`")]
    UnexpectedArgument {
        line: usize,
        command: &'static str,
        argument: String,
    },
}

/// Commands and errors of one comment, in line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedComment {
    pub commands: Vec<FoundCommand>,
    pub errors: Vec<CommandError>,
}

impl ParsedComment {
    /// True when the comment addressed the bot at all.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.errors.is_empty()
    }
}

/// A `/sota` line and the key used to tell old lines from new ones on edit.
struct Candidate {
    line: usize,
    key: String,
    outcome: Result<Command, CommandError>,
}

/// Byte ranges of the comment's plain text as GitHub renders it: text of paragraphs, headings
/// and list items, outside block quotes, code blocks, raw HTML (comments included) and tables.
/// Code spans and inline HTML are separate events, so they never appear here either.
fn plain_text_ranges(body: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    // Depth of the containers whose text is never a command, and of block quotes.
    let mut hidden = 0usize;
    let mut quoted = 0usize;
    for (event, range) in Parser::new_ext(body, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(_) | Tag::HtmlBlock | Tag::Table(_)) => hidden += 1,
            Event::End(TagEnd::CodeBlock | TagEnd::HtmlBlock | TagEnd::Table) => {
                hidden = hidden.saturating_sub(1)
            }
            Event::Start(Tag::BlockQuote(_)) => quoted += 1,
            Event::End(TagEnd::BlockQuote(_)) => quoted = quoted.saturating_sub(1),
            Event::Text(_) if hidden == 0 && (quoted == 0 || lazy_line(body, range.start)) => {
                ranges.push(range)
            }
            _ => {}
        }
    }
    ranges
}

/// Whether the source line holding `at` has no `>` of its own: Markdown continues the quote
/// above it (a lazy continuation line), but the writer typed it as their own text.
fn lazy_line(body: &str, at: usize) -> bool {
    let start = body[..at].rfind('\n').map_or(0, |i| i + 1);
    !body[start..at].contains('>')
}

/// Where `/sota` begins a source line: up to three spaces (no tab) before it, and a space or
/// the line end after it (`/sotabot` and `/sota-x` are not addressed to us). Returns the
/// 1-based line number, the byte offset of `/sota` and the rest of the line.
fn sota_lines(body: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut offset = 0;
    body.split('\n')
        .enumerate()
        .filter_map(move |(index, raw)| {
            let start = offset;
            offset += raw.len() + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let indent = line.len() - line.trim_start_matches(' ').len();
            let text = &line[indent..];
            let rest = text.strip_prefix("/sota")?;
            let addressed = rest.is_empty() || rest.starts_with(char::is_whitespace);
            (indent <= 3 && addressed).then_some((index + 1, start + indent, text))
        })
}

/// The `/sota` lines that GitHub shows as plain text: the line rule of [`sota_lines`] and the
/// Markdown structure of [`plain_text_ranges`] must both agree.
fn candidates(body: &str) -> Vec<Candidate> {
    let plain = plain_text_ranges(body);
    sota_lines(body)
        .filter(|(_, at, _)| plain.iter().any(|r| r.contains(at)))
        .map(|(line, _, text)| Candidate {
            line,
            key: text.split_whitespace().collect::<Vec<_>>().join(" "),
            outcome: parse_command(line, text["/sota".len()..].trim()),
        })
        .collect()
}

fn parse_command(line: usize, text: &str) -> Result<Command, CommandError> {
    let (word, argument) = match text.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (text, ""),
    };
    if word.is_empty() {
        return Err(CommandError::Missing { line });
    }
    let lower = word.to_lowercase();
    let no_argument = |command: Command| {
        if argument.is_empty() {
            Ok(command)
        } else {
            Err(CommandError::UnexpectedArgument {
                line,
                command: command.name(),
                argument: argument.to_string(),
            })
        }
    };
    match lower.as_str() {
        "continue" => Ok(Command::Continue {
            note: (!argument.is_empty()).then(|| argument.to_string()),
        }),
        "start" => no_argument(Command::Start),
        "stop" => no_argument(Command::Stop),
        "hold" => no_argument(Command::Hold),
        "resume" => no_argument(Command::Resume),
        "status" => no_argument(Command::Status),
        "retry" => no_argument(Command::Retry),
        "help" => no_argument(Command::Help),
        _ => Err(CommandError::Unknown {
            line,
            word: word.to_string(),
            suggestion: suggest(&lower),
        }),
    }
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The command a typo most likely meant: a unique prefix of 3+ chars, else the closest word
/// within edit distance 2.
pub fn suggest(word: &str) -> Option<&'static str> {
    if word.chars().count() > 40 {
        return None;
    }
    let prefixed: Vec<_> = COMMAND_NAMES
        .iter()
        .filter(|n| word.len() >= 3 && n.starts_with(word))
        .collect();
    if let [only] = prefixed.as_slice() {
        return Some(**only);
    }
    let best = COMMAND_NAMES
        .iter()
        .map(|name| (edit_distance(word, name), *name))
        .min_by_key(|(d, _)| *d)?;
    (best.0 <= 2).then_some(best.1)
}

/// All commands of a comment body.
pub fn parse_comment(body: &str) -> ParsedComment {
    collect(candidates(body))
}

/// Commands added by an edit: those of `new_body` not already present in `old_body`
/// (compared line by line as multisets, so moving a command does not re-run it).
pub fn added_commands(old_body: &str, new_body: &str) -> ParsedComment {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for c in candidates(old_body) {
        *seen.entry(c.key).or_default() += 1;
    }
    let fresh = candidates(new_body)
        .into_iter()
        .filter(|c| match seen.get_mut(&c.key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect();
    collect(fresh)
}

fn collect(found: Vec<Candidate>) -> ParsedComment {
    let mut parsed = ParsedComment::default();
    for c in found {
        match c.outcome {
            Ok(command) => parsed.commands.push(FoundCommand {
                line: c.line,
                command,
            }),
            Err(e) => parsed.errors.push(e),
        }
    }
    parsed
}

/// The `/sota help` reply.
pub fn help_text() -> String {
    [
        "**sota-bot commands** (at the start of a line; people with write access only):",
        "",
        "| command | effect |",
        "| --- | --- |",
        "| `/sota start` | start the campaign of this request issue (needed when its text is by someone without write access; read it first) |",
        "| `/sota continue [note]` | start the next round; the note is added to the agent's prompt |",
        "| `/sota stop` | stop the campaign and write the final report |",
        "| `/sota hold` | pause: no new round is dispatched until `/sota resume` |",
        "| `/sota resume` | undo `/sota hold` |",
        "| `/sota status` | post the campaign status |",
        "| `/sota retry` | re-dispatch the last failed workflow run |",
        "| `/sota help` | this message |",
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(p: &ParsedComment) -> Vec<&'static str> {
        p.commands.iter().map(|c| c.command.name()).collect()
    }

    #[test]
    fn commands_at_line_start_only() {
        let p = parse_comment("please /sota stop\n/sota status\n   /sota hold\n/sotabot x");
        assert_eq!(names(&p), ["status", "hold"]);
        assert_eq!(p.commands[0].line, 2);
        assert!(p.errors.is_empty());
    }

    #[test]
    fn continue_keeps_note() {
        let p = parse_comment("/sota continue  try the fused MoE kernel \r\n");
        assert_eq!(
            p.commands[0].command,
            Command::Continue {
                note: Some("try the fused MoE kernel".into())
            }
        );
        assert_eq!(
            parse_comment("/SOTA Continue").commands.len(),
            0,
            "prefix is case-sensitive"
        );
        assert_eq!(
            parse_comment("/sota CONTINUE").commands[0].command,
            Command::Continue { note: None }
        );
    }

    #[test]
    fn ignores_code_and_quotes() {
        let body = "```\n/sota stop\n```\n~~~~md\n/sota stop\n~~~\n/sota stop\n~~~~\n    /sota stop\n\t/sota stop\n> /sota stop\n  > /sota stop\n/sota resume";
        let p = parse_comment(body);
        assert_eq!(names(&p), ["resume"]);
        // Unclosed fence swallows the rest.
        assert!(parse_comment("```\n/sota stop").is_empty());
        // A fence line with info string after closing chars does not close.
        assert!(parse_comment("```\n``` rust\n/sota stop").is_empty());
    }

    #[test]
    fn code_spans_and_html_never_count() {
        // A code span that opens on the line before hides the command inside it.
        assert!(parse_comment("run `x\n/sota stop` later").is_empty());
        assert!(parse_comment("`/sota stop`").is_empty());
        // HTML comments, as a block or inline across lines, hide what they contain.
        assert!(parse_comment("<!--\n/sota stop\n-->").is_empty());
        assert!(parse_comment("note <!-- hidden\n/sota stop\n-->").is_empty());
        // Raw HTML blocks are not Markdown; a blank line ends them and text counts again.
        assert!(parse_comment("<details>\n/sota stop\n</details>").is_empty());
        assert_eq!(
            names(&parse_comment(
                "<details>\n<summary>x</summary>\n\n/sota stop\n\n</details>"
            )),
            ["stop"]
        );
        // A code span later on the line is part of the note.
        assert_eq!(
            parse_comment("/sota continue use `fused_moe`").commands[0].command,
            Command::Continue {
                note: Some("use `fused_moe`".into())
            }
        );
    }

    #[test]
    fn markdown_structure_decides() {
        // A line without its own `>` counts, though Markdown continues the quote above it
        // (a lazy continuation line); a quoted line does not, however it is nested.
        assert_eq!(names(&parse_comment("> quoted\n/sota stop")), ["stop"]);
        assert_eq!(names(&parse_comment("> quoted\n\n/sota stop")), ["stop"]);
        assert!(parse_comment("- > quoted\n  > /sota stop").is_empty());
        assert!(parse_comment("> > nested\n> /sota stop").is_empty());
        // Indented code after a blank line, but a paragraph's continuation is text.
        assert!(parse_comment("text\n\n    /sota stop").is_empty());
        assert_eq!(names(&parse_comment("- item\n  /sota hold")), ["hold"]);
        // Table cells are not commands.
        assert!(parse_comment("/sota stop | x\n--- | ---\n/sota hold | y").is_empty());
        // Fences of either kind, indented up to three spaces, and longer closers.
        assert!(parse_comment("   ~~~\n/sota stop\n   ~~~~~\n").is_empty());
        assert_eq!(
            names(&parse_comment("```\n/sota stop\n````\n/sota hold")),
            ["hold"]
        );
        // Line numbers count source lines, CRLF included.
        let p = parse_comment("a\r\n\r\n```\r\nx\r\n```\r\n/sota retry\r\n");
        assert_eq!(p.commands[0].line, 6);
    }

    #[test]
    fn typed_errors_with_suggestions() {
        let p =
            parse_comment("/sota contineu\n/sota\n/sota stop now\n/sota frobnicate\n/sota stat");
        assert_eq!(
            p.errors,
            vec![
                CommandError::Unknown {
                    line: 1,
                    word: "contineu".into(),
                    suggestion: Some("continue")
                },
                CommandError::Missing { line: 2 },
                CommandError::UnexpectedArgument {
                    line: 3,
                    command: "stop",
                    argument: "now".into()
                },
                CommandError::Unknown {
                    line: 4,
                    word: "frobnicate".into(),
                    suggestion: None
                },
                CommandError::Unknown {
                    line: 5,
                    word: "stat".into(),
                    suggestion: Some("status")
                },
            ]
        );
        assert_eq!(
            p.errors[0].to_string(),
            "line 1: unknown command `contineu` (did you mean `continue`?)"
        );
    }

    #[test]
    fn edits_run_only_new_commands() {
        let old = "/sota hold\nthanks";
        let new = "thanks\n/sota hold\n/sota status";
        assert_eq!(names(&added_commands(old, new)), ["status"]);
        assert!(added_commands(new, new).is_empty());
        // The same command added a second time does run.
        assert_eq!(
            names(&added_commands(old, "/sota hold\n/sota hold")),
            ["hold"]
        );
        // A command moved out of a code block becomes new.
        assert_eq!(
            names(&added_commands("```\n/sota stop\n```", "/sota stop")),
            ["stop"]
        );
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("stop", "stop"), 0);
    }

    proptest! {
        #[test]
        fn parser_never_panics(body in "(\\PC|\n|\r|\t|`|~|>|/sota| ){0,200}") {
            let _ = parse_comment(&body);
            let _ = added_commands(&body, &body);
        }

        #[test]
        fn parser_never_panics_on_any_string(a in ".{0,120}", b in ".{0,120}") {
            let _ = added_commands(&a, &b);
        }

        #[test]
        fn quoting_a_comment_hides_its_commands(body in "(/sota (stop|hold)|text|```|~~~|    |<!--|\n){0,30}") {
            let quoted: String = body.lines().map(|l| format!("> {l}\n")).collect();
            prop_assert!(parse_comment(&quoted).is_empty());
        }

        #[test]
        fn fencing_a_comment_hides_its_commands(body in "(/sota (stop|hold)|text|~~~|    |> q|<!--|\n){0,30}") {
            let fenced = format!("````\n{body}\n````");
            prop_assert!(parse_comment(&fenced).is_empty());
        }

        #[test]
        fn an_html_comment_hides_its_commands(
            block in "(/sota (stop|hold)|text|~~~|```|    |\n){0,30}",
            inline in "((/sota (stop|hold)|text)( |\n)){0,30}",
        ) {
            let block = format!("<!--\n{block}\n-->");
            prop_assert!(parse_comment(&block).is_empty());
            // Inline, the comment lives in one paragraph: its lines are never blank.
            let inline = format!("see <!-- {inline} -->");
            prop_assert!(parse_comment(&inline).is_empty());
        }

        #[test]
        fn a_command_after_a_blank_line_counts(prose in "([a-z]{1,8}| |\n){0,40}") {
            let p = parse_comment(&format!("{prose}\n\n/sota status"));
            prop_assert_eq!(names(&p), ["status"]);
            prop_assert_eq!(p.commands[0].line, prose.split('\n').count() + 2);
        }

        #[test]
        fn unchanged_edit_runs_nothing(body in "(/sota (stop|hold|help|continue x)|text|```|> q|\n){0,30}") {
            prop_assert!(added_commands(&body, &body).is_empty());
        }
    }
}
