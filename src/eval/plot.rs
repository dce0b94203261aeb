//! Charts of an evaluation and of an LSH banding, as SVG or PNG bytes.
//!
//! Drawn with plotters. PNG text is rasterized with ab_glyph from an embedded DejaVu Sans
//! (the `dejavu` crate), so charts render the same on any machine, with no system font
//! or font library installed. SVG text names `sans-serif` and is drawn by the viewer.
//! Output depends only on the input: no dates, no random ids.
//!
//! plotters 0.3.7 places ab_glyph glyphs without their left side bearing (digits and
//! periods then look unevenly spaced), so PNG text goes through a wrapper back end,
//! `Raster`, which draws each glyph at its own bounds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

use ab_glyph::{Font, FontRef, ScaleFont, point};
use plotters::backend::DrawingBackend;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::eval::banding::BandingReport;
use crate::eval::report::ThresholdRecord;
use crate::eval::sweep::Evaluation;
use crate::outfile::OutputFile;

/// An image encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    /// Scalable vector graphics (text drawn by the viewer).
    Svg,
    /// A 900×540 RGB bitmap.
    Png,
}

impl ImageFormat {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Svg => "svg",
            ImageFormat::Png => "png",
        }
    }
}

// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const BLUE: RGBColor = RGBColor(0, 114, 178);
const ORANGE: RGBColor = RGBColor(230, 159, 0);
const GREEN: RGBColor = RGBColor(0, 158, 115);
const VERMILLION: RGBColor = RGBColor(213, 94, 0);
const PURPLE: RGBColor = RGBColor(204, 121, 167);
const GREY: RGBColor = RGBColor(110, 110, 110);

const SIZE: (u32, u32) = (900, 540);
const FONT: &str = "sans-serif";

/// One line of a line chart; `None` values break the line.
#[derive(Clone, Debug)]
struct Line {
    name: String,
    points: Vec<(f64, Option<f64>)>,
    color: RGBColor,
    width: u32,
    dashed: bool,
    dots: bool,
}

/// A vertical rule with its legend entry.
#[derive(Clone, Debug)]
struct Rule {
    x: f64,
    name: String,
    color: RGBColor,
}

/// Two classes counted in equal bins over [0, 1], drawn side by side.
#[derive(Clone, Debug)]
struct Bars {
    classes: [(String, RGBColor, Vec<f64>); 2],
}

#[derive(Clone, Debug)]
enum Body {
    Lines(Vec<Line>),
    Bars(Bars),
}

/// A chart, ready to render.
#[derive(Clone, Debug)]
pub struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    x_range: (f64, f64),
    y_range: (f64, f64),
    body: Body,
    rules: Vec<Rule>,
    legend: Corner,
}

/// Where the legend goes.
#[derive(Clone, Copy, Debug)]
enum Corner {
    LowerLeft,
    LowerRight,
    UpperRight,
}

