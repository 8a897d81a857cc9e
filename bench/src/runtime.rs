//! The runtimes compared: the host itself, OCI runtimes driven through their CLI (runc,
//! runsc), and carapace on each of its platforms.
//!
//! Every operation returns `Err(reason)` instead of failing the harness; the reason is what
//! the table prints after `n/a`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use crate::bundle::{BundleMaker, TempDir};
use crate::exec::{self, Captured};

/// What a runtime can be asked to do with a command.
pub trait Runtime {
    fn name(&self) -> &str;

    /// `Ok` when it can run containers here, else why not.
    fn probe(&self) -> Result<(), String>;

    /// The tmpfs directory its containers write to.
    fn tmp_dir(&self) -> String {
        "/tmp".to_string()
    }

    /// Runs `argv` in a fresh sandbox to completion.
    fn run(&self, argv: &[String], timeout: Duration) -> Result<Captured, String>;

    /// Time of `create`, `start` and `delete` of a container running `argv`.
    fn create_start_delete(&self, argv: &[String], timeout: Duration) -> Result<Duration, String>;

    /// Starts `argv` (a long `sleep`), waits `settle`, and sums the PSS (KiB) of every host
    /// process that makes up the sandbox; then tears it down.
    fn idle_memory(&self, argv: &[String], settle: Duration) -> Result<u64, String>;
}

/// Spawns `cmd` in its own process group, measures the tree's PSS after `settle`, kills it.
/// The environment every workload runs with: the one `runc spec` and `runsc spec` give a
/// container. Native and `carapace do` runs would otherwise inherit the bench's own, and
/// under `cargo run` that has an `LD_LIBRARY_PATH` of four directories, which makes every
/// dynamic program probe a dozen missing paths before it finds libc.
const WORKLOAD_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("TERM", "xterm"),
];

/// `program args…` with [`WORKLOAD_ENV`] and nothing else in its environment.
fn workload_command(program: impl AsRef<std::ffi::OsStr>, args: &[String]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(WORKLOAD_ENV.iter().copied());
    cmd
}

fn spawned_tree_pss(cmd: &mut Command, settle: Duration) -> Result<u64, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    thread::sleep(settle);
    let result = match child.try_wait() {
        Ok(Some(status)) => Err(format!("exited early: {status}")),
        _ => exec::tree_pss_kib(&[child.id()]),
    };
    exec::kill_group(child.id());
    let _ = child.wait();
    result
}

/// The programs themselves, straight on the host.
pub struct Native {
    tmp: TempDir,
}

impl Native {
    pub fn new() -> Result<Native, String> {
        // A tmpfs like the containers' /tmp (the host's /tmp may be on disk).
        let base = Path::new("/dev/shm");
        let tmp = if base.is_dir() {
            TempDir::in_dir(base, "carapace-bench-native")?
        } else {
            TempDir::new("carapace-bench-native")?
        };
        Ok(Native { tmp })
    }
}

impl Runtime for Native {
    fn name(&self) -> &str {
        "native"
    }

    fn probe(&self) -> Result<(), String> {
        Ok(())
    }

    fn tmp_dir(&self) -> String {
        self.tmp.path().display().to_string()
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Result<Captured, String> {
        let (program, args) = argv.split_first().ok_or("empty command")?;
        exec::run(&mut workload_command(program, args), timeout)?.success()
    }

    fn create_start_delete(&self, _: &[String], _: Duration) -> Result<Duration, String> {
        Err("no container".to_string())
    }

    fn idle_memory(&self, argv: &[String], settle: Duration) -> Result<u64, String> {
        let (program, args) = argv.split_first().ok_or("empty command")?;
        spawned_tree_pss(&mut workload_command(program, args), settle)
    }
}

/// An OCI runtime used through runc's command-line surface, with a private state root.
pub struct OciCli {
    name: String,
    binary: String,
    /// Flags before the subcommand (runsc's `--platform`, `--network`).
    global: Vec<String>,
    state: Option<TempDir>,
    bundles: Result<BundleMaker, String>,
    next_id: AtomicU32,
}

impl OciCli {
    /// `visible` and `writable` host directories appear at the same paths inside.
    pub fn new(
        name: &str,
        binary: &str,
        global: &[&str],
        visible: &[&Path],
        writable: &[&Path],
    ) -> OciCli {
        let installed = which(binary).is_some();
        let (state, bundles) = if installed {
            (
                TempDir::new(&format!("carapace-bench-{name}-state")).ok(),
                BundleMaker::new(binary, visible, writable),
            )
        } else {
            (None, Err(String::new()))
        };
        OciCli {
            name: name.to_string(),
            binary: binary.to_string(),
            global: global.iter().map(|s| s.to_string()).collect(),
            state,
            bundles,
            next_id: AtomicU32::new(0),
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        if let Some(state) = &self.state {
            cmd.arg("--root").arg(state.path());
        }
        cmd.args(&self.global);
        cmd
    }

    fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("carapace-bench-{}-{n}", std::process::id())
    }

