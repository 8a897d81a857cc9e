//! The application's security attributes from the OCI spec (issue 7), enforced by the
//! sentry: `linux.seccomp` (compiled with libseccomp, run before each emulated call),
//! `process.capabilities`, `process.rlimits`, `process.noNewPrivileges`, and the same
//! for `carapace exec` (`--cap`, `--no-new-privs`, `--process`). Bad values fail
//! `create` with the field named and leave nothing behind. Each test has its own
//! busybox bundle and `--root`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tests::Run;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A busybox bundle (`carapace spec`'s config, root writable) and a private `--root`.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "carapace-ocisec-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "etc", "tmp", "data"] {
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
        std::fs::write(rootfs.join("data/f"), "x").expect("data/f");
        let f = Fixture { dir };
        let spec = f.carapace(&["spec", "--bundle", &f.bundle_str()]);
        assert_eq!(spec.code(), Some(0), "{}", spec.dump());
        std::fs::copy(f.dir.join("bundle/config.json"), f.dir.join("spec.json"))
            .expect("keep the spec");
        f
    }

    fn bundle_str(&self) -> String {
        self.dir.join("bundle").to_string_lossy().into_owned()
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// `carapace spec`'s config with `args`, a writable root, PATH=/bin, then `edit`.
    fn configure(&self, args: &[&str], edit: impl FnOnce(&mut Value)) {
        let path = self.dir.join("bundle/config.json");
        let spec = std::fs::read(self.dir.join("spec.json")).expect("read spec");
        let mut c: Value = serde_json::from_slice(&spec).expect("JSON");
        c["process"]["args"] = json!(args);
        c["process"]["env"] = json!(["PATH=/bin"]);
        c["root"]["readonly"] = json!(false);
        edit(&mut c);
        std::fs::write(&path, c.to_string()).expect("write config");
    }

    fn command(&self, args: &[&str]) -> Command {
        let bin = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(bin);
        cmd.arg("--root").arg(self.root()).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn carapace(&self, args: &[&str]) -> Run {
        tests::run(self.command(args), TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `run` the bundle as container `id`.
    fn run(&self, id: &str) -> Run {
        self.carapace(&["run", "--bundle", &self.bundle_str(), id])
    }

    /// No state directory, no process and no cgroup of container `id` is left.
    fn assert_nothing_left(&self, id: &str) {
        assert!(!self.root().join(id).exists(), "state of {id} left behind");
        let me = self.dir.to_string_lossy().into_owned();
        let left = || -> Vec<String> {
            std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    let zombie = stat
                        .rsplit(')')
                        .next()
                        .is_some_and(|s| s.trim_start().starts_with('Z'));
                    (cmd.contains(&me) && !zombie).then_some(cmd)
                })
                .collect()
        };
        let mut procs = left();
        for _ in 0..500 {
            if procs.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            procs = left();
        }
        assert!(procs.is_empty(), "processes left behind: {procs:#?}");
        // The default cgroup is /carapace/<id>-<hash of --root> in every hierarchy.
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(d) = std::fs::read_dir(h.path().join("carapace")) {
                for e in d.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    assert!(
                        !name.starts_with(&format!("{id}-")),
                        "cgroup {} left behind",
                        e.path().display()
                    );
                }
            }
        }
    }

    /// `create` must fail with `needle` in its message and leave nothing.
    fn create_fails(&self, id: &str, needle: &str) {
        let r = self.carapace(&["create", "--bundle", &self.bundle_str(), id]);
        assert_ne!(r.code(), Some(0), "create {id} succeeded: {}", r.dump());
        assert!(
            r.stderr.contains(needle),
            "create {id}: expected {needle:?}: {}",
            r.dump()
        );
        self.assert_nothing_left(id);
    }
}

