//! The workloads: one table, from which selection, running, the report and the chart all
//! read. Programs live in `bench/workloads/` and are compiled once per run.

use crate::stats::Unit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Micro,
    Lifecycle,
    App,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Micro => "micro",
            Group::Lifecycle => "lifecycle",
            Group::App => "apps",
        }
    }
}

/// How a workload's numbers are obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The program times itself and prints `RESULT` lines; sandbox start-up is not counted.
    SelfTimed,
    /// Wall time of the whole run, from spawning the runtime to its exit.
    WallTime,
    /// Wall time of `create`, `start` and `delete` of a container running the command.
    CreateStartDelete,
    /// PSS summed over every host process of the sandbox while the command (a `sleep`) runs.
    IdleMemory,
}

/// One number a workload produces.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The name the program prints after `RESULT` (or the workload's name), and the JSON key.
    pub id: &'static str,
    /// What the row says in the table.
    pub label: &'static str,
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy)]
pub struct Workload {
    pub name: &'static str,
    pub group: Group,
    pub measure: Measure,
    /// The command, with placeholders (see [`Params::expand`]).
    pub argv: &'static [&'static str],
    pub metrics: &'static [Metric],
}

const fn m(id: &'static str, label: &'static str, unit: Unit) -> Metric {
    Metric { id, label, unit }
}

/// Every workload, in the order the table prints them.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "getpid",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/getpid", "{ms}"],
        metrics: &[m("getpid", "getpid round trip", Unit::Nanos)],
    },
    Workload {
        name: "clock_gettime",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/clock_gettime", "{ms}"],
        metrics: &[m("clock_gettime", "clock_gettime", Unit::Nanos)],
    },
    Workload {
        name: "file_ops",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &[
            "{bin}/file_ops",
            "{ms}",
            "{data}/small.txt",
            "{data}/deep/a/b/c/d/e/f/g/h/i/j/leaf",
        ],
        metrics: &[
            m("open_read_close", "open+read+close small file", Unit::Nanos),
            m("stat_deep", "stat of a deep path", Unit::Nanos),
        ],
    },
    Workload {
        name: "fork",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/fork_wait", "{ms}", "{bin}/nop"],
        metrics: &[
            m("fork_exit_wait", "fork+exit+wait", Unit::Nanos),
            m("fork_exec_wait", "fork+execve+wait (static)", Unit::Nanos),
        ],
    },
    Workload {
        name: "pipe_pingpong",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/pipe_pingpong", "{ms}"],
        metrics: &[m(
            "pipe_pingpong",
            "pipe ping-pong, 2 processes",
            Unit::Nanos,
        )],
    },
    Workload {
        name: "futex_pingpong",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/futex_pingpong", "{ms}"],
        metrics: &[m(
            "futex_pingpong",
            "futex ping-pong, 2 threads",
            Unit::Nanos,
        )],
    },
    Workload {
        name: "memory",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/memory", "{ms}"],
        metrics: &[
            m("mmap_touch_munmap", "mmap+touch+munmap 1 MiB", Unit::Nanos),
            m("page_fault", "page fault (anonymous)", Unit::Nanos),
        ],
    },
    Workload {
        name: "gofer_read",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/seqio", "read", "gofer", "{data}/big"],
        metrics: &[m(
            "gofer_read",
            "sequential read, host file",
            Unit::MegabytesPerSec,
        )],
    },
    Workload {
        name: "gofer_write",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/seqio", "write", "gofer", "{scratch}/seq", "{mib}"],
        metrics: &[m(
            "gofer_write",
            "sequential write, host file",
            Unit::MegabytesPerSec,
        )],
    },
    Workload {
        name: "tmpfs_io",
        group: Group::Micro,
        measure: Measure::SelfTimed,
        argv: &["{bin}/seqio", "both", "tmpfs", "{tmp}/seq", "{mib}"],
        metrics: &[
            m(
                "tmpfs_write",
                "sequential write, tmpfs",
                Unit::MegabytesPerSec,
            ),
            m(
                "tmpfs_read",
                "sequential read, tmpfs",
                Unit::MegabytesPerSec,
            ),
        ],
    },
    Workload {
        name: "run_true",
        group: Group::Lifecycle,
        measure: Measure::WallTime,
        argv: &["/bin/true"],
        metrics: &[m("run_true", "run /bin/true, start to exit", Unit::Nanos)],
    },
    Workload {
        name: "create_start_delete",
        group: Group::Lifecycle,
        measure: Measure::CreateStartDelete,
        argv: &["/bin/true"],
        metrics: &[m(
            "create_start_delete",
            "create+start+delete /bin/true",
            Unit::Nanos,
        )],
    },
    Workload {
        name: "idle_memory",
        group: Group::Lifecycle,
        measure: Measure::IdleMemory,
        argv: &["/bin/sleep", "600"],
        metrics: &[m(
            "idle_memory",
            "idle sandbox memory (PSS)",
            Unit::Kibibytes,
        )],
    },
    Workload {
        name: "python_startup",
        group: Group::App,
        measure: Measure::WallTime,
        argv: &["/usr/bin/python3", "-c", "pass"],
        metrics: &[m("python_startup", "python3 -c pass", Unit::Nanos)],
    },
    Workload {
        name: "python_work",
        group: Group::App,
        measure: Measure::WallTime,
        argv: &["/usr/bin/python3", "{data}/work.py", "{tmp}"],
        metrics: &[m("python_work", "python3 sieve + 200 files", Unit::Nanos)],
    },
    Workload {
        name: "gcc",
        group: Group::App,
        measure: Measure::WallTime,
        argv: &[
            "/usr/bin/gcc",
            "-O2",
            "-c",
            "{data}/memory.c",
            "-o",
            "{tmp}/memory.o",
        ],
        metrics: &[m("gcc", "gcc -O2 -c memory.c", Unit::Nanos)],
    },
    Workload {
        name: "sh_loop",
        group: Group::App,
        measure: Measure::WallTime,
        argv: &[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt {loops} ]; do /bin/true; i=$((i+1)); done",
        ],
        metrics: &[m("sh_loop", "sh: {loops} × /bin/true", Unit::Nanos)],
    },
];

