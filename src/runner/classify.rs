//! Failure classification (pure): how a process ended plus its log decide the row status
//! and a concrete reason, so failed candidates are kept with something a human can act on.

use crate::bench::row::RunStatus;

/// How a process ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitKind {
    Success,
    Code(i32),
    Signal(i32),
    /// Killed by sota-bot after this many seconds.
    TimedOut {
        after_s: f64,
    },
    /// Never started, for a reason decided before launch (e.g. an unsupported flag).
    NotRun {
        reason: String,
    },
}

/// Status and reason for a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    pub status: RunStatus,
    pub reason: Option<String>,
}

const OOM_PATTERNS: &[&str] = &[
    "cuda out of memory",
    "torch.outofmemoryerror",
    "outofmemoryerror",
    "out of memory",
    "not enough memory",
    "insufficient memory",
    "no available memory for the cache blocks",
    "kv cache is needed, which is larger than the available kv cache memory",
    "not enough kv cache",
    "kv cache pool",
    "cuda error: out of memory",
];

const ERROR_MARKERS: &[&str] = &[
    "error",
    "exception",
    "fatal",
    "panicked",
    "failed",
    "traceback",
];

/// Longest reason kept in a row.
const MAX_REASON: usize = 400;

/// Classifies a finished (or never started) process from its exit and log text.
pub fn classify_failure(log: &str, exit: &ExitKind) -> Classification {
    match exit {
        ExitKind::Success => Classification {
            status: RunStatus::Ok,
            reason: None,
        },
        ExitKind::NotRun { reason } => Classification {
            status: RunStatus::Skipped,
            reason: Some(clip(reason)),
        },
        ExitKind::TimedOut { after_s } => {
            let last = last_error_line(log)
                .map(|l| format!("; last error: {l}"))
                .unwrap_or_default();
            Classification {
                status: RunStatus::Timeout,
                reason: Some(clip(&format!("timed out after {after_s:.0}s{last}"))),
            }
        }
        ExitKind::Code(_) | ExitKind::Signal(_) => {
            if let Some(line) = oom_line(log) {
                return Classification {
                    status: RunStatus::Oom,
                    reason: Some(clip(line)),
                };
            }
            let how = match exit {
                ExitKind::Code(c) => format!("exited with code {c}"),
                ExitKind::Signal(s) => format!("killed by signal {s}"),
                _ => String::new(),
            };
            let reason = match last_error_line(log) {
                Some(line) => format!("{line} ({how})"),
                None => how,
            };
            Classification {
                status: RunStatus::Failed,
                reason: Some(clip(&reason)),
            }
        }
    }
}

/// The last log line that reports running out of GPU memory or KV-cache capacity.
pub fn oom_line(log: &str) -> Option<&str> {
    log.lines().rev().map(str::trim).find(|l| {
        let lower = l.to_ascii_lowercase();
        OOM_PATTERNS.iter().any(|p| lower.contains(p))
    })
}

/// The last line that looks like an error (a Python traceback header is skipped in favour
/// of the exception line that follows it).
pub fn last_error_line(log: &str) -> Option<&str> {
    log.lines().rev().map(str::trim).find(|l| {
        let lower = l.to_ascii_lowercase();
        !l.is_empty()
            && !lower.starts_with("traceback (most recent call last)")
            && ERROR_MARKERS.iter().any(|m| lower.contains(m))
    })
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_REASON {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX_REASON).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oom_is_recognised_with_its_line() {
        let log = "INFO loading\nTraceback (most recent call last):\n  File \"x.py\"\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n";
        let c = classify_failure(log, &ExitKind::Code(1));
        assert_eq!(c.status, RunStatus::Oom);
        assert!(c.reason.unwrap().starts_with("torch.OutOfMemoryError"));
        let kv = classify_failure(
            "ValueError: No available memory for the cache blocks.",
            &ExitKind::Code(1),
        );
        assert_eq!(kv.status, RunStatus::Oom);
    }

    #[test]
    fn other_failures_cite_the_last_error_line() {
        let log = "INFO a\nTraceback (most recent call last):\nValueError: bad flag --foo\nINFO shutting down\n";
        let c = classify_failure(log, &ExitKind::Code(2));
        assert_eq!(c.status, RunStatus::Failed);
        assert_eq!(
            c.reason.as_deref(),
            Some("ValueError: bad flag --foo (exited with code 2)")
        );
        assert_eq!(
            classify_failure("", &ExitKind::Signal(9)).reason.as_deref(),
            Some("killed by signal 9")
        );
    }

    #[test]
    fn timeout_skip_and_success() {
        assert_eq!(
            classify_failure("", &ExitKind::TimedOut { after_s: 5.0 }).status,
            RunStatus::Timeout
        );
        let s = classify_failure(
            "",
            &ExitKind::NotRun {
                reason: "flag --x not in --help".into(),
            },
        );
        assert_eq!(s.status, RunStatus::Skipped);
        assert_eq!(
            classify_failure("error everywhere", &ExitKind::Success).status,
            RunStatus::Ok
        );
    }

    proptest! {
        #[test]
        fn classification_never_panics(log in any::<String>(), code in any::<i32>()) {
            let c = classify_failure(&log, &ExitKind::Code(code));
            prop_assert!(c.reason.is_some());
        }
    }
}
