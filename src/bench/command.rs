//! Rendering of server launch and benchmark client commands per framework (ARCHITECTURE.md, *The
//! fixed workload*).
//!
//! Commands are kept as argv words (so a runner can exec them without a shell) and rendered
//! to one shell-quoted string for artifacts and reports. Flag spelling: `--dash-case`, except
//! TensorRT-LLM's server which takes `--snake_case`. A null or false value omits the flag,
//! true renders a bare flag, 0 is kept, a list renders one flag followed by its items.

use crate::bench::plan::{BenchClient, BenchPlan, FlagValue, Flags};
use crate::framework::Framework;
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

/// The long flags (`--name`, value-less) of a rendered shell command's first program: the
/// words before any `&&` (a native client's run, not the parse step after it).
pub fn client_long_flags(command: &str) -> Vec<String> {
    shlex::split(command)
        .unwrap_or_default()
        .into_iter()
        .take_while(|w| w != "&&")
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap_or(&w).to_string())
        .collect()
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

/// The values a benchmark command is rendered with: concrete ones (`bench candidates`
/// prints commands that run as printed) or the process lane's placeholders (`{port}`,
/// `{input_len}`, `{tokenizer}`, ...) that it expands on the machine that runs them.
#[derive(Debug, Clone, Copy)]
pub struct BenchTarget<'a> {
    /// How to call sota-bot (`sota-bot`, or `{sota_bot}` in campaign inputs).
    pub sota_bot: &'a str,
    pub host: &'a str,
    pub port: &'a str,
    pub tokenizer: &'a str,
    pub candidate_id: &'a str,
    pub scenario: &'a str,
    pub input_len: &'a str,
    pub output_len: &'a str,
    pub num_prompts: &'a str,
    /// Built-in client: its normalized row; native clients: their raw result file.
    pub result_file: &'a str,
}

/// The launcher words of each framework's own benchmark client.
pub fn default_bench_binary(framework: Framework) -> &'static str {
    match framework {
        Framework::Sglang => "python -m sglang.bench_serving",
        Framework::Vllm => "vllm bench serve",
        Framework::TensorrtLlm => "python -m tensorrt_llm.serve.scripts.benchmark_serving",
        Framework::Tokenspeed => "tokenspeed bench serve",
    }
}

fn flag(argv: &mut Vec<String>, name: &str, value: impl Into<String>) {
    argv.push(name.to_string());
    argv.push(value.into());
}

