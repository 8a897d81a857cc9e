//! Tests of the tables and of the strace formatter.

use std::collections::{BTreeMap, HashSet};

use crate::flags;
use crate::x86_64::{nr, CONST_NAMES, SYSCALLS};
use crate::*;

#[test]
fn numbers_are_sorted_and_unique() {
    assert!(SYSCALLS.windows(2).all(|w| w[0].nr < w[1].nr));
}

#[test]
fn names_are_unique() {
    let mut seen = HashSet::new();
    for sc in SYSCALLS {
        assert!(seen.insert(sc.name), "{} appears twice", sc.name);
    }
}

#[test]
fn numbers_are_dense_where_linux_assigned_them() {
    // 0..=336 (335 uretprobe and 336 uprobe arrived in 6.11 and 6.17), then 387..=423
    // are reserved, then 424 onwards. x32's 512..=547 are another ABI.
    let expected: Vec<u64> = (0..=336).chain(424..=471).collect();
    let got: Vec<u64> = SYSCALLS.iter().map(|sc| sc.nr).collect();
    assert_eq!(got, expected);
    assert_eq!(SYSCALLS.len(), 385);
}

#[test]
fn constants_are_the_upper_case_names() {
    assert_eq!(CONST_NAMES.len(), SYSCALLS.len());
    for (konst, name) in CONST_NAMES {
        assert_eq!(*konst, name.to_uppercase());
    }
}

#[test]
fn spot_checks() {
    let expect = [
        ("read", 0),
        ("write", 1),
        ("open", 2),
        ("close", 3),
        ("mmap", 9),
        ("clone", 56),
        ("execve", 59),
        ("exit", 60),
        ("exit_group", 231),
        ("openat", 257),
        ("rseq", 334),
        ("pidfd_send_signal", 424),
        ("clone3", 435),
        ("openat2", 437),
        ("mseal", 462),
        ("setxattrat", 463),
        ("file_setattr", 469),
        ("listns", 470),
        ("rseq_slice_yield", 471),
    ];
    for (name, number) in expect {
        assert_eq!(by_name(Arch::X86_64, name).map(|sc| sc.nr), Some(number));
        assert_eq!(lookup(Arch::X86_64, number).map(|sc| sc.name), Some(name));
    }
    assert_eq!(nr::READ, 0);
    assert_eq!(nr::EXECVE, 59);
    assert_eq!(nr::CLONE3, 435);
    assert_eq!(nr::OPENAT2, 437);
    assert!(lookup(Arch::X86_64, 337).is_none());
    assert!(lookup(Arch::X86_64, 512).is_none());
    assert!(lookup(Arch::X86_64, u64::MAX).is_none());
    assert!(by_name(Arch::X86_64, "nosuchcall").is_none());
}

#[test]
fn argument_lists_fit_six_registers_and_refer_inside_them() {
    for sc in SYSCALLS {
        assert!(sc.args.len() <= 6, "{} has {} args", sc.name, sc.args.len());
        for arg in sc.args {
            let referenced = match arg.kind {
                ArgKind::InBuf(n)
                | ArgKind::OutBuf(n)
                | ArgKind::InIoVec(n)
                | ArgKind::OutIoVec(n)
                | ArgKind::CreatMode(n) => Some(usize::from(n)),
                _ => None,
            };
            if let Some(n) = referenced {
                assert!(
                    n < sc.args.len(),
                    "{}: {} refers to arg {n}",
                    sc.name,
                    arg.name
                );
            }
        }
    }
}

#[test]
fn all_unimplemented_until_handlers_land() {
    // The sentry owner flips rows as handlers land; until then the counts add up.
    let c = counts(Arch::X86_64);
    assert_eq!(c.total(), SYSCALLS.len());
}

#[test]
fn flag_sets_have_no_duplicate_names() {
    for set in flags::ALL {
        let mut seen = HashSet::new();
        for (name, _) in set.field.iter().chain(set.bits) {
            assert!(seen.insert(*name), "{}: {} twice", set.what, name);
        }
        for (name, value) in set.field {
            assert_eq!(
                value & !set.field_mask,
                0,
                "{}: {name} outside the field",
                set.what
            );
        }
    }
}

