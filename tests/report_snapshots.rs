//! Snapshot tests of every rendered document.

use sota_bot::campaign::state::{
    BestRow, CampaignState, Phase, RoundRecord, StopRecord, WinnerRef,
};
use sota_bot::gate::{
    review_round, GapStatus, GateConfig, RoundEvidence, ScenarioGapView, Verdict,
};
use sota_bot::report::*;

fn gaps(a: f64, b: f64) -> Vec<ScenarioGapView> {
    vec![
        ScenarioGapView {
            scenario: "chat".into(),
            leader: Some("vLLM `vllm-tuned`".into()),
            sglang_value: Some(900.0),
            leader_value: Some(1000.0),
            status: GapStatus::Behind { gap_pct: a },
        },
        ScenarioGapView {
            scenario: "summarization".into(),
            leader: Some("vLLM `vllm-tuned`".into()),
            sglang_value: Some(990.0),
            leader_value: Some(1000.0),
            status: GapStatus::Tied {
                gap_pct: b,
                repeats_done: false,
            },
        },
    ]
}

fn outcome() -> sota_bot::gate::GateOutcome {
    let ev = RoundEvidence {
        round: 4,
        run_dir: "runs/x".into(),
        campaign_branch: "sota/x".into(),
        current_branch: Some("sota/x".into()),
        reviewer_response: Some(
            "Solid patch.\nMainline Progress Verdict: ADVANCED\ncontinue".into(),
        ),
        ..Default::default()
    };
    review_round(&ev, &GateConfig::default())
}

fn state() -> CampaignState {
    let mut s = CampaignState::new(
        "c-1",
        "meta-llama/Llama-3.1-8B-Instruct",
        "sota/20260102-llama",
        "runs/20260102_llama_sota_humanize",
        "0123456789abcdef",
    );
    s.hardware = "1x H100".into();
    s.workload = "dataset `random`, 80 prompts".into();
    s.sla = "p50 TTFT <= 1000 ms".into();
    s.phase = Phase::Stopped;
    s.baseline_commit = Some("aaaaaaaaaaaaaaaa".into());
    s.winners = vec![WinnerRef {
        framework: "vllm".into(),
        scenario: "chat".into(),
        candidate_id: "vllm-tuned".into(),
        value: Some(1000.0),
        server_command: Some("vllm serve m".into()),
        benchmark_command: Some("vllm bench serve".into()),
    }];
    s.best_sglang = vec![BestRow {
        scenario: "chat".into(),
        candidate_id: "sglang-baseline".into(),
        value: 1050.0,
        round: 2,
        commit: Some("bbbbbbbbbbbbbbbb".into()),
    }];
    s.gaps = gaps(-10.0, -0.5);
    s.rounds = vec![RoundRecord {
        round: 1,
        title: "fuse | rope".into(),
        commit: Some("c".into()),
        measured_commit: Some("cccccccccccc".into()),
        accepted: true,
        verdict: Verdict::Advanced,
        decision: "continue".into(),
        reason: "r".into(),
        geomean_pct: Some(6.0),
        gaps: gaps(-5.0, 1.5),
        changed_files: vec!["python/sglang/srt/rope.py".into()],
        agent_failed: false,
        agent_cost_usd: Some(0.42),
    }];
    s.tests = vec!["pytest test_rope.py".into()];
    s.next_planned_patch = Some("fuse the norm".into());
    s.stop = Some(StopRecord {
        after_round: 2,
        reason: "SGLang beats".into(),
        reached_sota: true,
        unmeasurable: false,
    });
    s
}

