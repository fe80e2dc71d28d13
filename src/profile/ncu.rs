//! Nsight Compute digests: parse `ncu --csv --page details` and `--page raw` exports of a
//! baseline and a candidate, compare per kernel, and name exactly one next edit from the
//! dominant limiter of the hottest kernel.

use std::collections::BTreeMap;

use serde::Serialize;

use super::names::canonical_name;

/// Errors parsing an NCU CSV export.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NcuError {
    #[error("{origin}: CSV error at line {line}: {message}")]
    Csv {
        origin: String,
        line: u64,
        message: String,
    },
    #[error("{origin}: not an NCU CSV export (header has no {missing} column)")]
    NotNcu {
        origin: String,
        missing: &'static str,
    },
    #[error("{origin}: no profiled kernels in the export")]
    Empty { origin: String },
}

/// A metric value as exported (`"28,986"` becomes 28986.0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricValue {
    pub unit: String,
    pub value: Option<f64>,
    pub text: String,
}

/// A rule result of the details page (`Rule Name`, `Estimated Speedup`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHint {
    pub rule: String,
    pub kind: String,
    pub estimated_speedup_pct: Option<f64>,
    pub description: String,
}

/// One profiled launch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NcuLaunch {
    pub id: u32,
    pub kernel: String,
    pub block: String,
    pub grid: String,
    /// Details page: `Section/Metric`; raw page: the metric name.
    pub metrics: BTreeMap<String, MetricValue>,
    pub rules: Vec<RuleHint>,
}

/// Parsed export(s) of one run.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NcuReport {
    pub launches: Vec<NcuLaunch>,
}

fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim().replace(',', "");
    if t.is_empty() {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| v.is_finite())
}

impl NcuReport {
    /// Parses a details-page or raw-page CSV export (detected from the header).
    pub fn parse(text: &str, origin: &str) -> Result<Self, NcuError> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(text.as_bytes());
        let mut rows = rdr.records();
        let csv_err = |e: csv::Error| NcuError::Csv {
            origin: origin.to_string(),
            line: e.position().map(|p| p.line()).unwrap_or(0),
            message: e.to_string(),
        };
        // Skip banner lines (`==PROF== ...`) that ncu prints before the CSV when stdout
        // was captured together with the program output.
        let header = loop {
            match rows.next() {
                None => {
                    return Err(NcuError::Empty {
                        origin: origin.to_string(),
                    })
                }
                Some(r) => {
                    let r = r.map_err(csv_err)?;
                    if r.iter().any(|c| c == "ID") {
                        break r;
                    }
                }
            }
        };
        let col = |name: &'static str| header.iter().position(|h| h == name);
        let need = |name: &'static str| {
            col(name).ok_or(NcuError::NotNcu {
                origin: origin.to_string(),
                missing: name,
            })
        };
        let (id_c, kernel_c) = (need("ID")?, need("Kernel Name")?);
        let (block_c, grid_c) = (col("Block Size"), col("Grid Size"));
        let get = |r: &csv::StringRecord, c: Option<usize>| {
            c.and_then(|c| r.get(c)).unwrap_or("").to_string()
        };
        let mut report = NcuReport::default();
        let mut index_of: BTreeMap<u32, usize> = BTreeMap::new();
        if col("Metric Name").is_some() {
            let (sec_c, name_c, unit_c, val_c) = (
                col("Section Name"),
                need("Metric Name")?,
                col("Metric Unit"),
                need("Metric Value")?,
            );
            let (rule_c, rtype_c, rdesc_c, speed_c) = (
                col("Rule Name"),
                col("Rule Type"),
                col("Rule Description"),
                col("Estimated Speedup"),
            );
            for r in rows {
                let r = r.map_err(csv_err)?;
                let Some(id) = r.get(id_c).and_then(|s| s.trim().parse::<u32>().ok()) else {
                    continue;
                };
                let k = *index_of.entry(id).or_insert_with(|| {
                    report.launches.push(NcuLaunch {
                        id,
                        kernel: get(&r, Some(kernel_c)),
                        block: get(&r, block_c),
                        grid: get(&r, grid_c),
                        metrics: BTreeMap::new(),
                        rules: Vec::new(),
                    });
                    report.launches.len() - 1
                });
                let launch = &mut report.launches[k];
                let metric = get(&r, Some(name_c));
                if !metric.is_empty() {
                    let text = get(&r, Some(val_c));
                    launch.metrics.insert(
                        format!("{}/{}", get(&r, sec_c), metric),
                        MetricValue {
                            unit: get(&r, unit_c),
                            value: parse_number(&text),
                            text,
                        },
                    );
                }
                let rule = get(&r, rule_c);
                if !rule.is_empty() {
                    launch.rules.push(RuleHint {
                        rule,
                        kind: get(&r, rtype_c),
                        estimated_speedup_pct: parse_number(&get(&r, speed_c)),
                        description: get(&r, rdesc_c),
                    });
                }
            }
        } else {
            let mut units: Option<csv::StringRecord> = None;
            for r in rows {
                let r = r.map_err(csv_err)?;
                let Some(id) = r.get(id_c).and_then(|s| s.trim().parse::<u32>().ok()) else {
                    if units.is_none() {
                        units = Some(r);
                    }
                    continue;
                };
                let mut metrics = BTreeMap::new();
                for (c, name) in header.iter().enumerate() {
                    if c == id_c || c == kernel_c || name.is_empty() {
                        continue;
                    }
                    let text = r.get(c).unwrap_or("").to_string();
                    let unit = units
                        .as_ref()
                        .and_then(|u| u.get(c))
                        .unwrap_or("")
                        .to_string();
                    metrics.insert(
                        name.to_string(),
                        MetricValue {
                            unit,
                            value: parse_number(&text),
                            text,
                        },
                    );
                }
                report.launches.push(NcuLaunch {
                    id,
                    kernel: get(&r, Some(kernel_c)),
                    block: get(&r, block_c),
                    grid: get(&r, grid_c),
                    metrics,
                    rules: Vec::new(),
                });
            }
        }
        if report.launches.is_empty() {
            return Err(NcuError::Empty {
                origin: origin.to_string(),
            });
        }
        Ok(report)
    }

    /// Adds another export of the same run (details + raw): metrics merge by launch ID.
    pub fn merge(&mut self, other: NcuReport) {
        for l in other.launches {
            match self
                .launches
                .iter_mut()
                .find(|x| x.id == l.id && x.kernel == l.kernel)
            {
                Some(x) => {
                    for (k, v) in l.metrics {
                        x.metrics.entry(k).or_insert(v);
                    }
                    x.rules.extend(l.rules);
                }
                None => self.launches.push(l),
            }
        }
    }
}

