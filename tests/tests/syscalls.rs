//! The syscall compatibility suite: every `tests/syscalls/*.c` program is compiled with
//! `gcc -static`, run natively (where it must pass: a native failure means the test is
//! wrong), then run under `carapace do` on every platform and judged against
//! `tests/syscalls/manifest.txt`. `CARAPACE_PLATFORM=ptrace` (or `systrap`) runs one only.
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

/// The platforms the suite runs on, unless `CARAPACE_PLATFORM` names one.
const PLATFORMS: [&str; 2] = ["ptrace", "systrap"];

/// Programs that check time windows of tens of milliseconds (a 30 ms timer not yet
/// expired two calls after it was set). They run after the others, one at a time: with
/// every other program's sandboxes sharing two CPUs, a process could wait longer than
/// that for one, and they failed one run in three that way.
const ALONE: [&str; 2] = ["timerfd.c", "timers.c"];

/// How one program fared on one platform.
struct Outcome {
    name: String,
    platform: String,
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

    let platforms: Vec<String> = match std::env::var("CARAPACE_PLATFORM") {
        Ok(p) => vec![p],
        Err(_) => PLATFORMS.iter().map(|p| p.to_string()).collect(),
    };
    let (alone, together): (Vec<&PathBuf>, Vec<&PathBuf>) =
        selected.iter().partition(|p| ALONE.contains(&file_name(p)));
    let mut outcomes: Vec<Outcome> = thread::scope(|s| {
        let handles: Vec<_> = together
            .iter()
            .map(|src| s.spawn(|| run_program(src, &build_dir, &platforms)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a runner thread panicked"))
            .collect()
    });
    for src in alone {
        outcomes.extend(run_program(src, &build_dir, &platforms));
    }

    let verbose = std::env::var_os("CARAPACE_SYSCALL_VERBOSE").is_some();
    let mut report = String::from("\n=== syscall suite: native, then `carapace do` ===\n");
    let mut problems = Vec::new();
    let width = outcomes
        .iter()
        .map(|o| o.name.len() + o.platform.len() + 3)
        .max()
        .unwrap_or(0);

    for name in manifest.keys() {
        if !programs.iter().any(|p| file_name(p) == name) {
            problems.push(format!(
                "manifest.txt lists `{name}`, which is not a program in tests/syscalls/"
            ));
        }
    }

    for o in &outcomes {
        let expected = expected_failure(&manifest, &o.name, &o.platform);
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
            format!("{} [{}]", o.name, o.platform)
        ));

        if o.platform != platforms[0] && o.native.is_err() {
            // Reported once, with the first platform.
            continue;
        }
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
                    "{} [{}]: passes in the sandbox: remove it from the manifest",
                    o.name, o.platform
                ));
                false
            }
            (false, None) => {
                problems.push(format!("{} [{}]: fails in the sandbox", o.name, o.platform));
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
        .filter(|o| {
            !o.sandbox_passed() && expected_failure(&manifest, &o.name, &o.platform).is_some()
        })
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

/// Why `name` is expected to fail on `platform`, if it is: a manifest reason that starts
/// with `[platform]` concerns that platform only; any other concerns every platform.
fn expected_failure<'m>(
    manifest: &'m std::collections::BTreeMap<String, String>,
    name: &str,
    platform: &str,
) -> Option<&'m String> {
    let reason = manifest.get(name)?;
    match reason.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((only, _)) if only != platform => None,
        _ => Some(reason),
    }
}

/// Compiles, runs natively, and (if that passed) runs sandboxed on each platform.
fn run_program(src: &Path, build_dir: &Path, platforms: &[String]) -> Vec<Outcome> {
    let name = file_name(src).to_string();
    let bin = build_dir.join(stem(src));
    let native = match compile_c(src, &bin) {
        Err(e) => Err(e),
        Ok(()) => match run_native(&bin, &[]) {
            Err(e) => Err(e),
            Ok(run) => match (run.code(), parse_summary(&run.stdout)) {
                (Some(0), Some((p, 0))) if p > 0 => Ok(p),
                _ => Err(run.dump()),
            },
        },
    };
    platforms
        .iter()
        .map(|platform| {
            let mut outcome = Outcome {
                name: name.clone(),
                platform: platform.clone(),
                native: native.clone(),
                sandbox: None,
                sandbox_run: None,
            };
            if outcome.native.is_ok() {
                run_in_sandbox(&mut outcome, &bin);
            }
            outcome
        })
        .collect()
}

/// Runs the compiled program under `carapace do` on the outcome's platform.
fn run_in_sandbox(outcome: &mut Outcome, bin: &Path) {
    let flag = format!("--platform={}", outcome.platform);
    match run_sandboxed(&[&flag], bin, &[]) {
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
