/* Process creation and reaping: fork, vfork, clone, clone3, exit codes, wait4/waitid with
 * their selectors and options, zombies, reparenting to a subreaper, execve/execveat and
 * their errors.
 *
 * Holds natively (any pid, own process group) and as the sandbox's init (pid 1): the
 * program makes itself a child subreaper so orphans come back to it in both. It re-executes
 * itself through argv[0] (not /proc/self/exe, which the sandbox may lack) with a mode word
 * as argv[1]; see main. */
#include "child.h"

#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <sys/prctl.h>

static const char *self;

/* ---- modes run by re-executing this program ---- */

/* argv: self "exit-with" CODE */
static int mode_exit_with(char **argv)
{
    return atoi(argv[2]);
}

/* argv: self "echo-args" PID CLOEXEC_FD KEPT_FD "a" "b c" ""; envp: FOO=bar, EMPTY=, X=1.
 * Exits 0 if everything arrived as sent, else the number of the first thing that did not. */
static int mode_echo_args(int argc, char **argv, char **envp)
{
    if (argc != 8)
        return 10;
    if (strcmp(argv[5], "a") || strcmp(argv[6], "b c") || strcmp(argv[7], ""))
        return 11;
    if (argv[8] != NULL)
        return 12;
    /* exec keeps the process: same pid, same parent. */
    if (getpid() != atoi(argv[2]))
        return 13;
    /* O_CLOEXEC descriptors are closed, the others kept. */
    if (fcntl(atoi(argv[3]), F_GETFD) != -1 || errno != EBADF)
        return 14;
    if (fcntl(atoi(argv[4]), F_GETFD) != 0)
        return 15;
    int n = 0;
    while (envp[n])
        n++;
    if (n != 3 || strcmp(envp[0], "FOO=bar") || strcmp(envp[1], "EMPTY=") ||
        strcmp(envp[2], "X=1"))
        return 16;
    if (strcmp(getenv("FOO") ?: "", "bar"))
        return 17;
    return 0;
}

/* ---- fork and exit codes ---- */

static void child_ids(void *arg)
{
    pid_t parent = *(pid_t *)arg;
    CHECK_EQ(getppid(), parent);
    CHECK(getpid() != parent);
    CHECK_EQ(gettid(), getpid());
    /* A child is in its parent's process group and session. */
    CHECK_EQ(getpgrp(), getpgid(parent));
    CHECK_EQ(getsid(0), getsid(parent));
}

static void test_fork_exit_codes(void)
{
    pid_t me = getpid();
    CHECK_EXITED(run_in_child(child_ids, &me), 0);

    static const int codes[] = { 0, 1, 42, 127, 255 };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            _exit(codes[i]);
        CHECK(pid > 0);
        int st = -1;
        CHECK_EQ(wait4(pid, &st, 0, NULL), pid);
        CHECK_EXITED(st, codes[i]);
    }

    /* Only the low 8 bits of the exit code survive. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(256 + 7);
    CHECK_EXITED(wait_status(pid, 0), 7);

    /* exit() runs atexit handlers and flushes stdio; the raw exit syscall of a single
     * thread and exit_group both end the process with their code. */
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        syscall(SYS_exit, 33);
    CHECK_EXITED(wait_status(pid, 0), 33);
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        syscall(SYS_exit_group, 34);
    CHECK_EXITED(wait_status(pid, 0), 34);

    /* Every child above was reaped. */
    CHECK_EQ(wait(NULL), -1);
    CHECK_EQ(errno, ECHILD);
}

/* ---- memory after fork is a copy ---- */

static void test_fork_copies_memory(void)
{
    static int shared_looking = 1;
    int local = 2;
    char *heap = malloc(64);
    strcpy(heap, "parent");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = shared_looking == 1 && local == 2 && strcmp(heap, "parent") == 0;
        shared_looking = 100;
        local = 200;
        strcpy(heap, "child");
        _exit(ok ? 0 : 1);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);
    /* The child's writes stay in the child. */
    CHECK_EQ(shared_looking, 1);
    CHECK_EQ(local, 2);
    CHECK_STREQ(heap, "parent");
    free(heap);
}

/* ---- wait4/waitid ---- */

