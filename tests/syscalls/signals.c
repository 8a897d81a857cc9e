/* Signals: rt_sigaction flags, the siginfo a handler sees (SI_USER, SI_TKILL, SI_QUEUE,
 * CLD_*), masks and pending sets, queueing of real-time signals, sigsuspend, pause,
 * sigtimedwait, SA_RESETHAND, SA_NODEFER, SA_RESTART against EINTR, sigaltstack with
 * SA_ONSTACK, the FPU/SSE/AVX state kept across a handler, signal state across execve, and
 * default actions (in children).
 *
 * Signals with a terminating default action are never sent to this process itself: as the
 * sandbox's init it would die of them where Linux's init would not. Timing: a few checks
 * need a signal to arrive while this process is blocked; the sender waits 100 ms first. */
#include "child.h"

#include <cpuid.h>
#include <limits.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <ucontext.h>

static const char *self;

/* ---- what handlers saw ---- */

#define MAX_SEEN 16
static volatile sig_atomic_t nseen;
static siginfo_t seen[MAX_SEEN];
static sigset_t seen_mask[MAX_SEEN];
static volatile sig_atomic_t depth, max_depth;

static void reset_seen(void)
{
    nseen = 0;
    depth = 0;
    max_depth = 0;
    memset(seen, 0, sizeof seen);
}

static void record(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    depth++;
    if (depth > max_depth)
        max_depth = depth;
    int i = nseen;
    if (i < MAX_SEEN) {
        if (si)
            seen[i] = *si;
        else
            seen[i].si_signo = sig;
        sigprocmask(SIG_BLOCK, NULL, &seen_mask[i]);
        nseen = i + 1;
    }
    depth--;
}

static void record_plain(int sig)
{
    record(sig, NULL, NULL);
}

static void set_action(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = flags | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* A handler that blocks every signal while it runs, so handlers run one after another
 * in delivery order (otherwise each newly delivered signal's frame lands on top of the
 * last one and the handlers run in reverse order). */
static void set_action_serial(int sig, void (*fn)(int, siginfo_t *, void *))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO;
    sigfillset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void set_default(int sig)
{
    signal(sig, SIG_DFL);
}

static sigset_t just(int sig)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

static void unblock_all(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---- rt_sigaction ---- */

static void test_sigaction_errors(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record_plain;
    CHECK_ERRNO(sigaction(SIGKILL, &sa, NULL), EINVAL);
    CHECK_ERRNO(sigaction(SIGSTOP, &sa, NULL), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigaction, 0, NULL, &old, 8), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigaction, 65, NULL, &old, 8), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigaction, SIGUSR1, NULL, &old, 16), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigaction, SIGUSR1, BAD_PTR, NULL, 8), EFAULT);
    CHECK_ERRNO(syscall(SYS_rt_sigaction, SIGUSR1, NULL, BAD_PTR, 8), EFAULT);
    /* Reading SIGKILL's action is allowed. */
    CHECK_OK(sigaction(SIGKILL, NULL, &old));
    CHECK(old.sa_handler == SIG_DFL);

    /* The old action comes back as it was set: handler, flags, mask. */
    sa.sa_flags = SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaddset(&sa.sa_mask, SIGRTMIN + 3);
    CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
    memset(&old, 0, sizeof old);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    CHECK_OK(sigaction(SIGUSR1, &dfl, &old));
    CHECK(old.sa_handler == record_plain);
    CHECK_EQ(old.sa_flags & (SA_RESTART | SA_NODEFER | SA_SIGINFO), SA_RESTART | SA_NODEFER);
    CHECK(sigismember(&old.sa_mask, SIGUSR2));
    CHECK(sigismember(&old.sa_mask, SIGRTMIN + 3));
    CHECK(!sigismember(&old.sa_mask, SIGHUP));
}

/* ---- siginfo of self-sent signals ---- */

