//! The spec's less common parts on a busybox bundle (issue 7): hooks at their lifecycle
//! points, maskedPaths/readonlyPaths, sysctl, the container's cgroup view and
//! `--preserve-fds`. Each test uses its own `--root`; the fixture is `support/oci_fixture.rs`.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

use tests::Run;

#[path = "support/oci_fixture.rs"]
mod oci_fixture;
use oci_fixture::{eventually, Fixture, TIMEOUT};

fn run_in(f: &Fixture, id: &str, extra: &[&str]) -> Run {
    let bundle = f.bundle();
    let mut args = vec!["run", "--bundle", bundle.to_str().unwrap_or("?")];
    args.extend_from_slice(extra);
    args.push(id);
    f.carapace(&args)
}

/// A hook that appends `NAME <state JSON>` to `log`, or runs `script` after that.
fn hook(log: &Path, name: &str, script: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("s=$(cat); echo \"{name} $HOOKVAR $s\" >> {}; {script}", log.display())],
        "env": ["PATH=/usr/bin:/bin", "HOOKVAR=v"],
    })
}

/// The log lines as (hook name, state status, state pid).
fn hook_log(log: &Path) -> Vec<(String, String, i64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let name = parts.next().unwrap_or("").to_string();
            assert_eq!(parts.next(), Some("v"), "hook env: {l}");
            let state: Value = serde_json::from_str(parts.next().unwrap_or(""))
                .unwrap_or_else(|e| panic!("state JSON on stdin: {e}: {l}"));
            assert_eq!(state["ociVersion"], json!("1.0.2"), "{l}");
            assert!(state["bundle"].as_str().is_some(), "{l}");
            (
                name,
                state["status"].as_str().unwrap_or("").to_string(),
                state["pid"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

#[test]
fn hooks_run_at_their_lifecycle_points() {
    let f = Fixture::new("ocispec");
    let log = f.dir.join("hooks.log");
    let hooks: serde_json::Map<String, Value> = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]
    .iter()
    .map(|n| (n.to_string(), json!([hook(&log, n, "")])))
    .collect();
    f.with_args(&["sh", "-c", "echo started; exec sleep 1000"], |c| {
        c["hooks"] = Value::Object(hooks);
    });
    let (status, err) = f.create("h", &[]);
    assert!(status.success(), "create: {err}");
    let pid = f.state("h")["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0);
    let creating: Vec<_> = ["prestart", "createRuntime", "createContainer"]
        .iter()
        .map(|n| (n.to_string(), "creating".to_string(), pid))
        .collect();
    assert_eq!(hook_log(&log), creating);
    let r = f.carapace(&["start", "h"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let mut want = creating.clone();
    want.push(("startContainer".into(), "created".into(), pid));
    want.push(("poststart".into(), "running".into(), pid));
    assert_eq!(hook_log(&log), want);
    assert_eq!(f.carapace(&["kill", "h", "KILL"]).code(), Some(0));
    assert!(eventually(|| f.state("h")["status"] == json!("stopped")));
    assert_eq!(
        hook_log(&log).len(),
        5,
        "poststop runs at delete, not before"
    );
    let r = f.carapace(&["delete", "h"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    want.push(("poststop".into(), "stopped".into(), 0));
    assert_eq!(hook_log(&log), want);
    f.assert_nothing_left("h");

    // `run`: the same points, in the same order.
    std::fs::remove_file(&log).expect("rm log");
    let mut c = f.config();
    c["process"]["args"] = json!(["true"]);
    f.set_config(&c);
    let r = run_in(&f, "hr", &[]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let names: Vec<String> = hook_log(&log).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    f.assert_nothing_left("hr");
}

#[test]
fn failing_hooks_fail_create_and_start_as_runc() {
    let f = Fixture::new("ocispec");
    let log = f.dir.join("hooks.log");
    let base = f.config();
    let with_hooks = |args: &[&str], hooks: Value| {
        let mut c = base.clone();
        c["process"]["args"] = json!(args);
        c["hooks"] = hooks;
        f.set_config(&c);
    };
    // createRuntime and createContainer failures fail `create` and leave nothing; the
    // rest of the hooks do not run, but poststop does, once everything is undone.
    for point in ["prestart", "createRuntime", "createContainer"] {
        let _ = std::fs::remove_file(&log);
        with_hooks(
            &["true"],
            json!({
                point: [hook(&log, point, "echo hook-said-no >&2; exit 3")],
                "startContainer": [hook(&log, "startContainer", "")],
                "poststop": [hook(&log, "poststop", "")],
            }),
        );
        let (status, err) = f.create("hf", &[]);
        assert!(!status.success(), "{point}: create succeeded");
        assert!(
            err.contains(point) && err.contains("hook-said-no"),
            "{point}: {err}"
        );
        f.assert_nothing_left("hf");
        let ran: Vec<(String, String)> =
            hook_log(&log).into_iter().map(|(n, s, _)| (n, s)).collect();
        assert_eq!(
            ran,
            [
                (point.to_string(), "creating".to_string()),
                ("poststop".to_string(), "stopped".to_string())
            ]
        );
    }
    // A timeout kills the hook and fails `create`.
    with_hooks(
        &["true"],
        json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "1000"], "timeout": 1}]}),
    );
    let (status, err) = f.create("ht", &[]);
    assert!(!status.success());
    assert!(err.contains("timeout"), "{err}");
    f.assert_nothing_left("ht");
    assert!(
        !f.live_processes().iter().any(|p| p.contains("sleep 1000")),
        "the hook was not killed"
    );

    // A failing startContainer fails `start`; the program never runs and the container
    // is stopped.
    with_hooks(
        &["sh", "-c", "echo ran > /dev/stderr"],
        json!({"startContainer": [hook(&log, "startContainer", "exit 1")]}),
    );
    let (status, err) = f.create("hs", &[]);
    assert!(status.success(), "{err}");
    let r = f.carapace(&["start", "hs"]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stderr.contains("startContainer"), "{}", r.dump());
    assert!(eventually(|| f.state("hs")["status"] == json!("stopped")));
    assert!(!f.output("hs", "err").contains("ran"), "the program ran");
    assert_eq!(f.carapace(&["delete", "hs"]).code(), Some(0));
    f.assert_nothing_left("hs");

    // poststart and poststop failures are warnings.
    with_hooks(
        &["sh", "-c", "exit 4"],
        json!({
            "poststart": [hook(&log, "poststart", "exit 1")],
            "poststop": [hook(&log, "poststop", "exit 1")],
        }),
    );
    let r = run_in(&f, "hw", &[]);
    assert_eq!(r.code(), Some(4), "{}", r.dump());
    f.assert_nothing_left("hw");
}

#[test]
fn masked_and_readonly_paths() {
    let f = Fixture::new("ocispec");
    let rootfs = f.bundle().join("rootfs");
    std::fs::create_dir_all(rootfs.join("secret")).expect("mkdir");
    std::fs::write(rootfs.join("secret/key"), "hunter2\n").expect("write");
    std::fs::write(rootfs.join("etc/secret-file"), "hunter3\n").expect("write");
    std::fs::create_dir_all(rootfs.join("ro/sub")).expect("mkdir");
    let script = "\
        echo cpuinfo=$(cat /proc/cpuinfo | wc -c); \
        echo file=$(cat /etc/secret-file | wc -c); \
        echo dir=$(ls -A /secret | wc -l); \
        (echo x > /secret/new) 2>/dev/null && echo secret-writable; \
        echo x > /etc/secret-file && echo masked-file-write-ok; \
        echo x > /ro/f 2>&1; mkdir /ro/sub/d 2>&1; \
        echo host > /proc/sys/kernel/hostname 2>&1; \
        echo x > /tmp/f && echo tmp-writable; \
        grep -c ' /secret ' /proc/mounts";
    f.with_args(&["sh", "-c", script], |c| {
        c["linux"]["maskedPaths"] = json!([
            "/proc/kcore-missing",
            "/proc/cpuinfo",
            "/etc/secret-file",
            "/secret",
            "/no/such/dir"
        ]);
        c["linux"]["readonlyPaths"] = json!(["/proc/sys", "/ro", "/missing-ro"]);
        c["root"]["readonly"] = json!(false);
    });
    let r = run_in(&f, "m", &[]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let out = &r.stdout;
    for want in [
        "cpuinfo=0\n",
        "file=0\n",
        "dir=0\n",
        "masked-file-write-ok\n",
        "tmp-writable\n",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{}", r.dump());
    }
    assert!(!out.contains("secret-writable"), "{}", r.dump());
    let all = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(
        all.matches("Read-only file system").count(),
        3,
        "writes under readonly paths must fail with EROFS:\n{}",
        r.dump()
    );
    // The host's files are untouched, and stay readable outside.
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/secret-file")).unwrap_or_default(),
        "hunter3\n"
    );
    f.assert_nothing_left("m");
}

#[test]
fn sysctls_the_sandbox_owns() {
    let f = Fixture::new("ocispec");
    f.with_args(
        &[
            "sh",
            "-c",
            "cat /proc/sys/kernel/domainname /proc/sys/kernel/hostname \
             /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start; \
             hostname",
        ],
        |c| {
            c["hostname"] = json!("spec-host");
            c["linux"]["sysctl"] = json!({
                "kernel.domainname": "example.org",
                "net.ipv4.ping_group_range": "0 2147483647",
                "net.ipv4.ip_unprivileged_port_start": "0",
            });
        },
    );
    let r = run_in(&f, "s", &[]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert_eq!(
        r.stdout,
        "example.org\nspec-host\n0\t2147483647\n0\nspec-host\n",
        "{}",
        r.dump()
    );
    f.assert_nothing_left("s");

    // kernel.hostname in sysctl wins over `hostname`, as it is applied after it.
    f.with_args(&["hostname"], |c| {
        c["linux"]["sysctl"] = json!({"kernel.hostname": "from-sysctl"});
    });
    let r = run_in(&f, "s2", &[]);
    assert_eq!(r.stdout, "from-sysctl\n", "{}", r.dump());

    // A sysctl of the host kernel is refused, naming the key, and nothing is left.
    for key in ["kernel.shmmax", "vm.swappiness", "net.core.somaxconn"] {
        f.with_args(&["true"], |c| {
            c["linux"]["sysctl"] = json!({ key: "1" });
        });
        let (status, err) = f.create("s3", &[]);
        assert!(!status.success(), "{key} accepted");
        assert!(err.contains(key), "{key}: {err}");
        f.assert_nothing_left("s3");
    }
}

#[test]
fn the_container_sees_its_own_cgroup() {
    // The spec's resources make a host cgroup too (`resources_become_host_cgroups`).
    let v1 = Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v1 && !v2 {
        eprintln!("SKIPPED: no cgroup hierarchy at /sys/fs/cgroup");
        return;
    }
    let f = Fixture::new("ocispec");
    let script = "\
        cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max \
            /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cgroup.controllers; \
        sleep 1000 & \
        echo procs $(cat /sys/fs/cgroup/cgroup.procs); \
        echo current $(cat /sys/fs/cgroup/pids.current); \
        echo mem $(cat /sys/fs/cgroup/memory.current); \
        echo self $(cat /proc/self/cgroup); \
        echo 5 > /sys/fs/cgroup/pids.max 2>&1; \
        echo oci $(cat /mnt/cg/memory.max); \
        grep cgroup /proc/mounts; \
        kill $!";
    let id = format!("cgv{}", std::process::id());
    f.with_args(&["sh", "-c", script], |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 268435456},
            "pids": {"limit": 64},
            "cpu": {"quota": 50000, "period": 100000, "shares": 1024},
        });
        c["linux"]["cgroupsPath"] = json!(format!("/carapace-test/{id}"));
        c["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/mnt/cg", "type": "cgroup2", "source": "cgroup",
                "options": ["ro"]}),
        );
    });
    let r = run_in(&f, &id, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let out = &r.stdout;
    assert!(
        out.starts_with("268435456\n64\n50000 100000\n39\ncpu memory pids\n"),
        "{}",
        r.dump()
    );
    // sh is 1; the sleep, `cat` and the command substitution's subshell are others.
    let procs: Vec<i64> = out
        .lines()
        .find_map(|l| l.strip_prefix("procs "))
        .unwrap_or_default()
        .split(' ')
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        procs.first() == Some(&1) && procs.len() >= 3,
        "{}",
        r.dump()
    );
    assert!(out.contains("self 0::/\n"), "{}", r.dump());
    assert!(
        r.stderr.contains("pids.max: Read-only file system"),
        "{}",
        r.dump()
    );
    assert!(out.contains("oci 268435456\n"), "{}", r.dump());
    assert!(
        out.contains("cgroup2 /sys/fs/cgroup cgroup2 ro"),
        "{}",
        r.dump()
    );
    let current: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("current "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(current >= 3, "{}", r.dump());
    let mem: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("mem "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(mem > 0, "{}", r.dump());
    f.assert_nothing_left(&id);

    // `update` changes what the container sees.
    f.with_args(&["sleep", "1000"], |_| {});
    let (status, err) = f.create(&id, &[]);
    assert!(status.success(), "{err}");
    assert_eq!(f.carapace(&["start", &id]).code(), Some(0));
    let r = f.carapace(&["update", "--memory", "134217728", "--pids-limit", "32", &id]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let r = f.carapace(&[
        "exec",
        &id,
        "cat",
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/pids.max",
        "/sys/fs/cgroup/cpu.max",
    ]);
    assert_eq!(r.stdout, "134217728\n32\n50000 100000\n", "{}", r.dump());
    assert_eq!(f.carapace(&["delete", "--force", &id]).code(), Some(0));
    f.assert_nothing_left(&id);

    // Without limits: `max`.
    f.with_args(
        &["cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max"],
        |c| {
            c["linux"]["resources"] = json!({});
        },
    );
    let r = run_in(&f, "cgmax", &[]);
    assert_eq!(r.stdout, "max\nmax 100000\n", "{}", r.dump());
}

#[test]
fn preserve_fds_reach_init() {
    let f = Fixture::new("ocispec");
    let data = f.dir.join("preserved");
    std::fs::write(&data, "kept open\n").expect("write");
    f.with_args(&["sh", "-c", "cat <&3; cat <&4 || echo no-fd-4"], |_| {});
    let bundle = f.bundle();
    let mut cmd = f.command(&[
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        bundle.to_str().unwrap_or("?"),
        "p",
    ]);
    // `sh -c 'exec 3<file; carapace …'`: the shell opens fd 3 without close-on-exec.
    let line = format!("exec 3<'{}'; exec \"$@\"", data.display());
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    cmd = Command::new("sh");
    cmd.arg("-c").arg(line).arg("sh").arg(prog).args(args);
    let r = tests::run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stdout.starts_with("kept open\n"), "{}", r.dump());
    assert!(r.stdout.contains("no-fd-4"), "{}", r.dump());
    f.assert_nothing_left("p");

    // A count beyond what is open is refused.
    let r = f.carapace(&[
        "run",
        "--preserve-fds",
        "40",
        "--bundle",
        bundle.to_str().unwrap_or("?"),
        "p2",
    ]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stderr.contains("--preserve-fds"), "{}", r.dump());
    f.assert_nothing_left("p2");
}

/// A static program for the bundle: `mq send NAME TEXT` creates queue NAME and sends
/// TEXT; `mq recv NAME` prints one message or the error.
const MQ_TOOL: &str = r#"
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "send")) {
        mqd_t q = mq_open(argv[2], O_WRONLY | O_CREAT, 0600, NULL);
        if (q == (mqd_t)-1 || mq_send(q, argv[3], strlen(argv[3]), 1)) {
            perror("send");
            return 1;
        }
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "recv")) {
        char buf[8192];
        mqd_t q = mq_open(argv[2], O_RDONLY | O_NONBLOCK);
        if (q == (mqd_t)-1) {
            perror("open");
            return 1;
        }
        ssize_t n = mq_receive(q, buf, sizeof buf, NULL);
        if (n < 0) {
            perror("recv");
            return 1;
        }
        printf("%.*s\n", (int)n, buf);
        return 0;
    }
    return 2;
}
"#;

