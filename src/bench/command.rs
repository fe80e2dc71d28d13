//! Rendering of server launch and benchmark client commands per framework (SPEC §3.4).
//!
//! Commands are kept as argv words (so a runner can exec them without a shell) and rendered
//! to one shell-quoted string for artifacts and reports. Flag spelling: `--dash-case`, except
//! TensorRT-LLM's server which takes `--snake_case`. A null or false value omits the flag,
//! true renders a bare flag, 0 is kept, a list renders one flag followed by its items.

use crate::bench::plan::{BenchClient, BenchPlan, FlagValue, Flags, Scenario};
use crate::campaign::Framework;
use serde::Serialize;
use std::fmt;

/// A command as argv words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    pub argv: Vec<String>,
}

impl CommandLine {
    /// The long flags (`--name`, without values) in order of appearance.
    pub fn long_flags(&self) -> Vec<String> {
        self.argv
            .iter()
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| w.split('=').next().unwrap_or(w).to_string())
            .collect()
    }

    /// One shell-quoted line.
    pub fn to_shell(&self) -> String {
        self.argv
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_shell())
    }
}

/// Quotes a word for POSIX shells only when it needs it.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%^".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A command that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("{framework}: server backend `{backend}` is unsupported (only `pytorch`)")]
    UnsupportedBackend {
        framework: Framework,
        backend: String,
    },
    #[error("framework {0} is not in the plan")]
    NotInPlan(Framework),
}

/// How a flag name is spelled on a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagCase {
    Dash,
    Snake,
}

/// Appends `flags` as `--name value...` words.
pub fn push_flags(argv: &mut Vec<String>, flags: &Flags, case: FlagCase) {
    for (name, value) in flags {
        if !value.is_rendered() {
            continue;
        }
        let spelled = match case {
            FlagCase::Dash => name.replace('_', "-"),
            FlagCase::Snake => name.replace('-', "_"),
        };
        argv.push(format!("--{spelled}"));
        if !matches!(value, FlagValue::Bool(true)) {
            argv.extend(value.to_args());
        }
    }
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// The default launcher words of each framework's server.
pub fn default_server_binary(framework: Framework) -> &'static str {
    match framework {
        Framework::Sglang => "python -m sglang.launch_server",
        Framework::Vllm => "vllm serve",
        Framework::TensorrtLlm => "trtllm-serve serve",
        Framework::Tokenspeed => "tokenspeed serve",
    }
}

/// Renders the server launch of `framework` with the given (merged) server flags.
pub fn render_server_command(
    plan: &BenchPlan,
    framework: Framework,
    flags: &Flags,
) -> Result<CommandLine, CommandError> {
    let fw_plan = plan
        .framework(framework)
        .ok_or(CommandError::NotInPlan(framework))?;
    let launcher = fw_plan
        .server_binary
        .as_deref()
        .unwrap_or(default_server_binary(framework));
    let mut argv = words(launcher);
    let m = plan.model.clone();
    let port = plan.port.to_string();
    let tp = plan.tp_size.to_string();
    let case = match framework {
        Framework::Sglang => {
            argv.extend([
                "--model-path".into(),
                m,
                "--port".into(),
                port,
                "--tp-size".into(),
                tp,
            ]);
            FlagCase::Dash
        }
        Framework::Vllm | Framework::Tokenspeed => {
            argv.extend([
                m,
                "--port".into(),
                port,
                "--tensor-parallel-size".into(),
                tp,
            ]);
            FlagCase::Dash
        }
        Framework::TensorrtLlm => {
            let backend = fw_plan.backend.as_deref().unwrap_or("pytorch");
            if backend != "pytorch" {
                return Err(CommandError::UnsupportedBackend {
                    framework,
                    backend: backend.to_string(),
                });
            }
            argv.extend([
                m,
                "--backend".into(),
                "pytorch".into(),
                "--tp_size".into(),
                tp,
                "--port".into(),
                port,
            ]);
            FlagCase::Snake
        }
    };
    push_flags(&mut argv, flags, case);
    Ok(argv_line(argv))
}

fn argv_line(argv: Vec<String>) -> CommandLine {
    CommandLine { argv }
}

