//! Figures (PNG and SVG) drawn with plotters and a bundled font.
