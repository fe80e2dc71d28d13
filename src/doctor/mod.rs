//! `sota-bot doctor`: checks everything a campaign needs before it can start (the App's
//! installation and permissions, the files `sota-bot init` installs, the repository
//! config, runners, secrets, webhook deliveries, the database) and says how to fix each
//! problem. `checks` turns fetched facts into results (pure), `gather` fetches them,
//! `render` prints the report.

pub mod checks;
pub mod gather;
pub mod render;

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    /// Works, but something is off or could not be checked.
    Warn,
    /// A campaign will not start or not finish until this is fixed.
    Fail,
}

impl Status {
    /// The report's spelling.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short name (`installation`, `runners`, `workflow sota-round.yml`, ...).
    pub name: String,
    pub status: Status,
    /// One line saying what was found.
    pub summary: String,
    /// Further lines (which runner, which delivery, which problem).
    pub details: Vec<String>,
    /// What to do about a WARN or FAIL.
    pub fix: Option<String>,
}

impl Check {
    /// A passing check.
    pub fn pass(name: impl Into<String>, summary: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Pass,
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    /// A warning with its fix.
    pub fn warn(
        name: impl Into<String>,
        summary: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Self::pass(name, summary)
        }
    }

    /// A failure with its fix.
    pub fn fail(
        name: impl Into<String>,
        summary: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Self::pass(name, summary)
        }
    }

    /// Adds detail lines.
    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// The worst status of a report (PASS for an empty one).
pub fn worst(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Pass)
}
