//! Grouped bar figures: scores per dataset and method with 95% whiskers, tokenizer
//! information kept, and per-class prediction shift (horizontal bars).

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::plot::style::{
    category_label, check_finite, draw_legend, legend_height, max_text_width, method_color, text,
    write_figure, CategoryAxis, DrawResult, Figure, Swatch, AXIS_PX, GRID, INK, TICK_PX, TITLE_PX,
};
use crate::plot::{ordered_unique, FigurePaths, MethodScore, ShiftRow, TokenInfoRow};

/// One bar: its height and, when known, its 95% interval.
#[derive(Debug, Clone, Copy)]
struct Bar {
    value: f64,
    ci: Option<(f64, f64)>,
}

impl Bar {
    fn new(value: f64, lo: f64, hi: f64) -> Self {
        let ci = (lo.is_finite() && hi.is_finite()).then_some((lo, hi));
        Bar { value, ci }
    }
}

/// A panel of vertical bars: `values[group][series]`.
struct BarPanel {
    title: String,
    y_label: String,
    groups: Vec<String>,
    values: Vec<Vec<Option<Bar>>>,
    y_range: Range<f64>,
    /// Print each bar's value above it (only readable with few bars).
    value_labels: bool,
}

/// Bars of one group span this fraction of the slot between group centres.
const GROUP_WIDTH: f64 = 0.8;

fn draw_bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &BarPanel,
    series: &[String],
) -> DrawResult<DB> {
    let n_series = series.len();
    let n_groups = panel.groups.len();
    let x_range = CategoryAxis { n: n_groups };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, text(TITLE_PX))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(x_range, panel.y_range.clone())?;
    let group_label = |x: &f64| category_label(&panel.groups, *x);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .x_labels(n_groups + 1)
        .x_label_formatter(&group_label)
        .y_labels(8)
        .y_desc(panel.y_label.as_str())
        .axis_desc_style(text(AXIS_PX))
        .label_style(text(TICK_PX))
        .axis_style(INK)
        .draw()?;
    let bar_w = GROUP_WIDTH / n_series.max(1) as f64;
    for (g, row) in panel.values.iter().enumerate() {
        for (s, bar) in row.iter().enumerate() {
            let Some(bar) = bar else { continue };
            let x0 = g as f64 - GROUP_WIDTH / 2.0 + s as f64 * bar_w;
            let x1 = x0 + bar_w * 0.9;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x1, bar.value)],
                method_color(&series[s], s).filled(),
            )))?;
            if panel.value_labels {
                let top = bar.ci.map_or(bar.value, |c| c.1.max(bar.value));
                let label = EmptyElement::at(((x0 + x1) / 2.0, top))
                    + Text::new(
                        format!("{:.2}", bar.value),
                        (0, -6),
                        text(TICK_PX).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    );
                chart.draw_series(std::iter::once(label))?;
            }
            if let Some((lo, hi)) = bar.ci {
                let xc = (x0 + x1) / 2.0;
                let cap = bar_w * 0.18;
                let whisker = INK.stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(xc, lo), (xc, hi)], whisker),
                    PathElement::new(vec![(xc - cap, lo), (xc + cap, lo)], whisker),
                    PathElement::new(vec![(xc - cap, hi), (xc + cap, hi)], whisker),
                ])?;
            }
        }
    }
    if panel.y_range.start < 0.0 {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, 0.0), (n_groups as f64 - 0.5, 0.0)],
            INK.stroke_width(1),
        )))?;
    }
    Ok(())
}

/// Panels of grouped bars side by side under a shared legend.
struct GroupedBars {
    series: Vec<String>,
    panels: Vec<BarPanel>,
    panel_width: u32,
}

