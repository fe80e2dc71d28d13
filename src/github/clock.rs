//! Time as an injectable port, so rate-limit waits (a minute or more) and token expiry can be
//! tested without waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

/// Wall clock plus an async sleep.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Waits `duration` (or pretends to, in tests).
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock: system time and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock for tests: `sleep` returns at once, advances the time and records the duration.
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    now: DateTime<Utc>,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// Starts at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            state: Arc::new(Mutex::new(ManualState {
                now: start,
                sleeps: Vec::new(),
            })),
        }
    }

    /// Moves the time forward without recording a sleep.
    pub fn advance(&self, by: Duration) {
        let mut state = lock(&self.state);
        state.now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero());
    }

    /// Every duration passed to `sleep`, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        lock(&self.state).sleeps.clone()
    }
}

fn lock(state: &Mutex<ManualState>) -> std::sync::MutexGuard<'_, ManualState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        lock(&self.state).now
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let mut state = lock(&self.state);
        state.now += chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::zero());
        state.sleeps.push(duration);
        Box::pin(async {})
    }
}
