/* Syscall sites that the systrap platform rewrites (syscall patching) must behave exactly
 * like the `mov $nr,%eax; syscall` they were: the same results from many threads calling
 * one site while it is rewritten; code that jumps straight to the `syscall` of a patched
 * site with another number in eax; registers the syscall ABI preserves (all but rax, rcx
 * and r11), the flags, rcx = the return address, and the vector registers around a
 * signal delivered on the way back; JIT code rewritten after it ran (RW -> RX -> RW);
 * fork after patching; a program with a gs base of its own (and its fork); signals interrupting a blocked call made from a patched site,
 * with and without SA_RESTART; a signal sent while the target returns from a patched
 * call, which must still interrupt the plain code that follows; glibc's syscall(), whose
 * site loads the sixth argument from the stack. Natively nothing is patched, and every check holds. */
#include "child.h"

#include <asm/prctl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>

/* Sites in our own text, at chosen alignments. Each is `mov $nr,%eax; syscall; ret`. */
__asm__(".text\n"
        ".balign 16\n"
        ".globl site_getpid\n"
        "site_getpid:\n"
        "  mov $39, %eax\n"
        ".globl site_getpid_syscall\n"
        "site_getpid_syscall:\n"
        "  syscall\n"
        "  ret\n"
        /* Enter at the syscall with the number the caller chose. */
        ".globl call_mid\n"
        "call_mid:\n"
        "  mov %rdi, %rax\n"
        "  jmp site_getpid_syscall\n"
        /* A site whose first five bytes cross an 8-byte word (patched in one 16-byte
         * compare-and-swap), and one that crosses a 16-byte block (it stays trapping). */
        ".balign 16\n"
        "  .byte 0x90, 0x90, 0x90, 0x90, 0x90, 0x90\n"
        ".globl site_word_cross\n"
        "site_word_cross:\n"
        "  mov $39, %eax\n"
        "  syscall\n"
        "  ret\n"
        ".balign 16\n"
        "  .byte 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90\n"
        ".globl site_unaligned\n"
        "site_unaligned:\n"
        "  mov $39, %eax\n"
        "  syscall\n"
        "  ret\n"
        /* read(fd, buf, n) from a site of its own. */
        ".balign 16\n"
        ".globl site_read\n"
        "site_read:\n"
        "  mov $0, %eax\n"
        "  syscall\n"
        "  ret\n"
        /* kill(pid, sig) from a site of its own, with xmm0 = *(rdx) around it and stored
         * back to *(rdx) after: the signal is delivered on the way back from the call. */
        ".balign 16\n"
        ".globl kill_keep_xmm\n"
        "kill_keep_xmm:\n"
        "  movdqu (%rdx), %xmm0\n"
        "  push %rdx\n"
        "  nop\n nop\n nop\n" /* the site at offset 8 */
        "  mov $62, %eax\n"
        "  syscall\n"
        "  pop %rdx\n"
        "  movdqu %xmm0, (%rdx)\n"
        "  ret\n"
        /* Registers across a getpid site: loads known values into every register the
         * ABI preserves and sets CF, makes the call, and returns a bit mask of those that
         * changed (bit 15: rcx is not the return address). */
        ".balign 16\n"
        ".globl regs_across\n"
        "regs_across:\n"
        "  push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
        "  mov $0x1111, %rbx\n mov $0x2222, %rbp\n mov $0x3333, %r12\n"
        "  mov $0x4444, %r13\n mov $0x5555, %r14\n mov $0x6666, %r15\n"
        "  mov $0x7777, %rdi\n mov $0x8888, %rsi\n mov $0x9999, %rdx\n"
        "  mov $0xaaaa, %r8\n mov $0xbbbb, %r9\n mov $0xcccc, %r10\n"
        "  stc\n"
        ".balign 8\n"
        ".globl regs_site\n"
        "regs_site:\n"
        "  mov $39, %eax\n"
        "  syscall\n"
        "regs_after:\n"
        "  setc %al\n"
        "  movzbl %al, %eax\n"
        "  xor $1, %eax\n" /* bit 0: CF lost */
        "  lea regs_after(%rip), %r11\n"
        "  cmp %r11, %rcx\n je 1f\n or $0x8000, %eax\n1:\n"
        "  cmp $0x1111, %rbx\n je 1f\n or $2, %eax\n1:\n"
        "  cmp $0x2222, %rbp\n je 1f\n or $4, %eax\n1:\n"
        "  cmp $0x3333, %r12\n je 1f\n or $8, %eax\n1:\n"
        "  cmp $0x4444, %r13\n je 1f\n or $16, %eax\n1:\n"
        "  cmp $0x5555, %r14\n je 1f\n or $32, %eax\n1:\n"
        "  cmp $0x6666, %r15\n je 1f\n or $64, %eax\n1:\n"
        "  cmp $0x7777, %rdi\n je 1f\n or $128, %eax\n1:\n"
        "  cmp $0x8888, %rsi\n je 1f\n or $256, %eax\n1:\n"
        "  cmp $0x9999, %rdx\n je 1f\n or $512, %eax\n1:\n"
        "  cmp $0xaaaa, %r8\n je 1f\n or $1024, %eax\n1:\n"
        "  cmp $0xbbbb, %r9\n je 1f\n or $2048, %eax\n1:\n"
        "  cmp $0xcccc, %r10\n je 1f\n or $4096, %eax\n1:\n"
        "  pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
        "  ret\n");

