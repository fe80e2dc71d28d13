//! The review gate's pure rules: contract checks, verdicts, replan/drift, stop conditions.

use sota_bot::bench::{BenchRow, RunStatus};
use sota_bot::framework::Framework;
use sota_bot::gate::{
    review_round, ChangedText, Decision, GapStatus, GateConfig, RoundEvidence, ScenarioGapView,
    StopClaim, StopReason, Verdict, VerdictSource,
};

const RUN: &str = "runs/20260102_m_sota_humanize";

fn row(round: u32, scenario: &str, commit: Option<&str>) -> BenchRow {
    let mut r = BenchRow::new(Framework::Sglang, "sg", "m", RunStatus::Ok);
    r.round = round;
    r.commit = commit.map(str::to_string);
    r.workload.scenario = Some(scenario.into());
    r.workload.input_len = Some(1000);
    r.workload.output_len = Some(1000);
    r.workload.num_prompts = Some(80);
    r.sla.passed = Some(true);
    r
}

fn gap(scenario: &str, status: GapStatus) -> ScenarioGapView {
    ScenarioGapView {
        scenario: scenario.into(),
        leader: Some("vLLM `v`".into()),
        sglang_value: Some(1.0),
        leader_value: Some(1.0),
        status,
    }
}

/// A round that satisfies every contract check.
fn good() -> RoundEvidence {
    let files: Vec<String> = [
        "rounds/round-1/prompt.md",
        "rounds/round-1/summary.md",
        "rounds/round-1/profiles/sglang/chat-kernels.md",
        "humanize/model-loop-checkpoint.md",
        "humanize/lineage.jsonl",
        "humanize/attempt-ledger.md",
        "benchmark/candidates.jsonl",
        "analysis/root-cause.md",
        "analysis/layer-pipeline.md",
    ]
    .iter()
    .map(|f| format!("{RUN}/{f}"))
    .collect();
    let mut changed = files.clone();
    changed.push("python/sglang/srt/layers/attention.py".into());
    let mut tracked = changed.clone();
    tracked.push(format!("{RUN}/plan.md"));
    RoundEvidence {
        round: 1,
        run_dir: RUN.into(),
        campaign_branch: "sota/20260102-m".into(),
        current_branch: Some("sota/20260102-m".into()),
        measured_commit: Some("abc123".into()),
        changed_paths: changed,
        tracked_paths: tracked,
        added_text: vec![ChangedText {
            path: "python/sglang/srt/layers/attention.py".into(),
            text: "x = 1\n".into(),
        }],
        baseline_contract: Some("{}".into()),
        current_contract: Some("{}".into()),
        baseline_rows: vec![row(0, "chat", None), row(0, "summarization", None)],
        round_rows: vec![
            row(1, "chat", Some("abc123")),
            row(1, "summarization", Some("abc123")),
        ],
        behind_at_start: true,
        claims_patch: true,
        attempt_rows_before: 0,
        attempt_rows_after: 1,
        optimization_rows_before: 0,
        optimization_rows_after: 1,
        plan_digest_at_start: Some("d".into()),
        plan_digest_now: Some("d".into()),
        summary: Some("TITLE: t\nPATCH: attention\n".into()),
        geomean_improvement_pct: Some(5.0),
        gaps_after: vec![
            gap("chat", GapStatus::Behind { gap_pct: -3.0 }),
            gap("summarization", GapStatus::Behind { gap_pct: -2.0 }),
        ],
        ..Default::default()
    }
}

fn failed(ev: &RoundEvidence) -> Vec<String> {
    review_round(ev, &GateConfig::default())
        .checks
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.id)
        .collect()
}

#[test]
fn a_good_round_passes_every_check_and_continues() {
    let o = review_round(&good(), &GateConfig::default());
    assert!(
        o.accepted,
        "{:?}",
        o.checks.iter().filter(|c| !c.passed).collect::<Vec<_>>()
    );
    assert_eq!(o.verdict, Verdict::Advanced);
    assert_eq!(o.verdict_source, VerdictSource::Measured);
    assert_eq!(o.decision, Decision::Continue);
    assert!(o.checks.iter().all(|c| !c.reason.is_empty()));
}

