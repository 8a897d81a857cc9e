//! The committed `docs/syscalls.md` must be what the table renders today.

use std::path::PathBuf;

use syscall_tables::{render_markdown, Arch};

#[test]
fn docs_syscalls_md_is_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/syscalls.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == render_markdown(Arch::X86_64),
        "docs/syscalls.md is stale: run cargo run -p syscall-tables --bin gen-syscall-docs"
    );
}