impl Figure for GroupedBars {
    fn size(&self) -> (u32, u32) {
        let w = self.panel_width * self.panels.len() as u32;
        (w, 560 + legend_height(&self.series, w))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, _) = root.dim_in_pixel();
        let (legend, body) = root.split_vertically(legend_height(&self.series, w));
        let entries: Vec<_> = (self.series.iter().enumerate())
            .map(|(i, s)| (s.clone(), method_color(s, i), Swatch::Box))
            .collect();
        draw_legend(&legend, &entries)?;
        let areas = body.split_evenly((1, self.panels.len()));
        for (area, panel) in areas.iter().zip(&self.panels) {
            draw_bar_panel(area, panel, &self.series)?;
        }
        Ok(())
    }
}

/// Width of one bar panel: room for every bar, never narrower than 520 px.
fn panel_width(n_groups: usize, n_series: usize) -> u32 {
    (120 + n_groups * (n_series * 34 + 40)).clamp(520, 1100) as u32
}

/// Grouped bars of accuracy and macro F1 (one panel per metric present, accuracy first),
/// groups = datasets, colours = methods, whiskers = 95% intervals.
pub fn accuracy_bars(data: &[MethodScore], out_stem: &Path) -> Result<FigurePaths> {
    if data.is_empty() {
        return Err(Error::param("accuracy_bars", "no scores to plot"));
    }
    check_finite("accuracy_bars.mean", data.iter().map(|d| d.mean))?;
    if let Some(d) = data
        .iter()
        .find(|d| d.metric != "accuracy" && d.metric != "macro_f1")
    {
        return Err(Error::param(
            "accuracy_bars.metric",
            format!("'{}' is not 'accuracy' or 'macro_f1'", d.metric),
        ));
    }
    let datasets = ordered_unique(data.iter().map(|d| d.dataset.as_str()));
    let methods = ordered_unique(data.iter().map(|d| d.method.as_str()));
    let mut panels = Vec::new();
    for (metric, title) in [("accuracy", "Accuracy"), ("macro_f1", "Macro F1")] {
        let rows: Vec<&MethodScore> = data.iter().filter(|d| d.metric == metric).collect();
        if rows.is_empty() {
            continue;
        }
        let mut values = vec![vec![None; methods.len()]; datasets.len()];
        for d in &rows {
            let g = datasets.iter().position(|x| *x == d.dataset).unwrap_or(0);
            let s = methods.iter().position(|x| *x == d.method).unwrap_or(0);
            if values[g][s].is_some() {
                return Err(Error::param(
                    "accuracy_bars",
                    format!("two {metric} rows for {} / {}", d.dataset, d.method),
                ));
            }
            values[g][s] = Some(Bar::new(d.mean, d.ci_low, d.ci_high));
        }
        let top = rows
            .iter()
            .flat_map(|d| [d.mean, d.ci_high])
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::max);
        panels.push(BarPanel {
            title: title.to_string(),
            y_label: title.to_string(),
            groups: datasets.clone(),
            values,
            y_range: 0.0..top + 0.02,
            value_labels: false,
        });
    }
    let panel_width = panel_width(datasets.len(), methods.len());
    write_figure(
        &GroupedBars {
            series: methods,
            panels,
            panel_width,
        },
        out_stem,
    )
}