long site_getpid(void);
long call_mid(long nr);
long site_unaligned(void);
long site_word_cross(void);
long site_read(long fd, void *buf, long n);
long kill_keep_xmm(long pid, long sig, void *xmm);
long regs_across(void);

/* ---- many threads on one site ---- */

#define THREADS 8
#define CALLS 10000

static pthread_barrier_t start;
static pid_t main_pid;

static void *hammer(void *arg)
{
    long bad = 0;
    (void)arg;
    /* All start at once, so that the first calls of each site trap and get patched
     * while the other threads run them. */
    pthread_barrier_wait(&start);
    for (int i = 0; i < CALLS; i++) {
        if (site_getpid() != main_pid)
            bad++;
        if (getpid() != main_pid)
            bad++;
        if (site_unaligned() != main_pid)
            bad++;
        if (site_word_cross() != main_pid)
            bad++;
    }
    return (void *)bad;
}

static void test_threads(void)
{
    pthread_t t[THREADS];
    main_pid = getpid();
    CHECK_EQ(pthread_barrier_init(&start, NULL, THREADS + 1), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, hammer, NULL), 0);
    pthread_barrier_wait(&start);
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        CHECK_EQ(pthread_join(t[i], &r), 0);
        bad += (long)r;
    }
    CHECK_EQ(bad, 0);
}

/* ---- jumping into the middle of a site ---- */

static void test_mid(void)
{
    for (int i = 0; i < 1000; i++)
        site_getpid();
    CHECK_EQ(site_getpid(), getpid());
    CHECK_EQ(call_mid(SYS_getppid), getppid());
    CHECK_EQ(call_mid(SYS_gettid), gettid());
    CHECK_EQ(call_mid(SYS_getpid), getpid());
    CHECK_EQ(site_getpid(), getpid());
}

/* ---- registers ---- */

static void test_regs(void)
{
    long worst = 0;
    for (int i = 0; i < 1000; i++)
        worst |= regs_across();
    CHECK_EQ(worst, 0);
}

/* ---- vector registers around a signal delivered on return ---- */

static volatile double sink;

static void clobber_fp(int sig)
{
    (void)sig;
    double x = 3.25;
    for (int i = 0; i < 10; i++)
        x = x * 1.5 + 0.125;
    sink = x;
    __asm__ volatile("pxor %%xmm0, %%xmm0" ::: "xmm0");
}

static void test_fp_signal(void)
{
    struct sigaction sa = {.sa_handler = clobber_fp};
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    long bad = 0;
    for (int i = 0; i < 200; i++) {
        unsigned char v[16], want[16];
        for (int j = 0; j < 16; j++)
            want[j] = v[j] = (unsigned char)(i * 16 + j + 1);
        if (kill_keep_xmm(getpid(), SIGUSR1, v) != 0 || memcmp(v, want, 16) != 0)
            bad++;
    }
    CHECK_EQ(bad, 0);
    signal(SIGUSR1, SIG_DFL);
}

