//! Benchmark of `sota-bot profile analyze` on a large trace, against the Python reference
//! analyzer in `benches/profile_reference.py` run on the same file in the same run.
//!
//! The large trace is synthesized from the real Mixtral decode fixture: its events are
//! replicated with shifted timestamps and ids until the file reaches `PROFILE_BENCH_MB`
//! (default 300) MB of plain JSON. Reports wall time, MB/s and peak RSS of both, and the
//! ratios against the targets (>= 20x faster, peak memory < half the trace size). Each
//! side runs several times, interleaved (`PROFILE_BENCH_RUNS`, default 5;
//! `PROFILE_BENCH_PY_RUNS`, default 3), and the medians are compared. No thresholds are
//! asserted: this is a measurement, not a test.
//!
//! Run: `cargo bench --bench profile_analyze` (`PROFILE_BENCH_MB=1000` for a 1 GB trace).
//! `PROFILE_BENCH_TRACE=<trace.json[.gz]>` benchmarks a given trace instead, such as a real
//! large capture made on a GPU machine by `benches/capture/large_trace.py`.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

fn fixture() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/traces/mixtral8l_decode_b8_ctx512_16steps.trace.json.gz"
    ))
}

fn shift_id(v: &mut Value, by: i64) {
    if let Some(x) = v.as_i64() {
        *v = Value::from(x + by);
    }
}

/// Writes `copies` replicas of the fixture's events into one plain JSON trace.
fn synthesize(out: &Path, target_bytes: u64) -> std::io::Result<u64> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture())?).read_to_end(&mut text)?;
    let doc: Value = serde_json::from_slice(&text).expect("fixture is valid JSON");
    let events = doc["traceEvents"].as_array().cloned().unwrap_or_default();
    let ts = |e: &Value| e["ts"].as_f64();
    let lo = events.iter().filter_map(ts).fold(f64::INFINITY, f64::min);
    let hi = events
        .iter()
        .filter_map(|e| Some(ts(e)? + e["dur"].as_f64().unwrap_or(0.0)))
        .fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo) + 1000.0;
    let id_stride: i64 = 100_000_000;
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    w.write_all(b"{\"schemaVersion\": 1, \"traceEvents\": [\n")?;
    let mut written: u64 = 0;
    let mut first = true;
    let mut copy: i64 = 0;
    while written < target_bytes {
        for e in &events {
            if copy > 0 && e["ph"] == "M" {
                continue;
            }
            let mut e = e.clone();
            if let Some(t) = ts(&e) {
                e["ts"] = Value::from(t + span * copy as f64);
            }
            let by = id_stride * copy;
            if e.get("id").is_some() {
                shift_id(&mut e["id"], by);
            }
            if let Some(args) = e.get_mut("args").and_then(|a| a.as_object_mut()) {
                for k in [
                    "correlation",
                    "External id",
                    "Python id",
                    "Python parent id",
                ] {
                    if let Some(v) = args.get_mut(k) {
                        shift_id(v, by);
                    }
                }
            }
            let line = serde_json::to_vec(&e).expect("event serializes");
            if !first {
                w.write_all(b",\n")?;
            }
            first = false;
            w.write_all(&line)?;
            written += line.len() as u64 + 2;
        }
        copy += 1;
    }
    w.write_all(b"\n]}\n")?;
    w.flush()?;
    Ok(std::fs::metadata(out)?.len())
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

