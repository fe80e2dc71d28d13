//! SIMULATED torch-profiler traces (`sota-bot sim trace`).
//!
//! Writes a Chrome trace in the shape `torch.profiler`'s `export_chrome_trace` produces (the
//! real fixtures under `fixtures/traces/` were the reference): `cpu_op` aten ops, each
//! launching a kernel through `cudaLaunchKernel` (linked by `correlation` and `External id`,
//! with `ac2g` flow events), `kernel` events on GPU stream 7, `user_annotation` /
//! `gpu_user_annotation` ranges (`prefill_forward`, `decode_step_<i>`) and `python_function`
//! module frames (`nn.Module: LlamaDecoderLayer_0`). Kernel durations come from the same
//! cost model as the simulated server, so trace analysis reflects the agent's patches, and
//! the exposed scheduler overhead shows up as GPU idle time between decode steps.

use super::profile::{kernel_decode_us, kernel_prefill_us, EngineProfile, KernelCost};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// Decode traces hold at most this many steps (a real profile also captures a few steps).
pub const MAX_DECODE_STEPS: u64 = 16;

const CPU_PID: i64 = 4242;
const GPU_STREAM: i64 = 7;
/// CPU time of one `cudaLaunchKernel`, in microseconds.
const LAUNCH_US: f64 = 4.0;
/// CPU time of the aten op around the launch.
const OP_US: f64 = 7.0;

/// Which forward pass to trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Prefill,
    Decode,
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Stage, String> {
        match s {
            "prefill" => Ok(Stage::Prefill),
            "decode" => Ok(Stage::Decode),
            other => Err(format!(
                "unknown stage `{other}`: expected prefill or decode"
            )),
        }
    }
}

/// The traced workload shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRequest {
    pub stage: Stage,
    pub batch: u64,
    pub input_len: u64,
    pub output_len: u64,
}

/// Why a trace could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("invalid trace request: {0}")]
    Invalid(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

struct Builder<'a> {
    profile: &'a EngineProfile,
    events: Vec<Value>,
    cpu_ts: f64,
    gpu_ts: f64,
    next_corr: u64,
    next_ext: u64,
    next_py: u64,
    module_counts: std::collections::HashMap<String, u64>,
}

/// Builds the whole trace document (pure).
pub fn build_trace(profile: &EngineProfile, req: &TraceRequest) -> Result<Value, TraceError> {
    if req.batch == 0 || req.input_len == 0 {
        return Err(TraceError::Invalid(
            "batch and input_len must be at least 1".into(),
        ));
    }
    if req.stage == Stage::Decode && req.output_len == 0 {
        return Err(TraceError::Invalid(
            "a decode trace needs output_len >= 1".into(),
        ));
    }
    let base_ts = 5_000_000_000_000.0;
    let mut b = Builder {
        profile,
        events: Vec::new(),
        cpu_ts: base_ts + 100.0,
        gpu_ts: base_ts + 100.0,
        next_corr: 16,
        next_ext: 4,
        next_py: 1,
        module_counts: Default::default(),
    };
    match req.stage {
        Stage::Prefill => {
            let tokens = req.batch * req.input_len;
            let n = req.input_len as f64;
            let token_ctx_k = req.batch as f64 * n * (n + 1.0) / 2.0 / 1000.0;
            b.forward("prefill_forward", vec![req.batch, req.input_len], |k| {
                kernel_prefill_us(k, tokens, token_ctx_k)
            });
        }
        Stage::Decode => {
            let steps = req.output_len.min(MAX_DECODE_STEPS);
            for i in 0..steps {
                let context = req.batch * (req.input_len + i);
                b.scheduler_gap();
                b.forward(&format!("decode_step_{i}"), vec![req.batch, 1], |k| {
                    kernel_decode_us(k, req.batch, context)
                });
            }
        }
    }
    let end = b.cpu_ts.max(b.gpu_ts);
    let mut events = metadata_events(base_ts);
    events.append(&mut b.events);
    events.push(json!({"ph": "X", "cat": "Trace", "ts": base_ts, "dur": end - base_ts, "pid": "Spans", "tid": "PyTorch Profiler", "name": "PyTorch Profiler (0)", "args": {"Op count": 0}}));
    Ok(json!({
        "schemaVersion": 1,
        "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3 (simulated)", "totalGlobalMem": 85_520_809_984u64, "computeMajor": 9, "computeMinor": 0, "maxThreadsPerBlock": 1024, "maxThreadsPerMultiprocessor": 2048, "regsPerBlock": 65536, "warpSize": 32, "sharedMemPerBlock": 49152, "numSms": 132}],
        "record_shapes": 1,
        "with_modules": 1,
        "sota_bot_simulated": true,
        "simulated_profile": profile.name,
        "displayTimeUnit": "ms",
        "baseTimeNanoseconds": 1_790_000_000_000_000_000u64,
        "traceEvents": events,
        "traceName": format!("sota-bot simulated trace ({})", profile.name),
    }))
}