/// The C programs under `bench/workloads/` that are compiled into `{bin}`.
pub const PROGRAMS: &[&str] = &[
    "getpid",
    "clock_gettime",
    "file_ops",
    "fork_wait",
    "nop",
    "pipe_pingpong",
    "futex_pingpong",
    "memory",
    "seqio",
];

/// Everything a command line's placeholders stand for in one runtime.
#[derive(Debug, Clone)]
pub struct Params {
    /// Compiled workload programs.
    pub bin: String,
    /// Read-only inputs: small and big files, a deep path, sources, scripts.
    pub data: String,
    /// A writable directory on the host's disk (the gofer's side in a sandbox).
    pub scratch: String,
    /// A writable tmpfs directory, as the runtime names it.
    pub tmp: String,
    /// How long each self-timed measurement lasts.
    pub target_ms: u32,
    /// Size of the sequential I/O files.
    pub mib: u32,
    /// Iterations of the shell loop.
    pub loops: u32,
}

impl Params {
    /// Replaces `{bin}`, `{data}`, `{scratch}`, `{tmp}`, `{ms}`, `{mib}` and `{loops}`.
    pub fn expand(&self, text: &str) -> String {
        text.replace("{bin}", &self.bin)
            .replace("{data}", &self.data)
            .replace("{scratch}", &self.scratch)
            .replace("{tmp}", &self.tmp)
            .replace("{ms}", &self.target_ms.to_string())
            .replace("{mib}", &self.mib.to_string())
            .replace("{loops}", &self.loops.to_string())
    }

    pub fn argv(&self, workload: &Workload) -> Vec<String> {
        workload.argv.iter().map(|a| self.expand(a)).collect()
    }
}

