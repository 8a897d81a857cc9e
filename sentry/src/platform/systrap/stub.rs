//! The systrap stub: position-independent code the sentry execs as a tiny static ELF for
//! every new address space, and the seccomp filter its threads run under.
//!
//! Each stub thread owns a 64 KiB *slot* in a memfd shared with the sentry, aligned to its
//! size so that code running on the slot's signal stack finds the slot from `rsp` alone:
//!
//! ```text
//! slot + 0x0000  header: state (futex word), sleep flags, command, fs/gs base requests
//! slot + 0x0080  siginfo of the last stop
//! slot + 0x0100  the general registers of the last stop (sigcontext order)
//! slot + 0x1000  the FP/vector state of the last stop, as in the signal frame
//! slot + 0x8000  ..0x10000: the thread's alternate signal stack
//! ```
//!
//! Every syscall the application makes traps (seccomp `SECCOMP_RET_TRAP` → SIGSYS), and
//! so do faults; the one handler saves the state into the slot, sets the state word to
//! `STOPPED`, wakes the sentry if it sleeps, and waits (spinning briefly, then on the
//! futex) until the sentry writes `RUN` (copy the registers back and return into the
//! application), `CMD` (make one host syscall for the sentry: mappings) or `CLONE` (make a
//! new stub thread in this address space).

use super::super::ptrace::STUB_BASE;

/// Size and alignment of a thread's slot.
pub const SLOT_SIZE: u64 = 0x1_0000;
/// Where slot 0 lives in every stub; slot `i` is at `SLOTS_BASE + i * SLOT_SIZE`. Above
/// the stub's code page and below the exec-time stack, which is unmapped at setup.
pub const SLOTS_BASE: u64 = STUB_BASE + 0x1_0000_0000;
/// How many slots fit below the top of user space (0x7fff_ffff_f000).
pub const MAX_SLOTS: u64 = 0xe_0000;

// Offsets inside a slot.
pub const STATE: usize = 0;
pub const STUB_SLEEPING: usize = 4;
pub const SENTRY_SLEEPING: usize = 8;
pub const KIND: usize = 12;
pub const CMD_NR: usize = 16;
pub const CMD_ARGS: usize = 24;
pub const CMD_RET: usize = 72;
pub const FP_LEN: usize = 80;
pub const FS_DIRTY: usize = 84;
pub const GS_DIRTY: usize = 88;
/// How often the stub checks the state word before it sleeps on the futex.
pub const SPIN: usize = 92;
pub const FS_BASE: usize = 96;
pub const GS_BASE: usize = 104;
/// Set by the sentry while the stub and its host thread are on different CPUs (so that
/// spinning on either side can pay); the stub does not read it.
pub const SPLIT: usize = 112;
/// Set by the sentry when the FP state in the slot must be loaded on a patched-site
/// return (it changed it after a fast stop).
pub const FP_RESTORE: usize = 116;
/// The slot's own address in the stub, for the patched-site path (it finds it through gs).
pub const SELF: usize = 120;
pub const SIGINFO: usize = 128;
pub const GREGS: usize = 256;
/// Bytes of `struct sigcontext` copied: r8 … cr2 (23 words), not the fpstate pointer.
pub const GREGS_LEN: usize = 184;
/// Scratch space a new thread uses for its own setup.
const CHILD_SCRATCH: usize = 448;
/// Scratch space the sentry uses to set the first thread up (sigaction, filter).
pub const SETUP: usize = 512;
/// The patched-site path's own stack grows down from here (the set-up area is free once
/// the first thread runs); the application's rsp is kept just above it.
pub const FAST_STACK: usize = 0xf00;
pub const FAST_RSP: usize = 0xf08;
/// A kick came while the stub was in the patched-site path: report it before returning.
pub const PENDING_KICK: usize = 0xf10;
/// The application's rax on entry to the patched-site path.
pub const FAST_RAX: usize = 0xf18;
pub const FP: usize = 0x1000;
pub const FP_MAX: usize = 0x8000 - FP;
/// The alternate signal stack: the upper half of the slot.
pub const ALTSTACK: u64 = 0x8000;

// Values of the state word.
/// The stub waits in its handler; the slot holds its state.
pub const S_STOPPED: u32 = 1;
/// The sentry asks the stub to go back into the application.
pub const S_RUN: u32 = 2;
/// The sentry asks for one host syscall (`CMD_NR`, `CMD_ARGS` → `CMD_RET`).
pub const S_CMD: u32 = 3;
/// The sentry asks for a new stub thread (`clone(CMD_ARGS[0], CMD_ARGS[1])`).
pub const S_CLONE: u32 = 4;
/// The sentry asks for the FP state after a fast stop (`XSAVE` into the slot).
pub const S_XSAVE: u32 = 5;
/// The sentry asks a stub thread for a new stub process, a copy of its address space
/// (see [`FORK_FLAGS`]): `CMD_ARGS[0]` is where the child's slot is in the slots file (it
/// maps it where the thread's own is), `CMD_ARGS[1]` the sentry's pid; `CMD_RET` the
/// child's pid. The child then makes the batch of calls the sentry left in its slot
/// (`CMD_ARGS[0]` of the child's slot: how many) and parks.
pub const S_FORK: u32 = 6;
/// The sentry asks for a list of host syscalls (mappings), `CMD_ARGS[0]` of them at
/// [`BATCH`], each a number and six arguments; `CMD_RET` is 0, or the first error (the
/// rest are not made).
pub const S_BATCH: u32 = 7;
/// Where a batch's calls are: the set-up area, free once the first thread runs (the
/// patched-site path's stack above it holds a word or two).
pub const BATCH: usize = SETUP;
/// How many calls a batch holds.
pub const BATCH_MAX: usize = (FAST_STACK - 0x100 - BATCH) / 56;