fn metadata_events(ts: f64) -> Vec<Value> {
    vec![
        json!({"name": "process_name", "ph": "M", "ts": ts, "pid": CPU_PID, "tid": 0, "args": {"name": "python3"}}),
        json!({"name": "process_labels", "ph": "M", "ts": ts, "pid": CPU_PID, "tid": 0, "args": {"labels": "CPU"}}),
        json!({"name": "process_name", "ph": "M", "ts": ts, "pid": 0, "tid": 0, "args": {"name": "python3"}}),
        json!({"name": "process_labels", "ph": "M", "ts": ts, "pid": 0, "tid": 0, "args": {"labels": "GPU 0"}}),
        json!({"name": "thread_name", "ph": "M", "ts": ts, "pid": 0, "tid": GPU_STREAM, "args": {"name": format!("stream {GPU_STREAM} ")}}),
        json!({"name": "thread_name", "ph": "M", "ts": ts, "pid": CPU_PID, "tid": CPU_PID, "args": {"name": format!("thread {CPU_PID} (python3)")}}),
    ]
}

impl Builder<'_> {
    fn module_name(&mut self, class: &str) -> String {
        let n = self.module_counts.entry(class.to_string()).or_insert(0);
        let name = format!("nn.Module: {class}_{n}");
        *n += 1;
        name
    }

    fn py_frame(&mut self, name: String, ts: f64, dur: f64, parent: Option<u64>) -> u64 {
        let id = self.next_py;
        self.next_py += 1;
        self.events.push(json!({"ph": "X", "cat": "python_function", "name": name, "pid": CPU_PID, "tid": CPU_PID,
            "ts": ts, "dur": dur, "args": {"Python parent id": parent, "Python id": id, "Python module id": 0}}));
        id
    }

    /// Exposed scheduler time before a decode step: CPU busy, GPU idle.
    fn scheduler_gap(&mut self) {
        let gap = self.profile.exposed_overhead_us();
        if gap <= 0.0 {
            return;
        }
        self.cpu_ts = self.cpu_ts.max(self.gpu_ts);
        self.py_frame(
            "sglang/srt/managers/scheduler.py(1120): get_next_batch_to_run".into(),
            self.cpu_ts,
            gap,
            None,
        );
        self.cpu_ts += gap;
    }

    fn forward(&mut self, annotation: &str, dims: Vec<u64>, cost: impl Fn(&KernelCost) -> f64) {
        let start_cpu = self.cpu_ts;
        let start_gpu = self.gpu_ts.max(start_cpu + 5.0);
        let ext = self.next_ext;
        self.next_ext += 1;
        let top_idx = self.events.len();
        let root_name = self.module_name_for_root();
        let root = self.py_frame(root_name, start_cpu, 0.0, None);
        let layer_kernels = self.profile.layer_kernels.clone();
        let layer_module = self.profile.layer_module.clone();
        for _layer in 0..self.profile.layers {
            let layer_start = self.cpu_ts;
            let layer_idx = self.events.len();
            let name = self.module_name(&layer_module);
            let layer_id = self.py_frame(name, layer_start, 0.0, Some(root));
            for k in &layer_kernels {
                self.kernel(k, &dims, cost(k), Some(layer_id));
            }
            if let Some(ev) = self.events.get_mut(layer_idx) {
                ev["dur"] = json!(self.cpu_ts - layer_start);
            }
        }
        for k in self.profile.forward_kernels.clone() {
            self.kernel(&k, &dims, cost(&k), Some(root));
        }
        if let Some(ev) = self.events.get_mut(top_idx) {
            ev["dur"] = json!(self.cpu_ts - start_cpu);
        }
        let cpu_dur = self.cpu_ts - start_cpu;
        self.events.push(json!({"ph": "X", "cat": "user_annotation", "name": annotation, "pid": CPU_PID, "tid": CPU_PID,
            "ts": start_cpu, "dur": cpu_dur, "args": {"External id": ext, "Record function id": 0}}));
        self.events.push(json!({"ph": "X", "cat": "gpu_user_annotation", "name": annotation, "pid": 0, "tid": GPU_STREAM,
            "ts": start_gpu, "dur": (self.gpu_ts - start_gpu).max(0.0), "args": {"External id": ext}}));
        // The next step's CPU work waits for this step's results (sampling needs the logits).
        self.cpu_ts = self.cpu_ts.max(self.gpu_ts) + 2.0;
    }

    fn module_name_for_root(&mut self) -> String {
        let model_class = self
            .profile
            .layer_module
            .trim_end_matches("DecoderLayer")
            .to_string()
            + "ForCausalLM";
        self.module_name(&model_class)
    }

    fn kernel(&mut self, k: &KernelCost, dims: &[u64], dur: f64, parent: Option<u64>) {
        let ext = self.next_ext;
        self.next_ext += 1;
        let corr = self.next_corr;
        self.next_corr += 1;
        let op_ts = self.cpu_ts;
        if let Some(module) = &k.module {
            let name = self.module_name(module);
            self.py_frame(name, op_ts, OP_US + 1.0, parent);
        }
        let op = k.op.clone().unwrap_or_else(|| "aten::custom_kernel".into());
        self.events.push(
            json!({"ph": "X", "cat": "cpu_op", "name": op, "pid": CPU_PID, "tid": CPU_PID,
            "ts": op_ts + 0.5, "dur": OP_US, "args": {"External id": ext, "Record function id": 0,
            "Input Dims": [dims, []], "Input type": ["c10::BFloat16", ""]}}),
        );
        let launch_ts = op_ts + 2.0;
        self.events.push(json!({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": CPU_PID, "tid": CPU_PID,
            "ts": launch_ts, "dur": LAUNCH_US, "args": {"External id": ext, "cbid": 211, "correlation": corr}}));
        let k_ts = self.gpu_ts.max(launch_ts + LAUNCH_US);
        let dur = dur.max(0.5);
        self.events.push(json!({"ph": "X", "cat": "kernel", "name": k.name, "pid": 0, "tid": GPU_STREAM,
            "ts": k_ts, "dur": dur, "args": {"External id": ext, "queued": 0, "device": 0, "context": 1,
            "stream": GPU_STREAM, "correlation": corr, "grid": [132, 1, 1], "block": [256, 1, 1]}}));
        self.events.push(json!({"ph": "s", "id": corr, "pid": CPU_PID, "tid": CPU_PID, "ts": launch_ts, "cat": "ac2g", "name": "ac2g"}));
        self.events.push(json!({"ph": "f", "id": corr, "pid": 0, "tid": GPU_STREAM, "ts": k_ts, "cat": "ac2g", "name": "ac2g", "bp": "e"}));
        self.gpu_ts = k_ts + dur;
        self.cpu_ts = op_ts + OP_US + 1.5;
    }
}

