//! Draws the message figures as an SVG chart: each figure's hivemind bar beside its plain-channel
//! bar, throughput and latency in panels of their own.

use crate::messages::Figure;
use std::fmt::Write as _;

const WIDTH: f64 = 860.0;
const LABEL: f64 = 300.0;
const BAR: f64 = 14.0;
const ROW: f64 = 44.0;
const HIVE: &str = "#e0a030";
const CHANNEL: &str = "#6b8fb8";

/// The chart of `figures` as an SVG document.
pub fn svg(figures: &[Figure]) -> String {
    let throughput: Vec<&Figure> = figures
        .iter()
        .filter(|f| f.unit != "µs" && f.baseline.is_some())
        .collect();
    let latency: Vec<&Figure> = figures
        .iter()
        .filter(|f| f.unit == "µs" && f.baseline.is_some())
        .collect();
    let height = 90.0 + ROW * (throughput.len() + latency.len()) as f64 + 70.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="28" font-size="17" font-weight="bold">hivemind vs a plain crossbeam channel (same run)</text>
<rect x="20" y="40" width="12" height="12" fill="{HIVE}"/><text x="38" y="51">hivemind (real host, real node libraries)</text>
<rect x="330" y="40" width="12" height="12" fill="{CHANNEL}"/><text x="348" y="51">plain channel between threads</text>
"#
    );
    let mut y = 80.0;
    y = panel(
        &mut out,
        "throughput (millions per second, longer is better)",
        &throughput,
        y,
        1e-6,
    );
    panel(
        &mut out,
        "latency in µs at 10,000 msg/s (shorter is better)",
        &latency,
        y + 10.0,
        1.0,
    );
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, title: &str, figures: &[&Figure], top: f64, scale: f64) -> f64 {
    let _ = writeln!(
        out,
        r#"<text x="20" y="{top}" font-weight="bold">{title}</text>"#
    );
    let largest = figures
        .iter()
        .flat_map(|f| [f.hive, f.baseline.unwrap_or(0.0)])
        .fold(0.0f64, f64::max)
        * scale;
    let span = WIDTH - LABEL - 90.0;
    let mut y = top + 12.0;
    for figure in figures {
        let _ = writeln!(
            out,
            r#"<text x="20" y="{}">{}</text>"#,
            y + 17.0,
            escape(figure.name)
        );
        for (i, (value, color)) in [
            (figure.hive, HIVE),
            (figure.baseline.unwrap_or(0.0), CHANNEL),
        ]
        .into_iter()
        .enumerate()
        {
            let value = value * scale;
            let length = if largest > 0.0 {
                (value / largest * span).max(1.0)
            } else {
                1.0
            };
            let bar_y = y + 4.0 + i as f64 * (BAR + 2.0);
            let _ = writeln!(
                out,
                r#"<rect x="{LABEL}" y="{bar_y}" width="{length:.1}" height="{BAR}" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="11">{value:.2}</text>"#,
                LABEL + length + 6.0,
                bar_y + 11.0
            );
        }
        y += ROW;
    }
    y
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
