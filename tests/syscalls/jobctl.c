/* Job control: stopping and continuing children (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU,
 * SIGCONT) as wait4/waitid report them (WUNTRACED, WCONTINUED, WNOWAIT, CLD_STOPPED,
 * CLD_CONTINUED), the SIGCHLD that goes with them (and SA_NOCLDSTOP), signals to a stopped
 * child; process groups and sessions (setpgid, getpgid, getpgrp, setsid, getsid and their
 * errors) and signals to a whole group (kill(0), kill(-pgid)).
 *
 * Stop signals other than SIGSTOP are discarded in an orphaned process group, and the
 * sandbox's init (this program) has no parent, so children receive them only after moving
 * to a group of their own (whose parent, this program, is then outside it in the same
 * session): that holds natively too. Orphaned groups are tested in jobctl_orphan.c. */
#include "child.h"

#include <limits.h>

static const char *self;

static sigset_t just(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

/* Waits (up to 5 s) for `sig`, which the caller blocks; returns it or -1. */
static int await_signal(int sig, siginfo_t *si)
{
    sigset_t s = just(sig);
    struct timespec five = { 5, 0 };
    siginfo_t dummy;
    return sigtimedwait(&s, si ? si : &dummy, &five);
}

/* ---- stop and continue ---- */

static void test_stop_continue(void)
{
    pid_t pid = spawn_pauser();
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_STOPPED(wait_status(pid, WUNTRACED), SIGSTOP);
    /* A stop is reported once. */
    int st;
    CHECK_EQ(waitpid(pid, &st, WUNTRACED | WNOHANG), 0);
    /* Without WUNTRACED a stopped child is not reported at all. */
    CHECK_EQ(waitpid(pid, &st, WNOHANG), 0);

    CHECK_OK(kill(pid, SIGCONT));
    st = wait_status(pid, WCONTINUED);
    CHECK(WIFCONTINUED(st));
    CHECK_EQ(waitpid(pid, &st, WCONTINUED | WNOHANG), 0);

    /* waitid: CLD_STOPPED / CLD_CONTINUED with the signal as si_status; WNOWAIT leaves
     * the event to be reported again. */
    CHECK_OK(kill(pid, SIGSTOP));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WSTOPPED | WNOWAIT));
    CHECK_EQ(si.si_pid, pid);
    CHECK_EQ(si.si_code, CLD_STOPPED);
    CHECK_EQ(si.si_status, SIGSTOP);
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WSTOPPED | WNOHANG));
    CHECK_EQ(si.si_code, CLD_STOPPED);
    memset(&si, 0x55, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WSTOPPED | WNOHANG));
    CHECK_EQ(si.si_pid, 0);
    CHECK_OK(kill(pid, SIGCONT));
    memset(&si, 0, sizeof si);
    CHECK_OK(waitid(P_PID, pid, &si, WCONTINUED));
    CHECK_EQ(si.si_code, CLD_CONTINUED);
    CHECK_EQ(si.si_status, SIGCONT);

    /* A second SIGSTOP while stopped changes nothing; SIGKILL ends a stopped child. */
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_STOPPED(wait_status(pid, WUNTRACED), SIGSTOP);
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_KILLED(wait_status(pid, WUNTRACED), SIGKILL);

    /* Other signals wait while the child is stopped, and act once it continues. */
    pid = spawn_pauser();
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_STOPPED(wait_status(pid, WUNTRACED), SIGSTOP);
    CHECK_OK(kill(pid, SIGTERM));
    sleep_ms(50);
    CHECK_EQ(waitpid(pid, &st, WNOHANG), 0);
    CHECK_OK(kill(pid, SIGCONT));
    CHECK_KILLED(wait_status(pid, 0), SIGTERM);

    /* SIGCONT wakes a stopped child and its handler runs: here the handler exits. */
    signal(SIGCONT, (void (*)(int))_exit);
    pid = spawn_pauser();
    signal(SIGCONT, SIG_DFL);
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_STOPPED(wait_status(pid, WUNTRACED), SIGSTOP);
    CHECK_OK(kill(pid, SIGCONT));
    CHECK_EXITED(wait_status(pid, 0), SIGCONT);
}

/* A pauser in a process group of its own. */
static pid_t spawn_own_group_pauser(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        for (;;)
            pause();
    }
    /* Both sides set it, so it holds whichever runs first. */
    setpgid(pid, pid);
    return pid;
}

static void test_terminal_stop_signals(void)
{
    static const int stops[] = { SIGTSTP, SIGTTIN, SIGTTOU };
    pid_t pid = spawn_own_group_pauser();
    CHECK_EQ(getpgid(pid), pid);
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        CHECK_OK(kill(pid, stops[i]));
        CHECK_STOPPED(wait_status(pid, WUNTRACED), stops[i]);
        CHECK_OK(kill(pid, SIGCONT));
        CHECK(WIFCONTINUED(wait_status(pid, WCONTINUED)));
    }
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_KILLED(wait_status(pid, 0), SIGKILL);

    /* With a handler a stop signal is just a signal. */
    signal(SIGTSTP, (void (*)(int))_exit);
    pid = spawn_own_group_pauser();
    signal(SIGTSTP, SIG_DFL);
    CHECK_OK(kill(pid, SIGTSTP));
    CHECK_EXITED(wait_status(pid, WUNTRACED), SIGTSTP);
}

