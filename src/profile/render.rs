//! Markdown renderers for the round reports (`profiles/*.md`, `analysis/layer-pipeline.md`).

use std::fmt::Write;

use super::compare::TraceComparison;
use super::fuse::FuseRow;
use super::kernels::KernelRow;
use super::layers::LayerPipeline;
use super::overlap::OverlapRow;
use super::{StageAnalysis, TraceAnalysis};

/// Escapes a cell and shortens very long kernel names (full names stay in the JSON).
fn cell(s: &str) -> String {
    let mut t: String = s.chars().take(90).collect();
    if s.chars().count() > 90 {
        t.push('…');
    }
    t.replace('|', "\\|").replace('\n', " ")
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Kernel table of one stage.
pub fn render_kernel_table_md(stage: &str, total_gpu_us: f64, rows: &[KernelRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#### Kernel table: {stage} (GPU time {total_gpu_us:.1} µs)\n"
    );
    s.push_str("| kernel | category | GPU µs | share | launches | avg µs | CPU op | top Python locations |\n");
    s.push_str("| --- | --- | ---: | ---: | ---: | ---: | --- | --- |\n");
    for r in rows {
        let locs = r
            .python_locations
            .iter()
            .map(|l| format!("{} ({})", cell(&l.location), pct(l.share)))
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            s,
            "| `{}` | {} | {:.1} | {} | {} | {:.2} | {} | {} |",
            cell(&r.name),
            if r.folded_rows > 0 {
                "-"
            } else {
                r.category.label()
            },
            r.gpu_us,
            pct(r.share),
            r.launches,
            r.avg_us,
            r.cpu_op.as_deref().map(cell).unwrap_or_else(|| "-".into()),
            if locs.is_empty() {
                "-".to_string()
            } else {
                locs
            },
        );
    }
    s
}

/// Overlap-opportunity table of one stage.
pub fn render_overlap_table_md(stage: &str, wall_us: f64, rows: &[OverlapRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#### Overlap opportunities: {stage} (GPU wall {wall_us:.1} µs)\n"
    );
    s.push_str("| kernel family / gap | category | GPU µs | exclusive µs | hidden µs | exposed | count | dependency risk | priority | recommendation |\n");
    s.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| `{}` | {} | {:.1} | {:.1} | {:.1} | {} | {} | {:?} | {:?} | {} |",
            cell(&r.name),
            r.category.map(|c| c.label()).unwrap_or("idle"),
            r.gpu_us,
            r.exclusive_us,
            r.hidden_us,
            pct(r.exposed_share),
            r.count,
            r.dependency_risk,
            r.priority,
            r.recommendation.label(),
        );
    }
    s
}

/// Fuse-pattern table of one stage.
pub fn render_fuse_table_md(stage: &str, rows: &[FuseRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#### Fuse patterns: {stage}\n");
    if rows.is_empty() {
        s.push_str("No catalog pattern matched this stage.\n");
        return s;
    }
    s.push_str("| pattern | confidence | occurrences | share | evidence kernels | candidate fused path |\n");
    s.push_str("| --- | --- | ---: | ---: | --- | --- |\n");
    for r in rows {
        let ev = r
            .evidence
            .iter()
            .map(|e| format!("`{}` ({})", cell(&e.kernel), pct(e.share)))
            .collect::<Vec<_>>()
            .join("<br>");
        let sub = if r.subsumes.is_empty() {
            String::new()
        } else {
            format!(" (covers {})", r.subsumes.join(", "))
        };
        let _ = writeln!(
            s,
            "| {} `{}`{} | {:?} | {} | {} | {} | {} |",
            cell(&r.name),
            r.id,
            sub,
            r.confidence,
            r.occurrences,
            pct(r.share),
            ev,
            cell(&r.fused_path),
        );
    }
    s
}

fn render_stage(s: &mut String, st: &StageAnalysis) {
    let _ = writeln!(
        s,
        "### Stage `{}` ({} launches{}, GPU time {:.1} µs, GPU wall {:.1} µs, stage from {})\n",
        st.stage,
        st.launches,
        if st.graph_launches > 0 {
            format!(" ({} replayed from CUDA graphs)", st.graph_launches)
        } else {
            String::new()
        },
        st.total_gpu_us,
        st.wall_us,
        st.stage_source
    );
    s.push_str("| category | GPU µs | share | launches |\n| --- | ---: | ---: | ---: |\n");
    for c in &st.categories {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {} | {} |",
            c.category.label(),
            c.gpu_us,
            pct(c.share),
            c.launches
        );
    }
    s.push('\n');
    s.push_str(&render_kernel_table_md(
        &st.stage,
        st.total_gpu_us,
        &st.kernel_table,
    ));
    s.push('\n');
    s.push_str(&render_overlap_table_md(
        &st.stage,
        st.wall_us,
        &st.overlap_table,
    ));
    s.push('\n');
    s.push_str(&render_fuse_table_md(&st.stage, &st.fuse_table));
    s.push('\n');
}

