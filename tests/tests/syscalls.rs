//! The syscall compatibility suite: every `tests/syscalls/*.c` program is compiled with
//! `gcc -static`, run natively (where it must pass: a native failure means the test is
//! wrong), then run under `carapace do` and judged against `tests/syscalls/manifest.txt`.
//!
//! One `#[test]` runs every program (in parallel) and prints one report to stderr, which
//! `cargo test` shows when the test fails. To see it always:
//!
//! ```sh
//! cargo test -p tests --test syscalls -- --nocapture
//! CARAPACE_SYSCALL_TESTS=mm,fd cargo test -p tests --test syscalls -- --nocapture  # a subset
//! CARAPACE_SYSCALL_VERBOSE=1 …   # also print the output of sandbox runs that failed as expected
//! ```
//!
//! Rules: a program not in the manifest must pass in the sandbox (same number of checks as
//! natively, none failed, exit status 0); a listed program that fails is reported with its
//! reason; a listed program that passes fails the run until it is removed from the
//! manifest; a manifest line naming no program fails the run.

use std::path::{Path, PathBuf};
use std::thread;

use tests::{
    c_build_dir, compile_c, parse_manifest, parse_summary, run_native, run_sandboxed, syscalls_dir,
    tail, Run,
};

/// How one program fared.
struct Outcome {
    name: String,
    /// `native ok (N passed)`, or why not.
    native: Result<u32, String>,
    /// The sandbox run's summary line (passed, failed), if it got that far.
    sandbox: Option<Result<(u32, u32), String>>,
    /// The sandbox run itself, for dumping its output.
    sandbox_run: Option<Run>,
}

impl Outcome {
    fn sandbox_passed(&self) -> bool {
        matches!((&self.native, &self.sandbox), (Ok(n), Some(Ok((p, 0)))) if p == n)
    }
}