/// Normalised metrics of one kernel (mean over its launches).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct KernelSummary {
    pub launches: u32,
    pub duration_us: Option<f64>,
    pub achieved_occupancy_pct: Option<f64>,
    pub theoretical_occupancy_pct: Option<f64>,
    pub dram_throughput_pct: Option<f64>,
    pub sm_throughput_pct: Option<f64>,
    pub memory_throughput_pct: Option<f64>,
    pub registers_per_thread: Option<f64>,
    pub block_size: Option<f64>,
    pub waves_per_sm: Option<f64>,
    pub warp_cycles_per_issue: Option<f64>,
    /// What caps theoretical occupancy (`registers`, `shared memory`, `warps`, ...).
    pub occupancy_limiter: Option<String>,
    /// Stall reasons, cycles per issued instruction, largest first (raw page, or parsed
    /// from the details page's CPIStall rule).
    pub stalls: Vec<(String, f64)>,
}

fn metric(l: &NcuLaunch, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| {
        let v = l.metrics.get(*k)?;
        let x = v.value?;
        Some(match v.unit.as_str() {
            "ns" | "nsecond" => x / 1000.0,
            "ms" | "msecond" => x * 1000.0,
            "s" | "second" => x * 1e6,
            _ => x,
        })
    })
}

fn launch_summary(l: &NcuLaunch) -> KernelSummary {
    let mut s = KernelSummary {
        launches: 1,
        duration_us: metric(
            l,
            &[
                "GPU Speed Of Light Throughput/Duration",
                "gpu__time_duration.sum",
            ],
        ),
        achieved_occupancy_pct: metric(
            l,
            &[
                "Occupancy/Achieved Occupancy",
                "sm__warps_active.avg.pct_of_peak_sustained_active",
            ],
        ),
        theoretical_occupancy_pct: metric(
            l,
            &[
                "Occupancy/Theoretical Occupancy",
                "sm__maximum_warps_per_active_cycle_pct",
            ],
        ),
        dram_throughput_pct: metric(
            l,
            &[
                "GPU Speed Of Light Throughput/DRAM Throughput",
                "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
                "dram__throughput.avg.pct_of_peak_sustained_elapsed",
            ],
        ),
        sm_throughput_pct: metric(
            l,
            &[
                "GPU Speed Of Light Throughput/Compute (SM) Throughput",
                "sm__throughput.avg.pct_of_peak_sustained_elapsed",
            ],
        ),
        memory_throughput_pct: metric(
            l,
            &[
                "GPU Speed Of Light Throughput/Memory Throughput",
                "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
            ],
        ),
        registers_per_thread: metric(
            l,
            &[
                "Launch Statistics/Registers Per Thread",
                "launch__registers_per_thread",
            ],
        ),
        block_size: metric(l, &["Launch Statistics/Block Size", "launch__block_size"]),
        waves_per_sm: metric(
            l,
            &[
                "Launch Statistics/Waves Per SM",
                "launch__waves_per_multiprocessor",
            ],
        ),
        warp_cycles_per_issue: metric(
            l,
            &[
                "Warp State Statistics/Warp Cycles Per Issued Instruction",
                "smsp__average_warp_latency_per_inst_issued.ratio",
            ],
        ),
        occupancy_limiter: None,
        stalls: Vec::new(),
    };
    let limits = [
        (
            "registers",
            &[
                "Occupancy/Block Limit Registers",
                "launch__occupancy_limit_registers",
            ][..],
        ),
        (
            "shared memory",
            &[
                "Occupancy/Block Limit Shared Mem",
                "launch__occupancy_limit_shared_mem",
            ][..],
        ),
        (
            "warps per block",
            &[
                "Occupancy/Block Limit Warps",
                "launch__occupancy_limit_warps",
            ][..],
        ),
        (
            "blocks per SM",
            &["Occupancy/Block Limit SM", "launch__occupancy_limit_blocks"][..],
        ),
    ];
    s.occupancy_limiter = limits
        .iter()
        .filter_map(|(n, k)| metric(l, k).map(|v| (*n, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(n, _)| n.to_string());
    const PREFIX: &str = "smsp__average_warps_issue_stalled_";
    const SUFFIX: &str = "_per_issue_active.ratio";
    for (k, v) in &l.metrics {
        if let (Some(rest), Some(x)) = (k.strip_prefix(PREFIX), v.value) {
            if let Some(reason) = rest.strip_suffix(SUFFIX) {
                if reason != "selected" && x > 0.0 {
                    s.stalls.push((reason.to_string(), x));
                }
            }
        }
    }
    if s.stalls.is_empty() {
        s.stalls = stalls_from_rules(&l.rules);
    }
    s.stalls
        .sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    s
}

/// The details page has no stall table, but its CPIStall rule names the top stall
/// ("spends 13.7 cycles being stalled waiting for a scoreboard dependency on a L1TEX").
fn stalls_from_rules(rules: &[RuleHint]) -> Vec<(String, f64)> {
    let map = [
        ("scoreboard dependency on a l1tex", "long_scoreboard"),
        ("scoreboard dependency on a mio", "short_scoreboard"),
        ("barrier", "barrier"),
        ("mio", "mio_throttle"),
        ("math pipe", "math_pipe_throttle"),
        ("fixed latency", "wait"),
        ("local/global", "lg_throttle"),
        ("branch", "branch_resolving"),
        ("instruction", "no_instruction"),
    ];
    let mut out = Vec::new();
    for r in rules.iter().filter(|r| r.rule == "CPIStall") {
        let d = r.description.to_ascii_lowercase();
        let Some(p) = d.find("spends ") else { continue };
        let cycles = d[p + 7..].split_whitespace().next().and_then(parse_number);
        if let (Some(c), Some((_, reason))) = (cycles, map.iter().find(|(k, _)| d.contains(k))) {
            out.push((reason.to_string(), c));
        }
    }
    out
}

fn mean(vals: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = vals.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Per-kernel summaries keyed by canonical kernel name, in first-seen order.
pub fn summarize(report: &NcuReport) -> Vec<(String, KernelSummary)> {
    let mut groups: Vec<(String, Vec<KernelSummary>)> = Vec::new();
    for l in &report.launches {
        let key = canonical_name(&l.kernel);
        let s = launch_summary(l);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1.push(s),
            None => groups.push((key, vec![s])),
        }
    }
    groups
        .into_iter()
        .map(|(k, v)| {
            let m = |f: fn(&KernelSummary) -> Option<f64>| mean(v.iter().map(f));
            let mut stalls: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for s in &v {
                for (r, c) in &s.stalls {
                    stalls.entry(r.clone()).or_default().push(*c);
                }
            }
            let mut stalls: Vec<(String, f64)> = stalls
                .into_iter()
                .map(|(r, c)| (r, c.iter().sum::<f64>() / v.len() as f64))
                .collect();
            stalls.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let summary = KernelSummary {
                launches: v.len() as u32,
                duration_us: m(|s| s.duration_us),
                achieved_occupancy_pct: m(|s| s.achieved_occupancy_pct),
                theoretical_occupancy_pct: m(|s| s.theoretical_occupancy_pct),
                dram_throughput_pct: m(|s| s.dram_throughput_pct),
                sm_throughput_pct: m(|s| s.sm_throughput_pct),
                memory_throughput_pct: m(|s| s.memory_throughput_pct),
                registers_per_thread: m(|s| s.registers_per_thread),
                block_size: m(|s| s.block_size),
                waves_per_sm: m(|s| s.waves_per_sm),
                warp_cycles_per_issue: m(|s| s.warp_cycles_per_issue),
                occupancy_limiter: v.iter().find_map(|s| s.occupancy_limiter.clone()),
                stalls,
            };
            (k, summary)
        })
        .collect()
}

/// A kernel present in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelComparison {
    pub kernel: String,
    pub baseline: KernelSummary,
    pub candidate: KernelSummary,
    /// (candidate - baseline) / baseline duration, when both are known.
    pub duration_change: Option<f64>,
}

/// What bounds the focus kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limiter {
    MemoryBandwidth,
    Compute,
    Occupancy,
    Latency,
    SmallGrid,
    Unknown,
}

