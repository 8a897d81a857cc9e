//! A container's record under `--root`: `<root>/<id>/state.json` (written by `create`,
//! read by every later command), `control.sock` (the sentry's control socket), and the
//! status as `state` reports it, worked out from the host processes and the sentry.

use anyhow::{bail, Context};
use sentry::control::{Phase, Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The OCI runtime-spec version `state` reports.
pub const OCI_VERSION: &str = "1.0.2";

/// What `create` records about a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, as runc prints it.
    pub created: String,
    pub owner_uid: u32,
    pub annotations: BTreeMap<String, String>,
    pub oci_version: String,
    /// The `carapace boot` process: the pid of `state` and `--pid-file`.
    pub pid: HostProcess,
    pub gofer: HostProcess,
}

/// A host process, named by pid and start time so that a recycled pid is not mistaken
/// for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostProcess {
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot).
    pub start_time: u64,
}

impl HostProcess {
    pub fn of(pid: i32) -> anyhow::Result<HostProcess> {
        let (start_time, _) = stat(pid).with_context(|| format!("process {pid} is gone"))?;
        Ok(HostProcess { pid, start_time })
    }

    /// Still running (a zombie has finished).
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((t, state)) if t == self.start_time && state != 'Z' && state != 'X')
    }

    /// SIGKILL it if it is still the process we started.
    pub fn kill(&self) {
        if self.alive() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Wait (up to ten seconds) until it has finished; the processes of this runtime die
    /// quickly after SIGKILL, the bound only keeps a wedged one from hanging the CLI.
    pub fn wait_gone(&self) -> bool {
        for _ in 0..1000 {
            if !self.alive() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }
}

/// Start time and state letter from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(u64, char)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything: parse after the last ')'.
    let rest = text.get(text.rfind(')')?.checked_add(1)?..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `state` is field 3; start time is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// The state directory of all containers (`--root`).
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(dir: PathBuf) -> Root {
        Root { dir }
    }

    /// The directory of container `id`, after checking that `id` is a plain name.
    pub fn container_dir(&self, id: &str) -> anyhow::Result<PathBuf> {
        check_id(id)?;
        Ok(self.dir.join(id))
    }

    /// Load container `id`, or fail with runc's message.
    pub fn load(&self, id: &str) -> anyhow::Result<Container> {
        let dir = self.container_dir(id)?;
        let text = match std::fs::read(dir.join("state.json")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(NotExist(id.to_string()).into())
            }
            Err(e) => return Err(e).context(format!("cannot read the state of {id}")),
        };
        let saved: Saved = serde_json::from_slice(&text)
            .with_context(|| format!("{}: corrupt state", dir.join("state.json").display()))?;
        Ok(Container { dir, saved })
    }

    /// Every container with a state file, by id.
    pub fn list(&self) -> anyhow::Result<Vec<Container>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context(format!("cannot list {}", self.dir.display())),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            if let Some(id) = e.file_name().to_str() {
                if let Ok(c) = self.load(id) {
                    out.push(c);
                }
            }
        }
        out.sort_by(|a, b| a.saved.id.cmp(&b.saved.id));
        Ok(out)
    }
}

/// No container of that id (runc's message).
#[derive(Debug)]
pub struct NotExist(pub String);

impl std::fmt::Display for NotExist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container {} does not exist", self.0)
    }
}

impl std::error::Error for NotExist {}

/// runc's rule for container ids: letters, digits, `_ + - .`, and not `.` or `..`.
pub fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if !ok {
        bail!("invalid container ID format: {id:?}");
    }
    Ok(())
}

/// The status words of the OCI runtime spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    /// Running, with its host processes frozen (`pause`).
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// A loaded container record.
pub struct Container {
    pub dir: PathBuf,
    pub saved: Saved,
}

/// runc's `state` output (and one element of `list --format json`), fields in its order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateJson {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub owner: String,
}

impl Container {
    pub fn control_path(&self) -> PathBuf {
        self.dir.join("control.sock")
    }

    /// Ask the sentry; an error means it did not answer.
    pub fn request(&self, req: &Request) -> anyhow::Result<Response> {
        request(&self.control_path(), req)
    }

