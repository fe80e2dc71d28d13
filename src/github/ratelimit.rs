//! GitHub's retry and rate-limit rules as pure functions, plus the content-creation pacer.
//!
//! Rules (GitHub REST docs, "rate limits"): on 403/429 honour `retry-after`; else when
//! `x-ratelimit-remaining` is 0 wait until `x-ratelimit-reset`; else wait at least a minute and
//! back off exponentially. 5xx and transport failures are retried with a shorter backoff.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use super::clock::Clock;

/// The response facts that decide whether and how long to wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseFacts {
    pub status: u16,
    /// `retry-after` in seconds.
    pub retry_after: Option<u64>,
    /// `x-ratelimit-remaining`.
    pub remaining: Option<u64>,
    /// `x-ratelimit-reset` (unix seconds).
    pub reset: Option<i64>,
    /// The error message mentions a rate limit (GitHub's secondary-limit 403s do).
    pub body_mentions_rate_limit: bool,
}

/// Why a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// A primary or secondary rate limit.
    RateLimited,
    /// A 5xx answer.
    ServerError,
    /// A timeout or connection failure.
    Transport,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    Retry {
        after: Duration,
        reason: RetryReason,
    },
    GiveUp,
}

/// Retry limits.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, first one included.
    pub max_attempts: u32,
    /// First backoff for 5xx and transport errors; doubles each attempt.
    pub base_backoff: Duration,
    /// Cap for 5xx and transport backoff.
    pub max_backoff: Duration,
    /// Minimum wait for a rate limit without `retry-after` or reset; doubles each attempt.
    pub rate_limit_floor: Duration,
    /// Cap for rate-limit waits.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            rate_limit_floor: Duration::from_secs(60),
            max_rate_limit_wait: Duration::from_secs(60 * 60),
        }
    }
}

/// True when a response is a rate-limit refusal rather than a permission error.
pub fn is_rate_limited(facts: &ResponseFacts) -> bool {
    facts.status == 429
        || (facts.status == 403
            && (facts.retry_after.is_some()
                || facts.remaining == Some(0)
                || facts.body_mentions_rate_limit))
}

