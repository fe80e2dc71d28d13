//! Inline SVG for the dashboard: a trend sparkline per scenario for the campaign list and a
//! gap-over-rounds chart per scenario for the campaign page. Hand-written (no scripts, no
//! external references) so a page works without JavaScript and with a strict content
//! security policy. Every drawn series carries its data in `data-*` attributes, so what a
//! browser draws can be checked against what was stored.

use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One point of a scenario's gap series: round 0 is the fixed baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GapPoint {
    pub round: u32,
    /// Signed gap in percent (positive: SGLang ahead); `None` when no gap was measured.
    pub gap_pct: Option<f64>,
}

/// Escapes text for an XML attribute or element.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn measured(points: &[GapPoint]) -> Vec<(u32, f64)> {
    points
        .iter()
        .filter_map(|p| p.gap_pct.filter(|v| v.is_finite()).map(|v| (p.round, v)))
        .collect()
}

/// The y range: every value and the noise band, padded.
fn y_range(values: &[(u32, f64)], noise_pct: f64) -> (f64, f64) {
    let noise = if noise_pct.is_finite() {
        noise_pct.abs()
    } else {
        1.0
    };
    let lo = values.iter().map(|v| v.1).fold(-noise, f64::min);
    let hi = values.iter().map(|v| v.1).fold(noise, f64::max);
    let pad = ((hi - lo) * 0.1).max(0.5);
    ((lo - pad).floor(), (hi + pad).ceil())
}

/// A tick step of 1, 2 or 5 times a power of ten giving about four intervals.
fn nice_step(range: f64) -> f64 {
    let raw = (range / 4.0).max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    let n = raw / magnitude;
    let m = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * magnitude
}

/// Writes `v` with two decimals using integer formatting (a list page draws thousands of
/// coordinates; float formatting with a precision is several times slower).
fn push_fixed2(out: &mut String, v: f64) {
    let hundredths = (v * 100.0).round();
    if !hundredths.is_finite() || hundredths.abs() >= 1e15 {
        let _ = write!(out, "{v:.2}");
        return;
    }
    let n = hundredths as i64;
    if n < 0 {
        out.push('-');
    }
    let n = n.unsigned_abs();
    let _ = write!(out, "{}.{:02}", n / 100, n % 100);
}

