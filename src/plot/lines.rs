//! Line and scatter figures: accuracy against noise level (one panel per dataset) and
//! accuracy against parameter count (log x).

use std::path::Path;

use plotters::coord::combinators::BindKeyPoints;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::plot::style::{
    check_finite, draw_legend, legend_height, method_color, method_mark, series_mark, text,
    write_figure, DrawResult, Figure, Mark, Swatch, AXIS_PX, GRID, INK, TICK_PX, TITLE_PX,
};
use crate::plot::{ordered_unique, FigurePaths, NoiseAxis, NoisePoint, ParamPoint};

/// Marker radius in pixels.
const MARK_R: i32 = 6;
/// Line height of the strip that says what a figure holds fixed.
const SUBTITLE_LINE_PX: u32 = 24;

/// Draws markers of shape `$mark` at the data positions `$pts` on chart `$chart`. A
/// macro because each shape is a different element type and plotters' boxed
/// `DynElement` would force a `'static` backend.
macro_rules! draw_marks {
    ($chart:expr, $pts:expr, $mark:expr, $color:expr) => {{
        let r = MARK_R;
        let style = $color.filled();
        let pts = $pts.into_iter();
        match $mark {
            Mark::Circle => {
                $chart.draw_series(pts.map(|p| EmptyElement::at(p) + Circle::new((0, 0), r, style)))
            }
            Mark::Square => $chart.draw_series(
                pts.map(|p| EmptyElement::at(p) + Rectangle::new([(-r, -r), (r, r)], style)),
            ),
            Mark::Triangle => $chart.draw_series(pts.map(|p| {
                EmptyElement::at(p)
                    + Polygon::new(vec![(0, -r - 1), (-r - 1, r), (r + 1, r)], style)
            })),
            Mark::Diamond => $chart.draw_series(pts.map(|p| {
                EmptyElement::at(p)
                    + Polygon::new(
                        vec![(0, -r - 2), (-r - 1, 0), (0, r + 2), (r + 1, 0)],
                        style,
                    )
            })),
            Mark::TriangleDown => $chart.draw_series(pts.map(|p| {
                EmptyElement::at(p)
                    + Polygon::new(vec![(0, r + 1), (-r - 1, -r), (r + 1, -r)], style)
            })),
            Mark::Cross => $chart.draw_series(
                pts.map(|p| EmptyElement::at(p) + Cross::new((0, 0), r, $color.stroke_width(3))),
            ),
        }
    }};
}

/// Vertical whisker from `lo` to `hi` at `x`, with caps `cap` wide (data units).
fn whisker<X: Clone + std::ops::Add<Output = X> + std::ops::Sub<Output = X>>(
    x: X,
    cap: X,
    lo: f64,
    hi: f64,
    color: RGBColor,
) -> [PathElement<(X, f64)>; 3] {
    let style = color.stroke_width(2);
    [
        PathElement::new(vec![(x.clone(), lo), (x.clone(), hi)], style),
        PathElement::new(
            vec![(x.clone() - cap.clone(), lo), (x.clone() + cap.clone(), lo)],
            style,
        ),
        PathElement::new(vec![(x.clone() - cap.clone(), hi), (x + cap, hi)], style),
    ]
}

/// Legend entries for lines with markers.
fn line_entries(names: &[String]) -> Vec<(String, RGBColor, Swatch)> {
    (names.iter().enumerate())
        .map(|(i, n)| {
            (
                n.clone(),
                method_color(n, i),
                Swatch::Line(method_mark(n, i)),
            )
        })
        .collect()
}

/// y range covering every mean and interval end, padded, within [0, 1.02].
fn score_range(values: impl IntoIterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.12).max(0.02);
    (lo - pad).max(0.0)..(hi + pad).min(1.02)
}

/// (x, mean, ci_low, ci_high) of one noise curve point.
type CurvePoint = (f64, f64, f64, f64);

struct NoiseFigure {
    axis: NoiseAxis,
    /// What the figure holds fixed (protocol and the other noise parameter).
    subtitle: String,
    methods: Vec<String>,
    /// (dataset, per method: its points sorted by x).
    panels: Vec<(String, Vec<Vec<CurvePoint>>)>,
}

impl NoiseFigure {
    fn cols(&self) -> usize {
        self.panels.len().min(3)
    }

    /// One line of the subtitle strip per "; "-separated part, so narrow figures keep it.
    fn subtitle_px(&self) -> u32 {
        12 + SUBTITLE_LINE_PX * self.subtitle.split("; ").count() as u32
    }
}