/// How the zygote forks: a copy of its address space (its code, jump table and slot
/// mapping, all small), the sentry's child so that it can be reaped. The signal
/// handlers, signal stack, gs base and seccomp filter come with it.
pub const FORK_FLAGS: u64 = libc::CLONE_PARENT as u64;
/// Where the stub's descriptor of the slots file is.
pub const CTLFD: u64 = 1;

/// `KIND` of a stop from a patched syscall site (not a signal number).
pub const K_FAST: u32 = 0x100;
/// `KIND` of a stop the patched-site path makes for a kick instead of returning into the
/// application (the slot's registers are the ones it was to return to).
pub const K_FAST_INT: u32 = 0x101;
/// `KIND` of a fast stop from a `mov 8(%rsp),%r9; syscall` site (glibc's `syscall()`):
/// the number is rax, and r9 is still to be loaded from the stack.
pub const K_FAST_LOAD: u32 = 0x102;
/// The entry number of a site whose number is in rax.
pub const NR_IN_RAX: u64 = u64::MAX;

/// Syscall patching. A site `mov $nr,%eax; syscall` (b8 imm32 0f 05) becomes
/// `jmp *TABLE+8i` (ff 24 25 imm32) whose 32-bit address ends in the bytes 0f 05: the
/// `syscall` instruction stays where it was, so code that jumps straight to it (or a
/// thread that was between the two instructions) still traps as before. `TABLE+8i` holds
/// the address of thunk `i` in the stub image (`mov $i,%ecx; jmp fast`); the fast path
/// reads the number and the return address of entry `i` from the data area, hands the
/// registers over through the slot like the signal handler, and returns with `iretq`.
pub const PATCH_TABLE: u64 = 0x050f_0000;
/// How many sites (distinct number and return address pairs) can be patched.
pub const PATCH_ENTRIES: u64 = 0x2000;
pub const PATCH_TABLE_LEN: u64 = PATCH_ENTRIES * 8;
/// Thunks: 16 bytes each, right after the code page.
pub const THUNKS: u64 = STUB_BASE + 0x1000;
const THUNK_SIZE: u64 = 16;
/// The end of the stub image (code page and thunks).
pub const IMAGE_END: u64 = THUNKS + PATCH_ENTRIES * THUNK_SIZE;
/// Per-entry data (nr, return address), written by the sentry, read-only in the stub.
pub const PATCH_DATA: u64 = STUB_BASE + 0x4_0000;
pub const PATCH_DATA_LEN: u64 = PATCH_ENTRIES * 16;

/// `AUDIT_ARCH_X86_64` (linux/audit.h): EM_X86_64 | 64-bit | little endian.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// `ucontext_t.uc_mcontext` offset and the `fpregs` pointer inside it.
const UC_MCONTEXT: usize = 40;
const UC_FPREGS: usize = UC_MCONTEXT + GREGS_LEN;
/// `FP_XSTATE_MAGIC1` in the software-reserved bytes of an XSAVE signal frame.
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;