/// Renders the benchmark client run of one scenario against a launched server.
///
/// `BenchClient::Builtin` is the framework-neutral `sota-bot bench run` (one request path
/// for all frameworks, the default for cross-framework fairness); `Native` uses each
/// framework's own benchmark CLI. `knobs` are benchmark-only flags (e.g.
/// `max_concurrency`, `request_rate`), always `--dash-case`.
pub fn render_benchmark_command(
    plan: &BenchPlan,
    framework: Framework,
    client: BenchClient,
    scenario: &Scenario,
    knobs: &Flags,
    result_file: &str,
) -> CommandLine {
    let m = plan.model.clone();
    let i = scenario.input_len.to_string();
    let o = scenario.output_len.to_string();
    let n = scenario.num_prompts.to_string();
    let host = plan.host.clone();
    let port = plan.port.to_string();
    let dataset = plan.dataset.clone();
    let mut argv: Vec<String> = match client {
        BenchClient::Builtin => {
            let mut a = words("sota-bot bench run");
            a.extend([
                "--base-url".into(),
                plan.base_url(),
                "--model".into(),
                m,
                "--scenario".into(),
                scenario.name.clone(),
                "--input-len".into(),
                i,
                "--output-len".into(),
                o,
                "--num-prompts".into(),
                n,
                "--out".into(),
                result_file.into(),
            ]);
            a
        }
        BenchClient::Native => {
            let (launcher, backend) = match framework {
                Framework::Sglang => ("python -m sglang.bench_serving", "sglang-oai"),
                Framework::Vllm => ("vllm bench serve", "vllm"),
                Framework::TensorrtLlm => (
                    "python -m tensorrt_llm.serve.scripts.benchmark_serving",
                    "openai",
                ),
                Framework::Tokenspeed => ("tokenspeed bench serve", "openai"),
            };
            let mut a = words(launcher);
            a.extend(["--backend".into(), backend.into()]);
            match framework {
                Framework::Sglang | Framework::TensorrtLlm => {
                    a.extend(["--host".into(), host, "--port".into(), port]);
                }
                Framework::Vllm | Framework::Tokenspeed => {
                    a.extend(["--base-url".into(), plan.base_url()]);
                }
            }
            a.extend([
                "--model".into(),
                m,
                "--dataset-name".into(),
                dataset,
                "--random-input-len".into(),
                i,
                "--random-output-len".into(),
                o,
                "--num-prompts".into(),
                n,
            ]);
            match framework {
                Framework::Sglang | Framework::Tokenspeed => {
                    a.extend(["--output-file".into(), result_file.into()]);
                }
                Framework::Vllm | Framework::TensorrtLlm => {
                    a.extend([
                        "--save-result".into(),
                        "--result-filename".into(),
                        result_file.into(),
                    ]);
                }
            }
            a
        }
    };
    push_flags(&mut argv, knobs, FlagCase::Dash);
    argv_line(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_only_when_needed() {
        assert_eq!(
            shell_quote("meta-llama/Llama-3.1-8B"),
            "meta-llama/Llama-3.1-8B"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote(r#"{"x":1}"#), r#"'{"x":1}'"#);
    }

    #[test]
    fn flag_values_render_by_type() {
        let mut flags = Flags::new();
        flags.insert("enable_x".into(), FlagValue::Bool(true));
        flags.insert("disable_y".into(), FlagValue::Bool(false));
        flags.insert("gone".into(), FlagValue::Null);
        flags.insert("zero".into(), FlagValue::Int(0));
        flags.insert("frac".into(), FlagValue::Float(1.0));
        flags.insert(
            "cuda_graph_bs".into(),
            FlagValue::List(vec![FlagValue::Int(1), FlagValue::Int(2)]),
        );
        let mut argv = Vec::new();
        push_flags(&mut argv, &flags, FlagCase::Dash);
        assert_eq!(
            argv,
            [
                "--enable-x",
                "--zero",
                "0",
                "--frac",
                "1.0",
                "--cuda-graph-bs",
                "1",
                "2"
            ]
        );
        let mut snake = Vec::new();
        push_flags(&mut snake, &flags, FlagCase::Snake);
        assert_eq!(snake[0], "--enable_x");
        assert_eq!(snake[5], "--cuda_graph_bs");
    }
}