/// The token probe: query accuracy of logistic regression on each representation (groups)
/// for clean and noisy input (colours), and a second panel, Kendall τ between clean and
/// noisy tokens of the same cells, when any row carries it. `dataset` names the data.
pub fn tokenizer_info(
    rows: &[TokenInfoRow],
    dataset: &str,
    out_stem: &Path,
) -> Result<FigurePaths> {
    if rows.is_empty() {
        return Err(Error::param("tokenizer_info", "no rows to plot"));
    }
    check_finite(
        "tokenizer_info.probe_accuracy",
        rows.iter().map(|r| r.probe_accuracy),
    )?;
    let tokenizers = ordered_unique(rows.iter().map(|r| r.tokenizer.as_str()));
    let conditions = ordered_unique(rows.iter().map(|r| r.condition.as_str()));
    check_finite(
        "tokenizer_info.tau_vs_clean",
        rows.iter().filter_map(|r| r.tau_vs_clean),
    )?;
    let grid = |groups: &[String], f: fn(&TokenInfoRow) -> Option<f64>| {
        let mut v = vec![vec![None; conditions.len()]; groups.len()];
        for r in rows {
            let (Some(value), Some(g)) = (f(r), groups.iter().position(|x| *x == r.tokenizer))
            else {
                continue;
            };
            let s = conditions
                .iter()
                .position(|x| *x == r.condition)
                .unwrap_or(0);
            v[g][s] = Some(Bar { value, ci: None });
        }
        v
    };
    let mut panels = vec![BarPanel {
        title: format!("{dataset}: cell type in the tokens"),
        y_label: "Token-probe accuracy (query)".into(),
        groups: tokenizers.clone(),
        values: grid(&tokenizers, |r| Some(r.probe_accuracy)),
        y_range: 0.0..1.1,
        value_labels: true,
    }];
    let with_tau: Vec<String> = ordered_unique(
        rows.iter()
            .filter(|r| r.tau_vs_clean.is_some())
            .map(|r| r.tokenizer.as_str()),
    );
    if !with_tau.is_empty() {
        let min_tau = rows
            .iter()
            .filter_map(|r| r.tau_vs_clean)
            .fold(0.0f64, f64::min);
        panels.push(BarPanel {
            title: "Token order kept under noise".into(),
            y_label: "Kendall τ, clean vs noisy tokens".into(),
            groups: with_tau.clone(),
            values: grid(&with_tau, |r| r.tau_vs_clean),
            y_range: (min_tau * 1.1)..1.1,
            value_labels: true,
        });
    }
    let panel_width = panel_width(tokenizers.len(), conditions.len());
    write_figure(
        &GroupedBars {
            series: conditions,
            panels,
            panel_width,
        },
        out_stem,
    )
}

/// One dataset of the shift figure: (dataset, classes, `values[class][method]`).
type ShiftPanel = (String, Vec<String>, Vec<Vec<Option<f64>>>);

/// Horizontal grouped bars of predicted minus true share per class: one panel per
/// dataset, classes down the y axis, colours = methods.
struct ShiftFigure {
    methods: Vec<String>,
    panels: Vec<ShiftPanel>,
    /// x axis range in percentage points (includes 0).
    x_range: Range<f64>,
}

impl ShiftFigure {
    /// Height of a panel with `k` classes: every class row is equally tall in every
    /// panel, so bar thickness is comparable across datasets.
    fn panel_height(&self, k: usize) -> u32 {
        let per_class = (self.methods.len() * 10 + 10).max(28);
        (k * per_class + 130) as u32
    }
}

