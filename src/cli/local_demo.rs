//! `sota-bot local demo`'s inputs: a toy SGLang checkout, the request, config and plan of a
//! whole campaign on the simulator lane, from files built into the binary so it runs from
//! any folder. `local` runs the campaign.

use super::EXIT_INVALID_INPUT;
use std::path::{Path, PathBuf};
use std::process::Command;

const REQUEST: &str = include_str!("../../examples/demo/request.yaml");
const CONFIG: &str = include_str!("../../examples/demo/config.yaml");
const PLAN: &str = include_str!("../../examples/demo/plan.yaml");
const SGLANG_PROFILE: &str = include_str!("../../examples/sim/sglang.yaml");

const LAYERNORM_PY: &str = "\"\"\"Toy SGLang layer: RMSNorm (the simulated engine profile models its cost).\"\"\"\n\n\ndef rms_norm(x, weight, eps=1e-6):\n    mean_sq = sum(v * v for v in x) / len(x)\n    scale = (mean_sq + eps) ** -0.5\n    return [v * scale * w for v, w in zip(x, weight)]\n";
/// The layer after the toy history's second commit (one pass instead of two).
const LAYERNORM_PY_FOLDED: &str = "\"\"\"Toy SGLang layer: RMSNorm (the simulated engine profile models its cost).\"\"\"\n\n\ndef rms_norm(x, weight, eps=1e-6):\n    scale = (sum(v * v for v in x) / len(x) + eps) ** -0.5\n    return [v * scale * w for v, w in zip(x, weight)]\n";
const SCHEDULER_PY: &str = "\"\"\"Toy SGLang scheduler: picks the next batch.\"\"\"\n\n\ndef get_next_batch(waiting, max_running):\n    return waiting[:max_running]\n";
/// The scheduler after the toy history's third commit.
const SCHEDULER_PY_CAPPED: &str = "\"\"\"Toy SGLang scheduler: picks the next batch.\"\"\"\n\n\ndef get_next_batch(waiting, max_running, cap=256):\n    return waiting[: min(max_running, cap)]\n";
/// The toy model file: registered for `LlamaForCausalLM`, importing the toy layer, so the
/// history phase finds the model and follows its layer.
const LLAMA_PY: &str = "\"\"\"Toy SGLang model: Llama (served by the simulator).\"\"\"\n\nfrom sglang.srt.layers.layernorm import rms_norm\n\n\nclass LlamaForCausalLM:\n    norm = staticmethod(rms_norm)\n\n\nEntryClass = LlamaForCausalLM\n";
const README_MD: &str = "# Toy SGLang checkout (sota-bot demo)\n\n`sim/engine.yaml` is a SIMULATED engine profile: the sota-bot simulator serves requests at\nthe speed it describes, and the scripted agent patches it.\n";
const KNOWLEDGE_LLAMA: &str = include_str!("../../examples/knowledge/sglang/llama/README.en.md");
const KNOWLEDGE_VLLM: &str = include_str!("../../examples/knowledge/vllm/llama/README.en.md");

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, text)?;
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("git").args(args).current_dir(dir).status()?;
    anyhow::ensure!(
        st.success(),
        "git {} failed in {}",
        args.join(" "),
        dir.display()
    );
    Ok(())
}

/// Creates the toy checkout: the SGLang engine profile at `sim/engine.yaml` (which the
/// scripted agent patches), a registered model file and its layer, and a three-commit
/// history with PR numbers in the subjects (what the history phase reads) on `main`.
pub fn make_toy_checkout(dir: &Path) -> anyhow::Result<()> {
    write(&dir.join("sim/engine.yaml"), SGLANG_PROFILE)?;
    write(
        &dir.join("python/sglang/srt/layers/layernorm.py"),
        LAYERNORM_PY,
    )?;
    write(
        &dir.join("python/sglang/srt/managers/scheduler.py"),
        SCHEDULER_PY,
    )?;
    write(&dir.join("python/sglang/srt/models/llama.py"), LLAMA_PY)?;
    write(&dir.join("README.md"), README_MD)?;
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["config", "user.email", "demo@sota-bot.local"])?;
    git(dir, &["config", "user.name", "sota-bot demo"])?;
    git(dir, &["add", "-A"])?;
    git(
        dir,
        &["commit", "-q", "-m", "Add the toy SGLang checkout (#101)"],
    )?;
    write(
        &dir.join("python/sglang/srt/layers/layernorm.py"),
        LAYERNORM_PY_FOLDED,
    )?;
    git(
        dir,
        &[
            "commit",
            "-qam",
            "[Llama] fold the RMSNorm scale into one pass (#117)",
        ],
    )?;
    write(
        &dir.join("python/sglang/srt/managers/scheduler.py"),
        SCHEDULER_PY_CAPPED,
    )?;
    git(
        dir,
        &[
            "commit",
            "-qam",
            "Scheduler: cap the decode batch size (#123)",
        ],
    )?;
    Ok(())
}

/// What `sota-bot local demo` runs: the request and config it wrote and the toy checkout.
#[derive(Debug, Clone)]
pub struct Demo {
    pub request: PathBuf,
    pub config: PathBuf,
    pub checkout: PathBuf,
}

/// Writes the demo's inputs, knowledge notes and toy checkout in `dir` (a fresh temp folder
/// when absent); the exit code when `dir` already holds a checkout.
pub fn prepare_demo(dir: Option<PathBuf>) -> anyhow::Result<Result<Demo, i32>> {
    let dir = match dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("sota-bot-demo-")
            .tempdir()?
            .keep(),
    };
    let checkout = dir.join("sglang");
    if checkout.exists() {
        eprintln!("error: {} exists; pick an empty --dir", checkout.display());
        return Ok(Err(EXIT_INVALID_INPUT));
    }
    let inputs = dir.join("demo");
    write(&inputs.join("request.yaml"), REQUEST)?;
    write(&inputs.join("config.yaml"), CONFIG)?;
    write(&inputs.join("plan.yaml"), PLAN)?;
    // The config's `knowledge_root: ../knowledge`: curated notes about the toy history.
    write(
        &dir.join("knowledge/sglang/llama/README.en.md"),
        KNOWLEDGE_LLAMA,
    )?;
    write(
        &dir.join("knowledge/vllm/llama/README.en.md"),
        KNOWLEDGE_VLLM,
    )?;
    make_toy_checkout(&checkout)?;
    println!("toy SGLang checkout: {}", checkout.display());
    Ok(Ok(Demo {
        request: inputs.join("request.yaml"),
        config: inputs.join("config.yaml"),
        checkout,
    }))
}
