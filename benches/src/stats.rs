//! The figures every harness reports: medians, percentiles, rates, and
//! numbers grouped by thousands.

use std::time::Duration;

/// A results table: measurement, result, baseline, ratio; printed as
/// Markdown.
#[derive(Default)]
pub struct Table {
    rows: Vec<[String; 4]>,
}

impl Table {
    /// Adds a row.
    pub fn row(&mut self, what: &str, value: String, against: &str, ratio: String) {
        self.rows
            .push([what.to_owned(), value, against.to_owned(), ratio]);
    }

    /// Prints the table, headed by how many runs each figure is the
    /// median of.
    pub fn print(&self, runs: usize) {
        println!("\nmedians of {runs} runs\n");
        println!("| measurement | result | compared with | ratio |");
        println!("|---|---:|---|---:|");
        for [a, b, c, d] in &self.rows {
            println!("| {a} | {b} | {c} | {d} |");
        }
    }
}

/// The median of `values` (NaN for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The `p` quantile (0.0 to 1.0) of `values`, nearest rank (NaN for none).
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let at = ((values.len() as f64 - 1.0) * p.clamp(0.0, 1.0)).round() as usize;
    values[at.min(values.len() - 1)]
}

/// `n` items over `elapsed`, per second.
pub fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// `value` rounded, its digits grouped by thousands: `1,234,567`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits.as_str()),
    };
    let mut out = String::from(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1000.0), "-1,000");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert!(median(Vec::new()).is_nan());
        assert_eq!(percentile(&mut [5.0, 1.0, 3.0, 2.0, 4.0], 0.99), 5.0);
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
    }
}