/// The charts `neardup eval` writes, by file name: the sweep (`eval-sweep`) and the score
/// distribution (`eval-scores`), subtitled with the gold's name and the clustering.
pub fn evaluation_charts(
    eval: &Evaluation,
    gold_name: &str,
    cluster_mode: &str,
) -> [(&'static str, Chart); 2] {
    let linkage = if eval.score.is_story() {
        " linkage"
    } else {
        ""
    };
    let subtitle = format!("{gold_name}, {cluster_mode}{linkage}");
    [
        ("eval-sweep", sweep_chart(eval, &subtitle)),
        ("eval-scores", histogram_chart(eval, &subtitle)),
    ]
}

/// Precision, recall and F1 (and F-β, and the adjusted Rand index for cluster gold)
/// against the threshold, with a rule at the best threshold by F1.
pub fn sweep_chart(eval: &Evaluation, subtitle: &str) -> Chart {
    let records: Vec<ThresholdRecord> = eval
        .rows
        .iter()
        .map(|r| ThresholdRecord::new(r, eval.best_f_beta.map(|b| b.0)))
        .collect();
    let xs: Vec<f64> = records.iter().map(|r| r.threshold).collect();
    let line = |name: &str, color, width, dashed, values: Vec<Option<f64>>| Line {
        name: name.to_string(),
        points: xs.iter().copied().zip(values).collect(),
        color,
        width,
        dashed,
        dots: true,
    };
    let mut lines = vec![
        line(
            "precision",
            BLUE,
            2,
            false,
            records.iter().map(|r| r.precision).collect(),
        ),
        line(
            "recall",
            ORANGE,
            2,
            false,
            records.iter().map(|r| r.recall).collect(),
        ),
        line(
            "F1",
            BLACK,
            3,
            false,
            records.iter().map(|r| r.f1).collect(),
        ),
    ];
    if let Some((beta, _)) = eval.best_f_beta {
        lines.push(line(
            &format!("F-beta (beta = {beta})"),
            PURPLE,
            2,
            true,
            records.iter().map(|r| r.f_beta).collect(),
        ));
    }
    if eval.rows.iter().any(|r| r.partition.is_some()) {
        lines.push(line(
            "adjusted Rand index",
            GREEN,
            2,
            true,
            records.iter().map(|r| r.adjusted_rand_index).collect(),
        ));
    }
    let mut rules: Vec<Rule> = eval
        .best_f1
        .map(|i| {
            let r = &records[i];
            Rule {
                x: r.threshold,
                name: format!("best F1 {:.3} at {}", r.f1.unwrap_or(0.0), r.threshold),
                color: GREY,
            }
        })
        .into_iter()
        .collect();
    if let Some((beta, Some(i))) = eval.best_f_beta {
        let r = &records[i];
        rules.push(Rule {
            x: r.threshold,
            name: format!(
                "best F-beta (beta = {beta}) {:.3} at {}",
                r.f_beta.unwrap_or(0.0),
                r.threshold
            ),
            color: PURPLE,
        });
    }
    let (lo, hi) = (xs[0], xs[xs.len() - 1]);
    let pad = ((hi - lo) * 0.02).max(0.01);
    Chart {
        title: format!("Pairwise quality by threshold ({subtitle})"),
        x_label: format!("threshold on {}", eval.score.title()),
        y_label: "score on the gold labels".into(),
        x_range: (lo - pad, hi + pad),
        y_range: (0.0, 1.02),
        body: Body::Lines(lines),
        rules,
        legend: Corner::LowerLeft,
    }
}

/// The distribution of the swept score among gold positives and negatives (each as a
/// share of its class), with a rule at the best threshold by F1.
pub fn histogram_chart(eval: &Evaluation, subtitle: &str) -> Chart {
    let h = &eval.histogram;
    let shares = |counts: &[u64]| {
        let total: u64 = counts.iter().sum();
        counts
            .iter()
            .map(|&c| {
                if total > 0 {
                    c as f64 / total as f64
                } else {
                    0.0
                }
            })
            .collect::<Vec<f64>>()
    };
    let (pos, neg) = (shares(&h.positives), shares(&h.negatives));
    let top = pos
        .iter()
        .chain(&neg)
        .copied()
        .fold(0.0, f64::max)
        .max(0.05);
    let n_pos: u64 = h.positives.iter().sum();
    let n_neg: u64 = h.negatives.iter().sum();
    let neg_name = if h.negatives_are_candidates {
        format!("different stories, LSH candidates (n = {n_neg})")
    } else {
        format!("different stories (n = {n_neg})")
    };
    let rules = eval
        .best_f1
        .map(|i| {
            let t = eval.rows[i].threshold;
            vec![Rule {
                x: t,
                name: format!("best F1 threshold {t}"),
                color: GREY,
            }]
        })
        .unwrap_or_default();
    Chart {
        title: format!("Score distribution of the gold pairs ({subtitle})"),
        x_label: eval.score.title().to_string(),
        y_label: "share of the class's pairs".into(),
        x_range: (0.0, 1.0),
        // Headroom for the legend: at the story level the tallest bar is the same-story
        // pairs' at the top scores, right under it.
        y_range: (0.0, (top * 1.4).min(1.0)),
        body: Body::Bars(Bars {
            classes: [
                (format!("same story (n = {n_pos})"), BLUE, pos),
                (neg_name, VERMILLION, neg),
            ],
        }),
        rules,
        legend: Corner::UpperRight,
    }
}

/// The S-curve `P(candidate | s)` of a banding, with the optimum for comparison when a
/// banding was given explicitly, and a rule at the threshold. At the story level `s` is
/// the weighted Jaccard of the IDF-weighted words and the threshold
/// `--story-candidates`, not the story cut: said so on the chart.
pub fn s_curve_chart(report: &BandingReport, level: crate::Level) -> Chart {
    let story = level == crate::Level::Story;
    let curve = |p: crate::index::LshParams| -> Vec<(f64, Option<f64>)> {
        (0..=200)
            .map(|i| {
                let s = i as f64 / 200.0;
                (s, Some(p.candidate_probability(s)))
            })
            .collect()
    };
    let name = |p: crate::index::LshParams| format!("{} bands × {} rows", p.bands, p.rows);
    let mut lines = vec![Line {
        name: format!(
            "{}{}",
            name(report.lsh),
            if report.explicit {
                " (given)"
            } else {
                " (chosen)"
            }
        ),
        points: curve(report.lsh),
        color: BLUE,
        width: 3,
        dashed: false,
        dots: false,
    }];
    if report.explicit && report.optimal != report.lsh {
        lines.push(Line {
            name: format!("{} (optimal)", name(report.optimal)),
            points: curve(report.optimal),
            color: ORANGE,
            width: 2,
            dashed: true,
            dots: false,
        });
    }
    Chart {
        title: format!(
            "{}P(candidate) = 1 − (1 − s^r)^b, num-perm {}",
            if story { "Story candidates: " } else { "" },
            report.num_perm
        ),
        x_label: if story {
            "weighted Jaccard s of the IDF-weighted words of a pair".into()
        } else {
            "Jaccard similarity s of a pair".into()
        },
        y_label: "probability of becoming a candidate".into(),
        x_range: (0.0, 1.0),
        y_range: (0.0, 1.02),
        body: Body::Lines(lines),
        rules: vec![Rule {
            x: report.threshold,
            name: format!(
                "{} {}: P = {:.3}",
                if story {
                    "--story-candidates"
                } else {
                    "threshold"
                },
                report.threshold,
                report.at_threshold()
            ),
            color: GREY,
        }],
        legend: Corner::LowerRight,
    }
}

/// Writes each chart as `dir/NAME.svg` and/or `.png` (one file per format; `dir` is
/// created if needed, files are replaced whole); returns the paths written, in order.
pub fn write_charts(
    dir: &Path,
    charts: &[(&str, Chart)],
    formats: &[ImageFormat],
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut written = Vec::new();
    for (name, chart) in charts {
        for &format in formats {
            let bytes = chart.render(format)?;
            let path = dir.join(format!("{name}.{}", format.extension()));
            let writing = |e| Error::io(format!("writing {}", path.display()), e);
            let mut file = OutputFile::create(&path).map_err(writing)?;
            file.write_all(&bytes).map_err(writing)?;
            file.commit().map_err(writing)?;
            written.push(path);
        }
    }
    Ok(written)
}

impl Chart {
    /// The chart encoded as `format`.
    pub fn render(&self, format: ImageFormat) -> Result<Vec<u8>> {
        register_fonts();
        let fail = |e: String| Error::io("drawing a chart", std::io::Error::other(e));
        match format {
            ImageFormat::Svg => {
                let mut svg = String::new();
                {
                    let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                    self.draw(&root).map_err(|e| fail(e.to_string()))?;
                    root.present().map_err(|e| fail(e.to_string()))?;
                }
                Ok(svg.into_bytes())
            }
            ImageFormat::Png => {
                let (w, h) = SIZE;
                let mut rgb = vec![0u8; (w * h * 3) as usize];
                {
                    let root = Raster {
                        inner: BitMapBackend::with_buffer(&mut rgb, SIZE),
                    }
                    .into_drawing_area();
                    self.draw(&root).map_err(|e| fail(e.to_string()))?;
                    root.present().map_err(|e| fail(e.to_string()))?;
                }
                let mut out = Vec::new();
                let mut encoder = png::Encoder::new(&mut out, w, h);
                encoder.set_color(png::ColorType::Rgb);
                encoder.set_depth(png::BitDepth::Eight);
                encoder.set_compression(png::Compression::High);
                let mut writer = encoder.write_header().map_err(|e| fail(e.to_string()))?;
                writer
                    .write_image_data(&rgb)
                    .map_err(|e| fail(e.to_string()))?;
                writer.finish().map_err(|e| fail(e.to_string()))?;
                Ok(out)
            }
        }
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let (x0, x1) = self.x_range;
        let (y0, y1) = self.y_range;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 22))
            .margin(18)
            .x_label_area_size(52)
            .y_label_area_size(68)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let percent_axis = matches!(self.body, Body::Bars(_));
        let y_format = |v: &f64| {
            if percent_axis {
                format!("{:.0}%", v * 100.0)
            } else {
                format!("{v:.1}")
            }
        };
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style((FONT, 17))
            .label_style((FONT, 15))
            .x_labels(11)
            .y_labels(6)
            .x_label_formatter(&|v| format!("{v:.2}"))
            .y_label_formatter(&y_format)
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;

        match &self.body {
            Body::Lines(lines) => {
                for line in lines {
                    let style = ShapeStyle::from(line.color).stroke_width(line.width);
                    let mut labelled = false;
                    for run in line
                        .points
                        .split(|p| p.1.is_none())
                        .filter(|r| !r.is_empty())
                    {
                        let points: Vec<(f64, f64)> =
                            run.iter().map(|&(x, y)| (x, y.unwrap_or(0.0))).collect();
                        let drawn = if line.dashed {
                            chart.draw_series(DashedLineSeries::new(points.clone(), 7, 5, style))?
                        } else {
                            chart.draw_series(LineSeries::new(points.clone(), style))?
                        };
                        if !labelled {
                            labelled = true;
                            drawn.label(line.name.as_str()).legend(move |(x, y)| {
                                PathElement::new(vec![(x, y), (x + 22, y)], style)
                            });
                        }
                        if line.dots {
                            chart.draw_series(
                                points
                                    .iter()
                                    .map(|&p| Circle::new(p, 3, line.color.filled())),
                            )?;
                        }
                    }
                }
            }
            Body::Bars(bars) => {
                let bins = bars.classes[0].2.len().max(1);
                let width = (x1 - x0) / bins as f64;
                for (k, (name, color, shares)) in bars.classes.iter().enumerate() {
                    let color = *color;
                    chart
                        .draw_series(shares.iter().enumerate().map(|(i, &v)| {
                            let left = x0 + i as f64 * width + width * (0.06 + 0.44 * k as f64);
                            Rectangle::new(
                                [(left, 0.0), (left + width * 0.44, v)],
                                color.mix(0.85).filled(),
                            )
                        }))?
                        .label(name.as_str())
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.mix(0.85).filled())
                        });
                }
            }
        }
        for rule in &self.rules {
            let style = ShapeStyle::from(rule.color).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(
                    [(rule.x, y0), (rule.x, y1)],
                    6,
                    6,
                    style,
                ))?
                .label(rule.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
        }
        chart
            .configure_series_labels()
            .position(match self.legend {
                Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
                Corner::LowerRight => SeriesLabelPosition::LowerRight,
                Corner::UpperRight => SeriesLabelPosition::UpperRight,
            })
            .margin(12)
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
        Ok(())
    }
}

