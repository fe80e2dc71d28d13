//! The stage (`prefill` or `decode`) a file path or a piece of text names: SGLang's
//! profile-by-stage file names, stage folders, annotations and attention kernel names.

use std::path::Path;

/// Stage named by a file path: SGLang's profile-by-stage file names
/// (`<id>-TP-0-DECODE.trace.json.gz`, `...-EXTEND.trace.json.gz`) or a folder named after
/// a stage (`decode/`, `EXTEND/`). A stage word elsewhere in a file name
/// (`llama_decode_16steps.json`) names no stage: such a trace can hold prefill passes too.
pub fn stage_from_path(path: &Path) -> Option<&'static str> {
    let by_stage_file = path.file_name().and_then(|n| {
        let n = n.to_string_lossy();
        let stem = n.strip_suffix(".gz").unwrap_or(&n);
        let stem = stem.strip_suffix(".json")?;
        let stem = stem.strip_suffix(".trace").unwrap_or(stem);
        match stem.rsplit('-').next()? {
            "DECODE" => Some("decode"),
            "EXTEND" | "PREFILL" => Some("prefill"),
            _ => None,
        }
    });
    by_stage_file.or_else(|| {
        path.parent()?.components().rev().find_map(|c| {
            match c
                .as_os_str()
                .to_string_lossy()
                .to_ascii_lowercase()
                .as_str()
            {
                "decode" => Some("decode"),
                "prefill" | "extend" => Some("prefill"),
                _ => None,
            }
        })
    })
}

/// Stage named by a piece of text.
pub fn stage_from_text(text: &str) -> Option<&'static str> {
    let l = text.to_ascii_lowercase();
    if l.contains("decode") {
        Some("decode")
    } else if l.contains("prefill") || l.contains("extend") {
        Some("prefill")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_paths() {
        let st = |p: &str| stage_from_path(Path::new(p));
        assert_eq!(st("t/1765-TP-0-DECODE.trace.json.gz"), Some("decode"));
        assert_eq!(st("1765-TP-1-EXTEND.trace.json"), Some("prefill"));
        assert_eq!(st("run/EXTEND/x.json"), Some("prefill"));
        assert_eq!(st("decode/rank0.json.gz"), Some("decode"));
        assert_eq!(st("mixtral_decode_16steps.trace.json.gz"), None);
        assert_eq!(st("traces/llama8b_prefill.json"), None);
    }

    #[test]
    fn stage_names() {
        assert_eq!(
            stage_from_text("x-TP-0-DECODE.trace.json.gz"),
            Some("decode")
        );
        assert_eq!(stage_from_text("run/EXTEND/x.json"), Some("prefill"));
        assert_eq!(stage_from_text("prefill_forward"), Some("prefill"));
        assert_eq!(stage_from_text("nccl:all_reduce"), None);
    }
}