impl Figure for NoiseFigure {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.cols());
        let w = 600 * self.cols() as u32;
        (
            w,
            legend_height(&self.methods, w) + self.subtitle_px() + 470 * rows as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, _) = root.dim_in_pixel();
        let (legend, body) = root.split_vertically(legend_height(&self.methods, w));
        draw_legend(&legend, &line_entries(&self.methods))?;
        let (sub, body) = body.split_vertically(self.subtitle_px());
        for (i, line) in self.subtitle.split("; ").enumerate() {
            let y = 6 + SUBTITLE_LINE_PX as i32 * i as i32;
            sub.draw(&Text::new(line.to_string(), (20, y), text(TICK_PX)))?;
        }
        let rows = self.panels.len().div_ceil(self.cols());
        let areas = body.split_evenly((rows, self.cols()));
        let (x_desc, percent) = match self.axis {
            NoiseAxis::Fraction => ("Cells with noise", true),
            NoiseAxis::Sigma => ("Noise standard deviation σ", false),
        };
        for (area, (dataset, lines)) in areas.iter().zip(&self.panels) {
            let pts = lines.iter().flatten();
            let x_max = pts.clone().map(|p| p.0).fold(0.0f64, f64::max).max(1e-9);
            let y_range = score_range(pts.flat_map(|p| [p.1, p.2, p.3]));
            let pad = x_max * 0.05;
            let mut chart = ChartBuilder::on(area)
                .caption(dataset, text(TITLE_PX))
                .margin(14)
                .x_label_area_size(56)
                .y_label_area_size(78)
                .build_cartesian_2d(-pad..x_max + pad, y_range)?;
            chart
                .configure_mesh()
                .bold_line_style(GRID)
                .light_line_style(WHITE)
                .x_labels(7)
                .y_labels(7)
                .x_label_formatter(&|x| {
                    if percent {
                        format!("{:.0}%", x * 100.0)
                    } else {
                        // Two decimals at most: tick arithmetic gives 0.6000000000000001.
                        let t = format!("{x:.2}");
                        t.trim_end_matches('0').trim_end_matches('.').to_string()
                    }
                })
                .x_desc(x_desc)
                .y_label_formatter(&|y| format!("{y:.2}"))
                .y_desc("Accuracy")
                .axis_desc_style(text(AXIS_PX))
                .label_style(text(TICK_PX))
                .axis_style(INK)
                .draw()?;
            // Methods are nudged apart horizontally so their whiskers do not overlap.
            let n = self.methods.len() as f64;
            for (m, line) in lines.iter().enumerate() {
                let dodge = (m as f64 - (n - 1.0) / 2.0) * x_max * 0.008;
                let color = method_color(&self.methods[m], m);
                let xy: Vec<(f64, f64)> = line.iter().map(|p| (p.0 + dodge, p.1)).collect();
                chart.draw_series(LineSeries::new(xy.clone(), color.stroke_width(3)))?;
                for p in line.iter().filter(|p| p.2.is_finite() && p.3.is_finite()) {
                    chart.draw_series(whisker(p.0 + dodge, x_max * 0.006, p.2, p.3, color))?;
                }
                draw_marks!(chart, xy, method_mark(&self.methods[m], m), color)?;
            }
        }
        Ok(())
    }
}

/// Accuracy against noise (fraction of cells or σ on the x axis): one panel per dataset,
/// one line per method, whiskers = 95% intervals. Each (dataset, method) must have one
/// point per x value: pass a single sweep (e.g. fixed σ when x is the fraction), and say in
/// `subtitle` what is held fixed.
pub fn noise_curves(
    points: &[NoisePoint],
    x: NoiseAxis,
    subtitle: &str,
    out_stem: &Path,
) -> Result<FigurePaths> {
    if points.is_empty() {
        return Err(Error::param("noise_curves", "no points to plot"));
    }
    check_finite("noise_curves.mean", points.iter().map(|p| p.mean))?;
    let x_of = |p: &NoisePoint| match x {
        NoiseAxis::Fraction => p.noise_fraction,
        NoiseAxis::Sigma => p.sigma,
    };
    check_finite("noise_curves.x", points.iter().map(x_of))?;
    let methods = ordered_unique(points.iter().map(|p| p.method.as_str()));
    let datasets = ordered_unique(points.iter().map(|p| p.dataset.as_str()));
    let mut panels = Vec::new();
    for d in datasets {
        let mut lines = vec![Vec::new(); methods.len()];
        for p in points.iter().filter(|p| p.dataset == d) {
            let m = methods.iter().position(|x| *x == p.method).unwrap_or(0);
            lines[m].push((x_of(p), p.mean, p.ci_low, p.ci_high));
        }
        for (m, line) in lines.iter_mut().enumerate() {
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            if let Some(w) = line.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(Error::param(
                    "noise_curves",
                    format!(
                        "{d} / {}: two points at x = {}; pass one noise sweep per figure",
                        methods[m], w[0].0
                    ),
                ));
            }
        }
        panels.push((d, lines));
    }
    write_figure(
        &NoiseFigure {
            axis: x,
            subtitle: subtitle.to_string(),
            methods,
            panels,
        },
        out_stem,
    )
}