static void test_siginfo_codes(void)
{
    set_action(SIGUSR1, record, 0);
    reset_seen();
    /* A signal sent to ourselves, unblocked, is handled before kill returns. */
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0].si_signo, SIGUSR1);
    CHECK_EQ(seen[0].si_code, SI_USER);
    CHECK_EQ(seen[0].si_pid, getpid());
    CHECK_EQ(seen[0].si_uid, getuid());
    /* Inside the handler the signal itself was blocked (no SA_NODEFER). */
    CHECK(sigismember(&seen_mask[0], SIGUSR1));

    reset_seen();
    CHECK_OK(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1));
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0].si_code, SI_TKILL);
    CHECK_EQ(seen[0].si_pid, getpid());

    reset_seen();
    CHECK_OK(syscall(SYS_tkill, gettid(), SIGUSR1));
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0].si_code, SI_TKILL);

    reset_seen();
    CHECK_OK(sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 1234 }));
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0].si_code, SI_QUEUE);
    CHECK_EQ(seen[0].si_value.sival_int, 1234);
    CHECK_EQ(seen[0].si_pid, getpid());

    /* rt_sigqueueinfo to ourselves delivers the siginfo as given (si_signo aside). */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR2; /* overwritten with the signal sent */
    si.si_code = -42;
    si.si_pid = 4242;
    si.si_uid = 77;
    si.si_value.sival_int = 7;
    reset_seen();
    CHECK_OK(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si));
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0].si_signo, SIGUSR1);
    CHECK_EQ(seen[0].si_code, -42);
    CHECK_EQ(seen[0].si_pid, 4242);
    CHECK_EQ(seen[0].si_uid, 77);
    CHECK_EQ(seen[0].si_value.sival_int, 7);
    reset_seen();
    si.si_value.sival_int = 8;
    CHECK_OK(syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGUSR1, &si));
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0].si_value.sival_int, 8);

    /* Errors: bad signal numbers, pids, tids and pointers. Signal 0 only checks. */
    reset_seen();
    CHECK_OK(kill(getpid(), 0));
    CHECK_ERRNO(kill(getpid(), 65), EINVAL);
    CHECK_ERRNO(kill(getpid(), -1), EINVAL);
    CHECK_ERRNO(kill(INT_MAX, SIGUSR1), ESRCH);
    CHECK_ERRNO(kill(INT_MIN, SIGUSR1), ESRCH);
    CHECK_ERRNO(syscall(SYS_tgkill, getpid(), 0, SIGUSR1), EINVAL);
    CHECK_ERRNO(syscall(SYS_tgkill, 0, gettid(), SIGUSR1), EINVAL);
    CHECK_ERRNO(syscall(SYS_tgkill, getpid(), INT_MAX, SIGUSR1), ESRCH);
    CHECK_ERRNO(syscall(SYS_tgkill, INT_MAX, gettid(), SIGUSR1), ESRCH);
    CHECK_ERRNO(syscall(SYS_tkill, gettid(), 65), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, BAD_PTR), EFAULT);
    CHECK_EQ(nseen, 0);

    /* rt_sigqueueinfo may not forge kernel or kill() codes for another process. */
    pid_t child = spawn_pauser();
    memset(&si, 0, sizeof si);
    si.si_code = SI_USER;
    CHECK_ERRNO(syscall(SYS_rt_sigqueueinfo, child, SIGUSR1, &si), EPERM);
    si.si_code = SI_KERNEL;
    CHECK_ERRNO(syscall(SYS_rt_sigqueueinfo, child, SIGUSR1, &si), EPERM);
    kill(child, SIGKILL);
    CHECK_KILLED(wait_status(child, 0), SIGKILL);
    set_default(SIGUSR1);
}

/* ---- masks, pending sets, queueing, order ---- */

