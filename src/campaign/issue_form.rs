//! GitHub issue-form bodies: `### Heading` sections, `_No response_` for empty fields.
//!
//! Headings are matched case-insensitively. The Workload and SLA sections hold YAML (or
//! `key: value` lines), optionally inside a fenced block; the Comparison frameworks
//! section holds free text (`only vLLM`, `exclude tensorrt_llm`) or a checkbox list
//! (`- [x] vllm`). Unknown or repeated headings are problems, and so is text before the
//! first heading, so nothing the user wrote is silently dropped.

use super::request::{is_blank, CampaignRequest, RequestProblem, ScalarField};
use super::request_yaml::{frameworks_value, sla_value, workload_value, YamlCtx};
use super::selection::{competitor_from_name, parse_framework_text, FrameworkChoice};
use super::suggest;
use super::yaml_lines::KeyLines;
use serde_yaml_ng::Value;

/// The headings of the campaign issue form, in form order.
pub const ISSUE_FORM_HEADINGS: &[&str] = &[
    "Model",
    "Model revision",
    "Tokenizer",
    "Precision",
    "Quantization",
    "Trust remote code",
    "Max context length",
    "GPU model",
    "GPU count",
    "Visible GPU ids",
    "Allow multi-node",
    "Comparison frameworks",
    "Workload",
    "SLA",
    "History slug",
    "Max rounds",
    "Autonomy",
    "Notes",
];

/// Extra headings accepted for fields that the form leaves to the YAML file.
const EXTRA_HEADINGS: &[&str] = &["Primary metric", "Noise threshold", "TensorRT-LLM backend"];

enum Section {
    Scalar(ScalarField),
    Frameworks,
    Workload,
    Sla,
}

fn section_for(heading: &str) -> Option<Section> {
    let key = heading.trim().trim_end_matches(':').trim().to_lowercase();
    let key = key
        .strip_suffix("(optional)")
        .unwrap_or(&key)
        .trim()
        .to_string();
    Some(match key.as_str() {
        "model" => Section::Scalar(ScalarField::Model),
        "model revision" => Section::Scalar(ScalarField::Revision),
        "tokenizer" => Section::Scalar(ScalarField::Tokenizer),
        "precision" => Section::Scalar(ScalarField::Precision),
        "quantization" => Section::Scalar(ScalarField::Quantization),
        "trust remote code" => Section::Scalar(ScalarField::TrustRemoteCode),
        "max context length" => Section::Scalar(ScalarField::MaxContext),
        "gpu model" => Section::Scalar(ScalarField::GpuModel),
        "gpu count" => Section::Scalar(ScalarField::GpuCount),
        "visible gpu ids" => Section::Scalar(ScalarField::VisibleDevices),
        "allow multi-node" => Section::Scalar(ScalarField::MultiNode),
        "comparison frameworks" => Section::Frameworks,
        "workload" => Section::Workload,
        "sla" => Section::Sla,
        "history slug" => Section::Scalar(ScalarField::HistorySlug),
        "max rounds" => Section::Scalar(ScalarField::MaxRounds),
        "autonomy" => Section::Scalar(ScalarField::Autonomy),
        "notes" => Section::Scalar(ScalarField::Notes),
        "primary metric" => Section::Scalar(ScalarField::PrimaryMetric),
        "noise threshold" | "noise threshold (%)" => Section::Scalar(ScalarField::NoiseThreshold),
        "tensorrt-llm backend" => Section::Scalar(ScalarField::TrtllmBackend),
        _ => return None,
    })
}

/// One `### ` section: heading, its line, and the body (with the body's first line number).
struct RawSection {
    heading: String,
    heading_line: usize,
    body: String,
    body_line: usize,
}