/// Ticks at 1, 2 and 5 × 10^k inside `lo..hi`, with 1.5, 3 and 7 as well when the range is
/// under a decade (a log axis's own ticks leave a narrow range with one label or none).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let narrow = hi / lo < 10.0;
    let steps: &[f64] = if narrow {
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (k0..=k1)
        .flat_map(|k| steps.iter().map(move |s| s * 10f64.powi(k)))
        .filter(|t| (lo..=hi).contains(t))
        .collect()
}

/// "12k", "1.5M": a parameter count for axis labels.
fn human_count(v: f64) -> String {
    let (div, unit) = match v.abs() {
        a if a >= 1e9 => (1e9, "B"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let s = format!("{:.1}", v / div);
    format!("{}{unit}", s.trim_end_matches(".0"))
}

struct ParamsFigure {
    points: Vec<ParamPoint>,
    models: Vec<String>,
    datasets: Vec<String>,
}

impl ParamsFigure {
    /// Models by colour, then data sets by (grey) marker.
    fn entries(&self) -> Vec<(String, RGBColor, Swatch)> {
        let models = (self.models.iter().enumerate())
            .map(|(i, n)| (n.clone(), method_color(n, i), Swatch::Box));
        let datasets = (self.datasets.iter().enumerate())
            .map(|(i, d)| (d.clone(), INK, Swatch::Marker(series_mark(i))));
        models.chain(datasets).collect()
    }

    fn legend_names(&self) -> Vec<String> {
        self.entries().into_iter().map(|e| e.0).collect()
    }
}

impl Figure for ParamsFigure {
    fn size(&self) -> (u32, u32) {
        (900, 620 + legend_height(&self.legend_names(), 900))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (legend, body) = root.split_vertically(legend_height(&self.legend_names(), 900));
        draw_legend(&legend, &self.entries())?;
        let (lo, hi) = self
            .points
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), p| {
                (a.min(p.n_params), b.max(p.n_params))
            });
        // A little margin around the data, not decades of empty axis.
        let (x_lo, x_hi) = (lo / 1.25, hi * 1.25);
        let x_range = (x_lo..x_hi)
            .log_scale()
            .with_key_points(log_ticks(x_lo, x_hi));
        let y_range = score_range(
            self.points
                .iter()
                .flat_map(|p| [p.accuracy, p.ci_low, p.ci_high]),
        );
        let mut chart = ChartBuilder::on(&body)
            .caption(
                "Accuracy against model size (mean over seeds, 95% interval)",
                text(AXIS_PX),
            )
            .margin(18)
            .x_label_area_size(56)
            .y_label_area_size(78)
            .build_cartesian_2d(x_range, y_range)?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .x_label_formatter(&|x| human_count(*x))
            .x_desc("Trainable parameters (log scale)")
            .y_label_formatter(&|y| format!("{y:.2}"))
            .y_desc("Accuracy")
            .axis_desc_style(text(AXIS_PX))
            .label_style(text(TICK_PX))
            .axis_style(INK)
            .draw()?;
        for p in &self.points {
            let i = self.models.iter().position(|m| *m == p.model).unwrap_or(0);
            let d = (self.datasets.iter())
                .position(|x| *x == p.dataset)
                .unwrap_or(0);
            let color = method_color(&p.model, i);
            if p.ci_low.is_finite() && p.ci_high.is_finite() {
                // Caps are a fixed fraction of the value wide (the axis is logarithmic).
                let cap = p.n_params * 0.02;
                chart.draw_series(whisker(p.n_params, cap, p.ci_low, p.ci_high, color))?;
            }
            draw_marks!(chart, [(p.n_params, p.accuracy)], series_mark(d), color)?;
        }
        Ok(())
    }
}

