//! End-to-end checks of `carapace do CMD…`: stdio and exit status pass through, the
//! sandbox has its own identity, the host root is read-only and /tmp is writable, bad
//! input gets errors rather than crashes.
//!
//! Sandboxed cases are `#[ignore]`d with the reason while `carapace do` cannot run programs;
//! whoever makes one work removes its attribute. Run them anyway with
//! `cargo test -p tests --test do_cli -- --include-ignored`. The C programs used here are
//! also run natively, in a test that is never ignored: a native misbehaviour means the
//! test is wrong.

use std::path::Path;

use tests::{compile_snippet, run_native, run_sandboxed, Run};

/// Runs `carapace do [flags…] program args…`, failing the test if it cannot even start.
fn sandboxed(flags: &[&str], program: &str, args: &[&str]) -> Run {
    run_sandboxed(flags, Path::new(program), args).unwrap_or_else(|e| panic!("{e}"))
}

fn native(program: &str, args: &[&str]) -> Run {
    run_native(Path::new(program), args).unwrap_or_else(|e| panic!("{e}"))
}

fn snippet(name: &str, source: &str) -> std::path::PathBuf {
    compile_snippet(name, source).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts that the run exited with `code`, showing its output if not.
fn assert_exit(run: &Run, code: i32) {
    assert_eq!(run.code(), Some(code), "unexpected exit\n{}", run.dump());
}

/// Prints the pid as the kernel reports it.
const GETPID_C: &str = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
    printf("%ld\n", syscall(SYS_getpid));
    return 0;
}
"#;

/// Hands the kernel garbage pointers; prints the errno names it got back.
const BAD_POINTERS_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static const char *outcome(long r)
{
    return r == -1 ? strerrorname_np(errno) : "succeeded";
}
int main(void)
{
    long w = syscall(SYS_write, 1, (void *)0x10, 5);
    const char *a = outcome(w);
    long o = syscall(SYS_openat, AT_FDCWD, (void *)0x10, O_RDONLY);
    const char *b = outcome(o);
    printf("write %s\nopenat %s\n", a, b);
    return 0;
}
"#;

/// Overlay semantics on host paths, as an application sees them (run only sandboxed: it
/// changes /etc). Prints one line per group of checks.
const OVERLAY_C: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
static const char *e(int r) { return r == 0 ? "0" : strerrorname_np(errno); }
static int listed(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)))
        n += !strcmp(de->d_name, name);
    if (d)
        closedir(d);
    return n;
}
int main(void)
{
    struct stat st, st2;
    int u = unlink("/etc/hostname");
    printf("unlink %s stat %s listed %d\n", e(u), e(stat("/etc/hostname", &st)),
           listed("/etc", "hostname"));
    stat("/etc/passwd", &st);
    int fd = open("/etc/passwd", O_WRONLY | O_APPEND);
    int a = fd >= 0 && write(fd, "x:x:1:1::/:/bin/sh\n", 19) == 19 ? 0 : -1;
    fstat(fd, &st2);
    printf("append %s same-ino %d grew %d\n", e(a), st.st_ino == st2.st_ino,
           st2.st_size == st.st_size + 19);
    printf("rmdir-lower %s", e(rmdir("/usr")));
    printf(" rename-dir %s\n", e(rename("/usr/share", "/usr/share2")));
    int m = mkdir("/usr/carapace-overlay-dir", 0755);
    int r = rename("/etc/os-release", "/usr/carapace-overlay-dir/osr");
    printf("mkdir %s rename %s moved %d\n", e(m), e(r),
           lstat("/usr/carapace-overlay-dir/osr", &st) == 0 && lstat("/etc/os-release", &st) != 0);
    int c = chown("/etc/passwd", 1234, -1);
    stat("/etc/passwd", &st);
    int x = setxattr("/etc/group", "user.k", "v", 1, 0) == 0 && getxattr("/etc/group", "user.k", 0, 0) == 1;
    printf("chown %s uid %u xattr %d\n", e(c), st.st_uid, x);
    return 0;
}
"#;

/// Calls kexec_load, a real syscall the sandbox never implements, twice.
/// Not run natively: there, as root, the call is real.
const UNIMPLEMENTED_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
    for (int i = 0; i < 2; i++) {
        long r = syscall(SYS_kexec_load, 0, 0, (void *)0, 0);
        printf("%s\n", r == -1 ? strerrorname_np(errno) : "succeeded");
    }
    return 0;
}
"#;