static void test_mask_and_pending(void)
{
    set_action_serial(SIGUSR1, record);
    set_action_serial(SIGUSR2, record);
    set_action_serial(SIGRTMIN, record);
    reset_seen();

    sigset_t set, old, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN);
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, &old));
    CHECK(!sigismember(&old, SIGUSR1));

    /* Blocked: nothing is delivered, the signals wait in the pending set. A standard
     * signal is pending once however often it is sent; real-time ones queue. */
    CHECK_OK(kill(getpid(), SIGUSR2));
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_OK(kill(getpid(), SIGUSR1));
    for (int v = 1; v <= 3; v++)
        CHECK_OK(sigqueue(getpid(), SIGRTMIN, (union sigval){ .sival_int = v }));
    CHECK_EQ(nseen, 0);
    sigemptyset(&pending);
    CHECK_OK(sigpending(&pending));
    CHECK(sigismember(&pending, SIGUSR1));
    CHECK(sigismember(&pending, SIGUSR2));
    CHECK(sigismember(&pending, SIGRTMIN));
    CHECK(!sigismember(&pending, SIGHUP));

    /* Unblocking delivers them all before sigprocmask returns: lowest number first, the
     * real-time ones in the order they were queued. */
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    CHECK_EQ(nseen, 5);
    CHECK_EQ(seen[0].si_signo, SIGUSR1);
    CHECK_EQ(seen[1].si_signo, SIGUSR2);
    CHECK_EQ(seen[2].si_signo, SIGRTMIN);
    CHECK_EQ(seen[2].si_value.sival_int, 1);
    CHECK_EQ(seen[3].si_value.sival_int, 2);
    CHECK_EQ(seen[4].si_value.sival_int, 3);
    CHECK_OK(sigpending(&pending));
    CHECK(!sigismember(&pending, SIGUSR1));
    CHECK(!sigismember(&pending, SIGRTMIN));

    /* Setting a pending signal's action to SIG_IGN discards it. */
    reset_seen();
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    CHECK_OK(kill(getpid(), SIGUSR1));
    signal(SIGUSR1, SIG_IGN);
    CHECK_OK(sigpending(&pending));
    CHECK(!sigismember(&pending, SIGUSR1));
    set_action(SIGUSR1, record, 0);
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));
    CHECK_EQ(nseen, 0);

    /* SIGKILL and SIGSTOP cannot be blocked: asking is not an error, they are left out. */
    sigset_t ks;
    sigemptyset(&ks);
    sigaddset(&ks, SIGKILL);
    sigaddset(&ks, SIGSTOP);
    CHECK_OK(sigprocmask(SIG_BLOCK, &ks, NULL));
    sigset_t now;
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &now));
    CHECK(!sigismember(&now, SIGKILL));
    CHECK(!sigismember(&now, SIGSTOP));

    /* SIG_UNBLOCK, and the errors of the raw call. */
    CHECK_OK(sigprocmask(SIG_BLOCK, &set, NULL));
    sigset_t u1 = just(SIGUSR1);
    CHECK_OK(sigprocmask(SIG_UNBLOCK, &u1, &now));
    CHECK(sigismember(&now, SIGUSR1));
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &now));
    CHECK(!sigismember(&now, SIGUSR1));
    CHECK(sigismember(&now, SIGUSR2));
    CHECK_ERRNO(syscall(SYS_rt_sigprocmask, 3, &set, NULL, 8), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, 16), EINVAL);
    CHECK_ERRNO(syscall(SYS_rt_sigprocmask, SIG_BLOCK, BAD_PTR, NULL, 8), EFAULT);
    CHECK_ERRNO(syscall(SYS_rt_sigpending, BAD_PTR, 8), EFAULT);
    CHECK_OK(sigprocmask(SIG_SETMASK, &old, NULL));

    /* sa_mask is blocked inside the handler and unblocked after it. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = record;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGUSR1, &sa, NULL);
    reset_seen();
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(nseen, 1);
    CHECK(sigismember(&seen_mask[0], SIGHUP));
    CHECK(sigismember(&seen_mask[0], SIGUSR1));
    CHECK_OK(sigprocmask(SIG_BLOCK, NULL, &now));
    CHECK(!sigismember(&now, SIGHUP));
    CHECK(!sigismember(&now, SIGUSR1));

    set_default(SIGUSR1);
    set_default(SIGUSR2);
    set_default(SIGRTMIN);
}

/* A handler that edits uc_sigmask changes the mask restored by rt_sigreturn. */
static void add_sigurg_to_mask(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ucv;
    sigaddset(&uc->uc_sigmask, SIGURG);
}

static void test_handler_edits_mask(void)
{
    set_action(SIGUSR1, add_sigurg_to_mask, 0);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(!sigismember(&now, SIGURG));
    CHECK_OK(kill(getpid(), SIGUSR1));
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(sigismember(&now, SIGURG));
    unblock_all();
    set_default(SIGUSR1);
}

/* ---- SA_RESETHAND and SA_NODEFER ---- */

static void nested(int sig, siginfo_t *si, void *uc)
{
    record(sig, si, uc);
    depth++;
    if (nseen == 1)
        kill(getpid(), sig);
    depth--;
}

static void test_resethand_nodefer(void)
{
    set_action(SIGUSR1, record, SA_RESETHAND);
    reset_seen();
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(nseen, 1);
    struct sigaction now;
    CHECK_OK(sigaction(SIGUSR1, NULL, &now));
    CHECK(now.sa_handler == SIG_DFL);

    /* Without SA_NODEFER the handler's own signal waits until it returns... */
    set_action(SIGUSR2, nested, 0);
    reset_seen();
    CHECK_OK(kill(getpid(), SIGUSR2));
    CHECK_EQ(nseen, 2);
    CHECK_EQ(max_depth, 1);
    /* ... with it, the handler is re-entered from inside the kill. */
    set_action(SIGUSR2, nested, SA_NODEFER);
    reset_seen();
    CHECK_OK(kill(getpid(), SIGUSR2));
    CHECK_EQ(nseen, 2);
    CHECK_EQ(max_depth, 2);
    CHECK(!sigismember(&seen_mask[0], SIGUSR2));
    set_default(SIGUSR2);
}

/* ---- waiting for signals ---- */

static pid_t spawn_sender(pid_t target, int sig, long delay_ms, long repeat_ms)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(delay_ms);
        do {
            kill(target, sig);
            if (repeat_ms)
                sleep_ms(repeat_ms);
        } while (repeat_ms);
        _exit(0);
    }
    return pid;
}

