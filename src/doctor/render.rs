//! The doctor's report as text: one line per check, then its details and fix.

use super::{Check, Status};

/// Renders the report for a terminal (plain text, no colour).
pub fn render(title: &str, checks: &[Check]) -> String {
    let mut out = format!("{title}\n\n");
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        out.push_str(&format!(
            "{}  {:<width$}  {}\n",
            c.status.label(),
            c.name,
            c.summary
        ));
        for d in &c.details {
            out.push_str(&format!("      {:<width$}  - {d}\n", ""));
        }
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} passed, {} warned, {} failed\n",
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_layout() {
        let checks = vec![
            Check::pass("credentials", "App `sota` (id 7) authenticated"),
            Check::fail(
                "runners",
                "no online runner for some label sets of o/r",
                "start the runner",
            )
            .with_details(vec![
                "[self-hosted, 1-gpu-h100]: every matching runner is offline (gpu1)".into(),
            ]),
            Check::warn(
                "database",
                "not checked: no database given",
                "run doctor on the serve host",
            ),
        ];
        insta::assert_snapshot!(render("sota-bot doctor: o/r", &checks));
    }
}
