//! Progress lines: an indicatif spinner on a terminal, plain lines otherwise (CI logs).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Receives one line per engine step.
pub trait Progress {
    fn step(&mut self, message: &str);
}

/// Prints `[sota] <message>` lines to stderr.
pub struct PlainProgress;

impl Progress for PlainProgress {
    fn step(&mut self, message: &str) {
        eprintln!("[sota] {message}");
    }
}

/// A spinner that shows the current step and keeps finished steps as lines.
pub struct SpinnerProgress {
    bar: ProgressBar,
}

impl SpinnerProgress {
    pub fn new() -> SpinnerProgress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        SpinnerProgress { bar }
    }
}

impl Default for SpinnerProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for SpinnerProgress {
    fn step(&mut self, message: &str) {
        if let Some(prev) = Some(self.bar.message()).filter(|m| !m.is_empty()) {
            self.bar.println(format!("  done: {prev}"));
        }
        self.bar.set_message(message.to_string());
    }
}

impl Drop for SpinnerProgress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The right reporter for stderr: a spinner on a TTY, plain lines otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(SpinnerProgress::new())
    } else {
        Box::new(PlainProgress)
    }
}

/// Collects lines (tests and the overhead bench).
#[derive(Default)]
pub struct RecordingProgress {
    pub lines: Vec<String>,
}

impl Progress for RecordingProgress {
    fn step(&mut self, message: &str) {
        self.lines.push(message.to_string());
    }
}
