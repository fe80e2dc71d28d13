//! Path-safe slugs derived from user-typed names (model ids, GPU names).
//!
//! Slugs become directory names on the campaign branch, so they must be deterministic
//! (same request, same run directory) and contain only `[a-z0-9_]`.

/// The model slug used in run-directory names.
///
/// Takes the last path segment of a model id (`org/name`) or checkpoint path, lowercases
/// it, turns every run of non-alphanumeric characters into one `_`, and trims `_` at the
/// ends. When the last segment is a generic checkpoint folder name (`snapshots` hashes,
/// `checkpoint-1000`, `hf`, ...) the segment before it is joined in front so that local
/// paths still name the model. Never empty: falls back to `model`.
///
/// `meta-llama/Llama-3.1-8B-Instruct` -> `llama_3_1_8b_instruct`.
pub fn model_slug(model: &str) -> String {
    let segments: Vec<&str> = model
        .split(['/', '\\'])
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    let mut picked: Vec<&str> = Vec::new();
    for seg in segments.iter().rev() {
        match classify(seg) {
            Segment::Filler => continue,
            Segment::Checkpoint => picked.insert(0, seg),
            Segment::Name => {
                // Hugging Face cache folders look like `models--org--name`.
                picked.insert(0, seg.rsplit("--").next().unwrap_or(seg));
                break;
            }
        }
    }
    let slug = slugify(&picked.join("_"));
    if slug.is_empty() {
        "model".to_string()
    } else {
        slug
    }
}

/// Lowercase, non-alphanumeric runs collapsed to one `_`, trimmed. May be empty.
pub fn slugify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_sep = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(c);
        } else {
            pending_sep = true;
        }
    }
    out
}

/// The hardware name used in runner labels: `H100`, `NVIDIA H100 80GB HBM3` -> `h100`,
/// `NVIDIA GeForce RTX 5090` -> `5090`, `MI300X` -> `mi300x`.
///
/// Picks the first word that mixes letters and digits (or is all digits) after dropping
/// vendor and family words; falls back to the slug of the whole name.
pub fn hardware_slug(gpu_model: &str) -> String {
    const VENDOR_WORDS: [&str; 8] = [
        "nvidia", "geforce", "rtx", "tesla", "amd", "instinct", "radeon", "quadro",
    ];
    let words: Vec<String> = gpu_model
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .filter(|w| !VENDOR_WORDS.contains(&w.as_str()))
        .collect();
    words
        .iter()
        .find(|w| w.chars().any(|c| c.is_ascii_digit()))
        .cloned()
        .or_else(|| words.first().cloned())
        .unwrap_or_else(|| slugify(gpu_model))
}

enum Segment {
    /// Carries no model identity (cache hashes, `snapshots`, `hf`, ...): skipped.
    Filler,
    /// Identifies a training checkpoint of the model named by the parent folder: kept.
    Checkpoint,
    /// Names the model.
    Name,
}

fn classify(seg: &str) -> Segment {
    let lower = seg.to_ascii_lowercase();
    let hexlike = lower.len() >= 12 && lower.chars().all(|c| c.is_ascii_hexdigit());
    if hexlike
        || matches!(
            lower.as_str(),
            "hf" | "model" | "models" | "weights" | "snapshots" | "main" | "final" | "latest"
        )
    {
        Segment::Filler
    } else if lower.starts_with("checkpoint") || lower.starts_with("global_step") {
        Segment::Checkpoint
    } else {
        Segment::Name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn model_slugs() {
        for (input, want) in [
            ("meta-llama/Llama-3.1-8B-Instruct", "llama_3_1_8b_instruct"),
            ("Qwen/Qwen2.5-72B-Instruct", "qwen2_5_72b_instruct"),
            ("deepseek-ai/DeepSeek-V3", "deepseek_v3"),
            ("/models/Mixtral-8x7B//", "mixtral_8x7b"),
            (
                "/data/llama-70b/checkpoint-1000",
                "llama_70b_checkpoint_1000",
            ),
            (
                "/hf/hub/models--meta-llama--Llama-3.1-8B/snapshots/0123456789abcdef0123",
                "llama_3_1_8b",
            ),
            ("/weights/final", "model"),
            ("__--__", "model"),
            ("", "model"),
            ("Ünïcode-Modél", "n_code_mod_l"),
        ] {
            assert_eq!(model_slug(input), want, "{input}");
        }
    }

    #[test]
    fn hardware_slugs() {
        for (input, want) in [
            ("H100", "h100"),
            ("NVIDIA H100 80GB HBM3", "h100"),
            ("nvidia-h200", "h200"),
            ("NVIDIA GeForce RTX 5090", "5090"),
            ("A100-SXM4-80GB", "a100"),
            ("AMD Instinct MI300X", "mi300x"),
            ("GB200 NVL72", "gb200"),
            ("cpu", "cpu"),
        ] {
            assert_eq!(hardware_slug(input), want, "{input}");
        }
    }

    proptest! {
        #[test]
        fn slug_is_deterministic_and_path_safe(input in ".{0,80}") {
            let a = model_slug(&input);
            prop_assert_eq!(&a, &model_slug(&input));
            prop_assert!(!a.is_empty());
            prop_assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            prop_assert!(!a.starts_with('_') && !a.ends_with('_') && !a.contains("__"));
            let h = hardware_slug(&input);
            prop_assert!(h.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
    }
}