#[test]
fn round_report() {
    let o = outcome();
    let ledger = sota_bot::campaign::ledger::append_attempt(
        "",
        &sota_bot::campaign::ledger::AttemptRow {
            round: 4,
            title: "t".into(),
            idea: "i".into(),
            files: vec![],
            commit: None,
            geomean_pct: Some(2.0),
            verdict: "ADVANCED".into(),
            outcome: "ok".into(),
        },
    );
    let md = render_round_report(&RoundReportInput {
        campaign_id: "c-1",
        title: "fuse rope",
        metric: "output token throughput (tok/s)",
        gaps_before: &gaps(-10.0, -0.5),
        gaps_after: &gaps(-4.0, 0.2),
        outcome: &o,
        geomean_pct: Some(6.25),
        attempt_ledger_md: &ledger,
        chart_path: "gap-chart.svg",
        artifacts: vec!["runs/x/rounds/round-4/prompt.md".into()],
        agent: Some(&sota_bot::gate::AgentReport {
            agent: "claude (model claude-sonnet-4-5, max 100 turns)".into(),
            outcome: "ok".into(),
            duration_secs: 412.3,
            usage: sota_bot::runner::agent::AgentUsage {
                turns: Some(37),
                input_tokens: Some(1_204_331),
                output_tokens: Some(18_204),
                cost_usd: Some(3.1872),
                error: None,
            },
            failure: None,
            commits: vec!["Fuse rotary embedding into the QKV projection".into()],
            log_tail: String::new(),
        }),
    })
    .unwrap();
    assert!(md.contains("| chat | vLLM `vllm-tuned` | -10.00% | -4.00% | +6.00 pp |"));
    insta::assert_snapshot!("round_report", md);
}

#[test]
fn review_embeds_reviewer_text() {
    let md = render_review(&outcome()).unwrap();
    assert!(md.contains("Mainline Progress Verdict: ADVANCED"));
    assert!(md.contains("Solid patch."));
    insta::assert_snapshot!("review", md);
}

#[test]
fn round_prompt() {
    let v = RoundPromptView {
        round: 3,
        model: "m".into(),
        hardware: "1x H100".into(),
        competitors: "vLLM".into(),
        checkout: "/src/sglang".into(),
        branch: "sota/x".into(),
        run_dir: "runs/x".into(),
        plan_path: "runs/x/plan.md".into(),
        summary_path: "runs/x/rounds/round-3/summary.md".into(),
        workload: "w".into(),
        sla: "s".into(),
        noise_threshold: "1".into(),
        metric: "tok/s".into(),
        gaps: prompt_gaps(&gaps(-3.0, 0.0)),
        evidence: vec!["runs/x/analysis/root-cause.md".into()],
        research_first: true,
        replan: true,
        full_alignment: false,
        last_review: Some("# Review of round 2\n\nMainline Progress Verdict: STALLED".into()),
        maintainer_note: Some("Look at the MoE gate before attention.".into()),
        history_quote: Some(
            "### Latest performance-related changes\n\n- `c1c1c1c1c1` 2025-03-01 #12 Faster llama decode (#12)".into(),
        ),
    };
    let md = render_round_prompt(&v).unwrap();
    assert!(md.contains(
        "## Maintainer note for this round (verbatim)\n\nA maintainer asked for this round with the note below."
    ));
    assert!(md.contains("\nLook at the MoE gate before attention.\n"));
    let without = render_round_prompt(&RoundPromptView {
        maintainer_note: None,
        ..v.clone()
    })
    .unwrap();
    assert!(!without.contains("Maintainer note"));
    assert!(md.contains("## What SGLang already did for this model"));
    assert!(md.contains("- `c1c1c1c1c1` 2025-03-01 #12 Faster llama decode (#12)"));
    assert!(md.contains("expand code-first research"));
    assert!(md.contains("Replan required"));
    assert!(md.contains("# Review of round 2\n\nMainline Progress Verdict: STALLED"));
    insta::assert_snapshot!("round_prompt", md);
}

#[test]
fn plan() {
    let v = PlanView {
        campaign_id: "c-1".into(),
        model: "m".into(),
        hardware: "1x H100".into(),
        branch: "sota/x".into(),
        run_dir: "runs/x".into(),
        checkout: "/src".into(),
        workload: "w".into(),
        sla: "s".into(),
        metric: "tok/s".into(),
        noise_threshold: "1".into(),
        selected: "vLLM".into(),
        excluded: "TensorRT-LLM".into(),
        unsupported: "none".into(),
        max_rounds: 42,
        winners: vec![PlanWinnerView {
            scenario: "chat".into(),
            framework: "vllm".into(),
            candidate: "v".into(),
            value: "1000.000".into(),
            command: "vllm serve m".into(),
        }],
        gaps: prompt_gaps(&gaps(-3.0, 0.0)),
    };
    insta::assert_snapshot!("plan", render_plan(&v).unwrap());
}