    /// Where the container is: stopped once its boot process has gone, otherwise what the
    /// sentry says.
    pub fn status(&self) -> Status {
        if !self.saved.pid.alive() {
            return Status::Stopped;
        }
        // A frozen sentry cannot answer: ask the cgroup first.
        if self.cgroup().is_some_and(|cg| cg.is_frozen()) {
            return Status::Paused;
        }
        match self.request(&Request::State) {
            Ok(Response::State {
                phase: Phase::Created,
            }) => Status::Created,
            Ok(Response::State {
                phase: Phase::Stopped,
            }) => Status::Stopped,
            Ok(_) => Status::Running,
            // No answer: either busy, or the sentry has just ended and `boot` is about to
            // end the same way (it only mirrors the sentry's exit). Give it a moment.
            Err(_) => {
                for _ in 0..50 {
                    if !self.saved.pid.alive() {
                        return Status::Stopped;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Status::Running
            }
        }
    }

    pub fn state_json(&self) -> StateJson {
        let status = self.status();
        let s = &self.saved;
        StateJson {
            oci_version: s.oci_version.clone(),
            id: s.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                s.pid.pid
            },
            status: status.as_str().into(),
            bundle: s.bundle.clone(),
            rootfs: s.rootfs.clone(),
            created: s.created.clone(),
            annotations: s.annotations.clone(),
            owner: user_name(s.owner_uid),
        }
    }

    /// The container's cgroup, if `create` made one.
    pub fn cgroup(&self) -> Option<crate::cgroups::Cgroup> {
        crate::cgroups::Cgroup::load(&self.dir.join("cgroup"))
    }

    /// Kill whatever host processes are left and remove the state directory.
    pub fn destroy(&self) -> anyhow::Result<()> {
        // Frozen processes would not die of SIGKILL.
        if let Some(cg) = self.cgroup().filter(|cg| cg.is_frozen()) {
            cg.freeze(false)?;
        }
        let hooks = crate::hooks::load(&self.dir);
        destroy(&self.dir, &[self.saved.pid, self.saved.gofer])?;
        if let Some(h) = hooks {
            let st = crate::hooks::state(&self.saved, "stopped", 0);
            crate::hooks::run_warn(&h, crate::hooks::Point::Poststop, &st);
        }
        Ok(())
    }
}

/// SIGKILL `procs`, wait for them, remove `dir`.
pub fn destroy(dir: &Path, procs: &[HostProcess]) -> anyhow::Result<()> {
    for p in procs {
        p.kill();
    }
    for p in procs {
        if !p.wait_gone() {
            bail!("process {} did not die after SIGKILL", p.pid);
        }
    }
    // The sandbox's cgroup goes with it (its last stubs die with the sentry).
    if let Some(cg) = crate::cgroups::Cgroup::load(&dir.join("cgroup")) {
        cg.remove();
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context(format!("cannot remove {}", dir.display())),
    }
}

/// One request over the control socket at `path`.
pub fn request(path: &Path, req: &Request) -> anyhow::Result<Response> {
    let mut s = UnixStream::connect(path)
        .with_context(|| format!("cannot reach the sandbox at {}", path.display()))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line).context("control socket: write")?;
    let mut answer = String::new();
    BufReader::new(s)
        .read_line(&mut answer)
        .context("control socket: read")?;
    if answer.is_empty() {
        bail!("the sandbox closed the control socket without answering");
    }
    serde_json::from_str(&answer).context("control socket: bad answer")
}

/// The name of `uid` from `/etc/passwd`, or `#uid` as runc shows an unknown one.
pub fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id: u32 = f.nth(1)?.parse().ok()?;
            (id == uid).then(|| name.to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// `t` as Go's RFC 3339 with nanoseconds in UTC (`2006-01-02T15:04:05.999999999Z`):
/// trailing zeros of the fraction dropped, as runc prints `created`.
pub fn rfc3339_nano(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, day) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's civil_from_days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(check_id("abc-1_2.x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_795_768_496, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2026-11-27T08:34:56.12Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_nano(leap), "2000-02-29T00:00:00Z");
    }
}
