//! The simulated engine's continuous-batching scheduler, in simulated time (pure).
//!
//! Each step either prefills waiting requests (chunked, prefill first, as SGLang's default
//! policy does) or runs one decode step over every running request. A request's first token
//! comes out of the step that finishes its prompt; every decode step adds one token to each
//! running request. TTFT and inter-token latency therefore emerge from the schedule and the
//! profile's cost model rather than being drawn from a distribution.

use super::profile::EngineProfile;
use std::collections::VecDeque;

/// Scheduler limits in force for one simulated launch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerLimits {
    pub max_running_requests: u32,
    pub chunked_prefill_size: u32,
    /// KV-cache capacity in tokens; a request reserves prompt + max output tokens.
    pub kv_capacity_tokens: u64,
}

/// A request as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
struct Slot {
    id: u64,
    prompt_len: u64,
    max_new: u64,
    prefilled: u64,
    generated: u64,
}

impl Slot {
    fn context(&self) -> u64 {
        self.prefilled + self.generated
    }
    fn reserve(&self) -> u64 {
        self.prompt_len + self.max_new
    }
}

/// What kind of work a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Prefill,
    Decode,
}

/// One scheduler step: its cost and the tokens it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    /// Simulated duration in microseconds (GPU time plus exposed scheduler overhead).
    pub cost_us: f64,
    /// Requests that received one token in this step: (request id, tokens generated so far).
    pub emitted: Vec<(u64, u64)>,
    /// Requests that are complete after this step.
    pub finished: Vec<u64>,
    /// Requests rejected because they can never fit in the KV cache.
    pub rejected: Vec<u64>,
    /// Number of sequences in the step (prefill: requests touched; decode: batch).
    pub batch: usize,
    /// New tokens processed (prefill) or context tokens read (decode).
    pub tokens: u64,
}

/// Continuous-batching scheduler state.
#[derive(Debug, Clone)]
pub struct Scheduler {
    limits: SchedulerLimits,
    waiting: VecDeque<Slot>,
    /// Admitted requests whose prompt is not fully prefilled yet.
    prefilling: Vec<Slot>,
    running: Vec<Slot>,
    reserved_tokens: u64,
}

impl Scheduler {
    pub fn new(limits: SchedulerLimits) -> Scheduler {
        Scheduler {
            limits,
            waiting: VecDeque::new(),
            prefilling: Vec::new(),
            running: Vec::new(),
            reserved_tokens: 0,
        }
    }

    /// Queues a request (prompt and output lengths of at least 1 token are enforced).
    pub fn submit(&mut self, id: u64, prompt_len: u64, max_new: u64) {
        self.waiting.push_back(Slot {
            id,
            prompt_len: prompt_len.max(1),
            max_new: max_new.max(1),
            prefilled: 0,
            generated: 0,
        });
    }

    /// Drops a request wherever it is (client went away), freeing its KV reservation.
    pub fn cancel(&mut self, id: u64) {
        self.waiting.retain(|s| s.id != id);
        for list in [&mut self.prefilling, &mut self.running] {
            if let Some(pos) = list.iter().position(|s| s.id == id) {
                let slot = list.remove(pos);
                self.reserved_tokens = self.reserved_tokens.saturating_sub(slot.reserve());
            }
        }
    }

