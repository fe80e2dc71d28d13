//! Rendering of everything a person reads: round reports, reviews, round prompts, the plan,
//! the final report, checkpoint and history notes (handlebars templates in `templates/`),
//! and the gap chart (hand-written SVG, Mermaid for PR comments).
//!
//! Renderers take plain view data and return strings; writing files is the engine's job.

pub mod chart;
pub mod views;

use handlebars::Handlebars;
use once_cell::sync::Lazy;
use serde::Serialize;

pub use chart::{gap_series, noise_band, render_gap_mermaid, render_gap_svg, GapSeries};
pub use views::*;

/// Templates compiled into the binary, so an installed `sota-bot` needs no data files.
const TEMPLATES: [(&str, &str); 7] = [
    (
        "round-report",
        include_str!("../../templates/round-report.md.hbs"),
    ),
    ("review", include_str!("../../templates/review.md.hbs")),
    (
        "round-prompt",
        include_str!("../../templates/round-prompt.md.hbs"),
    ),
    ("plan", include_str!("../../templates/plan.md.hbs")),
    (
        "final-report",
        include_str!("../../templates/final-report.md.hbs"),
    ),
    (
        "checkpoint",
        include_str!("../../templates/checkpoint.md.hbs"),
    ),
    (
        "history-notes",
        include_str!("../../templates/history-notes.md.hbs"),
    ),
];

static REGISTRY: Lazy<Result<Handlebars<'static>, String>> = Lazy::new(|| {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    // Markdown output: HTML escaping would corrupt commands and code spans.
    hb.register_escape_fn(handlebars::no_escape);
    for (name, text) in TEMPLATES {
        hb.register_template_string(name, text)
            .map_err(|e| format!("template {name}: {e}"))?;
    }
    Ok(hb)
});

/// A template that failed to render (a bug in sota-bot, reported with the template name).
#[derive(Debug, thiserror::Error)]
#[error("rendering template `{template}` failed: {message}")]
pub struct RenderError {
    pub template: String,
    pub message: String,
}

/// Renders one of the built-in templates.
pub fn render<T: Serialize>(template: &str, data: &T) -> Result<String, RenderError> {
    render_in(&REGISTRY, template, data)
}

/// Renders `template` of a registry built once (its build error, if any, is reported with
/// the template asked for).
pub fn render_in<T: Serialize>(
    registry: &Result<Handlebars<'static>, String>,
    template: &str,
    data: &T,
) -> Result<String, RenderError> {
    let hb = registry.as_ref().map_err(|e| RenderError {
        template: template.into(),
        message: e.clone(),
    })?;
    hb.render(template, data).map_err(|e| RenderError {
        template: template.into(),
        message: e.to_string(),
    })
}
