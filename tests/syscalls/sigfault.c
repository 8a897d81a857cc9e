/* Synchronous signals from the CPU: SIGSEGV (unmapped, PROT_NONE, read-only, no-exec,
 * non-canonical; si_code, exact si_addr, and the page-fault error code and cr2 in the
 * context), recovery by siglongjmp or by fixing the mapping and returning, SIGFPE from
 * integer division, SIGILL from ud2, SIGTRAP from int3 (the handler edits rip/rax and
 * rt_sigreturn must apply that), SIGBUS past the end of a mapped file, a stack overflow
 * handled on an alternate stack; and in children, deaths by those signals when there is no
 * handler, when the signal is blocked or ignored, when the handler faults again, and by
 * abort(). */
#include "child.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>

/* Functions in assembly with labels on the instructions that trap, so the expected
 * addresses are exact. Each returns rax. */
long div0_fn(void);
long ud2_fn(void);
long int3_fn(void);
extern char div0_insn[], div0_after[], ud2_insn[], int3_after[];
__asm__(".text\n"
        ".globl div0_fn\n"
        "div0_fn:\n"
        "  mov $1, %eax\n"
        "  xor %edx, %edx\n"
        "  xor %ecx, %ecx\n"
        ".globl div0_insn\n"
        "div0_insn:\n"
        "  idivl %ecx\n"
        ".globl div0_after\n"
        "div0_after:\n"
        "  ret\n"
        ".globl ud2_fn\n"
        "ud2_fn:\n"
        "  xor %eax, %eax\n"
        ".globl ud2_insn\n"
        "ud2_insn:\n"
        "  ud2\n"
        "  add $0x70, %eax\n"
        "  ret\n"
        ".globl int3_fn\n"
        "int3_fn:\n"
        "  xor %eax, %eax\n"
        "  int3\n"
        ".globl int3_after\n"
        "int3_after:\n"
        "  ret\n");

static long page;

/* ---- what the handler saw ---- */

static sigjmp_buf jump;
static volatile int hits;
static siginfo_t got;
static greg_t got_rip, got_err, got_trapno, got_cr2;

static void save(siginfo_t *si, ucontext_t *uc)
{
    hits++;
    got = *si;
    got_rip = uc->uc_mcontext.gregs[REG_RIP];
    got_err = uc->uc_mcontext.gregs[REG_ERR];
    got_trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
    got_cr2 = uc->uc_mcontext.gregs[REG_CR2];
}

static void jump_back(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    save(si, uc);
    siglongjmp(jump, 1);
}

static void on(int sig, void (*fn)(int, siginfo_t *, void *))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO;
    sigaction(sig, &sa, NULL);
}

static void reset(void)
{
    hits = 0;
    memset(&got, 0, sizeof got);
    got_rip = got_err = got_trapno = got_cr2 = -1;
}

/* Runs fn(p) with SIGSEGV and SIGBUS going to jump_back; returns 1 if it faulted. */
static int faults(void (*fn)(volatile char *), volatile char *p)
{
    on(SIGSEGV, jump_back);
    on(SIGBUS, jump_back);
    reset();
    if (sigsetjmp(jump, 1) == 0) {
        fn(p);
        return 0;
    }
    return 1;
}

static void read_at(volatile char *p)
{
    (void)*p;
}

static void write_at(volatile char *p)
{
    *p = 1;
}

static void call_at(volatile char *p)
{
    ((void (*)(void))p)();
}

static void send_segv(volatile char *p)
{
    (void)p;
    kill(getpid(), SIGSEGV);
}

/* x86 page-fault error code bits. */
#define PF_WRITE 2
#define PF_USER 4
#define PF_INSTR 16