/// Baseline vs candidate, ending in exactly one next edit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NcuDigest {
    pub kernels: Vec<KernelComparison>,
    pub baseline_only: Vec<String>,
    pub candidate_only: Vec<String>,
    pub baseline_total_us: f64,
    pub candidate_total_us: f64,
    /// The candidate kernel with the most total time: the one the next edit targets.
    pub focus_kernel: String,
    pub limiter: Limiter,
    /// Evidence for the limiter, in words.
    pub evidence: String,
    pub next_edit: String,
}

fn total_us(s: &KernelSummary) -> f64 {
    s.duration_us.unwrap_or(0.0) * f64::from(s.launches)
}

/// Compares two runs per kernel and derives one next edit from the dominant limiter.
pub fn digest(baseline: &NcuReport, candidate: &NcuReport) -> NcuDigest {
    let b = summarize(baseline);
    let c = summarize(candidate);
    let mut kernels = Vec::new();
    let mut candidate_only = Vec::new();
    for (name, cs) in &c {
        match b.iter().find(|(n, _)| n == name) {
            Some((_, bs)) => kernels.push(KernelComparison {
                kernel: name.clone(),
                baseline: bs.clone(),
                candidate: cs.clone(),
                duration_change: match (bs.duration_us, cs.duration_us) {
                    (Some(x), Some(y)) if x > 0.0 => Some((y - x) / x),
                    _ => None,
                },
            }),
            None => candidate_only.push(name.clone()),
        }
    }
    let baseline_only = b
        .iter()
        .filter(|(n, _)| !c.iter().any(|(m, _)| m == n))
        .map(|(n, _)| n.clone())
        .collect();
    let focus = c
        .iter()
        .max_by(|x, y| total_us(&x.1).total_cmp(&total_us(&y.1)))
        .cloned()
        .unwrap_or_default();
    let (limiter, evidence, next_edit) = next_edit(&focus.0, &focus.1);
    NcuDigest {
        kernels,
        baseline_only,
        candidate_only,
        baseline_total_us: b.iter().map(|(_, s)| total_us(s)).sum(),
        candidate_total_us: c.iter().map(|(_, s)| total_us(s)).sum(),
        focus_kernel: focus.0,
        limiter,
        evidence,
        next_edit,
    }
}

