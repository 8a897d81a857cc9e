/*
 * child.h: helpers for the programs that fork (fork_wait.c, signals.c, jobctl.c, ...).
 *
 * Checks made in a child do not reach the parent's counts, so a child reports through its
 * exit status: `run_in_child(fn)` forks, runs fn with fresh counts (its failed checks still
 * print their line) and exits 0 if every check passed, 1 if not; the parent then makes
 * exactly one check on that status with CHECK_EXITED. Either way the number of checks
 * counted is the same natively and in the sandbox.
 */
#ifndef CARAPACE_CHILD_H
#define CARAPACE_CHILD_H

#include "check.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

/* Describes a wait status the way a person reads it, e.g. "exited 3", "killed by SIGSEGV". */
static inline const char *status_str(int st)
{
    static char bufs[4][64];
    static int next;
    char *b = bufs[next++ % 4];
    if (WIFEXITED(st))
        snprintf(b, sizeof bufs[0], "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(b, sizeof bufs[0], "killed by %s%s", sigabbrev_np(WTERMSIG(st)) ?: "?",
                 WCOREDUMP(st) ? " (core)" : "");
    else if (WIFSTOPPED(st))
        snprintf(b, sizeof bufs[0], "stopped by %s", sigabbrev_np(WSTOPSIG(st)) ?: "?");
    else if (WIFCONTINUED(st))
        snprintf(b, sizeof bufs[0], "continued");
    else
        snprintf(b, sizeof bufs[0], "status %#x", st);
    return b;
}

static inline void check_status(int st, int ok, const char *want, const char *file, int line,
                                const char *what)
{
    char d[160];
    snprintf(d, sizeof d, "expected %s, got %s", want, status_str(st));
    check_record(ok, file, line, what, d, 0);
}

/* CHECK_EXITED(st, code): a wait status says "exited with code". */
#define CHECK_EXITED(st, code)                                                            \
    do {                                                                                  \
        int ce_st_ = (st), ce_code_ = (code);                                             \
        char ce_w_[32];                                                                   \
        snprintf(ce_w_, sizeof ce_w_, "exited %d", ce_code_);                             \
        check_status(ce_st_, WIFEXITED(ce_st_) && WEXITSTATUS(ce_st_) == ce_code_, ce_w_, \
                     __FILE__, __LINE__, "CHECK_EXITED(" #st ", " #code ")");             \
    } while (0)

/* CHECK_KILLED(st, sig): a wait status says "killed by sig" (core bit not looked at: it
 * depends on RLIMIT_CORE and core_pattern natively). */
#define CHECK_KILLED(st, sig)                                                             \
    do {                                                                                  \
        int ck_st_ = (st), ck_sig_ = (sig);                                               \
        char ck_w_[32];                                                                   \
        snprintf(ck_w_, sizeof ck_w_, "killed by %s", sigabbrev_np(ck_sig_) ?: "?");      \
        check_status(ck_st_, WIFSIGNALED(ck_st_) && WTERMSIG(ck_st_) == ck_sig_, ck_w_,   \
                     __FILE__, __LINE__, "CHECK_KILLED(" #st ", " #sig ")");              \
    } while (0)

/* CHECK_STOPPED(st, sig): a wait status says "stopped by sig". */
#define CHECK_STOPPED(st, sig)                                                            \
    do {                                                                                  \
        int cs_st_ = (st), cs_sig_ = (sig);                                               \
        char cs_w_[32];                                                                   \
        snprintf(cs_w_, sizeof cs_w_, "stopped by %s", sigabbrev_np(cs_sig_) ?: "?");     \
        check_status(cs_st_, WIFSTOPPED(cs_st_) && WSTOPSIG(cs_st_) == cs_sig_, cs_w_,    \
                     __FILE__, __LINE__, "CHECK_STOPPED(" #st ", " #sig ")");             \
    } while (0)

/* Forks; the child runs fn(arg) with fresh check counts and exits 0 iff its checks all
 * passed. Returns the child's pid (or -1). */
static inline pid_t spawn_checks(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        check_passed_count = 0;
        check_failed_count = 0;
        fn(arg);
        fflush(stdout);
        _exit(check_failed_count ? 1 : 0);
    }
    return pid;
}

/* Waits for pid (any state change the options ask for, retrying EINTR); returns the status,
 * or -1 with errno if waitpid failed. */
static inline int wait_status(pid_t pid, int options)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, options);
    while (r == -1 && errno == EINTR);
    return r == pid ? st : -1;
}

/* Runs fn in a child and waits for it; returns its wait status (-1 if fork failed). */
static inline int run_in_child(void (*fn)(void *), void *arg)
{
    pid_t pid = spawn_checks(fn, arg);
    if (pid < 0)
        return -1;
    return wait_status(pid, 0);
}

/* A child that never returns: it pauses until a signal kills it. */
static inline pid_t spawn_pauser(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            pause();
    }
    return pid;
}

static inline long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static inline void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) == -1 && errno == EINTR)
        ;
}

/* Keeps children that die of SIGABRT/SIGSEGV/... from writing core files natively
 * (core_pattern is often a plain "core" in the working directory). */
static inline void no_core_files(void)
{
    struct rlimit rl = { 0, 0 };
    setrlimit(RLIMIT_CORE, &rl);
}

#endif
