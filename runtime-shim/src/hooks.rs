//! OCI hooks (runtime-spec config.md, "POSIX-platform Hooks"): programs the runtime runs at
//! points of the container's lifecycle, each with the container's state JSON on its
//! standard input.
//!
//! Where they run, as runc runs them:
//! - `prestart` (deprecated), `createRuntime`, `createContainer`: during `create`, once the
//!   sandbox is set up and before `create` returns (state `creating`). A failure fails
//!   `create`, which then undoes everything and runs the `poststop` hooks (as runc's
//!   clean-up does for any failed `create`).
//! - `startContainer`: during `start`, before the user's program runs (state `created`).
//!   A failure fails `start` and stops the container.
//! - `poststart`: after the user's program started, before `start` returns (state
//!   `running`); a failure is a warning.
//! - `poststop`: when `delete` has removed the container (state `stopped`); a failure is
//!   a warning.
//!
//! All of them run on the host, in the runtime's namespaces: the container's namespaces
//! are the sentry's own, with nothing in them a host program could enter.
//!
//! The hooks are checked when the bundle is read and saved in `<root>/<id>/hooks.json`
//! at `create`, so that `start` and `delete` run what `create` saw.

use anyhow::{bail, Context};
use oci_spec::runtime::{Hook, Hooks};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The name of the saved hooks in a container's state directory.
pub const SAVED: &str = "hooks.json";

/// The lifecycle points, in the spec's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Point {
    pub fn name(self) -> &'static str {
        match self {
            Point::Prestart => "prestart",
            Point::CreateRuntime => "createRuntime",
            Point::CreateContainer => "createContainer",
            Point::StartContainer => "startContainer",
            Point::Poststart => "poststart",
            Point::Poststop => "poststop",
        }
    }

    fn of(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            #[allow(deprecated)]
            Point::Prestart => hooks.prestart(),
            Point::CreateRuntime => hooks.create_runtime(),
            Point::CreateContainer => hooks.create_container(),
            Point::StartContainer => hooks.start_container(),
            Point::Poststart => hooks.poststart(),
            Point::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }

    const ALL: [Point; 6] = [
        Point::Prestart,
        Point::CreateRuntime,
        Point::CreateContainer,
        Point::StartContainer,
        Point::Poststart,
        Point::Poststop,
    ];
}

/// Check the spec's hooks: absolute paths, positive timeouts, `KEY=VALUE` environments.
pub fn check(hooks: &Hooks) -> anyhow::Result<()> {
    for p in Point::ALL {
        for (i, h) in p.of(hooks).iter().enumerate() {
            let field = format!("hooks.{}[{i}]", p.name());
            if !h.path().is_absolute() {
                bail!("{field}.path {}: not an absolute path", h.path().display());
            }
            if let Some(t) = h.timeout() {
                if t <= 0 {
                    bail!("{field}.timeout {t}: must be greater than zero");
                }
            }
            for (j, e) in h.env().iter().flatten().enumerate() {
                if !e.contains('=') {
                    bail!("{field}.env[{j}] {e:?}: expected KEY=VALUE");
                }
            }
        }
    }
    Ok(())
}

/// Whether any hook is set at all.
pub fn any(hooks: &Hooks) -> bool {
    Point::ALL.iter().any(|p| !p.of(hooks).is_empty())
}

