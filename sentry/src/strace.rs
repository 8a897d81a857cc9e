//! `--strace`: one line per syscall with decoded arguments and the result, written by
//! `syscall-tables` from the same table that drives dispatch.
#![deny(unsafe_code)]

use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::syscalls::SyscallArgs;
use syscall_tables::{Arch, MemoryReader};

struct TaskMemory<'a>(&'a Task);

impl MemoryReader for TaskMemory<'_> {
    fn read_bytes(&mut self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.0.copy_in(UserAddr(addr), &mut buf).ok()?;
        Some(buf)
    }

    fn read_cstr(&mut self, addr: u64, max: usize) -> Option<Vec<u8>> {
        match self.0.read_cstring(UserAddr(addr), max) {
            Ok(s) => Some(s),
            // Longer than `max`: show the first `max` bytes; the formatter adds "...".
            Err(e) if e.errno == crate::Errno::ENAMETOOLONG => self.read_bytes(addr, max),
            Err(_) => None,
        }
    }
}

/// The call as it enters: name and decoded arguments (read before the call runs, since
/// `execve` replaces the memory they point to).
pub fn entry(task: &Task, nr: u64, args: &SyscallArgs) -> String {
    match syscall_tables::lookup(Arch::X86_64, nr) {
        Some(sc) => syscall_tables::format_entry(sc, &args.0, &mut TaskMemory(task)),
        None => format!(
            "syscall_{nr}({:#x}, {:#x}, {:#x})",
            args.0[0], args.0[1], args.0[2]
        ),
    }
}

/// Print the finished line; `ret` is `None` for calls that do not return (`exit`).
pub fn exit(task: &Task, nr: u64, _args: &SyscallArgs, entry: &str, ret: Option<i64>) {
    let result = match (syscall_tables::lookup(Arch::X86_64, nr), ret) {
        (_, None) => "= ?".to_string(),
        (Some(sc), Some(r)) => syscall_tables::format_return(sc, r),
        (None, Some(r)) => format!("= {r}"),
    };
    eprintln!("[{:>4}] {entry} {result}", task.tid);
}

/// The line strace prints for the program it starts: the sandbox's first `execve`, which
/// the sentry performs itself rather than trapping.
pub fn initial_exec(tid: i32, path: &[u8], argv: &[Vec<u8>], envc: usize) {
    let quote = |s: &[u8]| format!("{:?}", String::from_utf8_lossy(s));
    let args: Vec<String> = argv.iter().map(|a| quote(a)).collect();
    eprintln!(
        "[{tid:>4}] execve({}, [{}], 0x0 /* {envc} vars */) = 0",
        quote(path),
        args.join(", ")
    );
}