    fn bundle(&self, argv: &[String]) -> Result<PathBuf, String> {
        match &self.bundles {
            Ok(maker) => maker.bundle(argv),
            Err(e) => Err(e.clone()),
        }
    }

    fn oci(&self, args: &[&str], timeout: Duration) -> Result<Captured, String> {
        let out = exec::run(self.command().args(args), timeout)?;
        let what = args.first().copied().unwrap_or("");
        out.success()
            .map_err(|e| format!("{} {what}: {e}", self.name))
    }

    fn create_start(
        &self,
        argv: &[String],
        id: &str,
        timeout: Duration,
    ) -> Result<PathBuf, String> {
        let bundle = self.bundle(argv)?;
        let b = bundle.display().to_string();
        // The container inherits create's stdio and keeps it open until it exits, so a
        // pipe would never reach EOF: stdout goes nowhere, stderr to a file.
        let err_path = bundle.join("create.stderr");
        let err_file = std::fs::File::create(&err_path)
            .map_err(|e| format!("cannot create {}: {e}", err_path.display()))?;
        let status = self
            .command()
            .args(["create", "--bundle", &b, id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.binary))?;
        if !status.success() {
            let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
            return Err(format!(
                "{} create: {}",
                self.name,
                exec::failure_reason(&stderr, &status.to_string())
            ));
        }
        self.oci(&["start", id], timeout)?;
        Ok(bundle)
    }
}

/// Deletes the container when dropped, whatever happened to it.
struct Container<'a> {
    cli: &'a OciCli,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        // `--force`: runsc has no `-f`. An already-removed container just fails here.
        let _ = exec::run(
            self.cli.command().args(["delete", "--force", &self.id]),
            Duration::from_secs(30),
        );
    }
}

impl Runtime for OciCli {
    fn name(&self) -> &str {
        &self.name
    }

    fn probe(&self) -> Result<(), String> {
        if which(&self.binary).is_none() {
            return Err(format!(
                "{} not installed: apt-get install {}",
                self.binary, self.binary
            ));
        }
        if let Err(e) = &self.bundles {
            return Err(format!("cannot make a bundle: {e}"));
        }
        let out = self.run(&["/bin/true".to_string()], Duration::from_secs(60))?;
        drop(out);
        Ok(())
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Result<Captured, String> {
        let bundle = self.bundle(argv)?;
        let container = Container {
            cli: self,
            id: self.new_id(),
        };
        let b = bundle.display().to_string();
        let out = exec::run(
            self.command().args(["run", "--bundle", &b, &container.id]),
            timeout,
        )?;
        let _ = std::fs::remove_dir_all(&bundle);
        out.success()
    }

    fn create_start_delete(&self, argv: &[String], timeout: Duration) -> Result<Duration, String> {
        let id = self.new_id();
        let start = std::time::Instant::now();
        let result = self.create_start(argv, &id, timeout);
        let deleted = self.oci(&["delete", "--force", &id], timeout);
        let wall = start.elapsed();
        let bundle = result?;
        let _ = std::fs::remove_dir_all(bundle);
        deleted?;
        Ok(wall)
    }

    fn idle_memory(&self, argv: &[String], settle: Duration) -> Result<u64, String> {
        let container = Container {
            cli: self,
            id: self.new_id(),
        };
        let bundle = self.create_start(argv, &container.id, Duration::from_secs(60))?;
        thread::sleep(settle);
        let state = self.oci(&["state", &container.id], Duration::from_secs(30))?;
        let pid = state_pid(&state.stdout)?;
        // runc: the container's init. runsc: the sandbox (`state`'s pid, with the ptrace
        // stubs under it) and the gofer, a separate process that names the bundle.
        let bundle_text = bundle.display().to_string();
        let mut roots = vec![pid];
        for (p, _, cmdline) in exec::processes() {
            if p != pid && cmdline.contains(&bundle_text) {
                roots.push(p);
            }
        }
        exec::tree_pss_kib(&roots)
    }
}

/// The `pid` of `state`'s JSON output.
pub fn state_pid(json: &str) -> Result<u32, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("bad state JSON: {e}"))?;
    v.get("pid")
        .and_then(serde_json::Value::as_u64)
        .and_then(|p| u32::try_from(p).ok())
        .filter(|&p| p > 0)
        .ok_or_else(|| "state has no pid".to_string())
}