#[test]
fn checkpoint_round_trips() {
    let s = state();
    let md = render_checkpoint(&s).unwrap();
    assert_eq!(sota_bot::campaign::state::parse_checkpoint(&md).unwrap(), s);
    insta::assert_snapshot!("checkpoint", md);
}

#[test]
fn final_report() {
    let s = state();
    let v = FinalReportView {
        campaign_id: "c-1".into(),
        model: s.model.clone(),
        hardware: "1x H100".into(),
        reached_sota: true,
        stop_reason: "SGLang beats".into(),
        last_round: 2,
        branch: s.branch.clone(),
        final_commit: "ffff".into(),
        workload: "w".into(),
        sla: "s".into(),
        selected: "vLLM".into(),
        excluded: "none".into(),
        unsupported: "none".into(),
        metric: "tok/s".into(),
        fixed_rows: vec![FixedRowView {
            scenario: "chat".into(),
            framework: "vLLM".into(),
            candidate: "v".into(),
            status: "ok".into(),
            sla: "pass".into(),
            value: "1000.00".into(),
            ttft: "50.00".into(),
            tpot: "10.00".into(),
        }],
        post_rows: vec![PostRowView {
            scenario: "chat".into(),
            sglang: "1050.00".into(),
            round: "2".into(),
            commit: "bbbbbbbbbb".into(),
            leader: "vLLM".into(),
            leader_value: "1000.00".into(),
            gap: "+5.00%".into(),
        }],
        rounds: round_lines(&s),
        winners: vec![WinnerCommandView {
            framework: "vLLM".into(),
            scenario: "chat".into(),
            candidate: "v".into(),
            server_command: "vllm serve m".into(),
            benchmark_command: "vllm bench serve".into(),
        }],
        history_paths: vec!["runs/x/history/model-pr-history-notes.md".into()],
        profile_paths: vec![],
        layer_paths: vec!["runs/x/analysis/layer-pipeline.md".into()],
        ncu_paths: vec![],
        changed_files: vec!["python/sglang/srt/rope.py".into()],
        tests: s.tests.clone(),
    };
    let md = render_final_report(&v).unwrap();
    assert!(md.contains("fuse \\| rope"));
    insta::assert_snapshot!("final_report", md);
}

#[test]
fn history_notes() {
    use sota_bot::history::notes::{CitedPr, KnowledgeFile};
    use sota_bot::history::{Area, CitedCommit, HistoryReport, UpstreamPr};
    let commit = |sha: &str, subject: &str, pr: Option<u64>, area: Area, perf: bool| CitedCommit {
        sha: sha.repeat(40 / sha.len()),
        date: "2025-03-01".into(),
        subject: subject.into(),
        pr,
        paths: if area == Area::Mentions {
            vec![]
        } else {
            vec!["python/sglang/srt/models/llama.py".into()]
        },
        removed_paths: vec![],
        renamed_from: vec![],
        area,
        perf,
        revert: false,
        merge: false,
        names_family: area == Area::Mentions,
    };
    let r = HistoryReport {
        model: "meta-llama/Llama-3.1-8B-Instruct".into(),
        family: "llama".into(),
        family_keys: vec!["llama".into()],
        other_models: vec!["llama4".into()],
        architectures: vec!["LlamaForCausalLM".into()],
        architecture_source: "inferred from the model id".into(),
        head: Some("ab".repeat(20)),
        model_files: vec!["python/sglang/srt/models/llama.py".into()],
        layer_files: vec!["python/sglang/srt/layers/layernorm.py".into()],
        kernel_files: vec![],
        commits_read: 100,
        commits: vec![
            commit(
                "c1",
                "Faster llama decode (#12)",
                Some(12),
                Area::Model,
                true,
            ),
            commit("d2", "[Llama] docs (#11)", Some(11), Area::Mentions, false),
        ],
        upstream: Some("sgl-project/sglang".into()),
        open_prs: vec![UpstreamPr {
            number: 40,
            title: "[Llama] fuse qkv | rope".into(),
            url: "https://github.com/sgl-project/sglang/pull/40".into(),
            state: "open".into(),
            merged_at: None,
            in_checkout: None,
            in_flight: true,
        }],
        knowledge: vec![KnowledgeFile {
            path: "sglang/llama/README.en.md".into(),
            framework: "sglang".into(),
            prs: vec![CitedPr {
                number: 12,
                sha: Some("c1".repeat(20)),
                title: "Faster llama decode (#12)".into(),
            }],
            sources: vec!["python/sglang/srt/models/llama.py".into()],
            symbols: vec!["LlamaForCausalLM".into()],
            risks: vec!["Risk: accuracy".into()],
        }],
        blockers: vec!["`sglang/llama/README.en.md` cites #123: not cited".into()],
    };
    let md =
        sota_bot::history::render::render_markdown(&r, "`runs/x/history/model-pr-history.json`")
            .unwrap();
    insta::assert_snapshot!("history_notes", md);
}

