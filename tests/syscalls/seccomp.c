/* seccomp(2) and prctl(PR_SET_SECCOMP): strict mode, filters and their actions, stacked
 * filters, inheritance across fork and exec, the privilege rule, program validation. */
#include "child.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <ucontext.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a seccomp SIGSYS */
#endif

static long seccomp_(unsigned op, unsigned flags, void *args)
{
    return syscall(SYS_seccomp, op, flags, args);
}

#define NR_OFF offsetof(struct seccomp_data, nr)
#define ARCH_OFF offsetof(struct seccomp_data, arch)
#define ARG0_OFF offsetof(struct seccomp_data, args[0])

/* A filter: "if arch is x86_64 and nr == `nr`, return `action`; else ALLOW". */
static int install(int nr, unsigned action, unsigned flags)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARCH_OFF),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = { sizeof f / sizeof f[0], f };
    return seccomp_(SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* A one-instruction program: always `action`. */
static int install_always(unsigned action)
{
    struct sock_filter f[] = { BPF_STMT(BPF_RET | BPF_K, action) };
    struct sock_fprog p = { 1, f };
    return seccomp_(SECCOMP_SET_MODE_FILTER, 0, &p);
}

static int try_program(struct sock_filter *f, unsigned short len)
{
    struct sock_fprog p = { len, f };
    return seccomp_(SECCOMP_SET_MODE_FILTER, 0, &p);
}

/* The value of `field` in /proc/self/status, or -1. */
static long status_field(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

static void strict_mode(void *arg)
{
    (void)arg;
    /* Only read, write, _exit and sigreturn remain: write works, getpid kills. */
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0)
        _exit(10);
    if (write(1, "", 0) != 0)
        syscall(SYS_exit, 11);
    syscall(SYS_getpid);
    syscall(SYS_exit, 12);
}

static void strict_exit(void *arg)
{
    (void)arg;
    if (seccomp_(SECCOMP_SET_MODE_STRICT, 0, NULL) != 0)
        _exit(10);
    syscall(SYS_exit, 3);
}

static void errno_filter(void *arg)
{
    (void)arg;
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_EQ(install(SYS_getppid, SECCOMP_RET_ERRNO | ENOMSG, 0), 0);
    CHECK_ERRNO(syscall(SYS_getppid), ENOMSG);
    CHECK(syscall(SYS_getpid) > 0);
    CHECK_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 2);
    CHECK_EQ(status_field("Seccomp"), 2);
    CHECK_EQ(status_field("Seccomp_filters"), 1);
    CHECK_EQ(status_field("NoNewPrivs"), 1);
    /* The data is capped at MAX_ERRNO. */
    CHECK_EQ(install(SYS_getpgid, SECCOMP_RET_ERRNO | 5000, 0), 0);
    CHECK_ERRNO(syscall(SYS_getpgid, 0), 4095);
    /* ERRNO 0: the call is skipped and returns 0. */
    CHECK_EQ(install(SYS_getuid, SECCOMP_RET_ERRNO | 0, 0), 0);
    CHECK_EQ(syscall(SYS_getuid), 0);
    /* TRACE without a tracer and USER_NOTIF without a listener: ENOSYS. */
    CHECK_EQ(install(SYS_getsid, SECCOMP_RET_TRACE | 1, 0), 0);
    CHECK_ERRNO(syscall(SYS_getsid, 0), ENOSYS);
    CHECK_EQ(install(SYS_getpriority, SECCOMP_RET_USER_NOTIF, 0), 0);
    CHECK_ERRNO(syscall(SYS_getpriority, PRIO_PROCESS, 0), ENOSYS);
    /* LOG lets the call through. */
    CHECK_EQ(install(SYS_gettid, SECCOMP_RET_LOG, SECCOMP_FILTER_FLAG_LOG), 0);
    CHECK_EQ(syscall(SYS_gettid), getpid());
    CHECK_EQ(status_field("Seccomp_filters"), 6);
    /* Strict mode cannot follow filter mode. */
    CHECK_ERRNO(seccomp_(SECCOMP_SET_MODE_STRICT, 0, NULL), EINVAL);
}