impl Drop for Fixture {
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

/// The value of `field` in a `/proc/PID/status` dump.
fn status_field<'a>(out: &'a str, field: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

#[test]
fn seccomp_profile_makes_the_denied_calls_fail() {
    let f = Fixture::new();
    let script = "mkdir /data/d; echo mkdir=$?; rm /data/f; echo rm=$?; \
                  echo hello > /data/g && cat /data/g; ls /data; cat /proc/self/status";
    f.configure(&["sh", "-c", script], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["unlink", "unlinkat", "no_such_syscall_is_skipped"],
                 "action": "SCMP_ACT_ERRNO"}
            ]
        });
    });
    let r = f.run("sc");
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    // errnoRet 13 is EACCES; without errnoRet, EPERM.
    assert!(r.stdout.contains("mkdir=1"), "{}", r.dump());
    assert!(r.stderr.contains("Permission denied"), "{}", r.dump());
    assert!(r.stdout.contains("rm=1"), "{}", r.dump());
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.dump());
    // Everything else works; the file survived and the directory was never made.
    assert!(r.stdout.contains("hello\nf\ng\n"), "{}", r.dump());
    assert_eq!(
        status_field(&r.stdout, "Seccomp"),
        Some("2"),
        "{}",
        r.dump()
    );
    assert_eq!(status_field(&r.stdout, "Seccomp_filters"), Some("1"));
    f.assert_nothing_left("sc");

    // SCMP_ACT_KILL_PROCESS: the process dies of SIGSYS at the call.
    f.configure(&["mkdir", "/data/e"], |c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
        });
    });
    let r = f.run("kill");
    assert_eq!(r.code(), Some(128 + 31), "{}", r.dump());
    f.assert_nothing_left("kill");
}

#[test]
fn capabilities_from_the_spec() {
    let f = Fixture::new();
    // CAP_DAC_OVERRIDE (1), CAP_FOWNER (3), CAP_KILL (5): no CAP_CHOWN.
    let sets = json!(["CAP_KILL", "CAP_FOWNER", "CAP_DAC_OVERRIDE"]);
    let script = "chown 1:1 /data/f; echo chown=$?; cat /proc/self/status";
    f.configure(&["sh", "-c", script], |c| {
        c["process"]["capabilities"] = json!({"bounding": sets, "effective": sets,
            "permitted": sets, "inheritable": sets, "ambient": sets});
    });
    let r = f.run("caps");
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stdout.contains("chown=1"), "{}", r.dump());
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.dump());
    for field in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            status_field(&r.stdout, field),
            Some("000000000000002a"),
            "{field}: {}",
            r.dump()
        );
    }
    f.assert_nothing_left("caps");

    // With CAP_CHOWN the same chown works.
    let sets = json!(["CAP_CHOWN", "CAP_KILL"]);
    f.configure(&["sh", "-c", script], |c| {
        c["process"]["capabilities"] = json!({"bounding": sets, "effective": sets,
            "permitted": sets});
    });
    let r = f.run("chown");
    assert!(r.stdout.contains("chown=0"), "{}", r.dump());
    assert_eq!(status_field(&r.stdout, "CapEff"), Some("0000000000000021"));

    // A user other than root keeps only its ambient capabilities across the exec of
    // its program, as under runc.
    let sets = json!(["CAP_CHOWN", "CAP_KILL"]);
    f.configure(&["cat", "/proc/self/status"], |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({"bounding": sets, "effective": sets,
            "permitted": sets, "inheritable": sets, "ambient": ["CAP_KILL"]});
    });
    let r = f.run("user");
    assert_eq!(
        status_field(&r.stdout, "CapEff"),
        Some("0000000000000020"),
        "{}",
        r.dump()
    );
    assert_eq!(status_field(&r.stdout, "CapAmb"), Some("0000000000000020"));
    assert_eq!(status_field(&r.stdout, "CapBnd"), Some("0000000000000021"));
}

#[test]
fn rlimits_and_no_new_privileges() {
    let f = Fixture::new();
    // The descriptor limit is enforced, not only reported.
    let script = "ulimit -n; ulimit -Hn; ulimit -c; grep NoNewPrivs /proc/self/status; \
                  exec 300</dev/null && echo fd300; exec 400</dev/null && echo fd400";
    f.configure(&["sh", "-c", script], |c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
            {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192}
        ]);
        c["process"]["noNewPrivileges"] = json!(true);
    });
    let r = f.run("rl");
    // busybox prints the core limit in 512-byte blocks.
    assert_eq!(
        r.stdout,
        "321\n654\n8\nNoNewPrivs:\t1\nfd300\n",
        "{}",
        r.dump()
    );
    assert!(r.stderr.contains("Bad file descriptor"), "{}", r.dump());

    f.configure(&["grep", "NoNewPrivs", "/proc/self/status"], |c| {
        c["process"]["noNewPrivileges"] = json!(false);
    });
    let r = f.run("nnp0");
    assert_eq!(r.stdout, "NoNewPrivs:\t0\n", "{}", r.dump());
}