static void test_sigsuspend_pause(void)
{
    set_action(SIGUSR1, record, 0);
    sigset_t u1 = just(SIGUSR1), old, empty;
    sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &u1, &old);

    /* Already pending: sigsuspend handles it at once and returns EINTR. */
    reset_seen();
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_ERRNO(sigsuspend(&empty), EINTR);
    CHECK_EQ(nseen, 1);
    /* The mask is back as it was: SIGUSR1 blocked. */
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(sigismember(&now, SIGUSR1));
    /* Inside the handler, sigsuspend's mask plus the signal itself was in force. */
    CHECK(sigismember(&seen_mask[0], SIGUSR1));

    /* Sent by a child while we sleep in sigsuspend. (Blocked again explicitly: if the
     * mask was not restored, the signal could be handled before sigsuspend, which would
     * then wait forever.) */
    sigprocmask(SIG_BLOCK, &u1, NULL);
    reset_seen();
    pid_t sender = spawn_sender(getpid(), SIGUSR1, 0, 0);
    CHECK_ERRNO(sigsuspend(&empty), EINTR);
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0].si_pid, sender);
    CHECK_EQ(seen[0].si_code, SI_USER);
    sigprocmask(SIG_BLOCK, NULL, &now);
    CHECK(sigismember(&now, SIGUSR1));
    CHECK_EXITED(wait_status(sender, 0), 0);
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* pause returns EINTR after a handler ran. The sender repeats, so a signal that
     * arrives before pause is entered does not leave us waiting forever. */
    reset_seen();
    sender = spawn_sender(getpid(), SIGUSR1, 20, 20);
    CHECK_ERRNO(pause(), EINTR);
    CHECK(nseen >= 1);
    kill(sender, SIGKILL);
    CHECK_KILLED(wait_status(sender, 0), SIGKILL);
    set_default(SIGUSR1);
}

static void test_sigtimedwait(void)
{
    set_action(SIGUSR1, record, 0);
    sigset_t u1 = just(SIGUSR1), old;
    sigprocmask(SIG_BLOCK, &u1, &old);

    /* Nothing pending: EAGAIN after the timeout, not before. */
    struct timespec ts = { 0, 50 * 1000000L };
    siginfo_t si;
    long long t0 = now_ns();
    CHECK_ERRNO(sigtimedwait(&u1, &si, &ts), EAGAIN);
    CHECK(now_ns() - t0 >= 45 * 1000000LL);
    struct timespec zero = { 0, 0 };
    CHECK_ERRNO(sigtimedwait(&u1, &si, &zero), EAGAIN);
    struct timespec bad = { 0, 1000000000L };
    CHECK_ERRNO(sigtimedwait(&u1, &si, &bad), EINVAL);

    /* Pending: taken without running the handler, with its siginfo. */
    reset_seen();
    CHECK_OK(sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 99 }));
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&u1, &si, &ts), SIGUSR1);
    CHECK_EQ(si.si_signo, SIGUSR1);
    CHECK_EQ(si.si_code, SI_QUEUE);
    CHECK_EQ(si.si_value.sival_int, 99);
    CHECK_EQ(nseen, 0);
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGUSR1));

    /* Arriving while we wait (sent by a child). */
    pid_t sender = spawn_sender(getpid(), SIGUSR1, 20, 0);
    struct timespec five = { 5, 0 };
    memset(&si, 0, sizeof si);
    CHECK_EQ(sigtimedwait(&u1, &si, &five), SIGUSR1);
    CHECK_EQ(si.si_pid, sender);
    CHECK_EXITED(wait_status(sender, 0), 0);

    /* A signal outside the waited set that has a handler interrupts the wait. */
    set_action(SIGUSR2, record, 0);
    reset_seen();
    sender = spawn_sender(getpid(), SIGUSR2, 20, 0);
    CHECK_ERRNO(sigtimedwait(&u1, &si, &five), EINTR);
    CHECK_EQ(nseen, 1);
    CHECK_EXITED(wait_status(sender, 0), 0);
    set_default(SIGUSR2);

    sigprocmask(SIG_SETMASK, &old, NULL);
    set_default(SIGUSR1);
}

/* ---- SA_RESTART ---- */

/* A child `victim` pauses; a second child signals us after 100 ms, then kills the victim
 * 100 ms later. Meanwhile we sit in wait4(victim). Returns wait4's result. */
static long interrupted_wait(int sa_flags, int *status, int *err)
{
    set_action(SIGUSR1, record, sa_flags);
    reset_seen();
    pid_t victim = spawn_pauser();
    pid_t me = getpid();
    fflush(stdout);
    pid_t sender = fork();
    if (sender == 0) {
        sleep_ms(100);
        kill(me, SIGUSR1);
        sleep_ms(100);
        kill(victim, SIGKILL);
        _exit(0);
    }
    *status = -1;
    errno = 0;
    long r = wait4(victim, status, 0, NULL);
    *err = errno;
    if (r != victim)
        wait_status(victim, 0);
    wait_status(sender, 0);
    set_default(SIGUSR1);
    return r;
}