/// A task's memory made of a few byte regions.
#[derive(Default)]
struct FakeMemory {
    regions: BTreeMap<u64, Vec<u8>>,
}

impl FakeMemory {
    fn put(&mut self, addr: u64, bytes: &[u8]) -> &mut Self {
        self.regions.insert(addr, bytes.to_vec());
        self
    }

    fn put_u64s(&mut self, addr: u64, words: &[u64]) -> &mut Self {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.put(addr, &bytes)
    }

    fn byte(&self, addr: u64) -> Option<u8> {
        let (start, bytes) = self.regions.range(..=addr).next_back()?;
        bytes.get(usize::try_from(addr - start).ok()?).copied()
    }
}

impl MemoryReader for FakeMemory {
    fn read_bytes(&mut self, addr: u64, len: usize) -> Option<Vec<u8>> {
        (0..len as u64)
            .map(|i| self.byte(addr.checked_add(i)?))
            .collect()
    }

    fn read_cstr(&mut self, addr: u64, max: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..max as u64 {
            match self.byte(addr.checked_add(i)?) {
                Some(0) => break,
                Some(b) => out.push(b),
                None if i == 0 => return None,
                None => break,
            }
        }
        Some(out)
    }
}

fn entry(name: &str, args: [u64; 6], mem: &mut FakeMemory) -> String {
    let sc = by_name(Arch::X86_64, name).expect("syscall in table");
    format_entry(sc, &args, mem)
}

fn ret(name: &str, value: i64) -> String {
    let sc = by_name(Arch::X86_64, name).expect("syscall in table");
    format_return(sc, value)
}

#[test]
fn openat_like_strace() {
    let mut mem = FakeMemory::default();
    mem.put(0x1000, b"/etc/passwd\0");
    let fdcwd = (-100i64) as u64;
    assert_eq!(
        entry("openat", [fdcwd, 0x1000, 0o2000000, 0, 0, 0], &mut mem),
        r#"openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC)"#
    );
    assert_eq!(
        entry("openat", [3, 0x1000, 0o1101, 0o644, 0, 0], &mut mem),
        r#"openat(3, "/etc/passwd", O_WRONLY|O_CREAT|O_TRUNC, 0644)"#
    );
    // An unknown bit is kept, in hex, after the ones we know.
    assert_eq!(
        entry("open", [0x1000, 0x4000_0002, 0, 0, 0, 0], &mut mem),
        r#"open("/etc/passwd", O_RDWR|0x40000000)"#
    );
}

#[test]
fn null_and_unreadable_pointers() {
    let mut mem = FakeMemory::default();
    assert_eq!(
        entry("openat", [3, 0, 0, 0, 0, 0], &mut mem),
        "openat(3, NULL, O_RDONLY)"
    );
    assert_eq!(
        entry("openat", [3, 0xdead_0000, 0, 0, 0, 0], &mut mem),
        "openat(3, 0xdead0000, O_RDONLY)"
    );
    assert_eq!(
        entry("write", [1, 0xdead_0000, 5, 0, 0, 0], &mut mem),
        "write(1, 0xdead0000, 5)"
    );
    assert_eq!(
        entry("fstat", [3, 0x7ffc_0000_1000, 0, 0, 0, 0], &mut mem),
        "fstat(3, 0x7ffc00001000)"
    );
    assert_eq!(
        entry("fstat", [3, 0, 0, 0, 0, 0], &mut mem),
        "fstat(3, NULL)"
    );
}

