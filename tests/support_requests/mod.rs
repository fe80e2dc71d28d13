//! The campaign inputs of the tests that run `sota-bot local run` on the simulator lane:
//! one request shape (Llama 3.1 8B, bf16, one H100, SGLang against vLLM, a random workload
//! with one chat scenario, ranked by output token throughput) whose size, SLA and round
//! limit each story picks, and the plan that benchmarks it.
#![allow(dead_code)] // each test crate uses part of this

/// The knobs the stories vary.
#[derive(Debug, Clone, Copy)]
pub struct SimRequest {
    pub num_prompts: u32,
    pub input_len: u32,
    pub output_len: u32,
    pub max_p50_ttft_ms: u32,
    pub max_p50_tpot_ms: u32,
    pub max_rounds: u32,
}

impl SimRequest {
    /// Four 512-token prompts with 64 output tokens, an SLA loose enough for a loaded
    /// machine, two rounds.
    pub const SMALL: SimRequest = SimRequest {
        num_prompts: 4,
        input_len: 512,
        output_len: 64,
        max_p50_ttft_ms: 20000,
        max_p50_tpot_ms: 500,
        max_rounds: 2,
    };

    /// The request file.
    pub fn request(&self) -> String {
        format!(
            "\
model: meta-llama/Llama-3.1-8B-Instruct
precision: bf16
gpu: {{model: H100, count: 1}}
frameworks:
  only: [vllm]
workload:
  dataset: random
  num_prompts: {}
  scenarios:
    - {{name: chat, input_len: {}, output_len: {}}}
sla: {{max_p50_ttft_ms: {}, max_p50_tpot_ms: {}, min_success_rate: 0.99}}
max_rounds: {}
autonomy: autonomous
primary_metric: output_token_throughput
",
            self.num_prompts,
            self.input_len,
            self.output_len,
            self.max_p50_ttft_ms,
            self.max_p50_tpot_ms,
            self.max_rounds
        )
    }

    /// The plan: one candidate per framework on one GPU, the built-in benchmark client, the
    /// request's workload.
    pub fn plan(&self) -> String {
        format!(
            "\
model: meta-llama/Llama-3.1-8B-Instruct
tp_size: 1
port: 31000
bench_client: builtin
num_prompts: {}
scenarios:
  - {{name: chat, input_len: {}, output_len: {}}}
frameworks:
  sglang: {{}}
  vllm: {{}}
",
            self.num_prompts, self.input_len, self.output_len
        )
    }
}