std::arch::global_asm!(
    ".pushsection .rodata.carapace_systrap_stub,\"a\",@progbits",
    ".balign 64",
    ".globl carapace_systrap_start",
    ".hidden carapace_systrap_start",
    "carapace_systrap_start:",
    // Entry after exec: never runs free (the sentry sets it up under ptrace first).
    "2: int3",
    "jmp 2b",
    // Injection site for the set-up: syscall; int3.
    ".globl carapace_systrap_inject",
    ".hidden carapace_systrap_inject",
    "carapace_systrap_inject:",
    "syscall",
    "int3",
    // A new thread waits here: the trap reports it to the sentry as parked.
    ".globl carapace_systrap_park",
    ".hidden carapace_systrap_park",
    "carapace_systrap_park:",
    "int3",
    "jmp carapace_systrap_park",
    // The first thread's set-up, run once after the sentry detaches: the host syscalls
    // listed at r12 (r13 entries of nr and six arguments), stopping at the first error,
    // then park. rbx is the slot.
    ".globl carapace_systrap_batch",
    ".hidden carapace_systrap_batch",
    "carapace_systrap_batch:",
    "20:",
    "mov rax, [r12]",
    "mov rdi, [r12 + 8]",
    "mov rsi, [r12 + 16]",
    "mov rdx, [r12 + 24]",
    "mov r10, [r12 + 32]",
    "mov r8, [r12 + 40]",
    "mov r9, [r12 + 48]",
    "syscall",
    "cmp rax, -4095",
    "jae 21f",
    "add r12, 56",
    "dec r13",
    "jnz 20b",
    "jmp carapace_systrap_park",
    "21:",
    "ud2",
    // sa_restorer of every handler.
    ".globl carapace_systrap_restorer",
    ".hidden carapace_systrap_restorer",
    "carapace_systrap_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
    // The handler: rdi = signo, rsi = siginfo, rdx = ucontext. Any register may be used:
    // sigreturn restores the application's from the frame.
    ".balign 16",
    ".globl carapace_systrap_handler",
    ".hidden carapace_systrap_handler",
    "carapace_systrap_handler:",
    // A kick can land in the patched-site path (only there are handled signals not
    // blocked in the stub's own code). In its tail, the application's registers are all
    // in the slot: the kick is taken as if it came a moment later, in the application,
    // and the return goes through this frame. Anywhere else it is noted and the path
    // reports it before it next returns into the application.
    "cmp edi, {kick}",
    "jne 31f",
    "mov rax, [rdx + {uc_mcontext} + 128]",
    "movabs rcx, {stub_base}",
    "mov r8, rax",
    "sub r8, rcx",
    "cmp r8, {image_len}",
    "jae 31f",
    "mov rbx, rsp",
    "and rbx, -{slot}",
    "lea rcx, [rip + carapace_systrap_fast_tail]",
    "cmp rax, rcx",
    "jb 32f",
    "lea rcx, [rip + carapace_systrap_fast_end]",
    "cmp rax, rcx",
    "jae 32f",
    "mov r8, rdi",
    "mov r9, rsi",
    "mov r10, rdx",
    "lea rsi, [rbx + {gregs}]",
    "lea rdi, [rdx + {uc_mcontext}]",
    "mov ecx, {gregs_len}",
    "rep movsb",
    "mov rdi, r8",
    "mov rsi, r9",
    "mov rdx, r10",
    "jmp 31f",
    "32:",
    "mov dword ptr [rbx + {pending_kick}], 1",
    "ret",
    "31:",
    "mov rbx, rsp",
    "and rbx, -{slot}",
    "mov r12, rdx",
    "mov [rbx + {kind}], edi",
    "lea rdi, [rbx + {siginfo}]",
    "mov ecx, 128",
    "rep movsb",
    "lea rsi, [r12 + {uc_mcontext}]",
    "lea rdi, [rbx + {gregs}]",
    "mov ecx, {gregs_len}",
    "rep movsb",
    "xor ecx, ecx",
    "mov rsi, [r12 + {uc_fpregs}]",
    "test rsi, rsi",
    "jz 3f",
    "mov ecx, 512",
    "cmp dword ptr [rsi + 464], {magic1}",
    "jne 3f",
    "mov ecx, [rsi + 468]",
    "cmp ecx, {fp_max}",
    "jbe 3f",
    "mov ecx, 512",
    "3:",
    "mov [rbx + {fp_len}], ecx",
    "lea rdi, [rbx + {fp}]",
    "rep movsb",
    // Report: the slot is complete; wake the sentry if it sleeps. r12 is the
    // frame's ucontext, or 0 on the patched-site path.
    "4:",
    "carapace_systrap_report:",
    "mov dword ptr [rbx + {state}], {stopped}",
    "mfence",
    "cmp dword ptr [rbx + {sentry_sleeping}], 0",
    "je 5f",
    "mov rdi, rbx",
    "mov esi, 1", // FUTEX_WAKE (shared: the sentry maps the same memfd page)
    "mov edx, 1",
    "mov eax, 202",
    "syscall",
    // Wait for the sentry's answer: spin, then sleep.
    "5:",
    "mov ecx, [rbx + {spin}]",
    "test ecx, ecx",
    "jz 17f",
    "6:",
    "mov eax, [rbx + {state}]",
    "cmp eax, {stopped}",
    "jne 8f",
    "pause",
    "dec ecx",
    "jnz 6b",
    "17:",
    "mov dword ptr [rbx + {stub_sleeping}], 1",
    "mfence",
    "7:",
    "mov eax, [rbx + {state}]",
    "cmp eax, {stopped}",
    "jne 9f",
    "mov rdi, rbx",
    "xor esi, esi", // FUTEX_WAIT
    "mov edx, {stopped}",
    "xor r10d, r10d",
    "mov eax, 202",
    "syscall",
    "jmp 7b",
    "9:",
    "mov dword ptr [rbx + {stub_sleeping}], 0",
    "8:",
    "cmp eax, {run}",
    "je 10f",
    "cmp eax, {cmd}",
    "je 11f",
    "cmp eax, {clone}",
    "je 12f",
    "cmp eax, {xsave}",
    "je 18f",
    "cmp eax, {fork}",
    "je 22f",
    "cmp eax, {batch_state}",
    "je 25f",
    "ud2",
    // RUN: fs/gs base if the sentry changed them, then registers and FP state back into
    // the frame, and return through the restorer.
    "10:",
    "cmp dword ptr [rbx + {fs_dirty}], 0",
    "je 13f",
    "mov dword ptr [rbx + {fs_dirty}], 0",
    "mov edi, 0x1002", // ARCH_SET_FS
    "mov rsi, [rbx + {fs_base}]",
    "mov eax, 158",
    "syscall",
    "13:",
    "cmp dword ptr [rbx + {gs_dirty}], 0",
    "je 14f",
    "mov dword ptr [rbx + {gs_dirty}], 0",
    "mov edi, 0x1001", // ARCH_SET_GS
    "mov rsi, [rbx + {gs_base}]",
    "mov eax, 158",
    "syscall",
    "14:",
    "test r12, r12",
    "jz carapace_systrap_fast_return",
    "lea rsi, [rbx + {gregs}]",
    "lea rdi, [r12 + {uc_mcontext}]",
    "mov ecx, {gregs_len}",
    "rep movsb",
    "mov rdi, [r12 + {uc_fpregs}]",
    "test rdi, rdi",
    "jz 15f",
    "mov ecx, [rbx + {fp_len}]",
    "cmp ecx, {fp_max}",
    "ja 15f",
    "lea rsi, [rbx + {fp}]",
    "rep movsb",
    "15:",
    "ret",
    // CMD: one host syscall for the sentry.
    "11:",
    "mov rax, [rbx + {cmd_nr}]",
    "mov rdi, [rbx + {cmd_args}]",
    "mov rsi, [rbx + {cmd_args} + 8]",
    "mov rdx, [rbx + {cmd_args} + 16]",
    "mov r10, [rbx + {cmd_args} + 24]",
    "mov r8, [rbx + {cmd_args} + 32]",
    "mov r9, [rbx + {cmd_args} + 40]",
    "syscall",
    "mov [rbx + {cmd_ret}], rax",
    "jmp 4b",
    // CLONE: a new stub thread whose stack is the top of its own (already mapped) slot.
    "12:",
    "mov rdi, [rbx + {cmd_args}]",
    "mov rsi, [rbx + {cmd_args} + 8]",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "mov eax, 56",
    "syscall",
    "test rax, rax",
    "jz 16f",
    "mov [rbx + {cmd_ret}], rax",
    "jmp 4b",
    // The new thread: its own signal stack (clone with CLONE_VM gave it none), no
    // blocked signals (it was cloned inside a handler), then park.
    "16:",
    "mov rbx, rsp",
    "and rbx, -{slot}",
    "lea rax, [rbx + {altstack}]",
    "mov [rbx + {scratch}], rax",
    "mov qword ptr [rbx + {scratch} + 8], 0",
    "mov qword ptr [rbx + {scratch} + 16], {altstack}",
    "lea rdi, [rbx + {scratch}]",
    "xor esi, esi",
    "mov eax, 131",
    "syscall",
    "call 43f",
    "mov edi, 0x1001", // ARCH_SET_GS: the patched-site path finds the slot through gs
    "mov rsi, rbx",
    "mov eax, 158",
    "syscall",
    "jmp carapace_systrap_park",
    // FORK: a new stub process, a copy of this one's address space.
    "22:",
    "mov r14, [rbx + {cmd_args}]",
    "mov r15, [rbx + {cmd_args} + 8]",
    "mov edi, {fork_flags}",
    "xor esi, esi",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "mov eax, 56",
    "syscall",
    "test rax, rax",
    "jz 23f",
    "mov [rbx + {cmd_ret}], rax",
    "jmp 4b",
    // The child: its stack is in the forking thread's slot, which it still shares, so
    // before it touches memory it puts its own slot (r14 in the slots file) there.
    "23:",
    "mov rdi, rbx",
    "mov esi, {slot}",
    "mov edx, 3", // PROT_READ | PROT_WRITE
    "mov r10d, 0x11", // MAP_SHARED | MAP_FIXED
    "mov r8d, {ctlfd}",
    "mov r9, r14",
    "mov eax, 9",
    "syscall",
    "cmp rax, rbx",
    "jne 24f",
    "lea rsp, [rbx + {slot} - 64]",
    // Die with the sentry, and not be left behind if it is already gone.
    "mov edi, 1", // PR_SET_PDEATHSIG
    "mov esi, 9",
    "mov eax, 157",
    "syscall",
    "mov eax, 110", // getppid
    "syscall",
    "cmp rax, r15",
    "jne 24f",
    // No blocked signals (it was forked inside a handler).
    "call 43f",
    // The mapping changes the sentry left in its slot (a batch), then park. A failure
    // reports as SIGILL instead of the park: the sentry gives the child up.
    "call 40f",
    "test rax, rax",
    "jz carapace_systrap_park",
    "ud2",
    "24:",
    "mov edi, 127",
    "mov eax, 231",
    "syscall",
    "ud2",
    // BATCH: the listed host syscalls, stopping at the first error.
    "25:",
    "call 40f",
    "mov [rbx + {cmd_ret}], rax",
    "jmp 4b",
    // Make the batch in the slot (`CMD_ARGS[0]` calls at `BATCH`): rax is 0, or the
    // first error (the rest are not made).
    "40:",
    "lea r14, [rbx + {batch_area}]",
    "mov r15, [rbx + {cmd_args}]",
    "xor eax, eax",
    "41:",
    "test r15, r15",
    "jz 42f",
    "mov rax, [r14]",
    "mov rdi, [r14 + 8]",
    "mov rsi, [r14 + 16]",
    "mov rdx, [r14 + 24]",
    "mov r10, [r14 + 32]",
    "mov r8, [r14 + 40]",
    "mov r9, [r14 + 48]",
    "syscall",
    "cmp rax, -4095",
    "jae 42f",
    "xor eax, eax",
    "add r14, 56",
    "dec r15",
    "jmp 41b",
    "42:",
    "ret",
    // Block no signal (a new thread or process starts inside a handler's mask).
    "43:",
    "mov qword ptr [rbx + {scratch} + 24], 0",
    "mov edi, 2", // SIG_SETMASK
    "lea rsi, [rbx + {scratch} + 24]",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 14",
    "syscall",
    "ret",
    // XSAVE: the FP state of a fast stop, for the sentry (the path does not save it).
    "18:",
    "mov eax, -1",
    "mov edx, -1",
    "xsave64 [rbx + {fp}]",
    "jmp 4b",
    // The patched-site path, entered from a thunk: ecx is the entry; rax, rcx and r11
    // are free (the syscall it replaces clobbers them). gs is the slot.
    ".balign 16",
    ".globl carapace_systrap_fast",
    ".hidden carapace_systrap_fast",
    "carapace_systrap_fast:",
    "mov gs:[{fast_rax}], rax",
    "mov gs:[{fast_rsp}], rsp",
    "mov rsp, gs:[{self_}]",
    "lea rsp, [rsp + {fast_stack}]",
    "pushfq",
    "mov rax, rsp",
    "and rax, -{slot}",
    "mov [rax + {gregs}], r8",
    "mov [rax + {gregs} + 8], r9",
    "mov [rax + {gregs} + 16], r10",
    "mov [rax + {gregs} + 32], r12",
    "mov [rax + {gregs} + 40], r13",
    "mov [rax + {gregs} + 48], r14",
    "mov [rax + {gregs} + 56], r15",
    "mov [rax + {gregs} + 64], rdi",
    "mov [rax + {gregs} + 72], rsi",
    "mov [rax + {gregs} + 80], rbp",
    "mov [rax + {gregs} + 88], rbx",
    "mov [rax + {gregs} + 96], rdx",
    "mov rbx, rax",
    "and ecx, {entry_mask}",
    "shl ecx, 4",
    "movabs r11, {patch_data}",
    "add r11, rcx",
    "mov rax, [r11]",
    "mov rcx, [r11 + 8]",
    "mov dword ptr [rbx + {kind}], {k_fast}",
    // Entry number -1: the number is in rax (glibc's syscall()), and the sentry replays
    // the `mov 8(%rsp),%r9` the patch replaced.
    "cmp rax, -1",
    "jne 20f",
    "mov rax, [rbx + {fast_rax}]",
    "mov dword ptr [rbx + {kind}], {k_fast_load}",
    "20:",
    // As after a syscall: rax the number (orig_rax), rcx the return address, r11 the flags.
    "mov [rbx + {gregs} + 104], rax",
    "mov [rbx + {gregs} + 112], rcx",
    "mov [rbx + {gregs} + 128], rcx",
    "mov r11, [rsp]",
    "mov [rbx + {gregs} + 24], r11",
    "mov [rbx + {gregs} + 136], r11",
    "mov r11, [rbx + {fast_rsp}]",
    "mov [rbx + {gregs} + 120], r11",
    "movabs r11, 0x002b000000000033", // cs, gs, fs, ss as in a signal frame
    "mov [rbx + {gregs} + 144], r11",
    "xor r12d, r12d",
    "jmp carapace_systrap_report",
    // RUN after a fast stop: the FP state if the sentry changed it, then every register
    // from the slot; iretq sets rip, rsp and the flags at once.
    ".globl carapace_systrap_fast_return",
    ".hidden carapace_systrap_fast_return",
    "carapace_systrap_fast_return:",
    "cmp dword ptr [rbx + {fp_restore}], 0",
    "je carapace_systrap_fast_tail",
    "mov eax, -1",
    "mov edx, -1",
    "xrstor64 [rbx + {fp}]",
    "mov dword ptr [rbx + {fp_restore}], 0",
    // The tail: from here a kick is taken in the application (see the handler).
    "carapace_systrap_fast_tail:",
    "cmp dword ptr [rbx + {pending_kick}], 0",
    "je 19f",
    "mov dword ptr [rbx + {pending_kick}], 0",
    "mov dword ptr [rbx + {kind}], {k_fast_int}",
    "jmp carapace_systrap_report",
    "19:",
    "lea rsp, [rbx + {fast_stack}]",
    "push 0x2b",
    "push qword ptr [rbx + {gregs} + 120]",
    "mov rax, [rbx + {gregs} + 136]",
    "and eax, 0x50dd5", // the flags a user may set (Linux's FIX_EFLAGS)
    "or eax, 0x202",
    "push rax",
    "push 0x33",
    "push qword ptr [rbx + {gregs} + 128]",
    "mov r8, [rbx + {gregs}]",
    "mov r9, [rbx + {gregs} + 8]",
    "mov r10, [rbx + {gregs} + 16]",
    "mov r11, [rbx + {gregs} + 24]",
    "mov r12, [rbx + {gregs} + 32]",
    "mov r13, [rbx + {gregs} + 40]",
    "mov r14, [rbx + {gregs} + 48]",
    "mov r15, [rbx + {gregs} + 56]",
    "mov rdi, [rbx + {gregs} + 64]",
    "mov rsi, [rbx + {gregs} + 72]",
    "mov rbp, [rbx + {gregs} + 80]",
    "mov rdx, [rbx + {gregs} + 96]",
    "mov rax, [rbx + {gregs} + 104]",
    "mov rcx, [rbx + {gregs} + 112]",
    "mov rbx, [rbx + {gregs} + 88]",
    "iretq",
    "carapace_systrap_fast_end:",
    ".globl carapace_systrap_end",
    ".hidden carapace_systrap_end",
    "carapace_systrap_end:",
    ".popsection",
    slot = const SLOT_SIZE,
    kind = const KIND,
    siginfo = const SIGINFO,
    uc_mcontext = const UC_MCONTEXT,
    uc_fpregs = const UC_FPREGS,
    gregs = const GREGS,
    gregs_len = const GREGS_LEN,
    magic1 = const FP_XSTATE_MAGIC1,
    fp_max = const FP_MAX,
    fp_len = const FP_LEN,
    fp = const FP,
    state = const STATE,
    stopped = const S_STOPPED,
    sentry_sleeping = const SENTRY_SLEEPING,
    stub_sleeping = const STUB_SLEEPING,
    spin = const SPIN,
    run = const S_RUN,
    cmd = const S_CMD,
    clone = const S_CLONE,
    fs_dirty = const FS_DIRTY,
    gs_dirty = const GS_DIRTY,
    fs_base = const FS_BASE,
    gs_base = const GS_BASE,
    cmd_nr = const CMD_NR,
    cmd_args = const CMD_ARGS,
    cmd_ret = const CMD_RET,
    scratch = const CHILD_SCRATCH,
    altstack = const ALTSTACK,
    kick = const super::KICK_SIGNAL,
    stub_base = const STUB_BASE,
    image_len = const IMAGE_END - STUB_BASE,
    xsave = const S_XSAVE,
    fork = const S_FORK,
    batch_state = const S_BATCH,
    batch_area = const BATCH,
    fork_flags = const FORK_FLAGS,
    ctlfd = const CTLFD,
    fast_rsp = const FAST_RSP,
    fast_stack = const FAST_STACK,
    self_ = const SELF,
    entry_mask = const PATCH_ENTRIES - 1,
    patch_data = const PATCH_DATA,
    k_fast = const K_FAST,
    k_fast_int = const K_FAST_INT,
    k_fast_load = const K_FAST_LOAD,
    fast_rax = const FAST_RAX,
    pending_kick = const PENDING_KICK,
    fp_restore = const FP_RESTORE,
);