static void test_segv(void)
{
    /* NULL: not mapped. */
    CHECK(faults(read_at, NULL));
    CHECK_EQ(hits, 1);
    CHECK_EQ(got.si_signo, SIGSEGV);
    CHECK_EQ(got.si_code, SEGV_MAPERR);
    CHECK_EQ(got.si_addr, NULL);
    CHECK_EQ(got_trapno, 14);
    CHECK_EQ(got_err & (PF_WRITE | PF_USER), PF_USER);
    CHECK_EQ(got_cr2, 0);

    /* A page that was unmapped; the exact byte is reported. */
    char *gone = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_OK(munmap(gone, page));
    CHECK(faults(write_at, gone + 123));
    CHECK_EQ(got.si_code, SEGV_MAPERR);
    CHECK_EQ(got.si_addr, gone + 123);
    CHECK_EQ(got_err & (PF_WRITE | PF_USER), PF_WRITE | PF_USER);
    CHECK_EQ(got_cr2, (long)(gone + 123));

    /* Mapped without access: ACCERR, for reads and writes. */
    char *none = mmap(NULL, 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(none != MAP_FAILED);
    CHECK(faults(read_at, none + page + 5));
    CHECK_EQ(got.si_code, SEGV_ACCERR);
    CHECK_EQ(got.si_addr, none + page + 5);
    CHECK(faults(write_at, none));
    CHECK_EQ(got.si_code, SEGV_ACCERR);
    CHECK_EQ(got.si_addr, none);
    CHECK_EQ(got_err & PF_WRITE, PF_WRITE);

    /* Read-only: reading works, writing faults; the data is unchanged. */
    char *ro = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ro[7] = 42;
    CHECK_OK(mprotect(ro, page, PROT_READ));
    CHECK(!faults(read_at, ro + 7));
    CHECK(faults(write_at, ro + 7));
    CHECK_EQ(got.si_code, SEGV_ACCERR);
    CHECK_EQ(got.si_addr, ro + 7);
    CHECK_EQ(got_err & PF_WRITE, PF_WRITE);
    CHECK_EQ(ro[7], 42);

    /* A string literal lives in a read-only segment of the program. */
    static const char literal[] = "constant";
    CHECK(faults(write_at, (volatile char *)literal + 2));
    CHECK_EQ(got.si_code, SEGV_ACCERR);
    CHECK_EQ(got.si_addr, literal + 2);

    /* Executing a page mapped without PROT_EXEC: the fault address is the target, and
     * rip points at it too. */
    char *noexec = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    noexec[0] = (char)0xc3; /* ret */
    CHECK(faults(call_at, noexec));
    CHECK_EQ(got.si_code, SEGV_ACCERR);
    CHECK_EQ(got.si_addr, noexec);
    CHECK_EQ(got_rip, (long)noexec);
    CHECK_EQ(got_err & PF_INSTR, PF_INSTR);
    /* With PROT_EXEC the same call returns. */
    CHECK_OK(mprotect(noexec, page, PROT_READ | PROT_EXEC));
    CHECK(!faults(call_at, noexec));

    /* A non-canonical address is a general-protection fault: SI_KERNEL, no address. */
    CHECK(faults(read_at, (volatile char *)0x8000000000000000UL));
    CHECK_EQ(got.si_signo, SIGSEGV);
    CHECK_EQ(got.si_code, SI_KERNEL);
    CHECK_EQ(got.si_addr, NULL);
    CHECK_EQ(got_trapno, 13);

    /* SIGSEGV sent by a process (not the CPU) says so in si_code. */
    CHECK(faults(send_segv, NULL));
    CHECK_EQ(got.si_code, SI_USER);
    CHECK_EQ(got.si_pid, getpid());
    munmap(none, 2 * page);
    munmap(ro, page);
    munmap(noexec, page);
}

/* ---- recovering by fixing the cause and returning ---- */

static char *fixme;

static void make_writable(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    save(si, uc);
    mprotect(fixme, page, PROT_READ | PROT_WRITE);
}

static void test_fix_and_retry(void)
{
    /* The handler makes the page writable and returns: the faulting store runs again
     * and succeeds (what garbage collectors and JITs do). */
    fixme = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    on(SIGSEGV, make_writable);
    reset();
    volatile char *p = fixme + 100;
    *p = 9;
    CHECK_EQ(hits, 1);
    CHECK_EQ(got.si_addr, fixme + 100);
    CHECK_EQ(fixme[100], 9);
    signal(SIGSEGV, SIG_DFL);
    munmap(fixme, page);
}

/* ---- SIGFPE, SIGILL, SIGTRAP: the handler edits the context ---- */

static void skip_div(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    ucontext_t *uc = ucv;
    save(si, uc);
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)div0_after;
    uc->uc_mcontext.gregs[REG_RAX] = 0x5a5a;
}

static void skip_ud2(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    ucontext_t *uc = ucv;
    save(si, uc);
    uc->uc_mcontext.gregs[REG_RIP] += 2;
    uc->uc_mcontext.gregs[REG_RAX] = 0x7;
}

static void after_int3(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    ucontext_t *uc = ucv;
    save(si, uc);
    uc->uc_mcontext.gregs[REG_RAX] = 0x33;
}

static void test_cpu_traps(void)
{
    on(SIGFPE, skip_div);
    reset();
    CHECK_EQ(div0_fn(), 0x5a5a);
    CHECK_EQ(hits, 1);
    CHECK_EQ(got.si_signo, SIGFPE);
    CHECK_EQ(got.si_code, FPE_INTDIV);
    CHECK_EQ(got.si_addr, div0_insn);
    CHECK_EQ(got_rip, (long)div0_insn);
    CHECK_EQ(got_trapno, 0);
    signal(SIGFPE, SIG_DFL);

    on(SIGILL, skip_ud2);
    reset();
    CHECK_EQ(ud2_fn(), 0x77);
    CHECK_EQ(hits, 1);
    CHECK_EQ(got.si_signo, SIGILL);
    CHECK_EQ(got.si_code, ILL_ILLOPN);
    CHECK_EQ(got.si_addr, ud2_insn);
    CHECK_EQ(got_rip, (long)ud2_insn);
    CHECK_EQ(got_trapno, 6);
    signal(SIGILL, SIG_DFL);

    /* int3 is a trap: rip is already past it. */
    on(SIGTRAP, after_int3);
    reset();
    CHECK_EQ(int3_fn(), 0x33);
    CHECK_EQ(hits, 1);
    CHECK_EQ(got.si_signo, SIGTRAP);
    CHECK_EQ(got.si_code, SI_KERNEL);
    CHECK_EQ(got_rip, (long)int3_after);
    CHECK_EQ(got_trapno, 3);
    /* Twice, to be sure the first one left nothing behind. */
    reset();
    CHECK_EQ(int3_fn(), 0x33);
    CHECK_EQ(hits, 1);
    signal(SIGTRAP, SIG_DFL);
}