    /// True when nothing is queued or running.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.prefilling.is_empty() && self.running.is_empty()
    }

    /// Requests currently holding a batch slot.
    pub fn active(&self) -> usize {
        self.prefilling.len() + self.running.len()
    }

    /// Plans and applies the next step; `None` when idle.
    pub fn step(&mut self, profile: &EngineProfile) -> Option<Step> {
        let mut rejected = Vec::new();
        self.admit(&mut rejected);
        if !self.prefilling.is_empty() {
            return Some(self.prefill_step(profile, rejected));
        }
        if !self.running.is_empty() {
            return Some(self.decode_step(profile, rejected));
        }
        if rejected.is_empty() {
            None
        } else {
            Some(Step {
                kind: StepKind::Prefill,
                cost_us: 0.0,
                emitted: Vec::new(),
                finished: Vec::new(),
                rejected,
                batch: 0,
                tokens: 0,
            })
        }
    }

    fn admit(&mut self, rejected: &mut Vec<u64>) {
        while let Some(front) = self.waiting.front() {
            if front.reserve() > self.limits.kv_capacity_tokens {
                if let Some(slot) = self.waiting.pop_front() {
                    rejected.push(slot.id);
                }
                continue;
            }
            let fits_batch = self.active() < self.limits.max_running_requests as usize;
            let fits_kv = self.reserved_tokens + front.reserve() <= self.limits.kv_capacity_tokens;
            if !(fits_batch && fits_kv) {
                break;
            }
            if let Some(slot) = self.waiting.pop_front() {
                self.reserved_tokens += slot.reserve();
                self.prefilling.push(slot);
            }
        }
    }

    fn prefill_step(&mut self, profile: &EngineProfile, rejected: Vec<u64>) -> Step {
        let mut budget = self.limits.chunked_prefill_size.max(1) as u64;
        let mut tokens = 0u64;
        let mut token_ctx_k = 0.0f64;
        let mut touched = 0usize;
        for slot in self.prefilling.iter_mut() {
            if budget == 0 {
                break;
            }
            let take = (slot.prompt_len - slot.prefilled).min(budget);
            // Attention over the chunk: token j attends to prefilled + j + 1 tokens.
            let start = slot.prefilled as f64;
            let n = take as f64;
            token_ctx_k += (n * start + n * (n + 1.0) / 2.0) / 1000.0;
            slot.prefilled += take;
            budget -= take;
            tokens += take;
            touched += 1;
        }
        let mut emitted = Vec::new();
        let mut finished = Vec::new();
        let mut still = Vec::new();
        for mut slot in std::mem::take(&mut self.prefilling) {
            if slot.prefilled >= slot.prompt_len {
                slot.generated = 1;
                emitted.push((slot.id, 1));
                if slot.generated >= slot.max_new {
                    finished.push(slot.id);
                    self.reserved_tokens = self.reserved_tokens.saturating_sub(slot.reserve());
                } else {
                    self.running.push(slot);
                }
            } else {
                still.push(slot);
            }
        }
        self.prefilling = still;
        Step {
            kind: StepKind::Prefill,
            cost_us: profile.exposed_overhead_us() + profile.prefill_gpu_us(tokens, token_ctx_k),
            emitted,
            finished,
            rejected,
            batch: touched,
            tokens,
        }
    }

    fn decode_step(&mut self, profile: &EngineProfile, rejected: Vec<u64>) -> Step {
        let batch = self.running.len() as u64;
        let context: u64 = self.running.iter().map(Slot::context).sum();
        let cost_us = profile.exposed_overhead_us() + profile.decode_gpu_us(batch, context);
        let mut emitted = Vec::new();
        let mut finished = Vec::new();
        let mut still = Vec::new();
        for mut slot in std::mem::take(&mut self.running) {
            slot.generated += 1;
            emitted.push((slot.id, slot.generated));
            if slot.generated >= slot.max_new {
                finished.push(slot.id);
                self.reserved_tokens = self.reserved_tokens.saturating_sub(slot.reserve());
            } else {
                still.push(slot);
            }
        }
        self.running = still;
        Step {
            kind: StepKind::Decode,
            cost_us,
            emitted,
            finished,
            rejected,
            batch: batch as usize,
            tokens: context,
        }
    }
}

/// Per-request timing from running a fixed set of requests (all arriving at time 0) to
/// completion: the analytic ground truth the benchmark client is checked against.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedTiming {
    pub ttft_us: f64,
    pub e2e_us: f64,
    pub output_tokens: u64,
}

