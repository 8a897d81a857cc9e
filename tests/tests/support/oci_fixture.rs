//! The OCI tests' fixture, shared by `oci_cli.rs` and `oci_spec.rs` (each includes it
//! with `#[path]`): a busybox bundle with `carapace spec`'s config and a private state
//! root, cleaned up on drop. Each test crate uses a different subset of it.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tests::Run;

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A temporary directory holding a busybox bundle (`bundle/`, with `carapace spec`'s
/// config.json) and a private state root (`root/`). Dropping it kills whatever carapace
/// processes still name it and removes it.
pub struct Fixture {
    pub dir: PathBuf,
}

impl Fixture {
    /// `prefix` names the temporary directory (`carapace-PREFIX-PID-N`).
    pub fn new(prefix: &str) -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "carapace-{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
        }
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing: install busybox-static (scripts/deps.sh)"
        );
        std::fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy busybox");
        let list = Command::new(busybox)
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                    .expect("applet symlink");
            }
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
            .expect("passwd");
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").expect("group");
        let f = Fixture { dir };
        let spec = f.carapace(&["spec", "--bundle", f.bundle().to_str().unwrap_or("?")]);
        assert_eq!(spec.code(), Some(0), "{}", spec.dump());
        f
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn config(&self) -> Value {
        let text = std::fs::read(self.bundle().join("config.json")).expect("read config");
        serde_json::from_slice(&text).expect("config.json is JSON")
    }

    pub fn set_config(&self, v: &Value) {
        std::fs::write(self.bundle().join("config.json"), v.to_string()).expect("write config");
    }

    /// Set `process.args` (and apply `edit` to the rest of the config).
    pub fn with_args(&self, args: &[&str], edit: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        c["process"]["args"] = json!(args);
        edit(&mut c);
        self.set_config(&c);
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let bin = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(bin);
        cmd.arg("--root").arg(self.root()).args(args);
        cmd
    }

    /// Run a carapace command that does not leave a container holding its output.
    pub fn carapace(&self, args: &[&str]) -> Run {
        tests::run(self.command(args), TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `create` with the container's stdio on files (`<id>.out`, `<id>.err`): the
    /// container keeps them open after `create` returns, as runc's does.
    pub fn create(&self, id: &str, extra: &[&str]) -> (std::process::ExitStatus, String) {
        let out = std::fs::File::create(self.stdio_file(id, "out")).expect("out");
        let err = std::fs::File::create(self.stdio_file(id, "err")).expect("err");
        let bundle = self.bundle();
        let mut args = vec!["create", "--bundle", bundle.to_str().unwrap_or("?")];
        args.extend_from_slice(extra);
        args.push(id);
        let status = self
            .command(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .expect("run carapace create");
        (status, self.output(id, "err"))
    }

    pub fn output(&self, id: &str, which: &str) -> String {
        std::fs::read_to_string(self.stdio_file(id, which)).unwrap_or_default()
    }

    /// Where `create` puts container `id`'s stdout (`out`) or stderr (`err`); ids that
    /// are not file names (the bad ones) are made into one.
    pub fn stdio_file(&self, id: &str, which: &str) -> PathBuf {
        let name = id.replace(['/', '.'], "_");
        self.dir.join(format!("stdio-{name}.{which}"))
    }

    pub fn state(&self, id: &str) -> Value {
        let r = self.carapace(&["state", id]);
        assert_eq!(r.code(), Some(0), "{}", r.dump());
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("state JSON: {e}\n{}", r.dump()))
    }

    /// Carapace processes (not zombies) whose command line names this fixture.
    pub fn live_processes(&self) -> Vec<String> {
        let me = self.dir.to_string_lossy().into_owned();
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(cmdline) = std::fs::read(p.join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            if cmdline.contains(&me) && !zombie {
                found.push(format!("{}: {cmdline}", e.file_name().to_string_lossy()));
            }
        }
        found
    }

    /// Nothing of container `id` is left: no state directory, no process.
    pub fn assert_nothing_left(&self, id: &str) {
        assert!(
            !self.root().join(id).exists(),
            "state directory of {id} left behind"
        );
        // SIGKILLed processes take a moment to be gone; wait for that, bounded.
        let mut left = self.live_processes();
        for _ in 0..500 {
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            left = self.live_processes();
        }
        assert!(left.is_empty(), "processes left behind: {left:#?}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // A test that failed half-way: delete what it left, cgroups included.
        if let Ok(entries) = std::fs::read_dir(self.root()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.command(&["delete", "--force", &id]).output();
            }
        }
        for p in self.live_processes() {
            if let Some(pid) = p.split(':').next() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn pid_alive(pid: i64) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
}

/// Wait (bounded) until `cond` holds; no timing is asserted, only the outcome.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
