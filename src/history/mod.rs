//! Phase 0.5: what SGLang already did for this model, from the checkout's own git history.
//!
//! The model's implementation is found from its architecture (`config.json`'s
//! `architectures`, matched against the `EntryClass` of SGLang's model files), then the
//! layer and kernel files it imports; the whole history is walked for commits that change
//! those files (through renames) or whose subject names the model family, and the PR number
//! is read from each subject. Open and recently merged upstream PRs (GitHub's search API)
//! and an optional curated knowledge folder are merged in. Every citation is verified
//! against the checkout before it is written ([`verify`]); whatever is missing or fails is a
//! blocker in the notes, never a stop.

pub mod family;
pub mod knowledge;
pub mod notes;
pub mod registry;
pub mod render;
pub mod upstream;
pub mod verify;
pub mod walk;

pub use knowledge::{extract_citations, infer_family_slug, Citations};
pub use notes::{Area, CitedCommit, HistoryReport, KnowledgeFile, UpstreamPr};

use crate::framework::Framework;
use family::Family;
use git2::{ObjectType, Repository, TreeWalkMode, TreeWalkResult};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What Phase 0.5 reads.
#[derive(Debug, Clone, Copy)]
pub struct HistoryRequest<'a> {
    /// The SGLang checkout (a work tree or a bare repository).
    pub checkout: &'a Path,
    /// Model id (`Qwen/Qwen3-30B-A3B`) or a local model folder.
    pub model: &'a str,
    /// The model's `config.json`; when absent it is looked for in the model folder and the
    /// Hugging Face cache, else the architecture is inferred from the model id.
    pub config_json: Option<&'a Path>,
    pub knowledge_root: Option<&'a Path>,
    /// The request's `history_slug` (a knowledge-root folder name).
    pub slug_override: Option<&'a str>,
    pub frameworks: &'a [Framework],
    /// Upstream PRs already fetched (by the App, or by the caller with a token).
    pub upstream: Option<&'a upstream::UpstreamPrs>,
}

/// Where a model's `config.json` may be: the given file, the model folder, or the Hugging
/// Face cache (`$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`), preferring the
/// snapshot `refs/main` names.
pub fn find_config(model: &str, explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let local = Path::new(model).join("config.json");
    if local.is_file() {
        return Some(local);
    }
    let hub = std::env::var_os("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
        })?;
    let dir = hub.join(format!("models--{}", model.replace('/', "--")));
    let main = std::fs::read_to_string(dir.join("refs/main"))
        .ok()
        .map(|s| dir.join("snapshots").join(s.trim()).join("config.json"))
        .filter(|p| p.is_file());
    main.or_else(|| {
        let mut snaps: Vec<PathBuf> = std::fs::read_dir(dir.join("snapshots"))
            .ok()?
            .flatten()
            .map(|e| e.path().join("config.json"))
            .filter(|p| p.is_file())
            .collect();
        snaps.sort();
        snaps.pop()
    })
}

/// `architectures` of a config.json text.
pub fn parse_architectures(text: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = v
        .get("architectures")
        .and_then(|a| a.as_array())
        .ok_or("no `architectures` list")?;
    let names: Vec<String> = list
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    if names.is_empty() {
        Err("`architectures` is empty".into())
    } else {
        Ok(names)
    }
}

/// Words of the model id's owner (`meta-llama` -> `meta`, `llama`), which are not families.
fn owner_words(model: &str) -> Vec<String> {
    match model.trim_end_matches('/').rsplit_once('/') {
        Some((owner, _)) => family::words(owner.rsplit('/').next().unwrap_or(owner)),
        None => Vec::new(),
    }
}

/// Chooses the family from the model id and what is known of the architecture.
fn choose_family(model: &str, architectures: &[String], class_keys: &[String]) -> Family {
    let ids = family::model_id_keys(model);
    let arch_keys: Vec<String> = architectures
        .iter()
        .flat_map(|a| family::architecture_keys(a))
        .collect();
    let known: &[String] = if arch_keys.is_empty() {
        class_keys
    } else {
        &arch_keys
    };
    if let Some((k, d)) = ids.iter().find(|(k, _)| known.contains(k)) {
        return Family::new(k, d, architectures);
    }
    if let Some((k, d)) = architectures
        .first()
        .and_then(|a| family::architecture_family(a))
    {
        return Family::new(&k, &d, architectures);
    }
    let owner = owner_words(model);
    let pick = ids
        .iter()
        .find(|(k, _)| !owner.contains(k))
        .or(ids.first())
        .cloned()
        .unwrap_or_else(|| (model.to_ascii_lowercase(), model.to_ascii_lowercase()));
    // Nothing confirms the version, and titles often drop it: the bare name counts too
    // (`llama3` and `llama`).
    let mut f = Family::new(&pick.0, &pick.1, architectures);
    if let Some((bare, _)) = pick.1.split_once('-') {
        if !f.keys.iter().any(|k| k == bare) {
            f.keys.push(bare.to_string());
        }
    }
    f
}

