//! Linux syscall and errno tables. (Interim: the full table is being written.)

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
}

pub struct Syscall {
    pub nr: u64,
    pub name: &'static str,
}

pub trait MemoryReader {
    fn read_bytes(&mut self, addr: u64, len: usize) -> Option<Vec<u8>>;
    fn read_cstr(&mut self, addr: u64, max: usize) -> Option<Vec<u8>>;
}

pub fn lookup(_arch: Arch, _nr: u64) -> Option<&'static Syscall> {
    None
}

pub fn format_entry(sc: &Syscall, args: &[u64; 6], _mem: &mut dyn MemoryReader) -> String {
    format!(
        "{}({:#x}, {:#x}, {:#x})",
        sc.name, args[0], args[1], args[2]
    )
}

pub fn format_return(_sc: &Syscall, ret: i64) -> String {
    format!("= {ret}")
}

pub mod x86_64 {
    pub mod nr {
        pub const ARCH_PRCTL: u64 = 158;
        pub const BRK: u64 = 12;
        pub const CLOCK_GETRES: u64 = 229;
        pub const CLOCK_GETTIME: u64 = 228;
        pub const CLOCK_NANOSLEEP: u64 = 230;
        pub const EXIT: u64 = 60;
        pub const EXIT_GROUP: u64 = 231;
        pub const GETCPU: u64 = 309;
        pub const GETEGID: u64 = 108;
        pub const GETEUID: u64 = 107;
        pub const GETGID: u64 = 104;
        pub const GETGROUPS: u64 = 115;
        pub const GETPID: u64 = 39;
        pub const GETPPID: u64 = 110;
        pub const GETRANDOM: u64 = 318;
        pub const GETRESGID: u64 = 120;
        pub const GETRESUID: u64 = 118;
        pub const GETRLIMIT: u64 = 97;
        pub const GETTID: u64 = 186;
        pub const GETTIMEOFDAY: u64 = 96;
        pub const GETUID: u64 = 102;
        pub const GET_ROBUST_LIST: u64 = 274;
        pub const MADVISE: u64 = 28;
        pub const MINCORE: u64 = 27;
        pub const MMAP: u64 = 9;
        pub const MPROTECT: u64 = 10;
        pub const MREMAP: u64 = 25;
        pub const MSYNC: u64 = 26;
        pub const MUNMAP: u64 = 11;
        pub const NANOSLEEP: u64 = 35;
        pub const PRCTL: u64 = 157;
        pub const PRLIMIT64: u64 = 302;
        pub const RT_SIGACTION: u64 = 13;
        pub const RT_SIGPROCMASK: u64 = 14;
        pub const SCHED_GETAFFINITY: u64 = 204;
        pub const SCHED_SETAFFINITY: u64 = 203;
        pub const SCHED_YIELD: u64 = 24;
        pub const SETDOMAINNAME: u64 = 171;
        pub const SETGID: u64 = 106;
        pub const SETGROUPS: u64 = 116;
        pub const SETHOSTNAME: u64 = 170;
        pub const SETREGID: u64 = 114;
        pub const SETRESGID: u64 = 119;
        pub const SETRESUID: u64 = 117;
        pub const SETREUID: u64 = 113;
        pub const SETRLIMIT: u64 = 160;
        pub const SETUID: u64 = 105;
        pub const SET_ROBUST_LIST: u64 = 273;
        pub const SET_TID_ADDRESS: u64 = 218;
        pub const SIGALTSTACK: u64 = 131;
        pub const SYSINFO: u64 = 99;
        pub const TIME: u64 = 201;
        pub const UNAME: u64 = 63;
    }
}

pub mod errno {
    /// The name of errno `n` (`"ENOENT"` for 2).
    pub fn name(_n: i32) -> Option<&'static str> {
        None
    }
}
