//! Quantiles of latencies, and how the demos print a latency.

/// The `q` quantile (0.0 to 1.0) of `sorted` (ascending), by the nearest rank; 0 when
/// empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

/// `ns` nanoseconds with a unit that keeps it short: `850 ns`, `12.5 µs`, `20.1 ms`,
/// `1.50 s`.
pub fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let sorted: Vec<u64> = (1..=101).collect();
        assert_eq!(quantile(&sorted, 0.0), 1);
        assert_eq!(quantile(&sorted, 0.5), 51);
        assert_eq!(quantile(&sorted, 0.99), 100);
        assert_eq!(quantile(&sorted, 1.0), 101);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn formats_with_a_short_unit() {
        assert_eq!(fmt_ns(850), "850 ns");
        assert_eq!(fmt_ns(12_500), "12.5 µs");
        assert_eq!(fmt_ns(20_100_000), "20.1 ms");
        assert_eq!(fmt_ns(1_500_000_000), "1.50 s");
    }
}