static void record_nothing(int sig)
{
    (void)sig;
}

static void test_sigchld_on_stop(void)
{
    sigset_t chld = just(SIGCHLD), old;
    sigprocmask(SIG_BLOCK, &chld, &old);

    pid_t pid = spawn_pauser();
    CHECK_OK(kill(pid, SIGSTOP));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    CHECK_EQ(await_signal(SIGCHLD, &si), SIGCHLD);
    CHECK_EQ(si.si_code, CLD_STOPPED);
    CHECK_EQ(si.si_status, SIGSTOP);
    CHECK_EQ(si.si_pid, pid);
    CHECK_STOPPED(wait_status(pid, WUNTRACED), SIGSTOP);
    CHECK_OK(kill(pid, SIGCONT));
    memset(&si, 0, sizeof si);
    CHECK_EQ(await_signal(SIGCHLD, &si), SIGCHLD);
    CHECK_EQ(si.si_code, CLD_CONTINUED);
    CHECK_EQ(si.si_status, SIGCONT);
    CHECK(WIFCONTINUED(wait_status(pid, WCONTINUED)));
    kill(pid, SIGKILL);
    CHECK_KILLED(wait_status(pid, 0), SIGKILL);
    await_signal(SIGCHLD, NULL);

    /* SA_NOCLDSTOP: no SIGCHLD for stops and continues; exits still send one. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record_nothing;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    pid = spawn_pauser();
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_STOPPED(wait_status(pid, WUNTRACED), SIGSTOP);
    CHECK_OK(kill(pid, SIGCONT));
    CHECK(WIFCONTINUED(wait_status(pid, WCONTINUED)));
    sleep_ms(50);
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGCHLD));
    kill(pid, SIGKILL);
    CHECK_KILLED(wait_status(pid, 0), SIGKILL);
    sigpending(&pending);
    CHECK(sigismember(&pending, SIGCHLD));
    await_signal(SIGCHLD, NULL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* ---- process groups and sessions ---- */

static void test_group_queries(void)
{
    CHECK_EQ(getpgrp(), getpgid(0));
    CHECK_EQ(getpgid(getpid()), getpgrp());
    CHECK_EQ(getsid(getpid()), getsid(0));
    /* 0 when our session leader lives outside our pid namespace (as under some CI runners). */
    CHECK(getsid(0) >= 0);
    CHECK_ERRNO(getpgid(INT_MAX), ESRCH);
    CHECK_ERRNO(getsid(INT_MAX), ESRCH);
    CHECK_ERRNO(getpgid(-1), ESRCH);
    CHECK_ERRNO(setpgid(0, -1), EINVAL);
    CHECK_ERRNO(setpgid(INT_MAX, 0), ESRCH);
}

/* argv: self "tell-parent": signal the parent that the exec is done, then wait. */
static _Noreturn void mode_tell_parent(void)
{
    kill(getppid(), SIGUSR1);
    for (;;)
        pause();
}

/* In a child (so that this program's own group and session are left alone): the rules
 * of setsid and setpgid. */
static void child_session_rules(void *arg)
{
    (void)arg;
    pid_t me = getpid();
    pid_t parent = getppid();
    pid_t old_sid = getsid(0);
    CHECK(old_sid != me);
    CHECK_EQ(setsid(), me);
    CHECK_EQ(getsid(0), me);
    CHECK_EQ(getpgrp(), me);
    CHECK_EQ(getsid(parent), old_sid);
    /* A group leader cannot start a session; a session leader cannot change group. */
    CHECK_ERRNO(setsid(), EPERM);
    CHECK_ERRNO(setpgid(0, 0), EPERM);
    /* Only ourselves and our children: not the parent. */
    CHECK_ERRNO(setpgid(parent, parent), ESRCH);

    /* A child starts in our group and session. It may make a group of its own and go
     * back, but not join a group that does not exist in the session, and a group leader
     * may not setsid. */
    fflush(stdout);
    pid_t g = fork();
    if (g == 0) {
        int ok = getsid(0) == me && getpgrp() == me && setpgid(0, 0) == 0 &&
                 getpgrp() == getpid() && setsid() == -1 && errno == EPERM &&
                 setpgid(0, me) == 0 && getpgrp() == me && setpgid(0, INT_MAX) == -1 &&
                 errno == EPERM;
        _exit(ok ? 0 : 1);
    }
    CHECK_EXITED(wait_status(g, 0), 0);

    /* The parent may move a child between groups of its session... */
    pid_t a = spawn_pauser();
    CHECK_OK(setpgid(a, a));
    CHECK_EQ(getpgid(a), a);
    pid_t b = spawn_pauser();
    CHECK_OK(setpgid(b, a));
    CHECK_EQ(getpgid(b), a);
    CHECK_OK(setpgid(b, 0));
    CHECK_EQ(getpgid(b), b);
    CHECK_OK(setpgid(b, me));
    CHECK_EQ(getpgid(b), me);

    /* ... but not one that started its own session, nor one that has exec'd. */
    sigset_t u1 = just(SIGUSR1);
    sigprocmask(SIG_BLOCK, &u1, NULL);
    fflush(stdout);
    pid_t s = fork();
    if (s == 0) {
        setsid();
        kill(getppid(), SIGUSR1);
        for (;;)
            pause();
    }
    CHECK_EQ(await_signal(SIGUSR1, NULL), SIGUSR1);
    CHECK_EQ(getsid(s), s);
    CHECK_ERRNO(setpgid(s, me), EPERM);
    CHECK_ERRNO(setpgid(s, s), EPERM);
    fflush(stdout);
    pid_t e = fork();
    if (e == 0) {
        char *argv[] = { (char *)self, "tell-parent", NULL };
        char *envp[] = { NULL };
        execve(self, argv, envp);
        _exit(99);
    }
    CHECK_EQ(await_signal(SIGUSR1, NULL), SIGUSR1);
    CHECK_ERRNO(setpgid(e, e), EACCES);

    kill(a, SIGKILL);
    kill(b, SIGKILL);
    kill(s, SIGKILL);
    kill(e, SIGKILL);
    CHECK_KILLED(wait_status(a, 0), SIGKILL);
    CHECK_KILLED(wait_status(b, 0), SIGKILL);
    CHECK_KILLED(wait_status(s, 0), SIGKILL);
    CHECK_KILLED(wait_status(e, 0), SIGKILL);
}

static void test_sessions(void)
{
    CHECK_EXITED(run_in_child(child_session_rules, NULL), 0);
}

/* ---- signals to a group ---- */

/* In a child that leads a group of its own with two children: kill(0, sig) reaches all
 * three. */
static void child_kill_zero(void *arg)
{
    (void)arg;
    CHECK_OK(setpgid(0, 0));
    sigset_t u1 = just(SIGUSR1);
    sigprocmask(SIG_BLOCK, &u1, NULL);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        fflush(stdout);
        kids[i] = fork();
        if (kids[i] == 0)
            _exit(await_signal(SIGUSR1, NULL) == SIGUSR1 ? 0 : 1);
    }
    CHECK_OK(kill(0, SIGUSR1));
    CHECK_EQ(await_signal(SIGUSR1, NULL), SIGUSR1);
    for (int i = 0; i < 2; i++)
        CHECK_EXITED(wait_status(kids[i], 0), 0);
}