/// Writes the trace to `out` (gzip when the name ends in `.gz`).
pub fn write_trace(
    profile: &EngineProfile,
    req: &TraceRequest,
    out: &Path,
) -> Result<(), TraceError> {
    let doc = build_trace(profile, req)?;
    let io = |source| TraceError::Io {
        path: out.display().to_string(),
        source,
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let file = std::fs::File::create(out).map_err(io)?;
    let bytes = serde_json::to_vec(&doc).map_err(|e| io(std::io::Error::other(e)))?;
    if out.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(&bytes).map_err(io)?;
        gz.finish().map_err(io)?;
    } else {
        let mut f = std::io::BufWriter::new(file);
        f.write_all(&bytes).map_err(io)?;
        f.flush().map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::profile::load_profile;

    fn sglang() -> EngineProfile {
        load_profile(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim/sglang.yaml"))
            .unwrap()
    }

    fn kernels(doc: &Value) -> Vec<&Value> {
        doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"] == "kernel")
            .collect()
    }

    #[test]
    fn prefill_trace_links_ops_launches_and_kernels() {
        let p = sglang();
        let doc = build_trace(
            &p,
            &TraceRequest {
                stage: Stage::Prefill,
                batch: 4,
                input_len: 1000,
                output_len: 1,
            },
        )
        .unwrap();
        let ks = kernels(&doc);
        assert_eq!(
            ks.len(),
            p.layer_kernels.len() * 32 + p.forward_kernels.len()
        );
        let events = doc["traceEvents"].as_array().unwrap();
        let k = ks[0];
        let corr = &k["args"]["correlation"];
        let ext = &k["args"]["External id"];
        assert!(events
            .iter()
            .any(|e| e["name"] == "cudaLaunchKernel" && &e["args"]["correlation"] == corr));
        assert!(events
            .iter()
            .any(|e| e["cat"] == "cpu_op" && &e["args"]["External id"] == ext));
        assert!(events
            .iter()
            .any(|e| e["cat"] == "user_annotation" && e["name"] == "prefill_forward"));
        assert!(events.iter().any(
            |e| e["cat"] == "python_function" && e["name"] == "nn.Module: LlamaDecoderLayer_31"
        ));
        // Kernel timing comes from the cost model.
        let gemm = ks
            .iter()
            .find(|k| k["name"] == "nvjet_tst_256x128_64x4_2x1_v_bz_coopB_TNN")
            .unwrap();
        assert!((gemm["dur"].as_f64().unwrap() - 0.25 * 4000.0).abs() < 1e-6);
    }

    #[test]
    fn decode_trace_has_capped_steps_and_reflects_fusion() {
        let mut p = sglang();
        let req = TraceRequest {
            stage: Stage::Decode,
            batch: 8,
            input_len: 512,
            output_len: 100,
        };
        let doc = build_trace(&p, &req).unwrap();
        let steps = doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["cat"] == "user_annotation")
            .count();
        assert_eq!(steps as u64, MAX_DECODE_STEPS);
        let before: f64 = kernels(&doc)
            .iter()
            .map(|k| k["dur"].as_f64().unwrap())
            .sum();
        p.layer_kernels.retain(|k| k.name != "add_kernel");
        let after: f64 = kernels(&build_trace(&p, &req).unwrap())
            .iter()
            .map(|k| k["dur"].as_f64().unwrap())
            .sum();
        assert!(after < before);
    }

    #[test]
    fn gz_output_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.trace.json.gz");
        write_trace(
            &sglang(),
            &TraceRequest {
                stage: Stage::Decode,
                batch: 1,
                input_len: 1,
                output_len: 2,
            },
            &out,
        )
        .unwrap();
        let v: Value = serde_json::from_reader(flate2::read::GzDecoder::new(
            std::fs::File::open(&out).unwrap(),
        ))
        .unwrap();
        assert_eq!(v["sota_bot_simulated"], true);
    }
}
