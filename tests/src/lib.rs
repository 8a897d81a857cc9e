//! Helpers shared by the integration tests: finding (and building) the `carapace` binary,
//! compiling C test programs with `gcc -static`, running a program natively or under
//! `carapace do` with a timeout, and reading the suite's result line and manifest.
//!
//! Everything returns `Result<_, String>` with a message meant for a test report, so a
//! missing compiler or a sandbox that cannot start fails a test with a readable reason
//! instead of a panic deep in a helper.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long one program may run, natively or sandboxed, before it is killed.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The `tests` crate's directory.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root (where `cargo build -p runtime-shim` is run).
pub fn workspace_dir() -> &'static Path {
    crate_dir().parent().unwrap_or(Path::new("/"))
}

/// `tests/syscalls/`: the C programs, `check.h` and `manifest.txt`.
pub fn syscalls_dir() -> PathBuf {
    crate_dir().join("syscalls")
}

/// The profile directory the running test executable was built into (`target/debug`,
/// `target/release`, …): test executables live in `<profile dir>/deps/`.
pub fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("cannot find the profile directory above {}", exe.display()))
}

/// Where compiled C programs go: `<profile dir>/carapace-c-tests/`, unless the checkout
/// lives under `/tmp`. `carapace do` gives the sandbox its own empty tmpfs at `/tmp`, so
/// programs there cannot be seen from inside; then `/var/tmp/carapace-c-tests-<hash>/`,
/// one per checkout.
pub fn c_build_dir() -> Result<PathBuf, String> {
    let profile = profile_dir()?;
    let dir = if profile.starts_with("/tmp") {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        profile.hash(&mut h);
        PathBuf::from(format!("/var/tmp/carapace-c-tests-{:016x}", h.finish()))
    } else {
        profile.join("carapace-c-tests")
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The `carapace` binary of the same profile as the running tests.
///
/// `CARAPACE_BIN` overrides the path. Otherwise `cargo build -p runtime-shim` is run once
/// per test process with the same profile and target directory: a no-op when the binary
/// is up to date, and it keeps a stale binary from being tested after a sentry change.
pub fn carapace() -> Result<PathBuf, String> {
    static CARAPACE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CARAPACE.get_or_init(find_or_build_carapace).clone()
}

fn find_or_build_carapace() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CARAPACE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let profile_dir = profile_dir()?;
    let target_dir = profile_dir
        .parent()
        .ok_or("the profile directory has no parent")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(name) => name.to_string(),
        None => return Err("the profile directory has no name".into()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "runtime-shim",
            "--bin",
            "carapace",
        ])
        .arg("--profile")
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace_dir())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo to build carapace: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p runtime-shim failed ({}):\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 30)
        ));
    }
    let bin = profile_dir.join("carapace");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} is missing after a successful build",
            bin.display()
        ))
    }
}

/// Compiles one C file with `gcc -static -O1 -Wall -Werror` (with `tests/syscalls/` on
/// the include path, for `check.h` and `child.h`) into `out`. Skipped when `out` is newer
/// than the source and every header in `tests/syscalls/`. The output is written under a
/// temporary name and renamed, so concurrent test processes never run a half-written
/// binary.
pub fn compile_c(src: &Path, out: &Path) -> Result<(), String> {
    let headers: Vec<PathBuf> = std::fs::read_dir(syscalls_dir())
        .map_err(|e| format!("cannot list {}: {e}", syscalls_dir().display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "h"))
        .collect();
    let mut inputs: Vec<&Path> = vec![src];
    inputs.extend(headers.iter().map(PathBuf::as_path));
    if is_newer(out, &inputs) {
        return Ok(());
    }
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let result = Command::new("gcc")
        .args(["-static", "-O1", "-Wall", "-Werror", "-I"])
        .arg(syscalls_dir())
        .arg("-o")
        .arg(&tmp)
        .arg(src)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run gcc (is build-essential installed?): {e}"))?;
    if !result.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "gcc failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    std::fs::rename(&tmp, out).map_err(|e| format!("rename to {}: {e}", out.display()))
}

/// Writes `source` to `<c build dir>/<name>.c` (if it changed) and compiles it to
/// `<c build dir>/<name>`, returning the binary's path.
pub fn compile_snippet(name: &str, source: &str) -> Result<PathBuf, String> {
    let dir = c_build_dir()?;
    let src = dir.join(format!("{name}.c"));
    if std::fs::read_to_string(&src).ok().as_deref() != Some(source) {
        std::fs::write(&src, source).map_err(|e| format!("write {}: {e}", src.display()))?;
    }
    let bin = dir.join(name);
    compile_c(&src, &bin)?;
    Ok(bin)
}

fn is_newer(out: &Path, inputs: &[&Path]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(out_time) = modified(out) else {
        return false;
    };
    inputs
        .iter()
        .all(|input| modified(input).is_some_and(|t| t < out_time))
}