static void test_group_signals(void)
{
    CHECK_EXITED(run_in_child(child_kill_zero, NULL), 0);

    /* kill(-pgid) and killpg reach every member of the group and no one else. */
    pid_t a = spawn_own_group_pauser();
    pid_t b = spawn_pauser();
    CHECK_OK(setpgid(b, a));
    pid_t outside = spawn_pauser();
    CHECK_OK(kill(-a, SIGTERM));
    CHECK_KILLED(wait_status(a, 0), SIGTERM);
    CHECK_KILLED(wait_status(b, 0), SIGTERM);
    int st;
    CHECK_EQ(waitpid(outside, &st, WNOHANG), 0);
    CHECK_ERRNO(kill(-a, 0), ESRCH);

    a = spawn_own_group_pauser();
    b = spawn_pauser();
    CHECK_OK(setpgid(b, a));
    CHECK_OK(killpg(a, SIGSTOP));
    CHECK_STOPPED(wait_status(a, WUNTRACED), SIGSTOP);
    CHECK_STOPPED(wait_status(b, WUNTRACED), SIGSTOP);
    CHECK_OK(killpg(a, SIGKILL));
    CHECK_KILLED(wait_status(a, 0), SIGKILL);
    CHECK_KILLED(wait_status(b, 0), SIGKILL);
    CHECK_EQ(waitpid(outside, &st, WNOHANG), 0);
    CHECK_ERRNO(kill(-INT_MAX, SIGTERM), ESRCH);
    CHECK_ERRNO(killpg(INT_MAX, 0), ESRCH);

    kill(outside, SIGKILL);
    CHECK_KILLED(wait_status(outside, 0), SIGKILL);
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc >= 2 && strcmp(argv[1], "tell-parent") == 0)
        mode_tell_parent();

    test_stop_continue();
    test_terminal_stop_signals();
    test_sigchld_on_stop();
    test_group_queries();
    test_sessions();
    test_group_signals();
    return check_done();
}
