//! End-to-end checks of the sandbox's `/proc`: what `cat`, `ls`, `busybox ps` and procps
//! `ps` see there. Only the sandbox's processes appear, with sandbox pids, and the
//! sandbox's uid.

use std::path::Path;

use tests::{run_native, run_sandboxed, Run};

fn sandboxed(program: &str, args: &[&str]) -> Run {
    run_sandboxed(&[], Path::new(program), args).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_ok(run: &Run) {
    assert_eq!(run.code(), Some(0), "unexpected exit\n{}", run.dump());
}

/// The value after `key:` in a status-style text.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

/// The numeric names of a listing: the pids it shows.
fn pids_in(listing: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// `id -u` (or with `-un`, the user name) natively: `carapace do` keeps the caller's ids.
fn host_id(flag: &str) -> String {
    let run = run_native(Path::new("id"), &[flag]).unwrap_or_else(|e| panic!("{e}"));
    assert_ok(&run);
    run.stdout.trim().to_string()
}

#[test]
fn cat_proc_self_status_shows_the_sandbox_pid_and_uid() {
    let run = sandboxed("cat", &["/proc/self/status"]);
    assert_ok(&run);
    let out = &run.stdout;
    assert_eq!(field(out, "Name"), Some("cat"), "{}", run.dump());
    // cat is the sandbox's first process.
    assert_eq!(field(out, "Pid"), Some("1"), "{}", run.dump());
    assert_eq!(field(out, "PPid"), Some("0"), "{}", run.dump());
    let uid = host_id("-u");
    let want = format!("{uid}\t{uid}\t{uid}\t{uid}");
    assert_eq!(field(out, "Uid"), Some(want.as_str()), "{}", run.dump());
}

#[test]
fn ls_proc_shows_only_sandbox_pids() {
    let run = sandboxed("ls", &["/proc"]);
    assert_ok(&run);
    assert_eq!(pids_in(&run.stdout), [1], "{}", run.dump());
    // A shell and a child of it: exactly those two.
    let run = sandboxed("/bin/sh", &["-c", "ls /proc; true"]);
    assert_ok(&run);
    assert_eq!(pids_in(&run.stdout), [1, 2], "{}", run.dump());
}

/// The PID column of a `ps` listing (the column headed `PID`).
fn ps_pids(out: &str) -> Vec<u32> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .unwrap_or_else(|| panic!("no PID column in {out}"));
    let mut pids: Vec<u32> = lines
        .filter_map(|l| l.split_whitespace().nth(col)?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

#[test]
fn busybox_ps_lists_only_sandbox_processes() {
    // busybox-static (scripts/deps.sh) installs /bin/busybox.
    let run = sandboxed(
        "/bin/busybox",
        &[
            "sh",
            "-c",
            "/bin/busybox sleep 30 & /bin/busybox ps; kill $!",
        ],
    );
    assert_ok(&run);
    let out = &run.stdout;
    assert_eq!(ps_pids(out), [1, 2, 3], "{}", run.dump());
    assert!(out.contains("sleep 30"), "{}", run.dump());
    assert!(out.contains("ps"), "{}", run.dump());
}

#[test]
fn procps_ps_aux_lists_only_sandbox_processes() {
    // procps (scripts/deps.sh) installs /usr/bin/ps.
    let run = sandboxed("/bin/sh", &["-c", "sleep 30 & ps aux; kill $!"]);
    assert_ok(&run);
    let out = &run.stdout;
    assert_eq!(ps_pids(out), [1, 2, 3], "{}", run.dump());
    // ps prints the user's name, cut to 7 characters and a `+` when longer.
    let user: String = host_id("-un").chars().take(7).collect();
    for line in out.lines().skip(1) {
        assert!(
            line.starts_with(&user),
            "not the sandbox's user: {line}\n{}",
            run.dump()
        );
    }
    assert!(out.contains("sleep 30"), "{}", run.dump());
    assert!(out.contains("ps aux"), "{}", run.dump());
}

#[test]
fn host_processes_cannot_be_named_in_proc() {
    // This test's own host pid, and the host's init.
    let me = std::process::id().to_string();
    let script = format!(
        "for p in {me} $(( {me} + 1 )); do test -e /proc/$p && echo seen:$p; done; \
         cat /proc/1/cmdline | tr '\\0' ' '"
    );
    let run = sandboxed("/bin/sh", &["-c", &script]);
    assert_ok(&run);
    assert!(
        !run.stdout.contains(&format!("seen:{me}")),
        "{}",
        run.dump()
    );
    assert!(!run.stdout.contains("seen:1"), "{}", run.dump());
    // pid 1 is the sandbox's own shell, never the host's init.
    assert!(run.stdout.starts_with("/bin/sh -c"), "{}", run.dump());
}

#[test]
fn proc_self_exe_is_the_sandbox_path_of_the_program() {
    let run = sandboxed("/usr/bin/readlink", &["/proc/self/exe"]);
    assert_ok(&run);
    assert_eq!(run.stdout, "/usr/bin/readlink\n", "{}", run.dump());
}

#[test]
fn hostname_written_through_proc_sys_stays_in_the_sandbox() {
    let host_before = run_native(Path::new("uname"), &["-n"]).unwrap_or_else(|e| panic!("{e}"));
    let run = sandboxed(
        "/bin/sh",
        &[
            "-c",
            "cat /proc/sys/kernel/hostname; \
             echo inside-name > /proc/sys/kernel/hostname && uname -n",
        ],
    );
    let mut lines = run.stdout.lines();
    // The sandbox's own name, never the host's.
    assert_eq!(lines.next(), Some("carapace"), "{}", run.dump());
    if host_id("-u") == "0" {
        assert_ok(&run);
        assert_eq!(lines.next(), Some("inside-name"), "{}", run.dump());
    } else {
        // Setting the host name takes privilege.
        assert_ne!(run.code(), Some(0), "{}", run.dump());
    }
    let host_after = run_native(Path::new("uname"), &["-n"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(host_after.stdout, host_before.stdout);
}

#[test]
fn a_non_root_user_reopens_its_own_stdio_through_proc() {
    if host_id("-u") != "0" {
        eprintln!("skipped: switching to another uid for the sandbox needs root");
        return;
    }
    let carapace = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(carapace)
        .args([
            "do",
            "/bin/sh",
            "-c",
            "echo to-stderr > /dev/stderr && grep ^Uid /proc/self/status && \
             cat /proc/1/environ > /dev/null && echo environ-ok",
        ])
        .current_dir("/");
    let run = tests::run(cmd, std::time::Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert_ok(&run);
    assert_eq!(run.stderr.trim(), "to-stderr", "{}", run.dump());
    assert!(
        run.stdout.starts_with("Uid:\t65534\t65534\t65534\t65534\n"),
        "{}",
        run.dump()
    );
    // Its own process's environment is readable to it.
    assert!(run.stdout.contains("environ-ok"), "{}", run.dump());
}

#[test]
fn another_users_environ_and_fds_are_refused() {
    // pid 1 runs as the host's uid; its child drops to nobody and looks at pid 1.
    let script = "
import os
pid = os.fork()
if pid == 0:
    os.setgid(65534); os.setuid(65534)
    for f in ('/proc/1/environ', '/proc/1/fd', '/proc/self/environ'):
        try:
            if f.endswith('fd'):
                os.listdir(f)
            else:
                open(f, 'rb').close()
            print(f, 'ok')
        except OSError as e:
            print(f, e.strerror)
    os._exit(0)
os.waitpid(pid, 0)
";
    if host_id("-u") != "0" {
        eprintln!("skipped: dropping to another uid inside the sandbox needs root");
        return;
    }
    let run = sandboxed("/usr/bin/python3", &["-c", script]);
    assert_ok(&run);
    assert_eq!(
        run.stdout,
        "/proc/1/environ Permission denied\n/proc/1/fd Permission denied\n\
         /proc/self/environ ok\n",
        "{}",
        run.dump()
    );
}

#[test]
fn cpu_counts_agree_inside_the_sandbox() {
    // sched_getaffinity (nproc), /sys/devices/system/cpu/online (getconf) and
    // /proc/cpuinfo must tell the same story.
    let run = sandboxed(
        "/bin/sh",
        &[
            "-c",
            "nproc; getconf _NPROCESSORS_ONLN; grep -c ^processor /proc/cpuinfo",
        ],
    );
    assert_ok(&run);
    let counts: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(counts.len(), 3, "{}", run.dump());
    assert!(counts.iter().all(|c| *c == counts[0]), "{}", run.dump());
}
