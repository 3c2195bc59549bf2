//! PNG plots (plotters, bitmap backend; text is drawn with a TrueType font
//! loaded at run time, so none is copied into the repository).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Where to look for a font: `$BATON_PLOT_FONT`, then the usual places of
/// DejaVu Sans and Liberation Sans (Debian: `fonts-dejavu-core`).
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const FAMILY: &str = "sans-serif";

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

type Res = Result<(), Box<dyn Error>>;

/// Loads and registers a font; call once before plotting. Without one the
/// plots are still drawn, without text.
pub fn init_font() {
    let candidates = std::env::var("BATON_PLOT_FONT")
        .ok()
        .into_iter()
        .chain(FONT_PATHS.iter().map(|p| p.to_string()));
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            // plotters keeps registered fonts for the life of the process.
            let font: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FAMILY, FontStyle::Normal, font).is_ok() {
                return;
            }
        }
    }
    eprintln!(
        "report: no TrueType font found (set BATON_PLOT_FONT, or install fonts-dejavu-core); plots will lack text"
    );
}

/// Horizontal grouped bars: one category per row, one bar per series, and a
/// line at x = 1.
pub fn ratio_bars(
    path: &Path,
    title: &str,
    x_desc: &str,
    labels: &[String],
    series: &[(String, Vec<f64>)],
) -> Res {
    let n = labels.len().max(1);
    let height = 140 + 34 * n as u32 * series.len().max(1) as u32;
    let root = BitMapBackend::new(path, (1100, height.max(400))).into_drawing_area();
    root.fill(&WHITE)?;
    let xmax = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(1.0f64, f64::max)
        * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 22))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(250)
        .build_cartesian_2d(0f64..xmax, 0f64..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_label_formatter(&|_| String::new())
        .x_desc(x_desc)
        .label_style((FAMILY, 15))
        .draw()?;
    let k = series.len().max(1) as f64;
    let h = 0.8 / k;
    for (s, (name, values)) in series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        chart
            .draw_series(
                values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(i, &v)| {
                        // Row 0 at the top.
                        let top = (n - 1 - i) as f64 + 0.9 - s as f64 * h;
                        Rectangle::new([(0.0, top - h), (v, top)], color.filled())
                    }),
            )?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        chart.draw_series(
            values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| {
                    let mid = (n - 1 - i) as f64 + 0.9 - s as f64 * h - h / 2.0;
                    Text::new(
                        format!(" {v:.2}×"),
                        (v, mid),
                        TextStyle::from((FAMILY, 13).into_font())
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    )
                }),
        )?;
    }
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, 0.0), (1.0, n as f64)],
        BLACK.stroke_width(2),
    )))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FAMILY, 15))
        .draw()?;
    // Category labels, right-aligned left of the plotting area.
    let style = TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, label) in labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, (n - 1 - i) as f64 + 0.5));
        root.draw(&Text::new(label.clone(), (x - 8, y), style.clone()))?;
    }
    root.present()?;
    Ok(())
}

/// One panel of [`line_panels`].
pub struct Panel {
    /// The panel's caption.
    pub title: String,
    /// The x axis' description.
    pub x_desc: String,
    /// The y axis' description.
    pub y_desc: String,
    /// Plot log10(x) (labels show x).
    pub log_x: bool,
    /// Plot log10(y) (labels show y).
    pub log_y: bool,
    /// `(name, points)` per line.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

fn fmt_axis(v: f64, log: bool, integers: bool) -> String {
    let x = if log { 10f64.powf(v) } else { v };
    if integers && (x - x.round()).abs() > 1e-6 {
        return String::new();
    }
    if x >= 100.0 || (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Line plots side by side, one per panel.
pub fn line_panels(path: &Path, panels: &[Panel]) -> Res {
    let w = 650 * panels.len().max(1) as u32;
    let root = BitMapBackend::new(path, (w, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, p) in areas.iter().zip(panels) {
        let tx = |x: f64| if p.log_x { x.log10() } else { x };
        let ty = |y: f64| if p.log_y { y.max(1e-9).log10() } else { y };
        let pts = || p.series.iter().flat_map(|(_, v)| v.iter().copied());
        let (mut x0, mut x1) = pts().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
            (a.min(tx(x)), b.max(tx(x)))
        });
        let (mut y0, mut y1) = pts().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
            (a.min(ty(y)), b.max(ty(y)))
        });
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if (x1 - x0).abs() < 1e-9 {
            x0 -= 0.5;
            x1 += 0.5;
        }
        if p.log_y {
            let pad = ((y1 - y0) * 0.1).max(0.1);
            y0 -= pad;
            y1 += pad;
        } else {
            y0 = 0.0;
            y1 = y1.max(1e-9) * 1.15;
        }
        let mut chart = ChartBuilder::on(area)
            .caption(&p.title, (FAMILY, 20))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let (lx, ly) = (p.log_x, p.log_y);
        // A linear x axis counts workers: label whole numbers only.
        let xf = move |v: &f64| fmt_axis(*v, lx, !lx);
        let yf = move |v: &f64| fmt_axis(*v, ly, false);
        chart
            .configure_mesh()
            .x_desc(p.x_desc.as_str())
            .y_desc(p.y_desc.as_str())
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .label_style((FAMILY, 14))
            .draw()?;
        for (s, (name, points)) in p.series.iter().enumerate() {
            let color = COLORS[s % COLORS.len()];
            let data: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (tx(x), ty(y))).collect();
            chart
                .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(
                data.into_iter()
                    .map(|pt| Circle::new(pt, 4, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FAMILY, 14))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
