//! Running host commands with a deadline, and measuring the memory of process trees.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, SigSet, Signal};
use nix::unistd::Pid;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Turns SIGINT, SIGTERM and SIGHUP into a flag, so that a benchmark stopped with ^C still
/// kills its current run and deletes its containers and temporary directories. Call before
/// starting any thread (the mask is inherited; spawned commands get an empty one from std).
pub fn catch_interrupts() {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    if set.thread_block().is_ok() {
        thread::spawn(move || {
            if set.wait().is_ok() {
                INTERRUPTED.store(true, Ordering::SeqCst);
                eprintln!("interrupted: stopping the current run and cleaning up…");
            }
        });
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// What a finished command did.
#[derive(Debug)]
pub struct Captured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// From just before spawning to the moment `wait` returned.
    pub wall: Duration,
}

impl Captured {
    /// `Ok` for exit status 0, otherwise the reason: the last line the command wrote to
    /// stderr (where the workload programs and runtimes explain themselves) or the status.
    pub fn success(self) -> Result<Captured, String> {
        if self.status.success() {
            return Ok(self);
        }
        Err(failure_reason(&self.stderr, &self.status.to_string()))
    }
}

/// The last non-empty stderr line, shortened, or `fallback` when there is none. A last
/// line that names no cause (no `what: why`, like gcc's "compilation terminated.") gets the
/// line before it, which does.
pub fn failure_reason(stderr: &str, fallback: &str) -> String {
    let mut lines = stderr
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let text = match (lines.next(), lines.next()) {
        (Some(last), Some(before)) if !last.contains(':') => format!("{before} {last}"),
        (Some(last), _) => last.to_string(),
        (None, _) => fallback.to_string(),
    };
    shorten(&text, 110)
}

/// At most `max` characters, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

fn read_all(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        // A read error just ends the capture; what was read so far is kept.
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `cmd` in its own process group with stdout and stderr piped (runsc needs a pipe:
/// its stdout to a file starts at offset 0) and stdin empty. Past `timeout` the whole group
/// is killed and the run is an error.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Captured, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let pid = child.id();
    let out = child.stdout.take().map(read_all);
    let err = child.stderr.take().map(read_all);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, start.elapsed()));
    });
    let deadline = start + timeout;
    let (status, wall, stopped) = loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((status, wall)) => break (status, wall, None),
            Err(RecvTimeoutError::Timeout) if interrupted() || Instant::now() >= deadline => {
                kill_group(pid);
                let why = if interrupted() {
                    "interrupted".to_string()
                } else {
                    format!("timed out after {} s", timeout.as_secs())
                };
                match rx.recv() {
                    Ok((status, wall)) => break (status, wall, Some(why)),
                    Err(_) => return Err(format!("{program}: lost track of the process")),
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("{program}: lost track of the process"))
            }
        }
    };
    // Anything the group left behind holding the pipes must not keep us waiting.
    kill_group(pid);
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    if let Some(why) = stopped {
        return Err(why);
    }
    let status = status.map_err(|e| format!("{program}: wait failed: {e}"))?;
    Ok(Captured {
        status,
        stdout,
        stderr,
        wall,
    })
}

/// SIGKILL to a process group we created; it may well be gone already.
pub fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// The parent pid from the text of `/proc/PID/stat` (the field after the `)` that ends the
/// command name, which may itself contain spaces and parentheses).
pub fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    fields.next()?; // state
    fields.next()?.parse().ok()
}

/// The `Pss:` line of `/proc/PID/smaps_rollup`, in KiB.
pub fn parse_pss_kib(smaps_rollup: &str) -> Option<u64> {
    smaps_rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Every live process as (pid, ppid, command line with NULs as spaces).
pub fn processes() -> Vec<(u32, u32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = parse_ppid(&stat)?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            Some((pid, ppid, cmdline))
        })
        .collect()
}

/// `roots` and all their descendants, from a snapshot of (pid, ppid) pairs.
pub fn with_descendants(roots: &[u32], procs: &[(u32, u32)]) -> Vec<u32> {
    let mut set: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < set.len() {
        let parent = set[i];
        for &(pid, ppid) in procs {
            if ppid == parent && !set.contains(&pid) {
                set.push(pid);
            }
        }
        i += 1;
    }
    set
}

/// Sum of PSS over `roots` and their descendants, in KiB.
pub fn tree_pss_kib(roots: &[u32]) -> Result<u64, String> {
    let procs: Vec<(u32, u32)> = processes().into_iter().map(|(p, pp, _)| (p, pp)).collect();
    let pids = with_descendants(roots, &procs);
    let mut total = 0;
    for pid in &pids {
        let text = match std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            Ok(text) => text,
            // Gone since the listing (a short-lived helper): it holds no memory now.
            Err(_) if !Path::new(&format!("/proc/{pid}")).exists() => continue,
            Err(e) => return Err(format!("cannot read /proc/{pid}/smaps_rollup: {e}")),
        };
        total += parse_pss_kib(&text).ok_or_else(|| format!("no Pss in pid {pid}'s smaps"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        assert_eq!(parse_ppid("42 (a (b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_ppid("garbage"), None);
        let rollup = "00400000-7fff [rollup]\nRss: 5000 kB\nPss: 1234 kB\nPss_Dirty: 3 kB\n";
        assert_eq!(parse_pss_kib(rollup), Some(1234));
        let tree = [(2, 1), (3, 2), (4, 3), (5, 1)];
        let mut d = with_descendants(&[2], &tree);
        d.sort();
        assert_eq!(d, [2, 3, 4]);
    }

    #[test]
    fn reasons_are_the_last_stderr_line() {
        assert_eq!(
            failure_reason("x\nfork: No such\n\n", "exit 1"),
            "fork: No such"
        );
        assert_eq!(failure_reason("", "exit status: 1"), "exit status: 1");
        assert_eq!(
            failure_reason("gcc: fatal error: cannot execute 'cc1'\nterminated.\n", "x"),
            "gcc: fatal error: cannot execute 'cc1' terminated."
        );
        assert_eq!(shorten("abcdef", 4), "abc…");
    }

    #[test]
    fn runs_and_times_out() {
        let c = run(Command::new("/bin/echo").arg("hi"), Duration::from_secs(10)).unwrap();
        assert_eq!(c.stdout, "hi\n");
        let e = run(
            Command::new("/bin/sleep").arg("10"),
            Duration::from_millis(100),
        );
        assert!(e.unwrap_err().contains("timed out"));
        assert!(run(&mut Command::new("/nonexistent"), Duration::from_secs(1)).is_err());
    }
}
