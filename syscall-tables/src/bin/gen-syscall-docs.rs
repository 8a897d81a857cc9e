//! Writes `docs/syscalls.md` from the syscall table.
//!
//! `gen-syscall-docs`            write the file
//! `gen-syscall-docs --check`    exit 1 if the committed file differs from the table
//! `gen-syscall-docs --summary`  print the status counts

use std::path::PathBuf;
use std::process::ExitCode;

use syscall_tables::{render_markdown, render_summary, Arch};

const USAGE: &str = "usage: gen-syscall-docs [--check | --summary]";

fn docs_path() -> PathBuf {
    // The workspace root is this crate's parent directory.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join("syscalls.md")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = docs_path();
    let wanted = render_markdown(Arch::X86_64);
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {
            if let Some(dir) = path.parent() {
                if let Err(err) = std::fs::create_dir_all(dir) {
                    eprintln!("gen-syscall-docs: cannot create {}: {err}", dir.display());
                    return ExitCode::FAILURE;
                }
            }
            if let Err(err) = std::fs::write(&path, wanted) {
                eprintln!("gen-syscall-docs: cannot write {}: {err}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
            ExitCode::SUCCESS
        }
        ["--check"] => match std::fs::read_to_string(&path) {
            Ok(committed) if committed == wanted => ExitCode::SUCCESS,
            Ok(_) => {
                eprintln!(
                    "docs/syscalls.md is stale: run cargo run -p syscall-tables --bin gen-syscall-docs"
                );
                ExitCode::FAILURE
            }
            Err(err) => {
                eprintln!(
                    "cannot read {}: {err}; run cargo run -p syscall-tables --bin gen-syscall-docs",
                    path.display()
                );
                ExitCode::FAILURE
            }
        },
        ["--summary"] => {
            print!("{}", render_summary(Arch::X86_64));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
