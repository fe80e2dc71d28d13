//! GPU preflight against canned `nvidia-smi` output (real H200 captures and an
//! eight-GPU H100 host), through the same `--nvidia-smi PATH` override an operator
//! would use.

mod support_exec;

use std::path::{Path, PathBuf};

use sota_bot::runner::preflight::{
    collect_inventory, evaluate, parse_compute_apps, parse_query_gpu, parse_smi_header,
    parse_uuid_map, parse_visible_devices, preflight_main, Expectations, NvidiaSmi, PreflightArgs,
    PreflightFailure,
};
use tempfile::TempDir;

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nvidia-smi")
        .join(name)
}

fn read(name: &str, file: &str) -> String {
    std::fs::read_to_string(fixture_dir(name).join(file)).unwrap()
}

/// A script that behaves like nvidia-smi on the fixture host `name`.
fn fake_smi(tmp: &TempDir, name: &str) -> PathBuf {
    let fake =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nvidia-smi/fake-nvidia-smi.sh");
    let path = tmp.path().join(format!("nvidia-smi-{name}"));
    support_exec::write_executable(
        &path,
        &format!(
            "#!/bin/sh\nFAKE_NVIDIA_SMI_DIR='{}' exec bash '{}' \"$@\"\n",
            fixture_dir(name).display(),
            fake.display()
        ),
    );
    path
}

fn args(smi: PathBuf) -> PreflightArgs {
    PreflightArgs {
        visible_devices: None,
        expect_gpu_model: None,
        expect_gpu_count: None,
        min_free_mib: None,
        nvidia_smi: smi,
        json: false,
    }
}

#[test]
fn parses_the_real_h200_capture() {
    let header = parse_smi_header(&read("h200-idle", "smi.txt"));
    assert_eq!(header.driver_version.as_deref(), Some("580.159.04"));
    assert_eq!(header.cuda_version.as_deref(), Some("13.0"));

    let gpus = parse_query_gpu(&read("h200-busy", "query-gpu.csv")).unwrap();
    assert_eq!(gpus.len(), 1);
    assert_eq!(gpus[0].name, "NVIDIA H200");
    assert_eq!(gpus[0].memory_total_mib, 143771);
    assert_eq!(gpus[0].memory_used_mib, Some(1643));
    assert_eq!(gpus[0].memory_free_mib(), Some(142128));
    assert_eq!(gpus[0].driver_version, "580.159.04");

    let apps = parse_compute_apps(&read("h200-busy", "apps.csv")).unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].gpu_uuid, "GPU-8c6b7733-3966-00ac-3876-675269b087d3");
    assert_eq!(apps[0].pid, 432);
    assert_eq!(apps[0].used_memory_mib, Some(1634));
    assert!(parse_compute_apps(&read("h200-idle", "apps.csv"))
        .unwrap()
        .is_empty());

    let uuids = parse_uuid_map(&read("h200-idle", "uuid.csv")).unwrap();
    assert_eq!(
        uuids.get(&0).map(String::as_str),
        Some("GPU-8c6b7733-3966-00ac-3876-675269b087d3")
    );
}

#[test]
fn parses_an_eight_gpu_h100_host() {
    let header = parse_smi_header(&read("h100x8", "smi.txt"));
    assert_eq!(header.cuda_version.as_deref(), Some("12.4"));
    let gpus = parse_query_gpu(&read("h100x8", "query-gpu.csv")).unwrap();
    assert_eq!(gpus.len(), 8);
    assert!(gpus
        .iter()
        .all(|g| g.name == "NVIDIA H100 80GB HBM3" && g.memory_total_mib == 81559));
    assert_eq!(gpus[3].memory_used_mib, Some(70126));
}

#[test]
fn an_idle_h200_passes_the_expected_model_and_count() {
    let tmp = TempDir::new().unwrap();
    let inv = collect_inventory(&NvidiaSmi {
        path: fake_smi(&tmp, "h200-idle"),
    })
    .unwrap();
    let report = evaluate(
        &inv,
        &Expectations {
            gpu_model: Some("h200".into()),
            gpu_count: Some(1),
            ..Default::default()
        },
    );
    assert!(report.ok(), "{:?}", report.failures);
    assert_eq!(report.hardware.as_deref(), Some("h200"));
    assert_eq!(report.cuda_version.as_deref(), Some("13.0"));
    assert_eq!(report.runner_labels, vec!["self-hosted", "1-gpu-h200"]);

    let mut a = args(fake_smi(&tmp, "h200-idle"));
    a.expect_gpu_model = Some("h200".into());
    a.expect_gpu_count = Some(1);
    assert_eq!(preflight_main(a).unwrap(), 0);
}

