/* POSIX message queues: mq_open/mq_unlink, priorities, O_NONBLOCK, blocking with
 * timeouts and signals, mq_notify (SIGEV_SIGNAL, SIGEV_NONE, EBUSY), mq_getsetattr, the
 * limits of /proc/sys/fs/mqueue, and a queue shared with a child. */
#include "child.h"

#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>

static const char *NAME = "/carapace-mq-test";
static volatile sig_atomic_t got_sig;
static volatile int got_code, got_value;

static void on_sig(int sig, siginfo_t *si, void *ctx)
{
    (void)ctx;
    got_sig = sig;
    got_code = si->si_code;
    got_value = si->si_value.sival_int;
}

static void on_alarm(int sig)
{
    (void)sig;
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static struct timespec in_ms(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (ms % 1000) * 1000000L;
    ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    return ts;
}

static void child_receives(void *arg)
{
    (void)arg;
    mqd_t q = mq_open(NAME, O_RDONLY);
    CHECK(q != (mqd_t)-1);
    char buf[64];
    unsigned prio = 0;
    /* Blocks until the parent sends. */
    CHECK_EQ(mq_receive(q, buf, sizeof buf, &prio), 5);
    CHECK_MEMEQ(buf, "later", 5);
    CHECK_EQ(prio, 3);
    mq_close(q);
}

int main(void)
{
    mq_unlink(NAME);
    CHECK_EQ(read_long("/proc/sys/fs/mqueue/msg_max"), 10);
    CHECK_EQ(read_long("/proc/sys/fs/mqueue/msgsize_max"), 8192);
    CHECK_EQ(read_long("/proc/sys/fs/mqueue/queues_max"), 256);

    /* Missing without O_CREAT; bad names. */
    CHECK_ERRNO(mq_open(NAME, O_RDWR), ENOENT);
    CHECK_ERRNO(syscall(SYS_mq_open, "a/b", O_RDWR | O_CREAT, 0600, NULL), EACCES);
    CHECK_ERRNO(syscall(SYS_mq_open, "", O_RDWR | O_CREAT, 0600, NULL), ENOENT);
    CHECK_ERRNO(syscall(SYS_mq_open, BAD_PTR, O_RDWR, 0600, NULL), EFAULT);
    struct mq_attr bad = {.mq_maxmsg = 0, .mq_msgsize = 16};
    CHECK_ERRNO(mq_open(NAME, O_RDWR | O_CREAT, 0600, &bad), EINVAL);
    bad.mq_maxmsg = 4;
    bad.mq_msgsize = -1;
    CHECK_ERRNO(mq_open(NAME, O_RDWR | O_CREAT, 0600, &bad), EINVAL);

    /* Defaults: 10 messages of 8192 bytes. */
    mqd_t q = mq_open(NAME, O_RDWR | O_CREAT | O_EXCL, 0640, NULL);
    CHECK(q != (mqd_t)-1);
    CHECK_ERRNO(mq_open(NAME, O_RDWR | O_CREAT | O_EXCL, 0600, NULL), EEXIST);
    struct mq_attr a;
    CHECK_OK(mq_getattr(q, &a));
    CHECK_EQ(a.mq_maxmsg, 10);
    CHECK_EQ(a.mq_msgsize, 8192);
    CHECK_EQ(a.mq_curmsgs, 0);
    CHECK_EQ(a.mq_flags, 0);
    CHECK_EQ(fcntl(q, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    CHECK_OK(mq_close(q));
    CHECK_OK(mq_unlink(NAME));
    CHECK_ERRNO(mq_unlink(NAME), ENOENT);

    /* A small queue: priorities, then FIFO within one priority. */
    struct mq_attr small = {.mq_maxmsg = 3, .mq_msgsize = 16};
    q = mq_open(NAME, O_RDWR | O_CREAT | O_NONBLOCK, 0600, &small);
    CHECK(q != (mqd_t)-1);
    CHECK_OK(mq_getattr(q, &a));
    CHECK_EQ(a.mq_maxmsg, 3);
    CHECK_EQ(a.mq_msgsize, 16);
    CHECK_EQ(a.mq_flags, O_NONBLOCK);
    CHECK_OK(mq_send(q, "low", 3, 1));
    CHECK_OK(mq_send(q, "high", 4, 7));
    CHECK_OK(mq_send(q, "low2", 4, 1));
    CHECK_ERRNO(mq_send(q, "full", 4, 1), EAGAIN);
    CHECK_ERRNO(mq_send(q, "x", 1, 32768), EINVAL);
    CHECK_ERRNO(mq_send(q, "0123456789abcdefg", 17, 0), EMSGSIZE);
    CHECK_OK(mq_getattr(q, &a));
    CHECK_EQ(a.mq_curmsgs, 3);
    struct pollfd p = {.fd = q, .events = POLLIN | POLLOUT};
    CHECK_EQ(poll(&p, 1, 0), 1);
    CHECK_EQ(p.revents, POLLIN);

    char buf[64];
    unsigned prio = 99;
    CHECK_ERRNO(mq_receive(q, buf, 8, &prio), EMSGSIZE);
    CHECK_EQ(mq_receive(q, buf, sizeof buf, &prio), 4);
    CHECK_MEMEQ(buf, "high", 4);
    CHECK_EQ(prio, 7);
    CHECK_EQ(mq_receive(q, buf, sizeof buf, &prio), 3);
    CHECK_MEMEQ(buf, "low", 3);
    CHECK_EQ(mq_receive(q, buf, sizeof buf, NULL), 4);
    CHECK_MEMEQ(buf, "low2", 4);
    CHECK_ERRNO(mq_receive(q, buf, sizeof buf, &prio), EAGAIN);
    CHECK_ERRNO(syscall(SYS_mq_timedsend, q, BAD_PTR, 4, 0, NULL), EFAULT);
    CHECK_ERRNO(syscall(SYS_mq_timedreceive, 0, buf, sizeof buf, NULL, NULL), EBADF);

    /* mq_setattr: only O_NONBLOCK changes; the old attributes come back. */
    struct mq_attr na = {.mq_flags = 0}, old;
    CHECK_OK(mq_setattr(q, &na, &old));
    CHECK_EQ(old.mq_flags, O_NONBLOCK);
    CHECK_OK(mq_getattr(q, &a));
    CHECK_EQ(a.mq_flags, 0);

    /* Blocking: a timeout in the past or near future ends with ETIMEDOUT. */
    struct timespec ts = in_ms(50);
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, &prio, &ts), ETIMEDOUT);
    struct timespec badts = {.tv_sec = 0, .tv_nsec = 2000000000L};
    CHECK_ERRNO(mq_timedreceive(q, buf, sizeof buf, &prio, &badts), EINVAL);
    /* A timeout as far away as can be written is fine when nothing blocks. */
    struct timespec far = {.tv_sec = 0x7fffffffffffffffL, .tv_nsec = 999999999L};
    CHECK_OK(mq_timedsend(q, "f", 1, 0, &far));
    CHECK_EQ(mq_timedreceive(q, buf, sizeof buf, &prio, &far), 1);
    /* A signal interrupts a blocked receive (no SA_RESTART). */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGALRM, &sa, NULL));
    struct itimerval it = {.it_value = {.tv_usec = 50000}};
    CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
    CHECK_ERRNO(mq_receive(q, buf, sizeof buf, &prio), EINTR);
    /* A full queue blocks a sender until the timeout. */
    for (int i = 0; i < 3; i++)
        CHECK_OK(mq_send(q, "m", 1, 0));
    ts = in_ms(50);
    CHECK_ERRNO(mq_timedsend(q, "m", 1, 0, &ts), ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(mq_receive(q, buf, sizeof buf, &prio), 1);

    /* mq_notify: a message to the empty queue signals once, then the registration is
     * gone; a second registration by the same process is EBUSY. */
    struct sigaction ss = {.sa_sigaction = on_sig, .sa_flags = SA_SIGINFO};
    sigemptyset(&ss.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &ss, NULL));
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    ev.sigev_value.sival_int = 42;
    CHECK_OK(mq_notify(q, &ev));
    CHECK_ERRNO(mq_notify(q, &ev), EBUSY);
    CHECK_OK(mq_send(q, "n", 1, 0));
    CHECK_EQ(got_sig, SIGUSR1);
    CHECK_EQ(got_code, SI_MESGQ);
    CHECK_EQ(got_value, 42);
    got_sig = 0;
    CHECK_EQ(mq_receive(q, buf, sizeof buf, &prio), 1);
    CHECK_OK(mq_send(q, "n", 1, 0));
    CHECK_EQ(got_sig, 0);
    CHECK_EQ(mq_receive(q, buf, sizeof buf, &prio), 1);
    /* SIGEV_NONE registers without a signal; NULL unregisters. */
    struct sigevent none = {.sigev_notify = SIGEV_NONE};
    CHECK_OK(mq_notify(q, &none));
    CHECK_ERRNO(mq_notify(q, &ev), EBUSY);
    CHECK_OK(mq_notify(q, NULL));
    CHECK_OK(mq_notify(q, &ev));
    CHECK_OK(mq_notify(q, NULL));
    /* Closing any descriptor of the queue drops the process's registration. */
    CHECK_OK(mq_notify(q, &none));
    int q2 = CHECK_OK(dup(q));
    CHECK_OK(close(q2));
    CHECK_OK(mq_notify(q, &ev));
    CHECK_OK(mq_notify(q, NULL));
    struct sigevent badev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = 65};
    CHECK_ERRNO(syscall(SYS_mq_notify, q, &badev), EINVAL);

    /* Reading the queue's file gives its status line. */
    CHECK_OK(mq_send(q, "abcde", 5, 0));
    char line[128] = {0};
    CHECK(read(q, line, sizeof line - 1) > 0);
    CHECK(strncmp(line, "QSIZE:5 ", 8) == 0);
    CHECK_EQ(mq_receive(q, buf, sizeof buf, &prio), 5);

    /* Shared with a child: it blocks in mq_receive until the parent sends. */
    pid_t pid = fork();
    if (pid == 0)
        exit(run_in_child(child_receives, NULL));
    usleep(50000);
    CHECK_OK(mq_send(q, "later", 5, 3));
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);

    /* Unlinked queues live on while open. */
    CHECK_OK(mq_unlink(NAME));
    CHECK_OK(mq_send(q, "still", 5, 0));
    CHECK_EQ(mq_receive(q, buf, sizeof buf, &prio), 5);
    CHECK_OK(mq_close(q));

    /* A read-only descriptor cannot send; a write-only one cannot receive. */
    q = mq_open(NAME, O_RDONLY | O_CREAT, 0600, &small);
    CHECK(q != (mqd_t)-1);
    CHECK_ERRNO(mq_send(q, "x", 1, 0), EBADF);
    mqd_t w = mq_open(NAME, O_WRONLY);
    CHECK(w != (mqd_t)-1);
    CHECK_ERRNO(mq_receive(w, buf, sizeof buf, &prio), EBADF);
    CHECK_ERRNO(mq_open(NAME, O_RDWR | O_WRONLY), EINVAL);
    mq_close(w);
    mq_close(q);
    CHECK_OK(mq_unlink(NAME));
    return check_done();
}