static void test_restart(void)
{
    int st, err;
    /* With SA_RESTART the wait goes on after the handler and sees the victim die. */
    long r = interrupted_wait(SA_RESTART, &st, &err);
    CHECK(r > 0);
    CHECK_KILLED(st, SIGKILL);
    CHECK_EQ(nseen, 1);
    /* Without it, wait4 fails with EINTR. */
    r = interrupted_wait(0, &st, &err);
    CHECK_EQ(r, -1);
    CHECK_EQ(err, EINTR);
    CHECK_EQ(nseen, 1);

    /* nanosleep is never restarted after a handler: EINTR and the time left. */
    set_action(SIGUSR1, record, SA_RESTART);
    reset_seen();
    pid_t sender = spawn_sender(getpid(), SIGUSR1, 100, 0);
    struct timespec ts = { 5, 0 }, rem = { 0, 0 };
    CHECK_ERRNO(nanosleep(&ts, &rem), EINTR);
    CHECK(rem.tv_sec >= 3 && rem.tv_sec <= 4);
    CHECK_EQ(nseen, 1);
    CHECK_EXITED(wait_status(sender, 0), 0);
    set_default(SIGUSR1);
}

/* ---- SIGCHLD ---- */

static void test_sigchld(void)
{
    /* With a handler (no SA_RESTART), waiting for the very child whose exit raises
     * SIGCHLD reaps it: Linux checks for the zombie before it looks at signals. */
    set_action(SIGCHLD, record, 0);
    reset_seen();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sleep_ms(50);
        _exit(5);
    }
    int st = -1;
    pid_t r = waitpid(pid, &st, 0);
    CHECK_EQ(r, pid);
    if (r != pid)
        st = wait_status(pid, 0); /* so that a failure here does not spill into the next */
    CHECK_EXITED(st, 5);
    CHECK_EQ(nseen, 1);
    CHECK_EQ(seen[0].si_signo, SIGCHLD);
    CHECK_EQ(seen[0].si_code, CLD_EXITED);
    CHECK_EQ(seen[0].si_pid, pid);
    CHECK_EQ(seen[0].si_status, 5);
    CHECK_EQ(seen[0].si_uid, getuid());

    /* Killed: CLD_KILLED with the signal number as status. */
    sigset_t chld = just(SIGCHLD), old;
    sigprocmask(SIG_BLOCK, &chld, &old);
    pid = spawn_pauser();
    kill(pid, SIGTERM);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct timespec five = { 5, 0 };
    CHECK_EQ(sigtimedwait(&chld, &si, &five), SIGCHLD);
    CHECK_EQ(si.si_code, CLD_KILLED);
    CHECK_EQ(si.si_status, SIGTERM);
    CHECK_EQ(si.si_pid, pid);
    CHECK_KILLED(wait_status(pid, 0), SIGTERM);
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* SIG_IGN: children are reaped by the kernel; a wait blocks until none is left,
     * then fails with ECHILD. SA_NOCLDWAIT does the same with a handler. */
    signal(SIGCHLD, SIG_IGN);
    pid = fork();
    if (pid == 0)
        _exit(1);
    CHECK_ERRNO(waitpid(pid, &st, 0), ECHILD);
    set_action(SIGCHLD, record, SA_NOCLDWAIT);
    pid = fork();
    if (pid == 0)
        _exit(1);
    CHECK_ERRNO(waitpid(-1, &st, 0), ECHILD);
    set_default(SIGCHLD);

    /* SIGCHLD's default action is to ignore, but unlike SIG_IGN it leaves zombies. */
    pid = fork();
    if (pid == 0)
        _exit(2);
    CHECK_EXITED(wait_status(pid, 0), 2);
}

/* ---- sigaltstack ---- */

static char *alt_lo, *alt_hi;
static volatile int on_alt, alt_flags_inside, alt_eperm;

static void where_am_i(int sig)
{
    (void)sig;
    char here;
    on_alt = &here >= alt_lo && &here < alt_hi;
    stack_t cur;
    sigaltstack(NULL, &cur);
    alt_flags_inside = cur.ss_flags;
    /* Changing the alternate stack while running on it is EPERM. */
    stack_t other = { .ss_sp = alt_lo, .ss_size = alt_hi - alt_lo, .ss_flags = 0 };
    alt_eperm = sigaltstack(&other, NULL) == -1 && errno == EPERM;
}