/// The whole analysis: per stage, category roll-up and the three tables.
pub fn render_analysis_md(a: &TraceAnalysis) -> String {
    let mut s = String::new();
    s.push_str("## Profile analysis\n\n");
    let _ = writeln!(
        s,
        "- traces: {}",
        a.sources
            .iter()
            .map(|x| format!("`{x}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(d) = &a.device {
        let _ = writeln!(s, "- device: {d}");
    }
    if let (Some(r), Some(w)) = (a.rank, a.world_size) {
        let _ = writeln!(s, "- rank {r} of {w}");
    }
    let _ = writeln!(
        s,
        "- rows under {} of a stage are folded into a remainder row\n",
        pct(a.min_share)
    );
    for st in &a.stages {
        render_stage(&mut s, st);
    }
    s
}

/// `analysis/layer-pipeline.md`.
pub fn render_layer_pipeline_md(p: &LayerPipeline) -> String {
    let mut s = String::new();
    s.push_str("# Layer pipeline\n\n");
    if p.passes.is_empty() {
        s.push_str("No forward pass found in the trace.\n");
        return s;
    }
    s.push_str("## Forward passes\n\n");
    let graphs = p.passes.iter().filter(|x| x.cuda_graph).count();
    let mut stages: Vec<(&str, usize)> = Vec::new();
    for ps in &p.passes {
        match stages.iter_mut().find(|x| x.0 == ps.stage) {
            Some(x) => x.1 += 1,
            None => stages.push((&ps.stage, 1)),
        }
    }
    let counts: Vec<String> = stages.iter().map(|(st, n)| format!("{n} {st}")).collect();
    let _ = writeln!(
        s,
        "{} pass{} found from the kernel sequence: {}; {graphs} ran as CUDA-graph replays.\n",
        p.passes.len(),
        if p.passes.len() == 1 { "" } else { "es" },
        counts.join(", ")
    );
    s.push_str(
        "| pass | stage | name | CUDA graph | start ts (µs) | wall µs | GPU µs | kernels | layers | pass boundaries | layer boundaries |\n",
    );
    s.push_str("| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n");
    for ps in &p.passes {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.3} | {:.1} | {:.1} | {} | {} | {} | {} |",
            ps.index,
            ps.stage,
            cell(&ps.name),
            if ps.cuda_graph {
                format!(
                    "yes ({} replay{})",
                    ps.graph_replays,
                    if ps.graph_replays == 1 { "" } else { "s" }
                )
            } else {
                "no".to_string()
            },
            ps.start_us,
            ps.wall_us,
            ps.gpu_us,
            ps.kernels,
            ps.layers.len(),
            cell(&ps.pass_boundaries),
            cell(&ps.layer_boundaries),
        );
    }
    s.push_str("\n### Stage of each pass\n\n");
    let mut why: Vec<(&str, &str, Vec<u32>)> = Vec::new();
    for ps in &p.passes {
        match why
            .iter_mut()
            .find(|w| w.0 == ps.stage && w.1 == ps.stage_evidence)
        {
            Some(w) => w.2.push(ps.index),
            None => why.push((&ps.stage, &ps.stage_evidence, vec![ps.index])),
        }
    }
    for (stage, evidence, idx) in &why {
        let label = if idx.len() == 1 { "pass" } else { "passes" };
        let _ = writeln!(s, "- {stage} ({label} {}): {evidence}", ranges_of(idx));
    }
    let annotated: Vec<&crate::profile::layers::Pass> =
        p.passes.iter().filter(|x| x.annotation.is_some()).collect();
    if !annotated.is_empty() {
        let against: Vec<String> = annotated
            .iter()
            .filter(|x| x.annotation_agrees == Some(false))
            .map(|x| {
                format!(
                    "pass {} (`{}`)",
                    x.index,
                    x.annotation.as_deref().unwrap_or("")
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "- annotations: {} of {} passes lie inside a forward annotation; {}",
            annotated.len(),
            p.passes.len(),
            if against.is_empty() {
                "no annotation names another stage".to_string()
            } else {
                format!("these name another stage: {}", against.join(", "))
            }
        );
    }
    let unsure: Vec<&crate::profile::layers::Pass> =
        p.passes.iter().filter(|x| x.uncertain.is_some()).collect();
    if !unsure.is_empty() {
        s.push_str("\n### Uncertain segmentation\n\n");
        for ps in unsure {
            let _ = writeln!(
                s,
                "- pass {}: {}",
                ps.index,
                ps.uncertain.as_deref().unwrap_or("")
            );
        }
    }
    s.push_str("\n## Chosen pass\n\n");
    for c in &p.chosen {
        let _ = writeln!(s, "- `{}`: pass {} — {}", c.stage, c.pass_index, c.reason);
    }
    s.push_str("\n## Layer types\n\n");
    s.push_str("| stage | type | attention | position | layers | mean wall µs | min | max | mean GPU µs | share of pass wall |\n");
    s.push_str("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in &p.layer_types {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            r.stage,
            r.kind,
            r.attention.as_deref().unwrap_or("-"),
            r.position,
            r.layers,
            r.mean_wall_us,
            r.min_wall_us,
            r.max_wall_us,
            r.mean_gpu_us,
            pct(r.share_of_pass),
        );
    }
    let _ = writeln!(s, "\n## Representative layers\n\nRule: {}.\n", p.rule);
    for r in &p.representatives {
        let _ = writeln!(
            s,
            "### `{}` {} layer {} of pass {} (attention: {})\n",
            r.stage,
            r.kind,
            r.layer_index,
            r.pass_index,
            r.attention.as_deref().unwrap_or("none")
        );
        let _ = writeln!(
            s,
            "Wall {:.1} µs (type median {:.1} µs). Inspect in Perfetto: ts {:.3} .. {:.3} µs \
             ({:.3} .. {:.3} ms after the stage's first GPU op).\n",
            r.wall_us, r.median_wall_us, r.start_us, r.end_us, r.offset_start_ms, r.offset_end_ms
        );
        s.push_str(
            "| hot kernel | category | GPU µs | share of layer |\n| --- | --- | ---: | ---: |\n",
        );
        for k in &r.hot_kernels {
            let _ = writeln!(
                s,
                "| `{}` | {} | {:.1} | {} |",
                cell(&k.name),
                k.category.label(),
                k.gpu_us,
                pct(k.share)
            );
        }
        s.push('\n');
    }
    s
}

/// `0-3, 5, 7-9` for sorted indices.
fn ranges_of(idx: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut k = 0;
    while k < idx.len() {
        let mut j = k;
        while j + 1 < idx.len() && idx[j + 1] == idx[j] + 1 {
            j += 1;
        }
        parts.push(if j == k {
            idx[k].to_string()
        } else {
            format!("{}-{}", idx[k], idx[j])
        });
        k = j + 1;
    }
    parts.join(", ")
}

/// Side-by-side comparison of two frameworks' traces.
pub fn render_comparison_md(c: &TraceComparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Profile comparison: `{}` vs `{}`\n",
        c.left_label, c.right_label
    );
    let _ = writeln!(s, "{}\n", c.summary);
    for st in &c.stages {
        let _ = writeln!(
            s,
            "### Stage `{}`: {:.1} µs vs {:.1} µs GPU time (gap {:+.1} µs)\n",
            st.stage, st.left_gpu_us, st.right_gpu_us, st.gap_us
        );
        s.push_str("| category | left µs | right µs | delta µs | share of gap |\n| --- | ---: | ---: | ---: | ---: |\n");
        for r in &st.categories {
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.1} | {:+.1} | {} |",
                r.category.label(),
                r.left_us,
                r.right_us,
                r.delta_us,
                pct(r.share_of_gap)
            );
        }
        s.push_str("\n| kernel family | category | left µs | right µs | delta µs | share of gap |\n| --- | --- | ---: | ---: | ---: | ---: |\n");
        for r in &st.families {
            let _ = writeln!(
                s,
                "| `{}` | {} | {:.1} | {:.1} | {:+.1} | {} |",
                cell(&r.family),
                r.category.label(),
                r.left_us,
                r.right_us,
                r.delta_us,
                pct(r.share_of_gap)
            );
        }
        s.push('\n');
    }
    s
}