extern "C" {
    static carapace_systrap_start: u8;
    static carapace_systrap_inject: u8;
    static carapace_systrap_park: u8;
    static carapace_systrap_batch: u8;
    static carapace_systrap_restorer: u8;
    static carapace_systrap_handler: u8;
    static carapace_systrap_fast: u8;
    static carapace_systrap_end: u8;
}

/// The code, and where its entry points are (offsets from its start).
struct Code {
    bytes: &'static [u8],
    inject: u64,
    park: u64,
    batch: u64,
    restorer: u64,
    handler: u64,
    fast: u64,
}

fn code() -> Code {
    let start = std::ptr::addr_of!(carapace_systrap_start);
    let at = |p: *const u8| (p as u64).wrapping_sub(start as u64);
    let end = std::ptr::addr_of!(carapace_systrap_end);
    let len = (end as usize).saturating_sub(start as usize);
    // SAFETY: the symbols bracket one read-only block the assembler emitted above; it is
    // part of this binary's image and lives as long as the process.
    let bytes = unsafe { std::slice::from_raw_parts(start, len) };
    Code {
        bytes,
        inject: at(std::ptr::addr_of!(carapace_systrap_inject)),
        park: at(std::ptr::addr_of!(carapace_systrap_park)),
        batch: at(std::ptr::addr_of!(carapace_systrap_batch)),
        restorer: at(std::ptr::addr_of!(carapace_systrap_restorer)),
        handler: at(std::ptr::addr_of!(carapace_systrap_handler)),
        fast: at(std::ptr::addr_of!(carapace_systrap_fast)),
    }
}