/// What a finished (or killed) run produced.
#[derive(Debug)]
pub struct Run {
    /// What was run, for messages.
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Run {
    /// The exit code, or None if a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// "exit status 3", "killed by signal 9", "timed out after 60 s".
    pub fn describe_status(&self) -> String {
        if self.timed_out {
            format!("timed out after {} s and was killed", RUN_TIMEOUT.as_secs())
        } else if let Some(code) = self.status.code() {
            format!("exit status {code}")
        } else {
            format!("killed by signal {}", self.status.signal().unwrap_or(0))
        }
    }

    /// A block for failure messages: the command, its status, and the end of its output.
    pub fn dump(&self) -> String {
        format!(
            "$ {}\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.describe_status(),
            tail(&self.stdout, 40),
            tail(&self.stderr, 40)
        )
    }
}

/// Runs `cmd` with stdin from /dev/null, collecting stdout and stderr, and kills it (its
/// whole process group, so a sandbox's helpers die too) if it runs longer than `timeout`.
pub fn run(mut cmd: Command, timeout: Duration) -> Result<Run, String> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let (status, timed_out) = wait_or_kill(&mut child, timeout)?;
    let (stdout, stderr) = (stdout.finish(), stderr.finish());
    Ok(Run {
        what,
        status,
        stdout,
        stderr,
        timed_out,
        elapsed: start.elapsed(),
    })
}

fn wait_or_kill(child: &mut Child, timeout: Duration) -> Result<(ExitStatus, bool), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            kill_process_group(child);
            let status = child.wait().map_err(|e| format!("wait: {e}"))?;
            return Ok((status, true));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILLs the process group `run` created for the child (`process_group(0)`), so that
/// helpers a sandbox started die with it. Done through kill(1), which takes a negative pid
/// for a group, to stay within std (no `unsafe`, no extra dependency) on this rare path.
fn kill_process_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = child.kill();
    }
}

/// A pipe drained by a thread into a shared buffer, so that output written before a kill
/// is kept even if an escaped grandchild holds the pipe open forever.
struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> Collector {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let sink = Arc::clone(&buf);
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                if let Ok(mut b) = sink.lock() {
                    b.extend_from_slice(&chunk[..n]);
                }
            }
        }
        let _ = tx.send(());
    });
    Collector { buf, done }
}

impl Collector {
    fn finish(self) -> String {
        let _ = self.done.recv_timeout(Duration::from_secs(5));
        let bytes = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Runs `program args…` natively.
pub fn run_native(program: &Path, args: &[&str]) -> Result<Run, String> {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir("/");
    run(cmd, RUN_TIMEOUT)
}

/// Runs `carapace do [flags…] program args…`, on the platform `CARAPACE_PLATFORM` names
/// if it is set (flags may still choose another).
pub fn run_sandboxed(flags: &[&str], program: &Path, args: &[&str]) -> Result<Run, String> {
    let mut cmd = Command::new(carapace()?);
    cmd.arg("do");
    let chosen = flags.iter().any(|f| f.starts_with("--platform"));
    if let Some(p) = std::env::var_os("CARAPACE_PLATFORM").filter(|_| !chosen) {
        let mut flag = std::ffi::OsString::from("--platform=");
        flag.push(p);
        cmd.arg(flag);
    }
    cmd.args(flags).arg(program).args(args).current_dir("/");
    run(cmd, RUN_TIMEOUT)
}

/// The last `N passed, N failed` line of a test program's output.
pub fn parse_summary(stdout: &str) -> Option<(u32, u32)> {
    stdout.lines().rev().find_map(|line| {
        let (passed, failed) = line.trim_end().split_once(" passed, ")?;
        let failed = failed.strip_suffix(" failed")?;
        Some((passed.parse().ok()?, failed.parse().ok()?))
    })
}

/// `tests/syscalls/manifest.txt`: programs expected to fail in the sandbox, with why.
///
/// One entry per line: the program's file name, whitespace, the reason. Blank lines and
/// lines starting with `#` are ignored.
pub fn parse_manifest(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut entries = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, reason) = line
            .split_once(char::is_whitespace)
            .map(|(n, r)| (n, r.trim()))
            .unwrap_or((line, ""));
        if reason.is_empty() {
            return Err(format!("manifest.txt:{}: `{name}` has no reason", i + 1));
        }
        if entries
            .insert(name.to_string(), reason.to_string())
            .is_some()
        {
            return Err(format!("manifest.txt:{}: `{name}` is listed twice", i + 1));
        }
    }
    Ok(entries)
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    let mut out = lines[start..].join("\n");
    if start > 0 {
        out.insert_str(0, &format!("[… {start} earlier lines]\n"));
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn summary_is_the_last_matching_line() {
        let out = "x.c:3: CHECK(a): false (errno 0)\n1 passed, 2 failed\n12 passed, 1 failed\n";
        assert_eq!(parse_summary(out), Some((12, 1)));
        assert_eq!(parse_summary("no result\n"), None);
        assert_eq!(parse_summary("3 passed, x failed\n"), None);
    }

    #[test]
    fn manifest_lines_are_name_and_reason() {
        let m = parse_manifest("# comment\n\nmm.c  mremap is not implemented yet\n").unwrap();
        assert_eq!(
            m.get("mm.c").map(String::as_str),
            Some("mremap is not implemented yet")
        );
        assert!(parse_manifest("mm.c\n").is_err());
        assert!(parse_manifest("mm.c a\nmm.c b\n").is_err());
    }

    #[test]
    fn run_reports_status_output_and_timeout() {
        let mut sh = Command::new("/bin/sh");
        sh.args(["-c", "echo out; echo err >&2; exit 3"]);
        let r = run(sh, RUN_TIMEOUT).unwrap();
        assert_eq!(
            (r.code(), r.stdout.as_str(), r.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );

        let mut sleeper = Command::new("/bin/sh");
        sleeper.args(["-c", "echo started; sleep 30"]);
        let r = run(sleeper, Duration::from_millis(300)).unwrap();
        assert!(r.timed_out);
        assert_eq!(r.stdout, "started\n");
        assert!(
            r.elapsed < Duration::from_secs(10),
            "the kill took {:?}",
            r.elapsed
        );
    }
}