/// The family from the model id alone (the App, which has no checkout): the name with its
/// version and the bare name (`llama3`, `llama`).
pub fn family_from_model_id(model: &str) -> Family {
    choose_family(model, &[], &[])
}

/// Classes of the registry whose keys include `key`, preferring causal LMs.
fn classes_for_key(
    registry: &std::collections::BTreeMap<String, Vec<String>>,
    key: &str,
) -> Vec<String> {
    let all: Vec<&String> = registry
        .keys()
        .filter(|c| family::architecture_keys(c).iter().any(|k| k == key))
        .collect();
    for suffix in ["ForCausalLM", "ForConditionalGeneration"] {
        let picked: Vec<String> = all
            .iter()
            .filter(|c| c.ends_with(suffix))
            .map(|c| c.to_string())
            .collect();
        if !picked.is_empty() {
            return picked;
        }
    }
    all.into_iter().cloned().collect()
}

fn blob_text(repo: &Repository, tree: &git2::Tree<'_>, path: &str) -> Option<String> {
    let entry = tree.get_path(Path::new(path)).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    Some(String::from_utf8_lossy(blob.content()).to_string())
}

/// Every file path under `prefix` at `tree`.
fn files_under(repo: &Repository, tree: &git2::Tree<'_>, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(entry) = tree.get_path(Path::new(prefix)) else {
        return out;
    };
    let Ok(sub) = repo.find_tree(entry.id()) else {
        return out;
    };
    let _ = sub.walk(TreeWalkMode::PreOrder, |dir, e| {
        if e.kind() == Some(ObjectType::Blob) {
            if let Ok(name) = e.name() {
                out.insert(format!("{prefix}/{dir}{name}"));
            }
        }
        TreeWalkResult::Ok
    });
    out
}

