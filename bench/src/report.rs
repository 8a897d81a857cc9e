//! From samples to what people read: the table (terminal and Markdown), the performance
//! targets as pass/fail lines, and the JSON document.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::prepare::Machine;
use crate::stats::{cost_ratio, format_ratio, format_summary, Summary, Unit};
use crate::workloads::{Params, Workload};

/// What one runtime produced for one metric over all rounds.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub samples: Vec<f64>,
    /// Set once the runtime failed this workload; it is not retried in later rounds.
    pub error: Option<String>,
}

/// All cells, keyed by (metric id, runtime name).
pub type Results = BTreeMap<(String, String), Cell>;

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeInfo {
    pub name: String,
    pub available: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub quick: bool,
    pub rounds: u32,
    pub target_ms: u32,
    pub io_mib: u32,
    pub sh_loops: u32,
    pub seconds: f64,
}

/// One line of the table: a metric on a runtime.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: String,
    pub metric: String,
    pub label: String,
    pub unit: Unit,
    pub runtime: String,
    pub samples: Vec<f64>,
    #[serde(flatten)]
    pub summary: Option<Summary>,
    pub ratio_native: Option<f64>,
    pub ratio_runsc: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    #[serde(rename = "n/a")]
    NotMeasured,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetLine {
    pub target: String,
    pub status: Status,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub runtimes: Vec<RuntimeInfo>,
    pub results: Vec<Row>,
    pub targets: Vec<TargetLine>,
}

fn median(results: &Results, metric: &str, runtime: &str) -> Option<f64> {
    let cell = results.get(&(metric.to_string(), runtime.to_string()))?;
    Summary::of(&cell.samples).map(|s| s.median)
}

/// Rows for every metric of `workloads` on every available runtime, in table order.
pub fn rows(
    workloads: &[&Workload],
    runtimes: &[RuntimeInfo],
    results: &Results,
    params: &Params,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for w in workloads {
        for m in w.metrics {
            let native = median(results, m.id, "native");
            let runsc = median(results, m.id, "runsc");
            for rt in runtimes.iter().filter(|r| r.available) {
                let cell = results
                    .get(&(m.id.to_string(), rt.name.clone()))
                    .cloned()
                    .unwrap_or_default();
                let summary = Summary::of(&cell.samples);
                let ratio =
                    |reference: Option<f64>| cost_ratio(m.unit, summary?.median, reference?);
                rows.push(Row {
                    workload: w.name.to_string(),
                    metric: m.id.to_string(),
                    label: params.expand(m.label),
                    unit: m.unit,
                    runtime: rt.name.clone(),
                    ratio_native: ratio(native),
                    ratio_runsc: ratio(runsc),
                    summary,
                    error: match (&cell.error, summary) {
                        (Some(e), _) => Some(e.clone()),
                        (None, None) => Some("not run".to_string()),
                        (None, Some(_)) => None,
                    },
                    samples: cell.samples,
                });
            }
        }
    }
    rows
}

/// A performance goal from issue 5: `metric` on `runtime` at most `factor` × `reference`.
struct Target {
    label: &'static str,
    metric: &'static str,
    /// A carapace runtime name, or `None` for every carapace platform measured.
    runtime: Option<&'static str>,
    reference: &'static str,
    factor: f64,
}

const TARGETS: &[Target] = &[
    Target {
        label: "getpid under 5× native on systrap",
        metric: "getpid",
        runtime: Some("carapace-systrap"),
        reference: "native",
        factor: 5.0,
    },
    Target {
        label: "open+read+close 5× faster than runsc on systrap",
        metric: "open_read_close",
        runtime: Some("carapace-systrap"),
        reference: "runsc",
        factor: 0.2,
    },
    Target {
        label: "fork+exit+wait 5× faster than runsc on systrap",
        metric: "fork_exit_wait",
        runtime: Some("carapace-systrap"),
        reference: "runsc",
        factor: 0.2,
    },
    Target {
        label: "getpid under 2× native on KVM",
        metric: "getpid",
        runtime: Some("carapace-kvm"),
        reference: "native",
        factor: 2.0,
    },
    Target {
        label: "start-up (run /bin/true) under half of runsc's",
        metric: "run_true",
        runtime: None,
        reference: "runsc",
        factor: 0.5,
    },
    Target {
        label: "idle memory under a third of runsc's",
        metric: "idle_memory",
        runtime: None,
        reference: "runsc",
        factor: 1.0 / 3.0,
    },
];

