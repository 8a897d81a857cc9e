//! The PNG: one band per metric, one bar per runtime, the length its cost relative to
//! native on a log scale (1 = native; more is worse whatever the unit).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::report::Row;

/// Fonts tried in turn; ab_glyph renders them without fontconfig.
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

fn register_font() -> Result<(), String> {
    for path in FONTS {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return Ok(());
            }
        }
    }
    Err("no TrueType font found (apt-get install fonts-dejavu-core)".to_string())
}

fn color(runtime: &str) -> RGBColor {
    match runtime {
        "runc" => RGBColor(120, 144, 156),
        "runsc" => RGBColor(230, 126, 34),
        "carapace-ptrace" => RGBColor(39, 174, 96),
        "carapace-systrap" => RGBColor(22, 118, 64),
        "carapace-systrap-nopatch" => RGBColor(120, 200, 150),
        _ => RGBColor(41, 128, 185),
    }
}

/// One bar: band index, runtime, ratio (or the reason it has none).
struct Bar {
    band: usize,
    runtime: String,
    ratio: Result<f64, String>,
}

/// Bars relative to native, or to runc where native has no number (lifecycle rows).
fn bars(rows: &[Row]) -> (Vec<String>, Vec<String>, Vec<Bar>) {
    let mut labels: Vec<String> = Vec::new();
    let mut metrics: Vec<&str> = Vec::new();
    let mut runtimes: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for row in rows {
        if row.runtime == "native" {
            continue;
        }
        let baseline_native = rows
            .iter()
            .any(|r| r.metric == row.metric && r.runtime == "native" && r.summary.is_some());
        let ratio = if baseline_native {
            row.ratio_native
        } else {
            let runc = rows
                .iter()
                .find(|r| r.metric == row.metric && r.runtime == "runc")
                .and_then(|r| r.summary);
            match (runc, row.summary) {
                (Some(r), Some(s)) => crate::stats::cost_ratio(row.unit, s.median, r.median),
                _ => None,
            }
        };
        if row.runtime == "runc" && !baseline_native {
            continue; // it is the baseline
        }
        let band = match metrics.iter().position(|m| *m == row.metric) {
            Some(i) => i,
            None => {
                metrics.push(&row.metric);
                let suffix = if baseline_native { "" } else { " (vs runc)" };
                labels.push(format!("{}{suffix}", row.label));
                metrics.len() - 1
            }
        };
        if !runtimes.contains(&row.runtime) {
            runtimes.push(row.runtime.clone());
        }
        out.push(Bar {
            band,
            runtime: row.runtime.clone(),
            ratio: ratio.ok_or_else(|| row.error.clone().unwrap_or_else(|| "n/a".into())),
        });
    }
    (labels, runtimes, out)
}

/// Writes the chart to `path`; `title` goes on top.
pub fn write_png(rows: &[Row], title: &str, path: &Path) -> Result<(), String> {
    register_font()?;
    let (labels, runtimes, bars) = bars(rows);
    if labels.is_empty() {
        return Err("nothing to chart".to_string());
    }
    let per_band = runtimes.len().max(1);
    let band_px = (per_band * 13 + 10) as u32;
    let height = 110 + band_px * labels.len() as u32;
    let (width, left) = (1100u32, 300u32);
    let ratios = bars.iter().filter_map(|b| b.ratio.as_ref().ok().copied());
    let (lo, hi) = ratios.fold((0.5f64, 2.0f64), |(lo, hi), r| (lo.min(r), hi.max(r)));
    let (lo, hi) = (lo / 1.5, hi * 6.0);

    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("chart: {e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let n = labels.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(left)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..n)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("cost relative to native (log scale; 1 = native, more is worse)")
        .x_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}×")
            } else {
                format!("{v}×")
            }
        })
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;

    let bar_h = 0.8 / per_band as f64;
    // Band i counts from the top.
    let y_of = |band: usize, slot: usize| n - band as f64 - 0.1 - bar_h * (slot as f64 + 1.0);
    for (slot, rt) in runtimes.iter().enumerate() {
        let c = color(rt);
        let mine: Vec<&Bar> = bars.iter().filter(|b| &b.runtime == rt).collect();
        chart
            .draw_series(mine.iter().filter_map(|b| {
                let r = *b.ratio.as_ref().ok()?;
                let y = y_of(b.band, slot);
                Some(Rectangle::new([(lo, y), (r, y + bar_h * 0.9)], c.filled()))
            }))
            .map_err(|e| err(&e))?
            .label(rt.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        let small = ("sans-serif", 11)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(mine.iter().map(|b| {
                let y = y_of(b.band, slot) + bar_h * 0.45;
                let (x, text) = match &b.ratio {
                    Ok(r) => (*r, format!(" {}", crate::stats::format_ratio(Some(*r)))),
                    Err(e) => (lo, format!(" n/a: {}", crate::exec::shorten(e, 60))),
                };
                Text::new(text, (x, y), small.clone())
            }))
            .map_err(|e| err(&e))?;
    }
    // Native is 1 by definition: a line instead of a bar.
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, 0.0), (1.0, n)],
            BLACK.stroke_width(1),
        )))
        .map_err(|e| err(&e))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;

    // Metric names in the left margin, at their band's centre.
    let label_font = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for (i, label) in labels.iter().enumerate() {
        let (_, py) = chart.backend_coord(&(lo, n - i as f64 - 0.5));
        let x = left as i32 + 10 - 8;
        root.draw(&Text::new(label.clone(), (x, py), label_font.clone()))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