/// Carapace on one platform. Programs run through `carapace do` (the host's root,
/// read-only, as the other runtimes' bundles show it); containers' create, start and
/// delete through its OCI CLI, on bundles like runc's and runsc's.
pub struct Carapace {
    name: String,
    binary: Result<PathBuf, String>,
    platform: String,
    /// Flags of the platform's variant (`systrap-nopatch`: `--systrap-patch=off`).
    extra: Vec<String>,
    /// The OCI CLI of the same binary, with the same platform flags.
    oci: Option<OciCli>,
}

impl Carapace {
    /// `visible` and `writable`: as for [`OciCli::new`], for containers.
    pub fn new(
        binary: Result<PathBuf, String>,
        variant: &str,
        visible: &[&Path],
        writable: &[&Path],
    ) -> Carapace {
        let (platform, extra) = match variant {
            "systrap-nopatch" => ("systrap", vec!["--systrap-patch=off".to_string()]),
            p => (p, Vec::new()),
        };
        let name = format!("carapace-{variant}");
        let oci = binary.as_ref().ok().and_then(|b| b.to_str()).map(|b| {
            let platform_flag = format!("--platform={platform}");
            // No network, as runsc here.
            let mut global = vec![platform_flag.as_str(), "--network=none"];
            global.extend(extra.iter().map(String::as_str));
            OciCli::new(&name, b, &global, visible, writable)
        });
        Carapace {
            name,
            binary,
            platform: platform.to_string(),
            extra,
            oci,
        }
    }

    fn command(&self, argv: &[String]) -> Result<Command, String> {
        let binary = self.binary.as_ref().map_err(String::clone)?;
        let mut args: Vec<String> = vec!["do".into(), "--platform".into(), self.platform.clone()];
        args.extend(self.extra.iter().cloned());
        args.extend(argv.iter().cloned());
        Ok(workload_command(binary, &args))
    }
}

impl Runtime for Carapace {
    fn name(&self) -> &str {
        &self.name
    }

    fn probe(&self) -> Result<(), String> {
        let mut cmd = self.command(&["/bin/true".to_string()])?;
        let out = exec::run(&mut cmd, Duration::from_secs(60))?;
        if out.status.success() {
            return Ok(());
        }
        if out.stderr.contains("invalid value") && out.stderr.contains("--platform") {
            return Err("platform not built yet".to_string());
        }
        out.success().map(drop)
    }

    fn run(&self, argv: &[String], timeout: Duration) -> Result<Captured, String> {
        exec::run(&mut self.command(argv)?, timeout)?.success()
    }

    fn create_start_delete(&self, argv: &[String], timeout: Duration) -> Result<Duration, String> {
        match &self.oci {
            Some(oci) => oci.create_start_delete(argv, timeout),
            None => Err(self
                .binary
                .as_ref()
                .err()
                .cloned()
                .unwrap_or_else(|| "carapace's path is not UTF-8".to_string())),
        }
    }

    fn idle_memory(&self, argv: &[String], settle: Duration) -> Result<u64, String> {
        // carapace do, its gofer and its stub processes are one process tree.
        spawned_tree_pss(&mut self.command(argv)?, settle)
    }
}

/// The first `name` on `PATH` (or `name` itself if it is a path to a file).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_pid_parses() {
        assert_eq!(
            state_pid(r#"{"id":"x","pid":4242,"status":"running"}"#),
            Ok(4242)
        );
        assert!(state_pid(r#"{"id":"x","pid":0}"#).is_err());
        assert!(state_pid("not json").is_err());
    }

    #[test]
    fn missing_runtime_says_how_to_install() {
        let rt = OciCli::new("nope", "no-such-runtime-xyz", &[], &[], &[]);
        assert_eq!(
            rt.probe(),
            Err("no-such-runtime-xyz not installed: apt-get install no-such-runtime-xyz".into())
        );
        let n = Carapace::new(Err("not built".into()), "systrap-nopatch", &[], &[]);
        assert_eq!(n.name(), "carapace-systrap-nopatch");
        assert_eq!(n.platform, "systrap");
        assert_eq!(n.extra, ["--systrap-patch=off"]);
        let c = Carapace::new(Err("not built".into()), "ptrace", &[], &[]);
        assert_eq!(c.probe(), Err("not built".into()));
        assert_eq!(
            c.create_start_delete(&[], Duration::from_secs(1)),
            Err("not built".into())
        );
        assert_eq!(c.name(), "carapace-ptrace");
    }
}