/// The targets as pass/fail lines. A target whose runtime or reference was not measured is
/// `n/a` with the reason (e.g. "platform not built yet").
pub fn targets(runtimes: &[RuntimeInfo], results: &Results) -> Vec<TargetLine> {
    let mut lines = Vec::new();
    let unit_of = |metric: &str| {
        crate::workloads::WORKLOADS
            .iter()
            .flat_map(|w| w.metrics.iter())
            .find(|m| m.id == metric)
            .map_or(Unit::Nanos, |m| m.unit)
    };
    for t in TARGETS {
        let candidates: Vec<&RuntimeInfo> = match t.runtime {
            Some(name) => runtimes.iter().filter(|r| r.name == name).collect(),
            None => runtimes
                .iter()
                .filter(|r| r.name.starts_with("carapace-") && r.available)
                .collect(),
        };
        if candidates.is_empty() {
            let why = match t.runtime {
                Some(name) if name.starts_with("carapace-") => "platform not built yet",
                _ => "no carapace runtime measured",
            };
            lines.push(TargetLine {
                target: t.label.to_string(),
                status: Status::NotMeasured,
                detail: why.to_string(),
            });
            continue;
        }
        for rt in candidates {
            let target = format!("{} ({})", t.label, rt.name);
            let cell = results.get(&(t.metric.to_string(), rt.name.clone()));
            let value = median(results, t.metric, &rt.name);
            let reference = median(results, t.metric, t.reference);
            let (status, detail) = match (value, reference) {
                _ if !rt.available => (Status::NotMeasured, rt.reason.clone().unwrap_or_default()),
                (None, _) => (
                    Status::NotMeasured,
                    cell.and_then(|c| c.error.clone())
                        .unwrap_or_else(|| "not measured".to_string()),
                ),
                (_, None) => (Status::NotMeasured, format!("{} not measured", t.reference)),
                (Some(v), Some(r)) => {
                    let ratio = cost_ratio(unit_of(t.metric), v, r).unwrap_or(f64::INFINITY);
                    let status = if ratio < t.factor {
                        Status::Pass
                    } else {
                        Status::Fail
                    };
                    (
                        status,
                        format!(
                            "{} of {}, need under {}",
                            format_ratio(Some(ratio)),
                            t.reference,
                            format_ratio(Some(t.factor))
                        ),
                    )
                }
            };
            lines.push(TargetLine {
                target,
                status,
                detail,
            });
        }
    }
    lines
}

fn cells(row: &Row) -> [String; 4] {
    match (&row.summary, &row.error) {
        (Some(s), None) => {
            let (median, range) = format_summary(row.unit, s);
            [
                median,
                range,
                format_ratio(row.ratio_native),
                format_ratio(row.ratio_runsc),
            ]
        }
        (_, error) => [
            format!("n/a ({})", error.as_deref().unwrap_or("not run")),
            String::new(),
            String::new(),
            String::new(),
        ],
    }
}

const HEADER: [&str; 6] = [
    "workload",
    "runtime",
    "median",
    "min–max",
    "×native",
    "×runsc",
];