/// Renders the benchmark client run of one scenario against a launched server.
///
/// `BenchClient::Builtin` is the framework-neutral `sota-bot bench run`: the same prompts
/// (built from the model's tokenizer and the plan's seed) go to every framework, the
/// default for cross-framework fairness. `Native` uses each framework's own client with the
/// flags that make its workload the fixed one, as each real parser spells them: lengths
/// fixed (SGLang's `--random-range-ratio` keeps lengths fixed at 1; the vLLM-derived
/// clients at 0), EOS ignored, temperature 0, token-id prompts (no dataset download), the
/// plan's seed and the model's tokenizer, and per-request lengths saved with the result.
/// `knobs` are benchmark-only flags (e.g. `max_concurrency`), always `--dash-case`.
pub fn render_benchmark_command(
    plan: &BenchPlan,
    framework: Framework,
    client: BenchClient,
    knobs: &Flags,
    t: &BenchTarget<'_>,
) -> CommandLine {
    let seed = plan.seed.to_string();
    let base_url = format!("http://{}:{}", t.host, t.port);
    let mut a: Vec<String>;
    match client {
        BenchClient::Builtin => {
            a = words(t.sota_bot);
            a.extend(["bench".into(), "run".into()]);
            flag(&mut a, "--base-url", base_url);
            flag(&mut a, "--model", plan.model.clone());
            flag(&mut a, "--framework", framework.canonical());
            flag(&mut a, "--candidate-id", t.candidate_id);
            flag(&mut a, "--scenario", t.scenario);
            flag(&mut a, "--input-len", t.input_len);
            flag(&mut a, "--output-len", t.output_len);
            flag(&mut a, "--num-prompts", t.num_prompts);
            flag(&mut a, "--tokenizer", t.tokenizer);
            flag(&mut a, "--seed", seed);
            flag(&mut a, "--endpoint", plan.endpoint.clone());
            flag(&mut a, "--out", t.result_file);
        }
        BenchClient::Native => {
            let launcher = plan
                .framework(framework)
                .and_then(|f| f.bench_binary.as_deref())
                .unwrap_or(default_bench_binary(framework));
            a = words(launcher);
            match framework {
                Framework::Sglang => {
                    flag(&mut a, "--backend", "sglang-oai");
                    flag(&mut a, "--host", t.host);
                    flag(&mut a, "--port", t.port);
                }
                Framework::TensorrtLlm => {
                    flag(&mut a, "--backend", "openai");
                    flag(&mut a, "--host", t.host);
                    flag(&mut a, "--port", t.port);
                    flag(&mut a, "--endpoint", plan.endpoint.clone());
                }
                Framework::Vllm | Framework::Tokenspeed => {
                    flag(&mut a, "--backend", "openai");
                    flag(&mut a, "--base-url", base_url);
                    flag(&mut a, "--endpoint", plan.endpoint.clone());
                }
            }
            flag(&mut a, "--model", plan.model.clone());
            flag(&mut a, "--tokenizer", t.tokenizer);
            match framework {
                // SGLang's `random` samples ShareGPT text (a download); `random-ids` does not.
                Framework::Sglang => flag(&mut a, "--dataset-name", "random-ids"),
                Framework::TensorrtLlm => {
                    flag(&mut a, "--dataset-name", "random");
                    a.push("--random-ids".into());
                }
                Framework::Vllm | Framework::Tokenspeed => flag(&mut a, "--dataset-name", "random"),
            }
            flag(&mut a, "--random-input-len", t.input_len);
            flag(&mut a, "--random-output-len", t.output_len);
            // SGLang draws lengths from [ratio x len, len]; the others from
            // [(1 - ratio) x len, (1 + ratio) x len].
            let fixed = if framework == Framework::Sglang {
                "1"
            } else {
                "0"
            };
            flag(&mut a, "--random-range-ratio", fixed);
            flag(&mut a, "--num-prompts", t.num_prompts);
            flag(&mut a, "--seed", seed);
            match framework {
                // SGLang's client ignores EOS unless told otherwise.
                Framework::Sglang => flag(&mut a, "--temperature", "0"),
                Framework::Vllm | Framework::TensorrtLlm => {
                    a.push("--ignore-eos".into());
                    flag(&mut a, "--temperature", "0");
                }
                // TokenSpeed's client has no temperature flag.
                Framework::Tokenspeed => {
                    a.push("--ignore-eos".into());
                    flag(&mut a, "--extra-body", r#"{"temperature": 0}"#);
                }
            }
            match framework {
                Framework::Sglang => {
                    flag(&mut a, "--output-file", t.result_file);
                    a.push("--output-details".into());
                }
                Framework::Tokenspeed => flag(&mut a, "--output-file", t.result_file),
                Framework::Vllm | Framework::TensorrtLlm => {
                    a.extend(["--save-result".into(), "--save-detailed".into()]);
                    flag(&mut a, "--result-filename", t.result_file);
                }
            }
        }
    }
    push_flags(&mut a, knobs, FlagCase::Dash);
    argv_line(a)
}

/// The step after a native client: `sota-bot bench parse` turns its raw result into the
/// normalized row the campaign records.
pub fn render_parse_step(
    plan: &BenchPlan,
    framework: Framework,
    t: &BenchTarget<'_>,
    raw_file: &str,
) -> CommandLine {
    let mut a = words(t.sota_bot);
    a.extend(["bench".into(), "parse".into()]);
    flag(&mut a, "--framework", framework.canonical());
    flag(&mut a, "--model", plan.model.clone());
    flag(&mut a, "--candidate-id", t.candidate_id);
    flag(&mut a, "--scenario", t.scenario);
    flag(&mut a, "--num-prompts", t.num_prompts);
    flag(&mut a, "--input-len", t.input_len);
    flag(&mut a, "--output-len", t.output_len);
    flag(&mut a, "--out", t.result_file);
    a.push(raw_file.to_string());
    argv_line(a)
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
