//! Runs real static binaries on the ptrace platform with a host-file opener, below the
//! VFS: checks the platform, the memory manager and the loader together.

use sentry::fs::tmpfs::Tmpfs;
use sentry::kernel::{Credentials, ExitStatus, Kernel, Task};
use sentry::loader::Executable;
use sentry::mm::{MappableFile, MemoryFile};
use sentry::platform::ptrace::PtracePlatform;
use sentry::vfs::{FdTable, FsContext};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

struct HostFile(std::fs::File);

impl MappableFile for HostFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> sentry::Result<usize> {
        Ok(self.0.read_at(buf, offset)?)
    }
}

fn compile(name: &str, src: &str, extra: &[&str]) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ptrace_smoke");
    std::fs::create_dir_all(&dir).unwrap();
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).unwrap();
    let st = Command::new("gcc")
        .args(extra)
        .arg("-O1")
        .arg("-o")
        .arg(&bin)
        .arg(&c)
        .status()
        .unwrap();
    assert!(st.success(), "gcc failed for {name}");
    bin
}

fn run(bin: &Path) -> ExitStatus {
    let mf = Arc::new(MemoryFile::new().unwrap());
    let kernel = Arc::new(Kernel::new(
        Box::new(PtracePlatform::new()),
        mf.clone(),
        false,
    ));
    let open = |p: &[u8]| -> sentry::Result<Executable> {
        let path = std::str::from_utf8(p).map_err(|_| sentry::errno!(ENOENT))?;
        let f = std::fs::File::open(path)?;
        Ok(Executable {
            file: Arc::new(HostFile(f)),
            path: p.to_vec(),
        })
    };
    let path = bin.to_str().unwrap().as_bytes().to_vec();
    let mut task = Task::new_init(
        kernel,
        FsContext::new(
            sentry::fs::new_vfs_with_root("tmpfs", Tmpfs::new_root(&mf, 0o755), false, &mf)
                .unwrap(),
        ),
        FdTable::default(),
        Credentials::new(0, 0),
        &open,
        &path,
        vec![path.clone()],
        vec![],
    )
    .unwrap();
    task.run()
}

const GETPID_PROGRAM: &str = r#"
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
int main(void) {
    char *p = malloc(1 << 20);
    memset(p, 7, 1 << 20);
    if (p[12345] != 7) return 2;
    return syscall(SYS_getpid) == 1 ? 42 : 1;
}
"#;

#[test]
fn static_binary_runs_and_exits() {
    let bin = compile("getpid_static", GETPID_PROGRAM, &["-static"]);
    assert_eq!(run(&bin), ExitStatus::Exited(42));
}

#[test]
fn static_pie_binary_runs() {
    let bin = compile("getpid_static_pie", GETPID_PROGRAM, &["-static-pie"]);
    assert_eq!(run(&bin), ExitStatus::Exited(42));
}

#[test]
fn null_dereference_is_sigsegv() {
    let src = "int main(void) { volatile int *p = 0; return *p; }";
    let bin = compile("null_deref", src, &["-static"]);
    assert!(matches!(run(&bin), ExitStatus::Signaled { signo: 11, .. }));
}
