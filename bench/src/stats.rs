//! Summaries of samples and the way numbers are written in the table.

use serde::Serialize;

/// What a metric's numbers are, which decides how they print and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Nanoseconds per operation (or per run); lower is better.
    Nanos,
    /// Megabytes (10^6 bytes) per second; higher is better.
    MegabytesPerSec,
    /// Kibibytes of memory; lower is better.
    Kibibytes,
}

impl Unit {
    pub fn higher_is_better(self) -> bool {
        matches!(self, Unit::MegabytesPerSec)
    }

    /// The unit as the workload programs print it after a `RESULT` value.
    pub fn parse(text: &str) -> Option<Unit> {
        match text {
            "ns/op" | "ns" => Some(Unit::Nanos),
            "MB/s" => Some(Unit::MegabytesPerSec),
            "KiB" | "kB" => Some(Unit::Kibibytes),
            _ => None,
        }
    }
}

/// Median and range of one runtime's samples for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no samples. NaNs (which the harness never produces) sort last.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// How many times the cost of `reference` `value` is: above 1 is worse whatever the unit
/// (slower, less throughput, more memory). `None` when either side is not positive.
pub fn cost_ratio(unit: Unit, value: f64, reference: f64) -> Option<f64> {
    if value <= 0.0 || reference <= 0.0 || !value.is_finite() || !reference.is_finite() {
        return None;
    }
    Some(if unit.higher_is_better() {
        reference / value
    } else {
        value / reference
    })
}

/// `×0.0081`, `×0.52`, `×1.00`, `×12.3`, `×450`: two decimals below 10, one below 100,
/// none above; two significant digits below 0.1.
pub fn format_ratio(ratio: Option<f64>) -> String {
    match ratio {
        None => "—".to_string(),
        Some(r) if r >= 99.95 => format!("×{r:.0}"),
        Some(r) if r >= 9.995 => format!("×{r:.1}"),
        Some(r) if r >= 0.0995 || r <= 0.0 => format!("×{r:.2}"),
        Some(r) => {
            let decimals = (1.0 - r.log10().floor()).clamp(2.0, 12.0) as usize;
            format!("×{r:.decimals$}")
        }
    }
}

/// Three significant digits, no exponent: 0.0981, 1.23, 45.6, 512, 12345.
fn sig3(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.1 {
        format!("{x:.3}")
    } else {
        format!("{x:.4}")
    }
}

/// The scale (divisor and suffix) a value of this unit prints in.
fn scale(unit: Unit, value: f64) -> (f64, &'static str) {
    match unit {
        Unit::Nanos if value >= 1e9 => (1e9, "s"),
        Unit::Nanos if value >= 1e6 => (1e6, "ms"),
        Unit::Nanos if value >= 1e3 => (1e3, "µs"),
        Unit::Nanos => (1.0, "ns"),
        Unit::MegabytesPerSec => (1.0, "MB/s"),
        Unit::Kibibytes => (1024.0, "MiB"),
    }
}

/// One value with its unit, scaled to read well: `46.4 µs`, `174 ms`, `29.1 MiB`.
pub fn format_value(unit: Unit, value: f64) -> String {
    let (div, suffix) = scale(unit, value);
    format!("{} {suffix}", sig3(value / div))
}

/// The median with its unit and the range in the same scale: `46.4 µs`, `45.9–48.0`.
pub fn format_summary(unit: Unit, s: &Summary) -> (String, String) {
    let (div, suffix) = scale(unit, s.median);
    (
        format!("{} {suffix}", sig3(s.median / div)),
        format!("{}–{}", sig3(s.min / div), sig3(s.max / div)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Summary::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (3.0, 1.0, 5.0));
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[7.0]).unwrap().median, 7.0);
    }

    #[test]
    fn ratios_are_costs() {
        assert_eq!(cost_ratio(Unit::Nanos, 300.0, 100.0), Some(3.0));
        assert_eq!(cost_ratio(Unit::MegabytesPerSec, 100.0, 300.0), Some(3.0));
        assert_eq!(cost_ratio(Unit::Kibibytes, 10.0, 0.0), None);
        assert_eq!(format_ratio(Some(0.523)), "×0.52");
        assert_eq!(format_ratio(Some(1.0)), "×1.00");
        assert_eq!(format_ratio(Some(12.34)), "×12.3");
        assert_eq!(format_ratio(Some(450.4)), "×450");
        assert_eq!(format_ratio(None), "—");
        assert_eq!(format_ratio(Some(0.00812)), "×0.0081");
        assert_eq!(format_ratio(Some(0.0271)), "×0.027");
    }

    #[test]
    fn values_scale_to_their_magnitude() {
        assert_eq!(format_value(Unit::Nanos, 98.3), "98.3 ns");
        assert_eq!(format_value(Unit::Nanos, 46_400.0), "46.4 µs");
        assert_eq!(format_value(Unit::Nanos, 174e6), "174 ms");
        assert_eq!(format_value(Unit::Nanos, 2.5e9), "2.50 s");
        assert_eq!(format_value(Unit::Kibibytes, 29_800.0), "29.1 MiB");
        assert_eq!(format_value(Unit::MegabytesPerSec, 3290.2), "3290 MB/s");
        let s = Summary::of(&[45_900.0, 46_400.0, 48_000.0]).unwrap();
        assert_eq!(
            format_summary(Unit::Nanos, &s),
            ("46.4 µs".to_string(), "45.9–48.0".to_string())
        );
    }
}
