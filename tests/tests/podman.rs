//! podman end to end with Carapace as its OCI runtime (issue 7): `podman --runtime
//! carapace` on a small image built here (busybox + Debian's python3, by
//! `scripts/build-test-image.sh`) in a private podman root. It checks `run --rm` (output,
//! Carapace's kernel release, exit codes), `run -d` + `ps` + `logs` + `exec` + `stop` +
//! `rm`, and `run -it` / `exec -it` through a pty. Skipped, with the reason printed, when
//! podman, umoci or skopeo is missing or the test does not run as root (podman needs
//! root on these machines; see /work/shared/ENVIRONMENT.md).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tests::Run;

const TIMEOUT: Duration = Duration::from_secs(180);
const IMAGE: &str = "localhost/carapace-test:latest";

/// The podman settings these machines need, in a private root.
const CONTAINERS_CONF: &str = r#"[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"#;

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    for tool in ["podman", "umoci", "skopeo", "apt-get", "dpkg"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "{tool} is not installed (scripts/deps.sh installs it)"
            ));
        }
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if uid != "0" {
        return Some(format!("podman needs root here; running as uid {uid}"));
    }
    None
}

/// A private podman (root, runroot, tmpdir, containers.conf) under a temp directory, with
/// Carapace as its runtime. Dropping it removes every container and the directory.
struct Podman {
    dir: PathBuf,
    runtime: PathBuf,
}