#[test]
fn exec_gets_the_container_security_and_its_flags() {
    let f = Fixture::new();
    let sets = json!(["CAP_KILL"]);
    f.configure(&["sleep", "1000"], |c| {
        c["process"]["capabilities"] = json!({"bounding": sets, "effective": sets,
            "permitted": sets});
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 111, "hard": 222}]);
        c["process"]["noNewPrivileges"] = json!(false);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let r = f.carapace(&["run", "--detach", "--bundle", &f.bundle_str(), "x"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());

    // The container's profile, capabilities and limits apply to exec'd processes.
    let status = "mkdir /data/d; echo mkdir=$?; ulimit -n; cat /proc/self/status";
    let r = f.carapace(&["exec", "x", "sh", "-c", status]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stdout.contains("mkdir=1\n111\n"), "{}", r.dump());
    assert_eq!(status_field(&r.stdout, "CapEff"), Some("0000000000000020"));
    assert_eq!(status_field(&r.stdout, "NoNewPrivs"), Some("0"));
    assert_eq!(status_field(&r.stdout, "Seccomp"), Some("2"));

    // --cap adds a capability; --no-new-privs sets the flag.
    let r = f.carapace(&[
        "exec",
        "--cap",
        "CAP_CHOWN",
        "--no-new-privs",
        "x",
        "sh",
        "-c",
        "chown 1:1 /data/f; echo chown=$?; cat /proc/self/status",
    ]);
    assert!(r.stdout.contains("chown=0"), "{}", r.dump());
    assert_eq!(status_field(&r.stdout, "CapEff"), Some("0000000000000021"));
    assert_eq!(status_field(&r.stdout, "NoNewPrivs"), Some("1"));
    let r = f.carapace(&["exec", "x", "chown", "2:2", "/data/f"]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    let r = f.carapace(&["exec", "--cap", "CAP_FLYING", "x", "true"]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stderr.contains("--cap CAP_FLYING"), "{}", r.dump());

    // --process: its own rlimits and capabilities; the container's seccomp profile.
    let process = f.dir.join("process.json");
    std::fs::write(
        &process,
        json!({
            "args": ["sh", "-c", "mkdir /data/p; echo mkdir=$?; ulimit -n; grep CapEff /proc/self/status"],
            "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88}],
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"],
                             "permitted": ["CAP_CHOWN"]}
        })
        .to_string(),
    )
    .expect("process.json");
    let r = f.carapace(&["exec", "--process", &process.to_string_lossy(), "x"]);
    assert_eq!(
        r.stdout,
        "mkdir=1\n77\nCapEff:\t0000000000000001\n",
        "{}",
        r.dump()
    );
    let r = f.carapace(&["delete", "--force", "x"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
}

#[test]
fn bad_security_fields_fail_create_and_leave_nothing() {
    let f = Fixture::new();
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "rl-type",
            Box::new(|c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
                    {"type": "RLIMIT_SPEED", "soft": 1, "hard": 1}])
            }),
            "process.rlimits[1].type \"RLIMIT_SPEED\"",
        ),
        (
            "rl-soft",
            Box::new(|c| {
                c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}])
            }),
            "process.rlimits[0] (RLIMIT_NOFILE): soft limit 9 is above the hard limit 1",
        ),
        (
            "cap",
            Box::new(|c| c["process"]["capabilities"]["effective"] = json!(["CAP_FLYING"])),
            "process.capabilities.effective[0]",
        ),
        (
            "sc-action",
            Box::new(|c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_PANIC"}]})
            }),
            "linux.seccomp: syscalls[0].action: \"SCMP_ACT_PANIC\": unknown action",
        ),
        (
            "sc-notify",
            Box::new(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOTIFY"})),
            "linux.seccomp: defaultAction",
        ),
        (
            "sc-op",
            Box::new(|c| {
                c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_ROUGHLY"}]}]})
            }),
            "linux.seccomp: syscalls[0].args[0].op",
        ),
    ];
    for (id, edit, needle) in cases {
        f.configure(&["true"], edit);
        f.create_fails(id, needle);
    }
}