/* ---- SIGBUS past the end of a file ---- */

static void test_sigbus(void)
{
    const char *path = tmp_path("short");
    CHECK_OK(write_file(path, "0123456789", 10));
    int fd = CHECK_OK(open(path, O_RDONLY));
    char *m = mmap(NULL, 2 * page, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED);
    close(fd);
    /* The partial last page reads as the file then zeros... */
    CHECK(!faults(read_at, m + 5));
    CHECK_EQ(m[5], '5');
    CHECK(!faults(read_at, m + 100));
    CHECK_EQ(m[100], 0);
    /* ... the page wholly past the end is SIGBUS. */
    CHECK(faults(read_at, m + page + 1));
    CHECK_EQ(got.si_signo, SIGBUS);
    CHECK_EQ(got.si_code, BUS_ADRERR);
    CHECK_EQ(got.si_addr, m + page + 1);
    munmap(m, 2 * page);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
}

/* ---- stack overflow onto an alternate stack, in a child ---- */

static void overflowed(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    _exit(sig == SIGSEGV && si->si_code == SEGV_MAPERR ? 0 : 1);
}

/* Recurses until `depth` levels, which is always more than the stack allows. */
static int recurse(volatile char *prev, long depth)
{
    volatile char buf[1024];
    buf[0] = prev ? prev[0] + 1 : 0;
    if (depth == 0)
        return buf[0];
    return recurse(buf, depth - 1) + buf[1];
}

static void child_overflow(void *arg)
{
    (void)arg;
    /* A small stack limit keeps the run short. */
    struct rlimit rl = { 1 << 20, 1 << 20 };
    setrlimit(RLIMIT_STACK, &rl);
    static char alt[64 * 1024];
    stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt };
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = overflowed;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    recurse(NULL, 1L << 40);
    _exit(2);
}

/* ---- deaths, in children ---- */

static void die_null(void *arg)
{
    (void)arg;
    no_core_files();
    read_at(NULL);
    _exit(3);
}

static void die_div0(void *arg)
{
    (void)arg;
    no_core_files();
    div0_fn();
    _exit(3);
}

static void die_ud2(void *arg)
{
    (void)arg;
    no_core_files();
    ud2_fn();
    _exit(3);
}

static void die_int3(void *arg)
{
    (void)arg;
    no_core_files();
    int3_fn();
    _exit(3);
}

/* A fault while SIGSEGV is blocked cannot be held back: the process dies. */
static void die_blocked(void *arg)
{
    (void)arg;
    no_core_files();
    on(SIGSEGV, jump_back);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSEGV);
    sigprocmask(SIG_BLOCK, &s, NULL);
    read_at(NULL);
    _exit(3);
}

/* Nor can it be ignored. */
static void die_ignored(void *arg)
{
    (void)arg;
    no_core_files();
    signal(SIGSEGV, SIG_IGN);
    read_at(NULL);
    _exit(3);
}

/* A handler that faults again (SIGSEGV blocked inside it): the process dies. */
static void fault_again(int sig)
{
    (void)sig;
    read_at(NULL);
    _exit(4);
}

static void die_in_handler(void *arg)
{
    (void)arg;
    no_core_files();
    signal(SIGSEGV, fault_again);
    read_at(NULL);
    _exit(3);
}

static void abort_handler(int sig)
{
    (void)sig;
}

/* abort() kills with SIGABRT even when a handler returns. */
static void die_abort(void *arg)
{
    (void)arg;
    no_core_files();
    if (arg)
        signal(SIGABRT, abort_handler);
    abort();
}

static int child_status(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        fn(arg);
        _exit(5);
    }
    return wait_status(pid, 0);
}

static void test_deaths(void)
{
    CHECK_EXITED(child_status(child_overflow, NULL), 0);
    CHECK_KILLED(child_status(die_null, NULL), SIGSEGV);
    CHECK_KILLED(child_status(die_div0, NULL), SIGFPE);
    CHECK_KILLED(child_status(die_ud2, NULL), SIGILL);
    CHECK_KILLED(child_status(die_int3, NULL), SIGTRAP);
    CHECK_KILLED(child_status(die_blocked, NULL), SIGSEGV);
    CHECK_KILLED(child_status(die_ignored, NULL), SIGSEGV);
    CHECK_KILLED(child_status(die_in_handler, NULL), SIGSEGV);
    CHECK_KILLED(child_status(die_abort, NULL), SIGABRT);
    CHECK_KILLED(child_status(die_abort, "with a handler"), SIGABRT);
}

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    check_tmpdir("sigfault");
    test_segv();
    test_fix_and_retry();
    test_cpu_traps();
    test_sigbus();
    test_deaths();
    return check_done();
}
