//! The sandbox's own host processes are confined, and each confinement is shown to hold:
//!
//! - `probes`: `carapace confine-probe` confines itself exactly as a sentry or a gofer
//!   does, then tries one forbidden thing (open a host file, mount, make a namespace, open
//!   an internet socket, exec a shell, signal or trace a host process, chroot, setuid).
//!   Every attempt must fail: killed by SIGSYS (outside the seccomp allow-list) or refused
//!   with the errno the confinement implies.
//! - `live_sandbox`: while `carapace do` runs a program, the test looks at the sentry and
//!   the gofer from the host's /proc: seccomp filter on, no_new_privs, capabilities
//!   dropped, their own namespaces, the sentry's root an empty read-only directory, the
//!   gofer's tree read-only and `nodev` with none of the host's /proc in it.
//! - `killed_cli_leaves_nothing_running`: SIGKILL to `carapace do` ends its sentry, stubs
//!   and gofer too.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn carapace() -> PathBuf {
    tests::carapace().unwrap_or_else(|e| panic!("{e}"))
}

/// What a forbidden attempt must end in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refusal {
    /// Killed by SIGSYS: not on the allow-list.
    Killed,
    /// Refused by the host with this errno.
    Errno(i32),
}

const SIGSYS_STATUS: i32 = 128 + libc::SIGSYS;

fn probe(role: &str, root: &Path, attempt: &str) -> (Option<i32>, String) {
    let out = Command::new(carapace())
        .args(["confine-probe", "--role", role, "--root"])
        .arg(root)
        .arg(attempt)
        .stdin(Stdio::null())
        .output()
        .expect("run carapace confine-probe");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A probe killed directly (the gofer role: no intermediate parent) shows as a signal.
    let code = out
        .status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&out.status).map(|s| 128 + s));
    (code, text)
}

fn outcome(code: Option<i32>, text: &str) -> Option<Refusal> {
    if code == Some(SIGSYS_STATUS) {
        return Some(Refusal::Killed);
    }
    if code != Some(0) {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix("errno "))
        .and_then(|n| n.trim().parse().ok())
        .map(Refusal::Errno)
}

