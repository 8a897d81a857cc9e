//! The OCI command line on a busybox bundle (issue 7): the lifecycle create → start →
//! kill → delete with `state` at each step, `run` with exit codes and stdio, the spec's
//! process fields and mounts, and bad input that must fail with a clear message and leave
//! no state directory and no process behind. Each test uses its own `--root`.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tests::Run;

#[path = "support/oci_fixture.rs"]
mod oci_fixture;
use oci_fixture::{eventually, pid_alive, Fixture, TIMEOUT};
#[test]
fn lifecycle_create_start_kill_delete() {
    let f = Fixture::new("oci");
    f.with_args(&["sh", "-c", "echo started; exec sleep 1000"], |_| {});
    let pid_file = f.dir.join("pid");
    let (status, err) = f.create("c1", &["--pid-file", pid_file.to_str().unwrap_or("?")]);
    assert!(status.success(), "create failed: {err}");

    let s = f.state("c1");
    assert_eq!(s["status"], "created", "{s}");
    assert_eq!(s["id"], "c1");
    assert_eq!(s["ociVersion"], "1.0.2");
    assert!(
        s["bundle"].as_str().is_some_and(|b| b.ends_with("/bundle")),
        "{s}"
    );
    assert!(
        s["rootfs"]
            .as_str()
            .is_some_and(|b| b.ends_with("/bundle/rootfs")),
        "{s}"
    );
    assert!(
        s["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{s}"
    );
    let pid = s["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "created container has no pid: {s}");
    let written = std::fs::read_to_string(&pid_file).expect("pid file");
    assert_eq!(written, pid.to_string(), "--pid-file and state disagree");
    assert!(pid_alive(pid));
    // Nothing runs before start.
    assert_eq!(f.output("c1", "out"), "");

    let r = f.carapace(&["start", "c1"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert_eq!(f.state("c1")["status"], "running");
    assert!(
        eventually(|| f.output("c1", "out") == "started\n"),
        "stdout: {:?}",
        f.output("c1", "out")
    );

    let list = f.carapace(&["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&list.stdout).expect("list json");
    assert_eq!(list[0]["id"], "c1");
    assert_eq!(list[0]["status"], "running");
    let ps = f.carapace(&["ps", "--format", "json", "c1"]);
    assert_eq!(ps.stdout.trim(), "[1]", "{}", ps.dump());

    // Invalid transitions while running.
    let again = f.carapace(&["start", "c1"]);
    assert_ne!(again.code(), Some(0));
    assert!(again.stderr.contains("already running"), "{}", again.dump());
    let del = f.carapace(&["delete", "c1"]);
    assert_ne!(del.code(), Some(0));
    assert!(del.stderr.contains("not stopped"), "{}", del.dump());

    let kill = f.carapace(&["kill", "c1", "KILL"]);
    assert_eq!(kill.code(), Some(0), "{}", kill.dump());
    assert!(
        eventually(|| !pid_alive(pid)),
        "the container's pid outlived SIGKILL"
    );
    let s = f.state("c1");
    assert_eq!(s["status"], "stopped", "{s}");
    assert_eq!(s["pid"], 0);
    let late = f.carapace(&["kill", "c1", "TERM"]);
    assert!(
        late.stderr.contains("container not running"),
        "{}",
        late.dump()
    );
    let start = f.carapace(&["start", "c1"]);
    assert!(start.stderr.contains("has stopped"), "{}", start.dump());

    let del = f.carapace(&["delete", "c1"]);
    assert_eq!(del.code(), Some(0), "{}", del.dump());
    f.assert_nothing_left("c1");
    let gone = f.carapace(&["state", "c1"]);
    assert_ne!(gone.code(), Some(0));
    assert!(gone.stderr.contains("does not exist"), "{}", gone.dump());
}

#[test]
fn pid_exits_as_init_exits() {
    // The `--pid-file` process is what conmon and containerd wait on: it must end with
    // init's status, a signal included.
    let f = Fixture::new("oci");
    f.with_args(&["sleep", "1000"], |_| {});
    let (status, err) = f.create("k", &[]);
    assert!(status.success(), "{err}");
    let kill_before_start = f.carapace(&["kill", "k", "9"]);
    assert_eq!(
        kill_before_start.code(),
        Some(0),
        "{}",
        kill_before_start.dump()
    );
    assert!(eventually(|| f.state("k")["status"] == "stopped"));
    let del = f.carapace(&["delete", "k"]);
    assert_eq!(del.code(), Some(0), "{}", del.dump());
    f.assert_nothing_left("k");

    // `run` is the parent of that process and reports what it saw.
    let bin = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let root = f.root();
    let bundle = f.bundle();
    let runner = std::thread::spawn(move || {
        let mut cmd = Command::new(bin);
        cmd.arg("--root")
            .arg(root)
            .args(["run", "--bundle"])
            .arg(bundle)
            .arg("r");
        tests::run(cmd, TIMEOUT)
    });
    assert!(
        eventually(|| f.carapace(&["state", "r"]).stdout.contains("running")),
        "the container never ran"
    );
    let kill = f.carapace(&["kill", "r", "SIGKILL"]);
    assert_eq!(kill.code(), Some(0), "{}", kill.dump());
    let run = runner
        .join()
        .expect("runner thread")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.code(), Some(128 + 9), "{}", run.dump());
    f.assert_nothing_left("r");
}

#[test]
fn kill_and_delete_force_on_a_running_container() {
    let f = Fixture::new("oci");
    f.with_args(
        &[
            "sh",
            "-c",
            "trap 'echo got USR1' USR1; echo ready; while :; do sleep 1; done",
        ],
        |_| {},
    );
    let (status, err) = f.create("t", &[]);
    assert!(status.success(), "{err}");
    let bad = f.carapace(&["kill", "t", "NOSUCHSIG"]);
    assert_ne!(bad.code(), Some(0));
    assert!(bad.stderr.contains("unknown signal"), "{}", bad.dump());
    assert_eq!(f.carapace(&["start", "t"]).code(), Some(0));
    assert!(eventually(|| f.output("t", "out").contains("ready")));
    let usr1 = f.carapace(&["kill", "t", "usr1"]);
    assert_eq!(usr1.code(), Some(0), "{}", usr1.dump());
    assert!(
        eventually(|| f.output("t", "out").contains("got USR1")),
        "the trap did not run: {:?}",
        f.output("t", "out")
    );
    let del = f.carapace(&["delete", "--force", "t"]);
    assert_eq!(del.code(), Some(0), "{}", del.dump());
    f.assert_nothing_left("t");
}

fn run_in(f: &Fixture, id: &str) -> Run {
    let bundle = f.bundle();
    f.carapace(&["run", "--bundle", bundle.to_str().unwrap_or("?"), id])
}

#[test]
fn run_propagates_exit_codes_and_stdio() {
    let f = Fixture::new("oci");
    f.with_args(
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"],
        |_| {},
    );
    let r = run_in(&f, "e7");
    assert_eq!(r.code(), Some(7), "{}", r.dump());
    assert_eq!(r.stdout, "to-stdout\n", "{}", r.dump());
    assert!(r.stderr.contains("to-stderr\n"), "{}", r.dump());
    f.assert_nothing_left("e7");

    f.with_args(&["true"], |_| {});
    let r = run_in(&f, "e0");
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    f.assert_nothing_left("e0");

    // The platform flags reach the sandbox (an unknown value would fail `boot`).
    let bundle = f.bundle();
    let b = bundle.to_str().unwrap_or("?");
    for flags in [["--platform", "ptrace"], ["--systrap-patch", "off"]] {
        let r = f.carapace(&[flags[0], flags[1], "run", "--bundle", b, "pf"]);
        assert_eq!(r.code(), Some(0), "{flags:?}: {}", r.dump());
        f.assert_nothing_left("pf");
    }
}

#[test]
fn run_honours_the_process_fields() {
    let f = Fixture::new("oci");
    let script = "echo $FOO; pwd; id -u; id -g; id -G; umask; hostname; echo x > /data/f && ls -ld /data; touch /rootfile";
    f.with_args(&["sh", "-c", script], |c| {
        c["process"]["env"] = json!(["PATH=/bin", "FOO=bar"]);
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027});
        c["hostname"] = json!("box");
        c["mounts"] = json!([{"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}]);
    });
    let r = run_in(&f, "p");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines.get(0..7),
        Some(&["bar", "/tmp", "1000", "1001", "1001 10 20", "0027", "box"][..]),
        "{}",
        r.dump()
    );
    assert!(
        lines.get(7).is_some_and(|l| l.starts_with("drwxrwxrwt")),
        "{}",
        r.dump()
    );
    // root.readonly (runc's default spec): the root cannot be written.
    assert!(r.stderr.contains("Read-only file system"), "{}", r.dump());
    assert_ne!(r.code(), Some(0));
    f.assert_nothing_left("p");
}

#[test]
fn bind_mounts_from_the_spec() {
    let f = Fixture::new("oci");
    // A directory read-write and a file read-only, both served by the gofer.
    let data = f.dir.join("data");
    std::fs::create_dir_all(&data).expect("mkdir data");
    std::fs::write(data.join("in"), "from the host\n").expect("write in");
    let greeting = f.dir.join("greeting");
    std::fs::write(&greeting, "hello\n").expect("write greeting");
    let script = "cat /etc/greeting; cat /data/in; echo from-the-box > /data/out; \
                  echo x > /etc/greeting || echo ro-refused";
    f.with_args(&["sh", "-c", script], |c| {
        c["mounts"] = json!([
            {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]},
            {"destination": "/etc/greeting", "type": "bind", "source": greeting, "options": ["bind", "ro"]},
        ]);
    });
    let r = run_in(&f, "b");
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert_eq!(
        r.stdout,
        "hello\nfrom the host\nro-refused\n",
        "{}",
        r.dump()
    );
    assert!(r.stderr.contains("Read-only file system"), "{}", r.dump());
    // The read-write bind reached the host; the read-only one did not change.
    let out = std::fs::read_to_string(data.join("out")).expect("the write through the bind");
    assert_eq!(out, "from-the-box\n");
    assert_eq!(
        std::fs::read_to_string(&greeting).expect("greeting"),
        "hello\n"
    );
    f.assert_nothing_left("b");
}

#[test]
fn symlinks_in_the_image_resolve_inside_the_sandbox() {
    let f = Fixture::new("oci");
    let rootfs = f.bundle().join("rootfs");
    std::os::unix::fs::symlink("/etc/shadow", rootfs.join("etc/abs")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../etc/shadow", rootfs.join("etc/rel"))
        .expect("symlink");
    std::fs::write(rootfs.join("etc/shadow"), "image-shadow\n").expect("image shadow");
    f.with_args(&["sh", "-c", "cat /etc/abs /etc/rel"], |_| {});
    let r = run_in(&f, "s");
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    // Both resolve to the image's own file, never the host's /etc/shadow.
    assert_eq!(r.stdout, "image-shadow\nimage-shadow\n", "{}", r.dump());
    f.assert_nothing_left("s");
}

#[test]
fn resources_become_host_cgroups() {
    let v1 = Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v1 && !v2 {
        eprintln!("SKIPPED: no cgroup hierarchy at /sys/fs/cgroup");
        return;
    }
    let f = Fixture::new("oci");
    let id = format!("cg{}", std::process::id());
    f.with_args(&["sh", "-c", "echo started; exec sleep 1000"], |c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 268435456},
            "pids": {"limit": 64},
            "cpu": {"quota": 50000, "period": 100000},
        });
        c["linux"]["cgroupsPath"] = json!(format!("/carapace-test/{id}"));
    });
    let (status, err) = f.create(&id, &[]);
    assert!(status.success(), "create failed: {err}");
    assert_eq!(f.carapace(&["start", &id]).code(), Some(0));
    let read = |controller: &str, file: &str| {
        let dir = if v2 {
            format!("/sys/fs/cgroup/carapace-test/{id}")
        } else {
            format!("/sys/fs/cgroup/{controller}/carapace-test/{id}")
        };
        std::fs::read_to_string(format!("{dir}/{file}")).unwrap_or_default()
    };
    if v2 {
        assert_eq!(read("memory", "memory.max").trim(), "268435456");
        assert_eq!(read("cpu", "cpu.max").trim(), "50000 100000");
    } else {
        assert_eq!(read("memory", "memory.limit_in_bytes").trim(), "268435456");
        assert_eq!(read("cpu", "cpu.cfs_quota_us").trim(), "50000");
    }
    assert_eq!(read("pids", "pids.max").trim(), "64");
    // The boot process, the sentry it forked and the stubs are all in it.
    let pid = f.state(&id)["pid"].as_i64().unwrap_or(0).to_string();
    let members = read("pids", "cgroup.procs");
    assert!(members.lines().any(|l| l == pid), "{pid} not in {members}");
    assert!(members.lines().count() >= 3, "{members}");
    // events --stats reports from the cgroup.
    let ev = f.carapace(&["events", "--stats", &id]);
    assert_eq!(ev.code(), Some(0), "{}", ev.dump());
    let v: Value = serde_json::from_str(ev.stdout.trim()).expect("events JSON");
    assert_eq!(v["type"], "stats", "{v}");
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(
        v["data"]["pids"]["current"].as_u64().unwrap_or(0) >= 3,
        "{v}"
    );
    assert_eq!(v["data"]["pids"]["limit"], 64, "{v}");
    // delete --force removes the cgroup with everything in it.
    assert_eq!(f.carapace(&["delete", "--force", &id]).code(), Some(0));
    let gone = if v2 {
        !Path::new(&format!("/sys/fs/cgroup/carapace-test/{id}")).exists()
    } else {
        ["memory", "cpu", "pids"]
            .iter()
            .all(|c| !Path::new(&format!("/sys/fs/cgroup/{c}/carapace-test/{id}")).exists())
    };
    assert!(gone, "the cgroup outlived the container");
    f.assert_nothing_left(&id);
    for c in ["", "memory/", "cpu/", "cpuacct/", "pids/", "freezer/"] {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}carapace-test"));
    }
}