/// A small trend line of one scenario's gap (list page). The line's `data-rounds` and
/// `data-gaps` hold the plotted values.
pub fn sparkline(scenario: &str, points: &[GapPoint], noise_pct: f64) -> String {
    const W: f64 = 120.0;
    const H: f64 = 28.0;
    const PAD: f64 = 3.0;
    let pts = measured(points);
    let (lo, hi) = y_range(&pts, noise_pct);
    let max_round = points.iter().map(|p| p.round).max().unwrap_or(0).max(1);
    let x = |r: u32| PAD + (W - 2.0 * PAD) * f64::from(r) / f64::from(max_round);
    let y = |v: f64| PAD + (H - 2.0 * PAD) * (hi - v) / (hi - lo);
    let name = xml_escape(scenario);
    let mut s = String::with_capacity(512 + pts.len() * 40);
    let last = pts
        .last()
        .map(|p| format!("{:+.2}% at round {}", p.1, p.0))
        .unwrap_or_else(|| "no gap measured".into());
    let _ = write!(
        s,
        r#"<svg class="spark" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{name} gap trend: {last}"><title>{name}: {last}</title>"#
    );
    let noise = noise_pct.abs();
    let _ = write!(
        s,
        r#"<rect class="band" x="0" y="{:.1}" width="{W}" height="{:.1}"/><line class="zero" x1="0" x2="{W}" y1="{:.1}" y2="{:.1}"/>"#,
        y(noise),
        (y(-noise) - y(noise)).max(0.0),
        y(0.0),
        y(0.0)
    );
    if !pts.is_empty() {
        let _ = write!(
            s,
            r#"<polyline class="gap-line" data-scenario="{name}" data-rounds=""#
        );
        for (i, (r, _)) in pts.iter().enumerate() {
            let _ = write!(s, "{}{r}", if i == 0 { "" } else { "," });
        }
        s.push_str(r#"" data-gaps=""#);
        for (i, (_, v)) in pts.iter().enumerate() {
            let _ = write!(s, "{}{v}", if i == 0 { "" } else { "," });
        }
        s.push_str(r#"" points=""#);
        for (i, (r, v)) in pts.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            push_fixed2(&mut s, x(*r));
            s.push(',');
            push_fixed2(&mut s, y(*v));
        }
        s.push_str(r#""/>"#);
        if let Some((r, v)) = pts.last() {
            let _ = write!(
                s,
                r#"<circle class="{}" cx="{:.2}" cy="{:.2}" r="2.5"/>"#,
                if *v < -noise { "last behind" } else { "last" },
                x(*r),
                y(*v)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The gap-over-rounds chart of one scenario (campaign page). Each point is a circle with
/// `data-round` and `data-gap`.
pub fn gap_chart(scenario: &str, points: &[GapPoint], noise_pct: f64) -> String {
    const W: f64 = 560.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 48.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 36.0;
    let pts = measured(points);
    let (lo, hi) = y_range(&pts, noise_pct);
    let tick = nice_step(hi - lo);
    let (lo, hi) = ((lo / tick).floor() * tick, (hi / tick).ceil() * tick);
    let max_round = points.iter().map(|p| p.round).max().unwrap_or(0).max(1);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x = |r: u32| LEFT + pw * f64::from(r) / f64::from(max_round);
    let y = |v: f64| TOP + ph * (hi - v) / (hi - lo);
    let name = xml_escape(scenario);
    let mut s = String::with_capacity(1024 + pts.len() * 160);
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{name}: SGLang gap to the best competitor by round" data-scenario="{name}"><title>{name}: SGLang gap to the best SLA-passing competitor (%), by round</title>"#
    );
    let noise = noise_pct.abs();
    let _ = write!(
        s,
        r#"<rect class="band" x="{LEFT}" y="{:.1}" width="{pw}" height="{:.1}"><title>noise band ±{noise}%</title></rect>"#,
        y(noise),
        (y(-noise) - y(noise)).max(0.0)
    );
    let _ = write!(
        s,
        r#"<line class="zero" x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><path class="axis" d="M{LEFT} {TOP} V{:.1} H{:.1}"/>"#,
        LEFT + pw,
        y(0.0),
        y(0.0),
        TOP + ph,
        LEFT + pw
    );
    let decimals = if tick < 1.0 { 1 } else { 0 };
    let ticks = ((hi - lo) / tick).round() as i64;
    for i in 0..=ticks.clamp(0, 20) {
        let v = lo + tick * i as f64;
        let _ = write!(
            s,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{v:.decimals$}%</text>"#,
            LEFT - 5.0,
            y(v) + 4.0
        );
    }
    let step = max_round.div_ceil(12).max(1);
    let mut r = 0;
    while r <= max_round {
        let label = if r == 0 { "base".into() } else { r.to_string() };
        let _ = write!(
            s,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            x(r),
            TOP + ph + 15.0
        );
        r += step;
    }
    let _ = write!(
        s,
        r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">round</text>"#,
        LEFT + pw / 2.0,
        H - 4.0
    );
    if pts.len() > 1 {
        let coords: Vec<String> = pts
            .iter()
            .map(|(r, v)| format!("{:.1},{:.1}", x(*r), y(*v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="gap-line" points="{}"/>"#,
            coords.join(" ")
        );
    }
    for (r, v) in &pts {
        let _ = write!(
            s,
            r#"<circle class="pt" data-round="{r}" data-gap="{v}" cx="{:.2}" cy="{:.2}" r="3.5"><title>{} {}: {v:+.2}%</title></circle>"#,
            x(*r),
            y(*v),
            name,
            if *r == 0 {
                "baseline".to_string()
            } else {
                format!("round {r}")
            }
        );
    }
    if pts.is_empty() {
        let _ = write!(
            s,
            r#"<text class="empty" x="{:.1}" y="{:.1}" text-anchor="middle">no gap measured yet</text>"#,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(u32, Option<f64>)]) -> Vec<GapPoint> {
        v.iter()
            .map(|&(round, gap_pct)| GapPoint { round, gap_pct })
            .collect()
    }

    #[test]
    fn sparkline_carries_the_plotted_values_and_escapes_names() {
        let s = sparkline(
            "chat <\"&'>",
            &pts(&[(0, Some(-3.5)), (1, None), (2, Some(0.25))]),
            1.0,
        );
        assert!(s.contains(r#"data-rounds="0,2""#), "{s}");
        assert!(s.contains(r#"data-gaps="-3.5,0.25""#), "{s}");
        assert!(s.contains("chat &lt;&quot;&amp;&#39;&gt;"), "{s}");
        assert!(!s.contains("chat <"), "{s}");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
    }

    #[test]
    fn chart_points_are_higher_for_larger_gaps_and_later_rounds_to_the_right() {
        let s = gap_chart(
            "chat",
            &pts(&[(0, Some(-8.0)), (1, Some(-2.0)), (2, Some(3.0))]),
            1.0,
        );
        let circles: Vec<(f64, f64)> = s
            .split("<circle ")
            .skip(1)
            .map(|c| {
                let attr = |name: &str| -> f64 {
                    let start = c.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    c[start..].split('"').next().unwrap().parse().unwrap()
                };
                (attr("cx"), attr("cy"))
            })
            .collect();
        assert_eq!(circles.len(), 3);
        assert!(circles[0].0 < circles[1].0 && circles[1].0 < circles[2].0);
        assert!(circles[0].1 > circles[1].1 && circles[1].1 > circles[2].1);
    }

    #[test]
    fn fixed_two_decimals_match_float_formatting() {
        for v in [0.0, 1.005, 12.345, 99.999, 3.0, 0.004, 116.5, -0.5, -2.25] {
            let mut s = String::new();
            push_fixed2(&mut s, v);
            assert_eq!(
                s.parse::<f64>().unwrap(),
                (v * 100.0_f64).round() / 100.0,
                "{v}: {s}"
            );
        }
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(nice_step(15.0), 5.0);
        assert_eq!(nice_step(4.0), 1.0);
        assert_eq!(nice_step(1.2), 0.5);
        assert_eq!(nice_step(70.0), 20.0);
        let c = gap_chart("s", &pts(&[(0, Some(-11.3)), (1, Some(2.0))]), 1.0);
        assert!(c.contains(">-15%<") && c.contains(">5%<"), "{c}");
    }

    #[test]
    fn empty_and_non_finite_series_still_render() {
        for p in [vec![], pts(&[(0, None)]), pts(&[(1, Some(f64::NAN))])] {
            let c = gap_chart("s", &p, 1.0);
            assert!(c.contains("no gap measured yet"), "{c}");
            assert!(!c.contains("NaN"));
            let s = sparkline("s", &p, 1.0);
            assert!(!s.contains("polyline") && !s.contains("NaN"), "{s}");
        }
    }
}