/// Runs requests `(prompt_len, max_new)` that all arrive at once and returns their timing.
pub fn simulate_batch(
    profile: &EngineProfile,
    limits: SchedulerLimits,
    requests: &[(u64, u64)],
) -> Vec<SimulatedTiming> {
    let mut sched = Scheduler::new(limits);
    let mut out: Vec<SimulatedTiming> = requests
        .iter()
        .map(|_| SimulatedTiming {
            ttft_us: f64::NAN,
            e2e_us: f64::NAN,
            output_tokens: 0,
        })
        .collect();
    for (i, (p, o)) in requests.iter().enumerate() {
        sched.submit(i as u64, *p, *o);
    }
    let mut now = 0.0;
    while let Some(step) = sched.step(profile) {
        now += step.cost_us;
        for (id, n) in step.emitted {
            if let Some(t) = out.get_mut(id as usize) {
                if n == 1 {
                    t.ttft_us = now;
                }
                t.output_tokens = n;
                t.e2e_us = now;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::profile::parse_profile;
    use std::path::Path;

    fn flat_profile() -> EngineProfile {
        // One kernel, one layer: prefill 10 us/token, decode 1000 us/step + 100 us/seq.
        parse_profile(
            r#"
name: simulated-test
framework: sglang
layers: 1
scheduler: {max_running_requests: 4, chunked_prefill_size: 100, overhead_us_per_step: 50}
memory: {gpu_mem_gb: 80, weights_gb: 16, kv_bytes_per_token: 131072, default_mem_fraction: 0.85, max_mem_fraction: 0.95}
layer_kernels:
  - {name: k, prefill_us_per_token: 10, decode_us_per_step: 1000, decode_us_per_seq: 100}
"#,
            Path::new("t.yaml"),
        )
        .unwrap()
    }

    fn limits(max_running: u32, chunk: u32, kv: u64) -> SchedulerLimits {
        SchedulerLimits {
            max_running_requests: max_running,
            chunked_prefill_size: chunk,
            kv_capacity_tokens: kv,
        }
    }

    #[test]
    fn single_request_timing_is_analytic() {
        let p = flat_profile();
        let t = simulate_batch(&p, limits(4, 1000, 1_000_000), &[(100, 5)]);
        assert_eq!(t[0].ttft_us, 50.0 + 100.0 * 10.0);
        assert_eq!(t[0].output_tokens, 5);
        // 4 decode steps of 50 + 1000 + 100.
        assert_eq!(t[0].e2e_us, 1050.0 + 4.0 * 1150.0);
    }

    #[test]
    fn chunked_prefill_splits_long_prompts() {
        let p = flat_profile();
        let t = simulate_batch(&p, limits(4, 100, 1_000_000), &[(250, 1)]);
        // Three prefill steps (100, 100, 50 tokens), each paying the overhead.
        assert_eq!(t[0].ttft_us, 3.0 * 50.0 + 250.0 * 10.0);
    }

    #[test]
    fn max_running_requests_queues_the_rest() {
        let p = flat_profile();
        let t = simulate_batch(&p, limits(1, 1000, 1_000_000), &[(10, 3), (10, 3)]);
        assert!(t[1].ttft_us > t[0].e2e_us, "{t:?}");
        let t2 = simulate_batch(&p, limits(2, 1000, 1_000_000), &[(10, 3), (10, 3)]);
        assert!(t2[1].e2e_us < t[1].e2e_us);
    }

    #[test]
    fn kv_capacity_limits_admission_and_rejects_oversized() {
        let p = flat_profile();
        let mut s = Scheduler::new(limits(8, 1000, 20));
        s.submit(1, 10, 5);
        s.submit(2, 10, 5);
        s.submit(3, 100, 5);
        let first = s.step(&p).unwrap();
        assert_eq!(first.batch, 1, "only one request fits 20 KV tokens");
        let mut rejected = first.rejected.clone();
        while let Some(step) = s.step(&p) {
            rejected.extend(step.rejected);
        }
        assert_eq!(rejected, vec![3]);
        assert!(s.is_idle());
    }

    #[test]
    fn cancel_frees_the_reservation() {
        let p = flat_profile();
        let mut s = Scheduler::new(limits(8, 1000, 20));
        s.submit(1, 10, 5);
        s.step(&p);
        s.cancel(1);
        assert!(s.is_idle());
        s.submit(2, 10, 10);
        assert_eq!(s.step(&p).unwrap().batch, 1);
    }
}
