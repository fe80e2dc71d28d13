//! Phase 0.5 speed: `history::build` (registry, imports, the whole-history walk with
//! renames, verification of every citation) on a whole repository, against `git log
//! --name-only` of the same history measured in the same run (git's own walk that lists
//! every commit's changed files, the least a history reader does).
//!
//! The repository is `HISTORY_BENCH_REPO` (a real SGLang clone, bare or not) or, without it,
//! a synthetic one with SGLang's layout made by `git fast-import`: `HISTORY_BENCH_COMMITS`
//! commits (default 8000), each changing a few files among model, layer and other files,
//! with PR numbers and some family names in the subjects. Models: `HISTORY_BENCH_MODELS`
//! (comma separated, default Llama-3.1-8B, Qwen3-30B-A3B and DeepSeek-V3). Each side runs
//! `HISTORY_BENCH_RUNS` times (default 5), interleaved; medians are compared. No
//! thresholds: a measurement, not a test.
//!
//! Run: `cargo bench --bench history_walk` or
//! `HISTORY_BENCH_REPO=/path/to/sglang cargo bench --bench history_walk`.

use sota_bot::framework::Framework;
use sota_bot::history::{build, HistoryRequest};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MODELS_DIR: &str = "python/sglang/srt/models";
const LAYERS_DIR: &str = "python/sglang/srt/layers";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (no dependency on the run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Writes a synthetic repository with SGLang's layout through `git fast-import`.
fn synthesize(dir: &Path, commits: usize) {
    let ok = Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .arg(dir)
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git init failed");
    let layers = [
        "linear.py",
        "layernorm.py",
        "rotary_embedding.py",
        "radix_attention.py",
        "logits_processor.py",
        "moe/topk.py",
        "moe/fused_moe_triton/layer.py",
        "moe/fused_moe_triton/fused_moe.py",
        "quantization/fp8.py",
        "quantization/fp8_kernel.py",
    ];
    let models = [
        ("llama", "LlamaForCausalLM"),
        ("qwen3", "Qwen3ForCausalLM"),
        ("qwen3_moe", "Qwen3MoeForCausalLM"),
        (
            "deepseek_v2",
            "DeepseekV2ForCausalLM, DeepseekV3ForCausalLM",
        ),
    ];
    let mut paths: Vec<String> = layers.iter().map(|l| format!("{LAYERS_DIR}/{l}")).collect();
    paths.extend(models.iter().map(|(m, _)| format!("{MODELS_DIR}/{m}.py")));
    for i in 0..60 {
        paths.push(format!("{MODELS_DIR}/other_{i}.py"));
    }
    for i in 0..1500 {
        paths.push(format!("python/sglang/srt/pkg{}/mod_{i}.py", i % 40));
    }
    for i in 0..300 {
        paths.push(format!("sgl-kernel/csrc/k{}/kernel_{i}.cu", i % 12));
    }
    let body = |path: &str, version: usize| -> String {
        let mut t = format!("# {path} v{version}\n");
        if let Some(stem) = path
            .strip_prefix(&format!("{MODELS_DIR}/"))
            .and_then(|p| p.strip_suffix(".py"))
        {
            for l in layers {
                let module = l.trim_end_matches(".py").replace('/', ".");
                t.push_str(&format!("from sglang.srt.layers.{module} import X\n"));
            }
            let classes = models
                .iter()
                .find(|(m, _)| *m == stem)
                .map(|(_, c)| c.to_string())
                .unwrap_or_else(|| format!("Other{stem}ForCausalLM"));
            t.push_str(&format!("EntryClass = [{classes}]\n"));
        }
        t
    };
    let mut rng = Lcg(7);
    let mut stream: Vec<u8> = Vec::new();
    let families = ["Llama", "Qwen3", "DeepSeek-V3", "Mixtral", "Gemma"];
    for c in 0..commits {
        let msg = match rng.next(6) {
            0 => format!("[{}] faster decode (#{})", families[rng.next(5)], 1000 + c),
            1 => format!("Fix scheduler corner case (#{})", 1000 + c),
            _ => format!("Refactor module {c} (#{})", 1000 + c),
        };
        let time = 1_700_000_000 + c as u64 * 600;
        write!(
            stream,
            "commit refs/heads/main\ncommitter Bench <b@example.com> {time} +0000\ndata {}\n{msg}\n",
            msg.len() + 1
        )
        .ok();
        let files: Vec<usize> = if c == 0 {
            (0..paths.len()).collect()
        } else {
            (0..1 + rng.next(4))
                .map(|_| rng.next(paths.len()))
                .collect()
        };
        for f in files {
            let text = body(&paths[f], c);
            write!(
                stream,
                "M 100644 inline {}\ndata {}\n{text}\n",
                paths[f],
                text.len()
            )
            .ok();
        }
        stream.push(b'\n');
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&stream)
        .expect("stream written");
    assert!(child.wait().expect("fast-import ends").success());
    let ok = Command::new("git")
        .args(["checkout", "-q", "main"])
        .current_dir(dir)
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "checkout failed");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn git_log(repo: &Path) -> Duration {
    let t = Instant::now();
    let ok = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir(repo))
        .args(["log", "--name-only", "--format=%H %s", "HEAD"])
        .stdout(Stdio::null())
        .status()
        .expect("git runs")
        .success();
    assert!(ok, "git log failed");
    t.elapsed()
}

fn git_dir(repo: &Path) -> PathBuf {
    let dot = repo.join(".git");
    if dot.exists() {
        dot
    } else {
        repo.to_path_buf()
    }
}

fn main() {
    let runs = env_or("HISTORY_BENCH_RUNS", 5).max(1);
    let _tmp;
    let repo = match std::env::var_os("HISTORY_BENCH_REPO") {
        Some(p) => PathBuf::from(p),
        None => {
            let commits = env_or("HISTORY_BENCH_COMMITS", 8000);
            _tmp = tempfile::tempdir().expect("temp dir");
            let dir = _tmp.path().join("sglang");
            std::fs::create_dir_all(&dir).expect("dir");
            let t = Instant::now();
            synthesize(&dir, commits);
            eprintln!(
                "synthetic repository: {commits} commits in {:?}",
                t.elapsed()
            );
            dir
        }
    };
    let models: Vec<String> = std::env::var("HISTORY_BENCH_MODELS")
        .unwrap_or_else(|_| {
            "meta-llama/Llama-3.1-8B-Instruct,Qwen/Qwen3-30B-A3B,deepseek-ai/DeepSeek-V3-0324"
                .into()
        })
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    println!("repository: {}", repo.display());
    println!("| model | commits read | relevant | history build (median) | git log --name-only (median) | ratio |");
    println!("|---|---|---|---|---|---|");
    for model in &models {
        let mut ours = Vec::new();
        let mut base = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            base.push(git_log(&repo));
            let t = Instant::now();
            let r = build(&HistoryRequest {
                checkout: &repo,
                model,
                config_json: None,
                knowledge_root: None,
                slug_override: None,
                frameworks: &[Framework::Sglang],
                upstream: None,
            });
            ours.push(t.elapsed());
            last = Some(r);
        }
        let r = last.expect("one run");
        let (o, b) = (median(ours), median(base));
        println!(
            "| {model} | {} | {} | {:.3} s | {:.3} s | {:.2}x |",
            r.commits_read,
            r.commits.len(),
            o.as_secs_f64(),
            b.as_secs_f64(),
            o.as_secs_f64() / b.as_secs_f64().max(1e-9)
        );
    }
}