static void test_sigaltstack(void)
{
    size_t size = 64 * 1024;
    alt_lo = malloc(size);
    alt_hi = alt_lo + size;
    stack_t ss = { .ss_sp = alt_lo, .ss_size = size, .ss_flags = 0 }, old;
    CHECK_OK(sigaltstack(&ss, &old));
    CHECK_EQ(old.ss_flags, SS_DISABLE);
    stack_t cur;
    CHECK_OK(sigaltstack(NULL, &cur));
    CHECK_EQ(cur.ss_sp, alt_lo);
    CHECK_EQ(cur.ss_size, size);
    CHECK_EQ(cur.ss_flags, 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = where_am_i;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    on_alt = -1;
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(on_alt, 1);
    CHECK_EQ(alt_flags_inside, SS_ONSTACK);
    CHECK_EQ(alt_eperm, 1);
    CHECK_OK(sigaltstack(NULL, &cur));
    CHECK_EQ(cur.ss_flags, 0);

    /* Without SA_ONSTACK the handler stays on the normal stack. */
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    on_alt = -1;
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(on_alt, 0);
    CHECK_EQ(alt_flags_inside, 0);

    /* SS_DISABLE: SA_ONSTACK handlers use the normal stack. */
    stack_t dis = { .ss_flags = SS_DISABLE };
    CHECK_OK(sigaltstack(&dis, NULL));
    CHECK_OK(sigaltstack(NULL, &cur));
    CHECK_EQ(cur.ss_flags, SS_DISABLE);
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    on_alt = -1;
    CHECK_OK(kill(getpid(), SIGUSR1));
    CHECK_EQ(on_alt, 0);

    /* Errors: too small, unknown flags, bad pointers. */
    stack_t tiny = { .ss_sp = alt_lo, .ss_size = 256, .ss_flags = 0 };
    CHECK_ERRNO(sigaltstack(&tiny, NULL), ENOMEM);
    stack_t weird = { .ss_sp = alt_lo, .ss_size = size, .ss_flags = 0x1234 };
    CHECK_ERRNO(sigaltstack(&weird, NULL), EINVAL);
    CHECK_ERRNO(sigaltstack(BAD_PTR, NULL), EFAULT);
    CHECK_ERRNO(sigaltstack(NULL, BAD_PTR), EFAULT);
    set_default(SIGUSR1);
    free(alt_lo);
}

/* ---- FPU/SSE/AVX state across a handler ---- */

static unsigned handler_mxcsr;
static unsigned short handler_fcw;

static void clobber_fp(int sig)
{
    (void)sig;
    unsigned m;
    unsigned short cw;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(m), "=m"(cw));
    handler_mxcsr = m;
    handler_fcw = cw;
    unsigned bad_mxcsr = 0x1f80 | 0x4000; /* round down */
    unsigned short bad_fcw = 0x0c7f;       /* round toward zero */
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n\t"
                     "pcmpeqd %%xmm1, %%xmm1\n\t"
                     "pcmpeqd %%xmm2, %%xmm2\n\t"
                     "pcmpeqd %%xmm3, %%xmm3\n\t"
                     "pcmpeqd %%xmm4, %%xmm4\n\t"
                     "pcmpeqd %%xmm5, %%xmm5\n\t"
                     "pcmpeqd %%xmm6, %%xmm6\n\t"
                     "pcmpeqd %%xmm7, %%xmm7\n\t"
                     "pcmpeqd %%xmm8, %%xmm8\n\t"
                     "pcmpeqd %%xmm9, %%xmm9\n\t"
                     "pcmpeqd %%xmm10, %%xmm10\n\t"
                     "pcmpeqd %%xmm11, %%xmm11\n\t"
                     "pcmpeqd %%xmm12, %%xmm12\n\t"
                     "pcmpeqd %%xmm13, %%xmm13\n\t"
                     "pcmpeqd %%xmm14, %%xmm14\n\t"
                     "pcmpeqd %%xmm15, %%xmm15\n\t"
                     "ldmxcsr %0\n\t"
                     "fldcw %1\n\t"
                     "fldz\n\t"
                     "fstp %%st(0)\n\t"
                     :
                     : "m"(bad_mxcsr), "m"(bad_fcw)
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

static void clobber_ymm(int sig)
{
    clobber_fp(sig);
    __asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
                     "vpcmpeqd %%ymm7, %%ymm7, %%ymm7\n\t"
                     "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\t"
                     :
                     :
                     : "xmm0", "xmm7", "xmm15");
}

static int cpu_has_avx(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    /* AVX and OSXSAVE. */
    return (c & (1u << 28)) && (c & (1u << 27));
}