// ---- native halves: always run ----

#[test]
fn c_programs_behave_as_expected_natively() {
    let getpid = native(snippet("do_getpid", GETPID_C).to_str().unwrap_or("?"), &[]);
    assert_exit(&getpid, 0);
    let pid: i64 = getpid.stdout.trim().parse().expect("a pid");
    assert!(pid > 1, "natively the program is not init: {pid}");

    let bad = native(
        snippet("do_bad_pointers", BAD_POINTERS_C)
            .to_str()
            .unwrap_or("?"),
        &[],
    );
    assert_exit(&bad, 0);
    assert_eq!(bad.stdout, "write EFAULT\nopenat EFAULT\n");

    // Compiled (so a syntax error shows now), deliberately not run.
    snippet("do_unimplemented", UNIMPLEMENTED_C);
    // Sandbox-only too: it changes /etc and /usr.
    snippet("do_overlay", OVERLAY_C);
}

// ---- stdio and exit status ----

#[test]
fn echo_prints_hello() {
    let run = sandboxed(&[], "/bin/echo", &["hello"]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, "hello\n", "{}", run.dump());
}

#[test]
fn exit_status_passes_through() {
    let run = sandboxed(&[], "/bin/sh", &["-c", "exit 3"]);
    assert_exit(&run, 3);
}

#[test]
fn missing_command_is_a_clear_error_with_status_127() {
    let run = sandboxed(&[], "/nonexistent", &[]);
    assert_exit(&run, 127);
    assert!(
        run.stderr.contains("/nonexistent"),
        "stderr should name the missing command\n{}",
        run.dump()
    );
}

// ---- identity ----

#[test]
fn python_sees_pid_1_and_the_sandbox_kernel_release() {
    let host_release = native("uname", &["-r"]).stdout.trim().to_string();
    assert!(!host_release.is_empty());
    // The interpreter by path: a `python3` found first on PATH may be a wrapper script
    // (pyenv's shims) that needs fork and pipes.
    let run = sandboxed(
        &[],
        "/usr/bin/python3",
        &[
            "-c",
            "import os, json, hashlib; print(os.getpid(), os.uname().release)",
        ],
    );
    assert_exit(&run, 0);
    let out = run.stdout.trim();
    let (pid, release) = out.split_once(' ').unwrap_or((out, ""));
    assert_eq!(pid, "1", "{}", run.dump());
    assert!(!release.is_empty(), "{}", run.dump());
    assert_ne!(
        release, host_release,
        "the host's release leaked into the sandbox"
    );
}

#[test]
fn getpid_syscall_returns_1() {
    let bin = snippet("do_getpid", GETPID_C);
    let run = sandboxed(&[], bin.to_str().unwrap_or("?"), &[]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, "1\n", "{}", run.dump());
}

// ---- same output as natively ----

/// Runs `program args…` natively and sandboxed; both must succeed with the same stdout.
fn assert_same_stdout(program: &str, args: &[&str]) {
    let host = native(program, args);
    assert_exit(&host, 0);
    assert!(!host.stdout.is_empty());
    let sandbox = sandboxed(&[], program, args);
    assert_exit(&sandbox, 0);
    assert!(
        sandbox.stdout == host.stdout,
        "stdout differs from the native run\n--- native ---\n{}\n--- sandbox ---\n{}",
        tests::tail(&host.stdout, 20),
        sandbox.dump()
    );
}

#[test]
fn ls_usr_bin_matches_native() {
    assert_same_stdout("ls", &["-la", "/usr/bin"]);
}

#[test]
fn cat_os_release_matches_native() {
    assert_same_stdout("cat", &["/etc/os-release"]);
}

#[test]
fn sha256sum_python_matches_native() {
    assert_same_stdout("sha256sum", &["/usr/bin/python3"]);
}

// ---- files ----

#[test]
fn host_root_is_read_only_without_the_overlay() {
    let probe = Path::new("/etc/carapace-probe");
    assert!(
        !probe.exists(),
        "{} exists before the test",
        probe.display()
    );
    let run = sandboxed(
        &["--overlay=none"],
        "/bin/sh",
        &["-c", "echo x > /etc/carapace-probe"],
    );
    assert_ne!(run.code(), Some(0), "{}", run.dump());
    assert!(run.code().is_some(), "the shell crashed\n{}", run.dump());
    assert!(
        run.stderr.contains("Read-only file system"),
        "expected EROFS\n{}",
        run.dump()
    );
    assert!(!probe.exists(), "the sandbox wrote to the host's /etc");
}

