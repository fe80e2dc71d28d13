//! Test helpers for the profile tests: fixture paths and an independent reader of traces.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

/// The real torch-profiler traces under `tests/fixtures/traces` (provenance in its README).
pub fn traces_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/traces"
    ))
}

pub fn trace(name: &str) -> PathBuf {
    traces_dir().join(name)
}

pub fn ncu_fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ncu")).join(name)
}

/// Decompressed JSON text of a fixture.
pub fn trace_text(name: &str) -> Vec<u8> {
    let f = std::fs::File::open(trace(name)).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// All `traceEvents` via serde_json::Value (independent of the streaming reader).
pub fn events(name: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&trace_text(name)).unwrap();
    v["traceEvents"].as_array().unwrap().clone()
}

/// (ts_us, dur_us) of GPU kernels, memsets and memcpys.
pub fn gpu_ops(evs: &[serde_json::Value]) -> Vec<(f64, f64)> {
    evs.iter()
        .filter(|e| e["ph"] == "X")
        .filter(|e| {
            matches!(
                e["cat"].as_str(),
                Some("kernel" | "gpu_memset" | "gpu_memcpy")
            )
        })
        .map(|e| (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap()))
        .collect()
}

/// GPU annotation ranges whose name starts with `prefix`.
pub fn gpu_ranges(evs: &[serde_json::Value], prefix: &str) -> Vec<(f64, f64)> {
    evs.iter()
        .filter(|e| e["cat"] == "gpu_user_annotation")
        .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .map(|e| {
            let ts = e["ts"].as_f64().unwrap();
            (ts, ts + e["dur"].as_f64().unwrap())
        })
        .collect()
}

/// The fixture's JSON text without its `user_annotation` / `gpu_user_annotation` events,
/// as SGLang writes traces (no range around a forward pass). Cached: several tests strip
/// the same fixture.
pub fn stripped_text(name: &str) -> std::sync::Arc<Vec<u8>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().unwrap().get(name) {
        return t.clone();
    }
    let mut v: serde_json::Value = serde_json::from_slice(&trace_text(name)).unwrap();
    let evs = v["traceEvents"].as_array_mut().unwrap();
    evs.retain(|e| {
        !matches!(
            e["cat"].as_str(),
            Some("user_annotation" | "gpu_user_annotation")
        )
    });
    let text = Arc::new(serde_json::to_vec(&v).unwrap());
    cache.lock().unwrap().insert(name.to_string(), text.clone());
    text
}

/// A timeline read from JSON text as `load_timeline` reads the file `name`.
pub fn timeline_of(text: &[u8], name: &str) -> sota_bot::profile::Timeline {
    let rec = sota_bot::profile::ingest::read_trace_bytes(text)
        .map_err(|_| ())
        .unwrap();
    let path = trace(name);
    let stage = sota_bot::profile::stage::stage_from_path(&path);
    sota_bot::profile::Timeline::from_records(rec, stage, &path.display().to_string())
}

/// Every trace under `tests/fixtures/traces`, as names relative to it.
pub fn all_trace_fixtures() -> Vec<String> {
    let root = traces_dir();
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                out.push(
                    p.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}