static void test_wait_nohang_and_errors(void)
{
    /* No children at all. */
    int st;
    CHECK_ERRNO(waitpid(-1, &st, 0), ECHILD);
    CHECK_ERRNO(waitpid(-1, &st, WNOHANG), ECHILD);
    CHECK_ERRNO(waitpid(INT_MAX, &st, 0), ECHILD);
    siginfo_t si;
    CHECK_ERRNO(waitid(P_ALL, 0, &si, WEXITED), ECHILD);

    pid_t pid = spawn_pauser();
    CHECK(pid > 0);
    /* A child that has not changed state: WNOHANG answers 0. */
    CHECK_EQ(waitpid(pid, &st, WNOHANG), 0);
    CHECK_EQ(waitpid(-1, &st, WNOHANG), 0);
    CHECK_EQ(waitpid(0, &st, WNOHANG), 0);
    /* waitid with WNOHANG and nothing to report returns 0 and zeroes si_pid/si_signo. */
    memset(&si, 0x55, sizeof si);
    CHECK_EQ(waitid(P_PID, pid, &si, WEXITED | WNOHANG), 0);
    CHECK_EQ(si.si_pid, 0);
    CHECK_EQ(si.si_signo, 0);
    /* A pid that is not our child, even though a child exists. */
    CHECK_ERRNO(waitpid(INT_MAX, &st, WNOHANG), ECHILD);
    CHECK_ERRNO(waitpid(getpid(), &st, WNOHANG), ECHILD);

    /* Bad options and id types. */
    CHECK_ERRNO(waitpid(pid, &st, 0x10000000), EINVAL);
    CHECK_ERRNO(waitid(P_PID, pid, &si, 0), EINVAL);
    CHECK_ERRNO(waitid(P_PID, pid, &si, WNOHANG), EINVAL);
    CHECK_ERRNO(waitid((idtype_t)42, pid, &si, WEXITED), EINVAL);
    CHECK_ERRNO(syscall(SYS_waitid, P_PID, pid, BAD_PTR, WEXITED | WNOHANG, NULL), EFAULT);

    CHECK_OK(kill(pid, SIGKILL));
    st = -1;
    CHECK_EQ(wait4(pid, &st, 0, NULL), pid);
    CHECK_KILLED(st, SIGKILL);
    CHECK_ERRNO(waitpid(pid, &st, 0), ECHILD);
}

/* A zombie stays visible (kill(pid, 0) works, waitid WNOWAIT reports it as often as asked)
 * until a real wait reaps it. */
static void test_zombie_and_wnowait(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(9);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    CHECK_EQ(si.si_signo, SIGCHLD);
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_code, CLD_EXITED);
    CHECK_EQ(si.si_status, 9);
    CHECK_EQ(si.si_uid, getuid());
    /* Still there. */
    CHECK_OK(kill(pid, 0));
    CHECK_EQ(getpgid(pid), getpgrp());
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_ALL, 0, &si, WEXITED | WNOWAIT | WNOHANG));
    CHECK_EQ(si.si_pid, pid);
    /* Reaped by waitid without WNOWAIT. */
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WEXITED));
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_status, 9);
    CHECK_ERRNO(kill(pid, 0), ESRCH);
    CHECK_ERRNO(waitid(P_PID, pid, &si, WEXITED | WNOHANG), ECHILD);

    /* A killed child through waitid: CLD_KILLED with the signal as status. */
    pid = spawn_pauser();
    CHECK_OK(kill(pid, SIGTERM));
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WEXITED));
    CHECK_EQ(si.si_code, CLD_KILLED);
    CHECK_EQ(si.si_status, SIGTERM);

    /* wait4 with an unwritable status: EFAULT, and the child is reaped all the same
     * (Linux writes the status after reaping). */
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(1);
    CHECK_OK(waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    CHECK_ERRNO(wait4(pid, BAD_PTR, 0, NULL), EFAULT);
    CHECK_ERRNO(waitpid(pid, NULL, WNOHANG), ECHILD);

    /* A NULL status pointer is fine. */
    fflush(stdout);
    pid = fork();
    if (pid == 0)
        _exit(1);
    CHECK_EQ(waitpid(pid, NULL, 0), pid);
}

static pid_t fork_exit(int code)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(code);
    return pid;
}

