//! Figures that show whether the numbers can be trusted: the neural fits' learning curves
//! and a forest plot of the claims (per data set and pooled, with the published value).

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::plot::style::{
    check_finite, draw_legend, legend_height, max_text_width, method_color, series_color, text,
    write_figure, DrawResult, Figure, Mark, Swatch, AXIS_PX, GRID, INK, SMALL_PX, TICK_PX,
    TITLE_PX,
};
use crate::plot::{ordered_unique, FigurePaths};

/// One evaluation of one fit: the panel (data set), the series (method), the step and the
/// losses at it.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveRow {
    pub panel: String,
    pub method: String,
    pub step: f64,
    /// Mean training loss since the previous evaluation.
    pub train_loss: f64,
    /// Reference-validation cross entropy.
    pub val_loss: f64,
}

/// (step, training loss, validation loss).
type LossPoint = (f64, f64, f64);

struct CurveFigure {
    methods: Vec<String>,
    /// (data set, per method: its points by step).
    panels: Vec<(String, Vec<Vec<LossPoint>>)>,
}

impl CurveFigure {
    fn cols(&self) -> usize {
        self.panels.len().min(3)
    }
}

impl Figure for CurveFigure {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.cols());
        let w = 600 * self.cols() as u32;
        (w, legend_height(&self.methods, w) + 60 + 450 * rows as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, _) = root.dim_in_pixel();
        let (legend, body) = root.split_vertically(legend_height(&self.methods, w));
        let entries: Vec<_> = (self.methods.iter().enumerate())
            .map(|(i, m)| (m.clone(), method_color(m, i), Swatch::Line(Mark::Circle)))
            .collect();
        draw_legend(&legend, &entries)?;
        let (note, body) = body.split_vertically(60);
        note.draw(&Text::new(
            "thick: reference-validation loss · thin: training loss (first seed, clean reference)",
            (20, 20),
            text(SMALL_PX),
        ))?;
        let rows = self.panels.len().div_ceil(self.cols());
        for (area, (panel, lines)) in body
            .split_evenly((rows, self.cols()))
            .iter()
            .zip(&self.panels)
        {
            let pts = lines.iter().flatten();
            let x_max = pts.clone().map(|p| p.0).fold(1.0f64, f64::max);
            let y_max = pts.flat_map(|p| [p.1, p.2]).fold(0.1f64, f64::max) * 1.05;
            let mut chart = ChartBuilder::on(area)
                .caption(panel, text(TITLE_PX))
                .margin(14)
                .x_label_area_size(56)
                .y_label_area_size(78)
                .build_cartesian_2d(0.0..x_max * 1.02, 0.0..y_max)?;
            chart
                .configure_mesh()
                .bold_line_style(GRID)
                .light_line_style(WHITE)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .x_desc("Fine-tuning step")
                .y_desc("Cross entropy")
                .y_label_formatter(&|y| format!("{y:.1}"))
                .axis_desc_style(text(AXIS_PX))
                .label_style(text(TICK_PX))
                .axis_style(INK)
                .draw()?;
            for (m, line) in lines.iter().enumerate() {
                let c = method_color(&self.methods[m], m);
                chart.draw_series(LineSeries::new(
                    line.iter().map(|p| (p.0, p.1)),
                    c.stroke_width(1),
                ))?;
                chart.draw_series(LineSeries::new(
                    line.iter().map(|p| (p.0, p.2)),
                    c.stroke_width(4),
                ))?;
            }
        }
        Ok(())
    }
}

/// Learning curves: one panel per data set, one colour per method, validation loss thick
/// and training loss thin.
pub fn learning_curves(rows: &[CurveRow], out_stem: &Path) -> Result<FigurePaths> {
    if rows.is_empty() {
        return Err(Error::param("learning_curves", "no curve points"));
    }
    check_finite("step", rows.iter().map(|r| r.step))?;
    check_finite("loss", rows.iter().flat_map(|r| [r.train_loss, r.val_loss]))?;
    let methods = ordered_unique(rows.iter().map(|r| r.method.as_str()));
    let panels = ordered_unique(rows.iter().map(|r| r.panel.as_str()))
        .into_iter()
        .map(|p| {
            let lines = methods
                .iter()
                .map(|m| {
                    let mut l: Vec<_> = rows
                        .iter()
                        .filter(|r| r.panel == p && &r.method == m)
                        .map(|r| (r.step, r.train_loss, r.val_loss))
                        .collect();
                    l.sort_by(|a, b| a.0.total_cmp(&b.0));
                    l
                })
                .collect();
            (p, lines)
        })
        .collect();
    write_figure(&CurveFigure { methods, panels }, out_stem)
}

