/* Orphaned process groups (POSIX job control, as Linux implements it):
 *  - SIGTSTP, SIGTTIN and SIGTTOU with the default action are discarded for a process
 *    whose group is orphaned (no member has a parent in another group of the same
 *    session), since nobody could continue it; SIGSTOP still stops it.
 *  - When a group becomes orphaned while one of its members is stopped, every member gets
 *    SIGHUP then SIGCONT.
 * The processes involved are arranged in sessions of their own below this program, so the
 * outcome is the same natively and as the sandbox's init. */
#include "child.h"

#include <sys/prctl.h>

static sigset_t just(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

static int await_signal(int sig, long ms)
{
    sigset_t s = just(sig);
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    siginfo_t si;
    return sigtimedwait(&s, &si, &t);
}

/* The mask before test_stop_signals_discarded blocked SIGUSR1. */
static sigset_t old;

static void tell_parent(int sig)
{
    (void)sig;
    kill(getppid(), SIGUSR1);
}

/* A child that starts a session (so its group is orphaned from the start) and says so
 * with SIGUSR1; later it answers SIGRTMIN with SIGUSR1 too. */
static pid_t spawn_session_leader(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        signal(SIGRTMIN, tell_parent);
        setsid();
        kill(getppid(), SIGUSR1);
        for (;;)
            pause();
    }
    CHECK_EQ(await_signal(SIGUSR1, 5000), SIGUSR1);
    return pid;
}

static void test_stop_signals_discarded(void)
{
    sigset_t u1 = just(SIGUSR1);
    sigprocmask(SIG_BLOCK, &u1, &old);
    static const int stops[] = { SIGTSTP, SIGTTIN, SIGTTOU };
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        pid_t pid = spawn_session_leader();
        /* Pending signals are taken lowest number first: the stop signal, then SIGRTMIN.
         * If the child stopped it cannot answer SIGRTMIN. */
        CHECK_OK(kill(pid, stops[i]));
        CHECK_OK(kill(pid, SIGRTMIN));
        CHECK_EQ(await_signal(SIGUSR1, 2000), SIGUSR1);
        int st;
        CHECK_EQ(waitpid(pid, &st, WUNTRACED | WNOHANG), 0);
        kill(pid, SIGKILL);
        CHECK_KILLED(wait_status(pid, 0), SIGKILL);
    }
    /* SIGSTOP is never discarded. */
    pid_t pid = spawn_session_leader();
    CHECK_OK(kill(pid, SIGSTOP));
    CHECK_STOPPED(wait_status(pid, WUNTRACED), SIGSTOP);
    CHECK_OK(kill(pid, SIGKILL));
    CHECK_KILLED(wait_status(pid, 0), SIGKILL);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* leader: a session of its own. middle: a group of its own in that session, the group's
 * link to the outside (its parent, leader, is in another group of the same session).
 * stopped: in middle's group; stops itself. When middle exits, stopped is reparented to
 * this program (a subreaper, in another session): the group is orphaned with a stopped
 * member, so it gets SIGHUP (fatal by default) and SIGCONT. */
static void test_newly_orphaned_group(void)
{
    CHECK_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
    fflush(stdout);
    pid_t leader = fork();
    if (leader == 0) {
        setsid();
        pid_t middle = fork();
        if (middle == 0) {
            setpgid(0, 0);
            pid_t stopped = fork();
            if (stopped == 0) {
                char buf[16];
                int n = snprintf(buf, sizeof buf, "%d", getpid());
                write_file(tmp_path("stopped.pid"), buf, n);
                raise(SIGSTOP);
                /* Continued without SIGHUP having killed us: wrong. */
                _exit(7);
            }
            int st;
            if (waitpid(stopped, &st, WUNTRACED) != stopped || !WIFSTOPPED(st))
                _exit(2);
            _exit(0);
        }
        int st;
        if (waitpid(middle, &st, 0) != middle || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            _exit(3);
        _exit(0);
    }
    CHECK_EXITED(wait_status(leader, 0), 0);
    /* The grandchild came back to us; it should die of the SIGHUP soon (it was sent when
     * middle exited). Poll, so that a grandchild left stopped fails instead of hanging. */
    int st = -1;
    pid_t r = 0;
    for (int i = 0; i < 500 && r == 0; i++) {
        r = waitpid(-1, &st, WNOHANG);
        if (r == 0)
            sleep_ms(10);
    }
    CHECK(r > 0);
    CHECK_KILLED(st, SIGHUP);
    if (r == 0) {
        /* Still there, stopped: the grandchild left its pid in a file. */
        char buf[16] = "";
        int fd = open(tmp_path("stopped.pid"), O_RDONLY);
        if (fd >= 0 && read(fd, buf, sizeof buf - 1) > 0)
            kill(atoi(buf), SIGKILL);
        close(fd);
        waitpid(-1, &st, 0);
    }
}

int main(void)
{
    check_tmpdir("jobctl_orphan");
    test_stop_signals_discarded();
    test_newly_orphaned_group();
    return check_done();
}
