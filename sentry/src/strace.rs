//! `--strace`: one line per syscall, decoded with `syscall-tables`.