#[test]
fn charts() {
    let series = vec![
        GapSeries {
            scenario: "chat".into(),
            points: vec![(0, Some(-10.0)), (1, Some(-4.0)), (2, Some(2.0))],
        },
        GapSeries {
            scenario: "summarization".into(),
            points: vec![(0, Some(-6.0)), (1, None), (2, Some(1.5))],
        },
    ];
    insta::assert_snapshot!("gap_svg", render_gap_svg(&series, 1.0));
    insta::assert_snapshot!("gap_mermaid", render_gap_mermaid(&series, 1.0));
}

#[test]
fn a_failed_agent_round_holds_with_the_reason_the_fix_and_the_log_tail() {
    use sota_bot::gate::{AgentFailure, AgentReport, GateConfig, RoundEvidence};
    let agent = AgentReport {
        agent: "claude (max 100 turns)".into(),
        outcome: "exit 1".into(),
        duration_secs: 2.1,
        usage: sota_bot::runner::agent::AgentUsage {
            turns: Some(1),
            input_tokens: Some(0),
            output_tokens: Some(0),
            cost_usd: Some(0.0),
            error: Some("Failed to authenticate. API Error: 401 invalid x-api-key".into()),
        },
        failure: Some(AgentFailure::Exited {
            code: 1,
            message: Some("Failed to authenticate. API Error: 401 invalid x-api-key".into()),
        }),
        commits: vec![],
        log_tail: "--- agent error ---\nFailed to authenticate. API Error: 401 invalid x-api-key\n"
            .into(),
    };
    let ev = RoundEvidence {
        round: 2,
        run_dir: "runs/x".into(),
        campaign_branch: "sota/b".into(),
        current_branch: Some("sota/b".into()),
        changed_paths: vec!["runs/x/rounds/round-2/prompt.md".into()],
        tracked_paths: vec!["runs/x/rounds/round-2/prompt.md".into()],
        attempt_rows_before: 1,
        attempt_rows_after: 2,
        gaps_after: gaps(-10.0, -0.5),
        prior_verdicts: vec![],
        agent: Some(agent.clone()),
        prior_agent_failures: 1,
        plan_digest_at_start: Some("d".into()),
        plan_digest_now: Some("d".into()),
        ..Default::default()
    };
    let o = sota_bot::gate::review_round(&ev, &GateConfig::default());
    assert!(matches!(o.decision, sota_bot::gate::Decision::WaitForHuman));
    let md = render_round_report(&RoundReportInput {
        campaign_id: "c-1",
        title: "the agent failed",
        metric: "output token throughput (tok/s)",
        gaps_before: &gaps(-10.0, -0.5),
        gaps_after: &gaps(-10.0, -0.5),
        outcome: &o,
        geomean_pct: None,
        attempt_ledger_md: "",
        chart_path: "gap-chart.svg",
        artifacts: vec![],
        agent: Some(&agent),
    })
    .unwrap();
    insta::assert_snapshot!("round_report_agent_failed", md);
}
