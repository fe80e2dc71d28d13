//! Prometheus text exposition for `/metrics`, without a metrics framework: a few counters
//! the service owns plus gauges read at scrape time (queue states, campaign phases).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::github::ClientMetrics;

/// Outcome of one `POST /webhook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryOutcome {
    Queued,
    Duplicate,
    Requeued,
    BadSignature,
    TooLarge,
    TimedOut,
    Busy,
    Malformed,
    QueueError,
}

impl DeliveryOutcome {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Duplicate => "duplicate",
            Self::Requeued => "requeued",
            Self::BadSignature => "bad_signature",
            Self::TooLarge => "too_large",
            Self::TimedOut => "timed_out",
            Self::Busy => "busy",
            Self::Malformed => "malformed",
            Self::QueueError => "queue_error",
        }
    }
}

/// Provides the number of campaigns per phase (implemented by the campaign integration).
pub type PhaseGauge = Arc<dyn Fn() -> Vec<(String, u64)> + Send + Sync>;

/// Counters owned by the service.
#[derive(Default)]
pub struct ServiceMetrics {
    deliveries: Mutex<BTreeMap<(&'static str, DeliveryOutcome), u64>>,
    jobs_finished: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    github: Mutex<Option<Arc<ClientMetrics>>>,
    phases: Mutex<Option<PhaseGauge>>,
}

impl ServiceMetrics {
    /// Counts one delivery. The event name comes from a header nobody has authenticated yet
    /// (a 401 or 413 is counted before or without the signature check), so only the events
    /// the App knows get their own label; anything else counts as `other`.
    pub fn delivery(&self, event: &str, outcome: DeliveryOutcome) {
        let mut map = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((event_label(event), outcome)).or_default() += 1;
    }

    /// Counts a finished job attempt (`done`, `retry`, `dead`).
    pub fn job_finished(&self, event: &str, result: &'static str) {
        let mut map = self.jobs_finished.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((event_label(event), result)).or_default() += 1;
    }

    /// Connects the GitHub client's counters.
    pub fn attach_github(&self, client: Arc<ClientMetrics>) {
        *self.github.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
    }

    /// Connects the campaigns-by-phase gauge.
    pub fn attach_phase_gauge(&self, gauge: PhaseGauge) {
        *self.phases.lock().unwrap_or_else(|p| p.into_inner()) = Some(gauge);
    }

    /// Renders the text format; `job_states` comes from the queue at scrape time.
    pub fn render(&self, job_states: &[(String, u64)]) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str(
            "# HELP sota_webhook_deliveries_total Webhook deliveries by event and outcome.\n",
        );
        out.push_str("# TYPE sota_webhook_deliveries_total counter\n");
        for ((event, outcome), n) in self
            .deliveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "sota_webhook_deliveries_total{{event=\"{}\",outcome=\"{}\"}} {n}",
                escape(event),
                outcome.as_str()
            );
        }
        out.push_str(
            "# HELP sota_jobs Jobs in the durable queue by state.\n# TYPE sota_jobs gauge\n",
        );
        for state in super::queue::JobState::ALL {
            let n = job_states
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "sota_jobs{{state=\"{}\"}} {n}", state.as_str());
        }
        out.push_str("# HELP sota_job_attempts_total Finished job attempts by event and result.\n");
        out.push_str("# TYPE sota_job_attempts_total counter\n");
        for ((event, result), n) in self
            .jobs_finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "sota_job_attempts_total{{event=\"{}\",result=\"{result}\"}} {n}",
                escape(event)
            );
        }
        if let Some(gh) = self
            .github
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            out.push_str(
                "# HELP sota_github_requests_total GitHub API requests sent (attempts).\n",
            );
            out.push_str("# TYPE sota_github_requests_total counter\n");
            let _ = writeln!(out, "sota_github_requests_total {}", load(&gh.requests));
            out.push_str(
                "# HELP sota_github_responses_total GitHub API responses by status class.\n",
            );
            out.push_str("# TYPE sota_github_responses_total counter\n");
            for (class, c) in [
                ("2xx", &gh.responses_2xx),
                ("4xx", &gh.responses_4xx),
                ("5xx", &gh.responses_5xx),
            ] {
                let _ = writeln!(
                    out,
                    "sota_github_responses_total{{class=\"{class}\"}} {}",
                    load(c)
                );
            }
            let _ = writeln!(out, "# TYPE sota_github_transport_errors_total counter\nsota_github_transport_errors_total {}", load(&gh.transport_errors));
            let _ = writeln!(
                out,
                "# TYPE sota_github_retries_total counter\nsota_github_retries_total {}",
                load(&gh.retries)
            );
            let _ = writeln!(out, "# HELP sota_github_rate_limit_waits_total Waits imposed by GitHub rate limits.\n# TYPE sota_github_rate_limit_waits_total counter\nsota_github_rate_limit_waits_total {}", load(&gh.rate_limit_waits));
            let _ = writeln!(out, "# TYPE sota_github_rate_limit_wait_seconds_total counter\nsota_github_rate_limit_wait_seconds_total {:.3}", load(&gh.rate_limit_wait_ms) as f64 / 1000.0);
            let _ = writeln!(
                out,
                "# TYPE sota_github_pacer_waits_total counter\nsota_github_pacer_waits_total {}",
                load(&gh.pacer_waits)
            );
        }
        if let Some(gauge) = self
            .phases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            out.push_str(
                "# HELP sota_campaigns Campaigns by phase.\n# TYPE sota_campaigns gauge\n",
            );
            for (phase, n) in gauge() {
                let _ = writeln!(out, "sota_campaigns{{phase=\"{}\"}} {n}", escape(&phase));
            }
        }
        out
    }
}

/// Webhook events the App subscribes to or handles: the only event label values.
pub const KNOWN_EVENTS: [&str; 10] = [
    "issues",
    "issue_comment",
    "pull_request",
    "workflow_run",
    "workflow_job",
    "check_run",
    "check_suite",
    "installation",
    "installation_repositories",
    "ping",
];

/// The label value for an event name: itself when known, else `other`.
pub fn event_label(event: &str) -> &'static str {
    KNOWN_EVENTS
        .iter()
        .find(|k| **k == event)
        .copied()
        .unwrap_or("other")
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let m = ServiceMetrics::default();
        m.delivery("issues", DeliveryOutcome::Queued);
        m.delivery("issues", DeliveryOutcome::Queued);
        m.delivery("x\"y", DeliveryOutcome::BadSignature);
        for i in 0..20_000 {
            m.delivery(&format!("made-up-{i}"), DeliveryOutcome::BadSignature);
        }
        m.attach_phase_gauge(Arc::new(|| vec![("baseline".into(), 2)]));
        m.attach_github(Arc::new(ClientMetrics::default()));
        let text = m.render(&[("queued".into(), 3)]);
        assert!(
            text.contains("sota_webhook_deliveries_total{event=\"issues\",outcome=\"queued\"} 2"),
            "{text}"
        );
        // Unknown (unauthenticated) event names share one series.
        assert!(
            text.contains("event=\"other\",outcome=\"bad_signature\"} 20001"),
            "{text}"
        );
        assert_eq!(text.matches("sota_webhook_deliveries_total{").count(), 2);
        assert!(text.contains("sota_jobs{state=\"queued\"} 3"));
        assert!(text.contains("sota_jobs{state=\"dead\"} 0"));
        assert!(text.contains("sota_campaigns{phase=\"baseline\"} 2"));
        assert!(text.contains("sota_github_rate_limit_waits_total 0"));
    }
}
