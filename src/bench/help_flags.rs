//! Checking rendered flags against a captured `--help` text (every rendered flag is verified:
//! ARCHITECTURE.md, *The fixed workload*).
//!
//! Flags are version-sensitive: a flag renamed between releases makes a server exit at
//! start-up and wastes a GPU launch. The long flags a help text documents are extracted
//! (argparse, click and typer styles: `--flag`, `--flag VALUE`, `--flag, -f`, `--[no-]flag`,
//! `--flag/--no-flag`, `--flag=VALUE`) and every rendered flag absent from them is reported.
//! A help text with no flags at all (an empty capture, an error page) cannot judge anything,
//! so it yields "not validated" instead of failing every flag.
//!
//! Python's argparse accepts any unambiguous prefix of a long flag, so a flag missing from
//! the help is not always an error to the parser: a prefix of one documented flag silently
//! sets that other flag (a renamed option keeps "working" with another meaning), and a
//! prefix of several stops the server (`ambiguous option`). Both are reported.

use regex::Regex;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::OnceLock;

fn flag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // A long flag starts after a boundary (start, space, punctuation or a box-drawing
        // border of rich/typer help) and may carry click's `[no-]` prefix.
        Regex::new(r"(?:^|[^A-Za-z0-9_\-])--(\[no-\])?([A-Za-z0-9][A-Za-z0-9_.\-]*)")
            .expect("static regex is valid")
    })
}

/// The long flags (with their `--`) documented by a help text, or `None` when it has none.
pub fn extract_flags(help: &str) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for line in help.lines() {
        for cap in flag_re().captures_iter(line) {
            let Some(name) = cap.get(2).map(|m| m.as_str().trim_end_matches(['.', '-'])) else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            out.insert(format!("--{name}"));
            if cap.get(1).is_some() {
                out.insert(format!("--no-{name}"));
            }
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// One rendered flag the installed version would not take as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlagProblem {
    /// Not documented, and not a prefix of any documented flag.
    Unknown { flag: String },
    /// A prefix of several documented flags: argparse stops with "ambiguous option".
    Ambiguous { flag: String, matches: Vec<String> },
    /// A prefix of exactly one documented flag: argparse would set that one instead.
    Abbreviation { flag: String, full: String },
}

impl FlagProblem {
    /// The flag as rendered.
    pub fn flag(&self) -> &str {
        match self {
            FlagProblem::Unknown { flag }
            | FlagProblem::Ambiguous { flag, .. }
            | FlagProblem::Abbreviation { flag, .. } => flag,
        }
    }
}

impl std::fmt::Display for FlagProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlagProblem::Unknown { flag } => write!(f, "{flag} is not a flag of this version"),
            FlagProblem::Ambiguous { flag, matches } => write!(
                f,
                "{flag} is ambiguous (could match {})",
                matches.join(", ")
            ),
            FlagProblem::Abbreviation { flag, full } => {
                write!(f, "{flag} would be read as {full} (spell the flag out)")
            }
        }
    }
}

/// Outcome of checking one command's flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FlagValidation {
    /// The help text documents no flags; nothing was checked.
    NotValidated { reason: String },
    /// Every flag was checked; `unknown` lists those the help does not document, and
    /// `problems` says for each what the installed parser would do with it.
    Checked {
        validated: Vec<String>,
        unknown: Vec<String>,
        problems: Vec<FlagProblem>,
    },
}

impl FlagValidation {
    /// True when flags were checked and all are documented.
    pub fn is_ok(&self) -> bool {
        matches!(self, FlagValidation::Checked { unknown, .. } if unknown.is_empty())
    }

    /// Flags absent from the help text.
    pub fn unknown(&self) -> &[String] {
        match self {
            FlagValidation::Checked { unknown, .. } => unknown,
            FlagValidation::NotValidated { .. } => &[],
        }
    }

    /// What is wrong with each flag absent from the help text.
    pub fn problems(&self) -> &[FlagProblem] {
        match self {
            FlagValidation::Checked { problems, .. } => problems,
            FlagValidation::NotValidated { .. } => &[],
        }
    }