#[test]
fn a_wrong_model_or_count_is_a_typed_failure_with_exit_3() {
    let tmp = TempDir::new().unwrap();
    let inv = collect_inventory(&NvidiaSmi {
        path: fake_smi(&tmp, "h200-idle"),
    })
    .unwrap();
    let report = evaluate(
        &inv,
        &Expectations {
            gpu_model: Some("h100".into()),
            gpu_count: Some(8),
            ..Default::default()
        },
    );
    assert_eq!(
        report.failures,
        vec![
            PreflightFailure::CountMismatch {
                expected: 8,
                found: 1
            },
            PreflightFailure::ModelMismatch {
                expected: "h100".into(),
                index: 0,
                name: "NVIDIA H200".into()
            },
        ]
    );
    let mut a = args(fake_smi(&tmp, "h200-idle"));
    a.expect_gpu_model = Some("h100".into());
    assert_eq!(preflight_main(a).unwrap(), 3);
}

#[test]
fn a_foreign_process_on_a_visible_gpu_fails() {
    let tmp = TempDir::new().unwrap();
    let inv = collect_inventory(&NvidiaSmi {
        path: fake_smi(&tmp, "h200-busy"),
    })
    .unwrap();
    let report = evaluate(&inv, &Expectations::default());
    assert_eq!(report.foreign_processes.len(), 1);
    let failure = report.failures.first().unwrap();
    assert_eq!(
        failure.to_string(),
        "foreign process on the job's GPUs: pid 432 on GPU 0 using 1634 MiB"
    );
    assert_eq!(
        preflight_main(args(fake_smi(&tmp, "h200-busy"))).unwrap(),
        3
    );
}

#[test]
fn visible_devices_select_the_job_gpus() {
    let tmp = TempDir::new().unwrap();
    let inv = collect_inventory(&NvidiaSmi {
        path: fake_smi(&tmp, "h100x8"),
    })
    .unwrap();
    let expect = |visible: &str, count: usize| Expectations {
        gpu_model: Some("h100".into()),
        gpu_count: Some(count),
        visible: parse_visible_devices(visible).unwrap(),
        min_free_mib: None,
    };

    // GPU 3 is busy, but the job only owns 0 and 1.
    let ok = evaluate(&inv, &expect("0,1", 2));
    assert!(ok.ok(), "{:?}", ok.failures);
    assert_eq!(ok.runner_labels, vec!["self-hosted", "2-gpu-h100"]);

    let busy = evaluate(&inv, &expect("2,3", 2));
    assert_eq!(busy.foreign_processes.len(), 1);
    assert_eq!(busy.foreign_processes[0].pid, 2817345);
    assert_eq!(busy.foreign_processes[0].gpu_index, Some(3));

    // A UUID selector names GPU 3 as well.
    let by_uuid = evaluate(&inv, &expect("GPU-3f1a2b4c-5d6e-7f80-91a2-b3c4d5e6f704", 1));
    assert_eq!(by_uuid.foreign_processes.len(), 1);

    let missing = evaluate(&inv, &expect("0,9", 2));
    assert!(missing.failures.iter().any(|f| matches!(
        f,
        PreflightFailure::VisibleDeviceMissing { selector, .. } if selector == "9"
    )));
    assert!(missing.failures.contains(&PreflightFailure::CountMismatch {
        expected: 2,
        found: 1
    }));

    let mut all = expect("", 8);
    all.min_free_mib = Some(20_000);
    let tight = evaluate(&inv, &all);
    assert!(tight
        .failures
        .contains(&PreflightFailure::InsufficientFreeMemory {
            index: 3,
            free_mib: 81559 - 70126,
            required_mib: 20_000
        }));

    let mut a = args(fake_smi(&tmp, "h100x8"));
    a.visible_devices = Some("0,1".into());
    a.expect_gpu_model = Some("h100".into());
    a.expect_gpu_count = Some(2);
    a.json = true;
    assert_eq!(preflight_main(a).unwrap(), 0);
}

#[test]
fn tool_and_input_problems_map_to_exit_codes() {
    let tmp = TempDir::new().unwrap();
    // nvidia-smi missing: a runtime failure.
    assert_eq!(
        preflight_main(args(tmp.path().join("no-such-nvidia-smi"))).unwrap(),
        1
    );

    // nvidia-smi printing something else than the query asked for: a runtime failure.
    let garbage = tmp.path().join("garbage-smi");
    support_exec::write_executable(&garbage, "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'\n");
    assert_eq!(preflight_main(args(garbage)).unwrap(), 1);

    // A malformed --visible-devices: invalid input.
    let mut a = args(fake_smi(&tmp, "h200-idle"));
    a.visible_devices = Some("0,cuda:1".into());
    assert_eq!(preflight_main(a).unwrap(), 2);
}
