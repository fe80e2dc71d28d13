//! SGLang's model registry read from source text: which model file serves an architecture
//! (each file under `python/sglang/srt/models/` names its classes in `EntryClass = X` or
//! `EntryClass = [X, Y]`), and which layer and kernel files a model file imports.
//! Pure functions over file names and texts; reading them from git is the caller's job.

use once_cell::sync::Lazy;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};

/// Where SGLang keeps its model implementations.
pub const MODELS_DIR: &str = "python/sglang/srt/models";
/// The python package root inside the checkout.
const PYTHON_ROOT: &str = "python";

static IDENT: Lazy<Option<Regex>> = Lazy::new(|| Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").ok());
static IMPORT: Lazy<Option<Regex>> = Lazy::new(|| {
    Regex::new(r"(?m)^[ \t]*(?:from[ \t]+(sglang\.srt\.[A-Za-z0-9_.]+)[ \t]+import\b|import[ \t]+(sglang\.srt\.[A-Za-z0-9_.]+))").ok()
});

/// Class names listed by `EntryClass` in one model file.
pub fn entry_classes(source: &str) -> Vec<String> {
    let Some(ident) = IDENT.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(pos) = rest.find("EntryClass") {
        let line_start = rest[..pos].rfind('\n').map_or(0, |i| i + 1);
        let after = &rest[pos + "EntryClass".len()..];
        rest = after;
        // Only a top-level assignment counts (not `EntryClassRemapping` or a use of it).
        if pos != line_start {
            continue;
        }
        let Some(value) = after.trim_start_matches([' ', '\t']).strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start_matches([' ', '\t']);
        let text = if let Some(list) = value.strip_prefix('[') {
            list.split(']').next().unwrap_or("")
        } else {
            value.lines().next().unwrap_or("")
        };
        for m in ident.find_iter(text) {
            if !out.iter().any(|c| c == m.as_str()) {
                out.push(m.as_str().to_string());
            }
        }
    }
    out
}

/// Every `EntryClass` of the model files, as class -> files (a class may be listed twice).
pub fn registry(files: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, text) in files {
        for class in entry_classes(text) {
            out.entry(class).or_default().push(path.clone());
        }
    }
    out
}

/// `sglang.srt.*` modules a python file imports.
pub fn imported_modules(source: &str) -> Vec<String> {
    let Some(re) = IMPORT.as_ref() else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for c in re.captures_iter(source) {
        if let Some(m) = c.get(1).or_else(|| c.get(2)) {
            let m = m.as_str().trim_end_matches('.').to_string();
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// The file a module lives in, among `files`: `a/b.py`, else the package's `a/b/__init__.py`.
pub fn module_file(module: &str, files: &BTreeSet<String>) -> Option<String> {
    let base = format!("{PYTHON_ROOT}/{}", module.replace('.', "/"));
    [format!("{base}.py"), format!("{base}/__init__.py")]
        .into_iter()
        .find(|p| files.contains(p))
}

/// Whether a layer file is a kernel (its name says it launches or wraps device code).
pub fn is_kernel_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    ["kernel", "triton", "fused", "cuda", "cutlass"]
        .iter()
        .any(|k| name.contains(k))
        || path.ends_with(".cu")
        || path.ends_with(".cuh")
}

/// What a model's implementation reaches: its model files (the entry file plus the model
/// files it imports, transitively), the layer files they import, and the kernel files those
/// layers import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    pub model_files: Vec<String>,
    pub layer_files: Vec<String>,
    pub kernel_files: Vec<String>,
}

/// Follows imports from `entry_files`. `read` gives a file's text at the checkout's head;
/// `files` is every path in the checkout's head tree.
pub fn reach(
    entry_files: &[String],
    files: &BTreeSet<String>,
    read: &mut dyn FnMut(&str) -> Option<String>,
) -> Reach {
    let models_prefix = format!("{MODELS_DIR}/");
    let layers_prefix = "python/sglang/srt/layers/";
    let mut model_files: Vec<String> = entry_files.to_vec();
    let mut layers: BTreeSet<String> = BTreeSet::new();
    let mut i = 0;
    while i < model_files.len() {
        let text = read(&model_files[i]).unwrap_or_default();
        for m in imported_modules(&text) {
            let Some(f) = module_file(&m, files) else {
                continue;
            };
            if f.starts_with(&models_prefix) {
                if !model_files.contains(&f) {
                    model_files.push(f);
                }
            } else if f.starts_with(layers_prefix) {
                layers.insert(f);
            }
        }
        i += 1;
    }
    let mut kernels: BTreeSet<String> = layers
        .iter()
        .filter(|f| is_kernel_path(f))
        .cloned()
        .collect();
    for layer in &layers {
        let text = read(layer).unwrap_or_default();
        for m in imported_modules(&text) {
            if let Some(f) = module_file(&m, files) {
                if f.starts_with(layers_prefix) && is_kernel_path(&f) && !layers.contains(&f) {
                    kernels.insert(f);
                }
            }
        }
    }
    Reach {
        model_files,
        layer_files: layers
            .into_iter()
            .filter(|f| !kernels.contains(f))
            .collect(),
        kernel_files: kernels.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entry_class_forms() {
        assert_eq!(
            entry_classes("x = 1\nEntryClass = LlamaForCausalLM\n"),
            vec!["LlamaForCausalLM"]
        );
        assert_eq!(
            entry_classes("EntryClass = [\n    A,\n    B,\n]\nEntryClassRemapping = {C: D}\n"),
            vec!["A", "B"]
        );
        assert!(entry_classes("    EntryClass = Nested\nfoo(EntryClass)\n").is_empty());
    }

    #[test]
    fn imports_and_module_files() {
        let src = "import torch\nfrom sglang.srt.layers.linear import (\n  A,\n)\nimport sglang.srt.layers.moe.topk as t\nfrom sglang.srt.models.qwen2 import Qwen2Model\n";
        assert_eq!(
            imported_modules(src),
            vec![
                "sglang.srt.layers.linear",
                "sglang.srt.layers.moe.topk",
                "sglang.srt.models.qwen2"
            ]
        );
        let files: BTreeSet<String> = [
            "python/sglang/srt/layers/linear.py",
            "python/sglang/srt/layers/moe/__init__.py",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            module_file("sglang.srt.layers.linear", &files).as_deref(),
            Some("python/sglang/srt/layers/linear.py")
        );
        assert_eq!(
            module_file("sglang.srt.layers.moe", &files).as_deref(),
            Some("python/sglang/srt/layers/moe/__init__.py")
        );
        assert_eq!(module_file("sglang.srt.layers.none", &files), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".*") {
            let _ = entry_classes(&s);
            let _ = imported_modules(&s);
            let _ = is_kernel_path(&s);
        }
    }
}
