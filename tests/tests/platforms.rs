//! The platforms themselves (programs in `tests/platforms/`):
//! - 64 application threads making syscalls and taking queued signals at once, on every
//!   platform: the hand-over between application threads and the sentry under load must
//!   neither hang nor crash nor lose a signal. Runs 5 s per platform; the 60 s run
//!   is `CARAPACE_STRESS_SECS=60 cargo test -p tests --test platforms`.
//! - systrap's syscall patching: a hot `mov $nr,%eax; syscall` site is rewritten (the debug
//!   log says so), and `--systrap-patch=off` leaves every site trapping.
//! - systrap's confinement of its stubs: application code that jumps to the stub's own
//!   `syscall` instruction (the only place the stub's seccomp filter lets host calls
//!   through) with a call the stub never makes, or with other flags, is killed.

use std::path::PathBuf;
use std::time::Duration;

fn program(name: &str) -> PathBuf {
    let src = tests::crate_dir().join(format!("platforms/{name}.c"));
    let bin = tests::c_build_dir()
        .map(|d| d.join(name))
        .unwrap_or_else(|e| panic!("{e}"));
    tests::compile_c(&src, &bin).unwrap_or_else(|e| panic!("{e}"));
    bin
}

#[test]
fn threads_signals_on_every_platform() {
    let bin = program("threads_signals");
    let secs: u64 = std::env::var("CARAPACE_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let arg = secs.to_string();
    for platform in ["ptrace", "systrap", "systrap --systrap-patch=off"] {
        let mut cmd =
            std::process::Command::new(tests::carapace().unwrap_or_else(|e| panic!("{e}")));
        cmd.arg("do")
            .args(platform.split(' ').enumerate().map(|(i, a)| {
                if i == 0 {
                    format!("--platform={a}")
                } else {
                    a.to_string()
                }
            }))
            .arg(&bin)
            .arg(&arg)
            .current_dir("/");
        let run =
            tests::run(cmd, Duration::from_secs(secs + 120)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!run.timed_out, "{platform}: hung\n{}", run.dump());
        assert_eq!(run.code(), Some(0), "{platform}: failed\n{}", run.dump());
        let summary = tests::parse_summary(&run.stdout);
        assert!(
            matches!(summary, Some((p, 0)) if p > 0),
            "{platform}: {}",
            run.dump()
        );
        eprintln!("{platform}: {}", run.stderr.trim());
    }
}

#[test]
fn systrap_patches_hot_syscall_sites_unless_told_not_to() {
    let bin = program("getpid_loop");
    let dir = tests::c_build_dir().unwrap_or_else(|e| panic!("{e}"));
    let patched = |flags: &[&str], tag: &str| {
        let log = dir.join(format!("getpid_loop-{tag}.log"));
        let _ = std::fs::remove_file(&log);
        let log_flag = format!("--debug-log={}", log.display());
        let mut all = vec!["--platform=systrap", log_flag.as_str()];
        all.extend_from_slice(flags);
        let run = tests::run_sandboxed(&all, &bin, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.code(), Some(0), "{tag}: {}", run.dump());
        assert_eq!(tests::parse_summary(&run.stdout), Some((1, 0)), "{tag}");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("patched the syscall site") && l.contains("(syscall 39)"))
            .count()
    };
    assert!(patched(&[], "on") >= 1, "getpid's site was not patched");
    assert_eq!(patched(&["--systrap-patch=off"], "off"), 0);
}

#[test]
fn systrap_stub_syscalls_from_application_code_are_killed() {
    let bin = program("stub_escape");
    let run = |call: &str| {
        let run = tests::run_sandboxed(&["--platform=systrap"], &bin, &[call])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!run.timed_out, "{call}: hung\n{}", run.dump());
        assert!(
            run.stdout.contains("jumping to 0x7ff0"),
            "{call}: found no stub site\n{}",
            run.dump()
        );
        run
    };
    // The control: a call the stub makes runs, and comes back to the site's int3.
    let control = run("futex");
    assert_eq!(
        control.code(),
        Some(128 + libc::SIGTRAP),
        "{}",
        control.dump()
    );
    for call in ["getuid", "mkdir", "mmap_private", "clone_fork"] {
        let r = run(call);
        assert_eq!(
            r.code(),
            Some(128 + libc::SIGKILL),
            "{call} from the stub's site was not killed\n{}",
            r.dump()
        );
        assert!(!r.stdout.contains("returned"), "{call}: {}", r.dump());
    }
}