/* Waits until pid is a zombie without reaping it. */
static void await_zombie(pid_t pid)
{
    siginfo_t si;
    waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
}

/* pid selectors: a pid, -pgid, 0 (our group) and -1 (any); waitid's P_PGID and P_ALL. */
static void test_wait_selectors(void)
{
    /* `other` puts itself in a group of its own before exiting; `mine` stays in ours. */
    fflush(stdout);
    pid_t other = fork();
    if (other == 0) {
        setpgid(0, 0);
        _exit(21);
    }
    pid_t mine = fork_exit(22);
    await_zombie(other);
    await_zombie(mine);
    CHECK_EQ(getpgid(other), other);

    int st = -1;
    /* 0: only children in our process group. */
    CHECK_EQ(waitpid(0, &st, WNOHANG), mine);
    CHECK_EXITED(st, 22);
    CHECK_EQ(waitpid(0, &st, WNOHANG), -1);
    CHECK_EQ(errno, ECHILD);
    /* -pgid: only that group. (Not waitpid(-getpgrp()): in the sandbox our group is 1,
     * and -1 means any child.) */
    CHECK_ERRNO(waitid(P_PGID, getpgrp(), &(siginfo_t){ 0 }, WEXITED | WNOHANG), ECHILD);
    CHECK_EQ(waitpid(-other, &st, WNOHANG), other);
    CHECK_EXITED(st, 21);

    /* waitid P_PGID, and P_PGID 0 meaning our own group. */
    fflush(stdout);
    other = fork();
    if (other == 0) {
        setpgid(0, 0);
        _exit(23);
    }
    mine = fork_exit(24);
    await_zombie(other);
    await_zombie(mine);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PGID, 0, &si, WEXITED | WNOHANG));
    CHECK_EQ(si.si_pid, mine);
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PGID, other, &si, WEXITED | WNOHANG));
    CHECK_EQ(si.si_pid, other);
    CHECK_EQ(si.si_status, 23);

    /* -1 and P_ALL: any child; each exactly once. */
    pid_t a = fork_exit(1), b = fork_exit(2), c = fork_exit(3);
    int seen = 0;
    for (int i = 0; i < 3; i++) {
        pid_t r = waitpid(-1, &st, 0);
        if (r == a && WEXITSTATUS(st) == 1)
            seen |= 1;
        else if (r == b && WEXITSTATUS(st) == 2)
            seen |= 2;
        else if (r == c && WEXITSTATUS(st) == 3)
            seen |= 4;
    }
    CHECK_EQ(seen, 7);
    CHECK_ERRNO(waitpid(-1, &st, 0), ECHILD);
    a = fork_exit(4);
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_ALL, 12345, &si, WEXITED));
    CHECK_EQ(si.si_pid, a);
    CHECK_EQ(si.si_status, 4);
}

/* An orphaned grandchild is reparented to the nearest subreaper (us), which can wait for
 * it; the grandchild sees its new parent in getppid(). */
static void test_reparent_to_subreaper(void)
{
    CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
    int on = -1;
    CHECK_OK(prctl(PR_GET_CHILD_SUBREAPER, &on));
    CHECK_EQ(on, 1);

    pid_t me = getpid();
    fflush(stdout);
    pid_t middle = fork();
    if (middle == 0) {
        pid_t mid = getpid();
        pid_t grandchild = fork();
        if (grandchild == 0) {
            /* Wait (at most ~10 s) for our parent to die. */
            for (int i = 0; i < 10000 && getppid() == mid; i++)
                sleep_ms(1);
            _exit(getppid() == me ? 50 : 51);
        }
        _exit(grandchild > 0 ? 0 : 1);
    }
    CHECK_EXITED(wait_status(middle, 0), 0);
    int st = -1;
    pid_t r = waitpid(-1, &st, 0);
    CHECK(r > 0 && r != middle);
    CHECK_EXITED(st, 50);
    CHECK_ERRNO(waitpid(-1, &st, WNOHANG), ECHILD);
}

/* ---- vfork ---- */