    /// Flags that were checked and documented.
    pub fn validated(&self) -> &[String] {
        match self {
            FlagValidation::Checked { validated, .. } => validated,
            FlagValidation::NotValidated { .. } => &[],
        }
    }
}

/// Checks `flags` (each `--name`, value-less) against `help`. Order is kept, duplicates dropped.
pub fn validate(flags: &[String], help: &str) -> FlagValidation {
    let Some(known) = extract_flags(help) else {
        return FlagValidation::NotValidated {
            reason: "the help text documents no long flags".to_string(),
        };
    };
    let mut validated = Vec::new();
    let mut unknown = Vec::new();
    let mut problems = Vec::new();
    for flag in flags {
        let name = flag.split('=').next().unwrap_or(flag).to_string();
        if validated.contains(&name) || unknown.contains(&name) {
            continue;
        }
        if known.contains(&name) {
            validated.push(name);
            continue;
        }
        let matches: Vec<String> = known
            .iter()
            .filter(|k| k.starts_with(&name))
            .cloned()
            .collect();
        problems.push(match matches.len() {
            0 => FlagProblem::Unknown { flag: name.clone() },
            1 => FlagProblem::Abbreviation {
                flag: name.clone(),
                full: matches.into_iter().next().unwrap_or_default(),
            },
            _ => FlagProblem::Ambiguous {
                flag: name.clone(),
                matches,
            },
        });
        unknown.push(name);
    }
    FlagValidation::Checked {
        validated,
        unknown,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argparse_click_and_typer_styles() {
        let help = "usage: x [-h] [--model-path MODEL_PATH] [--tp-size TP_SIZE]\n\
                    \x20 --enable-torch-compile, -c  Use compile.\n\
                    \x20 --[no-]trust-remote-code\n\
                    \x20 --stream / --no-stream\n\
                    \x20 --max_seq_len INTEGER   (see --kv_cache_free_gpu_memory_fraction.)\n\
                    \x20 --quantization={awq,fp8}\n\
                    │ --log-level  TEXT  │\n";
        let flags = extract_flags(help).unwrap();
        for f in [
            "--model-path",
            "--tp-size",
            "--enable-torch-compile",
            "--trust-remote-code",
            "--no-trust-remote-code",
            "--stream",
            "--no-stream",
            "--max_seq_len",
            "--kv_cache_free_gpu_memory_fraction",
            "--quantization",
            "--log-level",
        ] {
            assert!(flags.contains(f), "{f} missing from {flags:?}");
        }
        assert!(!flags.contains("-h"));
        assert!(!flags.iter().any(|f| f.ends_with('.')));
    }

    #[test]
    fn prefixes_of_several_flags_are_ambiguous_as_argparse_says() {
        let help = "  --cuda-graph-max-bs-decode N\n  --cuda-graph-max-bs-prefill N\n";
        let v = validate(&["--cuda-graph-max-bs".into(), "--nope".into()], help);
        assert_eq!(
            v.problems()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "--cuda-graph-max-bs is ambiguous (could match --cuda-graph-max-bs-decode, --cuda-graph-max-bs-prefill)",
                "--nope is not a flag of this version"
            ]
        );
        assert_eq!(v.unknown(), ["--cuda-graph-max-bs", "--nope"]);
    }

    #[test]
    fn unknown_flags_are_reported_and_empty_help_is_not_a_verdict() {
        let help = "  --tp-size N\n  --port P\n";
        let v = validate(&["--tp-size".into(), "--tp".into(), "--port".into()], help);
        assert_eq!(v.unknown(), ["--tp"]);
        assert!(!v.is_ok());
        assert_eq!(
            v.problems(),
            [FlagProblem::Abbreviation {
                flag: "--tp".into(),
                full: "--tp-size".into()
            }]
        );
        let none = validate(&["--tp".into()], "Traceback: ImportError\n");
        assert!(matches!(none, FlagValidation::NotValidated { .. }));
        assert!(extract_flags("").is_none());
    }
}
