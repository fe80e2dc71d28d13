//! Rendered commands against the real command-line programs: the `--help` output of the
//! pinned SGLang, vLLM and TokenSpeed releases (`tests/fixtures/help`, captured from them),
//! and, where `scripts/test.sh` installed it, SGLang's own argument parsers.

mod support_tools;

use assert_cmd::Command;
use predicates::prelude::*;
use sota_bot::bench::candidates::generate;
use sota_bot::bench::command::client_long_flags;
use sota_bot::bench::help_flags::{extract_flags, validate, FlagProblem};
use sota_bot::bench::plan::parse_plan;
use sota_bot::framework::Framework;
use sota_bot::runner::help::default_help_commands;
use std::path::Path;

const HELP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/help");
const PLAN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/plans/llama8b-h100-tp1.yaml"
);

fn help(name: &str) -> String {
    std::fs::read_to_string(Path::new(HELP_DIR).join(name)).unwrap()
}

fn native_plan() -> String {
    std::fs::read_to_string(PLAN)
        .unwrap()
        .replace("bench_client: builtin ", "bench_client: native  ")
}

/// Every server and native benchmark command the example plan renders for SGLang, vLLM
/// and TokenSpeed is accepted, flag by flag, by the installed releases' help.
#[test]
fn rendered_commands_use_only_flags_the_pinned_releases_document() {
    let plan = parse_plan(&native_plan()).unwrap();
    let set = generate(&plan).unwrap();
    let mut checked = 0;
    for fw in [Framework::Sglang, Framework::Vllm, Framework::Tokenspeed] {
        let server_help = help(&format!("{}-server.txt", fw.canonical()));
        let bench_help = help(&format!("{}-bench.txt", fw.canonical()));
        for launch in set.launches.iter().filter(|l| l.framework == fw) {
            let v = validate(&client_long_flags(&launch.server_command), &server_help);
            assert!(v.is_ok(), "{}: {:?}", launch.server_command, v.problems());
            for run in &launch.candidates {
                let v = validate(&client_long_flags(&run.benchmark_command), &bench_help);
                assert!(v.is_ok(), "{}: {:?}", run.benchmark_command, v.problems());
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "{checked}");
}

/// `vllm serve --help` lists option groups, not flags; `tokenspeed serve --help` only
/// `--headless`. Checked against those, every flag reads unknown, so the capture asks for
/// the whole surface.
#[test]
fn short_help_texts_hide_the_flags_so_captures_ask_for_the_full_surface() {
    let plan = parse_plan(&native_plan()).unwrap();
    let set = generate(&plan).unwrap();
    for (fw, short) in [
        (Framework::Vllm, "vllm-server-short.txt"),
        (Framework::Tokenspeed, "tokenspeed-server-short.txt"),
    ] {
        let launch = set.launches.iter().find(|l| l.framework == fw).unwrap();
        let flags = client_long_flags(&launch.server_command);
        let v = validate(&flags, &help(short));
        assert!(!v.is_ok(), "{fw}: the short help should not validate");
        assert!(v.unknown().contains(&"--port".to_string()), "{fw}: {v:?}");
        assert!(validate(&flags, &help(&format!("{}-server.txt", fw.canonical()))).is_ok());
    }
    let vllm = default_help_commands(
        Framework::Vllm,
        "vllm serve m --port 1",
        "vllm bench serve --base-url x",
    );
    assert_eq!(vllm[0].1, "vllm serve m --help=all");
    assert_eq!(vllm[1].1, "vllm bench serve --help=all");
    let ts = default_help_commands(
        Framework::Tokenspeed,
        "tokenspeed serve m --port 1",
        "tokenspeed bench serve --base-url x",
    );
    assert!(
        ts[0].1.starts_with("tokenspeed serve m --help; "),
        "{}",
        ts[0].1
    );
    assert!(ts[0].1.contains("ServerArgs.add_cli_args"), "{}", ts[0].1);
    let sim = default_help_commands(
        Framework::Sglang,
        "{sota_bot} sim serve --framework sglang --profile p",
        "{sota_bot} bench run --base-url x",
    );
    assert_eq!(sim[0].1, "{sota_bot} sim serve --framework sglang --help");
    assert_eq!(sim[2].1, "{sota_bot} --version");
}

/// SGLang 0.5.23 has `--cuda-graph-max-bs-decode` and `--cuda-graph-max-bs-prefill` but no
/// `--cuda-graph-max-bs`: argparse stops with "ambiguous option", so the candidate must
/// never reach a GPU. `bench candidates --help-dir` exits 3 naming it.
#[test]
fn an_ambiguous_flag_of_the_installed_sglang_is_named_and_exits_3() {
    let v = validate(&["--cuda-graph-max-bs".into()], &help("sglang-server.txt"));
    assert_eq!(
        v.problems(),
        [FlagProblem::Ambiguous {
            flag: "--cuda-graph-max-bs".into(),
            matches: vec![
                "--cuda-graph-max-bs-decode".into(),
                "--cuda-graph-max-bs-prefill".into()
            ],
        }]
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "model: m\nframeworks:\n  sglang:\n    base_server_flags:\n      cuda_graph_max_bs: 8\n",
    )
    .unwrap();
    Command::cargo_bin("sota-bot")
        .unwrap()
        .args(["bench", "candidates", "--help-dir", HELP_DIR])
        .arg(&plan)
        .assert()
        .code(3)
        .stdout(predicate::str::contains(
            "flag problem sglang-00 (server): --cuda-graph-max-bs is ambiguous (could match --cuda-graph-max-bs-decode, --cuda-graph-max-bs-prefill)",
        ))
        .stderr(predicate::str::contains("--cuda-graph-max-bs"));
}

fn sglang_parse(python: &Path, command: &str, what: &str) -> std::process::Output {
    let words = shlex::split(command).unwrap();
    // The launcher words are replaced by the runner: `python -m sglang.<module>` -> runner.
    let skip = words.iter().position(|w| w.starts_with("--")).unwrap();
    std::process::Command::new(python)
        .arg(support_tools::sglang_runner())
        .arg(what)
        .args(&words[skip..])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

/// The real parsers of SGLang 0.5.23 take every SGLang command the example plan renders, and
/// stop on the flag the help check names.
#[test]
fn sglang_s_own_parsers_accept_every_rendered_sglang_command() {
    let Some(python) = support_tools::sglang_python("sglang parsers") else {
        return;
    };
    let plan = parse_plan(&native_plan()).unwrap();
    let set = generate(&plan).unwrap();
    for launch in set
        .launches
        .iter()
        .filter(|l| l.framework == Framework::Sglang)
    {
        let out = sglang_parse(&python, &launch.server_command, "server-parse");
        assert!(
            out.status.success(),
            "{}\n{}",
            launch.server_command,
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(parsed["model_path"], "meta-llama/Llama-3.1-8B-Instruct");
        for run in &launch.candidates {
            let out = sglang_parse(&python, &run.benchmark_command, "bench-parse");
            assert!(
                out.status.success(),
                "{}\n{}",
                run.benchmark_command,
                String::from_utf8_lossy(&out.stderr)
            );
            let args: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(args["dataset_name"], "random-ids");
            assert_eq!(args["random_range_ratio"], 1.0);
            assert_eq!(args["temperature"], 0.0);
            assert_eq!(args["disable_ignore_eos"], false);
            assert_eq!(args["output_details"], true);
        }
    }
    let out = sglang_parse(
        &python,
        "python -m sglang.launch_server --model-path m --cuda-graph-max-bs 8",
        "server-parse",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "ambiguous option: --cuda-graph-max-bs could match --cuda-graph-max-bs-decode, --cuda-graph-max-bs-prefill"
    ));
}

/// The checked-in help of the SGLang parser documents the flags the installed parser has
/// (the text itself varies: some choices are printed in hash order).
#[test]
fn the_sglang_help_fixture_is_what_the_pinned_release_prints() {
    let Some(python) = support_tools::sglang_python("sglang help") else {
        return;
    };
    let out = std::process::Command::new(python)
        .arg(support_tools::sglang_runner())
        .arg("server-help")
        .output()
        .unwrap();
    let printed = extract_flags(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let fixture = extract_flags(&help("sglang-server.txt")).unwrap();
    assert!(printed.len() > 400, "{}", printed.len());
    assert_eq!(printed, fixture);
}
