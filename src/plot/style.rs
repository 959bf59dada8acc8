//! Shared figure style: the bundled font, the Okabe–Ito colour-blind-safe palette
//! (Okabe & Ito 2008, "Color Universal Design"), a viridis-like sequential map, a legend
//! strip drawn outside the data, and writing one drawing to both PNG and SVG atomically.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};
use crate::plot::FigurePaths;

/// DejaVu Sans (see assets/fonts/DejaVu-LICENSE.txt): plotters is built without
/// font-kit, so text renders only with a registered font.
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Font family used by every figure.
pub const FONT: &str = "sans-serif";

static FONT_ONCE: Once = Once::new();

/// Registers the bundled font once per process (idempotent, thread-safe).
pub fn ensure_font() {
    FONT_ONCE.call_once(|| {
        // The bytes are a valid TTF compiled into the binary; a failure here could only
        // mean a corrupted build, and then text is simply not drawn.
        let _ = register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// Okabe–Ito palette without black (kept for text) and yellow last (weak on white).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(240, 228, 66),  // yellow
];

/// Colour of series `i` (cycles through the palette).
pub fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The study's methods by display name, in the order that fixes their colour and marker:
/// a method looks the same in every figure, whatever subset of methods a study runs.
const METHOD_ORDER: [&str; 9] = [
    "Seurat",
    "LogReg",
    "kNN",
    "scGPT",
    "Geneformer",
    "SC-MAMBA2",
    "scGPT (tuned)",
    "Geneformer (tuned)",
    "SC-MAMBA2 (tuned)",
];

/// Colours past the palette for the last tuned methods (grey, brown).
const EXTRA_COLORS: [RGBColor; 2] = [RGBColor(110, 110, 110), RGBColor(140, 86, 75)];

/// Colour of a series named `name`: the method's own colour for a study method, else
/// [`series_color`] of its position `i`.
pub fn method_color(name: &str, i: usize) -> RGBColor {
    match METHOD_ORDER.iter().position(|m| *m == name) {
        Some(k) if k < PALETTE.len() => PALETTE[k],
        Some(k) => EXTRA_COLORS[(k - PALETTE.len()) % EXTRA_COLORS.len()],
        None => series_color(i),
    }
}

/// Marker of a series named `name` (the method's own for a study method).
pub fn method_mark(name: &str, i: usize) -> Mark {
    series_mark(METHOD_ORDER.iter().position(|m| *m == name).unwrap_or(i))
}

/// Text colour and light grid colour.
pub const INK: RGBColor = RGBColor(30, 30, 30);
pub const GRID: RGBColor = RGBColor(225, 225, 225);

/// Font sizes (pixels) for titles, axis descriptions, tick labels and in-cell values.
pub const TITLE_PX: f64 = 26.0;
pub const AXIS_PX: f64 = 21.0;
pub const TICK_PX: f64 = 18.0;
pub const SMALL_PX: f64 = 15.0;

/// A text style in the figure font.
pub fn text(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

/// Viridis sampled at 9 points (matplotlib's `viridis`); perceptually uniform and
/// readable in grey scale and by colour-blind readers.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 45, 123),
    (59, 82, 139),
    (44, 114, 142),
    (33, 145, 140),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Sequential colour for `v` in [0, 1] (clamped), interpolated along viridis.
pub fn sequential(v: f64) -> RGBColor {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = v * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let t = pos - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Marker shape of series `i`, so series differ by more than colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Circle,
    Square,
    Triangle,
    Diamond,
    TriangleDown,
    Cross,
}

/// Marker of series `i`.
pub fn series_mark(i: usize) -> Mark {
    const MARKS: [Mark; 6] = [
        Mark::Circle,
        Mark::Square,
        Mark::Triangle,
        Mark::Diamond,
        Mark::TriangleDown,
        Mark::Cross,
    ];
    MARKS[i % MARKS.len()]
}

/// Draws marker `mark` of radius `r` at pixel `(x, y)` on `area`.
pub fn draw_mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    mark: Mark,
    (x, y): (i32, i32),
    r: i32,
    color: RGBColor,
) -> DrawResult<DB> {
    let style = color.filled();
    match mark {
        Mark::Circle => area.draw(&Circle::new((x, y), r, style)),
        Mark::Square => area.draw(&Rectangle::new([(x - r, y - r), (x + r, y + r)], style)),
        Mark::Triangle => area.draw(&Polygon::new(
            vec![(x, y - r - 1), (x - r - 1, y + r), (x + r + 1, y + r)],
            style,
        )),
        Mark::Diamond => area.draw(&Polygon::new(
            vec![
                (x, y - r - 2),
                (x - r - 1, y),
                (x, y + r + 2),
                (x + r + 1, y),
            ],
            style,
        )),
        Mark::TriangleDown => area.draw(&Polygon::new(
            vec![(x, y + r + 1), (x - r - 1, y - r), (x + r + 1, y - r)],
            style,
        )),
        Mark::Cross => area.draw(&Cross::new((x, y), r, color.stroke_width(3))),
    }
}

/// What a legend entry shows next to its name.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    /// A filled square (bars, heat).
    Box,
    /// A short line with a marker (lines).
    Line(Mark),
    /// A marker alone (scatter points).
    Marker(Mark),
}

/// Result of a drawing step on backend `DB`.
pub type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Height in pixels of one legend row.
const LEGEND_ROW_H: u32 = 34;
const SWATCH_W: i32 = 34;
const LEGEND_GAP: i32 = 26;

/// Entries of each legend row, with their widths: greedy filling of `width` pixels.
fn legend_rows(names: &[String], width: u32) -> Vec<Vec<(usize, i32)>> {
    let style = text(AXIS_PX);
    let avail = width as i32 - 16;
    let mut rows: Vec<Vec<(usize, i32)>> = vec![Vec::new()];
    let mut used = 0;
    for (i, name) in names.iter().enumerate() {
        let w = SWATCH_W + 8 + max_text_width([name], &style) as i32;
        let row = rows.last_mut().expect("rows starts non-empty");
        if !row.is_empty() && used + LEGEND_GAP + w > avail {
            rows.push(vec![(i, w)]);
            used = w;
        } else {
            used += if row.is_empty() { w } else { LEGEND_GAP + w };
            row.push((i, w));
        }
    }
    rows
}

/// Height of the legend strip for `names` on a figure `width` pixels wide (rows wrap).
pub fn legend_height(names: &[String], width: u32) -> u32 {
    legend_rows(names, width).len() as u32 * LEGEND_ROW_H + 12
}

/// Draws a centred legend across `area` (a strip above the panels, so it never covers
/// data), wrapping onto more rows when the entries do not fit one.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, Swatch)],
) -> DrawResult<DB> {
    let style = text(AXIS_PX);
    let (w, _) = area.dim_in_pixel();
    let names: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    for (r, row) in legend_rows(&names, w).iter().enumerate() {
        let total: i32 = row.iter().map(|e| e.1).sum::<i32>() + LEGEND_GAP * (row.len() as i32 - 1);
        let mut x = ((w as i32 - total) / 2).max(4);
        let cy = 6 + r as i32 * LEGEND_ROW_H as i32 + LEGEND_ROW_H as i32 / 2;
        for &(i, width) in row {
            let (name, color, swatch) = &entries[i];
            match swatch {
                Swatch::Box => area.draw(&Rectangle::new(
                    [(x + 6, cy - 9), (x + 26, cy + 9)],
                    color.filled(),
                ))?,
                Swatch::Line(mark) => {
                    area.draw(&PathElement::new(
                        vec![(x, cy), (x + SWATCH_W - 2, cy)],
                        color.stroke_width(3),
                    ))?;
                    draw_mark(area, *mark, (x + SWATCH_W / 2 - 1, cy), 6, *color)?;
                }
                Swatch::Marker(mark) => draw_mark(area, *mark, (x + SWATCH_W / 2, cy), 7, *color)?,
            }
            let pos = Pos::new(HPos::Left, VPos::Center);
            area.draw(&Text::new(
                name.clone(),
                // ab_glyph sets text ~2 px high of the requested centre.
                (x + SWATCH_W + 8, cy + 2),
                style.pos(pos),
            ))?;
            x += width + LEGEND_GAP;
        }
    }
    Ok(())
}