static void test_fp_preserved(void)
{
    _Alignas(16) unsigned char in[16][16], out[16][16];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            in[i][j] = (unsigned char)(i * 16 + j + 1);
    memset(out, 0, sizeof out);
    unsigned mx_in = 0x1f80 | 0x6000; /* round toward zero */
    unsigned mx_out = 0;
    unsigned short cw_in = 0x047f; /* round down, all exceptions masked */
    unsigned short cw_out = 0;
    double x87_in = 3.25, x87_out = 0;
    long pid = getpid();

    signal(SIGUSR1, clobber_fp);
    handler_mxcsr = 0;
    /* Load every xmm register, MXCSR, the x87 control word and st(0), call kill(self)
     * (the handler runs as the syscall returns), then read them all back. */
    __asm__ volatile("ldmxcsr %[mxin]\n\t"
                     "fldcw %[cwin]\n\t"
                     "fldl %[x87in]\n\t"
                     "movdqu 0(%[in]), %%xmm0\n\t"
                     "movdqu 16(%[in]), %%xmm1\n\t"
                     "movdqu 32(%[in]), %%xmm2\n\t"
                     "movdqu 48(%[in]), %%xmm3\n\t"
                     "movdqu 64(%[in]), %%xmm4\n\t"
                     "movdqu 80(%[in]), %%xmm5\n\t"
                     "movdqu 96(%[in]), %%xmm6\n\t"
                     "movdqu 112(%[in]), %%xmm7\n\t"
                     "movdqu 128(%[in]), %%xmm8\n\t"
                     "movdqu 144(%[in]), %%xmm9\n\t"
                     "movdqu 160(%[in]), %%xmm10\n\t"
                     "movdqu 176(%[in]), %%xmm11\n\t"
                     "movdqu 192(%[in]), %%xmm12\n\t"
                     "movdqu 208(%[in]), %%xmm13\n\t"
                     "movdqu 224(%[in]), %%xmm14\n\t"
                     "movdqu 240(%[in]), %%xmm15\n\t"
                     "mov $62, %%eax\n\t" /* SYS_kill */
                     "mov %[pid], %%rdi\n\t"
                     "mov $10, %%esi\n\t" /* SIGUSR1 */
                     "syscall\n\t"
                     "movdqu %%xmm0, 0(%[out])\n\t"
                     "movdqu %%xmm1, 16(%[out])\n\t"
                     "movdqu %%xmm2, 32(%[out])\n\t"
                     "movdqu %%xmm3, 48(%[out])\n\t"
                     "movdqu %%xmm4, 64(%[out])\n\t"
                     "movdqu %%xmm5, 80(%[out])\n\t"
                     "movdqu %%xmm6, 96(%[out])\n\t"
                     "movdqu %%xmm7, 112(%[out])\n\t"
                     "movdqu %%xmm8, 128(%[out])\n\t"
                     "movdqu %%xmm9, 144(%[out])\n\t"
                     "movdqu %%xmm10, 160(%[out])\n\t"
                     "movdqu %%xmm11, 176(%[out])\n\t"
                     "movdqu %%xmm12, 192(%[out])\n\t"
                     "movdqu %%xmm13, 208(%[out])\n\t"
                     "movdqu %%xmm14, 224(%[out])\n\t"
                     "movdqu %%xmm15, 240(%[out])\n\t"
                     "fstpl %[x87out]\n\t"
                     "stmxcsr %[mxout]\n\t"
                     "fnstcw %[cwout]\n\t"
                     "movl $0x1f80, %[mxin]\n\t"
                     "ldmxcsr %[mxin]\n\t"
                     "fninit\n\t"
                     : [mxout] "=m"(mx_out), [cwout] "=m"(cw_out), [x87out] "=m"(x87_out),
                       [mxin] "+m"(mx_in)
                     : [in] "r"(in), [out] "r"(out), [pid] "r"(pid), [cwin] "m"(cw_in),
                       [x87in] "m"(x87_in)
                     : "rax", "rdi", "rsi", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2",
                       "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                       "xmm12", "xmm13", "xmm14", "xmm15");
    CHECK_MEMEQ(out, in, sizeof in);
    CHECK_EQ(mx_out, 0x1f80 | 0x6000);
    CHECK_EQ(cw_out, 0x047f);
    CHECK(x87_out == 3.25);
    /* The handler started with the default FPU state, as Linux gives it. */
    CHECK_EQ(handler_mxcsr, 0x1f80);
    CHECK_EQ(handler_fcw, 0x037f);

    /* The upper halves of the ymm registers too (where there is AVX: the count of checks
     * is the same either way). */
    int avx = cpu_has_avx();
    _Alignas(32) unsigned char yin[3][32], yout[3][32];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 32; j++)
            yin[i][j] = (unsigned char)(0x80 + i * 32 + j);
    memcpy(yout, yin, sizeof yin);
    if (avx) {
        memset(yout, 0, sizeof yout);
        signal(SIGUSR1, clobber_ymm);
        __asm__ volatile("vmovdqu 0(%[in]), %%ymm0\n\t"
                         "vmovdqu 32(%[in]), %%ymm7\n\t"
                         "vmovdqu 64(%[in]), %%ymm15\n\t"
                         "mov $62, %%eax\n\t"
                         "mov %[pid], %%rdi\n\t"
                         "mov $10, %%esi\n\t"
                         "syscall\n\t"
                         "vmovdqu %%ymm0, 0(%[out])\n\t"
                         "vmovdqu %%ymm7, 32(%[out])\n\t"
                         "vmovdqu %%ymm15, 64(%[out])\n\t"
                         "vzeroupper\n\t"
                         :
                         : [in] "r"(yin), [out] "r"(yout), [pid] "r"(pid)
                         : "rax", "rdi", "rsi", "rcx", "r11", "memory", "xmm0", "xmm7",
                           "xmm15");
    }
    CHECK_MEMEQ(yout, yin, sizeof yin);
    set_default(SIGUSR1);
}