#[test]
fn overlay_root_is_writable_and_the_host_unchanged() {
    let probe = Path::new("/etc/overlay-probe");
    assert!(
        !probe.exists(),
        "{} exists before the test",
        probe.display()
    );
    let hostname = std::fs::read("/etc/hostname").ok();
    // Shell builtins only (no fork yet); `rm` replaces the shell at the end.
    let script = "echo hi > /etc/overlay-probe && read l < /etc/overlay-probe && echo $l \
                  && exec rm /etc/hostname";
    let run = sandboxed(&[], "/bin/sh", &["-c", script]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, "hi\n", "{}", run.dump());
    assert!(!probe.exists(), "the overlay wrote to the host's /etc");
    assert_eq!(
        std::fs::read("/etc/hostname").ok(),
        hostname,
        "the host's /etc/hostname changed"
    );
}

#[test]
fn overlay_semantics_on_host_paths() {
    let bin = snippet("do_overlay", OVERLAY_C);
    let passwd = std::fs::read("/etc/passwd").expect("/etc/passwd");
    let run = sandboxed(&[], bin.to_str().unwrap_or("?"), &[]);
    assert_exit(&run, 0);
    assert_eq!(
        run.stdout,
        "unlink 0 stat ENOENT listed 0\n\
         append 0 same-ino 1 grew 1\n\
         rmdir-lower ENOTEMPTY rename-dir EXDEV\n\
         mkdir 0 rename 0 moved 1\n\
         chown 0 uid 1234 xattr 1\n",
        "{}",
        run.dump()
    );
    assert_eq!(std::fs::read("/etc/passwd").expect("/etc/passwd"), passwd);
    assert!(Path::new("/etc/os-release").exists());
    assert!(!Path::new("/usr/carapace-overlay-dir").exists());
}

#[test]
fn tmp_is_writable_and_private() {
    let name = format!("/tmp/carapace-do-probe-{}", std::process::id());
    // Shell builtins only: the shell reads the file back without forking.
    let script = format!("echo data > {name} && read line < {name} && echo $line");
    let run = sandboxed(&[], "/bin/sh", &["-c", &script]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, "data\n", "{}", run.dump());
    // The sandbox's /tmp is its own tmpfs, not the host's.
    assert!(!Path::new(&name).exists(), "{name} appeared on the host");
}

// ---- bad input ----

#[test]
fn garbage_pointers_get_efault() {
    let bin = snippet("do_bad_pointers", BAD_POINTERS_C);
    let run = sandboxed(&[], bin.to_str().unwrap_or("?"), &[]);
    assert_exit(&run, 0);
    assert_eq!(
        run.stdout,
        "write EFAULT\nopenat EFAULT\n",
        "{}",
        run.dump()
    );
}