/* ---- JIT code ---- */

typedef long (*fn0)(void);

static void test_jit(void)
{
    static const unsigned char code[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3};
    unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED)
        return;
    memcpy(p, code, sizeof code);
    CHECK_OK(mprotect(p, 4096, PROT_READ | PROT_EXEC));
    long bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += ((fn0)p)() != getpid();
    CHECK_EQ(bad, 0);
    /* The program sees its own bytes again once it can write them, and a change of the
     * number alone takes effect. */
    CHECK_OK(mprotect(p, 4096, PROT_READ | PROT_WRITE));
    CHECK_MEMEQ(p, code, sizeof code);
    p[1] = SYS_getppid;
    CHECK_OK(mprotect(p, 4096, PROT_READ | PROT_EXEC));
    bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += ((fn0)p)() != getppid();
    CHECK_EQ(bad, 0);
    CHECK_OK(munmap(p, 4096));

    /* Writable and executable at once: rewritten in place between runs. */
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1,
             0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED)
        return;
    memcpy(p, code, sizeof code);
    bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += ((fn0)p)() != getpid();
    p[1] = SYS_gettid;
    for (int i = 0; i < 1000; i++)
        bad += ((fn0)p)() != gettid();
    CHECK_EQ(bad, 0);
    CHECK_MEMEQ(p + 2, code + 2, sizeof code - 2);
    CHECK_OK(munmap(p, 4096));
}

/* ---- fork after patching ---- */

static void child_calls(void *arg)
{
    (void)arg;
    pid_t me = (pid_t)syscall(SYS_getpid);
    long bad = 0;
    for (int i = 0; i < 5000; i++) {
        bad += site_getpid() != me;
        bad += getpid() != me;
        bad += regs_across() != 0;
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(call_mid(SYS_getppid), getppid());
}

static void test_fork(void)
{
    for (int i = 0; i < 100; i++)
        site_getpid();
    pid_t parent = getpid();
    int st = run_in_child(child_calls, NULL);
    CHECK_EXITED(st, 0);
    CHECK_EQ(site_getpid(), parent);
}

/* ---- a program that sets a gs base of its own (patched sites find their way through
 * gs in the sandbox: they must all go back to plain syscalls, in forks too) ---- */

static long gs_area[64];

static void gs_calls(void *arg)
{
    (void)arg;
    pid_t me = (pid_t)syscall(SYS_getpid);
    long bad = 0;
    for (int i = 0; i < 2000; i++) {
        bad += site_getpid() != me;
        bad += getpid() != me;
        bad += syscall(SYS_getpid) != me;
        bad += regs_across() != 0;
    }
    CHECK_EQ(bad, 0);
    unsigned long gs = 0;
    CHECK_EQ(syscall(SYS_arch_prctl, ARCH_GET_GS, &gs), 0);
    CHECK_EQ(gs, (unsigned long)gs_area);
}

static void gs_child(void *arg)
{
    CHECK_EQ(syscall(SYS_arch_prctl, ARCH_SET_GS, gs_area), 0);
    gs_calls(arg);
    CHECK_EXITED(run_in_child(gs_calls, NULL), 0);
}

static void test_gs(void)
{
    for (int i = 0; i < 100; i++)
        site_getpid();
    CHECK_EXITED(run_in_child(gs_child, NULL), 0);
    CHECK_EQ(site_getpid(), getpid());
}

/* ---- signals interrupting a blocked call from a patched site ---- */

static int pipe_w = -1;

static void on_alarm(int sig)
{
    (void)sig;
    if (pipe_w >= 0) {
        char c = 'x';
        (void)!write(pipe_w, &c, 1);
    }
}

static void test_interrupt(void)
{
    int p[2];
    CHECK_OK(pipe(p));
    char c;
    /* Patch the site with calls that return at once. */
    for (int i = 0; i < 10; i++) {
        (void)!write(p[1], "a", 1);
        CHECK_EQ(site_read(p[0], &c, 1), 1);
    }
    struct sigaction sa = {.sa_handler = on_alarm};
    sigemptyset(&sa.sa_mask);
    struct itimerval it = {.it_value = {.tv_usec = 20000}};

    /* Without SA_RESTART: EINTR (the handler writes nothing). */
    pipe_w = -1;
    CHECK_OK(sigaction(SIGALRM, &sa, NULL));
    CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
    CHECK_EQ(site_read(p[0], &c, 1), -EINTR);

    /* With it: the read restarts (at the syscall instruction) and gets the byte the
     * handler wrote. */
    pipe_w = p[1];
    sa.sa_flags = SA_RESTART;
    CHECK_OK(sigaction(SIGALRM, &sa, NULL));
    CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
    CHECK_EQ(site_read(p[0], &c, 1), 1);
    CHECK_EQ(c, 'x');
    signal(SIGALRM, SIG_DFL);
    pipe_w = -1;
    close(p[0]);
    close(p[1]);
}

/* ---- a signal sent while the target is on its way back from a patched call ---- */

static volatile sig_atomic_t kicked;
static atomic_int kick_round;
static pid_t kick_target;

static void on_kick(int sig)
{
    (void)sig;
    kicked = 1;
}

static void *kicker(void *arg)
{
    int rounds = (int)(long)arg;
    /* Spinning, not blocking: the signal must go out while the target is still in its
     * few patched calls (a blocked kicker wakes too late to hit them). */
    for (int r = 1; r <= rounds; r++) {
        while (atomic_load(&kick_round) < r)
            ;
        syscall(SYS_tgkill, getpid(), kick_target, SIGUSR2);
    }
    return NULL;
}

static void test_kick_race(void)
{
    enum { ROUNDS = 300 };
    struct sigaction sa = {.sa_handler = on_kick};
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR2, &sa, NULL));
    kick_target = gettid();
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, kicker, (void *)(long)ROUNDS), 0);
    int lost = 0;
    for (int r = 1; r <= ROUNDS; r++) {
        kicked = 0;
        atomic_store(&kick_round, r);
        for (int i = 0; i < 20 && !kicked; i++)
            site_getpid();
        /* No syscall until the handler ran: the signal must interrupt plain code. */
        for (long spin = 0; !kicked && spin < 4000000000L; spin++)
            __asm__ volatile("" ::: "memory");
        lost += !kicked;
    }
    CHECK_EQ(lost, 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    signal(SIGUSR2, SIG_DFL);
}

