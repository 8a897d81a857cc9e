//! `carapace do` reports a program killed by a signal the way a shell does, 128 + the
//! signal number (issue 4: "a program that dereferences NULL dies with SIGSEGV and
//! `carapace do` exits 139; one that calls `abort()` exits 134"). Each program is also run
//! natively, where it must die of that signal: otherwise the test is wrong.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use tests::{compile_snippet, run_native, run_sandboxed, Run};

/// Reads address 0.
const NULL_DEREF_C: &str = r#"
#include <stdio.h>
int main(void)
{
    fflush(stdout);
    return *(volatile int *)0;
}
"#;

/// Calls abort() (core files kept off natively, where core_pattern may be a plain file).
const ABORT_C: &str = r#"
#include <stdlib.h>
#include <sys/resource.h>
int main(void)
{
    struct rlimit rl = { 0, 0 };
    setrlimit(RLIMIT_CORE, &rl);
    abort();
}
"#;

/// Forks a child that sends itself SIGTERM; exits with the child's wait status decoded as
/// a shell would (so init itself never gets a signal with a default action).
const CHILD_KILLED_C: &str = r#"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        kill(getpid(), SIGTERM);
        _exit(0);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return 1;
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 2;
}
"#;

/// Compiles a snippet. Tests run in parallel and a snippet is rebuilt in place, so the
/// native and sandboxed halves use binaries of different names.
fn build(name: &str, source: &str) -> std::path::PathBuf {
    compile_snippet(name, source).unwrap_or_else(|e| panic!("{e}"))
}

fn native(program: &Path) -> Run {
    run_native(program, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn sandboxed(program: &Path) -> Run {
    run_sandboxed(&[], program, &[]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn programs_die_of_their_signal_natively() {
    for (name, source, signal) in [
        ("do_null_deref_native", NULL_DEREF_C, 11),
        ("do_abort_native", ABORT_C, 6),
    ] {
        let run = native(&build(name, source));
        assert_eq!(run.status.signal(), Some(signal), "{}", run.dump());
    }
    let run = native(&build("do_child_killed_native", CHILD_KILLED_C));
    assert_eq!(run.code(), Some(128 + 15), "{}", run.dump());
}

#[test]
fn null_dereference_exits_139() {
    let run = sandboxed(&build("do_null_deref", NULL_DEREF_C));
    assert_eq!(run.code(), Some(139), "{}", run.dump());
}

#[test]
fn abort_exits_134() {
    let run = sandboxed(&build("do_abort", ABORT_C));
    assert_eq!(run.code(), Some(134), "{}", run.dump());
}

#[test]
fn child_killed_by_sigterm_is_seen_by_its_parent() {
    let run = sandboxed(&build("do_child_killed", CHILD_KILLED_C));
    assert_eq!(run.code(), Some(128 + 15), "{}", run.dump());
}