/* ---- signal state across execve ---- */

static void on_hup(int sig)
{
    (void)sig;
}

/* argv: self "exec-signals": check what the pre-exec image arranged (see test_exec). */
static int mode_exec_signals(void)
{
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    if (sa.sa_handler != SIG_IGN)
        return 10; /* ignored stays ignored */
    sigaction(SIGUSR2, NULL, &sa);
    if (sa.sa_handler != SIG_DFL)
        return 11; /* a handler is reset to the default */
    sigset_t mask, pending;
    sigprocmask(SIG_BLOCK, NULL, &mask);
    if (!sigismember(&mask, SIGHUP) || !sigismember(&mask, SIGINT) ||
        sigismember(&mask, SIGUSR2))
        return 12; /* the mask is kept */
    sigpending(&pending);
    if (!sigismember(&pending, SIGINT))
        return 13; /* pending signals are kept */
    stack_t ss;
    sigaltstack(NULL, &ss);
    if (ss.ss_flags != SS_DISABLE)
        return 14; /* the alternate stack is not */
    return 0;
}

static void test_exec(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGUSR1, SIG_IGN);
        signal(SIGUSR2, on_hup);
        signal(SIGHUP, on_hup);
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGHUP);
        sigaddset(&m, SIGINT);
        sigprocmask(SIG_BLOCK, &m, NULL);
        kill(getpid(), SIGINT);
        static char alt[64 * 1024];
        stack_t ss = { .ss_sp = alt, .ss_size = sizeof alt };
        sigaltstack(&ss, NULL);
        char *argv[] = { (char *)self, "exec-signals", NULL };
        char *envp[] = { NULL };
        execve(self, argv, envp);
        _exit(99);
    }
    CHECK_EXITED(wait_status(pid, 0), 0);
}

/* ---- default actions, in children ---- */

static void test_default_actions(void)
{
    const int terminating[] = { SIGTERM, SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGALRM,
                                SIGPIPE, SIGRTMIN, SIGRTMAX };
    for (size_t i = 0; i < sizeof terminating / sizeof terminating[0]; i++) {
        pid_t pid = spawn_pauser();
        kill(pid, terminating[i]);
        CHECK_KILLED(wait_status(pid, 0), terminating[i]);
    }
    /* Core-dumping ones terminate too (core files kept off natively). */
    static const int core[] = { SIGQUIT, SIGABRT, SIGSEGV, SIGFPE, SIGILL, SIGBUS, SIGSYS,
                                SIGTRAP, SIGXCPU };
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            no_core_files();
            for (;;)
                pause();
        }
        kill(pid, core[i]);
        CHECK_KILLED(wait_status(pid, 0), core[i]);
    }
    /* Ignored by default: the child lives on until SIGKILL. */
    static const int ignored[] = { SIGCHLD, SIGURG, SIGWINCH, SIGCONT };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        pid_t pid = spawn_pauser();
        kill(pid, ignored[i]);
        kill(pid, ignored[i]);
        kill(pid, SIGKILL);
        CHECK_KILLED(wait_status(pid, 0), SIGKILL);
    }
    /* SIG_IGN is inherited over fork; SIGKILL still kills. */
    signal(SIGTERM, SIG_IGN);
    pid_t pid = spawn_pauser();
    signal(SIGTERM, SIG_DFL);
    kill(pid, SIGTERM);
    kill(pid, SIGKILL);
    CHECK_KILLED(wait_status(pid, 0), SIGKILL);
    /* A blocked signal kills when the child unblocks it. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        sigset_t t = just(SIGTERM);
        sigprocmask(SIG_BLOCK, &t, NULL);
        kill(getpid(), SIGTERM);
        sigset_t pending;
        sigpending(&pending);
        if (!sigismember(&pending, SIGTERM))
            _exit(1);
        sigprocmask(SIG_UNBLOCK, &t, NULL);
        _exit(2);
    }
    CHECK_KILLED(wait_status(pid, 0), SIGTERM);
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc >= 2 && strcmp(argv[1], "exec-signals") == 0)
        return mode_exec_signals();

    test_sigaction_errors();
    test_siginfo_codes();
    test_mask_and_pending();
    test_handler_edits_mask();
    test_resethand_nodefer();
    test_sigsuspend_pause();
    test_sigtimedwait();
    test_restart();
    test_sigchld();
    test_sigaltstack();
    test_fp_preserved();
    test_exec();
    test_default_actions();
    return check_done();
}