/* ---- glibc's syscall(): the number in rax, the sixth argument loaded from the stack ---- */

static void test_syscall_wrapper(void)
{
    int fd = memfd_create("patching", 0);
    CHECK(fd >= 0);
    char page[4096];
    memset(page, 'a', sizeof page);
    CHECK_EQ(write(fd, page, sizeof page), 4096);
    memset(page, 'b', sizeof page);
    CHECK_EQ(write(fd, page, sizeof page), 4096);
    long bad = 0;
    for (int i = 0; i < 500; i++) {
        bad += syscall(SYS_getpid) != getpid();
        /* The offset (the sixth argument) is the one syscall() loads from the stack. */
        long off = (i % 2) * 4096;
        char *p = (char *)syscall(SYS_mmap, NULL, 4096, PROT_READ, MAP_SHARED, fd, off);
        if (p == MAP_FAILED) {
            bad++;
            continue;
        }
        bad += p[0] != (i % 2 ? 'b' : 'a');
        bad += syscall(SYS_munmap, p, 4096) != 0;
    }
    CHECK_EQ(bad, 0);
    close(fd);
}

/* ---- the jump table is not the program's to write ---- */

static void write_table(void *arg)
{
    (void)arg;
    no_core_files();
    *(volatile long *)0x050f0000 = 1; /* unmapped natively; the read-only table here */
    _exit(0);
}

static void test_table_write(void)
{
    CHECK_KILLED(run_in_child(write_table, NULL), SIGSEGV);
}

int main(void)
{
    test_threads();
    test_mid();
    test_regs();
    test_fp_signal();
    test_jit();
    test_fork();
    test_gs();
    test_interrupt();
    test_kick_race();
    test_syscall_wrapper();
    test_table_write();
    return check_done();
}
