//! The latency chart the demos draw (plotters, SVG), in one style: a line per
//! implementation over log-scaled latency buckets (four per decade), and a vertical line
//! where a call starts to count as slow.

use plotters::prelude::*;

/// The color of a line.
pub use plotters::style::RGBColor;

/// What the chart shows besides its lines.
pub struct Frame<'a> {
    pub caption: &'a str,
    /// The left edge of the latency axis, in nanoseconds (the right one is 1 s).
    pub from_ns: f64,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    /// Where calls start to count as slow, in nanoseconds, and what the line says.
    pub slow_ns: f64,
    pub slow_label: String,
}

/// One implementation's line: (bucket middle in ns, calls in that bucket).
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// Counts sorted latencies (ns) into four buckets per decade from `from_ns` to 1 s.
pub fn histogram(sorted_ns: &[u64], from_ns: f64) -> Vec<(f64, f64)> {
    let decades = (1e9 / from_ns).log10();
    let edges: Vec<f64> = (0..=(4.0 * decades).round() as i32)
        .map(|i| from_ns * 10f64.powf(f64::from(i) / 4.0))
        .collect();
    edges
        .windows(2)
        .map(|w| {
            let lo = sorted_ns.partition_point(|&l| (l as f64) < w[0]);
            let hi = sorted_ns.partition_point(|&l| (l as f64) < w[1]);
            ((w[0] * w[1]).sqrt(), (hi - lo) as f64)
        })
        .collect()
}

/// Draws `lines` in `frame` to an SVG file at `path`.
pub fn write(path: &str, frame: &Frame, lines: &[Line]) -> Result<(), Box<dyn std::error::Error>> {
    let top = lines
        .iter()
        .flat_map(|l| &l.points)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        * 3.0;
    let floor = 0.5; // buckets with no calls sit on the floor

    let root = SVGBackend::new(path, (960, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(frame.caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((frame.from_ns..1e9).log_scale(), (floor..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(frame.x_desc)
        .y_desc(frame.y_desc)
        .x_label_formatter(&|x| axis_label(*x))
        .y_label_formatter(&|y| {
            if *y < 1.0 {
                "0".into()
            } else {
                format!("{y:.0}")
            }
        })
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [(frame.slow_ns, floor), (frame.slow_ns, top)],
            BLACK.stroke_width(2),
        ))?
        .label(frame.slow_label.as_str())
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLACK.stroke_width(2)));
    for line in lines {
        let color = line.color;
        let points = line.points.iter().map(|&(x, y)| (x, y.max(floor)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(3)))?
            .label(line.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn axis_label(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.0} µs", n / 1e3),
        n if n < 1e9 => format!("{:.0} ms", n / 1e6),
        n => format!("{:.0} s", n / 1e9),
    }
}