/// Where the code starts in the stub's page (after the ELF and program headers).
const CODE_OFFSET: u64 = 0x100;

/// Addresses of the stub's entry points in every stub.
#[derive(Clone, Copy, Debug)]
pub struct Sites {
    /// `syscall; int3`, for injections while the stub is set up under ptrace.
    pub inject: u64,
    /// Where a thread parks (`int3`) until the sentry first runs it.
    pub park: u64,
    /// The first thread's set-up: a list of host syscalls, then the park.
    pub batch: u64,
    pub restorer: u64,
    pub handler: u64,
    /// The patched-site path the thunks jump to.
    pub fast: u64,
}

pub fn sites() -> Sites {
    let c = code();
    Sites {
        inject: STUB_BASE + CODE_OFFSET + c.inject,
        park: STUB_BASE + CODE_OFFSET + c.park,
        batch: STUB_BASE + CODE_OFFSET + c.batch,
        restorer: STUB_BASE + CODE_OFFSET + c.restorer,
        handler: STUB_BASE + CODE_OFFSET + c.handler,
        fast: STUB_BASE + CODE_OFFSET + c.fast,
    }
}

/// The stub ELF image: one read+execute PT_LOAD at `STUB_BASE` holding the code.
pub fn image() -> Vec<u8> {
    let c = code();
    let pad = CODE_OFFSET.saturating_sub(super::super::ptrace::stub::CODE_OFFSET);
    let mut code = vec![0xccu8; pad as usize];
    code.extend_from_slice(c.bytes);
    // The thunks start on the next page: `mov $i,%ecx; jmp fast`.
    let header = super::super::ptrace::stub::CODE_OFFSET;
    code.resize((THUNKS - STUB_BASE - header) as usize, 0xcc);
    let fast = sites().fast;
    for i in 0..PATCH_ENTRIES {
        let at = THUNKS + i * THUNK_SIZE;
        let rel = fast.wrapping_sub(at + 10) as u32;
        code.push(0xb9);
        code.extend_from_slice(&(i as u32).to_le_bytes());
        code.push(0xe9);
        code.extend_from_slice(&rel.to_le_bytes());
        code.extend_from_slice(&[0xcc; (THUNK_SIZE - 10) as usize]);
    }
    super::super::ptrace::stub::elf_image(&code, CODE_OFFSET)
}