fn register_fonts() {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        // Cannot fail with the embedded, valid font; if it did, drawing text reports it.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

fn glyph_font(style: FontStyle) -> &'static FontRef<'static> {
    static REGULAR: OnceLock<FontRef<'static>> = OnceLock::new();
    static BOLD: OnceLock<FontRef<'static>> = OnceLock::new();
    let (cell, bytes) = match style {
        FontStyle::Bold => (&BOLD, dejavu::sans::bold()),
        _ => (&REGULAR, dejavu::sans::regular()),
    };
    cell.get_or_init(|| FontRef::try_from_slice(bytes).expect("the embedded font is valid"))
}

/// A bitmap backend whose text keeps each glyph's side bearings.
struct Raster<'a> {
    inner: BitMapBackend<'a>,
}

type DrawResult<'a> =
    std::result::Result<(), DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

impl<'a> DrawingBackend for Raster<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> DrawResult<'a> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> DrawResult<'a> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> DrawResult<'a> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> DrawResult<'a> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> DrawResult<'a> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> DrawResult<'a> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> DrawResult<'a> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> DrawResult<'a> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> DrawResult<'a> {
        self.inner.blit_bitmap(pos, size, src)
    }

    /// Lays text out as plotters does (same box, same anchors, same baseline at half the
    /// font size below the top), but places every glyph by its own pixel bounds.
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> DrawResult<'a> {
        use plotters_backend::text_anchor::{HPos, VPos};
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        let size = style.size() as f32;
        let font = glyph_font(style.style()).as_scaled(size);
        let mut caret = 0.0f32;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            previous = Some(id);
            let glyph = id.with_scale_and_position(size, point(caret, size / 2.0));
            caret += font.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue; // white space
            };
            let bounds = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|x, y, coverage| pixels.push((x, y, coverage)));
            for (x, y, coverage) in pixels {
                if coverage <= 0.0 {
                    continue;
                }
                let gx = bounds.min.x as i32 + x as i32;
                let gy = bounds.min.y as i32 + y as i32;
                let (tx, ty) = transform.transform(gx + dx - min_x, gy + dy - min_y);
                let (px, py) = (pos.0 + tx, pos.1 + ty);
                if px >= 0 && px < w as i32 && py >= 0 && py < h as i32 {
                    let shade = BackendColor {
                        alpha: color.alpha * f64::from(coverage.min(1.0)),
                        rgb: color.rgb,
                    };
                    self.inner.draw_pixel((px, py), shade)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The story level's S-curve is of `--story-candidates` over weighted Jaccard: labelled
    /// as the near-copy one, its 0.2 passed for the story cut (QA pass 14).
    #[test]
    fn the_story_s_curve_says_what_its_axis_and_threshold_are() {
        let report =
            crate::eval::banding::banding_report(0.2, 128, None, None, (0.05, 0.95), 0.01).unwrap();
        let story = s_curve_chart(&report, crate::Level::Story);
        assert!(
            story.x_label.starts_with("weighted Jaccard"),
            "{}",
            story.x_label
        );
        assert!(story.rules[0].name.starts_with("--story-candidates 0.2"));
        let near_copy = s_curve_chart(&report, crate::Level::NearCopy);
        assert_eq!(near_copy.x_label, "Jaccard similarity s of a pair");
        assert!(near_copy.rules[0].name.starts_with("threshold 0.2"));
    }
}
