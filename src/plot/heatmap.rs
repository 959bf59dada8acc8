//! Row-normalised confusion-matrix heatmaps, one panel per method, with a shared colour
//! bar. Each row is a true class, so a cell is the share of that class's cells given
//! each predicted label (the recall view; the diagonal is per-class recall).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use crate::error::{Error, Result};
use crate::eval::metrics::ConfusionMatrix;
use crate::plot::style::{
    max_text_width, sequential, text, write_figure, DrawResult, Figure, AXIS_PX, GRID, INK,
    SMALL_PX, TICK_PX, TITLE_PX,
};
use crate::plot::FigurePaths;

/// Class names longer than this are shortened with an ellipsis.
const MAX_LABEL_CHARS: usize = 22;

/// Width of the colour-bar column on the right.
const COLORBAR_W: u32 = 136;

/// Title band height above each panel.
const TITLE_H: i32 = 44;

fn abbreviate(name: &str) -> String {
    if name.chars().count() <= MAX_LABEL_CHARS {
        name.to_string()
    } else {
        let head: String = name.chars().take(MAX_LABEL_CHARS - 1).collect();
        format!("{head}…")
    }
}

struct Panel {
    method: String,
    labels: Vec<String>,
    /// Row-normalised values; `None` for a row without true cells.
    rows: Vec<Option<Vec<f64>>>,
}

struct HeatmapFigure {
    panels: Vec<Panel>,
    /// Cell side in pixels (shared so panels align).
    cell: i32,
    /// Space for class labels (left of and below the grid).
    label_px: i32,
}

impl HeatmapFigure {
    fn cols(&self) -> usize {
        self.panels.len().min(3)
    }

    fn max_k(&self) -> i32 {
        self.panels
            .iter()
            .map(|p| p.labels.len())
            .max()
            .unwrap_or(1) as i32
    }

    /// (width, height) of one panel.
    fn panel_size(&self) -> (u32, u32) {
        let grid = self.cell * self.max_k();
        let w = 34 + self.label_px + grid + 24;
        let h = TITLE_H + grid + self.label_px + 40;
        (w as u32, h as u32)
    }
}

impl Figure for HeatmapFigure {
    fn size(&self) -> (u32, u32) {
        let (pw, ph) = self.panel_size();
        let rows = self.panels.len().div_ceil(self.cols()) as u32;
        (pw * self.cols() as u32 + COLORBAR_W, ph * rows)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (w, _) = root.dim_in_pixel();
        let (body, bar) = root.split_horizontally(w - COLORBAR_W);
        let rows = self.panels.len().div_ceil(self.cols());
        let areas = body.split_evenly((rows, self.cols()));
        for (area, panel) in areas.iter().zip(&self.panels) {
            self.draw_panel(area, panel)?;
        }
        self.draw_colorbar(&bar)
    }
}

/// Where a panel's grid lies: its top-left corner, cell side and number of classes.
#[derive(Clone, Copy)]
struct PanelGrid {
    x0: i32,
    y0: i32,
    /// Cell side in pixels.
    s: i32,
    /// Number of classes (rows and columns).
    k: i32,
}

impl PanelGrid {
    /// Side of the whole grid in pixels.
    fn side(&self) -> i32 {
        self.s * self.k
    }
}

impl HeatmapFigure {
    fn grid(&self, panel: &Panel) -> PanelGrid {
        PanelGrid {
            x0: 34 + self.label_px,
            y0: TITLE_H,
            s: self.cell,
            k: panel.labels.len() as i32,
        }
    }

