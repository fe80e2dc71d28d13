//! Fuse-pattern table: a catalog of known fusable kernel sequences (data in
//! `data/fuse-patterns.yaml`) matched against a stage's kernel rows and its adjacent-kernel
//! sequences.

use serde::{Deserialize, Serialize};

use super::kernels::ratio;
use super::names::Category;
use super::records::{add_ns, sum_ns, FxMap, NameId};
use super::timeline::Timeline;
use super::ProfileError;

/// The catalog shipped with sota-bot.
pub const BUILTIN_CATALOG: &str = include_str!("../../data/fuse-patterns.yaml");

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FusePattern {
    pub id: String,
    pub name: String,
    pub sequence: Vec<Vec<String>>,
    #[serde(default)]
    pub max_between: usize,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default = "one")]
    pub min_tp: u32,
    pub priority: u8,
    #[serde(default)]
    pub subsumes: Vec<String>,
    pub fused_path: String,
}

fn one() -> u32 {
    1
}

/// A validated catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct FuseCatalog {
    pub patterns: Vec<FusePattern>,
}

impl FuseCatalog {
    /// The built-in catalog.
    pub fn builtin() -> Result<Self, ProfileError> {
        Self::from_yaml(BUILTIN_CATALOG, "data/fuse-patterns.yaml")
    }

    /// Parses and validates a catalog; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ProfileError> {
        let bad = |message: String| ProfileError::Catalog {
            origin: origin.to_string(),
            message,
        };
        let mut patterns: Vec<FusePattern> =
            serde_yaml_ng::from_str(text).map_err(|e| bad(e.to_string()))?;
        for p in &mut patterns {
            if p.sequence.is_empty() || p.sequence.len() > 64 {
                return Err(bad(format!(
                    "pattern `{}`: sequence needs 1..=64 groups",
                    p.id
                )));
            }
            for g in &mut p.sequence {
                g.retain(|k| !k.trim().is_empty());
                if g.is_empty() {
                    return Err(bad(format!(
                        "pattern `{}`: a sequence group has no keyword",
                        p.id
                    )));
                }
                for k in g.iter_mut() {
                    *k = k.to_ascii_lowercase();
                }
            }
            for m in &mut p.models {
                *m = m.to_ascii_lowercase();
            }
        }
        for (i, p) in patterns.iter().enumerate() {
            if patterns[..i].iter().any(|q| q.id == p.id) {
                return Err(bad(format!("duplicate pattern id `{}`", p.id)));
            }
            if let Some(s) = p
                .subsumes
                .iter()
                .find(|s| !patterns.iter().any(|q| &q.id == *s))
            {
                return Err(bad(format!("pattern `{}` subsumes unknown id `{s}`", p.id)));
            }
        }
        Ok(Self { patterns })
    }
}

/// What is known about the model and parallelism, for the catalog's gates.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelInfo {
    pub model_type: Option<String>,
    pub architectures: Vec<String>,
    pub num_layers: Option<u32>,
    pub num_experts: Option<u32>,
}

impl ModelInfo {
    /// Reads the fields of a Hugging Face `config.json` that matter here.
    pub fn from_config_json(text: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Cfg {
            model_type: Option<String>,
            #[serde(default)]
            architectures: Vec<String>,
            num_hidden_layers: Option<u32>,
            num_local_experts: Option<u32>,
            n_routed_experts: Option<u32>,
            num_experts: Option<u32>,
        }
        let c: Cfg = serde_json::from_str(text)?;
        Ok(Self {
            model_type: c.model_type,
            architectures: c.architectures,
            num_layers: c.num_hidden_layers,
            num_experts: c.num_local_experts.or(c.n_routed_experts).or(c.num_experts),
        })
    }

    fn text(&self) -> Option<String> {
        if self.model_type.is_none() && self.architectures.is_empty() {
            return None;
        }
        let mut t = self.model_type.clone().unwrap_or_default();
        for a in &self.architectures {
            t.push(' ');
            t.push_str(a);
        }
        if self.num_experts.unwrap_or(0) > 1 {
            t.push_str(" moe");
        }
        Some(t.to_ascii_lowercase())
    }
}

/// `Confirmed`: the sequence runs back to back in the trace. `Candidate`: its kernels are
/// all present but never adjacent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Confidence {
    Confirmed,
    Candidate,
}

/// A kernel family that matched a pattern group, with its share of the stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub kernel: String,
    pub category: Category,
    pub share: f64,
}

/// One matched pattern.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FuseRow {
    pub id: String,
    pub name: String,
    pub confidence: Confidence,
    /// Back-to-back occurrences in the stage (0 for candidates).
    pub occurrences: u64,
    pub evidence: Vec<Evidence>,
    /// Stage share of the matched kernels' GPU time (adjacent occurrences only when
    /// confirmed; whole families when candidate).
    pub share: f64,
    pub priority: u8,
    pub fused_path: String,
    /// Catalog ids dropped because this row covers them.
    pub subsumes: Vec<String>,
}

