//! strace-style formatting of syscall entries and returns, for the sentry's `--strace`.
//!
//! Output follows strace's conventions so that logs from a sandbox and from the host can
//! be compared line by line: strings quoted and C-escaped, cut at 32 bytes with `...`
//! after the closing quote (paths are not cut, as strace does not cut them), `NULL` for
//! null pointers, flags by name with the unknown remainder in hex, modes in octal.
//! Application memory is read through [`MemoryReader`]; anything unreadable is shown as
//! its address. Nothing here trusts a value from the application: lengths and counts are
//! clamped before they size a read.

use crate::errno;
use crate::flags::SIGNAL_NAMES;
use crate::types::{ArgKind, FlagSet, RetKind, Syscall};

/// How many bytes of a string or buffer are shown (strace's default `-s 32`).
pub const STRING_LIMIT: usize = 32;
/// How many bytes of a path are read: `PATH_MAX`.
pub const PATH_LIMIT: usize = 4096;
/// How many elements of an array (`argv`, iovecs) are shown.
pub const ARRAY_LIMIT: usize = 32;
/// How many `envp` entries are counted before giving up.
const ENV_COUNT_LIMIT: usize = 4096;

/// `AT_FDCWD`, as the `int` it is.
const AT_FDCWD: i32 = -100;
const O_CREAT: u64 = 0o100;
/// The bit of `O_TMPFILE` that is not `O_DIRECTORY`.
const O_TMPFILE_BIT: u64 = 0o20000000;

/// Read access to the traced task's memory.
pub trait MemoryReader {
    /// Exactly `len` bytes at `addr`, or `None` if any of them is unreadable.
    fn read_bytes(&mut self, addr: u64, len: usize) -> Option<Vec<u8>>;
    /// The bytes at `addr` up to (not including) the first NUL, reading at most `max`
    /// bytes; a result of length `max` means no NUL was found within them. `None` if
    /// the first byte is unreadable.
    fn read_cstr(&mut self, addr: u64, max: usize) -> Option<Vec<u8>>;
}

