//! Linux syscall and errno tables.
//!
//! One declarative table per architecture ([`x86_64`]) holds every syscall number with
//! its name, argument kinds, return kind and Carapace's support status. Everything else
//! is derived from it: the `nr::*` constants, lookup by number and name, the sentry's
//! dispatch and `--strace` lines ([`strace`]), seccomp rules, and `docs/syscalls.md`
//! ([`render_markdown`]). The crate is std-only so that anything can depend on it.
#![forbid(unsafe_code)]

pub mod errno;
pub mod flags;
pub mod strace;
mod types;
pub mod x86_64;

pub use strace::{format_entry, format_return, MemoryReader};
pub use types::{Arch, Arg, ArgKind, FlagSet, RetKind, Status, Syscall};

/// Every syscall of `arch`, in number order.
pub fn table(arch: Arch) -> &'static [Syscall] {
    match arch {
        Arch::X86_64 => x86_64::SYSCALLS,
    }
}

/// The syscall numbered `nr` on `arch`, if Linux assigned that number.
pub fn lookup(arch: Arch, nr: u64) -> Option<&'static Syscall> {
    let rows = table(arch);
    rows.binary_search_by_key(&nr, |sc| sc.nr)
        .ok()
        .and_then(|i| rows.get(i))
}

/// The syscall called `name` (`"openat"`) on `arch`.
pub fn by_name(arch: Arch, name: &str) -> Option<&'static Syscall> {
    table(arch).iter().find(|sc| sc.name == name)
}

/// How many syscalls of a table have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub implemented: usize,
    pub partial: usize,
    pub unimplemented: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.implemented + self.partial + self.unimplemented
    }
}

/// The status counts of `arch`'s table.
pub fn counts(arch: Arch) -> Counts {
    let mut counts = Counts::default();
    for sc in table(arch) {
        match sc.status {
            Status::Implemented => counts.implemented += 1,
            Status::Partial => counts.partial += 1,
            Status::Unimplemented => counts.unimplemented += 1,
        }
    }
    counts
}

/// A few human lines with the counts, for `gen-syscall-docs --summary`.
pub fn render_summary(arch: Arch) -> String {
    let c = counts(arch);
    format!(
        "{} syscalls on {}: {} implemented, {} partial, {} unimplemented (ENOSYS).\n\
         Details: docs/syscalls.md\n",
        c.total(),
        arch.name(),
        c.implemented,
        c.partial,
        c.unimplemented
    )
}

/// `docs/syscalls.md` for `arch`: what the statuses mean, the counts, one row per syscall.
pub fn render_markdown(arch: Arch) -> String {
    let c = counts(arch);
    let mut out = String::new();
    out.push_str(&format!("# Carapace syscall support ({})\n\n", arch.name()));
    out.push_str(
        "<!-- Generated from syscall-tables by `cargo run -p syscall-tables --bin \
         gen-syscall-docs`; do not edit by hand. -->\n\n",
    );
    out.push_str(
        "Every system call Linux has assigned a number on this architecture, and how far \
         the sentry emulates it. **implemented**: Linux's semantics, as far as the \
         compatibility tests know. **partial**: the common cases work; the note says what \
         does not. **unimplemented**: the call fails with `ENOSYS` and is logged once by \
         name. Nothing is passed through to the host kernel.\n\n",
    );
    out.push_str(&format!(
        "- implemented: {}\n- partial: {}\n- unimplemented: {}\n- total: {}\n\n",
        c.implemented,
        c.partial,
        c.unimplemented,
        c.total()
    ));
    out.push_str("| nr | name | status | note |\n|---:|---|---|---|\n");
    for sc in table(arch) {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            sc.nr,
            sc.name,
            sc.status.label(),
            sc.note.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests;