#[test]
fn probes() {
    use Refusal::{Errno, Killed};
    let served = tempdir("confine-probe-root");
    std::fs::create_dir_all(served.join("etc")).unwrap();
    let cases: &[(&str, &str, Refusal)] = &[
        // The sentry's root is an empty read-only tmpfs; opening is refused without
        // running (glibc itself opens files now and then, so open is an errno, not a kill).
        ("sentry", "open-host-file", Errno(libc::ENOENT)),
        ("sentry", "write-root", Errno(libc::ENOENT)),
        ("sentry", "mount-tmpfs", Killed),
        ("sentry", "unshare-user", Killed),
        ("sentry", "inet-socket", Killed),
        ("sentry", "packet-socket", Killed),
        // --network=host: inet sockets only, and nothing else is widened.
        ("sentry-hostnet", "packet-socket", Killed),
        ("sentry-hostnet", "mount-tmpfs", Killed),
        ("sentry-hostnet", "unshare-user", Killed),
        ("sentry-hostnet", "open-host-file", Errno(libc::ENOENT)),
        ("sentry", "exec-shell", Killed),
        // Its own pid namespace: no host process exists for it.
        ("sentry", "kill-host-init", Errno(libc::ESRCH)),
        // ptrace is the platform's tool, but pid 1 there is the sentry itself.
        ("sentry", "ptrace-attach", Errno(libc::EPERM)),
        ("sentry", "chroot", Killed),
        ("sentry", "setuid-root", Killed),
        // The gofer sees only the tree it serves (here an empty one), read-only.
        ("gofer", "open-host-file", Errno(libc::ENOENT)),
        ("gofer", "write-root", Errno(libc::EROFS)),
        ("gofer", "mount-tmpfs", Killed),
        ("gofer", "unshare-user", Killed),
        ("gofer", "inet-socket", Killed),
        ("gofer", "exec-shell", Killed),
        ("gofer", "kill-host-init", Killed),
        ("gofer", "ptrace-attach", Killed),
        ("gofer", "chroot", Killed),
        ("gofer", "setuid-root", Killed),
    ];
    let mut wrong = Vec::new();
    for &(role, attempt, want) in cases {
        let (code, text) = probe(role, &served, attempt);
        let got = outcome(code, &text);
        if got != Some(want) {
            wrong.push(format!(
                "{role} {attempt}: want {want:?}, got {got:?} (status {code:?})\n{text}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn tempdir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A process as the host's /proc shows it.
struct Proc {
    pid: i32,
    ppid: i32,
    comm: String,
    cmdline: String,
}

fn processes() -> Vec<Proc> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": the comm may hold spaces, so split after the ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) else {
            continue;
        };
        let comm = head
            .split_once('(')
            .map(|(_, c)| c.to_string())
            .unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        v.push(Proc {
            pid,
            ppid,
            comm,
            cmdline,
        });
    }
    v
}

fn status_field(pid: i32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

struct Sandbox(Child);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `carapace do /bin/sleep 30`; returns it and the pids of its sentry and gofer once
/// the application runs.
fn start_sandbox() -> (Sandbox, i32, i32) {
    let child = Command::new(carapace())
        .args(["do", "/bin/sleep", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start carapace do");
    let sandbox = Sandbox(child);
    let cli = sandbox.0.id() as i32;

    // The CLI's children, both forks of it: the gofer (named `carapace-gofer`) and the
    // sentry (which forked into its pid namespace).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let procs = processes();
        let kids: Vec<&Proc> = procs.iter().filter(|p| p.ppid == cli).collect();
        let gofer = kids.iter().find(|p| p.comm == "carapace-gofer");
        // The sentry has started the application once a stub is its child.
        let sentry = kids.iter().find(|k| {
            k.cmdline.contains(" do ")
                && k.comm != "carapace-gofer"
                && procs.iter().any(|p| p.ppid == k.pid)
        });
        if let (Some(s), Some(g)) = (sentry, gofer) {
            return (sandbox, s.pid, g.pid);
        }
        assert!(
            Instant::now() < deadline,
            "no sentry and gofer under carapace do (pid {cli})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` still runs (a zombie waiting for its reaper does not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

#[test]
fn live_sandbox() {
    let (sandbox, sentry, gofer) = start_sandbox();

    for (who, pid) in [("sentry", sentry), ("gofer", gofer)] {
        assert_eq!(
            status_field(pid, "Seccomp"),
            "2",
            "{who}: no seccomp filter"
        );
        assert_eq!(
            status_field(pid, "NoNewPrivs"),
            "1",
            "{who}: no_new_privs unset"
        );
        assert_eq!(
            status_field(pid, "CapBnd"),
            status_field(pid, "CapPrm"),
            "{who}"
        );
        for kind in ["mnt", "net", "ipc", "uts"] {
            assert_ne!(
                ns(&pid.to_string(), kind),
                ns("self", kind),
                "{who} shares the host's {kind} namespace"
            );
        }
    }
    // The sentry: no capabilities at all, its own pid namespace, and a root with nothing.
    assert_eq!(status_field(sentry, "CapEff"), "0000000000000000");
    assert_eq!(status_field(sentry, "CapBnd"), "0000000000000000");
    assert_ne!(ns(&sentry.to_string(), "pid"), ns("self", "pid"));
    assert_eq!(
        status_field(sentry, "NSpid").split_whitespace().last(),
        Some("1")
    );
    let root = PathBuf::from(format!("/proc/{sentry}/root"));
    let entries: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().collect();
    assert!(
        entries.is_empty(),
        "the sentry's root is not empty: {entries:?}"
    );
    let err = std::fs::write(root.join("x"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");

    // The gofer: only the capabilities of file serving (chown, dac_override,
    // dac_read_search, fowner, fsetid), and its tree read-only, nodev, without host /proc.
    assert_eq!(status_field(gofer, "CapEff"), "000000000000001f");
    let groot = PathBuf::from(format!("/proc/{gofer}/root"));
    assert!(
        groot.join("etc/passwd").exists(),
        "the gofer does not serve /"
    );
    let err = std::fs::write(groot.join("tmp/carapace-confine-probe"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    let err = std::fs::File::open(groot.join("dev/null")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EACCES),
        "device node opened: {err}"
    );
    assert!(
        !groot.join("proc/self").exists() && !groot.join("proc/1").exists(),
        "the host's /proc is visible to the gofer"
    );
    // The served tree is the host's root (same device and inode as our /etc).
    let host_etc = std::fs::metadata("/etc").unwrap();
    let served_etc = std::fs::metadata(groot.join("etc")).unwrap();
    assert_eq!(
        (host_etc.dev(), host_etc.ino()),
        (served_etc.dev(), served_etc.ino())
    );
    drop(sandbox);
}

/// Killing `carapace do` outright takes the whole sandbox with it: the sentry dies with its
/// parent, and the gofer, whose only link is its socket to the sentry, sees it hang up
/// (it would not, had it kept a copy of the sentry's end). Its standard input is
/// `/dev/null`, not the caller's.
#[test]
fn killed_cli_leaves_nothing_running() {
    let (mut sandbox, sentry, gofer) = start_sandbox();
    let stdin = std::fs::read_link(format!("/proc/{gofer}/fd/0")).unwrap();
    assert_eq!(stdin, Path::new("/dev/null"), "the gofer's standard input");
    let stubs: Vec<i32> = processes()
        .iter()
        .filter(|p| p.ppid == sentry)
        .map(|p| p.pid)
        .collect();
    sandbox.0.kill().unwrap();
    sandbox.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<i32> = [sentry, gofer]
            .into_iter()
            .chain(stubs.iter().copied())
            .filter(|&p| running(p))
            .collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            // Nothing of a failed run stays behind either.
            for &p in &left {
                let _ = Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
        }
        assert!(
            Instant::now() < deadline,
            "still running after carapace do was killed: {left:?} (sentry {sentry}, gofer {gofer})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