/* ERRNO(EPERM) for close(777) only: a filter on an argument. */
static void argument_filter(void *arg)
{
    (void)arg;
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_OFF),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 777, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    /* The old interface takes the program as its third argument. */
    struct sock_fprog p = { sizeof f / sizeof f[0], f };
    CHECK_OK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p, 0, 0));
    CHECK_ERRNO(close(777), EPERM);
    CHECK_ERRNO(close(778), EBADF);
}

static volatile int trap_signo, trap_code, trap_errno, trap_syscall, trap_count;
static volatile unsigned trap_arch;
static volatile long trap_rax;
static void *volatile trap_addr;

static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
    ucontext_t *uc = uc_;
    trap_signo = sig;
    trap_code = si->si_code;
    trap_errno = si->si_errno;
    trap_syscall = si->si_syscall;
    trap_arch = si->si_arch;
    trap_addr = si->si_call_addr;
    trap_rax = uc->uc_mcontext.gregs[REG_RAX];
    trap_count++;
    /* What the interrupted syscall appears to return. */
    uc->uc_mcontext.gregs[REG_RAX] = 4242;
}

static void trap_filter(void *arg)
{
    (void)arg;
    struct sigaction sa = { 0 };
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    CHECK_OK(sigaction(SIGSYS, &sa, NULL));
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_EQ(install(SYS_getppid, SECCOMP_RET_TRAP | 0x77, 0), 0);
    CHECK_EQ(syscall(SYS_getppid, 1, 2, 3), 4242);
    CHECK_EQ(trap_count, 1);
    CHECK_EQ(trap_signo, SIGSYS);
    CHECK_EQ(trap_code, SYS_SECCOMP);
    CHECK_EQ(trap_errno, 0x77);
    CHECK_EQ(trap_syscall, SYS_getppid);
    CHECK_EQ(trap_arch, AUDIT_ARCH_X86_64);
    CHECK_EQ(trap_rax, SYS_getppid);
    /* si_call_addr is the address after the syscall instruction, inside libc's syscall(). */
    CHECK((char *)trap_addr > (char *)0x1000);
    /* A blocked SIGSYS is forced through and kills. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        syscall(SYS_getppid);
        _exit(0);
    }
    CHECK_KILLED(wait_status(pid, 0), SIGSYS);
}

static void kill_process(void *arg)
{
    unsigned action = *(unsigned *)arg;
    /* Even a handled SIGSYS does not save the process. */
    struct sigaction sa = { 0 };
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSYS, &sa, NULL);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (install(SYS_getppid, action, 0) != 0)
        _exit(10);
    syscall(SYS_getppid);
    _exit(11);
}

static void stacked(void *arg)
{
    (void)arg;
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_EQ(install(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, 0), 0);
    CHECK_EQ(install_always(SECCOMP_RET_ALLOW), 0);
    /* A later ALLOW does not undo an earlier ERRNO. */
    CHECK_ERRNO(syscall(SYS_getppid), EPERM);
    /* Between two ERRNO actions, the newest filter's data wins. */
    CHECK_EQ(install(SYS_getppid, SECCOMP_RET_ERRNO | ENOENT, 0), 0);
    CHECK_ERRNO(syscall(SYS_getppid), ENOENT);
    /* An older, more restrictive action wins over a newer, laxer one. */
    CHECK_EQ(install(SYS_getpgid, SECCOMP_RET_ERRNO | EACCES, 0), 0);
    CHECK_EQ(install(SYS_getpgid, SECCOMP_RET_LOG, 0), 0);
    CHECK_ERRNO(syscall(SYS_getpgid, 0), EACCES);
    CHECK_EQ(status_field("Seccomp_filters"), 5);
    /* KILL_PROCESS beats everything. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        install(SYS_getppid, SECCOMP_RET_KILL_PROCESS, 0);
        install_always(SECCOMP_RET_ALLOW);
        syscall(SYS_getppid);
        _exit(0);
    }
    CHECK_KILLED(wait_status(pid, 0), SIGSYS);
}

static void inherited(void *arg)
{
    const char *self = arg;
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_EQ(install(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, 0), 0);
    /* A forked child has the filter. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(syscall(SYS_getppid) == -1 && errno == EPERM &&
                      prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2 ? 0 : 1);
    CHECK_EXITED(wait_status(pid, 0), 0);
    /* An exec'd program has it too (it checks in main, "exec-check" mode). */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        execl(self, self, "exec-check", (char *)NULL);
        _exit(99);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);
}