/// Save `hooks` in the state directory `dir` (nothing when there are none).
pub fn save(dir: &Path, hooks: &Hooks) -> anyhow::Result<()> {
    if !any(hooks) {
        return Ok(());
    }
    let path = dir.join(SAVED);
    std::fs::write(&path, serde_json::to_vec(hooks)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The hooks `create` saved in `dir`, if any.
pub fn load(dir: &Path) -> Option<Hooks> {
    let text = std::fs::read(dir.join(SAVED)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!("{}: {e}: hooks not run", dir.join(SAVED).display());
            None
        }
    }
}

/// Run the hooks of `point` in order with `state` (the state JSON) on their standard
/// input; the first failure stops the rest and is returned.
pub fn run(hooks: &Hooks, point: Point, state: &[u8]) -> anyhow::Result<()> {
    for (i, h) in point.of(hooks).iter().enumerate() {
        run_one(h, state).with_context(|| {
            format!(
                "error running {} hook #{i} ({})",
                point.name(),
                h.path().display()
            )
        })?;
    }
    Ok(())
}

/// Run the hooks of `point` where a failure is only a warning (poststart, poststop):
/// every hook runs.
pub fn run_warn(hooks: &Hooks, point: Point, state: &[u8]) {
    for (i, h) in point.of(hooks).iter().enumerate() {
        if let Err(e) = run_one(h, state) {
            tracing::warn!(
                "{} hook #{i} ({}) failed: {e:#}",
                point.name(),
                h.path().display()
            );
        }
    }
}

/// How long a hook without a timeout may run: runc has no limit; this only keeps a
/// wedged hook from holding the CLI forever.
const NO_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Run one hook: `path` with `args` (whose first is `argv[0]`) and exactly `env`, the
/// state on stdin, its output captured for the error message. A hook past its timeout is
/// killed with its process group.
fn run_one(h: &Hook, state: &[u8]) -> anyhow::Result<()> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear();
    for e in h.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that a timeout kills whatever it started too.
        .process_group(0);
    let mut child = cmd.spawn().context("cannot start it")?;
    if let Some(mut stdin) = child.stdin.take() {
        let state = state.to_vec();
        // A hook need not read its stdin: a full pipe or EPIPE is not an error.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&state);
        });
    }
    let collect = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut r) = r {
                let _ = r.by_ref().take(64 * 1024).read_to_end(&mut out);
            }
            String::from_utf8_lossy(&out).trim_end().to_string()
        })
    };
    let stdout = collect(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = collect(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let timeout = h
        .timeout()
        .and_then(|t| u64::try_from(t).ok())
        .map_or(NO_TIMEOUT, Duration::from_secs);
    let deadline = Instant::now().checked_add(timeout);
    let status = loop {
        if let Some(s) = child.try_wait().context("waiting for it")? {
            break s;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            bail!("hook ran past specified timeout of {}s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if !status.success() {
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        bail!("{status}, stdout: {out}, stderr: {err}");
    }
    Ok(())
}

/// `create`, once the sandbox reports it is set up: save the hooks for `start` and
/// `delete`, then run `prestart`, `createRuntime` and `createContainer` (state
/// `creating`). An error fails `create`, whose caller undoes everything.
pub fn created(dir: &Path, hooks: &Hooks, saved: &crate::container::Saved) -> anyhow::Result<()> {
    if !any(hooks) {
        return Ok(());
    }
    save(dir, hooks)?;
    let st = state(saved, "creating", saved.pid.pid);
    for p in [
        Point::Prestart,
        Point::CreateRuntime,
        Point::CreateContainer,
    ] {
        run(hooks, p, &st)?;
    }
    Ok(())
}

/// A `create` that failed once the bundle was read, after undoing everything: as runc
/// (whose clean-up is its `delete`), the `poststop` hooks run, warnings on failure.
pub fn create_failed(b: &crate::bundle::Bundle, id: &str) {
    if Point::Poststop.of(&b.hooks).is_empty() {
        return;
    }
    let s = crate::container::StateJson {
        oci_version: b.oci_version.clone(),
        id: id.to_string(),
        pid: 0,
        status: "stopped".into(),
        bundle: b.dir.clone(),
        rootfs: b.rootfs.clone(),
        created: crate::container::rfc3339_nano(std::time::SystemTime::now()),
        annotations: b.annotations.clone(),
        owner: crate::container::user_name(nix::unistd::geteuid().as_raw()),
    };
    run_warn(
        &b.hooks,
        Point::Poststop,
        &serde_json::to_vec(&s).unwrap_or_default(),
    );
}

/// `start` (and `run`) of container `c`: `startContainer` hooks, then `start_it` (which
/// asks the sandbox to start), then `poststart` hooks. A failing `startContainer` hook
/// stops the container (its program never runs) and fails `start`.
pub fn start(
    c: &crate::container::Container,
    start_it: impl FnOnce() -> anyhow::Result<sentry::control::Response>,
) -> anyhow::Result<sentry::control::Response> {
    let Some(hooks) = load(&c.dir) else {
        return start_it();
    };
    if let Err(e) = run(
        &hooks,
        Point::StartContainer,
        &state(&c.saved, "created", c.saved.pid.pid),
    ) {
        let _ = c.request(&sentry::control::Request::Signal {
            signo: libc::SIGKILL,
            all: false,
        });
        return Err(e);
    }
    let r = start_it()?;
    if matches!(r, sentry::control::Response::Ok) {
        run_warn(
            &hooks,
            Point::Poststart,
            &state(&c.saved, "running", c.saved.pid.pid),
        );
    }
    Ok(r)
}

/// The state JSON a hook gets: runc's `state` fields with the given status and pid.
pub fn state(saved: &crate::container::Saved, status: &str, pid: i32) -> Vec<u8> {
    let s = crate::container::StateJson {
        oci_version: saved.oci_version.clone(),
        id: saved.id.clone(),
        pid,
        status: status.into(),
        bundle: saved.bundle.clone(),
        rootfs: saved.rootfs.clone(),
        created: saved.created.clone(),
        annotations: saved.annotations.clone(),
        owner: crate::container::user_name(saved.owner_uid),
    };
    serde_json::to_vec(&s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(v: serde_json::Value) -> Hooks {
        serde_json::from_value(v).expect("hooks")
    }

    #[test]
    fn checked() {
        assert!(check(&hooks(
            serde_json::json!({"poststop": [{"path": "/bin/true"}]})
        ))
        .is_ok());
        let e = check(&hooks(
            serde_json::json!({"createRuntime": [{"path": "true"}]}),
        ))
        .expect_err("relative");
        assert!(format!("{e}").contains("hooks.createRuntime[0].path"));
        let e = check(&hooks(
            serde_json::json!({"poststart": [{"path": "/bin/true", "timeout": 0}]}),
        ))
        .expect_err("zero timeout");
        assert!(format!("{e}").contains("timeout"));
    }

    #[test]
    fn runs_with_state_args_env_and_timeout() {
        let dir = std::env::temp_dir().join(format!("carapace-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let out = dir.join("out");
        let h = hooks(serde_json::json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("echo \"$0 $X\" > {0}; cat >> {0}", out.display())],
            "env": ["X=y"],
        }]}));
        run(&h, Point::CreateRuntime, b"{\"state\":1}").expect("hook runs");
        let text = std::fs::read_to_string(&out).expect("output");
        assert_eq!(text, "sh y\n{\"state\":1}");

        let failing = hooks(serde_json::json!({"startContainer": [{
            "path": "/bin/sh", "args": ["sh", "-c", "echo oops >&2; exit 3"]}]}));
        let e = run(&failing, Point::StartContainer, b"{}").expect_err("fails");
        let e = format!("{e:#}");
        assert!(e.contains("startContainer") && e.contains("oops"), "{e}");

        let slow = hooks(serde_json::json!({"poststart": [{
            "path": "/bin/sleep", "args": ["sleep", "100"], "timeout": 1}]}));
        let e = run(&slow, Point::Poststart, b"{}").expect_err("times out");
        assert!(format!("{e:#}").contains("timeout"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