impl Podman {
    fn new() -> Podman {
        // Not under /tmp: podman's overlay storage wants a real file system.
        let dir = PathBuf::from(format!("/var/tmp/carapace-podman-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir podman dir");
        std::fs::write(dir.join("containers.conf"), CONTAINERS_CONF).expect("containers.conf");
        let runtime = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
        Podman { dir, runtime }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        tests::run(self.command(args), TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `podman ARGS` must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code(), Some(0), "{}", r.dump());
        r.stdout
    }

    /// `pty_drive.py`: `podman ARGS` on a host pty, answering "yes" to "hi".
    fn on_a_pty(&self, args: &[&str]) -> Run {
        let podman = self.command(args);
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(tests::crate_dir().join("helpers/pty_drive.py"))
            .arg("yes")
            .arg(podman.get_program())
            .args(podman.get_args());
        for (k, v) in podman.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        tests::run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Build the test image with `scripts/build-test-image.sh` and load it.
    fn load_image(&self) {
        let script = tests::workspace_dir().join("scripts/build-test-image.sh");
        let out = self.dir.join("image");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg(&out);
        let r = tests::run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.code(), Some(0), "{}", r.dump());
        let tar = out.join("image.tar");
        self.ok(&["load", "-i", tar.to_str().unwrap_or("?")]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = tests::run(self.command(&["rm", "-af", "-t", "0"]), TIMEOUT);
        // containers/storage keeps its overlay directory bind-mounted on itself.
        let overlay = self.dir.join("root/overlay");
        if overlay.exists() {
            let _ = Command::new("umount")
                .arg(&overlay)
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn podman_with_carapace_as_the_runtime() {
    if let Some(reason) = skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    let p = Podman::new();
    p.load_image();

    // run --rm: output, the sandbox's kernel, exit codes.
    assert_eq!(
        p.ok(&["run", "--rm", IMAGE, "python3", "-c", "print(6*7)"]),
        "42\n"
    );
    let release = p.ok(&["run", "--rm", IMAGE, "uname", "-r"]);
    assert_eq!(release.trim(), "4.4.0-carapace");
    // podman's default seccomp profile and capability sets are in force inside.
    let status = p.ok(&[
        "run",
        "--rm",
        IMAGE,
        "grep",
        "-E",
        "^(Seccomp|CapBnd):",
        "/proc/self/status",
    ]);
    assert!(status.contains("Seccomp:\t2\n"), "{status}");
    assert!(!status.contains("CapBnd:\t000001ffffffffff"), "{status}");
    let r = p.run(&["run", "--rm", IMAGE, "sh", "-c", "echo err >&2; exit 7"]);
    assert_eq!(r.code(), Some(7), "{}", r.dump());
    assert!(r.stderr.contains("err"), "{}", r.dump());
    let r = p.run(&["run", "--rm", IMAGE, "sh", "-c", "kill -KILL $$"]);
    assert_eq!(r.code(), Some(137), "{}", r.dump());
    // A program that is not there: podman's own status for "cannot run it".
    let r = p.run(&["run", "--rm", IMAGE, "/no/such/program"]);
    assert!(matches!(r.code(), Some(126) | Some(127)), "{}", r.dump());

    // run -d, ps, logs, exec, stop, rm.
    let id = p.ok(&[
        "run",
        "-d",
        "--name",
        "bg",
        IMAGE,
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    assert!(!id.trim().is_empty());
    let ps = p.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        lines(&ps).iter().any(|l| l.starts_with("bg Up")),
        "podman ps: {ps}"
    );
    let mut logs = String::new();
    for _ in 0..200 {
        logs = p.ok(&["logs", "bg"]);
        if !logs.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(logs, "started\n");
    let r = p.run(&["exec", "bg", "sh", "-c", "echo in-exec ppid=$PPID; exit 5"]);
    assert_eq!(r.code(), Some(5), "{}", r.dump());
    assert_eq!(r.stdout, "in-exec ppid=0\n", "{}", r.dump());
    assert_eq!(p.ok(&["exec", "bg", "python3", "-c", "print(6*7)"]), "42\n");
    let r = p.run(&[
        "exec",
        "-u",
        "1000",
        "-w",
        "/tmp",
        "-e",
        "V=w",
        "bg",
        "sh",
        "-c",
        "id -u; pwd; echo $V",
    ]);
    assert_eq!(r.stdout, "1000\n/tmp\nw\n", "{}", r.dump());

    // exec -i takes our standard input; exec -d leaves the process running.
    let podman = p.command(&["exec", "-i", "bg", "sh", "-c", "cat; echo done"]);
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("echo piped | \"$0\" \"$@\"")
        .arg(podman.get_program())
        .args(podman.get_args());
    for (k, v) in podman.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    let r = tests::run(sh, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.stdout, "piped\ndone\n", "{}", r.dump());
    p.ok(&["exec", "-d", "bg", "sh", "-c", "echo detached > /tmp/f"]);
    let mut seen = String::new();
    for _ in 0..200 {
        seen = p.run(&["exec", "bg", "cat", "/tmp/f"]).stdout;
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen, "detached\n");

    // -it: the container's and an exec's terminal, driven from a host pty.
    let r = p.on_a_pty(&[
        "exec",
        "-it",
        "bg",
        "sh",
        "-c",
        "tty; echo hi; read x; echo got $x; exit 6",
    ]);
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.dump());
    assert!(r.stdout.contains("got yes\r\n"), "{}", r.dump());
    assert!(r.stdout.contains("status=6"), "{}", r.dump());

    p.ok(&["stop", "-t", "2", "bg"]);
    let ps = p.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        lines(&ps).iter().any(|l| l.starts_with("bg Exited")),
        "podman ps -a: {ps}"
    );
    p.ok(&["rm", "bg"]);
    assert_eq!(p.ok(&["ps", "-aq"]), "");

    let r = p.on_a_pty(&[
        "run",
        "--rm",
        "-it",
        IMAGE,
        "sh",
        "-c",
        "tty; stty size; echo hi; read x; echo got $x; exit 4",
    ]);
    assert!(r.stdout.contains("/dev/pts/0\r\n"), "{}", r.dump());
    assert!(r.stdout.contains("got yes\r\n"), "{}", r.dump());
    assert!(r.stdout.contains("status=4"), "{}", r.dump());
    assert_eq!(p.ok(&["ps", "-aq"]), "");
}