static void test_vfork(void)
{
    /* The parent is suspended until the child exits or execs. */
    fflush(stdout);
    long long t0 = now_ns();
    pid_t pid = vfork();
    if (pid == 0) {
        struct timespec t = { 0, 100 * 1000000L };
        nanosleep(&t, NULL);
        _exit(7);
    }
    long long waited = now_ns() - t0;
    CHECK(pid > 0);
    CHECK(waited >= 90 * 1000000LL);
    CHECK_EXITED(wait_status(pid, 0), 7);

    /* vfork + exec: the parent resumes once the exec happened. */
    char *argv[] = { (char *)self, "exit-with", "8", NULL };
    char *envp[] = { NULL };
    fflush(stdout);
    pid = vfork();
    if (pid == 0) {
        execve(self, argv, envp);
        _exit(99);
    }
    CHECK_EXITED(wait_status(pid, 0), 8);

    /* vfork + a failing exec: the child sees the error. */
    fflush(stdout);
    pid = vfork();
    if (pid == 0) {
        execve("/nonexistent/carapace", argv, envp);
        _exit(errno == ENOENT ? 3 : 4);
    }
    CHECK_EXITED(wait_status(pid, 0), 3);
}

/* ---- clone and clone3 ---- */

static int got_sigusr1;

static void on_sigusr1(int sig)
{
    (void)sig;
    got_sigusr1++;
}

/* clone/clone3 for calls that should fail: if one creates a child after all, the child
 * exits at once (so it cannot run the rest of the program) and is reaped. */
static long clone_or_reap(long nr, long a, long b, long c, long d, long e)
{
    fflush(stdout);
    long r = syscall(nr, a, b, c, d, e);
    int saved = errno;
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid(r, NULL, __WALL);
    errno = saved;
    return r;
}