#[test]
fn mqueue_mount_shows_the_queues() {
    let f = Fixture::new("ocispec");
    let tool = tests::compile_snippet("oci_mq_tool", MQ_TOOL).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(&tool, f.bundle().join("rootfs/bin/mq")).expect("copy the tool");
    let script = "\
        mq send /q1 hello && ls /dev/mqueue && cat /dev/mqueue/q1 && \
        mount | grep mqueue; \
        mq recv /q1; \
        mq send /q2 x; rm /dev/mqueue/q2; mq recv /q2; \
        echo sysctl $(cat /proc/sys/fs/mqueue/msg_max)";
    f.with_args(&["sh", "-c", script], |c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        if !mounts.iter().any(|m| m["type"] == json!("mqueue")) {
            mounts.push(json!({"destination": "/dev/mqueue", "type": "mqueue",
                "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}));
        }
        c["linux"]["sysctl"] = json!({"fs.mqueue.msg_max": "64"});
    });
    let r = run_in(&f, "mq", &[]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let want_start = "q1\nQSIZE:5          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n";
    assert!(r.stdout.starts_with(want_start), "{}", r.dump());
    assert!(
        r.stdout.contains("mqueue on /dev/mqueue type mqueue"),
        "{}",
        r.dump()
    );
    assert!(r.stdout.contains("\nhello\n"), "{}", r.dump());
    assert!(
        r.stderr.contains("open: No such file or directory"),
        "{}",
        r.dump()
    );
    assert!(r.stdout.ends_with("sysctl 64\n"), "{}", r.dump());
    f.assert_nothing_left("mq");
}

/// The sandbox pids `ps` lists.
fn sandbox_pids(f: &Fixture, id: &str) -> Vec<i64> {
    let r = f.carapace(&["ps", "--format", "json", id]);
    serde_json::from_str(&r.stdout).unwrap_or_default()
}

#[test]
fn sigkill_to_an_exec_waiter_kills_the_process() {
    let f = Fixture::new("ocispec");
    f.with_args(&["sleep", "1000"], |_| {});
    let (status, err) = f.create("k", &[]);
    assert!(status.success(), "{err}");
    assert_eq!(f.carapace(&["start", "k"]).code(), Some(0));
    let pid_file = f.dir.join("exec.pid");
    let r = f.carapace(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap_or("?"),
        "k",
        "sleep",
        "500",
    ]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert!(eventually(|| sandbox_pids(&f, "k").len() == 2));
    let waiter = std::fs::read_to_string(&pid_file).expect("pid file");
    let st = Command::new("kill")
        .args(["-KILL", waiter.trim()])
        .status()
        .expect("kill");
    assert!(st.success());
    assert!(
        eventually(|| sandbox_pids(&f, "k") == [1]),
        "the exec'd process outlived its waiter: {:?}",
        sandbox_pids(&f, "k")
    );
    // The container itself is untouched.
    assert_eq!(f.state("k")["status"], json!("running"));
    assert_eq!(f.carapace(&["delete", "--force", "k"]).code(), Some(0));
    f.assert_nothing_left("k");
}
