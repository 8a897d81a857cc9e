//! The syscall table's statuses and the dispatcher must agree: a syscall is marked
//! implemented or partial exactly when `dispatch` has an arm for it. This keeps
//! docs/syscalls.md (generated from the table) honest.

use syscall_tables::{table, Arch, Status};

#[test]
fn every_dispatched_syscall_has_a_status_and_no_other() {
    let src = include_str!("../src/syscalls/mod.rs");
    let mut arms: Vec<String> = src
        .split("nr::")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest[name.len()..]
                .trim_start()
                .starts_with("=>")
                .then_some(name)
        })
        .collect();
    arms.sort();
    arms.dedup();
    let mut marked: Vec<String> = table(Arch::X86_64)
        .iter()
        .filter(|s| s.status != Status::Unimplemented)
        .map(|s| s.name.to_ascii_uppercase())
        .collect();
    marked.sort();
    let missing_status: Vec<_> = arms.iter().filter(|a| !marked.contains(a)).collect();
    let missing_arm: Vec<_> = marked.iter().filter(|m| !arms.contains(m)).collect();
    assert!(
        missing_status.is_empty(),
        "dispatched but marked unimplemented in syscall-tables: {missing_status:?}"
    );
    assert!(
        missing_arm.is_empty(),
        "marked implemented/partial but not dispatched: {missing_arm:?}"
    );
}