/// One row of the forest plot: a claim's effect, pooled or in one data set.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestRow {
    /// The claim (the row label).
    pub claim: String,
    /// `None`: pooled over data sets; else the data set.
    pub dataset: Option<String>,
    /// Effect in percentage points.
    pub mean: f64,
    /// 95% interval (NaN ends: no whisker).
    pub ci_low: f64,
    pub ci_high: f64,
    /// The published effect (NaN: the abstract gives a direction only).
    pub published: f64,
}

struct ForestFigure {
    claims: Vec<String>,
    datasets: Vec<String>,
    rows: Vec<ForestRow>,
    label_w: u32,
}

const ROW_PX: u32 = 46;

impl Figure for ForestFigure {
    fn size(&self) -> (u32, u32) {
        let mut names = vec![
            "pooled (95% cluster bootstrap)".to_string(),
            "published".into(),
        ];
        names.extend(self.datasets.iter().cloned());
        let body = (110 + ROW_PX * self.claims.len() as u32).max(320);
        (
            self.label_w + 620,
            legend_height(&names, self.label_w + 620) + body,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, _) = root.dim_in_pixel();
        let entries = self.legend_entries();
        let names: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
        let (legend, body) = root.split_vertically(legend_height(&names, w));
        draw_legend(&legend, &entries)?;
        let (lo, hi) = self.value_range();
        let pad = ((hi - lo) * 0.06).max(1.0);
        let n = self.claims.len();
        let mut chart = ChartBuilder::on(&body)
            .margin(14)
            .x_label_area_size(60)
            .y_label_area_size(self.label_w)
            .build_cartesian_2d(lo - pad..hi + pad, -0.5..n as f64 - 0.5)?;
        let claims = self.claims.clone();
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .y_labels(n.max(1))
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 {
                    claims.get(n - 1 - i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc("Effect (percentage points; positive = the claim's direction)")
            .axis_desc_style(text(AXIS_PX))
            .label_style(text(SMALL_PX))
            .axis_style(INK)
            .draw()?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, -0.5), (0.0, n as f64 - 0.5)],
            INK.stroke_width(1),
        )))?;
        for r in &self.rows {
            self.draw_row(&mut chart, r, pad)?;
        }
        Ok(())
    }
}

/// The forest plot's chart: effect (x) against claim row (y), both continuous.
type ForestChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

impl ForestFigure {
    /// Legend: the pooled estimate, the published value, then one colour per data set.
    fn legend_entries(&self) -> Vec<(String, RGBColor, Swatch)> {
        let mut entries = vec![
            (
                "pooled (95% cluster bootstrap)".to_string(),
                INK,
                Swatch::Line(Mark::Circle),
            ),
            (
                "published".to_string(),
                RGBColor(213, 94, 0),
                Swatch::Marker(Mark::Diamond),
            ),
        ];
        for (i, d) in self.datasets.iter().enumerate() {
            entries.push((d.clone(), series_color(i), Swatch::Marker(Mark::Circle)));
        }
        entries
    }