/// One `RESULT <metric> <value> <unit>` line of a workload program's output.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultLine {
    pub metric: String,
    pub value: f64,
    pub unit: Unit,
}

/// The `RESULT` lines in a program's output; other lines are ignored, malformed
/// `RESULT` lines are errors (a program and the harness disagreeing is a bug to show).
pub fn parse_results(stdout: &str) -> Result<Vec<ResultLine>, String> {
    let mut out = Vec::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("RESULT") {
            continue;
        }
        let (Some(metric), Some(value), Some(unit), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(format!("malformed output line {line:?}"));
        };
        let value: f64 = value
            .parse()
            .map_err(|_| format!("bad number in output line {line:?}"))?;
        let unit = Unit::parse(unit).ok_or_else(|| format!("unknown unit in {line:?}"))?;
        out.push(ResultLine {
            metric: metric.to_string(),
            value,
            unit,
        });
    }
    Ok(out)
}

/// Workloads named on the command line: `all`, a group name, or a workload name.
pub fn select(names: &[String]) -> Result<Vec<&'static Workload>, String> {
    let mut chosen: Vec<&'static Workload> = Vec::new();
    for name in names {
        let matched: Vec<&'static Workload> = WORKLOADS
            .iter()
            .filter(|w| name == "all" || w.group.name() == name || w.name == name)
            .collect();
        if matched.is_empty() {
            return Err(format!("unknown workload {name:?} (see --list)"));
        }
        for w in matched {
            if !chosen.iter().any(|c| c.name == w.name) {
                chosen.push(w);
            }
        }
    }
    // Keep the table's order whatever order they were named in.
    chosen.sort_by_key(|w| WORKLOADS.iter().position(|x| x.name == w.name));
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines() {
        let out = "warming up\nRESULT getpid 98.250 ns/op\nRESULT tmpfs_read 7003.8 MB/s\n";
        let r = parse_results(out).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].metric, "getpid");
        assert_eq!(r[0].value, 98.25);
        assert_eq!(r[0].unit, Unit::Nanos);
        assert_eq!(r[1].unit, Unit::MegabytesPerSec);
        assert!(parse_results("RESULT getpid fast ns/op").is_err());
        assert!(parse_results("RESULT getpid 1 furlongs").is_err());
        assert!(parse_results("RESULT getpid").is_err());
        assert_eq!(parse_results("nothing here").unwrap(), vec![]);
    }

    #[test]
    fn placeholders_expand() {
        let p = Params {
            bin: "/b".into(),
            data: "/d".into(),
            scratch: "/s".into(),
            tmp: "/tmp".into(),
            target_ms: 50,
            mib: 64,
            loops: 10,
        };
        let w = select(&["tmpfs_io".to_string()]).unwrap()[0];
        assert_eq!(
            p.argv(w),
            ["/b/seqio", "both", "tmpfs", "/tmp/seq", "64"].map(String::from)
        );
        assert!(p.expand("{loops} × true").starts_with("10 "));
    }

    #[test]
    fn selection_by_name_group_and_all() {
        assert_eq!(select(&["all".into()]).unwrap().len(), WORKLOADS.len());
        let s = select(&["sh_loop".into(), "getpid".into(), "getpid".into()]).unwrap();
        assert_eq!(
            s.iter().map(|w| w.name).collect::<Vec<_>>(),
            ["getpid", "sh_loop"]
        );
        assert!(select(&["lifecycle".into()])
            .unwrap()
            .iter()
            .all(|w| w.group == Group::Lifecycle));
        assert!(select(&["nope".into()]).is_err());
    }

    #[test]
    fn metric_ids_are_unique_and_programs_exist() {
        let mut ids: Vec<&str> = WORKLOADS
            .iter()
            .flat_map(|w| w.metrics.iter().map(|m| m.id))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads");
        for p in PROGRAMS {
            assert!(
                std::path::Path::new(&format!("{dir}/{p}.c")).exists(),
                "{p}"
            );
        }
    }
}