#[test]
fn pause_resume_and_update() {
    if !Path::new("/sys/fs/cgroup/freezer/cgroup.procs").exists()
        && !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        eprintln!("SKIPPED: no freezer cgroup at /sys/fs/cgroup");
        return;
    }
    let f = Fixture::new("oci");
    // Counts while it runs: the count stands still while paused.
    f.with_args(
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; done",
        ],
        |_| {},
    );
    let (status, err) = f.create("pz", &[]);
    assert!(status.success(), "create failed: {err}");
    assert_eq!(f.carapace(&["start", "pz"]).code(), Some(0));
    assert_eq!(f.carapace(&["pause", "pz"]).code(), Some(0));
    assert_eq!(f.state("pz")["status"], "paused");
    let again = f.carapace(&["pause", "pz"]);
    assert_ne!(again.code(), Some(0), "{}", again.dump());
    assert!(again.stderr.contains("already paused"), "{}", again.dump());
    let del = f.carapace(&["delete", "pz"]);
    assert_ne!(del.code(), Some(0), "{}", del.dump());
    assert_eq!(f.carapace(&["resume", "pz"]).code(), Some(0));
    assert_eq!(f.state("pz")["status"], "running");
    let not = f.carapace(&["resume", "pz"]);
    assert!(not.stderr.contains("not paused"), "{}", not.dump());
    // update: new limits land in the cgroup.
    let up = f.carapace(&["update", "--pids-limit", "99", "pz"]);
    assert_eq!(up.code(), Some(0), "{}", up.dump());
    let ev = f.carapace(&["events", "--stats", "pz"]);
    let v: Value = serde_json::from_str(ev.stdout.trim()).expect("events JSON");
    assert_eq!(v["data"]["pids"]["limit"], 99, "{v}");
    // A paused container can still be killed and deleted.
    let p2 = f.carapace(&["pause", "pz"]);
    assert_eq!(p2.code(), Some(0), "{}", p2.dump());
    assert_eq!(f.carapace(&["delete", "--force", "pz"]).code(), Some(0));
    f.assert_nothing_left("pz");
}