/// Pixel width of the widest of `labels` in `style` (for label areas).
pub fn max_text_width(labels: impl IntoIterator<Item = impl AsRef<str>>, style: &TextStyle) -> u32 {
    ensure_font();
    labels
        .into_iter()
        .map(|l| style.font.box_size(l.as_ref()).map_or(0, |s| s.0))
        .max()
        .unwrap_or(0)
}

/// A categorical axis on f64 values: category `i` is centred at `i`, the axis spans
/// `-0.5 .. n - 0.5` and the key points (ticks, labels) are exactly the centres, so
/// grouped bars can sit at fractional offsets around them.
#[derive(Debug, Clone, Copy)]
pub struct CategoryAxis {
    /// Number of categories.
    pub n: usize,
}

impl Ranged for CategoryAxis {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn range(&self) -> Range<f64> {
        -0.5..self.n as f64 - 0.5
    }

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value + 0.5) / self.n.max(1) as f64;
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        (0..self.n).map(|i| i as f64).collect()
    }
}

/// Label of category centre `x` in `names` (empty off-centre).
pub fn category_label(names: &[String], x: f64) -> String {
    let i = x.round();
    if i >= 0.0 && (x - i).abs() < 1e-6 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// Canvas size in pixels (width, height).
    fn size(&self) -> (u32, u32);
    /// Draws the figure on a white canvas.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Writes `fig` to `<out_stem>.png` and `<out_stem>.svg`, each through a temporary file
/// in the same folder renamed into place, so no partial figure is ever left behind.
pub fn write_figure(fig: &impl Figure, out_stem: &Path) -> Result<FigurePaths> {
    ensure_font();
    let png = out_stem.with_extension("png");
    let svg = out_stem.with_extension("svg");
    if let Some(dir) = png.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let size = fig.size();
    // The bitmap encoder picks the format from the extension, so temp names end in .png.
    let tmp_png = temp_path(&png, "png");
    let drawn = (|| {
        let root = BitMapBackend::new(&tmp_png, size).into_drawing_area();
        root.fill(&WHITE)?;
        fig.draw(&root)?;
        root.present()
    })();
    finish(drawn, &tmp_png, &png)?;
    let tmp_svg = temp_path(&svg, "svg");
    let drawn = (|| {
        let root = SVGBackend::new(&tmp_svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        fig.draw(&root)?;
        root.present()
    })();
    finish(drawn, &tmp_svg, &svg)?;
    Ok(FigurePaths { png, svg })
}

fn temp_path(target: &Path, ext: &str) -> PathBuf {
    let name = target
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{}.tmp.{ext}", std::process::id()))
}

fn finish<E: std::error::Error + Send + Sync>(
    drawn: std::result::Result<(), DrawingAreaErrorKind<E>>,
    tmp: &Path,
    target: &Path,
) -> Result<()> {
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(tmp);
        return Err(Error::io(
            target,
            std::io::Error::other(format!("drawing figure: {e}")),
        ));
    }
    std::fs::rename(tmp, target).map_err(|e| {
        let _ = std::fs::remove_file(tmp);
        Error::io(target, e)
    })
}

/// Errors if any value in `values` (named by `field`) is not finite.
pub fn check_finite(field: &str, values: impl IntoIterator<Item = f64>) -> Result<()> {
    match values.into_iter().find(|v| !v.is_finite()) {
        Some(v) => Err(Error::param(field, format!("non-finite value {v}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequential map starts dark purple, ends yellow and clamps out-of-range values.
    #[test]
    fn sequential_endpoints() {
        assert_eq!(sequential(0.0), RGBColor(68, 1, 84));
        assert_eq!(sequential(1.0), RGBColor(253, 231, 37));
        assert_eq!(sequential(2.0), sequential(1.0));
        assert_eq!(sequential(f64::NAN), sequential(0.0));
    }

    /// A method keeps its colour whatever its position; other names use the position.
    #[test]
    fn methods_have_fixed_colours() {
        assert_eq!(method_color("scGPT", 0), PALETTE[3]);
        assert_eq!(method_color("Geneformer", 7), method_color("Geneformer", 0));
        assert_eq!(method_color("clean", 1), series_color(1));
        assert_ne!(
            method_color("SC-MAMBA2 (tuned)", 0),
            method_color("Seurat", 0)
        );
        assert_eq!(method_mark("kNN", 0), series_mark(2));
    }

    /// Non-finite inputs are rejected with the field name.
    #[test]
    fn check_finite_names_field() {
        let e = check_finite("mean", [0.5, f64::NAN]).unwrap_err();
        assert!(e.to_string().contains("mean"));
        assert!(check_finite("mean", [0.5, 1.0]).is_ok());
    }
}
