//! Pods through the OCI command line (issue 8): a sandbox container (CRI annotation
//! `container-type=sandbox`) and app containers (`container-type=container`,
//! `sandbox-id`) that `carapace create` adds to the sandbox's sentry. Checks each
//! container's own root filesystem, stdio, exit status, process list, signals and exec,
//! the shared hostname, one sentry for the pod with a gofer per container, and that
//! deleting the sandbox takes everything down. Each test uses its own `--root`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tests::Run;

const TIMEOUT: Duration = Duration::from_secs(60);
const SANDBOX: &str = "pod-sandbox";

/// A temporary directory with two busybox bundles, `sandbox/` and `app/` (each rootfs has
/// `/etc/whoami` naming it), and a private state root. Dropping it deletes what is left.
struct Pod {
    dir: PathBuf,
}

impl Pod {
    fn new() -> Pod {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "carapace-pod-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let pod = Pod { dir };
        for b in ["sandbox", "app"] {
            pod.make_bundle(b);
        }
        pod
    }

    fn make_bundle(&self, name: &str) {
        let rootfs = self.dir.join(name).join("rootfs");
        for d in ["bin", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
        }
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing: install busybox-static (scripts/deps.sh)"
        );
        std::fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy busybox");
        for applet in [
            "sh", "cat", "echo", "sleep", "hostname", "ps", "kill", "ls", "true", "grep",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .expect("applet symlink");
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
            .expect("passwd");
        std::fs::write(rootfs.join("etc/whoami"), format!("{name}\n")).expect("whoami");
        let bundle = self.dir.join(name);
        let spec = self.carapace(&["spec", "--bundle", bundle.to_str().unwrap_or("?")]);
        assert_eq!(spec.code(), Some(0), "{}", spec.dump());
    }

    /// Set bundle `name`'s args and CRI annotations (`kind`: sandbox or container).
    fn configure(&self, name: &str, kind: &str, args: &[&str]) {
        self.configure_with(name, kind, args, |_| {});
    }

    /// [`Pod::configure`], then `edit` the config.
    fn configure_with(&self, name: &str, kind: &str, args: &[&str], edit: impl FnOnce(&mut Value)) {
        let path = self.dir.join(name).join("config.json");
        let text = std::fs::read(&path).expect("read config");
        let mut c: Value = serde_json::from_slice(&text).expect("config.json is JSON");
        c["process"]["args"] = json!(args);
        c["process"]["terminal"] = json!(false);
        c["hostname"] = json!("the-pod");
        c["annotations"] = json!({
            "io.kubernetes.cri.container-type": kind,
            "io.kubernetes.cri.sandbox-id": SANDBOX,
        });
        edit(&mut c);
        std::fs::write(&path, c.to_string()).expect("write config");
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn command(&self, args: &[&str]) -> Command {
        let bin = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(bin);
        cmd.arg("--root").arg(self.root()).args(args);
        cmd
    }

    fn carapace(&self, args: &[&str]) -> Run {
        tests::run(self.command(args), TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.carapace(args);
        assert_eq!(r.code(), Some(0), "carapace {args:?}\n{}", r.dump());
        r.stdout
    }

    /// `create` container `id` from bundle `name`, its stdout and stderr on files.
    fn create(&self, name: &str, id: &str) -> Run {
        let out = std::fs::File::create(self.dir.join(format!("{id}.out"))).expect("out");
        let err = std::fs::File::create(self.dir.join(format!("{id}.err"))).expect("err");
        let bundle = self.dir.join(name);
        let status = self
            .command(&["create", "--bundle", bundle.to_str().unwrap_or("?"), id])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .expect("run carapace create");
        Run {
            what: format!("carapace create {id}"),
            status,
            stdout: self.output(id, "out"),
            stderr: self.output(id, "err"),
            timed_out: false,
            elapsed: Duration::ZERO,
        }
    }

    fn output(&self, id: &str, which: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{id}.{which}"))).unwrap_or_default()
    }

    fn status(&self, id: &str) -> String {
        let v: Value = serde_json::from_str(&self.ok(&["state", id])).expect("state JSON");
        v["status"].as_str().unwrap_or("?").to_string()
    }

    fn ps(&self, id: &str) -> Vec<i64> {
        let v: Value =
            serde_json::from_str(&self.ok(&["ps", "--format", "json", id])).expect("ps JSON");
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    }

    /// Live (not zombie) host processes whose command line names this pod, with it.
    fn live_processes(&self) -> Vec<String> {
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
                found.push(cmdline);
            }
        }
        found
    }