#[test]
fn strings_are_escaped_and_cut_at_32_bytes() {
    let mut mem = FakeMemory::default();
    mem.put(0x2000, b"hello\n\t\"q\"\\\x1b[0m\x00\x01");
    assert_eq!(
        entry("write", [1, 0x2000, 17, 0, 0, 0], &mut mem),
        r#"write(1, "hello\n\t\"q\"\\\33[0m\0\1", 17)"#
    );
    // An octal escape before a digit takes three digits.
    mem.put(0x2100, b"\x01\x32");
    assert_eq!(
        entry("write", [1, 0x2100, 2, 0, 0, 0], &mut mem),
        r#"write(1, "\0012", 2)"#
    );
    let long = [b'a'; 40];
    mem.put(0x3000, &long);
    assert_eq!(
        entry("write", [2, 0x3000, 40, 0, 0, 0], &mut mem),
        format!("write(2, \"{}\"..., 40)", "a".repeat(32))
    );
    // Exactly 32 bytes: no ellipsis.
    assert_eq!(
        entry("write", [2, 0x3000, 32, 0, 0, 0], &mut mem),
        format!("write(2, \"{}\", 32)", "a".repeat(32))
    );
    // Non-path strings are cut too; paths are not, as in strace.
    let mut name = vec![b'n'; 40];
    name.push(0);
    mem.put(0x4000, &name);
    assert_eq!(
        entry("memfd_create", [0x4000, 1, 0, 0, 0, 0], &mut mem),
        format!("memfd_create(\"{}\"..., MFD_CLOEXEC)", "n".repeat(32))
    );
    assert_eq!(
        entry("unlink", [0x4000, 0, 0, 0, 0, 0], &mut mem),
        format!("unlink(\"{}\")", "n".repeat(40))
    );
}

#[test]
fn read_buffers_are_addresses_at_entry() {
    let mut mem = FakeMemory::default();
    assert_eq!(
        entry("read", [0, 0x7f00_0000_0000, 4096, 0, 0, 0], &mut mem),
        "read(0, 0x7f0000000000, 4096)"
    );
}

#[test]
fn mmap_and_mprotect_flags() {
    let mut mem = FakeMemory::default();
    assert_eq!(
        entry("mmap", [0, 8192, 3, 0x22, u64::MAX, 0], &mut mem),
        "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)"
    );
    assert_eq!(
        entry("mprotect", [0x7f00_0000_0000, 4096, 0, 0, 0, 0], &mut mem),
        "mprotect(0x7f0000000000, 4096, PROT_NONE)"
    );
}

#[test]
fn clone_flags_carry_the_exit_signal() {
    let mut mem = FakeMemory::default();
    let flags = 0x0100_0000 | 0x0020_0000 | 17; // CHILD_SETTID|CHILD_CLEARTID|SIGCHLD
    assert_eq!(
        entry("clone", [flags, 0, 0, 0x7f00_0000_1000, 0, 0], &mut mem),
        "clone(CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, NULL, NULL, 0x7f0000001000, NULL)"
    );
}

#[test]
fn enumerations_modes_signals_and_ids() {
    let mut mem = FakeMemory::default();
    assert_eq!(
        entry("fcntl", [3, 2, 1, 0, 0, 0], &mut mem),
        "fcntl(3, F_SETFD, 0x1)"
    );
    assert_eq!(
        entry("fcntl", [3, 999, 0, 0, 0, 0], &mut mem),
        "fcntl(3, 0x3e7, 0)"
    );
    assert_eq!(
        entry("lseek", [3, (-5i64) as u64, 2, 0, 0, 0], &mut mem),
        "lseek(3, -5, SEEK_END)"
    );
    assert_eq!(
        entry("umask", [0o22, 0, 0, 0, 0, 0], &mut mem),
        "umask(022)"
    );
    assert_eq!(
        entry("chmod", [0, 0o4755, 0, 0, 0, 0], &mut mem),
        "chmod(NULL, 04755)"
    );
    assert_eq!(
        entry("mknod", [0, 0o20620, 0x8801, 0, 0, 0], &mut mem),
        "mknod(NULL, S_IFCHR|0620, 0x8801)"
    );
    assert_eq!(
        entry("kill", [42, 15, 0, 0, 0, 0], &mut mem),
        "kill(42, SIGTERM)"
    );
    assert_eq!(entry("kill", [42, 0, 0, 0, 0, 0], &mut mem), "kill(42, 0)");
    assert_eq!(
        entry("kill", [42, 34, 0, 0, 0, 0], &mut mem),
        "kill(42, SIGRT_2)"
    );
    assert_eq!(
        entry(
            "setresuid",
            [u64::from(u32::MAX), 1000, u64::MAX, 0, 0, 0],
            &mut mem
        ),
        "setresuid(-1, 1000, -1)"
    );
    assert_eq!(
        entry("clock_gettime", [1, 0x1000, 0, 0, 0, 0], &mut mem),
        "clock_gettime(CLOCK_MONOTONIC, 0x1000)"
    );
    assert_eq!(
        entry("getrusage", [u64::from(u32::MAX), 0, 0, 0, 0, 0], &mut mem),
        "getrusage(RUSAGE_CHILDREN, NULL)"
    );
    assert_eq!(entry("getpid", [0; 6], &mut mem), "getpid()");
}