static int tsync_pipe[2];
static volatile long tsync_result, tsync_errno;

static void *tsync_thread(void *arg)
{
    (void)arg;
    char c;
    if (read(tsync_pipe[0], &c, 1) != 1)
        return NULL;
    tsync_result = syscall(SYS_getppid);
    tsync_errno = errno;
    return NULL;
}

/* SECCOMP_FILTER_FLAG_TSYNC puts the filter on every thread of the process. */
static void tsync(void *arg)
{
    (void)arg;
    CHECK_OK(pipe(tsync_pipe));
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, tsync_thread, NULL), 0);
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_EQ(install(SYS_getppid, SECCOMP_RET_ERRNO | EPERM, SECCOMP_FILTER_FLAG_TSYNC), 0);
    CHECK_EQ(write(tsync_pipe[1], "x", 1), 1);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(tsync_result, -1);
    CHECK_EQ(tsync_errno, EPERM);
}

static volatile int killed_thread_returned;

static void *doomed_thread(void *arg)
{
    (void)arg;
    syscall(SYS_getppid);
    killed_thread_returned = 1;
    return NULL;
}

/* KILL_THREAD in a process with other threads ends that thread only. */
static void kill_one_thread(void *arg)
{
    (void)arg;
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_EQ(install(SYS_getppid, SECCOMP_RET_KILL_THREAD, 0), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, doomed_thread, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(killed_thread_returned, 0);
    CHECK(syscall(SYS_getpid) > 0);
}

static void needs_privilege(void *arg)
{
    (void)arg;
    /* Without no_new_privs, only CAP_SYS_ADMIN may attach a filter. */
    CHECK_OK(setgid(65534));
    CHECK_OK(setuid(65534));
    CHECK_EQ(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 0);
    struct sock_filter f[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    CHECK_ERRNO(try_program(f, 1), EACCES);
    CHECK_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 0);
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_EQ(try_program(f, 1), 0);
    CHECK_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 2);
}