    /// [`Pod::count`] once it is `want`, or what it is after a few seconds: a stub the
    /// sentry is forking carries the `boot` command line until it execs.
    fn count_settled(&self, needle: &str, want: usize) -> usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let n = self.count(needle);
            if n == want || std::time::Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.live_processes()
            .iter()
            .filter(|c| c.contains(needle))
            .count()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.root()) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.command(&["delete", "--force", &id]).output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Wait (bounded) until `cond` holds; no timing is asserted, only the outcome.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn app_containers_run_in_the_pods_sentry() {
    let pod = Pod::new();
    pod.configure("sandbox", "sandbox", &["sleep", "1000"]);
    let r = pod.create("sandbox", SANDBOX);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    pod.ok(&["start", SANDBOX]);

    pod.configure(
        "app",
        "container",
        &[
            "sh",
            "-c",
            "cat /etc/whoami; hostname; echo to-stderr >&2; read x; exit 7",
        ],
    );
    let r = pod.create("app", "one");
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert_eq!(pod.status("one"), "created");
    // Loaded and waiting for start: one process, not the sandbox's init.
    let one = pod.ps("one");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_ne!(one, vec![1]);
    assert_eq!(pod.ps(SANDBOX), vec![1]);

    pod.configure("app", "container", &["sh", "-c", "sleep 1000 & sleep 1000"]);
    let r = pod.create("app", "two");
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    pod.ok(&["start", "two"]);

    // One sentry for the pod (the `boot` process and the sentry it forked), a gofer for
    // each container.
    assert_eq!(pod.count(" gofer "), 3, "{:#?}", pod.live_processes());
    assert_eq!(
        pod.count_settled(" boot ", 2),
        2,
        "{:#?}",
        pod.live_processes()
    );

    // Each container sees its own root filesystem and the pod's hostname.
    let exec = pod.carapace(&[
        "exec",
        "two",
        "sh",
        "-c",
        "cat /etc/whoami; hostname; exit 5",
    ]);
    assert_eq!(exec.code(), Some(5), "{}", exec.dump());
    assert_eq!(exec.stdout, "app\nthe-pod\n");
    let exec = pod.carapace(&["exec", SANDBOX, "cat", "/etc/whoami"]);
    assert_eq!(exec.stdout, "sandbox\n", "{}", exec.dump());

    // `ps` lists a container's own processes; the exec'd ones have gone.
    assert!(
        eventually(|| pod.ps("two").len() == 2),
        "{:?}",
        pod.ps("two")
    );
    assert_eq!(pod.ps(SANDBOX), vec![1]);

    // `one` runs: its stdio are its own, it exits with its code.
    pod.ok(&["start", "one"]);
    let w = pod.carapace(&["wait", "one"]);
    assert_eq!(w.code(), Some(0), "{}", w.dump());
    let v: Value = serde_json::from_str(&w.stdout).expect("wait JSON");
    assert_eq!(v["exitStatus"], json!(7 << 8), "{}", w.dump());
    assert!(eventually(|| pod.status("one") == "stopped"));
    assert_eq!(pod.output("one", "out"), "app\nthe-pod\n");
    assert_eq!(pod.output("one", "err"), "to-stderr\n");

    // A signal to a container reaches it alone; its init's end ends the rest of it.
    pod.ok(&["kill", "two", "TERM"]);
    assert!(eventually(|| pod.status("two") == "stopped"));
    assert!(eventually(|| pod.ps(SANDBOX) == vec![1]));
    assert_eq!(pod.status(SANDBOX), "running");
    let r = pod.carapace(&["exec", "two", "true"]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());

    // Deleting a stopped app container leaves the pod running; its gofer is gone.
    pod.ok(&["delete", "one"]);
    pod.ok(&["delete", "two"]);
    assert!(
        eventually(|| pod.count(" gofer ") == 1),
        "{:#?}",
        pod.live_processes()
    );
    assert_eq!(pod.status(SANDBOX), "running");

    // A running app container dies with its pod's sandbox.
    pod.configure("app", "container", &["sleep", "1000"]);
    assert_eq!(pod.create("app", "three").code(), Some(0));
    pod.ok(&["start", "three"]);
    assert_eq!(pod.status("three"), "running");
    pod.ok(&["delete", "--force", SANDBOX]);
    assert!(eventually(|| pod.status("three") == "stopped"));
    pod.ok(&["delete", "three"]);
    assert!(
        eventually(|| pod.live_processes().is_empty()),
        "{:#?}",
        pod.live_processes()
    );
}

