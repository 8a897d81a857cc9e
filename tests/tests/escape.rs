//! Classic container escapes tried from inside `carapace do` (`tests/escape/escape.c`):
//! signalling, tracing or reading a host process, the host's /proc/PID/root, mounting the
//! host disk, device nodes, /dev/mem, overwriting the runtime through /proc/self/exe
//! (CVE-2019-5736), leaked host descriptors (CVE-2024-21626), keyctl, bpf,
//! perf_event_open, kexec_load, init_module, raw sockets, open_by_handle_at ("shocker"),
//! iopl, and writing the host's root. Every one must fail, and afterwards the host must
//! be unchanged. The program is never run natively: as root it would really do them.

use std::path::Path;

fn file_digest(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn every_escape_attempt_fails() {
    let src = tests::workspace_dir().join("tests/escape/escape.c");
    let bin = tests::c_build_dir().unwrap().join("escape");
    tests::compile_c(&src, &bin).unwrap_or_else(|e| panic!("{e}"));
    let carapace = tests::carapace().unwrap();
    let before_runtime = file_digest(&carapace);
    let before_program = file_digest(&bin);
    let probe = Path::new("/carapace-escape-probe");
    assert!(
        !probe.exists(),
        "{} exists before the test",
        probe.display()
    );

    let pid = std::process::id().to_string();
    let run = tests::run_sandboxed(&[], &bin, &[&pid]).unwrap_or_else(|e| panic!("{e}"));
    let out = &run.stdout;
    assert!(
        !out.contains("ESCAPED"),
        "an escape worked:\n{}",
        run.dump()
    );
    assert!(
        out.contains("every attempt was blocked") && run.code() == Some(0),
        "the escape program did not finish cleanly:\n{}",
        run.dump()
    );
    // Each attempt reported (so none was skipped by a crash half-way).
    for name in [
        "leaked-host-fd",
        "signal-host-pid",
        "ptrace-host-pid",
        "process-vm-readv-host",
        "proc-host-root",
        "mount-host-disk",
        "open-dev-mem",
        "overwrite-proc-self-exe",
        "keyctl",
        "bpf-prog-load",
        "perf-event-open",
        "kexec-load",
        "init-module",
        "raw-packet-socket",
        "raw-inet-socket",
        "raw-icmp-outside",
        "open-by-handle-at",
        "iopl",
        "write-host-root",
    ] {
        assert!(
            out.contains(&format!("{name}: ")),
            "{name} not reported:\n{}",
            run.dump()
        );
    }
    // Whatever the sandbox believes it wrote, the host is unchanged.
    assert!(!probe.exists(), "the sandbox created {}", probe.display());
    assert!(
        file_digest(&carapace) == before_runtime,
        "carapace was modified"
    );
    assert!(
        file_digest(&bin) == before_program,
        "the test binary was modified"
    );
}