fn split_sections(text: &str) -> (Vec<RawSection>, Option<usize>) {
    let mut sections: Vec<RawSection> = Vec::new();
    let mut preamble_line = None;
    let mut in_fence = false;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if !in_fence {
            if let Some(heading) = trimmed.strip_prefix("### ") {
                sections.push(RawSection {
                    heading: heading.trim().to_string(),
                    heading_line: line_no,
                    body: String::new(),
                    body_line: line_no + 1,
                });
                continue;
            }
        }
        match sections.last_mut() {
            Some(section) => {
                section.body.push_str(line);
                section.body.push('\n');
            }
            None => {
                let t = line.trim();
                let is_comment = t.starts_with("<!--") && t.ends_with("-->");
                if !t.is_empty() && !is_comment && preamble_line.is_none() {
                    preamble_line = Some(line_no);
                }
            }
        }
    }
    (sections, preamble_line)
}

/// The body without surrounding blank lines and without one enclosing code fence; returns
/// the text and the line number of its first line.
fn unwrap_body(body: &str, first_line: usize) -> (String, usize) {
    let lines: Vec<&str> = body.lines().collect();
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(start, |e| e + 1);
    let inner = lines.get(start..end).unwrap_or(&[]);
    let fenced = inner.len() >= 2
        && inner
            .first()
            .is_some_and(|l| l.trim_start().starts_with("```"))
        && inner.last().is_some_and(|l| l.trim() == "```");
    if fenced {
        let content = inner.get(1..inner.len() - 1).unwrap_or(&[]);
        (content.join("\n"), first_line + start + 1)
    } else {
        (inner.join("\n"), first_line + start)
    }
}

/// Parses an issue-form body into a request, reporting every problem at once.
pub fn parse_issue_form(text: &str) -> Result<CampaignRequest, Vec<RequestProblem>> {
    let (sections, preamble_line) = split_sections(text);
    let mut request = CampaignRequest::default();
    let mut problems = Vec::new();
    if let Some(line) = preamble_line {
        problems.push(
            RequestProblem::invalid("issue body", "text before the first `### ` heading is not part of any field; move it under `### Notes`")
                .at(Some(line)),
        );
    }
    if sections.is_empty() {
        problems.push(RequestProblem::invalid("issue body", "no `### ` sections found: expected the campaign issue form (### Model, ### GPU model, ...)"));
    }
    let mut seen: Vec<String> = Vec::new();
    for section in &sections {
        let field_name = section.heading.clone();
        let at = Some(section.heading_line);
        let lower = section.heading.to_lowercase();
        if seen.contains(&lower) {
            problems.push(
                RequestProblem::invalid(&field_name, "this heading appears twice; keep one").at(at),
            );
            continue;
        }
        seen.push(lower);
        let Some(kind) = section_for(&section.heading) else {
            let all: Vec<&str> = ISSUE_FORM_HEADINGS
                .iter()
                .chain(EXTRA_HEADINGS)
                .copied()
                .collect();
            let hint = suggest::hint(&section.heading, &all);
            problems.push(
                RequestProblem::invalid(
                    &field_name,
                    format!(
                        "unknown heading `### {}`{hint}; expected one of: {}",
                        section.heading,
                        ISSUE_FORM_HEADINGS.join(", ")
                    ),
                )
                .at(at),
            );
            continue;
        };
        let (body, body_line) = unwrap_body(&section.body, section.body_line);
        let body = strip_no_response(&body);
        match kind {
            Section::Scalar(field) => {
                if let Err(message) = request.set_scalar(field, &body) {
                    problems
                        .push(RequestProblem::invalid(field.key(), message).at(Some(body_line)));
                }
            }
            Section::Frameworks => match frameworks_section(&body) {
                Ok(choice) => request.frameworks = choice,
                Err(messages) => problems.extend(
                    messages
                        .into_iter()
                        .map(|m| RequestProblem::invalid("frameworks", m).at(Some(body_line))),
                ),
            },
            Section::Workload | Section::Sla => {
                let path = if matches!(kind, Section::Workload) {
                    "workload"
                } else {
                    "sla"
                };
                let value = match yaml_section(&body) {
                    Ok(v) => v,
                    Err((message, line)) => {
                        problems.push(
                            RequestProblem::invalid(path, message)
                                .at(Some(body_line + line.saturating_sub(1))),
                        );
                        continue;
                    }
                };
                let lines = KeyLines::scan(&body, body_line);
                let prefixed = PrefixedLines { lines, path };
                let mut ctx = YamlCtx::new(&prefixed.lines);
                if path == "workload" {
                    request.workload = workload_value(&value, path, &mut ctx);
                } else {
                    request.sla = sla_value(&value, path, &mut ctx);
                }
                problems.extend(ctx.problems.into_iter().map(|p| prefixed.relocate(p)));
            }
        }
    }
    if problems.is_empty() {
        Ok(request)
    } else {
        Err(super::request_yaml::in_document_order(problems))
    }
}

