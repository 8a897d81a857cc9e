//! The ptrace platform: stub processes traced with `PTRACE_SYSEMU`.
