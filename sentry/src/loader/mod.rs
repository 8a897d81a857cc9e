//! Loading programs: ELF (static, static-PIE, dynamic), `#!` scripts, the initial stack.