/// Lines of a section's YAML are scanned without the section's own key; this maps problem
/// paths (`workload.num_prompts`) back to the keys inside the section (`num_prompts`).
struct PrefixedLines {
    lines: KeyLines,
    path: &'static str,
}

impl PrefixedLines {
    fn relocate(&self, mut problem: RequestProblem) -> RequestProblem {
        let inner = problem
            .field
            .strip_prefix(self.path)
            .map(|rest| rest.trim_start_matches('.'))
            .unwrap_or(&problem.field);
        if let Some(line) = self.lines.line_of(inner) {
            problem.line = Some(line);
        }
        problem
    }
}

fn strip_no_response(body: &str) -> String {
    if body.trim().eq_ignore_ascii_case("_no response_") {
        String::new()
    } else {
        body.to_string()
    }
}

/// Parses a section as YAML; a blank section is null. Errors carry the 1-based line inside.
fn yaml_section(body: &str) -> Result<Value, (String, usize)> {
    if is_blank(body) {
        return Ok(Value::Null);
    }
    serde_yaml_ng::from_str::<Value>(body).map_err(|e| {
        (
            format!("not valid YAML or `key: value` lines: {e}"),
            e.location().map_or(1, |l| l.line()),
        )
    })
}

/// Checkbox lists (`- [x] vllm`) give the explicit set; anything else is free text or YAML.
fn frameworks_section(body: &str) -> Result<FrameworkChoice, Vec<String>> {
    let checkbox_lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("- ["))
        .collect();
    if checkbox_lines.is_empty() {
        let trimmed = body.trim();
        if trimmed.starts_with('{')
            || trimmed.starts_with("only:")
            || trimmed.starts_with("exclude:")
        {
            let value: Value = serde_yaml_ng::from_str(trimmed)
                .map_err(|e| vec![format!("not valid YAML: {e}")])?;
            let lines = KeyLines::default();
            let mut ctx = YamlCtx::new(&lines);
            return frameworks_value(&value, "frameworks", &mut ctx)
                .ok_or_else(|| ctx.problems.into_iter().map(|p| p.message).collect());
        }
        return parse_framework_text(body);
    }
    let mut selected = Vec::new();
    let mut problems = Vec::new();
    for line in checkbox_lines {
        let checked = line.starts_with("- [x]") || line.starts_with("- [X]");
        if !checked {
            continue;
        }
        let label = line.get(5..).unwrap_or("").trim();
        let name = label.split(['(', ':']).next().unwrap_or("").trim();
        let resolved =
            competitor_from_name(name).or_else(|e| match name.split_whitespace().next() {
                Some(first) if first != name => competitor_from_name(first),
                _ => Err(e),
            });
        match resolved {
            Ok(fw) if !selected.contains(&fw) => selected.push(fw),
            Ok(_) => {}
            Err(m) => problems.push(m),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // No box ticked means "no preference": the default set, never an empty comparison.
    Ok(FrameworkChoice {
        only: (!selected.is_empty()).then_some(selected),
        exclude: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::request::{ProblemKind, SlaChoice};
    use crate::framework::Framework;

    const BODY: &str = "### Model\n\nmeta-llama/Llama-3.1-8B-Instruct\n\n### Model revision\n\n_No response_\n\n### Precision\n\nbf16\n\n### GPU model\n\nH100\n\n### GPU count\n\n2\n\n### Comparison frameworks\n\n- [x] vLLM\n- [ ] TensorRT-LLM (pytorch backend)\n- [x] TokenSpeed\n\n### Workload\n\n```yaml\nnum_prompts: 40\n```\n\n### SLA\n\nmax_p50_ttft_ms: 1500\nmin_success_rate: 0.95\n\n### Notes\n\nfirst line\nsecond line\n";

    #[test]
    fn parses_a_form_body() {
        let r = parse_issue_form(BODY).unwrap();
        assert_eq!(r.model.as_deref(), Some("meta-llama/Llama-3.1-8B-Instruct"));
        assert_eq!(r.revision, None);
        assert_eq!(r.gpu.count, Some(2));
        assert_eq!(
            r.frameworks.only,
            Some(vec![Framework::Vllm, Framework::Tokenspeed])
        );
        assert_eq!(r.workload.num_prompts, Some(40));
        let SlaChoice::Custom(sla) = &r.sla else {
            panic!("{:?}", r.sla)
        };
        assert_eq!(sla.max_p50_ttft_ms, Some(1500.0));
        assert_eq!(sla.max_p50_tpot_ms, None);
        assert_eq!(r.notes.as_deref(), Some("first line\nsecond line"));
    }

    #[test]
    fn headings_are_case_insensitive_and_free_text_frameworks_work() {
        let r = parse_issue_form(
            "### MODEL\nqwen/Qwen2.5-7B\n### comparison frameworks\nonly compare with vLLM\n",
        )
        .unwrap();
        assert_eq!(r.model.as_deref(), Some("qwen/Qwen2.5-7B"));
        assert_eq!(r.frameworks.only, Some(vec![Framework::Vllm]));
    }

    #[test]
    fn all_problems_at_once_with_lines() {
        let body = "hello\n### Model\nx y\n### GPU modle\nH100\n### GPU count\nmany\n### Workload\nnum_promts: 3\n### SLA\nmax_p99_ttft_ms: 3\n### Comparison frameworks\nonly llama.cpp\n### Model\nagain\n";
        let problems = parse_issue_form(body).unwrap_err();
        let got: Vec<(&str, Option<usize>)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.line))
            .collect();
        assert_eq!(
            got,
            [
                ("issue body", Some(1)),
                ("model", Some(3)),
                ("GPU modle", Some(4)),
                ("gpu.count", Some(7)),
                ("workload.num_promts", Some(9)),
                ("sla.max_p99_ttft_ms", Some(11)),
                ("frameworks", Some(13)),
                ("Model", Some(14)),
            ]
        );
        assert!(problems.iter().all(|p| p.kind == ProblemKind::Invalid));
        assert!(problems[2].message.contains("did you mean `GPU model`"));
        assert!(problems[4].message.contains("did you mean `num_prompts`"));
        assert!(problems[5].message.contains("max_p50_ttft_ms"));
    }

    #[test]
    fn unchecked_boxes_mean_default_and_fences_unwrap() {
        let r = parse_issue_form(
            "### Comparison frameworks\n- [ ] vllm\n- [ ] tokenspeed\n### Model\n```\norg/m\n```\n",
        )
        .unwrap();
        assert!(r.frameworks.is_default());
        assert_eq!(r.model.as_deref(), Some("org/m"));
        let r = parse_issue_form("### SLA\nnone\n### Workload\n_No response_\n").unwrap();
        assert_eq!(r.sla, SlaChoice::Unlimited);
        assert!(r.workload.is_empty());
    }
}
