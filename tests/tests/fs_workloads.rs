//! Real programs that lean on the file layer, run in `carapace do` (host root under the
//! in-memory overlay): git, tar, sqlite in WAL mode, an overlay write that must not reach
//! the host, and Python's own file-system test modules. These are the filesystems issue's
//! "done when" checks, kept as tests so they stay true.

use std::path::Path;
use std::process::Command;

fn sh(script: &str) -> tests::Run {
    let mut cmd = Command::new(tests::carapace().unwrap());
    cmd.args(["do", "/bin/sh", "-c", script]).current_dir("/");
    tests::run(cmd, std::time::Duration::from_secs(300)).unwrap_or_else(|e| panic!("{e}"))
}

fn need(program: &str) -> bool {
    let found = Path::new(program).exists();
    if !found {
        eprintln!("SKIPPED: {program} is not installed (scripts/deps.sh installs it)");
    }
    found
}

#[test]
fn git_init_add_commit_log() {
    if !need("/usr/bin/git") && !need("/usr/local/bin/git") {
        return;
    }
    let run = sh(
        "cd /tmp && git init -q r && cd r && echo x > f && git add f && \
         git -c user.email=a@b -c user.name=n commit -qm m && git log --oneline",
    );
    assert_eq!(run.code(), Some(0), "{}", run.dump());
    assert!(run.stdout.trim().ends_with(" m"), "{}", run.dump());
}

#[test]
fn tar_round_trip_matches_native() {
    let list = "tar czf /tmp/a.tgz /usr/share/doc 2>/dev/null; tar tzf /tmp/a.tgz | wc -l";
    let run = sh(list);
    assert_eq!(run.code(), Some(0), "{}", run.dump());
    let native = Command::new("/bin/sh")
        .args([
            "-c",
            &list.replace("/tmp/a.tgz", "/var/tmp/carapace-native-a.tgz"),
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file("/var/tmp/carapace-native-a.tgz");
    let native = String::from_utf8_lossy(&native.stdout).trim().to_string();
    assert_eq!(run.stdout.trim(), native, "{}", run.dump());
}

#[test]
fn sqlite_wal() {
    if !need("/usr/bin/sqlite3") {
        return;
    }
    let run = sh(
        "sqlite3 /tmp/t.db 'pragma journal_mode=wal; create table t(x); \
         insert into t values(1); select * from t;'",
    );
    assert_eq!(run.code(), Some(0), "{}", run.dump());
    assert_eq!(run.stdout, "wal\n1\n", "{}", run.dump());
}

#[test]
fn overlay_writes_stay_in_the_sandbox() {
    let probe = Path::new("/etc/carapace-overlay-probe");
    assert!(!probe.exists());
    let run = sh("echo hi > /etc/carapace-overlay-probe && cat /etc/carapace-overlay-probe");
    assert_eq!(run.code(), Some(0), "{}", run.dump());
    assert_eq!(run.stdout, "hi\n");
    assert!(!probe.exists(), "the overlay write reached the host");
}

/// Python's file-system test modules (Debian's libpython3.11-testsuite). Cases that
/// differ from Linux for a stated reason are excluded by name here; everything else
/// must pass.
#[test]
fn python_fs_test_modules() {
    if !need("/usr/lib/python3.11/test/test_os.py") {
        return;
    }
    let run = sh(&format!(
        "cd /tmp && /usr/bin/python3 -m test {}",
        python_test_args()
    ));
    assert_eq!(run.code(), Some(0), "{}", run.dump());
    assert!(
        run.stdout.contains("Tests result: SUCCESS"),
        "{}",
        run.dump()
    );
}

/// The same modules as an unprivileged user (setpriv to nobody, no capabilities): as
/// root they skip their permission-denied cases, which then run against the sentry's
/// permission checks.
#[test]
fn python_fs_test_modules_as_nobody() {
    if !need("/usr/lib/python3.11/test/test_os.py") || !need("/usr/bin/setpriv") {
        return;
    }
    let run = sh(&format!(
        "cd /tmp && setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
         /usr/bin/python3 -m test {}",
        python_test_args()
    ));
    assert_eq!(run.code(), Some(0), "{}", run.dump());
    assert!(
        run.stdout.contains("Tests result: SUCCESS"),
        "{}",
        run.dump()
    );
}

/// `--ignore=` options for the known differences, then the module names.
fn python_test_args() -> String {
    // (test id pattern, why it cannot pass in the sandbox yet)
    const DIFFERENCES: &[(&str, &str)] = &[(
        "test.test_shutil.TestMisc.test_disk_usage",
        "statfs of the overlay root reports its upper layer (as overlayfs does), an \
             empty in-memory tmpfs: 0 blocks used",
    )];
    let modules = [
        "test_os",
        "test_posix",
        "test_shutil",
        "test_tempfile",
        "test_glob",
        "test_fileinput",
        "test_stat",
        "test_pathlib",
    ];
    let ignores: Vec<String> = DIFFERENCES
        .iter()
        .map(|(id, _)| format!("--ignore={id}"))
        .collect();
    format!("{} {}", ignores.join(" "), modules.join(" "))
}