/// One call as strace prints it on entry: `openat(AT_FDCWD, "/etc/passwd", O_RDONLY)`.
pub fn format_entry(sc: &Syscall, args: &[u64; 6], mem: &mut dyn MemoryReader) -> String {
    let mut out = String::with_capacity(64);
    out.push_str(sc.name);
    out.push('(');
    let mut first = true;
    for (i, arg) in sc.args.iter().enumerate() {
        let Some(&value) = args.get(i) else { break };
        if let ArgKind::CreatMode(flags_arg) = arg.kind {
            // Like strace: the mode means nothing without O_CREAT or O_TMPFILE.
            let flags = arg_value(args, flags_arg);
            if flags & (O_CREAT | O_TMPFILE_BIT) == 0 {
                continue;
            }
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(&format_arg(arg.kind, value, args, mem));
    }
    out.push(')');
    out
}

/// The result as strace prints it: `= 3`, `= 0x7f0000000000`,
/// `= -1 ENOENT (No such file or directory)`, or `= ?` for calls that do not return.
pub fn format_return(sc: &Syscall, ret: i64) -> String {
    if sc.ret == RetKind::NoReturn {
        return "= ?".to_string();
    }
    if (-4095..=-1).contains(&ret) {
        // In range, so the negation fits an i32.
        let n = i32::try_from(-ret).unwrap_or(0);
        return match errno::info(n) {
            Some(info) if n >= 512 => format!("= ? {} ({})", info.name, info.message),
            Some(info) => format!("= -1 {} ({})", info.name, info.message),
            None => format!("= -1 ERRNO_{n} (Unknown error {n})"),
        };
    }
    match sc.ret {
        RetKind::Addr => format!("= {}", hex(ret as u64)),
        RetKind::Mode => format!("= {}", octal_perms(ret as u64)),
        _ => format!("= {ret}"),
    }
}

fn arg_value(args: &[u64; 6], index: u8) -> u64 {
    args.get(usize::from(index)).copied().unwrap_or(0)
}

fn format_arg(kind: ArgKind, value: u64, args: &[u64; 6], mem: &mut dyn MemoryReader) -> String {
    match kind {
        ArgKind::Fd | ArgKind::Int | ArgKind::Pid => (value as i32).to_string(),
        ArgKind::DirFd => match value as i32 {
            AT_FDCWD => "AT_FDCWD".to_string(),
            fd => fd.to_string(),
        },
        ArgKind::UInt => (value as u32).to_string(),
        ArgKind::Long | ArgKind::Offset => (value as i64).to_string(),
        ArgKind::ULong | ArgKind::Size => value.to_string(),
        ArgKind::Hex => hex(value),
        ArgKind::Ptr | ArgKind::Struct(_) | ArgKind::OutBuf(_) | ArgKind::OutIoVec(_)
            if value == 0 =>
        {
            "NULL".to_string()
        }
        ArgKind::Ptr | ArgKind::Struct(_) | ArgKind::OutBuf(_) => hex(value),
        ArgKind::Path => format_cstr(value, PATH_LIMIT, mem),
        ArgKind::Str => format_cstr(value, STRING_LIMIT, mem),
        ArgKind::InBuf(len_arg) => format_buffer(value, arg_value(args, len_arg), mem),
        ArgKind::Flags(set) => format_flags(set, value),
        ArgKind::Mode | ArgKind::CreatMode(_) => format_mode(value),
        ArgKind::Signal => signal_name(value),
        ArgKind::Uid | ArgKind::Gid => match value as u32 {
            u32::MAX => "-1".to_string(),
            id => id.to_string(),
        },
        ArgKind::ClockId => format_flags(&crate::flags::CLOCKS, value),
        ArgKind::InIoVec(count_arg) => format_iovec(value, arg_value(args, count_arg), true, mem),
        ArgKind::OutIoVec(count_arg) => format_iovec(value, arg_value(args, count_arg), false, mem),
        ArgKind::StrArray => format_str_array(value, mem),
        ArgKind::EnvArray => format_env_array(value, mem),
    }
}

/// `0x1f`, and `0` for zero, as C's `%#lx`.
fn hex(value: u64) -> String {
    if value == 0 {
        "0".to_string()
    } else {
        format!("{value:#x}")
    }
}

/// Permission bits as C's `%#03o`: `000`, `022`, `0644`, `04755`.
fn octal_perms(value: u64) -> String {
    if value == 0 {
        "000".to_string()
    } else {
        format!("{:0>3}", format!("0{value:o}"))
    }
}

const FILE_TYPES: &[(&str, u64)] = &[
    ("S_IFSOCK", 0o140000),
    ("S_IFLNK", 0o120000),
    ("S_IFREG", 0o100000),
    ("S_IFBLK", 0o060000),
    ("S_IFDIR", 0o040000),
    ("S_IFCHR", 0o020000),
    ("S_IFIFO", 0o010000),
];

fn format_mode(value: u64) -> String {
    let mode = u64::from(value as u32);
    let file_type = mode & 0o170000;
    let mut out = String::new();
    let mut rest = mode & !0o177777;
    if file_type != 0 {
        match FILE_TYPES.iter().find(|(_, v)| *v == file_type) {
            Some((name, _)) => {
                out.push_str(name);
                out.push('|');
            }
            None => rest |= file_type,
        }
    }
    out.push_str(&octal_perms(mode & 0o7777));
    if rest != 0 {
        out.push_str(&format!("|{rest:#x}"));
    }
    out
}

/// Decodes `value` against `set`: `O_RDWR|O_CREAT|0x40000000`, `F_SETFD`, `PROT_NONE`.
pub fn format_flags(set: &FlagSet, value: u64) -> String {
    if set.field_mask == u64::MAX {
        // An enumeration. Its arguments are C ints: compare sign-extended, so -1 matches
        // whether the caller filled the upper half of the register or not.
        let v = value as u32 as i32 as i64 as u64;
        return match set.field.iter().find(|(_, x)| *x == v) {
            Some((name, _)) => (*name).to_string(),
            None => hex(value),
        };
    }
    let mut parts: Vec<String> = Vec::new();
    let mut rest = value;
    let mut field_name = None;
    if set.field_mask != 0 {
        let field = value & set.field_mask;
        if let Some((name, _)) = set.field.iter().find(|(_, x)| *x == field) {
            field_name = Some(*name);
            rest &= !set.field_mask;
        }
    }
    if let (Some(name), false) = (field_name, set.field_last) {
        parts.push(name.to_string());
    }
    for (name, bits) in set.bits {
        if *bits != 0 && rest & bits == *bits {
            parts.push((*name).to_string());
            rest &= !bits;
        }
    }
    if let (Some(name), true) = (field_name, set.field_last) {
        parts.push(name.to_string());
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        return match set.bits.iter().find(|(_, x)| *x == 0) {
            Some((name, _)) => (*name).to_string(),
            None => "0".to_string(),
        };
    }
    parts.join("|")
}

/// `SIGTERM`, `SIGRT_2` for real-time signals, the number otherwise.
pub fn signal_name(value: u64) -> String {
    let n = value as i32;
    if let Some((name, _)) = SIGNAL_NAMES.iter().find(|(_, x)| *x == u64::from(n as u32)) {
        return (*name).to_string();
    }
    if (32..=64).contains(&n) {
        return format!("SIGRT_{}", n - 32);
    }
    n.to_string()
}

/// Quotes and escapes `bytes` as a C string literal, as strace does.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                // The shortest octal escape, unless the next byte is an octal digit
                // that would be read as part of it.
                let next_is_digit = bytes.get(i + 1).is_some_and(|n| (b'0'..=b'7').contains(n));
                if next_is_digit {
                    out.push_str(&format!("\\{b:03o}"));
                } else {
                    out.push_str(&format!("\\{b:o}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// A NUL-terminated string at `addr`, at most `limit` bytes of it shown.
fn format_cstr(addr: u64, limit: usize, mem: &mut dyn MemoryReader) -> String {
    if addr == 0 {
        return "NULL".to_string();
    }
    // One byte more than shown tells whether the string goes on.
    match mem.read_cstr(addr, limit.saturating_add(1)) {
        Some(bytes) if bytes.len() > limit => {
            let shown = bytes.get(..limit).unwrap_or(&bytes);
            format!("{}...", quote(shown))
        }
        Some(bytes) => quote(&bytes),
        None => hex(addr),
    }
}

/// A buffer of `len` bytes the kernel will read, shown as a string.
fn format_buffer(addr: u64, len: u64, mem: &mut dyn MemoryReader) -> String {
    if addr == 0 {
        return "NULL".to_string();
    }
    let shown = usize::try_from(len).unwrap_or(usize::MAX).min(STRING_LIMIT);
    match mem.read_bytes(addr, shown) {
        Some(bytes) if len > shown as u64 => format!("{}...", quote(&bytes)),
        Some(bytes) => quote(&bytes),
        None => hex(addr),
    }
}

fn read_u64(mem: &mut dyn MemoryReader, addr: u64) -> Option<u64> {
    let bytes = mem.read_bytes(addr, 8)?;
    let array: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    // x86_64 and aarch64 are both little-endian.
    Some(u64::from_le_bytes(array))
}

/// `[{iov_base="abc", iov_len=3}, …]`. The data is shown only for iovecs the kernel reads;
/// the others are not filled yet when the call starts.
fn format_iovec(addr: u64, count: u64, data: bool, mem: &mut dyn MemoryReader) -> String {
    if addr == 0 {
        return "NULL".to_string();
    }
    // More than UIO_MAXIOV entries is EINVAL; do not read them.
    if count > 1024 {
        return hex(addr);
    }
    let shown = usize::try_from(count).unwrap_or(0).min(ARRAY_LIMIT);
    let mut parts = Vec::with_capacity(shown);
    for i in 0..shown {
        let Some(entry) = (i as u64)
            .checked_mul(16)
            .and_then(|off| addr.checked_add(off))
        else {
            return hex(addr);
        };
        let (Some(base), Some(len)) = (
            read_u64(mem, entry),
            entry.checked_add(8).and_then(|a| read_u64(mem, a)),
        ) else {
            return hex(addr);
        };
        let base_text = if data {
            format_buffer(base, len, mem)
        } else if base == 0 {
            "NULL".to_string()
        } else {
            hex(base)
        };
        parts.push(format!("{{iov_base={base_text}, iov_len={len}}}"));
    }
    if count > shown as u64 {
        parts.push("...".to_string());
    }
    format!("[{}]", parts.join(", "))
}

/// `["ls", "-l"]` for a NULL-terminated array of string pointers.
fn format_str_array(addr: u64, mem: &mut dyn MemoryReader) -> String {
    if addr == 0 {
        return "NULL".to_string();
    }
    let mut parts = Vec::new();
    for i in 0..=ARRAY_LIMIT {
        let Some(slot) = (i as u64).checked_mul(8).and_then(|o| addr.checked_add(o)) else {
            return hex(addr);
        };
        let Some(ptr) = read_u64(mem, slot) else {
            return hex(addr);
        };
        if ptr == 0 {
            return format!("[{}]", parts.join(", "));
        }
        if i == ARRAY_LIMIT {
            break;
        }
        parts.push(format_cstr(ptr, STRING_LIMIT, mem));
    }
    parts.push("...".to_string());
    format!("[{}]", parts.join(", "))
}

/// `0x7ffd… /* 23 vars */`, as strace shows an environment.
fn format_env_array(addr: u64, mem: &mut dyn MemoryReader) -> String {
    if addr == 0 {
        return "NULL".to_string();
    }
    for i in 0..ENV_COUNT_LIMIT {
        let Some(slot) = (i as u64).checked_mul(8).and_then(|o| addr.checked_add(o)) else {
            break;
        };
        match read_u64(mem, slot) {
            Some(0) => return format!("{} /* {i} vars */", hex(addr)),
            Some(_) => {}
            None => break,
        }
    }
    hex(addr)
}