impl Figure for ShiftFigure {
    fn size(&self) -> (u32, u32) {
        let h: u32 = self
            .panels
            .iter()
            .map(|p| self.panel_height(p.1.len()))
            .sum();
        (1000, legend_height(&self.methods, 1000) + h)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, _) = root.dim_in_pixel();
        let (legend, body) = root.split_vertically(legend_height(&self.methods, w));
        let entries: Vec<_> = (self.methods.iter().enumerate())
            .map(|(i, s)| (s.clone(), method_color(s, i), Swatch::Box))
            .collect();
        draw_legend(&legend, &entries)?;
        // One label width for all panels so their zero lines align.
        let all_classes = self.panels.iter().flat_map(|p| p.1.iter());
        let label_w = max_text_width(all_classes, &text(TICK_PX)) + 18;
        let mut rest = body;
        for (dataset, classes, values) in &self.panels {
            let k = classes.len();
            let (area, below) = rest.split_vertically(self.panel_height(k));
            rest = below;
            let y_range = CategoryAxis { n: k };
            let mut chart = ChartBuilder::on(&area)
                .caption(dataset, text(TITLE_PX))
                .margin(14)
                .x_label_area_size(56)
                .y_label_area_size(label_w)
                .build_cartesian_2d(self.x_range.clone(), y_range)?;
            // Row c is drawn at y = k-1-c so the first class is on top.
            let top_down: Vec<String> = classes.iter().rev().cloned().collect();
            let class_label = |y: &f64| category_label(&top_down, *y);
            chart
                .configure_mesh()
                .disable_y_mesh()
                .bold_line_style(GRID)
                .light_line_style(WHITE)
                .y_labels(k + 1)
                .y_label_formatter(&class_label)
                .x_labels(12)
                .x_label_formatter(&|x| {
                    if x.abs() < 1e-9 {
                        "0".to_string()
                    } else {
                        format!("{x:+.0}")
                    }
                })
                .x_desc("Predicted − true share (percentage points)")
                .axis_desc_style(text(AXIS_PX))
                .label_style(text(TICK_PX))
                .axis_style(INK)
                .draw()?;
            let n = self.methods.len().max(1);
            let bar_h = GROUP_WIDTH / n as f64;
            for (c, row) in values.iter().enumerate() {
                let yc = (k - 1 - c) as f64;
                for (m, v) in row.iter().enumerate() {
                    let Some(v) = v else { continue };
                    // First method on top within the group.
                    let y1 = yc + GROUP_WIDTH / 2.0 - m as f64 * bar_h;
                    let y0 = y1 - bar_h * 0.9;
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y0), (*v, y1)],
                        method_color(&self.methods[m], m).filled(),
                    )))?;
                }
            }
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, -0.5), (0.0, k as f64 - 0.5)],
                INK.stroke_width(1),
            )))?;
        }
        Ok(())
    }
}