#[test]
fn syscall_suite() {
    let dir = syscalls_dir();
    let programs = list_programs(&dir);
    assert!(!programs.is_empty(), "no *.c programs in {}", dir.display());
    let manifest_text = std::fs::read_to_string(dir.join("manifest.txt"))
        .unwrap_or_else(|e| panic!("cannot read {}/manifest.txt: {e}", dir.display()));
    let manifest = parse_manifest(&manifest_text).unwrap_or_else(|e| panic!("{e}"));

    let selected: Vec<PathBuf> = match std::env::var("CARAPACE_SYSCALL_TESTS") {
        Ok(filter) => {
            let wanted: Vec<&str> = filter.split(',').map(str::trim).collect();
            programs
                .iter()
                .filter(|p| wanted.iter().any(|w| stem(p) == *w || file_name(p) == *w))
                .cloned()
                .collect()
        }
        Err(_) => programs.clone(),
    };
    let build_dir = c_build_dir().unwrap_or_else(|e| panic!("{e}"));

    let outcomes: Vec<Outcome> = thread::scope(|s| {
        let handles: Vec<_> = selected
            .iter()
            .map(|src| s.spawn(|| run_program(src, &build_dir)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a runner thread panicked"))
            .collect()
    });

    let verbose = std::env::var_os("CARAPACE_SYSCALL_VERBOSE").is_some();
    let mut report = String::from("\n=== syscall suite: native, then `carapace do` ===\n");
    let mut problems = Vec::new();
    let width = outcomes.iter().map(|o| o.name.len()).max().unwrap_or(0);

    for name in manifest.keys() {
        if !programs.iter().any(|p| file_name(p) == name) {
            problems.push(format!(
                "manifest.txt lists `{name}`, which is not a program in tests/syscalls/"
            ));
        }
    }

    for o in &outcomes {
        let expected = manifest.get(&o.name);
        let native = match &o.native {
            Ok(n) => format!("native ok ({n} passed)"),
            Err(_) => "native FAILED".to_string(),
        };
        let sandbox = match &o.sandbox {
            None => "not run".to_string(),
            Some(Ok((p, f))) => format!("{p} passed, {f} failed"),
            Some(Err(e)) => e.lines().next().unwrap_or("").to_string(),
        };
        let verdict = match (o.sandbox_passed(), expected) {
            (true, None) => String::new(),
            (true, Some(_)) => {
                " (listed in manifest.txt but PASSED: remove it from the manifest)".into()
            }
            (false, Some(reason)) => format!(" (expected: {reason})"),
            (false, None) => " (UNEXPECTED: fix the sentry, or list it in manifest.txt)".into(),
        };
        report.push_str(&format!(
            "{:width$}  {native} / sandbox: {sandbox}{verdict}\n",
            o.name
        ));

        if let Err(e) = &o.native {
            problems.push(format!(
                "{}: fails natively, so the test is wrong:\n{e}",
                o.name
            ));
            continue;
        }
        let show_sandbox_output = match (o.sandbox_passed(), expected) {
            (true, Some(_)) => {
                problems.push(format!(
                    "{}: passes in the sandbox: remove it from the manifest",
                    o.name
                ));
                false
            }
            (false, None) => {
                problems.push(format!("{}: fails in the sandbox", o.name));
                true
            }
            (false, Some(_)) => verbose,
            (true, None) => false,
        };
        if show_sandbox_output {
            if let Some(Err(e)) = &o.sandbox {
                report.push_str(&indent(e));
            }
            if let Some(run) = &o.sandbox_run {
                report.push_str(&indent(&run.dump()));
            }
        }
    }

    let passed = outcomes.iter().filter(|o| o.sandbox_passed()).count();
    let failed = outcomes.len() - passed;
    let expected = outcomes
        .iter()
        .filter(|o| !o.sandbox_passed() && manifest.contains_key(&o.name))
        .count();
    report.push_str(&format!(
        "{expected} of the {failed} sandbox failures are expected by manifest.txt; {} problem(s)\n",
        problems.len()
    ));
    for p in &problems {
        report.push_str(&format!("PROBLEM: {}\n", p.replace('\n', "\n    ")));
    }
    report.push_str(&format!("{passed} passed, {failed} failed\n"));
    eprint!("{report}");
    assert!(
        problems.is_empty(),
        "{} problem(s) in the syscall suite; the report above says which",
        problems.len()
    );
}

/// Compiles, runs natively, and (if that passed) runs sandboxed.
fn run_program(src: &Path, build_dir: &Path) -> Outcome {
    let name = file_name(src).to_string();
    let bin = build_dir.join(stem(src));
    let mut outcome = Outcome {
        name,
        native: Err(String::new()),
        sandbox: None,
        sandbox_run: None,
    };
    if let Err(e) = compile_c(src, &bin) {
        outcome.native = Err(e);
        return outcome;
    }
    outcome.native = match run_native(&bin, &[]) {
        Err(e) => Err(e),
        Ok(run) => match (run.code(), parse_summary(&run.stdout)) {
            (Some(0), Some((p, 0))) if p > 0 => Ok(p),
            _ => Err(run.dump()),
        },
    };
    if outcome.native.is_err() {
        return outcome;
    }
    match run_sandboxed(&[], &bin, &[]) {
        Err(e) => outcome.sandbox = Some(Err(format!("could not start: {e}"))),
        Ok(run) => {
            let native = *outcome.native.as_ref().unwrap_or(&0);
            outcome.sandbox = Some(match (parse_summary(&run.stdout), run.code()) {
                (Some((p, 0)), Some(0)) if p != native => Err(format!(
                    "{p} passed, 0 failed, but {native} checks ran natively"
                )),
                (Some((p, 0)), Some(0)) => Ok((p, 0)),
                (Some((p, f)), _) if f > 0 => Ok((p, f)),
                (Some((p, f)), _) => Err(format!(
                    "{p} passed, {f} failed, but {}",
                    run.describe_status()
                )),
                (None, _) => Err(format!(
                    "no result line ({}; stderr: {})",
                    run.describe_status(),
                    first_line(&run.stderr)
                )),
            });
            outcome.sandbox_run = Some(run);
        }
    }
    outcome
}

fn list_programs(dir: &Path) -> Vec<PathBuf> {
    let mut programs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "c"))
        .collect();
    programs.sort();
    programs
}

fn file_name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or("?")
}

fn stem(p: &Path) -> &str {
    p.file_stem().and_then(|n| n.to_str()).unwrap_or("?")
}

fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(empty)");
    tail(line, 1)
}

fn indent(s: &str) -> String {
    let mut out: String = s.lines().map(|l| format!("    | {l}\n")).collect();
    if out.is_empty() {
        out.push_str("    | (no output)\n");
    }
    out
}