#[test]
fn forced_delete_of_a_running_app_container() {
    let pod = Pod::new();
    pod.configure("sandbox", "sandbox", &["sleep", "1000"]);
    assert_eq!(pod.create("sandbox", SANDBOX).code(), Some(0));
    pod.ok(&["start", SANDBOX]);
    pod.configure("app", "container", &["sh", "-c", "sleep 1000 & sleep 1000"]);
    assert_eq!(pod.create("app", "app").code(), Some(0));
    pod.ok(&["start", "app"]);
    assert!(eventually(|| pod.ps("app").len() == 2));
    let r = pod.carapace(&["delete", "app"]);
    assert_ne!(r.code(), Some(0), "a running container needs --force");
    pod.ok(&["delete", "--force", "app"]);
    // Its processes are gone from the sentry; the pod's own init is untouched.
    assert!(eventually(|| pod.ps(SANDBOX) == vec![1]));
    assert!(
        eventually(|| pod.count(" gofer ") == 1),
        "{:#?}",
        pod.live_processes()
    );
    assert!(!pod.root().join("app").exists());
    // A new one can take its id; deleting it before it started ends its loaded init.
    assert_eq!(pod.create("app", "app").code(), Some(0));
    let init = pod.ps("app");
    assert_eq!(init.len(), 1);
    // The pod's containers share one pid space: the sandbox's /proc shows it.
    let proc_dir = format!("/proc/{}", init[0]);
    let r = pod.carapace(&["exec", SANDBOX, "ls", "-d", &proc_dir]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let r = pod.carapace(&["pause", "app"]);
    assert!(
        r.stderr.contains("cannot pause one container of a pod"),
        "{}",
        r.dump()
    );
    pod.ok(&["delete", "app"]);
    assert!(
        eventually(|| pod
            .carapace(&["exec", SANDBOX, "ls", "-d", &proc_dir])
            .code()
            != Some(0)),
        "the deleted container's init is still in the sentry"
    );
    assert!(
        eventually(|| pod.count(" gofer ") == 1),
        "{:#?}",
        pod.live_processes()
    );
    assert_eq!(pod.status(SANDBOX), "running");
}

#[test]
fn joining_a_missing_or_stopped_sandbox_fails_and_leaves_nothing() {
    let pod = Pod::new();
    pod.configure("app", "container", &["true"]);
    let r = pod.create("app", "orphan");
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    assert!(
        r.stderr.contains("io.kubernetes.cri.sandbox-id") && r.stderr.contains("does not exist"),
        "{}",
        r.dump()
    );
    assert!(!pod.root().join("orphan").exists());

    pod.configure("sandbox", "sandbox", &["true"]);
    assert_eq!(pod.create("sandbox", SANDBOX).code(), Some(0));
    pod.ok(&["start", SANDBOX]);
    assert!(eventually(|| pod.status(SANDBOX) == "stopped"));
    let r = pod.create("app", "late");
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stderr.contains("not running"), "{}", r.dump());
    assert!(!pod.root().join("late").exists());

    // A command the app's image lacks fails `create` with the runtime's message.
    pod.configure("sandbox", "sandbox", &["sleep", "1000"]);
    pod.ok(&["delete", SANDBOX]);
    assert_eq!(pod.create("sandbox", SANDBOX).code(), Some(0));
    pod.ok(&["start", SANDBOX]);
    pod.configure("app", "container", &["no-such-program"]);
    let r = pod.create("app", "bad");
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    assert!(
        r.stderr.contains("executable file not found"),
        "{}",
        r.dump()
    );
    assert!(!pod.root().join("bad").exists());
    assert!(
        eventually(|| pod.count(" gofer ") == 1),
        "{:#?}",
        pod.live_processes()
    );
}

#[test]
fn an_app_container_gets_its_own_process_security() {
    let pod = Pod::new();
    pod.configure_with("sandbox", "sandbox", &["sleep", "1000"], |c| {
        c["process"]["noNewPrivileges"] = json!(false);
    });
    assert_eq!(pod.create("sandbox", SANDBOX).code(), Some(0));
    pod.ok(&["start", SANDBOX]);
    // The app container's spec confines its init (the sandbox's own does not have it).
    pod.configure_with(
        "app",
        "container",
        &["sh", "-c", "grep NoNewPrivs /proc/self/status; ulimit -n"],
        |c| {
            c["process"]["noNewPrivileges"] = json!(true);
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 100, "soft": 77}]);
        },
    );
    assert_eq!(pod.create("app", "app").code(), Some(0));
    pod.ok(&["start", "app"]);
    pod.ok(&["wait", "app"]);
    let out = pod.output("app", "out");
    assert!(out.contains("NoNewPrivs:\t1"), "{out:?}");
    assert!(out.ends_with("77\n"), "{out:?}");
    let sandbox = pod.carapace(&["exec", SANDBOX, "grep", "NoNewPrivs", "/proc/1/status"]);
    assert!(
        sandbox.stdout.contains("NoNewPrivs:\t0"),
        "{}",
        sandbox.dump()
    );
    pod.ok(&["delete", "app"]);
    pod.ok(&["delete", "--force", SANDBOX]);
}
