//! runner-setup scripts run with bash and a fake nvidia-smi on PATH (canned output of
//! real GPU hosts): label derivation, --help and --dry-run of every script, and the
//! idempotence of the files they install.

mod support_exec;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const SCRIPTS: [&str; 8] = [
    "check-host.sh",
    "derive-labels.sh",
    "install-runner.sh",
    "install-service.sh",
    "prepare-frameworks.sh",
    "prefetch-model.sh",
    "register-runner.sh",
    "render-arc-values.sh",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A PATH directory whose `nvidia-smi` plays the fixture host `host`.
struct FakeHost {
    tmp: TempDir,
    bin: PathBuf,
}

impl FakeHost {
    fn new(host: &str) -> FakeHost {
        let tmp = TempDir::new().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let smi = bin.join("nvidia-smi");
        support_exec::write_executable(
            &smi,
            &format!(
                "#!/bin/sh\nFAKE_NVIDIA_SMI_DIR='{}' exec bash '{}' \"$@\"\n",
                root()
                    .join("tests/fixtures/nvidia-smi")
                    .join(host)
                    .display(),
                root()
                    .join("tests/fixtures/nvidia-smi/fake-nvidia-smi.sh")
                    .display()
            ),
        );
        FakeHost { tmp, bin }
    }

    fn run(&self, script: &str, args: &[&str]) -> Output {
        self.run_env(script, args, &[])
    }

    fn run_env(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            self.bin.display()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(root().join("runner-setup").join(script))
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.tmp.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_script_has_help() {
    let host = FakeHost::new("h100x8");
    for script in SCRIPTS {
        let o = host.run(script, &["--help"]);
        assert!(o.status.success(), "{script} --help: {}", err(&o));
        assert!(out(&o).starts_with("Usage: "), "{script}: {}", out(&o));
        assert!(
            out(&o).contains("--dry-run"),
            "{script} documents --dry-run"
        );
        let bad = host.run(script, &["--no-such-flag"]);
        assert_eq!(bad.status.code(), Some(2), "{script} rejects unknown flags");
        assert!(err(&bad).contains("see --help"), "{script}: {}", err(&bad));
    }
}

#[test]
fn labels_follow_the_count_gpu_hardware_convention() {
    let h100 = FakeHost::new("h100x8");
    let o = h100.run("derive-labels.sh", &[]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "self-hosted\n8-gpu-h100\n");
    let o = h100.run(
        "derive-labels.sh",
        &["--visible-devices", "0,1", "--format", "json"],
    );
    assert_eq!(out(&o), "[\"self-hosted\", \"2-gpu-h100\"]\n");
    let o = h100.run(
        "derive-labels.sh",
        &["--visible-devices", "5", "--format", "csv", "--dry-run"],
    );
    assert_eq!(out(&o), "self-hosted,1-gpu-h100\n");
    let o = h100.run("derive-labels.sh", &["--visible-devices", "0,x"]);
    assert_eq!(o.status.code(), Some(2));
    let o = h100.run("derive-labels.sh", &["--visible-devices", "9"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("no GPUs found among visible devices 9"));

    let h200 = FakeHost::new("h200-idle");
    let o = h200.run("derive-labels.sh", &[]);
    assert_eq!(out(&o), "self-hosted\n1-gpu-h200\n");
}

#[test]
fn the_shell_slug_rule_matches_the_rust_one() {
    let names = [
        "NVIDIA H100 80GB HBM3",
        "NVIDIA H100 PCIe",
        "NVIDIA H200",
        "NVIDIA H20",
        "NVIDIA B200",
        "NVIDIA GB200",
        "NVIDIA A100-SXM4-80GB",
        "NVIDIA GeForce RTX 5090",
        "NVIDIA L40S",
        "Tesla V100-SXM2-16GB",
        "NVIDIA RTX PRO 6000 Blackwell Server Edition",
        "NVIDIA RTX A6000",
    ];
    for name in names {
        let o = Command::new("bash")
            .arg("-c")
            .arg(format!(
                ". '{}/runner-setup/lib.sh'; hardware_slug \"$1\"",
                root().display()
            ))
            .arg("slug")
            .arg(name)
            .output()
            .unwrap();
        let shell = out(&o).trim().to_string();
        let rust = sota_bot::runner::preflight::hardware_slug(name).unwrap();
        assert_eq!(shell, rust, "{name}");
    }
}

#[test]
fn a_host_with_mixed_gpus_needs_visible_devices() {
    let host = FakeHost::new("h100x8");
    let mixed = host.path("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    for f in ["smi.txt", "uuid.csv", "apps.csv"] {
        std::fs::copy(
            root().join("tests/fixtures/nvidia-smi/h100x8").join(f),
            mixed.join(f),
        )
        .unwrap();
    }
    std::fs::write(
        mixed.join("query-gpu.csv"),
        "0, NVIDIA H100 80GB HBM3, 81559, 0, 550.127.05\n1, NVIDIA H200, 143771, 0, 550.127.05\n",
    )
    .unwrap();
    std::fs::write(
        host.bin.join("nvidia-smi"),
        format!(
            "#!/bin/sh\nFAKE_NVIDIA_SMI_DIR='{}' exec bash '{}' \"$@\"\n",
            mixed.display(),
            root()
                .join("tests/fixtures/nvidia-smi/fake-nvidia-smi.sh")
                .display()
        ),
    )
    .unwrap();
    let o = host.run("derive-labels.sh", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("different models (h100, h200)"),
        "{}",
        err(&o)
    );
    let o = host.run("derive-labels.sh", &["--visible-devices", "1"]);
    assert_eq!(out(&o), "self-hosted\n1-gpu-h200\n");
}

#[test]
fn check_host_reports_each_check() {
    let host = FakeHost::new("h100x8");
    let dry = host.run("check-host.sh", &["--dry-run"]);
    assert!(dry.status.success());
    assert!(out(&dry).starts_with("dry-run: would check driver, cuda, gpus"));

    let work = host.path("work");
    let o = host.run(
        "check-host.sh",
        &[
            "--work-dir",
            work.to_str().unwrap(),
            "--hf-home",
            work.to_str().unwrap(),
            "--min-disk-gb",
            "0",
        ],
    );
    let text = out(&o);
    assert!(
        text.contains("PASS driver     NVIDIA driver 550.127.05"),
        "{text}"
    );
    assert!(
        text.contains("PASS cuda       driver supports CUDA 12.4"),
        "{text}"
    );
    assert!(
        text.contains("PASS gpus       labels: self-hosted,8-gpu-h100"),
        "{text}"
    );
    assert!(
        text.contains("WARN gpu-idle"),
        "the fixture has a process on GPU 3: {text}"
    );
    assert!(text.contains("PASS disk"), "{text}");

    let o = host.run(
        "check-host.sh",
        &[
            "--work-dir",
            work.to_str().unwrap(),
            "--min-disk-gb",
            "999999999",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("FAIL disk"));
}

#[test]
fn register_runner_dry_run_shows_the_jit_request_without_a_token() {
    let host = FakeHost::new("h100x8");
    let o = host.run(
        "register-runner.sh",
        &[
            "--repo",
            "owner/sglang",
            "--runner-group-id",
            "7",
            "--runner-dir",
            "/opt/sota-runner/h100-0-1",
            "--visible-devices",
            "0,1",
            "--name",
            "gpu-box-h100-0-1",
            "--dry-run",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(text.contains(
        "dry-run: POST https://api.github.com/repos/owner/sglang/actions/runners/generate-jitconfig"
    ));
    assert!(text.contains(
        r#"dry-run: body {"name":"gpu-box-h100-0-1","runner_group_id":7,"labels":["self-hosted","2-gpu-h100"],"work_folder":"_work"}"#
    ), "{text}");
    // The JIT configuration travels in the runner's environment, never on its command line,
    // and every job first passes the job-started hook.
    let hook = root().join("runner-setup/job-started-hook.sh");
    assert!(
        text.contains(&format!(
            "CUDA_VISIBLE_DEVICES=0,1 ACTIONS_RUNNER_HOOK_JOB_STARTED={} SOTA_RUNNER_REPO=owner/sglang ACTIONS_RUNNER_INPUT_JITCONFIG=<encoded_jit_config> /opt/sota-runner/h100-0-1/run.sh\n",
            hook.display()
        )),
        "{text}"
    );

    // Without --dry-run and without a token it refuses before any request.
    let o = host.run(
        "register-runner.sh",
        &[
            "--repo",
            "owner/sglang",
            "--runner-group-id",
            "7",
            "--runner-dir",
            "/nonexistent",
        ],
    );
    assert!(!o.status.success());
    assert!(
        err(&o).contains("GITHUB_TOKEN must hold a token"),
        "{}",
        err(&o)
    );

    let o = host.run(
        "register-runner.sh",
        &[
            "--repo",
            "not a repo",
            "--runner-group-id",
            "7",
            "--runner-dir",
            "/x",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn install_service_writes_a_unit_once_and_keeps_the_token_file() {
    let host = FakeHost::new("h100x8");
    let units = host.path("units");
    let envs = host.path("env");
    let hf = host.path("hf-cache");
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    let user = user.trim().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--name",
            "h100-0-7",
            "--repo",
            "owner/sglang",
            "--runner-group-id",
            "3",
            "--runner-dir",
            "/opt/sota-runner/h100-0-7",
            "--visible-devices",
            "0,1,2,3,4,5,6,7",
            "--hf-home",
            hf.to_str().unwrap(),
            "--user",
            &user,
            "--unit-dir",
            units.to_str().unwrap(),
            "--env-dir",
            envs.to_str().unwrap(),
            "--no-start",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let call = |extra: &[&str]| {
        let a = args(extra);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        host.run("install-service.sh", &refs)
    };

    let dry = call(&["--dry-run"]);
    assert!(dry.status.success(), "{}", err(&dry));
    assert!(
        out(&dry).contains("dry-run: would have created"),
        "{}",
        out(&dry)
    );
    assert!(
        !units.exists() && !envs.exists() && !hf.exists(),
        "dry run wrote nothing"
    );

    let first = call(&[]);
    assert!(first.status.success(), "{}", err(&first));
    let unit_path = units.join("sota-runner-h100-0-7.service");
    assert!(out(&first).contains(&format!("created {}", unit_path.display())));
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(unit.contains("Environment=CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7\n"));
    assert!(unit.contains(&format!("Environment=HF_HOME={}\n", hf.display())));
    // Jobs never write the shared model cache.
    assert!(unit.contains(&format!("ReadOnlyPaths={}\n", hf.display())));
    assert!(unit.contains("Environment=HF_HUB_OFFLINE=1\n"));
    assert!(unit.contains("register-runner.sh --repo owner/sglang --runner-group-id 3 --runner-dir /opt/sota-runner/h100-0-7 --visible-devices 0,1,2,3,4,5,6,7\n"));
    assert!(unit.contains("Restart=always"));
    assert!(hf.is_dir());
    let env_file = envs.join("h100-0-7.env");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The operator fills in a token; a rerun changes nothing and keeps it.
    std::fs::write(&env_file, "GITHUB_TOKEN=ghs_operator_value\nHF_TOKEN=\n").unwrap();
    let second = call(&[]);
    assert!(second.status.success(), "{}", err(&second));
    assert!(out(&second).contains(&format!("unchanged {}", unit_path.display())));
    assert!(!out(&second).contains("ghs_operator_value"));
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "GITHUB_TOKEN=ghs_operator_value\nHF_TOKEN=\n"
    );

    // The model cache may not live inside the runner directory.
    let a = args(&[]);
    let mut refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let pos = refs.iter().position(|s| *s == "--hf-home").unwrap();
    refs[pos + 1] = "/opt/sota-runner/h100-0-7/_work/hf";
    let inside = host.run("install-service.sh", &refs);
    assert_eq!(inside.status.code(), Some(2));
}

#[test]
fn installers_dry_run_without_touching_anything() {
    let host = FakeHost::new("h100x8");
    let dir = host.path("runner");
    let sha = "a".repeat(64);
    let o = host.run(
        "install-runner.sh",
        &[
            "--version",
            "2.329.0",
            "--sha256",
            &sha,
            "--runner-dir",
            dir.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("https://github.com/actions/runner/releases/download/v2.329.0/actions-runner-linux-x64-2.329.0.tar.gz"));
    assert!(!dir.exists());
    let o = host.run(
        "install-runner.sh",
        &[
            "--version",
            "2.329.0",
            "--sha256",
            "abc",
            "--runner-dir",
            "/x",
        ],
    );
    assert_eq!(o.status.code(), Some(2));

    let venvs = host.path("venvs");
    let o = host.run(
        "prepare-frameworks.sh",
        &[
            "--venv-root",
            venvs.to_str().unwrap(),
            "--pin",
            "vllm=vllm==0.11.0",
            "--dry-run",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let log = err(&o);
    for fw in ["sglang", "vllm", "tensorrt_llm", "tokenspeed"] {
        assert!(
            log.contains(&format!("-m venv {}/{fw}", venvs.display())),
            "{fw}: {log}"
        );
    }
    assert!(log.contains("pip install vllm==0.11.0"), "{log}");
    assert!(log.contains("pip install tensorrt-llm"), "{log}");
    assert!(out(&o).contains("--backend pytorch"));
    assert!(!venvs.exists());

    let o = host.run(
        "prepare-frameworks.sh",
        &[
            "--mode",
            "images",
            "--frameworks",
            "tokenspeed",
            "--dry-run",
        ],
    );
    assert!(!o.status.success());
    assert!(err(&o).contains("no image for tokenspeed"));
    let o = host.run(
        "prepare-frameworks.sh",
        &[
            "--mode",
            "images",
            "--frameworks",
            "sglang,vllm",
            "--dry-run",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("pull lmsysorg/sglang:latest"));
    let o = host.run("prepare-frameworks.sh", &["--frameworks", "sglang,trt"]);
    assert_eq!(o.status.code(), Some(2));

    let o = host.run(
        "prefetch-model.sh",
        &[
            "--model",
            "meta-llama/Llama-3.1-8B-Instruct",
            "--revision",
            "0e9e39f",
            "--dry-run",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("meta-llama/Llama-3.1-8B-Instruct 0e9e39f"));
}

#[test]
fn arc_values_render_to_the_committed_examples_and_parse() {
    let host = FakeHost::new("h100x8");
    for (model, count, file) in [
        ("h100", "8", "values-8-gpu-h100.yaml"),
        ("h200", "1", "values-1-gpu-h200.yaml"),
    ] {
        let o = host.run(
            "render-arc-values.sh",
            &[
                "--gpu-model",
                model,
                "--gpu-count",
                count,
                "--github-config-url",
                "https://github.com/owner/sglang",
            ],
        );
        assert!(o.status.success(), "{}", err(&o));
        let committed =
            std::fs::read_to_string(root().join("runner-setup/arc").join(file)).unwrap();
        assert_eq!(
            out(&o),
            committed,
            "{file} is stale: rerun render-arc-values.sh --output"
        );
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&committed).unwrap();
        let name = format!("{count}-gpu-{model}");
        assert_eq!(v["runnerScaleSetName"].as_str(), Some(name.as_str()));
        assert_eq!(v["minRunners"].as_u64(), Some(0));
        let runner = &v["template"]["spec"]["containers"][0];
        assert_eq!(runner["name"].as_str(), Some("runner"));
        assert_eq!(
            runner["resources"]["limits"]["nvidia.com/gpu"].as_u64(),
            Some(count.parse().unwrap())
        );
        assert_eq!(runner["env"][0]["name"].as_str(), Some("HF_HOME"));
        // The cache is mounted read-only and every job passes the hook from the ConfigMap.
        let mounts = runner["volumeMounts"].as_sequence().unwrap();
        let cache = mounts
            .iter()
            .find(|m| m["name"].as_str() == Some("hf-cache"));
        assert_eq!(cache.unwrap()["readOnly"].as_bool(), Some(true));
        let env = runner["env"].as_sequence().unwrap();
        let value = |name: &str| {
            env.iter()
                .find(|e| e["name"].as_str() == Some(name))
                .and_then(|e| e["value"].as_str().map(String::from))
        };
        assert_eq!(
            value("ACTIONS_RUNNER_HOOK_JOB_STARTED").as_deref(),
            Some("/opt/sota-bot/hooks/job-started-hook.sh")
        );
        assert_eq!(value("SOTA_RUNNER_REPO").as_deref(), Some("owner/sglang"));
    }
    let out_file = host.path("values.yaml");
    let args = [
        "--gpu-model",
        "b200",
        "--gpu-count",
        "4",
        "--github-config-url",
        "https://github.com/owner/sglang",
        "--output",
        out_file.to_str().unwrap(),
    ];
    let first = host.run("render-arc-values.sh", &args);
    assert!(out(&first).starts_with("created "));
    let second = host.run("render-arc-values.sh", &args);
    assert!(out(&second).starts_with("unchanged "));
    let o = host.run(
        "render-arc-values.sh",
        &[
            "--gpu-model",
            "a10",
            "--gpu-count",
            "1",
            "--github-config-url",
            "https://github.com/o/r",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(Path::new(&out_file).is_file());
}