/// Run `create` expecting failure; the message must contain `needle` and nothing may be
/// left behind.
fn create_fails(f: &Fixture, id: &str, needle: &str) {
    let (status, err) = f.create(id, &[]);
    assert!(!status.success(), "create {id} succeeded");
    assert!(
        err.contains(needle),
        "create {id}: expected {needle:?} in {err:?}"
    );
    f.assert_nothing_left(id);
}

#[test]
fn bad_bundles_fail_clearly_and_leave_nothing() {
    let f = Fixture::new("oci");
    let good = f.config();

    std::fs::write(f.bundle().join("config.json"), "{ not json").expect("write");
    create_fails(&f, "m", "config.json: malformed");

    let mut c = good.clone();
    c.as_object_mut().map(|o| o.remove("process"));
    f.set_config(&c);
    create_fails(&f, "np", "process: missing");

    let mut c = good.clone();
    c["root"]["path"] = json!("no-such-rootfs");
    f.set_config(&c);
    create_fails(&f, "nr", "root.path");

    let mut c = good.clone();
    c["mounts"] = json!([{"destination": "/data", "type": "bind", "source": "/nonexistent/carapace-missing", "options": ["rbind"]}]);
    f.set_config(&c);
    create_fails(
        &f,
        "bind",
        "mounts[0] (/data): source /nonexistent/carapace-missing",
    );

    let mut c = good.clone();
    c["process"]["terminal"] = json!(true);
    f.set_config(&c);
    create_fails(&f, "tty", "process.terminal");

    let mut c = good.clone();
    c["process"]["args"] = json!(["no-such-program"]);
    f.set_config(&c);
    create_fails(&f, "nf", "executable file not found");

    f.set_config(&good);
    let (status, err) = f.create("fds", &["--preserve-fds", "1"]);
    assert!(!status.success());
    assert!(err.contains("--preserve-fds 1"), "{err}");
    f.assert_nothing_left("fds");

    for bad_id in ["a/b", "..", "."] {
        let (status, err) = f.create(bad_id, &[]);
        assert!(!status.success(), "id {bad_id:?} accepted");
        assert!(err.contains("invalid container ID"), "{bad_id:?}: {err}");
    }
    assert!(f.live_processes().is_empty());
    assert!(
        std::fs::read_dir(f.root())
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "something left under --root"
    );
}