fn doubled(base: Duration, attempt: u32, cap: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// Decides the wait after attempt number `attempt` (1-based) got `facts`.
pub fn decide(
    policy: &RetryPolicy,
    facts: &ResponseFacts,
    attempt: u32,
    now: DateTime<Utc>,
) -> RetryDecision {
    if attempt >= policy.max_attempts {
        return RetryDecision::GiveUp;
    }
    if is_rate_limited(facts) {
        let wait = if let Some(secs) = facts.retry_after {
            Duration::from_secs(secs)
        } else if let (Some(0), Some(reset)) = (facts.remaining, facts.reset) {
            // One extra second: the reset instant is inclusive on GitHub's side.
            Duration::from_secs(u64::try_from(reset - now.timestamp()).unwrap_or(0) + 1)
        } else {
            doubled(policy.rate_limit_floor, attempt, policy.max_rate_limit_wait)
        };
        return RetryDecision::Retry {
            after: wait.min(policy.max_rate_limit_wait),
            reason: RetryReason::RateLimited,
        };
    }
    if (500..600).contains(&facts.status) {
        return RetryDecision::Retry {
            after: doubled(policy.base_backoff, attempt, policy.max_backoff),
            reason: RetryReason::ServerError,
        };
    }
    RetryDecision::GiveUp
}

/// The wait after a transport failure (timeout, refused connection) on attempt `attempt`.
pub fn decide_transport(policy: &RetryPolicy, attempt: u32) -> RetryDecision {
    if attempt >= policy.max_attempts {
        return RetryDecision::GiveUp;
    }
    RetryDecision::Retry {
        after: doubled(policy.base_backoff, attempt, policy.max_backoff),
        reason: RetryReason::Transport,
    }
}

/// Spaces content-creating requests (POST/PATCH/PUT/DELETE) so no more than about 80 go out per
/// minute, GitHub's secondary limit.
pub struct Pacer {
    interval: Duration,
    next_slot: Mutex<Option<DateTime<Utc>>>,
    clock: Arc<dyn Clock>,
}

impl Pacer {
    /// `per_minute` requests a minute at most; 0 disables pacing.
    pub fn new(per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        let interval = if per_minute == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(60) / per_minute
        };
        Self {
            interval,
            next_slot: Mutex::new(None),
            clock,
        }
    }

    /// Waits for the next free slot; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        if self.interval.is_zero() {
            return Duration::ZERO;
        }
        let now = self.clock.now();
        let wait = {
            let mut next = self.next_slot.lock().await;
            let slot = match *next {
                Some(slot) if slot > now => slot,
                _ => now,
            };
            let step =
                chrono::Duration::from_std(self.interval).unwrap_or(chrono::Duration::zero());
            *next = Some(slot + step);
            (slot - now).to_std().unwrap_or(Duration::ZERO)
        };
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::clock::ManualClock;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
    }

    fn facts(status: u16) -> ResponseFacts {
        ResponseFacts {
            status,
            ..Default::default()
        }
    }

    #[test]
    fn retry_after_wins() {
        let f = ResponseFacts {
            retry_after: Some(7),
            remaining: Some(0),
            reset: Some(t0().timestamp() + 100),
            ..facts(403)
        };
        assert_eq!(
            decide(&RetryPolicy::default(), &f, 1, t0()),
            RetryDecision::Retry {
                after: Duration::from_secs(7),
                reason: RetryReason::RateLimited
            }
        );
    }

    #[test]
    fn remaining_zero_waits_until_reset() {
        let f = ResponseFacts {
            remaining: Some(0),
            reset: Some(t0().timestamp() + 100),
            ..facts(403)
        };
        assert_eq!(
            decide(&RetryPolicy::default(), &f, 1, t0()),
            RetryDecision::Retry {
                after: Duration::from_secs(101),
                reason: RetryReason::RateLimited
            }
        );
    }

    #[test]
    fn bare_429_waits_a_minute_then_doubles() {
        let p = RetryPolicy::default();
        let d1 = decide(&p, &facts(429), 1, t0());
        let d2 = decide(&p, &facts(429), 2, t0());
        assert_eq!(
            d1,
            RetryDecision::Retry {
                after: Duration::from_secs(60),
                reason: RetryReason::RateLimited
            }
        );
        assert_eq!(
            d2,
            RetryDecision::Retry {
                after: Duration::from_secs(120),
                reason: RetryReason::RateLimited
            }
        );
    }

    #[test]
    fn plain_403_and_404_are_not_retried() {
        let p = RetryPolicy::default();
        assert_eq!(decide(&p, &facts(403), 1, t0()), RetryDecision::GiveUp);
        assert_eq!(decide(&p, &facts(404), 1, t0()), RetryDecision::GiveUp);
        let secondary = ResponseFacts {
            body_mentions_rate_limit: true,
            ..facts(403)
        };
        assert!(matches!(
            decide(&p, &secondary, 1, t0()),
            RetryDecision::Retry { .. }
        ));
    }

    #[test]
    fn server_errors_back_off_and_stop() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, &facts(502), 3, t0()),
            RetryDecision::Retry {
                after: Duration::from_secs(2),
                reason: RetryReason::ServerError
            }
        );
        assert_eq!(decide(&p, &facts(502), 5, t0()), RetryDecision::GiveUp);
        assert_eq!(
            decide(&p, &facts(500), 200, t0()),
            RetryDecision::GiveUp,
            "huge attempt counts must not overflow"
        );
    }

    #[tokio::test]
    async fn pacer_spaces_requests() {
        let clock = ManualClock::new(t0());
        let pacer = Pacer::new(80, Arc::new(clock.clone()));
        assert_eq!(pacer.acquire().await, Duration::ZERO);
        assert_eq!(pacer.acquire().await, Duration::from_millis(750));
        clock.advance(Duration::from_secs(10));
        assert_eq!(pacer.acquire().await, Duration::ZERO);
    }
}
