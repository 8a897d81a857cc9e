//! 64 application threads making syscalls and taking queued signals at once, on every
//! platform: the hand-over between application threads and the sentry under load must
//! neither hang nor crash nor lose a signal. Runs 5 s per platform; the 60 s run
//! is `CARAPACE_STRESS_SECS=60 cargo test -p tests --test platform_stress`.

use std::time::Duration;

#[test]
fn threads_signals_on_every_platform() {
    let src = tests::crate_dir().join("stress/threads_signals.c");
    let bin = tests::c_build_dir()
        .map(|d| d.join("threads_signals"))
        .unwrap_or_else(|e| panic!("{e}"));
    tests::compile_c(&src, &bin).unwrap_or_else(|e| panic!("{e}"));
    let secs: u64 = std::env::var("CARAPACE_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let arg = secs.to_string();
    for platform in ["ptrace", "systrap"] {
        let mut cmd =
            std::process::Command::new(tests::carapace().unwrap_or_else(|e| panic!("{e}")));
        cmd.args(["do", &format!("--platform={platform}")])
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