fn fmt_opt(v: Option<f64>, unit: &str) -> String {
    v.map(|x| format!("{x:.1}{unit}"))
        .unwrap_or_else(|| "n/a".into())
}

fn next_edit(kernel: &str, s: &KernelSummary) -> (Limiter, String, String) {
    let dram = s
        .dram_throughput_pct
        .unwrap_or(0.0)
        .max(s.memory_throughput_pct.unwrap_or(0.0));
    let sm = s.sm_throughput_pct.unwrap_or(0.0);
    let theo = s.theoretical_occupancy_pct;
    let ach = s.achieved_occupancy_pct;
    let base = format!(
        "`{kernel}`: memory {} of peak, SM {} of peak, occupancy {} achieved / {} theoretical",
        fmt_opt(Some(dram), "%"),
        fmt_opt(s.sm_throughput_pct, "%"),
        fmt_opt(ach, "%"),
        fmt_opt(theo, "%")
    );
    if s.duration_us.is_none() && s.sm_throughput_pct.is_none() && dram == 0.0 {
        return (
            Limiter::Unknown,
            format!("`{kernel}`: the export has no duration or throughput metrics"),
            "Re-capture with `--section SpeedOfLight --section Occupancy --section WarpStateStats` so a limiter can be named.".into(),
        );
    }
    if dram >= 60.0 && dram >= sm {
        return (
            Limiter::MemoryBandwidth,
            base,
            format!("Cut the bytes `{kernel}` moves: fuse it with its producer or consumer (for example the residual add into the norm) so the activation is read from DRAM once."),
        );
    }
    if sm >= 60.0 {
        return (
            Limiter::Compute,
            base,
            format!("Cut the instructions `{kernel}` issues: move the inner math to tensor-core or packed (bf16x2) instructions and hoist per-row constants out of the loop."),
        );
    }
    if let Some(t) = theo.filter(|&t| t < 50.0) {
        let lim = s
            .occupancy_limiter
            .clone()
            .unwrap_or_else(|| "launch configuration".into());
        let edit = match lim.as_str() {
            "registers" => format!(
                "Raise occupancy of `{kernel}` (theoretical {t:.0}%, capped by registers: {} per thread): spread each row over more warps (larger block / num_warps) or bound registers with launch bounds.",
                fmt_opt(s.registers_per_thread, "")
            ),
            "shared memory" => format!("Raise occupancy of `{kernel}` (theoretical {t:.0}%, capped by shared memory): shrink the per-block shared-memory tile or split it across more blocks."),
            _ => format!(
                "Raise occupancy of `{kernel}` (theoretical {t:.0}%, capped by {lim}): launch more threads per block (now {}).",
                fmt_opt(s.block_size, "")
            ),
        };
        return (Limiter::Occupancy, base, edit);
    }
    if s.waves_per_sm.is_some_and(|w| w < 1.0) {
        return (
            Limiter::SmallGrid,
            format!("{base}; {} waves per SM", fmt_opt(s.waves_per_sm, "")),
            format!("Give `{kernel}` enough blocks to fill every SM (split the work per row or use split-K style partitioning)."),
        );
    }
    let top = s.stalls.first().cloned();
    let evidence = match &top {
        Some((r, c)) => format!("{base}; top stall {r} ({c:.1} cycles per issued instruction)"),
        None => base,
    };
    let edit = match top.as_ref().map(|t| t.0.as_str()) {
        Some("long_scoreboard") => format!("Keep more global loads in flight in `{kernel}`: use 128-bit vectorized loads and process several rows per CTA so each warp has independent memory requests while it waits."),
        Some("barrier") => format!("Remove block-wide barriers from `{kernel}`: reduce within a warp with shuffles and synchronise once per row."),
        Some("short_scoreboard") | Some("mio_throttle") => format!("Cut shared-memory and special-function traffic in `{kernel}`: keep partial sums in registers and reduce with warp shuffles."),
        Some("math_pipe_throttle") => format!("Balance the math pipes in `{kernel}`: move fp32 work to packed bf16x2 or tensor-core instructions."),
        Some("lg_throttle") => format!("Issue fewer, wider global memory instructions in `{kernel}` (128-bit vector loads/stores)."),
        Some("wait") | Some("dispatch_stall") => format!("Add instruction-level parallelism to `{kernel}`: unroll the inner loop so independent instructions hide fixed latencies."),
        Some("no_instruction") | Some("branch_resolving") => format!("Simplify control flow in `{kernel}`: remove divergent branches and shrink the unrolled body to fit the instruction cache."),
        _ => format!("Latency-bound `{kernel}` with no dominant stall: give each SM more independent work (more rows per CTA or more warps per row)."),
    };
    (Limiter::Latency, evidence, edit)
}