static void test_clone(void)
{
    /* clone with only an exit signal is fork; CLONE_PARENT_SETTID writes the child's tid
     * into the parent's memory, CLONE_CHILD_SETTID into the child's. */
    pid_t ptid = 0;
    static pid_t ctid;
    ctid = 0;
    fflush(stdout);
    long r = syscall(SYS_clone, CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | SIGCHLD, NULL, &ptid,
                     &ctid, 0);
    if (r == 0)
        _exit(ctid == getpid() ? 12 : 13);
    CHECK(r > 0);
    CHECK_EQ(ptid, r);
    CHECK_EQ(ctid, 0);
    CHECK_EXITED(wait_status(r, 0), 12);

    /* Invalid flag combinations (Linux's copy_process rules). */
    CHECK_ERRNO(clone_or_reap(SYS_clone, CLONE_THREAD | SIGCHLD, 0, 0, 0, 0), EINVAL);
    CHECK_ERRNO(clone_or_reap(SYS_clone, CLONE_SIGHAND | SIGCHLD, 0, 0, 0, 0), EINVAL);
    CHECK_ERRNO(clone_or_reap(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, 0, 0, 0),
                EINVAL);

    /* A child with a non-SIGCHLD exit signal is a "clone" child: plain waits do not see
     * it, __WCLONE and __WALL do; its parent gets that signal, with CLD_EXITED info. */
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    fflush(stdout);
    r = syscall(SYS_clone, SIGUSR1, NULL, NULL, NULL, 0);
    if (r == 0)
        _exit(14);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec five = { 5, 0 };
    CHECK_EQ(sigtimedwait(&usr1, &si, &five), SIGUSR1);
    CHECK_EQ(si.si_code, CLD_EXITED);
    CHECK_EQ(si.si_pid, r);
    CHECK_EQ(si.si_status, 14);
    int st = -1;
    CHECK_ERRNO(waitpid(r, &st, WNOHANG), ECHILD);
    CHECK_ERRNO(waitpid(-1, &st, WNOHANG), ECHILD);
    CHECK_EQ(waitpid(r, &st, __WCLONE), r);
    CHECK_EXITED(st, 14);

    /* __WCLONE does not see ordinary children; __WALL sees both kinds. */
    pid_t plain = fork_exit(15);
    await_zombie(plain);
    CHECK_ERRNO(waitpid(plain, &st, __WCLONE | WNOHANG), ECHILD);
    CHECK_EQ(waitpid(plain, &st, __WALL), plain);
    CHECK_EXITED(st, 15);
    fflush(stdout);
    r = syscall(SYS_clone, SIGUSR1, NULL, NULL, NULL, 0);
    if (r == 0)
        _exit(16);
    CHECK_EQ(waitpid(-1, &st, __WALL), r);
    CHECK_EXITED(st, 16);
    /* Exit signal 0: nothing is sent, __WALL still reaps it. */
    fflush(stdout);
    r = syscall(SYS_clone, 0, NULL, NULL, NULL, 0);
    if (r == 0)
        _exit(17);
    CHECK_EQ(waitpid(r, &st, __WALL), r);
    CHECK_EXITED(st, 17);
    sigtimedwait(&usr1, &si, &(struct timespec){ 0, 0 });
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void test_clone3(void)
{
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    fflush(stdout);
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r == 0)
        _exit(18);
    CHECK(r > 0);
    CHECK_EXITED(wait_status(r, 0), 18);

    /* clone3's parent_tid is a pointer in the args. */
    pid_t ptid = 0;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_PARENT_SETTID;
    args.parent_tid = (uintptr_t)&ptid;
    args.exit_signal = SIGCHLD;
    fflush(stdout);
    r = syscall(SYS_clone3, &args, CLONE_ARGS_SIZE_VER0);
    if (r == 0)
        _exit(19);
    CHECK(r > 0);
    CHECK_EQ(ptid, r);
    CHECK_EXITED(wait_status(r, 0), 19);

    /* A non-SIGCHLD exit signal, delivered to a handler. */
    struct sigaction sa = { .sa_handler = on_sigusr1 };
    struct sigaction old;
    sigaction(SIGUSR1, &sa, &old);
    got_sigusr1 = 0;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGUSR1;
    fflush(stdout);
    r = syscall(SYS_clone3, &args, sizeof args);
    if (r == 0)
        _exit(20);
    int st = -1;
    CHECK_EQ(wait4(r, &st, __WCLONE, NULL), r);
    CHECK_EXITED(st, 20);
    CHECK_EQ(got_sigusr1, 1);
    sigaction(SIGUSR1, &old, NULL);

    /* Errors: a struct smaller than version 0, an exit signal out of range, set bits in
     * the low byte of flags (clone3 takes the signal only in exit_signal), bad pointer. */
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    CHECK_ERRNO(clone_or_reap(SYS_clone3, (long)&args, CLONE_ARGS_SIZE_VER0 - 8, 0, 0, 0), EINVAL);
    args.exit_signal = 65;
    CHECK_ERRNO(clone_or_reap(SYS_clone3, (long)&args, sizeof args, 0, 0, 0), EINVAL);
    args.exit_signal = SIGCHLD;
    args.flags = SIGCHLD;
    CHECK_ERRNO(clone_or_reap(SYS_clone3, (long)&args, sizeof args, 0, 0, 0), EINVAL);
    args.flags = CLONE_THREAD;
    CHECK_ERRNO(clone_or_reap(SYS_clone3, (long)&args, sizeof args, 0, 0, 0), EINVAL);
    CHECK_ERRNO(clone_or_reap(SYS_clone3, (long)BAD_PTR, sizeof args, 0, 0, 0), EFAULT);
}

/* ---- execve ---- */