/// The jump-table entry `i` points to: its thunk.
pub fn thunk(i: u64) -> u64 {
    THUNKS + i * THUNK_SIZE
}

/// The 5 bytes that replace `mov $nr,%eax` at a site using entry `i` (`jmp *TABLE+8i`,
/// whose address's upper bytes are the `syscall` that follows).
pub fn patch_bytes(i: u64) -> [u8; 5] {
    let addr = (PATCH_TABLE + i * 8) as u32;
    let b = addr.to_le_bytes();
    [0xff, 0x24, 0x25, b[0], b[1]]
}

/// The seccomp filter of every stub thread: system calls made from the stub's own code
/// page are allowed if they are ones the stub makes (with the flags it uses), and kill the
/// stub otherwise; every other system call traps (SIGSYS) into the stub's handler.
pub fn filter(clone_flags: u64) -> Vec<libc::sock_filter> {
    const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let st = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    // seccomp_data: nr at 0, arch at 4, instruction_pointer at 8, args at 16.
    let arg_lo = |n: u32| 16 + 8 * n;
    let mut f = vec![
        st(LD_ABS, 0, 0, 12),
        // Not the stub's page: trap (the jump targets are patched below).
        st(JEQ, 0, 0xff, (STUB_BASE >> 32) as u32),
        st(LD_ABS, 0, 0, 8),
        st(JGE, 0xff, 0, (STUB_BASE as u32).wrapping_add(0x1000)),
        st(LD_ABS, 0, 0, 4),
        st(JEQ, 0, 0xfe, AUDIT_ARCH_X86_64),
        st(LD_ABS, 0, 0, 0),
    ];
    // (nr, argument to check, its value)
    let checked: [(i64, u32, u32); 4] = [
        (
            libc::SYS_mmap,
            3,
            (libc::MAP_SHARED | libc::MAP_FIXED) as u32,
        ),
        (libc::SYS_clone, 0, clone_flags as u32),
        // A zygote's child: the same address space copied.
        (libc::SYS_clone, 0, FORK_FLAGS as u32),
        (libc::SYS_prctl, 0, libc::PR_SET_PDEATHSIG as u32),
    ];
    // A call may have several allowed values; one that matches none falls through to
    // the list below, which does not name it: kill.
    for (i, (nr, arg, val)) in checked.into_iter().enumerate() {
        if i > 0 {
            f.push(st(LD_ABS, 0, 0, 0));
        }
        // Not this call: skip its argument check.
        f.push(st(JEQ, 0, 2, nr as u32));
        f.push(st(LD_ABS, 0, 0, arg_lo(arg)));
        f.push(st(JEQ, 0xfd, 0, val));
    }
    f.push(st(LD_ABS, 0, 0, 0));
    let plain = [
        libc::SYS_futex,
        libc::SYS_rt_sigreturn,
        libc::SYS_munmap,
        libc::SYS_mprotect,
        libc::SYS_sigaltstack,
        libc::SYS_rt_sigprocmask,
        libc::SYS_arch_prctl,
        // A zygote's child checks it still has the sentry for a parent, or leaves.
        libc::SYS_getppid,
        libc::SYS_exit_group,
    ];
    for nr in plain {
        f.push(st(JEQ, 0xfd, 0, nr as u32));
    }
    let kill = f.len();
    f.push(st(RET, 0, 0, libc::SECCOMP_RET_KILL_PROCESS));
    let allow = f.len();
    f.push(st(RET, 0, 0, libc::SECCOMP_RET_ALLOW));
    let trap = f.len();
    f.push(st(RET, 0, 0, libc::SECCOMP_RET_TRAP));
    // Resolve the placeholders: 0xff → trap, 0xfe → kill, 0xfd → allow.
    let target = |t: u8| match t {
        0xff => Some(trap),
        0xfe => Some(kill),
        0xfd => Some(allow),
        _ => None,
    };
    for (i, ins) in f.iter_mut().enumerate().take(kill) {
        // Every placeholder jumps forward, to one of the three returns after `i`.
        if let Some(t) = target(ins.jt) {
            ins.jt = u8::try_from(t - i - 1).unwrap_or(0);
        }
        if let Some(t) = target(ins.jf) {
            ins.jf = u8::try_from(t - i - 1).unwrap_or(0);
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_fits_the_page_and_sites_are_inside() {
        let img = image();
        assert!(CODE_OFFSET as usize + code().bytes.len() <= 0x1000);
        assert_eq!(img.len() as u64, IMAGE_END - STUB_BASE);
        let s = sites();
        for a in [s.inject, s.park, s.batch, s.restorer, s.handler, s.fast] {
            assert!(a > STUB_BASE + CODE_OFFSET && a < STUB_BASE + 0x1000);
        }
        let off = (s.inject - STUB_BASE) as usize;
        assert_eq!(&img[off..off + 3], &[0x0f, 0x05, 0xcc]);
        assert_eq!(img[(s.park - STUB_BASE) as usize], 0xcc);
    }

    #[test]
    fn patched_bytes_keep_the_syscall_and_thunks_reach_the_fast_path() {
        // The table's addresses all end in 0f 05 (little endian): the syscall stays.
        assert_eq!(PATCH_TABLE >> 16, 0x050f);
        const { assert!(PATCH_TABLE + PATCH_TABLE_LEN <= 0x0510_0000) };
        let p = patch_bytes(PATCH_ENTRIES - 1);
        let addr = u32::from_le_bytes([p[3], p[4], 0x0f, 0x05]) as u64;
        assert_eq!(addr, PATCH_TABLE + (PATCH_ENTRIES - 1) * 8);
        let img = image();
        let t = (thunk(5) - STUB_BASE) as usize;
        assert_eq!(img[t], 0xb9);
        assert_eq!(u32::from_le_bytes(img[t + 1..t + 5].try_into().unwrap()), 5);
        assert_eq!(img[t + 5], 0xe9);
        let rel = i32::from_le_bytes(img[t + 6..t + 10].try_into().unwrap());
        assert_eq!(
            (thunk(5) + 10).wrapping_add(rel as i64 as u64),
            sites().fast
        );
        const { assert!(PATCH_DATA >= IMAGE_END) };
    }

    #[test]
    fn filter_jumps_stay_inside() {
        let f = filter(0x100);
        for (i, ins) in f.iter().enumerate() {
            if ins.code & libc::BPF_JMP as u16 != 0 && ins.code & 0x7 == 5 {
                assert!(i + 1 + (ins.jt as usize) < f.len());
                assert!(i + 1 + (ins.jf as usize) < f.len());
            }
        }
    }

    #[test]
    fn filter_allows_only_the_stubs_own_calls() {
        use crate::kernel::seccomp::{run, Insn, SeccompData};
        let flags = 0x100;
        let prog: Vec<Insn> = filter(flags)
            .iter()
            .map(|i| Insn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let stub_ip = sites().handler;
        let verdict = |nr: i64, a0: u64, ip: u64| {
            let mut args = [0u64; 6];
            args[0] = a0;
            if nr == libc::SYS_mmap {
                args[3] = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
            }
            let d = SeccompData {
                nr: nr as i32,
                arch: AUDIT_ARCH_X86_64,
                instruction_pointer: ip,
                args,
            };
            run(&prog, &d)
        };
        let allow = libc::SECCOMP_RET_ALLOW;
        let kill = libc::SECCOMP_RET_KILL_PROCESS;
        let trap = libc::SECCOMP_RET_TRAP;
        assert_eq!(verdict(libc::SYS_clone, flags, stub_ip), allow);
        assert_eq!(verdict(libc::SYS_clone, FORK_FLAGS, stub_ip), allow);
        assert_eq!(verdict(libc::SYS_clone, 0x11, stub_ip), kill);
        assert_eq!(
            verdict(libc::SYS_prctl, libc::PR_SET_PDEATHSIG as u64, stub_ip),
            allow
        );
        assert_eq!(
            verdict(libc::SYS_prctl, libc::PR_SET_NAME as u64, stub_ip),
            kill
        );
        assert_eq!(verdict(libc::SYS_mmap, 0, stub_ip), allow);
        assert_eq!(verdict(libc::SYS_getppid, 0, stub_ip), allow);
        assert_eq!(verdict(libc::SYS_futex, 0, stub_ip), allow);
        assert_eq!(verdict(libc::SYS_getpid, 0, stub_ip), kill);
        assert_eq!(verdict(libc::SYS_openat, 0, stub_ip), kill);
        // The application's calls, the same ones included, all trap.
        for nr in [
            libc::SYS_clone,
            libc::SYS_getpid,
            libc::SYS_mmap,
            libc::SYS_prctl,
        ] {
            assert_eq!(verdict(nr, FORK_FLAGS, 0x40_1000), trap);
        }
    }
}