    /// Title, cells, grid border, then class labels and axis titles: in that order, so
    /// the border is drawn over the cells.
    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel,
    ) -> DrawResult<DB> {
        let g = self.grid(panel);
        let grid_w = g.side();
        let centre = Pos::new(HPos::Center, VPos::Center);
        area.draw(&Text::new(
            panel.method.clone(),
            (g.x0 + grid_w / 2, TITLE_H / 2),
            text(TITLE_PX).pos(centre),
        ))?;
        Self::draw_cells(area, panel, g)?;
        area.draw(&Rectangle::new(
            [(g.x0, g.y0), (g.x0 + grid_w, g.y0 + grid_w)],
            INK.stroke_width(1),
        ))?;
        self.draw_labels(area, panel, g)
    }

    /// One coloured cell per (true, predicted) class, with its percentage when cells are
    /// big enough to hold it; rows without true cells are grey.
    fn draw_cells<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        panel: &Panel,
        g: PanelGrid,
    ) -> DrawResult<DB> {
        let (k, s) = (g.k, g.s);
        let centre = Pos::new(HPos::Center, VPos::Center);
        let show_values = s >= 26;
        // With many classes, small shares are left to the colour so the big ones stand out.
        let min_shown = if k > 12 { 0.03 } else { 0.0 };
        for (r, row) in panel.rows.iter().enumerate() {
            for c in 0..k {
                let (cx, cy) = (g.x0 + c * s, g.y0 + r as i32 * s);
                let v = row.as_ref().map(|row| row[c as usize]);
                let fill = v.map_or(GRID, sequential);
                area.draw(&Rectangle::new([(cx, cy), (cx + s, cy + s)], fill.filled()))?;
                if let (true, Some(v)) = (show_values, v) {
                    if v > min_shown {
                        let pct = v * 100.0;
                        let label = if pct < 1.0 {
                            "<1".to_string()
                        } else {
                            format!("{pct:.0}")
                        };
                        // Dark end of viridis needs white text.
                        let ink = if v < 0.6 { WHITE } else { BLACK };
                        area.draw(&Text::new(
                            label,
                            (cx + s / 2, cy + s / 2),
                            (crate::plot::style::FONT, SMALL_PX)
                                .into_font()
                                .color(&ink)
                                .pos(centre),
                        ))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Class labels (true classes left of the rows, predicted classes rotated below) and
    /// the two axis titles.
    fn draw_labels<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel,
        g: PanelGrid,
    ) -> DrawResult<DB> {
        let (x0, y0, s, grid_w) = (g.x0, g.y0, g.s, g.side());
        let centre = Pos::new(HPos::Center, VPos::Center);
        let right = Pos::new(HPos::Right, VPos::Center);
        for (i, label) in panel.labels.iter().enumerate() {
            let mid = i as i32 * s + s / 2;
            area.draw(&Text::new(
                label.clone(),
                (x0 - 8, y0 + mid),
                text(TICK_PX).pos(right),
            ))?;
            let rotated = text(TICK_PX)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center));
            area.draw(&Text::new(
                label.clone(),
                (x0 + mid, y0 + grid_w + 8),
                rotated,
            ))?;
        }
        let axis = text(AXIS_PX);
        area.draw(&Text::new(
            "Predicted class",
            (x0 + grid_w / 2, y0 + grid_w + self.label_px + 22),
            axis.pos(centre),
        ))?;
        area.draw(&Text::new(
            "True class",
            (14, y0 + grid_w / 2),
            axis.transform(FontTransform::Rotate270).pos(centre),
        ))?;
        Ok(())
    }

    fn draw_colorbar<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let top = TITLE_H;
        let height = (self.cell * self.max_k()).max(200);
        let (x0, x1) = (16, 40);
        for py in 0..height {
            let v = 1.0 - py as f64 / (height - 1) as f64;
            area.draw(&PathElement::new(
                vec![(x0, top + py), (x1, top + py)],
                sequential(v).stroke_width(1),
            ))?;
        }
        area.draw(&Rectangle::new(
            [(x0, top), (x1, top + height)],
            INK.stroke_width(1),
        ))?;
        let left = Pos::new(HPos::Left, VPos::Center);
        for pct in [0, 25, 50, 75, 100] {
            let y = top + ((100 - pct) as f64 / 100.0 * (height - 1) as f64) as i32;
            area.draw(&PathElement::new(
                vec![(x1, y), (x1 + 5, y)],
                INK.stroke_width(1),
            ))?;
            area.draw(&Text::new(
                format!("{pct}%"),
                (x1 + 9, y),
                text(TICK_PX).pos(left),
            ))?;
        }
        area.draw(&Text::new(
            "Share of true class",
            (120, top + height / 2),
            text(AXIS_PX)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        Ok(())
    }
}

/// Row-normalised confusion heatmaps, one panel per `(method, matrix)`, with values in
/// percent printed in cells when they fit and a shared colour bar. Rows without true
/// cells (classes only ever predicted) are grey.
pub fn confusion_heatmaps(
    mats: &[(String, ConfusionMatrix)],
    out_stem: &Path,
) -> Result<FigurePaths> {
    if mats.is_empty() {
        return Err(Error::param("confusion_heatmaps", "no matrices to plot"));
    }
    let mut panels = Vec::with_capacity(mats.len());
    for (method, m) in mats {
        let k = m.classes.len();
        if k == 0 || m.counts.len() != k || m.counts.iter().any(|r| r.len() != k) {
            return Err(Error::param(
                "confusion_heatmaps",
                format!("{method}: counts are not {k} x {k} for {k} classes"),
            ));
        }
        let rows = m
            .row_normalized()
            .into_iter()
            .zip(&m.counts)
            .map(|(norm, counts)| (counts.iter().sum::<usize>() > 0).then_some(norm))
            .collect();
        panels.push(Panel {
            method: method.clone(),
            labels: m.classes.iter().map(|c| abbreviate(c)).collect(),
            rows,
        });
    }
    let max_k = panels.iter().map(|p| p.labels.len()).max().unwrap_or(1);
    // Cells shrink with more classes so a 21-class panel stays about 700 px wide.
    let cell = (700 / max_k as i32).clamp(22, 64);
    let labels = panels.iter().flat_map(|p| p.labels.iter());
    let label_px = max_text_width(labels, &text(TICK_PX)) as i32 + 14;
    write_figure(
        &HeatmapFigure {
            panels,
            cell,
            label_px,
        },
        out_stem,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long class names are cut to 22 characters with an ellipsis; short ones are kept.
    #[test]
    fn abbreviates_long_names() {
        assert_eq!(abbreviate("B cells"), "B cells");
        let long = abbreviate("CD4+/CD45RA+/CD25- Naive T cells");
        assert_eq!(long.chars().count(), MAX_LABEL_CHARS);
        assert!(long.ends_with('…'));
    }
}

#[cfg(test)]
mod figure_tests {
    use super::*;
    use crate::plot::testing::{check_written, jitter, out_dir, MYELOID};

    /// A fake k-class confusion matrix: mostly diagonal, `bias` cells pulled to class 0.
    fn fake_matrix(classes: &[&str], seed: usize, bias: usize) -> ConfusionMatrix {
        let k = classes.len();
        let counts = (0..k)
            .map(|t| {
                (0..k)
                    .map(|p| {
                        let noise = (jitter(seed, t, p) * 6.0) as usize;
                        if t == p {
                            40 + noise * 5
                        } else if p == 0 {
                            bias + noise
                        } else {
                            noise / 3
                        }
                    })
                    .collect()
            })
            .collect();
        ConfusionMatrix {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            counts,
        }
    }

    /// Heatmaps of 21 classes for three methods are written as valid PNG and SVG.
    #[test]
    fn confusion_heatmaps_writes_png_and_svg() {
        let (dir, _guard) = out_dir();
        let stem = dir.join("confusion_heatmaps");
        let mats = vec![
            ("Seurat v5".to_string(), fake_matrix(&MYELOID, 1, 2)),
            ("scGPT".to_string(), fake_matrix(&MYELOID, 2, 14)),
            ("Geneformer".to_string(), fake_matrix(&MYELOID, 3, 6)),
        ];
        check_written(&confusion_heatmaps(&mats, &stem).unwrap(), &stem);
    }

    /// A small matrix with a predicted-only class (an empty row) is drawn, and a ragged
    /// matrix is an error.
    #[test]
    fn confusion_heatmaps_small_and_ragged() {
        let (dir, _guard) = out_dir();
        let stem = dir.join("confusion_small");
        let mut m = fake_matrix(&["alpha", "beta", "gamma", "delta"], 4, 1);
        m.counts[3] = vec![0; 4];
        check_written(
            &confusion_heatmaps(&[("kNN".into(), m.clone())], &stem).unwrap(),
            &stem,
        );
        m.counts[0].pop();
        assert!(confusion_heatmaps(&[("kNN".into(), m)], &stem).is_err());
    }
}
