//! HTML for the dashboard: handlebars templates in `templates/dashboard/` (HTML-escaped,
//! strict). The inline SVG is drawn here from the views' points and handed to the
//! templates as finished markup, together with only the fields the page shows (handlebars
//! copies its whole input, and the list's trend data is most of a view).

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use once_cell::sync::Lazy;
use serde::Serialize;
use serde_json::Value;

use super::svg::{gap_chart, sparkline, xml_escape};
use super::view::{CampaignList, CampaignPage, CampaignRow, Links, Spend, StatusView};
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
    hb.register_helper("code_spans", Box::new(code_spans));
    Ok(hb)
});

fn render<T: Serialize>(template: &str, data: &T) -> Result<String, RenderError> {
    crate::report::render_in(&REGISTRY, template, data)
}

/// One scenario's cell on the list page.
#[derive(Serialize)]
struct GapCell<'a> {
    scenario: &'a str,
    gap_text: &'a str,
    status: &'a str,
    label: &'a str,
    spark: String,
}

/// One row of the list page.
#[derive(Serialize)]
struct RowCells<'a> {
    id: &'a str,
    href: &'a str,
    model: &'a str,
    gpu: &'a str,
    private: bool,
    status: &'a StatusView,
    round_text: &'a str,
    gaps: Vec<GapCell<'a>>,
    spend: &'a Spend,
    updated_text: Option<&'a str>,
    updated_ago: Option<&'a str>,
    links: &'a Links,
}

fn row_cells(r: &CampaignRow) -> RowCells<'_> {
    RowCells {
        id: &r.id,
        href: &r.href,
        model: &r.model,
        gpu: &r.gpu,
        private: r.private,
        status: &r.status,
        round_text: &r.round_text,
        gaps: r
            .gaps
            .iter()
            .map(|g| GapCell {
                scenario: &g.scenario,
                gap_text: &g.gap_text,
                status: g.status,
                label: &g.label,
                spark: sparkline(&g.scenario, &g.trend, r.noise_pct),
            })
            .collect(),
        spend: &r.spend,
        updated_text: r.updated_text.as_deref(),
        updated_ago: r.updated_ago.as_deref(),
        links: &r.links,
    }
}

#[derive(Serialize)]
struct ListData<'a> {
    title: &'static str,
    standalone: bool,
    generated_at: &'a str,
    counts: &'a [super::view::StatusCount],
    campaigns: Vec<RowCells<'a>>,
}

/// One scenario's chart on a campaign page.
#[derive(Serialize)]
struct ChartCell<'a> {
    scenario: &'a str,
    svg: String,
}

#[derive(Serialize)]
struct PageData<'a> {
    title: String,
    standalone: bool,
    generated_at: &'a str,
    page: &'a CampaignPage,
    charts: Vec<ChartCell<'a>>,
}

/// The `/campaigns` page.
pub fn list_html(list: &CampaignList) -> Result<String, RenderError> {
    render(
        "campaigns",
        &ListData {
            title: "sota-bot campaigns",
            standalone: false,
            generated_at: &list.generated_at,
            counts: &list.counts,
            campaigns: list.campaigns.iter().map(row_cells).collect(),
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
            charts: page
                .charts
                .iter()
                .map(|c| ChartCell {
                    scenario: &c.scenario,
                    svg: gap_chart(&c.scenario, &c.points, c.noise_pct),
                })
                .collect(),
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
