//! Workers: claim queued jobs, run the handler, and record done / retry / dead-letter.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::Instrument;

use super::handler::{HandlerError, JobHandler};
use super::metrics::ServiceMetrics;
use super::queue::{Job, JobStore};

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub workers: usize,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt.
    pub base_retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// How often idle workers look for delayed retries.
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_attempts: 8,
            base_retry_delay: Duration::from_secs(5),
            max_retry_delay: Duration::from_secs(30 * 60),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Delay before attempt `attempts + 1`.
pub fn retry_delay(config: &WorkerConfig, attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX);
    config
        .base_retry_delay
        .checked_mul(factor)
        .unwrap_or(config.max_retry_delay)
        .min(config.max_retry_delay)
}

/// Shared worker state.
pub struct WorkerPool {
    pub store: Arc<JobStore>,
    pub handler: Arc<dyn JobHandler>,
    pub metrics: Arc<ServiceMetrics>,
    pub wake: Arc<Notify>,
    pub config: WorkerConfig,
}

impl WorkerPool {
    /// Spawns the workers; they run until the runtime stops.
    pub fn spawn(self: Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.config.workers.max(1))
            .map(|n| {
                let pool = self.clone();
                tokio::spawn(async move { pool.run(n).await })
            })
            .collect()
    }

    async fn claim(&self) -> Option<Job> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.claim()).await {
            Ok(Ok(job)) => job,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "claiming a job failed");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "claim task failed");
                None
            }
        }
    }

    async fn run(&self, worker: usize) {
        loop {
            let Some(job) = self.claim().await else {
                let _ = tokio::time::timeout(self.config.poll_interval, self.wake.notified()).await;
                continue;
            };
            let span = tracing::info_span!("job", worker, job = job.id, delivery = %job.delivery_id, event = %job.event, attempt = job.attempts);
            self.process(job).instrument(span).await;
        }
    }

    /// Runs one job and records its outcome.
    pub async fn process(&self, job: Job) {
        let outcome = self.handler.handle(&job).await;
        let store = self.store.clone();
        let id = job.id;
        let (result, recorded) = match outcome {
            Ok(()) => {
                tracing::info!("job done");
                (
                    "done",
                    tokio::task::spawn_blocking(move || store.complete(id)).await,
                )
            }
            Err(HandlerError::Retryable(msg)) if job.attempts < self.config.max_attempts => {
                let delay = retry_delay(&self.config, job.attempts);
                tracing::warn!(error = %msg, ?delay, "job failed; will retry");
                (
                    "retry",
                    tokio::task::spawn_blocking(move || store.retry_later(id, &msg, delay)).await,
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "job dead-lettered");
                let msg = e.to_string();
                (
                    "dead",
                    tokio::task::spawn_blocking(move || store.dead_letter(id, &msg)).await,
                )
            }
        };
        self.metrics.job_finished(&job.event, result);
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "recording the job outcome failed"),
            Err(e) => tracing::error!(error = %e, "recording task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_caps() {
        let c = WorkerConfig::default();
        assert_eq!(retry_delay(&c, 1), Duration::from_secs(5));
        assert_eq!(retry_delay(&c, 3), Duration::from_secs(20));
        assert_eq!(retry_delay(&c, 40), c.max_retry_delay);
    }
}