/// Accuracy against trainable parameter count (log x), one colour and label per model,
/// whiskers = 95% intervals. Models without parameters (statistical baselines) do not
/// belong here: `n_params` must be positive.
pub fn params_vs_accuracy(points: &[ParamPoint], out_stem: &Path) -> Result<FigurePaths> {
    if points.is_empty() {
        return Err(Error::param("params_vs_accuracy", "no points to plot"));
    }
    check_finite(
        "params_vs_accuracy.accuracy",
        points.iter().map(|p| p.accuracy),
    )?;
    if let Some(p) = points
        .iter()
        .find(|p| !(p.n_params.is_finite() && p.n_params > 0.0))
    {
        return Err(Error::param(
            "params_vs_accuracy.n_params",
            format!(
                "{}: {} is not a positive count (log axis)",
                p.model, p.n_params
            ),
        ));
    }
    let models = ordered_unique(points.iter().map(|p| p.model.as_str()));
    let datasets = ordered_unique(points.iter().map(|p| p.dataset.as_str()));
    write_figure(
        &ParamsFigure {
            points: points.to_vec(),
            models,
            datasets,
        },
        out_stem,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A narrow log range still gets several ticks, a wide one 1-2-5 per decade.
    #[test]
    fn log_ticks_cover_narrow_and_wide_ranges() {
        assert_eq!(
            log_ticks(60_000.0, 180_000.0),
            vec![70_000.0, 100_000.0, 150_000.0]
        );
        let wide = log_ticks(900.0, 120_000.0);
        assert_eq!(wide.first(), Some(&1_000.0));
        assert!(wide.contains(&50_000.0) && !wide.contains(&30_000.0));
    }

    /// Parameter counts print with k/M suffixes and no trailing ".0".
    #[test]
    fn human_counts() {
        assert_eq!(human_count(1_000_000.0), "1M");
        assert_eq!(human_count(1_500.0), "1.5k");
        assert_eq!(human_count(12.0), "12");
    }

    /// The score range pads the data and stays within [0, 1.02].
    #[test]
    fn score_range_pads_and_clamps() {
        let r = score_range([0.5, 0.9, f64::NAN]);
        assert!(r.start < 0.5 && r.end > 0.9 && r.end <= 1.02);
        let r = score_range([0.0, 1.0]);
        assert_eq!((r.start, r.end), (0.0, 1.02));
    }
}

#[cfg(test)]
mod figure_tests {
    use super::*;
    use crate::plot::testing::{check_written, jitter, out_dir, DATASETS, METHODS};

    fn noise_points() -> Vec<NoisePoint> {
        let mut v = Vec::new();
        for (d, dataset) in DATASETS.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                for (i, frac) in [0.0, 0.1, 0.2, 0.4, 0.6].iter().enumerate() {
                    let slope = [0.05, 0.1, 0.12, 0.5, 0.35, 0.55][m];
                    let mean = 0.95 - 0.25 * d as f64 - 0.02 * m as f64 - slope * frac;
                    let half = 0.01 + 0.015 * jitter(d, m, i);
                    v.push(NoisePoint {
                        dataset: dataset.to_string(),
                        method: method.to_string(),
                        noise_fraction: *frac,
                        sigma: if *frac == 0.0 { 0.0 } else { 1.0 },
                        mean,
                        ci_low: mean - half,
                        ci_high: mean + half,
                    });
                }
            }
        }
        v
    }

    /// The noise curves figure is written; duplicate x per line is an error.
    #[test]
    fn noise_curves_writes_png_and_svg() {
        let (dir, _guard) = out_dir();
        let stem = dir.join("noise_curves");
        let pts = noise_points();
        check_written(
            &noise_curves(&pts, NoiseAxis::Fraction, "σ 1", &stem).unwrap(),
            &stem,
        );
        // On the sigma axis every noisy point has sigma 1: not one sweep.
        assert!(noise_curves(&pts, NoiseAxis::Sigma, "", &stem).is_err());
    }

    /// The parameters-vs-accuracy scatter is written; a zero count is an error.
    #[test]
    fn params_vs_accuracy_writes_png_and_svg() {
        let (dir, _guard) = out_dir();
        let stem = dir.join("params_vs_accuracy");
        let mut pts: Vec<ParamPoint> = [
            ("scGPT", 5.1e7, 0.78),
            ("Geneformer", 3.0e7, 0.83),
            ("SC-MAMBA2", 6.5e7, 0.77),
            ("scGPT-small", 2.0e6, 0.74),
        ]
        .iter()
        .map(|&(m, n, a)| ParamPoint {
            model: m.into(),
            dataset: "kang".into(),
            n_params: n,
            accuracy: a,
            ci_low: a - 0.02,
            ci_high: a + 0.02,
        })
        .collect();
        check_written(&params_vs_accuracy(&pts, &stem).unwrap(), &stem);
        pts[0].n_params = 0.0;
        assert!(params_vs_accuracy(&pts, &stem).is_err());
    }
}