/// Gate inputs.
#[derive(Debug, Clone, Default)]
pub struct FuseContext {
    pub model: Option<ModelInfo>,
    /// Tensor-parallel size, when known.
    pub tp: Option<u32>,
}

/// Matches the catalog against the given ops of one stage.
pub fn fuse_table(
    tl: &Timeline,
    ops: &[usize],
    catalog: &FuseCatalog,
    ctx: &FuseContext,
) -> Vec<FuseRow> {
    let has_comm = ops.iter().any(|&i| {
        tl.ops
            .get(i)
            .is_some_and(|o| o.category == Category::Communication)
    });
    let tp = ctx.tp.unwrap_or(if has_comm { 2 } else { 1 });
    let model_text = ctx.model.as_ref().and_then(|m| m.text());
    let active: Vec<&FusePattern> = catalog
        .patterns
        .iter()
        .filter(|p| tp >= p.min_tp)
        .filter(|p| match &model_text {
            Some(t) if !p.models.is_empty() => p.models.iter().any(|m| t.contains(m.as_str())),
            _ => true,
        })
        .collect();
    if active.is_empty() || ops.is_empty() {
        return Vec::new();
    }

    // Group masks per distinct (raw name, cpu op): bit g of masks[key][p] = matches group g.
    let mut key_of: FxMap<(NameId, NameId), u32> = FxMap::default();
    let mut masks: Vec<Vec<u64>> = Vec::new();
    let mut op_key: Vec<u32> = Vec::with_capacity(ops.len());
    for &i in ops {
        let (raw, cpu) = (tl.ops[i].raw, tl.ops[i].cpu_op);
        let key = *key_of.entry((raw, cpu)).or_insert_with(|| {
            let text =
                format!("{} | {}", tl.names.name(raw), tl.names.name(cpu)).to_ascii_lowercase();
            masks.push(
                active
                    .iter()
                    .map(|p| {
                        p.sequence.iter().enumerate().fold(0u64, |m, (g, kws)| {
                            if kws.iter().any(|k| text.contains(k.as_str())) {
                                m | (1 << g)
                            } else {
                                m
                            }
                        })
                    })
                    .collect(),
            );
            (masks.len() - 1) as u32
        });
        op_key.push(key);
    }
    let mask = |pos: usize, pi: usize| -> u64 { masks[op_key[pos] as usize][pi] };

    let total_ns = sum_ns(ops.iter().map(|&i| tl.ops[i].dur_ns));
    let mut fam_ns: FxMap<NameId, i64> = FxMap::default();
    for &i in ops {
        add_ns(
            fam_ns.entry(tl.ops[i].family).or_default(),
            tl.ops[i].dur_ns,
        );
    }
    // Positions into `ops`, ordered by (segment, stream, ts).
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&k| {
        let o = &tl.ops[ops[k]];
        (o.segment, o.stream, o.ts_ns)
    });

    let mut rows = Vec::new();
    for (pi, p) in active.iter().enumerate() {
        let groups = p.sequence.len();
        let mut occurrences = 0u64;
        let mut matched_ns: i64 = 0;
        let mut evidence_fams: Vec<FxMap<NameId, ()>> = vec![FxMap::default(); groups];
        let mut k = 0;
        while k < order.len() {
            if mask(order[k], pi) & 1 == 0 {
                k += 1;
                continue;
            }
            let mut chain = vec![order[k]];
            let mut j = k;
            for g in 1..groups {
                let same_lane = |a: usize, b: usize| {
                    let (x, y) = (&tl.ops[ops[a]], &tl.ops[ops[b]]);
                    x.segment == y.segment && x.stream == y.stream
                };
                let found = (j + 1..=(j + 1 + p.max_between).min(order.len().saturating_sub(1)))
                    .take_while(|&c| same_lane(order[k], order[c]))
                    .find(|&c| mask(order[c], pi) & (1 << g) != 0);
                match found {
                    Some(c) => {
                        chain.push(order[c]);
                        j = c;
                    }
                    None => break,
                }
            }
            if chain.len() == groups {
                occurrences += 1;
                for (g, &pos) in chain.iter().enumerate() {
                    let op = &tl.ops[ops[pos]];
                    add_ns(&mut matched_ns, op.dur_ns);
                    evidence_fams[g].insert(op.family, ());
                }
                k = j + 1;
            } else {
                k += 1;
            }
        }
        let confidence;
        let share;
        if occurrences > 0 {
            confidence = Confidence::Confirmed;
            share = ratio(matched_ns as f64, total_ns as f64);
        } else {
            // Candidate: every group matched by some family of the stage.
            let mut per_group: Vec<FxMap<NameId, ()>> = vec![FxMap::default(); groups];
            for (pos, &op_index) in ops.iter().enumerate() {
                let m = mask(pos, pi);
                for (g, fams) in per_group.iter_mut().enumerate() {
                    if m & (1 << g) != 0 {
                        fams.insert(tl.ops[op_index].family, ());
                    }
                }
            }
            if per_group.iter().any(|f| f.is_empty()) {
                continue;
            }
            confidence = Confidence::Candidate;
            let mut fams: FxMap<NameId, ()> = FxMap::default();
            for f in &per_group {
                fams.extend(f.keys().map(|k| (*k, ())));
            }
            share = ratio(
                sum_ns(fams.keys().map(|f| fam_ns.get(f).copied().unwrap_or(0))) as f64,
                total_ns as f64,
            );
            evidence_fams = per_group;
        }
        let mut evidence: Vec<Evidence> = Vec::new();
        for fams in &evidence_fams {
            let mut list: Vec<NameId> = fams.keys().copied().collect();
            list.sort_by_key(|f| std::cmp::Reverse(fam_ns.get(f).copied().unwrap_or(0)));
            for f in list.into_iter().take(2) {
                let name = tl.names.name(f).to_string();
                if evidence.iter().any(|e| e.kernel == name) {
                    continue;
                }
                let category = ops
                    .iter()
                    .map(|&i| &tl.ops[i])
                    .find(|o| o.family == f)
                    .map(|o| o.category)
                    .unwrap_or(Category::Other);
                evidence.push(Evidence {
                    kernel: name,
                    category,
                    share: ratio(fam_ns.get(&f).copied().unwrap_or(0) as f64, total_ns as f64),
                });
            }
        }
        rows.push(FuseRow {
            id: p.id.clone(),
            name: p.name.clone(),
            confidence,
            occurrences,
            evidence,
            share,
            priority: p.priority,
            fused_path: p.fused_path.clone(),
            subsumes: Vec::new(),
        });
    }

    // Subsumption: a row drops the ids it covers when its confidence is at least theirs.
    let mut dropped: Vec<bool> = vec![false; rows.len()];
    for a in 0..rows.len() {
        let Some(pat) = catalog.patterns.iter().find(|p| p.id == rows[a].id) else {
            continue;
        };
        for sid in &pat.subsumes {
            if let Some(b) = rows.iter().position(|r| &r.id == sid) {
                if b != a && rows[a].confidence <= rows[b].confidence && !dropped[a] {
                    dropped[b] = true;
                }
            }
        }
    }
    let mut kept: Vec<FuseRow> = Vec::new();
    let dropped_ids: Vec<(String, bool)> = rows
        .iter()
        .map(|r| r.id.clone())
        .zip(dropped.iter().copied())
        .collect();
    for (r, d) in rows.into_iter().zip(dropped.iter()) {
        if !*d {
            kept.push(r);
        }
    }
    for r in &mut kept {
        if let Some(pat) = catalog.patterns.iter().find(|p| p.id == r.id) {
            r.subsumes = pat
                .subsumes
                .iter()
                .filter(|s| dropped_ids.iter().any(|(id, d)| id == *s && *d))
                .cloned()
                .collect();
        }
    }
    kept.sort_by(|a, b| {
        a.confidence
            .cmp(&b.confidence)
            .then(a.priority.cmp(&b.priority))
            .then(b.share.total_cmp(&a.share))
            .then(a.id.cmp(&b.id))
    });
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_valid() {
        let c = FuseCatalog::builtin().unwrap();
        assert!(c.patterns.len() >= 10);
        assert!(c
            .patterns
            .iter()
            .any(|p| p.id == "allreduce-add-rmsnorm" && p.min_tp == 2));
    }

    #[test]
    fn catalog_errors_name_the_problem() {
        let e = FuseCatalog::from_yaml(
            "- id: a\n  name: A\n  sequence: []\n  priority: 1\n  fused_path: x\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("sequence needs"), "{e}");
        let e = FuseCatalog::from_yaml(
            "- id: a\n  name: A\n  sequence: [[x]]\n  priority: 1\n  fused_path: x\n  subsumes: [zz]\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown id `zz`"), "{e}");
        assert!(FuseCatalog::from_yaml("- nope", "t").is_err());
    }

    #[test]
    fn model_config() {
        let m = ModelInfo::from_config_json(
            r#"{"model_type":"mixtral","architectures":["MixtralForCausalLM"],"num_hidden_layers":8,"num_local_experts":8}"#,
        )
        .unwrap();
        assert_eq!(m.num_experts, Some(8));
        assert!(m.text().unwrap().contains("mixtral"));
    }
}