    /// Smallest and largest finite value to show (means, interval ends, published
    /// effects), always spanning zero so the no-effect line is on the chart.
    fn value_range(&self) -> (f64, f64) {
        let values = self
            .rows
            .iter()
            .flat_map(|r| [r.mean, r.ci_low, r.ci_high, r.published]);
        values
            .filter(|v| v.is_finite())
            .fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)))
    }

    /// One estimate: its interval and mean, the pooled one on the claim's row and each
    /// data set's just below it; on a pooled row also the published effect, as a diamond
    /// whose width follows the x padding `pad`.
    fn draw_row<DB: DrawingBackend>(
        &self,
        chart: &mut ForestChart<DB>,
        r: &ForestRow,
        pad: f64,
    ) -> DrawResult<DB> {
        let n = self.claims.len();
        let Some(i) = self.claims.iter().position(|c| c == &r.claim) else {
            return Ok(());
        };
        let y0 = (n - 1 - i) as f64;
        let (y, color, size) = match &r.dataset {
            None => (y0, INK, 6),
            Some(d) => {
                let k = self.datasets.iter().position(|x| x == d).unwrap_or(0);
                let off = 0.3 * (k as f64 + 1.0) / (self.datasets.len() as f64 + 1.0);
                (y0 - off, series_color(k), 4)
            }
        };
        if r.ci_low.is_finite() && r.ci_high.is_finite() {
            let width = if r.dataset.is_none() { 3 } else { 1 };
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(r.ci_low, y), (r.ci_high, y)],
                color.stroke_width(width),
            )))?;
        }
        chart.draw_series(std::iter::once(Circle::new(
            (r.mean, y),
            size,
            color.filled(),
        )))?;
        if r.dataset.is_none() && r.published.is_finite() {
            let p = r.published;
            chart.draw_series(std::iter::once(Polygon::new(
                vec![
                    (p, y0 + 0.22),
                    (p + pad * 0.12, y0),
                    (p, y0 - 0.22),
                    (p - pad * 0.12, y0),
                ],
                RGBColor(213, 94, 0).filled(),
            )))?;
        }
        Ok(())
    }
}

/// Forest plot of the claims: per claim, the pooled effect with its interval (black), each
/// data set's mean with its t-interval over seeds (colours), and the published effect
/// (orange diamond). Effects are signed so that positive means the claim's direction.
pub fn claims_forest(rows: &[ForestRow], out_stem: &Path) -> Result<FigurePaths> {
    if rows.is_empty() {
        return Err(Error::param("claims_forest", "no claim has an estimate"));
    }
    check_finite("mean", rows.iter().map(|r| r.mean))?;
    let claims = ordered_unique(rows.iter().map(|r| r.claim.as_str()));
    let datasets = ordered_unique(rows.iter().filter_map(|r| r.dataset.as_deref()));
    let label_w = (max_text_width(&claims, &text(SMALL_PX)) + 24).min(900);
    let fig = ForestFigure {
        claims,
        datasets,
        rows: rows.to_vec(),
        label_w,
    };
    write_figure(&fig, out_stem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::testing::{check_written, out_dir};

    #[test]
    fn learning_curves_and_forest_are_written() {
        let (dir, _keep) = out_dir();
        let mut rows = Vec::new();
        for (p, panel) in ["kang", "cbmc"].iter().enumerate() {
            for (m, method) in ["scGPT", "Geneformer"].iter().enumerate() {
                for s in 0..6 {
                    let t = s as f64;
                    rows.push(CurveRow {
                        panel: panel.to_string(),
                        method: method.to_string(),
                        step: 50.0 * (t + 1.0),
                        train_loss: 2.0 / (1.0 + t) + 0.1 * m as f64,
                        val_loss: 2.2 / (1.0 + t) + 0.05 * p as f64,
                    });
                }
            }
        }
        let stem = dir.join("curves");
        check_written(&learning_curves(&rows, &stem).unwrap(), &stem);
        let forest = vec![
            ForestRow {
                claim: "Seurat beats Geneformer".into(),
                dataset: None,
                mean: 6.0,
                ci_low: 1.0,
                ci_high: 11.0,
                published: 9.0,
            },
            ForestRow {
                claim: "Seurat beats Geneformer".into(),
                dataset: Some("kang".into()),
                mean: 4.0,
                ci_low: -1.0,
                ci_high: 9.0,
                published: 9.0,
            },
            ForestRow {
                claim: "Rare types misclassified".into(),
                dataset: None,
                mean: -12.0,
                ci_low: f64::NAN,
                ci_high: f64::NAN,
                published: f64::NAN,
            },
        ];
        let stem = dir.join("forest");
        check_written(&claims_forest(&forest, &stem).unwrap(), &stem);
        assert!(claims_forest(&[], &stem).is_err());
        let mut bad = rows.clone();
        bad[0].val_loss = f64::NAN;
        assert!(learning_curves(&bad, &dir.join("bad")).is_err());
    }
}
