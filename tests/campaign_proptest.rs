//! Parsers of user input never panic, whatever the input.

use proptest::prelude::*;
use sota_bot::campaign::issue_form::{parse_issue_form, ISSUE_FORM_HEADINGS};
use sota_bot::campaign::repo_config::parse_repo_config;
use sota_bot::campaign::request_yaml::parse_yaml;
use sota_bot::campaign::selection::parse_framework_text;
use sota_bot::campaign::yaml_lines::KeyLines;
use sota_bot::campaign::RepoConfig;

fn issue_body() -> impl Strategy<Value = String> {
    let section = (
        prop::sample::select(ISSUE_FORM_HEADINGS.to_vec()),
        ".{0,40}",
        prop::bool::ANY,
    )
        .prop_map(|(h, body, fence)| {
            if fence {
                format!("### {h}\n\n```yaml\n{body}\n```\n")
            } else {
                format!("### {h}\n\n{body}\n")
            }
        });
    prop::collection::vec(section, 0..8).prop_map(|s| s.concat())
}

fn yamlish() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "model",
        "gpu",
        "frameworks",
        "workload",
        "sla",
        "max_rounds",
        "scenarios",
        "count",
        "-",
        "defaults",
        "budget",
        "agent",
    ]);
    let line = (0usize..6, key, "[ -~]{0,20}")
        .prop_map(|(indent, k, v)| format!("{}{k}: {v}\n", " ".repeat(indent)));
    prop::collection::vec(line, 0..12).prop_map(|l| l.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn issue_form_never_panics(text in "(?s).{0,400}") {
        let _ = parse_issue_form(&text);
    }

    #[test]
    fn structured_issue_bodies_never_panic_and_resolve_safely(text in issue_body()) {
        if let Ok(r) = parse_issue_form(&text) {
            let _ = r.resolve(&RepoConfig::default());
        }
    }

    #[test]
    fn yaml_never_panics(text in "(?s).{0,400}") {
        let _ = parse_yaml(&text);
        let _ = parse_repo_config(&text);
        let _ = KeyLines::scan(&text, 1);
    }

    #[test]
    fn yaml_like_text_never_panics(text in yamlish()) {
        if let Ok(r) = parse_yaml(&text) {
            let _ = r.resolve(&RepoConfig::default());
        }
        let _ = parse_repo_config(&text);
    }

    #[test]
    fn framework_text_never_panics(text in "(?s).{0,120}") {
        let _ = parse_framework_text(&text);
    }

    #[test]
    fn problems_always_name_a_field(text in yamlish()) {
        if let Err(problems) = parse_yaml(&text) {
            prop_assert!(!problems.is_empty());
            for p in problems {
                prop_assert!(!p.field.is_empty() && !p.message.is_empty());
            }
        }
    }
}