fn date_of(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Builds the notes. Never fails: what cannot be read is a blocker in the report.
pub fn build(req: &HistoryRequest<'_>) -> HistoryReport {
    let mut r = HistoryReport {
        model: req.model.to_string(),
        ..Default::default()
    };
    match Repository::open(req.checkout) {
        Ok(repo) => from_repo(&repo, req, &mut r),
        Err(e) => r.blockers.push(format!(
            "`{}` is not a git checkout ({}): no SGLang history read",
            req.checkout.display(),
            e.message()
        )),
    }
    if let Some(root) = req.knowledge_root {
        // Without a readable repository nothing a curated file cites can be verified.
        if r.head.is_none() {
            r.blockers.push(format!(
                "knowledge root `{}` not read: its citations cannot be verified without the checkout",
                root.display()
            ));
        }
    }
    r
}

fn from_repo(repo: &Repository, req: &HistoryRequest<'_>, r: &mut HistoryReport) {
    let head = match repo.head().and_then(|h| h.peel_to_commit()) {
        Ok(c) => c,
        Err(e) => {
            r.blockers.push(format!(
                "the checkout has no HEAD commit ({}): no SGLang history read",
                e.message()
            ));
            return;
        }
    };
    r.head = Some(head.id().to_string());
    let tree = match head.tree() {
        Ok(t) => t,
        Err(e) => {
            r.blockers
                .push(format!("cannot read the HEAD tree: {}", e.message()));
            return;
        }
    };
    let srt = files_under(repo, &tree, "python/sglang/srt");
    let model_sources: Vec<(String, String)> = srt
        .iter()
        .filter(|p| {
            p.strip_prefix(registry::MODELS_DIR)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| !rest.contains('/') && rest.ends_with(".py"))
        })
        .filter_map(|p| blob_text(repo, &tree, p).map(|t| (p.clone(), t)))
        .collect();
    let reg = registry::registry(&model_sources);
    if reg.is_empty() {
        r.blockers.push(format!(
            "no model registry in this checkout (no `EntryClass` under `{}/`): model files unknown, only commits naming the family are read",
            registry::MODELS_DIR
        ));
    }
    // The architecture: config.json, else inferred from the model id.
    let mut architectures = Vec::new();
    if let Some(path) = find_config(req.model, req.config_json) {
        match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_architectures(&t))
        {
            Ok(a) => {
                architectures = a;
                r.architecture_source = format!("`architectures` of {}", path.display());
            }
            Err(e) => r.blockers.push(format!(
                "{}: {e}; the architecture is inferred from the model id",
                path.display()
            )),
        }
    }
    let class_keys: Vec<String> = reg
        .keys()
        .flat_map(|c| family::architecture_keys(c))
        .collect();
    let fam = choose_family(req.model, &architectures, &class_keys);
    if architectures.is_empty() {
        architectures = fam
            .keys
            .first()
            .map(|k| classes_for_key(&reg, k))
            .unwrap_or_default();
        if r.architecture_source.is_empty() {
            r.architecture_source = if architectures.is_empty() {
                "none: no config.json found and no registry class matches the model id".into()
            } else {
                "inferred from the model id (no config.json found; pass --config for the exact class)"
                    .into()
            };
        }
    }
    let fam = {
        let mut f = Family::new(
            fam.keys.first().map(String::as_str).unwrap_or(""),
            &fam.name,
            &architectures,
        );
        for k in fam.keys {
            if !f.keys.contains(&k) {
                f.keys.push(k);
            }
        }
        f
    };
    let mut fam = fam;
    fam.set_other_models(&class_keys);
    r.family = fam.name.clone();
    r.family_keys = fam.keys.clone();
    r.other_models = fam.other_models.clone();
    r.architectures = architectures.clone();
    let mut entry_files: Vec<String> = Vec::new();
    for a in &architectures {
        match reg.get(a) {
            Some(files) => {
                for f in files {
                    if !entry_files.contains(f) {
                        entry_files.push(f.clone());
                    }
                }
            }
            None if !reg.is_empty() => r.blockers.push(format!(
                "architecture `{a}` is not registered by any model file of this checkout: SGLang may not support it here"
            )),
            None => {}
        }
    }
    let mut read = |p: &str| blob_text(repo, &tree, p);
    let reach = registry::reach(&entry_files, &srt, &mut read);
    r.model_files = reach.model_files.clone();
    r.layer_files = reach.layer_files.clone();
    r.kernel_files = reach.kernel_files.clone();
    let followed: Vec<String> = reach
        .model_files
        .iter()
        .chain(&reach.layer_files)
        .chain(&reach.kernel_files)
        .cloned()
        .collect();
    let walked = match walk::walk(repo, head.id(), &followed, &fam) {
        Ok(w) => w,
        Err(e) => {
            r.blockers.push(format!("history walk failed: {e}"));
            return;
        }
    };
    r.commits_read = walked.total;
    let commits: Vec<CitedCommit> = walked.commits.iter().map(|c| cited(c, &reach)).collect();
    let (kept, dropped) = verify::verify_commits(repo, commits);
    r.commits = kept;
    r.blockers.extend(dropped);
    if let Some(up) = req.upstream {
        r.upstream = Some(up.repo.clone());
        let mut prs: Vec<UpstreamPr> = up
            .prs
            .iter()
            .filter(|p| fam.named_in(&p.title))
            .cloned()
            .collect();
        upstream::mark(&mut prs, &walked.pr_commits);
        r.open_prs = prs;
        r.blockers.extend(up.blockers.iter().cloned());
    }
    if let Some(root) = req.knowledge_root {
        let read = knowledge::read_knowledge(root, req.model, req.slug_override, req.frameworks);
        r.blockers.extend(read.blockers.iter().cloned());
        let symbol_files: Vec<String> = followed.clone();
        let check = verify::KnowledgeCheck {
            repo,
            head: Some(head.id()),
            pr_commits: &walked.pr_commits,
            api_prs: &r.open_prs,
            symbol_files: &symbol_files,
        };
        let mut dropped = Vec::new();
        let files: Vec<KnowledgeFile> = read
            .files
            .iter()
            .map(|k| check.check(k, &mut dropped))
            .collect();
        r.knowledge = files;
        r.blockers.extend(dropped);
    }
}

/// A walked commit as the notes cite it (verified afterwards).
fn cited(c: &walk::WalkedCommit, reach: &registry::Reach) -> CitedCommit {
    let mut paths = Vec::new();
    let mut removed = Vec::new();
    for (p, ch) in &c.changes {
        match ch {
            walk::Change::Removed => removed.push(p.clone()),
            _ => paths.push(p.clone()),
        }
    }
    let area = paths
        .iter()
        .chain(&removed)
        .map(|p| Area::of_path(p, &reach.model_files, &reach.kernel_files))
        .min_by_key(|a| a.priority())
        .unwrap_or(Area::Mentions);
    CitedCommit {
        sha: c.oid.to_string(),
        date: date_of(c.time),
        subject: c.subject.clone(),
        pr: c.pr,
        paths,
        removed_paths: removed,
        renamed_from: c
            .renames
            .iter()
            .map(|(from, to)| format!("{from} -> {to}"))
            .collect(),
        area,
        perf: notes::is_perf_subject(&c.subject),
        revert: notes::is_revert_subject(&c.subject),
        merge: c.merge,
        names_family: c.names_family,
    }
}
