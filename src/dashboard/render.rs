//! HTML for the dashboard: handlebars templates in `templates/dashboard/` (HTML-escaped,
//! strict), with helpers that draw the inline SVG from the views' points.

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use once_cell::sync::Lazy;
use serde::Serialize;
use serde_json::Value;

use super::svg::{gap_chart, sparkline, xml_escape, GapPoint};
use super::view::{CampaignList, CampaignPage};
use crate::report::RenderError;

const TEMPLATES: [(&str, &str); 5] = [
    (
        "layout",
        include_str!("../../templates/dashboard/layout.html.hbs"),
    ),
    (
        "campaigns",
        include_str!("../../templates/dashboard/campaigns.html.hbs"),
    ),
    (
        "campaign",
        include_str!("../../templates/dashboard/campaign.html.hbs"),
    ),
    (
        "sign-in",
        include_str!("../../templates/dashboard/sign-in.html.hbs"),
    ),
    (
        "not-found",
        include_str!("../../templates/dashboard/not-found.html.hbs"),
    ),
];

fn param<'a>(h: &'a Helper<'_>, i: usize) -> Result<&'a Value, RenderErrorReason> {
    h.param(i)
        .map(|p| p.value())
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("dashboard helper", i))
}

fn points(v: &Value) -> Vec<GapPoint> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// `{{{sparkline scenario points noise}}}` and `{{{gap_chart scenario points noise}}}`.
fn chart_helper(
    draw: fn(&str, &[GapPoint], f64) -> String,
) -> impl Fn(
    &Helper<'_>,
    &Handlebars<'_>,
    &Context,
    &mut RenderContext<'_, '_>,
    &mut dyn Output,
) -> HelperResult
       + Send
       + Sync {
    move |h, _, _, _, out| {
        let scenario = param(h, 0)?.as_str().unwrap_or_default();
        let pts = points(param(h, 1)?);
        let noise = param(h, 2)?.as_f64().unwrap_or(1.0);
        out.write(&draw(scenario, &pts, noise))?;
        Ok(())
    }
}

/// `{{{code_spans text}}}`: escapes the text, then shows `backticked` parts as code.
fn code_spans(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let text = param(h, 0)?.as_str().unwrap_or_default();
    let mut html = String::with_capacity(text.len() + 16);
    for (i, part) in text.split('`').enumerate() {
        let escaped = xml_escape(part);
        // Odd parts sit between backticks; a trailing unmatched backtick stays text.
        if i % 2 == 1 && text.split('`').count() > i + 1 {
            html.push_str("<code>");
            html.push_str(&escaped);
            html.push_str("</code>");
        } else {
            if i % 2 == 1 {
                html.push('`');
            }
            html.push_str(&escaped);
        }
    }
    out.write(&html)?;
    Ok(())
}

static REGISTRY: Lazy<Result<Handlebars<'static>, String>> = Lazy::new(|| {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    for (name, text) in TEMPLATES {
        hb.register_template_string(name, text)
            .map_err(|e| format!("template {name}: {e}"))?;
    }
    hb.register_helper("sparkline", Box::new(chart_helper(sparkline)));
    hb.register_helper("gap_chart", Box::new(chart_helper(gap_chart)));
    hb.register_helper("code_spans", Box::new(code_spans));
    Ok(hb)
});

fn render<T: Serialize>(template: &str, data: &T) -> Result<String, RenderError> {
    let hb = REGISTRY.as_ref().map_err(|e| RenderError {
        template: template.into(),
        message: e.clone(),
    })?;
    hb.render(template, data).map_err(|e| RenderError {
        template: template.into(),
        message: e.to_string(),
    })
}

#[derive(Serialize)]
struct ListData<'a> {
    title: &'static str,
    standalone: bool,
    generated_at: &'a str,
    list: &'a CampaignList,
}

#[derive(Serialize)]
struct PageData<'a> {
    title: String,
    standalone: bool,
    generated_at: &'a str,
    page: &'a CampaignPage,
}

/// The `/campaigns` page.
pub fn list_html(list: &CampaignList) -> Result<String, RenderError> {
    render(
        "campaigns",
        &ListData {
            title: "sota-bot campaigns",
            standalone: false,
            generated_at: &list.generated_at,
            list,
        },
    )
}

/// A campaign page; `standalone` drops the links back to the dashboard (a local report
/// file has no dashboard around it).
pub fn page_html(page: &CampaignPage, standalone: bool) -> Result<String, RenderError> {
    render(
        "campaign",
        &PageData {
            title: format!("sota-bot · {} · {}", page.campaign.model, page.campaign.id),
            standalone,
            generated_at: &page.generated_at,
            page,
        },
    )
}

#[derive(Serialize)]
struct SignInData<'a> {
    title: &'static str,
    standalone: bool,
    generated_at: String,
    configured: bool,
    message: Option<&'a str>,
}

/// The sign-in form; `configured` says whether a token exists at all.
pub fn sign_in_html(configured: bool, message: Option<&str>) -> Result<String, RenderError> {
    render(
        "sign-in",
        &SignInData {
            title: "sota-bot dashboard sign-in",
            standalone: false,
            generated_at: super::view::time_text(chrono::Utc::now()),
            configured,
            message,
        },
    )
}

#[derive(Serialize)]
struct NotFoundData<'a> {
    title: &'static str,
    standalone: bool,
    generated_at: String,
    id: &'a str,
}

/// The page for a campaign that is missing (or hidden from this viewer: the same page).
pub fn not_found_html(id: &str) -> Result<String, RenderError> {
    render(
        "not-found",
        &NotFoundData {
            title: "sota-bot: no such campaign",
            standalone: false,
            generated_at: super::view::time_text(chrono::Utc::now()),
            id,
        },
    )
}