#[test]
fn unimplemented_syscall_is_enosys_and_logged_once() {
    let bin = snippet("do_unimplemented", UNIMPLEMENTED_C);
    let log = std::env::temp_dir().join(format!("carapace-enosys-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let log_arg = log.to_str().unwrap_or("?").to_string();
    let run = sandboxed(&["--debug-log", &log_arg], bin.to_str().unwrap_or("?"), &[]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, "ENOSYS\nENOSYS\n", "{}", run.dump());
    // DESIGN.md §2: an unimplemented syscall is logged once, by name, in the debug log.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(
        text.matches("kexec_load").count(),
        1,
        "the debug log should name kexec_load exactly once\n{text}\n{}",
        run.dump()
    );
}

// ---- --strace ----

#[test]
fn strace_shows_decoded_syscalls() {
    let run = sandboxed(&["--strace"], "/bin/echo", &["hello"]);
    assert_exit(&run, 0);
    assert_eq!(
        run.stdout, "hello\n",
        "strace output must not mix into stdout"
    );
    let log = &run.stderr;
    assert!(
        log.lines().any(|l| l.contains("execve(\"/bin/echo\"")),
        "no execve( line\n{}",
        run.dump()
    );
    assert!(
        log.contains("write(1, \"hello"),
        "no decoded write(1, \"hello…\n{}",
        run.dump()
    );
}

// ---- stdio redirected to a file ----

/// GNU cat copies with copy_file_range when its stdout is a regular file, which needs
/// the host stdio file to report and move its offset (it once failed with ESPIPE).
#[test]
fn stdout_redirected_to_a_file_gets_the_whole_output() {
    let carapace = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let out = tests::c_build_dir()
        .unwrap_or_else(|e| panic!("{e}"))
        .join(format!("do-stdout-{}.txt", std::process::id()));
    let file = std::fs::File::create(&out).unwrap_or_else(|e| panic!("{e}"));
    let status = std::process::Command::new(&carapace)
        .args(["do", "cat", "/etc/os-release", "/etc/os-release"])
        .stdout(file)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    let got = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let once = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    assert!(status.success(), "carapace do cat failed: {status}");
    assert_eq!(got, format!("{once}{once}"));
}

// ---- job control on a terminal ----

/// A background job that reads the terminal is stopped by SIGTTIN, and the terminal's
/// foreground group is the sandbox's own (run under `script`, which provides a pty).
#[test]
fn background_read_of_the_terminal_stops_the_job() {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("SKIPPED: script(1) is not installed (apt-get install bsdutils)");
        return;
    }
    let carapace = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let inner = format!(
        "{} do /bin/bash --norc -i -c 'cat & sleep 0.3; jobs; kill -9 %1; echo done-ok'",
        carapace.display()
    );
    let mut cmd = std::process::Command::new("/usr/bin/script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null());
    let run = tests::run(cmd, std::time::Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        run.stdout.contains("Stopped"),
        "the reader was not stopped\n{}",
        run.dump()
    );
    assert!(run.stdout.contains("done-ok"), "{}", run.dump());
}

/// `script` (util-linux) opens a pty in the sandbox and runs the command on its slave:
/// `tty` there names a /dev/pts node, and the output comes back through the master.
#[test]
fn script_runs_a_command_on_a_sandbox_pty() {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("SKIPPED: script(1) is not installed (apt-get install bsdutils)");
        return;
    }
    let run = sandboxed(
        &[],
        "/usr/bin/script",
        &["-qc", "tty; stty size", "/dev/null"],
    );
    assert_exit(&run, 0);
    let first = run
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r');
    assert!(
        first.starts_with("/dev/pts/"),
        "tty did not name a pty\n{}",
        run.dump()
    );
    // The slave's output went through OPOST/ONLCR on its way to script's master.
    assert!(run.stdout.contains("\r\n"), "{}", run.dump());
}