static void test_execve(void)
{
    /* argv, envp, pid and close-on-exec across an exec. */
    int cloexec_fd = CHECK_OK(open("/", O_RDONLY | O_CLOEXEC));
    int kept_fd = CHECK_OK(open("/", O_RDONLY));
    char pidbuf[16], cfd[16], kfd[16];
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        snprintf(pidbuf, sizeof pidbuf, "%d", getpid());
        snprintf(cfd, sizeof cfd, "%d", cloexec_fd);
        snprintf(kfd, sizeof kfd, "%d", kept_fd);
        char *argv[] = { (char *)self, "echo-args", pidbuf, cfd, kfd, "a", "b c", "", NULL };
        char *envp[] = { "FOO=bar", "EMPTY=", "X=1", NULL };
        execve(self, argv, envp);
        _exit(98);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);
    close(cloexec_fd);
    close(kept_fd);

    /* execveat: relative to a directory fd, and AT_EMPTY_PATH on the program's own fd. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    CHECK(slash != NULL);
    const char *leaf = slash ? slash + 1 : self;
    if (slash)
        *slash = 0;
    int dfd = CHECK_OK(open(slash ? dir : ".", O_RDONLY | O_DIRECTORY));
    int pfd = CHECK_OK(open(self, O_RDONLY));
    char *argv9[] = { (char *)self, "exit-with", "9", NULL };
    char *argv10[] = { (char *)self, "exit-with", "10", NULL };
    char *envp[] = { NULL };
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        syscall(SYS_execveat, dfd, leaf, argv9, envp, 0);
        _exit(97);
    }
    CHECK_EXITED(wait_status(pid, 0), 9);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        syscall(SYS_execveat, pfd, "", argv10, envp, AT_EMPTY_PATH);
        _exit(96);
    }
    CHECK_EXITED(wait_status(pid, 0), 10);

    /* Failures return to the caller, which is unchanged. */
    CHECK_ERRNO(execve("/nonexistent/carapace", argv9, envp), ENOENT);
    CHECK_ERRNO(execve("/", argv9, envp), EACCES);
    CHECK_ERRNO(syscall(SYS_execve, BAD_PTR, argv9, envp), EFAULT);
    CHECK_ERRNO(syscall(SYS_execveat, pfd, "", argv9, envp, 0), ENOENT);
    CHECK_ERRNO(syscall(SYS_execveat, dfd, leaf, argv9, envp, 0x40000000), EINVAL);
    CHECK_ERRNO(syscall(SYS_execveat, 9999, leaf, argv9, envp, 0), EBADF);
    close(dfd);
    close(pfd);

    /* A file without execute permission (even for root), and one with it that is no
     * executable format: EACCES and ENOEXEC. */
    static const char junk[] = "\x01\x02\x03 this is not a program\n";
    CHECK_OK(write_file(tmp_path("noexec"), junk, sizeof junk));
    CHECK_ERRNO(execve(tmp_path("noexec"), argv9, envp), EACCES);
    CHECK_OK(chmod(tmp_path("noexec"), 0755));
    CHECK_ERRNO(execve(tmp_path("noexec"), argv9, envp), ENOEXEC);
    /* A path through a regular file. */
    CHECK_ERRNO(execve(tmp_path("noexec/x"), argv9, envp), ENOTDIR);

    /* One argument longer than MAX_ARG_STRLEN (32 pages). */
    size_t big = 32 * 4096 + 16;
    char *huge = malloc(big + 1);
    memset(huge, 'x', big);
    huge[big] = 0;
    char *argv_big[] = { (char *)self, huge, NULL };
    CHECK_ERRNO(execve(self, argv_big, envp), E2BIG);
    free(huge);

    /* A #! script: the interpreter runs with the script's path as an argument. */
    static const char script[] = "#!/bin/sh\nexit $(( $# + 40 ))\n";
    CHECK_OK(write_file(tmp_path("script"), script, sizeof script - 1));
    CHECK_OK(chmod(tmp_path("script"), 0755));
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        char *sargv[] = { "script", "one", "two", NULL };
        execve(tmp_path("script"), sargv, envp);
        _exit(95);
    }
    CHECK_EXITED(wait_status(pid, 0), 42);
    /* A #! naming a missing interpreter is ENOENT. */
    static const char bad_script[] = "#!/nonexistent/interpreter\n";
    CHECK_OK(write_file(tmp_path("bad_script"), bad_script, sizeof bad_script - 1));
    CHECK_OK(chmod(tmp_path("bad_script"), 0755));
    CHECK_ERRNO(execve(tmp_path("bad_script"), argv9, envp), ENOENT);
}

int main(int argc, char **argv, char **envp)
{
    self = argv[0];
    if (argc >= 3 && strcmp(argv[1], "exit-with") == 0)
        return mode_exit_with(argv);
    if (argc >= 2 && strcmp(argv[1], "echo-args") == 0)
        return mode_echo_args(argc, argv, envp);

    check_tmpdir("fork_wait");
    test_fork_exit_codes();
    test_fork_copies_memory();
    test_wait_nohang_and_errors();
    test_zombie_and_wnowait();
    test_wait_selectors();
    test_clone();
    test_clone3();
    test_vfork();
    test_execve();
    /* Last: from here on, orphans anywhere below us come back to us. */
    test_reparent_to_subreaper();
    return check_done();
}