#[test]
fn unknown_and_duplicate_ids() {
    let f = Fixture::new("oci");
    for cmd in [
        &["state", "nope"][..],
        &["start", "nope"],
        &["kill", "nope", "KILL"],
        &["delete", "nope"],
        &["ps", "nope"],
    ] {
        let r = f.carapace(cmd);
        assert_eq!(r.code(), Some(1), "{}", r.dump());
        assert!(
            r.stderr.contains("container nope does not exist"),
            "{}",
            r.dump()
        );
    }
    // What a `create` killed half-way leaves (a directory, no record, no sandbox) can
    // be deleted.
    std::fs::create_dir_all(f.root().join("half")).expect("mkdir");
    let r = f.carapace(&["delete", "half"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    f.assert_nothing_left("half");

    let r = f.carapace(&["delete", "--force", "nope"]);
    assert_eq!(
        r.code(),
        Some(0),
        "as runc, delete --force of nothing succeeds: {}",
        r.dump()
    );

    let r = f.carapace(&["state", "../x"]);
    assert!(r.stderr.contains("invalid container ID"), "{}", r.dump());

    f.with_args(&["sleep", "1000"], |_| {});
    let (status, err) = f.create("dup", &[]);
    assert!(status.success(), "{err}");
    let (status, err) = f.create("dup", &[]);
    assert!(!status.success());
    assert!(
        err.contains("container with id dup already exists"),
        "{err}"
    );
    // The first container is untouched.
    assert_eq!(f.state("dup")["status"], "created");
    // A created container can be deleted without --force, as with runc.
    let del = f.carapace(&["delete", "dup"]);
    assert_eq!(del.code(), Some(0), "{}", del.dump());
    f.assert_nothing_left("dup");
}

#[test]
fn spec_features_and_global_flags() {
    let f = Fixture::new("oci");
    let again = f.carapace(&["spec", "--bundle", f.bundle().to_str().unwrap_or("?")]);
    assert_ne!(again.code(), Some(0));
    assert!(again.stderr.contains("exists"), "{}", again.dump());
    let c = f.config();
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["process"]["args"], json!(["sh"]));

    let feat = f.carapace(&["features"]);
    let feat: Value = serde_json::from_str(&feat.stdout).expect("features JSON");
    assert_eq!(feat["ociVersionMin"], "1.0.0");

    let sd = f.carapace(&["--systemd-cgroup", "list"]);
    assert_ne!(sd.code(), Some(0));
    assert!(sd.stderr.contains("systemd"), "{}", sd.dump());
    let lf = f.carapace(&["--log-format", "xml", "list"]);
    assert_ne!(lf.code(), Some(0));
    assert!(lf.stderr.contains("log-format"), "{}", lf.dump());

    // Errors land in --log as runc's JSON lines (containerd reads them from there).
    let log = f.dir.join("log.json");
    let r = f.carapace(&[
        "--log",
        log.to_str().unwrap_or("?"),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert_ne!(r.code(), Some(0));
    let text = std::fs::read_to_string(&log).expect("log written");
    let last: Value =
        serde_json::from_str(text.lines().last().unwrap_or("")).expect("JSON log line");
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .is_some_and(|m| m.contains("does not exist")),
        "{last}"
    );
}

/// Sockets of the network namespace bound to or accepted on `path` (`/proc/net/unix`
/// lists the listener and each connection it accepted or holds in its backlog).
fn unix_sockets_on(path: &Path) -> usize {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let p = path.to_string_lossy();
    table.lines().filter(|l| l.ends_with(p.as_ref())).count()
}

#[test]
fn wait_reports_init_status() {
    let f = Fixture::new("oci");
    f.with_args(&["sh", "-c", "exit 3"], |_| {});
    let (status, err) = f.create("w", &[]);
    assert!(status.success(), "{err}");
    let sock = f.root().join("w/control.sock");
    let before = unix_sockets_on(&sock);
    let waiter = {
        let cmd = f.command(&["wait", "w"]);
        std::thread::spawn(move || tests::run(cmd, TIMEOUT))
    };
    // The sentry serves connections in order: once the waiter's is there, `start`
    // (a later connection) cannot overtake it.
    assert!(
        eventually(|| unix_sockets_on(&sock) > before),
        "wait never connected"
    );
    let started = f.carapace(&["start", "w"]);
    assert_eq!(started.code(), Some(0), "{}", started.dump());
    let r = waiter
        .join()
        .expect("waiter")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    let v: Value = serde_json::from_str(&r.stdout).expect("wait JSON");
    assert_eq!(v["exitStatus"], 3 << 8, "{v}");
    let del = f.carapace(&["delete", "w"]);
    assert_eq!(del.code(), Some(0), "{}", del.dump());
    f.assert_nothing_left("w");
}

#[test]
fn run_forwards_signals_to_init() {
    let f = Fixture::new("oci");
    f.with_args(
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 1; done",
        ],
        |_| {},
    );
    let out_path = f.stdio_file("fw", "out");
    let out = std::fs::File::create(&out_path).expect("out");
    let bundle = f.bundle();
    let mut child = f
        .command(&["run", "--bundle", bundle.to_str().unwrap_or("?"), "fw"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    assert!(
        eventually(|| f.output("fw", "out").contains("ready")),
        "never ready"
    );
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("wait run");
    assert_eq!(
        status.code(),
        Some(5),
        "{status:?}, output {:?}",
        f.output("fw", "out")
    );
    assert!(f.output("fw", "out").contains("got TERM"));
    f.assert_nothing_left("fw");
}

#[test]
fn writable_root_goes_to_memory_or_through_the_gofer() {
    let f = Fixture::new("oci");
    f.with_args(&["sh", "-c", "echo data > /written && cat /written"], |c| {
        c["root"]["readonly"] = json!(false);
    });
    // Default --overlay=memory: the container writes, the bundle never changes.
    let r = run_in(&f, "mem");
    assert_eq!(
        (r.code(), r.stdout.as_str()),
        (Some(0), "data\n"),
        "{}",
        r.dump()
    );
    assert!(!f.bundle().join("rootfs/written").exists());
    f.assert_nothing_left("mem");
    // --overlay=none: writes reach the rootfs, as with runc.
    let bundle = f.bundle();
    let r = f.carapace(&[
        "--overlay",
        "none",
        "run",
        "--bundle",
        bundle.to_str().unwrap_or("?"),
        "none",
    ]);
    assert_eq!(
        (r.code(), r.stdout.as_str()),
        (Some(0), "data\n"),
        "{}",
        r.dump()
    );
    let on_host = std::fs::read_to_string(f.bundle().join("rootfs/written")).unwrap_or_default();
    assert_eq!(on_host, "data\n");
    f.assert_nothing_left("none");
}

#[test]
fn kill_all_and_annotations() {
    let f = Fixture::new("oci");
    // Init catches TERM (the trap interrupts its first `wait`); its child has the default
    // action once it says so (a fresh shell, not a fork of init still holding the trap):
    // `kill --all TERM` reaches both, so the second `wait` returns too.
    f.with_args(
        &[
            "sh",
            "-c",
            "trap 'echo init got TERM' TERM; sh -c 'echo child ready; exec sleep 1000' & \
             c=$!; wait $c; wait $c; echo child gone",
        ],
        |c| c["annotations"] = json!({"org.example.k": "v"}),
    );
    let (status, err) = f.create("a", &[]);
    assert!(status.success(), "{err}");
    assert_eq!(f.state("a")["annotations"]["org.example.k"], "v");
    assert_eq!(f.carapace(&["start", "a"]).code(), Some(0));
    assert!(eventually(|| f.output("a", "out").contains("child ready")));
    let ps = f.carapace(&["ps", "--format", "json", "a"]);
    assert_eq!(ps.stdout.trim(), "[1,2]", "{}", ps.dump());
    let r = f.carapace(&["kill", "--all", "a", "TERM"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert!(
        eventually(|| f.output("a", "out").ends_with("child gone\n")),
        "the child outlived kill --all: {:?}",
        f.output("a", "out")
    );
    assert!(f.output("a", "out").contains("init got TERM"));
    let q = f.carapace(&["list", "-q"]);
    assert_eq!(q.stdout, "a\n");
    assert!(eventually(|| f.state("a")["status"] == "stopped"));
    assert_eq!(f.carapace(&["delete", "a"]).code(), Some(0));
    f.assert_nothing_left("a");
}

/// The helper that plays conmon's part: receives the console over `--console-socket`.
fn console_socket_helper() -> PathBuf {
    helper("console_socket.py")
}

#[test]
fn terminal_over_the_console_socket() {
    let f = Fixture::new("oci");
    f.with_args(
        &[
            "sh",
            "-c",
            "tty; stty size; echo hi; read x; echo got $x; exit 3",
        ],
        |c| {
            c["process"]["terminal"] = json!(true);
            c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
        },
    );
    let sock = f.dir.join("console.sock");
    let bin = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let (root, bundle) = (f.root(), f.bundle());
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(console_socket_helper())
        .arg(&sock)
        .arg("yes")
        .arg("--")
        .arg(&bin)
        .arg("--root")
        .arg(&root)
        .args(["create", "--bundle"])
        .arg(&bundle)
        .arg("--console-socket")
        .arg(&sock)
        .arg("tty")
        .arg("--")
        .arg(&bin)
        .arg("--root")
        .arg(&root)
        .args(["start", "tty"]);
    let r = tests::run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.stderr.contains("name=/dev/ptmx") && r.stderr.contains("create=0 start=0"),
        "{}",
        r.dump()
    );
    // The init runs on the sandbox's own pty, sized by process.consoleSize, with the
    // sandbox's line discipline (CR typed becomes NL, output NL becomes CRNL).
    assert!(
        r.stdout.contains("/dev/pts/0\r\n33 101\r\nhi\r\n"),
        "{}",
        r.dump()
    );
    assert!(r.stdout.contains("got yes\r\n"), "{}", r.dump());
    assert!(
        eventually(|| f.state("tty")["status"] == "stopped"),
        "the container did not stop"
    );
    let del = f.carapace(&["delete", "tty"]);
    assert_eq!(del.code(), Some(0), "{}", del.dump());
    f.assert_nothing_left("tty");

    // A terminal needs somewhere to go; a console socket needs a terminal.
    let (status, err) = f.create("t2", &[]);
    assert!(!status.success());
    assert!(err.contains("--console-socket is required"), "{err}");
    f.assert_nothing_left("t2");
    f.with_args(&["true"], |c| c["process"]["terminal"] = json!(false));
    let (status, err) = f.create("t3", &["--console-socket", "/nonexistent.sock"]);
    assert!(!status.success());
    assert!(err.contains("process.terminal is false"), "{err}");
    f.assert_nothing_left("t3");
}

fn helper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("helpers")
        .join(name)
}

#[test]
fn exec_in_a_running_container() {
    let f = Fixture::new("oci");
    f.with_args(&["sleep", "1000"], |c| {
        c["process"]["env"] = json!(["PATH=/bin", "FROM_SPEC=1"]);
    });
    let (status, err) = f.create("x", &[]);
    assert!(status.success(), "create failed: {err}");
    // Not started yet: nothing to exec in.
    let r = f.carapace(&["exec", "x", "true"]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stderr.contains("has not started"), "{}", r.dump());
    let r = f.carapace(&["start", "x"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());

    // Output, exit code, and a fresh process with no parent in the sandbox.
    let r = f.carapace(&[
        "exec",
        "x",
        "sh",
        "-c",
        "echo out ppid=$PPID $FROM_SPEC; echo err >&2; exit 3",
    ]);
    assert_eq!(r.code(), Some(3), "{}", r.dump());
    assert_eq!(r.stdout, "out ppid=0 1\n", "{}", r.dump());
    assert_eq!(r.stderr, "err\n", "{}", r.dump());

    // The flags: --env, --cwd, --user; standard input is ours.
    let mut cmd = f.command(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1001",
        "x",
        "sh",
        "-c",
        "cat; echo $FOO; pwd; id -u; id -g",
    ]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn exec");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"from-stdin\n").expect("write stdin");
    }
    let out = child.wait_with_output().expect("exec output");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-stdin\nbar\n/tmp\n1000\n1001\n"
    );
    assert_eq!(out.status.code(), Some(0));

    // A signal: 128 + N, as runc exec reports it.
    let r = f.carapace(&["exec", "x", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(r.code(), Some(128 + 15), "{}", r.dump());
    // Signals sent to exec go to the process.
    let mut cmd = f.command(&[
        "exec",
        "x",
        "sh",
        "-c",
        "trap 'echo got-term; exit 11' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn exec");
    {
        use std::io::BufRead;
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read ready");
        assert_eq!(line, "ready\n");
        let kill = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        line.clear();
        out.read_line(&mut line).expect("read got-term");
        assert_eq!(line, "got-term\n");
    }
    assert_eq!(child.wait().expect("wait exec").code(), Some(11));

    // A missing program is an error of exec itself.
    let r = f.carapace(&["exec", "x", "no-such-program"]);
    assert_eq!(r.code(), Some(1), "{}", r.dump());
    assert!(
        r.stderr.contains("executable file not found"),
        "{}",
        r.dump()
    );
    let r = f.carapace(&["exec", "x", "sh", "-c", "cd /nonexistent"]);
    assert_eq!(r.code(), Some(2), "{}", r.dump());

    // --process: a process.json as podman writes it.
    let proc_json = f.dir.join("process.json");
    std::fs::write(
        &proc_json,
        json!({"args": ["sh", "-c", "echo $P; pwd; id -u"], "env": ["P=q"], "cwd": "/etc",
               "user": {"uid": 7, "gid": 7}})
        .to_string(),
    )
    .expect("write process.json");
    let r = f.carapace(&["exec", "--process", proc_json.to_str().unwrap_or("?"), "x"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert_eq!(r.stdout, "q\n/etc\n7\n", "{}", r.dump());
    std::fs::write(&proc_json, "{\"args\": []}").expect("write process.json");
    let r = f.carapace(&["exec", "--process", proc_json.to_str().unwrap_or("?"), "x"]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());
    assert!(r.stderr.contains("process.json"), "{}", r.dump());

    // --detach --pid-file: the pid is a host process that ends as the exec'd process
    // does, which a subreaper (as conmon and containerd's shim are) can wait for.
    let pid_file = f.dir.join("exec.pid");
    let bin = tests::carapace().unwrap_or_else(|e| panic!("{e}"));
    let root = f.root();
    for (script, want) in [("exit 9", "exited=9"), ("kill -KILL $$", "signaled=9")] {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(helper("subreaper_wait.py"))
            .arg(&pid_file)
            .arg(&bin)
            .arg("--root")
            .arg(&root)
            .args(["exec", "--detach", "--pid-file"])
            .arg(&pid_file)
            .args(["x", "sh", "-c", script]);
        let r = tests::run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            r.stdout.contains("cmd=0 ") && r.stdout.contains(want),
            "{}",
            r.dump()
        );
    }

    // --tty with --console-socket: the process runs on a pty of the sandbox.
    let sock = f.dir.join("exec-console.sock");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(helper("console_socket.py"))
        .arg(&sock)
        .arg("yes")
        .arg("--")
        .arg(&bin)
        .arg("--root")
        .arg(&root)
        .args(["exec", "--tty", "--console-socket"])
        .arg(&sock)
        .args(["x", "sh", "-c", "tty; echo hi; read a; echo got $a; exit 4"]);
    let r = tests::run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.dump());
    assert!(r.stdout.contains("got yes\r\n"), "{}", r.dump());
    assert!(r.stderr.contains("create=4"), "{}", r.dump());
    // Without a console socket, a detached exec has nowhere to put its terminal.
    let r = f.carapace(&["exec", "--tty", "--detach", "x", "true"]);
    assert_ne!(r.code(), Some(0), "{}", r.dump());

    // Exec'd processes are the container's: ps lists only init once they are gone.
    let ps = f.carapace(&["ps", "--format", "json", "x"]);
    assert_eq!(ps.stdout.trim(), "[1]", "{}", ps.dump());
    // The container's end takes its exec'd processes with it: 128 + SIGKILL.
    let last = {
        let cmd = f.command(&["exec", "x", "sleep", "1000"]);
        std::thread::spawn(move || tests::run(cmd, TIMEOUT))
    };
    assert!(
        eventually(|| f.carapace(&["ps", "--format", "json", "x"]).stdout.trim() != "[1]"),
        "the exec'd sleep never showed up in ps"
    );
    let r = f.carapace(&["kill", "x", "KILL"]);
    assert_eq!(r.code(), Some(0), "{}", r.dump());
    assert!(eventually(|| f.state("x")["status"] == "stopped"));
    let r = last.join().expect("exec").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.code(), Some(137), "{}", r.dump());
    let r = f.carapace(&["exec", "x", "true"]);
    assert!(r.stderr.contains("stopped"), "{}", r.dump());
    let del = f.carapace(&["delete", "x"]);
    assert_eq!(del.code(), Some(0), "{}", del.dump());
    f.assert_nothing_left("x");
}

/// The control socket takes descriptors only as an exec's stdio or terminal, and checks
/// them: more than three are refused, a count that does not fit is an error, and a
/// "terminal" that is not one is not bridged.
#[test]
fn exec_requests_are_checked() {
    let f = Fixture::new("oci");
    f.with_args(&["sleep", "1000"], |_| {});
    let (status, err) = f.create("q", &[]);
    assert!(status.success(), "create failed: {err}");
    assert_eq!(f.carapace(&["start", "q"]).code(), Some(0));
    let sock = f.root().join("q/control.sock");
    let send = |terminal: bool, files: &[&str]| -> String {
        let req = json!({"op": "exec", "args": ["true"], "env": [], "cwd": "/", "uid": 0,
                         "gid": 0, "umask": 18, "terminal": terminal});
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(helper("control_request.py"))
            .arg(&sock)
            .arg(req.to_string())
            .args(files);
        let r = tests::run(cmd, TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.code(), Some(0), "{}", r.dump());
        r.stdout
    };
    let null = "/dev/null";
    // More descriptors than any request brings (five, for a pod's AddContainer): the
    // connection is dropped unanswered.
    assert_eq!(send(false, &[null; 6]).trim(), "b''");
    let four = send(false, &[null, null, null, null]);
    assert!(four.contains("three descriptors"), "{four}");
    let two = send(false, &[null, null]);
    assert!(two.contains("three descriptors"), "{two}");
    let none = send(true, &[]);
    assert!(none.contains("exactly one descriptor"), "{none}");
    let not_a_tty = send(true, &[null]);
    assert!(not_a_tty.contains("not a terminal"), "{not_a_tty}");
    // The three right ones start the process.
    let ok = send(false, &[null, null, null]);
    assert!(ok.contains("\"started\""), "{ok}");
    let ps = f.carapace(&["ps", "q"]);
    assert_eq!(ps.code(), Some(0), "{}", ps.dump());
    let del = f.carapace(&["delete", "--force", "q"]);
    assert_eq!(del.code(), Some(0), "{}", del.dump());
    f.assert_nothing_left("q");
}