static void invalid_programs(void *arg)
{
    (void)arg;
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    struct sock_filter ret = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    static struct sock_filter big[BPF_MAXINSNS + 1];
    for (int i = 0; i <= BPF_MAXINSNS; i++)
        big[i] = ret;
    CHECK_ERRNO(try_program(big, 0), EINVAL);
    CHECK_ERRNO(try_program(big, BPF_MAXINSNS + 1), EINVAL);
    /* Not ending with RET. */
    struct sock_filter noret[] = { BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF) };
    CHECK_ERRNO(try_program(noret, 1), EINVAL);
    /* A jump past the end. */
    struct sock_filter far[] = { BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 5, 0), ret };
    CHECK_ERRNO(try_program(far, 2), EINVAL);
    struct sock_filter ja[] = { BPF_STMT(BPF_JMP | BPF_JA, 1), ret };
    CHECK_ERRNO(try_program(ja, 2), EINVAL);
    /* Loads outside seccomp_data, unaligned, or of a byte. */
    struct sock_filter out[] = { BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64), ret };
    CHECK_ERRNO(try_program(out, 2), EINVAL);
    struct sock_filter unaligned[] = { BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2), ret };
    CHECK_ERRNO(try_program(unaligned, 2), EINVAL);
    struct sock_filter byte[] = { BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0), ret };
    CHECK_ERRNO(try_program(byte, 2), EINVAL);
    /* An opcode that does not exist; a division by a constant zero; scratch memory read
     * before it is written. */
    struct sock_filter bogus[] = { { 0xffff, 0, 0, 0 }, ret };
    CHECK_ERRNO(try_program(bogus, 2), EINVAL);
    struct sock_filter div0[] = { BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ret };
    CHECK_ERRNO(try_program(div0, 2), EINVAL);
    struct sock_filter mem[] = { BPF_STMT(BPF_LD | BPF_MEM, 0), ret };
    CHECK_ERRNO(try_program(mem, 2), EINVAL);
    /* Bad pointers, flags and operations. */
    CHECK_ERRNO(seccomp_(SECCOMP_SET_MODE_FILTER, 0, BAD_PTR), EFAULT);
    struct sock_fprog badp = { 1, BAD_PTR };
    CHECK_ERRNO(seccomp_(SECCOMP_SET_MODE_FILTER, 0, &badp), EFAULT);
    struct sock_fprog ok = { 1, &ret };
    CHECK_ERRNO(seccomp_(SECCOMP_SET_MODE_FILTER, 1u << 30, &ok), EINVAL);
    CHECK_ERRNO(seccomp_(99, 0, &ok), EINVAL);
    CHECK_ERRNO(seccomp_(SECCOMP_SET_MODE_STRICT, 1, NULL), EINVAL);
    CHECK_ERRNO(prctl(PR_SET_SECCOMP, 7, 0, 0, 0), EINVAL);
    /* Nothing was attached. */
    CHECK_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 0);
    /* A program of the maximum length is fine. */
    CHECK_EQ(try_program(big, BPF_MAXINSNS), 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "exec-check") == 0)
        return syscall(SYS_getppid) == -1 && errno == EPERM &&
                       prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 2 ? 0 : 1;
    no_core_files();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    self[n > 0 ? n : 0] = 0;

    CHECK_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 0);
    CHECK_EQ(status_field("Seccomp"), 0);

    /* Which actions exist. */
    unsigned actions[] = { SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_TRAP,
                           SECCOMP_RET_ERRNO, SECCOMP_RET_TRACE, SECCOMP_RET_LOG,
                           SECCOMP_RET_ALLOW, SECCOMP_RET_USER_NOTIF };
    for (unsigned i = 0; i < sizeof actions / sizeof actions[0]; i++)
        CHECK_EQ(seccomp_(SECCOMP_GET_ACTION_AVAIL, 0, &actions[i]), 0);
    unsigned unknown = 0x12340000;
    CHECK_ERRNO(seccomp_(SECCOMP_GET_ACTION_AVAIL, 0, &unknown), EOPNOTSUPP);
    CHECK_ERRNO(seccomp_(SECCOMP_GET_ACTION_AVAIL, 1, &actions[0]), EINVAL);
    CHECK_ERRNO(seccomp_(SECCOMP_GET_ACTION_AVAIL, 0, BAD_PTR), EFAULT);
    struct seccomp_notif_sizes sizes = { 0 };
    CHECK_EQ(seccomp_(SECCOMP_GET_NOTIF_SIZES, 0, &sizes), 0);
    CHECK_EQ(sizes.seccomp_data, sizeof(struct seccomp_data));
    CHECK_EQ(sizes.seccomp_notif_resp, 24);

    /* Strict mode: a disallowed call is SIGKILL; _exit is allowed. */
    CHECK_KILLED(run_in_child(strict_mode, NULL), SIGKILL);
    CHECK_EXITED(run_in_child(strict_exit, NULL), 3);

    CHECK_EXITED(run_in_child(errno_filter, NULL), 0);
    CHECK_EXITED(run_in_child(argument_filter, NULL), 0);
    CHECK_EXITED(run_in_child(trap_filter, NULL), 0);
    unsigned kp = SECCOMP_RET_KILL_PROCESS, kt = SECCOMP_RET_KILL_THREAD;
    CHECK_KILLED(run_in_child(kill_process, &kp), SIGSYS);
    /* KILL_THREAD of a process's only thread ends the process the same way. */
    CHECK_KILLED(run_in_child(kill_process, &kt), SIGSYS);
    CHECK_EXITED(run_in_child(stacked, NULL), 0);
    CHECK_EXITED(run_in_child(inherited, self), 0);
    CHECK_EXITED(run_in_child(tsync, NULL), 0);
    CHECK_EXITED(run_in_child(kill_one_thread, NULL), 0);
    CHECK_EXITED(run_in_child(needs_privilege, NULL), 0);
    CHECK_EXITED(run_in_child(invalid_programs, NULL), 0);

    /* None of it touched this process. */
    CHECK_EQ(prctl(PR_GET_SECCOMP, 0, 0, 0, 0), 0);
    return check_done();
}