#[test]
fn execve_argv_and_envp() {
    let mut mem = FakeMemory::default();
    mem.put(0x1000, b"/bin/ls\0")
        .put(0x1100, b"ls\0")
        .put(0x1200, b"-l\0")
        .put_u64s(0x2000, &[0x1100, 0x1200, 0])
        .put_u64s(0x3000, &[0x1100, 0x1200, 0x1100, 0]);
    assert_eq!(
        entry("execve", [0x1000, 0x2000, 0x3000, 0, 0, 0], &mut mem),
        r#"execve("/bin/ls", ["ls", "-l"], 0x3000 /* 3 vars */)"#
    );
}

#[test]
fn writev_shows_the_data() {
    let mut mem = FakeMemory::default();
    mem.put(0x1000, b"hello")
        .put(0x1100, b"world")
        .put_u64s(0x2000, &[0x1000, 5, 0x1100, 5]);
    assert_eq!(
        entry("writev", [1, 0x2000, 2, 0, 0, 0], &mut mem),
        r#"writev(1, [{iov_base="hello", iov_len=5}, {iov_base="world", iov_len=5}], 2)"#
    );
    assert_eq!(
        entry("readv", [0, 0x2000, 1, 0, 0, 0], &mut mem),
        "readv(0, [{iov_base=0x1000, iov_len=5}], 1)"
    );
    // A huge count is not believed.
    assert_eq!(
        entry("writev", [1, 0x2000, u64::MAX, 0, 0, 0], &mut mem),
        "writev(1, 0x2000, -1)"
    );
}

#[test]
fn returns_like_strace() {
    assert_eq!(ret("openat", 3), "= 3");
    assert_eq!(ret("openat", -2), "= -1 ENOENT (No such file or directory)");
    assert_eq!(
        ret("read", -11),
        "= -1 EAGAIN (Resource temporarily unavailable)"
    );
    assert_eq!(ret("mmap", 0x7f12_3456_7000), "= 0x7f1234567000");
    assert_eq!(ret("mmap", -12), "= -1 ENOMEM (Cannot allocate memory)");
    assert_eq!(ret("brk", 0), "= 0");
    assert_eq!(ret("umask", 0o22), "= 022");
    assert_eq!(ret("exit_group", 0), "= ?");
    assert_eq!(
        ret("read", -512),
        "= ? ERESTARTSYS (To be restarted if SA_RESTART is set)"
    );
    assert_eq!(ret("read", -4000), "= -1 ERRNO_4000 (Unknown error 4000)");
    assert_eq!(ret("read", -4096), "= -4096");
    assert_eq!(ret("getpid", 1), "= 1");
}

#[test]
fn markdown_has_counts_and_every_row() {
    let md = render_markdown(Arch::X86_64);
    assert!(md.starts_with("# "));
    // The counts follow the table (they were written when everything was unimplemented).
    let count = |st: Status| SYSCALLS.iter().filter(|s| s.status == st).count();
    assert!(md.contains(&format!(
        "- unimplemented: {}",
        count(Status::Unimplemented)
    )));
    assert!(md.contains(&format!("- partial: {}", count(Status::Partial))));
    assert!(md.contains("| 0 | `read` | implemented |  |"));
    assert!(md.contains("| 471 | `rseq_slice_yield` |"));
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| nr"))
            .count(),
        SYSCALLS.len()
    );
    assert!(render_summary(Arch::X86_64).contains("385 syscalls on x86_64"));
}