/// `carapace do --tty` runs the command on a pty of the sandbox bridged to the caller's
/// terminal: `tty` names /dev/pts/0 and the terminal's size came along.
#[test]
fn do_tty_puts_the_command_on_a_sandbox_pty() {
    if !Path::new("/usr/bin/script").exists() {
        eprintln!("SKIPPED: script(1) is not installed (apt-get install bsdutils)");
        return;
    }
    let carapace = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let inner = format!(
        "stty rows 33 cols 77; {} do --tty /bin/sh -c 'tty; stty size; test -t 0 && echo on-tty'",
        carapace.display()
    );
    let mut cmd = std::process::Command::new("/usr/bin/script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .stdin(std::process::Stdio::null());
    let run = tests::run(cmd, std::time::Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    assert!(
        lines.iter().any(|l| l.ends_with("/dev/pts/0")),
        "{}",
        run.dump()
    );
    assert!(lines.contains(&"33 77"), "{}", run.dump());
    assert!(lines.contains(&"on-tty"), "{}", run.dump());
}

/// `--tty` without a terminal on stdin is refused before anything starts.
#[test]
fn do_tty_needs_a_terminal() {
    let run = sandboxed(&["--tty"], "/bin/true", &[]);
    assert_ne!(run.status.code(), Some(0), "{}", run.dump());
    assert!(run.stderr.contains("--tty"), "{}", run.dump());
}

/// Drives `carapace do --tty` from a host pty (python's `pty`), as a person at a
/// terminal would: the sandbox's line discipline edits a line for `cat` and ends it with
/// ^D, ^C kills a foreground job (status 130), ^Z stops one and `fg` resumes it, in an
/// interactive bash. Each job says RUNNING once it runs, so the keys reach it rather than
/// the shell.
const INTERACTIVE_PY: &str = r#"
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def expect(what):
    global out
    end = time.time() + 20
    while what not in out:
        if time.time() > end:
            sys.stdout.write("TIMEOUT waiting for %r\n" % what)
            return
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                d = b""
            if not d:
                sys.stdout.write("EOF waiting for %r\n" % what)
                return
            out += d
    out = out[out.index(what) + len(what):]
    sys.stdout.write("saw %s\n" % what.decode())
def send(s):
    os.write(fd, s)
expect(b"$ ")
send(b"cat\r")
expect(b"cat\r\n")
send(b"hellp\x7fo\r")
expect(b"hellp\x08 \x08o\r\nhello\r\n")
send(b"\x04")
expect(b"$ ")
send(b"sh -c 'echo RUN''NING; exec sleep 100'\r")
expect(b"RUNNING")
send(b"\x03")
expect(b"^C")
send(b"echo after-$?\r")
expect(b"after-130")
send(b"sh -c 'echo RUN''NING; exec cat'\r")
expect(b"RUNNING")
send(b"\x1a")
expect(b"Stopped")
expect(b"$ ")
send(b"fg\r")
expect(b"cat'\r\n")
send(b"\x04")
expect(b"$ ")
send(b"exit\r")
_, st = os.waitpid(pid, 0)
sys.stdout.write("status %d\n" % st)
"#;

#[test]
fn do_tty_runs_an_interactive_shell() {
    let carapace = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let carapace = carapace.to_str().unwrap_or("?");
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args([
        "-c",
        INTERACTIVE_PY,
        carapace,
        "do",
        "--tty",
        "--env",
        "PS1=$ ",
        "/bin/bash",
        "--norc",
        "--noediting",
        "-i",
    ]);
    let run =
        tests::run(cmd, std::time::Duration::from_secs(120)).unwrap_or_else(|e| panic!("{e}"));
    for want in [
        "saw hellp",
        "saw ^C",
        "saw after-130",
        "saw Stopped",
        "status 0",
    ] {
        assert!(run.stdout.contains(want), "no {want:?}\n{}", run.dump());
    }
}

/// Pushes a character into the input of a terminal it holds with TIOCSTI; prints the
/// outcome.
const TIOCSTI_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
int main(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m))
        return 2;
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    char c = 'x';
    int r = ioctl(s, TIOCSTI, &c);
    printf("%s\n", r == -1 ? strerrorname_np(errno) : "succeeded");
    return 0;
}
"#;

/// Confinement: no one in the sandbox, not even root with every capability, can fake
/// terminal input with TIOCSTI (the classic way to type commands into the shell that
/// reads a terminal after the program exits): as Linux 6.2+ with
/// `dev.tty.legacy_tiocsti = 0` for unprivileged callers. (Not compared with a native
/// run: there, root with CAP_SYS_ADMIN may still use it.)
#[test]
fn tiocsti_cannot_fake_terminal_input() {
    let bin = snippet("do_tiocsti", TIOCSTI_C);
    let run = sandboxed(&[], bin.to_str().unwrap_or("?"), &[]);
    assert_exit(&run, 0);
    assert_eq!(run.stdout, "EIO\n", "{}", run.dump());
}

/// With a terminal, `/dev/console` is the console pty's slave bound over a file (as runc
/// binds it): a character device of the devpts, writable, listed in `/proc/mounts`.
/// Without one there is no `/dev/console`.
#[test]
fn dev_console_is_the_console_pty() {
    let carapace = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let carapace = carapace.to_str().unwrap_or("?");
    let script = "stat -c 'major=%t' /dev/console; echo via-console > /dev/console; \
                  grep -c ' /dev/console devpts ' /proc/mounts";
    let mut cmd = std::process::Command::new("/usr/bin/python3");
    cmd.args([
        "-c",
        "import pty, sys; pty.spawn(sys.argv[1:])",
        carapace,
        "do",
        "--tty",
        "/bin/sh",
        "-c",
        script,
    ]);
    let run = tests::run(cmd, std::time::Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    for want in ["major=88", "via-console", "\n1"] {
        assert!(run.stdout.contains(want), "no {want:?}\n{}", run.dump());
    }
    let run = sandboxed(
        &[],
        "/bin/sh",
        &["-c", "test -e /dev/console || echo absent"],
    );
    assert_exit(&run, 0);
    assert_eq!(run.stdout, "absent\n", "{}", run.dump());
}