/// The table for a terminal: aligned columns, the label once per metric.
pub fn text_table(rows: &[Row]) -> String {
    let mut lines: Vec<[String; 6]> = vec![HEADER.map(String::from)];
    let mut last = String::new();
    for row in rows {
        let label = if row.metric != last {
            row.label.clone()
        } else {
            String::new()
        };
        last = row.metric.clone();
        let [a, b, c, d] = cells(row);
        lines.push([label, row.runtime.clone(), a, b, c, d]);
    }
    let width = |i: usize| {
        lines
            .iter()
            .filter(|l| !l[2].starts_with("n/a") || i != 2)
            .map(|l| l[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..6).map(width).collect();
    let mut out = String::new();
    for (n, l) in lines.iter().enumerate() {
        if n > 1 && !l[0].is_empty() {
            out.push('\n');
        }
        let mut line = String::new();
        for (i, cell) in l.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            // Numbers right-aligned, names left-aligned; an n/a reason just runs on.
            if i >= 2 && !cell.starts_with("n/a") {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < l.len() && !cell.starts_with("n/a") {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if i + 1 < l.len() && !cell.starts_with("n/a") {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The same table in Markdown.
pub fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from("| workload | runtime | median | min–max | ×native | ×runsc |\n");
    out.push_str("|---|---|--:|--:|--:|--:|\n");
    let mut last = String::new();
    for row in rows {
        let label = if row.metric != last {
            format!("**{}**", row.label)
        } else {
            String::new()
        };
        last = row.metric.clone();
        let [a, b, c, d] = cells(row);
        out.push_str(&format!(
            "| {label} | {} | {a} | {b} | {c} | {d} |\n",
            row.runtime
        ));
    }
    out
}

pub fn target_lines(targets: &[TargetLine]) -> String {
    let mut out = String::new();
    for t in targets {
        let status = match t.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::NotMeasured => "n/a ",
        };
        out.push_str(&format!("{status}  {}: {}\n", t.target, t.detail));
    }
    out
}

/// Runtimes that could not run at all, one line each.
pub fn unavailable_lines(runtimes: &[RuntimeInfo]) -> String {
    runtimes
        .iter()
        .filter(|r| !r.available)
        .map(|r| {
            format!(
                "{}: n/a ({})\n",
                r.name,
                r.reason.as_deref().unwrap_or("unavailable")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::select;

    fn info(name: &str, available: bool, reason: Option<&str>) -> RuntimeInfo {
        RuntimeInfo {
            name: name.into(),
            available,
            reason: reason.map(String::from),
        }
    }

    fn params() -> Params {
        Params {
            bin: "/b".into(),
            data: "/d".into(),
            scratch: "/s".into(),
            tmp: "/tmp".into(),
            target_ms: 50,
            mib: 64,
            loops: 10,
        }
    }

    fn sample_results() -> (Vec<RuntimeInfo>, Results) {
        let runtimes = vec![
            info("native", true, None),
            info("runsc", true, None),
            info("carapace-ptrace", true, None),
            info("carapace-systrap", false, Some("platform not built yet")),
        ];
        let mut results = Results::new();
        let mut put = |metric: &str, rt: &str, samples: &[f64], error: Option<&str>| {
            results.insert(
                (metric.into(), rt.into()),
                Cell {
                    samples: samples.to_vec(),
                    error: error.map(String::from),
                },
            );
        };
        put("getpid", "native", &[100.0, 110.0, 90.0], None);
        put("getpid", "runsc", &[40_000.0, 46_000.0, 50_000.0], None);
        put("getpid", "carapace-ptrace", &[51_000.0], None);
        put("run_true", "native", &[1e6], None);
        put("run_true", "runsc", &[170e6, 180e6], None);
        put("run_true", "carapace-ptrace", &[10e6], None);
        put("idle_memory", "runsc", &[29_000.0], None);
        put("idle_memory", "carapace-ptrace", &[], Some("boom"));
        (runtimes, results)
    }

    #[test]
    fn rows_have_ratios_and_errors() {
        let (runtimes, results) = sample_results();
        let w = select(&["getpid".into(), "idle_memory".into()]).unwrap();
        let rows = rows(&w, &runtimes, &results, &params());
        // Three available runtimes × two metrics; the unbuilt platform has no rows.
        assert_eq!(rows.len(), 6);
        let c = &rows[2];
        assert_eq!(c.runtime, "carapace-ptrace");
        assert_eq!(c.ratio_native, Some(510.0));
        assert_eq!(c.ratio_runsc.map(|r| (r * 100.0).round()), Some(111.0));
        assert_eq!(rows[3].error.as_deref(), Some("not run"));
        assert_eq!(rows[5].error.as_deref(), Some("boom"));
        let table = text_table(&rows);
        assert!(table.contains("n/a (boom)"));
        assert!(table.contains("×510"));
        let md = markdown_table(&rows);
        assert_eq!(md.lines().count(), 2 + 6);
    }

    #[test]
    fn targets_pass_fail_and_not_built() {
        let (runtimes, results) = sample_results();
        let t = targets(&runtimes, &results);
        let find = |s: &str| t.iter().find(|l| l.target.starts_with(s)).unwrap();
        assert_eq!(find("getpid under 5×").status, Status::NotMeasured);
        assert_eq!(find("getpid under 5×").detail, "platform not built yet");
        assert_eq!(find("getpid under 2×").detail, "platform not built yet");
        assert_eq!(find("start-up").status, Status::Pass);
        assert_eq!(find("idle memory").status, Status::NotMeasured);
        assert_eq!(find("idle memory").detail, "boom");
    }

    #[test]
    fn json_shape() {
        let (runtimes, results) = sample_results();
        let w = select(&["getpid".into()]).unwrap();
        let rows = rows(&w, &runtimes, &results, &params());
        let v = serde_json::to_value(&rows[0]).unwrap();
        for key in [
            "workload",
            "metric",
            "label",
            "unit",
            "runtime",
            "samples",
            "median",
            "min",
            "max",
            "ratio_native",
            "ratio_runsc",
            "error",
        ] {
            assert!(v.get(key).is_some(), "{key} missing from {v}");
        }
        assert_eq!(v["unit"], "nanos");
        assert_eq!(v["median"], 100.0);
        let t = serde_json::to_value(targets(&runtimes, &results)).unwrap();
        assert_eq!(t[0]["status"], "n/a");
    }
}