/// Per-class predicted minus true share (percentage points), one panel per dataset,
/// grouped horizontal bars per method; positive = over-predicted.
pub fn prediction_shift(rows: &[ShiftRow], out_stem: &Path) -> Result<FigurePaths> {
    if rows.is_empty() {
        return Err(Error::param("prediction_shift", "no rows to plot"));
    }
    check_finite("prediction_shift.shift_pp", rows.iter().map(|r| r.shift_pp))?;
    let methods = ordered_unique(rows.iter().map(|r| r.method.as_str()));
    let datasets = ordered_unique(rows.iter().map(|r| r.dataset.as_str()));
    let panels = datasets
        .into_iter()
        .map(|d| {
            let mine: Vec<&ShiftRow> = rows.iter().filter(|r| r.dataset == d).collect();
            let classes = ordered_unique(mine.iter().map(|r| r.class.as_str()));
            let mut values = vec![vec![None; methods.len()]; classes.len()];
            for r in mine {
                let c = classes.iter().position(|x| *x == r.class).unwrap_or(0);
                let m = methods.iter().position(|x| *x == r.method).unwrap_or(0);
                values[c][m] = Some(r.shift_pp);
            }
            (d, classes, values)
        })
        .collect();
    let lo = rows.iter().map(|r| r.shift_pp).fold(0.0f64, f64::min);
    let hi = rows.iter().map(|r| r.shift_pp).fold(0.0f64, f64::max);
    // Ends rounded outwards to multiples of 5 pp, at least ±5 so 0 is never an edge.
    let x_range =
        ((lo * 1.08 / 5.0).floor() * 5.0).min(-5.0)..((hi * 1.08 / 5.0).ceil() * 5.0).max(5.0);
    write_figure(
        &ShiftFigure {
            methods,
            panels,
            x_range,
        },
        out_stem,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{
        check_written, jitter, out_dir, DATASETS, METHODS, MYELOID, PANCREAS,
    };

    fn scores() -> Vec<MethodScore> {
        let mut v = Vec::new();
        for (d, dataset) in DATASETS.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                for (metric, base) in [
                    ("accuracy", 0.95 - 0.25 * d as f64),
                    ("macro_f1", 0.7 - 0.3 * d as f64),
                ] {
                    let mean = base - 0.03 * m as f64 + 0.02 * jitter(d, m, 1);
                    let half = 0.01 + 0.02 * jitter(d, m, 2);
                    v.push(MethodScore {
                        dataset: dataset.to_string(),
                        method: method.to_string(),
                        metric: metric.to_string(),
                        mean,
                        ci_low: mean - half,
                        ci_high: mean + half,
                    });
                }
            }
        }
        v
    }

    /// The accuracy / macro F1 bar figure is written as valid PNG and SVG.
    #[test]
    fn accuracy_bars_writes_png_and_svg() {
        let (dir, _guard) = out_dir();
        let stem = dir.join("accuracy_bars");
        let paths = accuracy_bars(&scores(), &stem).unwrap();
        check_written(&paths, &stem);
        // A single seed has no interval (NaN): the bar is drawn without a whisker.
        let mut rows = scores();
        rows.retain(|r| r.metric == "accuracy");
        rows[0].ci_low = f64::NAN;
        rows[0].ci_high = f64::NAN;
        let stem = dir.join("accuracy_only");
        check_written(&accuracy_bars(&rows, &stem).unwrap(), &stem);
    }

    /// Unknown metrics, duplicates, NaN means and empty input are errors.
    #[test]
    fn accuracy_bars_rejects_bad_rows() {
        let (dir, _guard) = out_dir();
        let stem = dir.join("bad");
        assert!(accuracy_bars(&[], &stem).is_err());
        let mut rows = scores();
        rows[0].metric = "auc".into();
        assert!(accuracy_bars(&rows, &stem).is_err());
        let mut rows = scores();
        rows[0].mean = f64::NAN;
        assert!(accuracy_bars(&rows, &stem).is_err());
        let mut rows = scores();
        rows.push(rows[0].clone());
        assert!(accuracy_bars(&rows, &stem).is_err());
    }

    /// The tokenizer information figure is written as valid PNG and SVG.
    #[test]
    fn tokenizer_info_writes_png_and_svg() {
        let (dir, _guard) = out_dir();
        let stem = dir.join("tokenizer_info");
        let rows: Vec<TokenInfoRow> = [
            ("raw", "clean", 0.91, None),
            ("raw", "noisy", 0.88, None),
            ("binning", "clean", 0.83, None),
            ("binning", "noisy", 0.61, Some(0.41)),
            ("rank", "clean", 0.87, None),
            ("rank", "noisy", 0.72, Some(0.35)),
        ]
        .iter()
        .map(|&(t, c, acc, tau)| TokenInfoRow {
            tokenizer: t.into(),
            condition: c.into(),
            probe_accuracy: acc,
            tau_vs_clean: tau,
        })
        .collect();
        check_written(&tokenizer_info(&rows, "kang", &stem).unwrap(), &stem);
    }

    /// The prediction-shift figure (13 and 21 classes, 4 methods) is written.
    #[test]
    fn prediction_shift_writes_png_and_svg() {
        let (dir, _guard) = out_dir();
        let stem = dir.join("prediction_shift");
        let mut rows = Vec::new();
        for (dataset, classes) in [("hPancreas", &PANCREAS[..]), ("Myeloid", &MYELOID[..])] {
            for (m, method) in ["Seurat v5", "scGPT", "Geneformer", "SC-MAMBA2"]
                .iter()
                .enumerate()
            {
                for (c, class) in classes.iter().enumerate() {
                    let big = if c == 0 && dataset == "Myeloid" {
                        [2.0, 16.0, 6.0, 13.0][m]
                    } else {
                        0.0
                    };
                    rows.push(ShiftRow {
                        dataset: dataset.into(),
                        method: method.to_string(),
                        class: class.to_string(),
                        shift_pp: big + 4.0 * (jitter(m, c, 3) - 0.5)
                            - 0.5 * big / classes.len() as f64,
                    });
                }
            }
        }
        check_written(&prediction_shift(&rows, &stem).unwrap(), &stem);
        rows[0].shift_pp = f64::INFINITY;
        assert!(prediction_shift(&rows, &stem).is_err());
    }
}