/// A named way to break one contract check.
type Breach = (&'static str, Box<dyn Fn(&mut RoundEvidence)>);

#[test]
fn each_contract_breach_fails_its_check() {
    let cases: Vec<Breach> = vec![
        (
            "git.campaign_branch",
            Box::new(|e| e.current_branch = Some("main".into())),
        ),
        ("git.campaign_branch", Box::new(|e| e.current_branch = None)),
        (
            "git.clean",
            Box::new(|e| e.uncommitted_paths = vec!["python/x.py".into()]),
        ),
        (
            "plan.unchanged",
            Box::new(|e| e.plan_digest_now = Some("other".into())),
        ),
        (
            "git.no_runtime_state",
            Box::new(|e| e.tracked_paths.push(".humanize/rlcr/state.md".into())),
        ),
        (
            "git.no_runtime_state",
            Box::new(|e| e.tracked_paths.push("sub/.sota/x".into())),
        ),
        (
            "secrets.none",
            Box::new(|e| {
                e.added_text.push(ChangedText {
                    path: "a.txt".into(),
                    text: "token hf_abcdefghijklmnopqrstuvwxyz0123456789".into(),
                })
            }),
        ),
        (
            // A configured secret without any known prefix: found by value.
            "secrets.none",
            Box::new(|e| {
                std::env::set_var("SOTA_GATE_TEST_KEY", "noprefix7Hq2Wd9Lc4");
                sota_bot::secrets::register_env_name("SOTA_GATE_TEST_KEY");
                e.added_text.push(ChangedText {
                    path: "rounds/round-1/summary.md".into(),
                    text: "the agent found noprefix7Hq2Wd9Lc4 in its env".into(),
                })
            }),
        ),
        (
            // A private key whose BEGIN line is in the file: the whole block is a finding.
            "secrets.none",
            Box::new(|e| {
                e.added_text.push(ChangedText {
                    path: "rounds/round-1/gate-input.json".into(),
                    text:
                        "{\"log\": \"-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEAu1SU\\n\"}"
                            .into(),
                })
            }),
        ),
        (
            "files.round_summary",
            Box::new(|e| e.tracked_paths.retain(|p| !p.ends_with("summary.md"))),
        ),
        (
            "files.checkpoint",
            Box::new(|e| {
                e.changed_paths
                    .retain(|p| !p.ends_with("model-loop-checkpoint.md"))
            }),
        ),
        (
            "contract.unchanged",
            Box::new(|e| e.current_contract = Some("{\"num_prompts\":2}".into())),
        ),
        (
            "contract.row_workload",
            Box::new(|e| e.round_rows[0].workload.num_prompts = Some(2)),
        ),
        (
            "contract.row_workload",
            Box::new(|e| e.round_rows[1].sla.max_p50_ttft_ms = Some(9e9)),
        ),
        (
            "revalidation.rows",
            Box::new(|e| {
                e.round_rows
                    .iter_mut()
                    .for_each(|r| r.commit = Some("zzz".into()))
            }),
        ),
        (
            "revalidation.rows",
            Box::new(|e| {
                e.round_rows.pop();
            }),
        ),
        (
            "evidence.profiles",
            Box::new(|e| e.changed_paths.retain(|p| !p.contains("/profiles/"))),
        ),
        (
            "evidence.root_cause",
            Box::new(|e| e.changed_paths.retain(|p| !p.ends_with("root-cause.md"))),
        ),
        (
            "evidence.layer_pipeline",
            Box::new(|e| {
                e.tracked_paths
                    .retain(|p| !p.ends_with("layer-pipeline.md"));
            }),
        ),
        (
            "ledger.attempt_appended",
            Box::new(|e| e.attempt_rows_after = 0),
        ),
        (
            "ledger.optimization_justified",
            Box::new(|e| e.geomean_improvement_pct = Some(0.2)),
        ),
        (
            "ledger.optimization_justified",
            Box::new(|e| e.round_rows[0].sla.passed = Some(false)),
        ),
        (
            "ledger.optimization_justified",
            Box::new(|e| {
                e.optimization_rows_before = 2;
                e.optimization_rows_after = 1;
            }),
        ),
        (
            "patch.source_changed",
            Box::new(|e| e.changed_paths.retain(|p| p.starts_with(RUN))),
        ),
    ];
    for (id, mutate) in cases {
        let mut ev = good();
        mutate(&mut ev);
        let f = failed(&ev);
        assert!(f.contains(&id.to_string()), "{id}: failed = {f:?}");
        let o = review_round(&ev, &GateConfig::default());
        assert!(!o.accepted);
        assert_ne!(
            o.verdict,
            Verdict::Advanced,
            "a rejected round is never progress"
        );
    }
}

#[test]
fn profiling_checks_only_when_behind() {
    let mut ev = good();
    ev.behind_at_start = false;
    ev.changed_paths
        .retain(|p| !p.contains("/profiles/") && !p.ends_with("root-cause.md"));
    assert!(failed(&ev).is_empty(), "{:?}", failed(&ev));
}

#[test]
fn measured_verdicts_follow_the_threshold() {
    for (g, v) in [
        (Some(1.0), Verdict::Advanced),
        (Some(0.99), Verdict::Stalled),
        (Some(-1.0), Verdict::Regressed),
        (None, Verdict::Stalled),
    ] {
        let mut ev = good();
        ev.geomean_improvement_pct = g;
        ev.optimization_rows_after = 0;
        assert_eq!(
            review_round(&ev, &GateConfig::default()).verdict,
            v,
            "{g:?}"
        );
    }
}

#[test]
fn replan_after_two_and_drift_stop_after_three() {
    let mut ev = good();
    ev.geomean_improvement_pct = Some(0.1);
    ev.optimization_rows_after = 0;
    ev.round = 2;
    ev.prior_verdicts = vec![Verdict::Stalled];
    ev.prior_improvements_pct = vec![0.0];
    let o = review_round(&ev, &GateConfig::default());
    assert_eq!(o.decision, Decision::Replan);
    assert!(
        o.research_first,
        "two rounds under 1% require code-first research"
    );
    ev.round = 3;
    ev.prior_verdicts = vec![Verdict::Advanced, Verdict::Regressed, Verdict::Stalled];
    let o = review_round(&ev, &GateConfig::default());
    assert_eq!(
        o.decision,
        Decision::Stop {
            reason: StopReason::DriftStop
        }
    );
    ev.prior_verdicts = vec![Verdict::Stalled, Verdict::Advanced, Verdict::Stalled];
    assert_eq!(
        review_round(&ev, &GateConfig::default()).decision,
        Decision::Replan
    );
}

#[test]
fn stop_conditions() {
    let cfg = GateConfig::default();
    let mut ev = good();
    ev.gaps_after = vec![
        gap("chat", GapStatus::Ahead { gap_pct: 3.0 }),
        gap("summarization", GapStatus::NoCompetitor),
    ];
    assert_eq!(
        review_round(&ev, &cfg).decision,
        Decision::Stop {
            reason: StopReason::SglangAhead
        }
    );
    ev.gaps_after = vec![
        gap("chat", GapStatus::Ahead { gap_pct: 3.0 }),
        gap(
            "summarization",
            GapStatus::Tied {
                gap_pct: -0.5,
                repeats_done: true,
            },
        ),
    ];
    assert_eq!(
        review_round(&ev, &cfg).decision,
        Decision::Stop {
            reason: StopReason::TiedWithinNoise
        }
    );
    ev.gaps_after = vec![gap(
        "chat",
        GapStatus::Tied {
            gap_pct: -0.5,
            repeats_done: false,
        },
    )];
    assert_eq!(
        review_round(&ev, &cfg).decision,
        Decision::Continue,
        "a tie without repeats does not stop"
    );
    ev.gaps_after = vec![gap("chat", GapStatus::Behind { gap_pct: -5.0 })];
    ev.stop_claim = Some(StopClaim::External {
        reason: "no fp8 on this GPU".into(),
        evidence: vec!["analysis/root-cause.md".into()],
    });
    assert!(matches!(
        review_round(&ev, &cfg).decision,
        Decision::Stop {
            reason: StopReason::ProvenExternal(_)
        }
    ));
    ev.stop_claim = Some(StopClaim::NearLimit {
        reason: "memory bound".into(),
        evidence: vec![],
    });
    assert_eq!(
        review_round(&ev, &cfg).decision,
        Decision::Continue,
        "a claim without evidence does not stop"
    );
    // A rejected round cannot stop the campaign as a success.
    ev.stop_claim = None;
    ev.gaps_after = vec![gap("chat", GapStatus::Ahead { gap_pct: 3.0 })];
    ev.current_contract = Some("changed".into());
    assert_eq!(review_round(&ev, &cfg).decision, Decision::Continue);
}

#[test]
fn max_rounds_wait_for_human_and_full_alignment() {
    let mut ev = good();
    ev.round = 42;
    let cfg = GateConfig::default();
    assert_eq!(
        review_round(&ev, &cfg).decision,
        Decision::Stop {
            reason: StopReason::MaxRounds(42)
        }
    );
    ev.round = 4;
    let o = review_round(
        &ev,
        &GateConfig {
            wait_for_human: true,
            ..GateConfig::default()
        },
    );
    assert_eq!(o.decision, Decision::WaitForHuman);
    assert!(o.full_alignment_review);
    ev.round = 5;
    assert!(!review_round(&ev, &cfg).full_alignment_review);
}

#[test]
fn reviewer_verdict_and_end_word() {
    let cfg = GateConfig::default();
    let mut ev = good();
    ev.reviewer_response =
        Some("Looks fine.\nMainline Progress Verdict: STALLED\n\nkeep going".into());
    let o = review_round(&ev, &cfg);
    assert_eq!(
        (o.verdict, o.verdict_source),
        (Verdict::Stalled, VerdictSource::Reviewer)
    );
    assert_eq!(o.decision, Decision::Continue);
    ev.reviewer_response = Some("Mainline Progress Verdict: ADVANCED\nCOMPLETE".into());
    assert_eq!(
        review_round(&ev, &cfg).decision,
        Decision::Stop {
            reason: StopReason::Reviewer("COMPLETE".into())
        }
    );
    ev.reviewer_response = Some("no verdict here\nSTOP".into());
    let o = review_round(&ev, &cfg);
    assert!(!o.accepted, "the verdict line is required");
    assert!(o
        .checks
        .iter()
        .any(|c| c.id == "reviewer.verdict_line" && !c.passed));
    ev.reviewer_response = None;
    ev.reviewer_error = Some("HTTP 500".into());
    assert!(!review_round(&ev, &cfg).accepted);
}

#[test]
fn the_gate_is_deterministic() {
    let ev = good();
    assert_eq!(
        review_round(&ev, &GateConfig::default()),
        review_round(&ev, &GateConfig::default())
    );
}

#[test]
fn a_failed_agent_round_measures_nothing_continues_once_then_holds() {
    use sota_bot::gate::{AgentFailure, AgentReport};
    let mut ev = good();
    // Whatever noise the rows hold, a failed agent round reads nothing from them.
    ev.geomean_improvement_pct = None;
    ev.round_rows.clear();
    ev.prior_verdicts = vec![Verdict::Stalled, Verdict::Stalled];
    ev.agent = Some(AgentReport {
        outcome: "exit 1".into(),
        failure: Some(AgentFailure::Exited {
            code: 1,
            message: Some("API Error: 529 overloaded".into()),
        }),
        ..AgentReport::default()
    });
    let o = review_round(&ev, &GateConfig::default());
    assert_eq!(o.verdict_source, VerdictSource::AgentFailed);
    assert!(!o.accepted);
    assert_eq!(
        o.decision,
        Decision::Continue,
        "no drift stop from an agent failure: {}",
        o.reason
    );
    assert!(failed(&ev).contains(&"agent.completed".to_string()));
    assert!(
        !failed(&ev).contains(&"revalidation.rows".to_string()),
        "nothing to revalidate"
    );
    ev.prior_agent_failures = 1;
    let o = review_round(&ev, &GateConfig::default());
    assert_eq!(o.decision, Decision::WaitForHuman);
    assert!(
        o.reason.contains("overloaded") && o.reason.contains("/sota retry"),
        "{}",
        o.reason
    );
}

#[test]
fn the_agent_cost_budget_stops_the_campaign() {
    let mut ev = good();
    let cfg = GateConfig {
        max_agent_cost_usd: Some(10.0),
        ..GateConfig::default()
    };
    ev.agent_cost_usd_total = Some(9.5);
    assert_eq!(review_round(&ev, &cfg).decision, Decision::Continue);
    ev.agent_cost_usd_total = Some(10.2);
    let o = review_round(&ev, &cfg);
    assert_eq!(
        o.decision,
        Decision::Stop {
            reason: StopReason::AgentBudget(10.0)
        }
    );
    assert!(o.reason.contains("$10.00"), "{}", o.reason);
    assert_eq!(
        review_round(&ev, &GateConfig::default()).decision,
        Decision::Continue
    );
}

#[test]
fn the_secrets_check_names_the_variable_never_the_value() {
    std::env::set_var("SOTA_GATE_TEST_NAMED", "namedvalue4Tr8Yp2");
    sota_bot::secrets::register_env_name("SOTA_GATE_TEST_NAMED");
    let mut ev = good();
    ev.added_text.push(ChangedText {
        path: "rounds/round-1/agent-log-tail.txt".into(),
        text: "echo namedvalue4Tr8Yp2".into(),
    });
    let o = review_round(&ev, &GateConfig::default());
    let check = o.checks.iter().find(|c| c.id == "secrets.none").unwrap();
    assert!(!check.passed);
    assert!(
        check.reason.contains("value of SOTA_GATE_TEST_NAMED"),
        "{}",
        check.reason
    );
    assert!(!check.reason.contains("namedvalue4Tr8Yp2"));
}