fn main() {
    let mb: u64 = std::env::var("PROFILE_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let given = std::env::var_os("PROFILE_BENCH_TRACE").map(PathBuf::from);
    let trace = match &given {
        Some(path) => plain_copy(path, &dir),
        None => dir.join(format!("profile-bench-{mb}mb.trace.json")),
    };
    if given.is_none() && !trace.is_file() {
        let t = Instant::now();
        let n = synthesize(&trace, mb * 1_000_000).expect("synthesize trace");
        eprintln!(
            "synthesized {} ({:.0} MB) in {:.1}s",
            trace.display(),
            n as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    let size = std::fs::metadata(&trace).map(|m| m.len()).unwrap_or(0);
    let size_mb = size as f64 / 1e6;

    // This box's timings vary by a third between runs: each side runs several times
    // (interleaved) and the medians are compared.
    let runs = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
            .max(1)
    };
    let (rust_runs, py_runs) = (
        runs("PROFILE_BENCH_RUNS", 5),
        runs("PROFILE_BENCH_PY_RUNS", 3),
    );
    let mut rust_walls = Vec::new();
    let mut py_walls = Vec::new();
    let mut rust_peak_mb: f64 = 0.0;
    let mut py_peak_mb: f64 = 0.0;
    for i in 0..rust_runs.max(py_runs) {
        if i < rust_runs {
            let (wall, peak) = run_sota_bot(&trace);
            rust_walls.push(wall);
            rust_peak_mb = rust_peak_mb.max(peak);
        }
        if i < py_runs {
            let (wall, peak) = run_python(&trace);
            py_walls.push(wall);
            py_peak_mb = py_peak_mb.max(peak);
        }
    }
    let (rust_wall, py_wall) = (median(&mut rust_walls), median(&mut py_walls));
    let range = |w: &[f64]| format!("{:.2}-{:.2}", w[0], w[w.len() - 1]);

    match &given {
        Some(path) => println!(
            "profile analyze benchmark ({size_mb:.0} MB plain-JSON trace {})",
            path.display()
        ),
        None => println!("profile analyze benchmark ({size_mb:.0} MB plain-JSON trace synthesized from the Mixtral decode fixture)"),
    }
    println!(
        "| analyzer | runs | median wall s | range s | MB/s | peak RSS MB | peak / trace size |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (name, walls, wall, peak) in [
        (
            "sota-bot profile analyze (3 tables)",
            &rust_walls,
            rust_wall,
            rust_peak_mb,
        ),
        (
            "python reference (json.load, 3 tables)",
            &py_walls,
            py_wall,
            py_peak_mb,
        ),
    ] {
        println!(
            "| {name} | {} | {wall:.2} | {} | {:.0} | {peak:.0} | {:.2} |",
            walls.len(),
            range(walls),
            size_mb / wall,
            peak / size_mb
        );
    }
    println!(
        "speedup vs python (medians): {:.1}x (target >= 20x); sota-bot peak memory {:.0}% of trace size (target < 50%)",
        py_wall / rust_wall,
        rust_peak_mb / size_mb * 100.0
    );
}

/// Sorts `walls` and returns their median.
fn median(walls: &mut [f64]) -> f64 {
    walls.sort_by(f64::total_cmp);
    let n = walls.len();
    if n % 2 == 1 {
        walls[n / 2]
    } else {
        (walls[n / 2 - 1] + walls[n / 2]) / 2.0
    }
}

/// One `sota-bot profile analyze` run: wall seconds and peak RSS in MB.
fn run_sota_bot(trace: &Path) -> (f64, f64) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sota-bot"))
        .args([
            "profile",
            "analyze",
            "--format",
            "json",
            "-o",
            "/dev/null",
            "--report-resources",
        ])
        .arg(trace)
        .output()
        .expect("run sota-bot");
    let wall = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sota-bot failed: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("resources:"))
        .unwrap_or("");
    (wall, field(line, "peak_rss_kib").unwrap_or(0.0) / 1024.0)
}

/// One run of the Python reference: wall seconds and peak RSS in MB.
fn run_python(trace: &Path) -> (f64, f64) {
    let t = Instant::now();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/profile_reference.py"
        ))
        .arg(trace)
        .output()
        .expect("run python3");
    let wall = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "python reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (wall, v["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0)
}

/// `path` as plain JSON: a gzip file is decompressed once into `dir` (both analyzers then
/// read the same plain text, so decompression speed does not enter the comparison).
fn plain_copy(path: &Path, dir: &Path) -> PathBuf {
    let name = path
        .file_name()
        .expect("a trace file name")
        .to_string_lossy();
    let Some(stem) = name.strip_suffix(".gz") else {
        return path.to_path_buf();
    };
    let out = dir.join(stem);
    if !out.is_file() {
        let mut input = flate2::read::MultiGzDecoder::new(
            std::fs::File::open(path).expect("open PROFILE_BENCH_TRACE"),
        );
        let mut w = BufWriter::new(std::fs::File::create(&out).expect("create plain copy"));
        std::io::copy(&mut input, &mut w).expect("decompress PROFILE_BENCH_TRACE");
        w.flush().expect("write plain copy");
    }
    out
}