/// Markdown digest for `kernel/ncu-digests/<version>/`.
pub fn render_md(d: &NcuDigest) -> String {
    use std::fmt::Write;
    let mut s = String::from("# NCU digest: baseline vs candidate\n\n");
    let _ = writeln!(
        s,
        "Profiled kernel time: baseline {:.2} µs, candidate {:.2} µs ({}).\n",
        d.baseline_total_us,
        d.candidate_total_us,
        if d.baseline_total_us > 0.0 {
            format!(
                "{:+.1}%",
                (d.candidate_total_us - d.baseline_total_us) / d.baseline_total_us * 100.0
            )
        } else {
            "n/a".into()
        }
    );
    s.push_str("| kernel | launches (b/c) | duration µs (b → c) | change | achieved occupancy % | DRAM % of peak | SM % of peak | top stall (b → c) |\n");
    s.push_str("| --- | --- | --- | ---: | --- | --- | --- | --- |\n");
    let stall = |k: &KernelSummary| {
        k.stalls
            .first()
            .map(|(r, c)| format!("{r} {c:.1}"))
            .unwrap_or_else(|| "n/a".into())
    };
    for k in &d.kernels {
        let pair =
            |a: Option<f64>, b: Option<f64>| format!("{} → {}", fmt_opt(a, ""), fmt_opt(b, ""));
        let _ = writeln!(
            s,
            "| `{}` | {}/{} | {} | {} | {} | {} | {} | {} → {} |",
            k.kernel.replace('|', "\\|"),
            k.baseline.launches,
            k.candidate.launches,
            pair(k.baseline.duration_us, k.candidate.duration_us),
            k.duration_change
                .map(|c| format!("{:+.1}%", c * 100.0))
                .unwrap_or_else(|| "n/a".into()),
            pair(
                k.baseline.achieved_occupancy_pct,
                k.candidate.achieved_occupancy_pct
            ),
            pair(
                k.baseline.dram_throughput_pct,
                k.candidate.dram_throughput_pct
            ),
            pair(k.baseline.sm_throughput_pct, k.candidate.sm_throughput_pct),
            stall(&k.baseline),
            stall(&k.candidate),
        );
    }
    for (label, list) in [
        ("Only in baseline", &d.baseline_only),
        ("Only in candidate", &d.candidate_only),
    ] {
        if !list.is_empty() {
            let _ = writeln!(
                s,
                "\n{label}: {}",
                list.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let _ = writeln!(
        s,
        "\nDominant limiter of the candidate's hottest kernel: **{:?}** — {}.\n",
        d.limiter, d.evidence
    );
    let _ = writeln!(s, "## Next edit\n\n{}", d.next_edit);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAILS: &str = "\"ID\",\"Process ID\",\"Process Name\",\"Host Name\",\"Kernel Name\",\"Context\",\"Stream\",\"Block Size\",\"Grid Size\",\"Device\",\"CC\",\"Section Name\",\"Metric Name\",\"Metric Unit\",\"Metric Value\"\n\
\"0\",\"1\",\"p\",\"h\",\"k\",\"1\",\"7\",\"(32, 1, 1)\",\"(8, 1, 1)\",\"0\",\"9.0\",\"GPU Speed Of Light Throughput\",\"Duration\",\"ns\",\"1,500\"\n\
\"0\",\"1\",\"p\",\"h\",\"k\",\"1\",\"7\",\"(32, 1, 1)\",\"(8, 1, 1)\",\"0\",\"9.0\",\"GPU Speed Of Light Throughput\",\"DRAM Throughput\",\"%\",\"80\"\n";

    #[test]
    fn parses_documented_details_format() {
        let r = NcuReport::parse(DETAILS, "t").unwrap();
        assert_eq!(r.launches.len(), 1);
        let s = &summarize(&r)[0].1;
        assert_eq!(s.duration_us, Some(1.5));
        assert_eq!(s.dram_throughput_pct, Some(80.0));
        let d = digest(&r, &r);
        assert_eq!(d.limiter, Limiter::MemoryBandwidth);
        assert_eq!(d.kernels[0].duration_change, Some(0.0));
    }

    #[test]
    fn rejects_non_ncu_csv() {
        assert!(matches!(
            NcuReport::parse("a,b\n1,2\n", "t"),
            Err(NcuError::Empty { .. })
        ));
        assert!(matches!(
            NcuReport::parse("\"ID\",\"x\"\n1,2\n", "t"),
            Err(NcuError::NotNcu { .. })
        ));
    }
}
