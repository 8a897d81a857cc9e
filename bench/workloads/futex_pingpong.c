/* Two threads take turns through a futex word: the cost of a wake-up between threads of
 * one process. The result is one round trip (two wakes, two waits). */
#include "bench.h"
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic int turn; /* 0: main's turn, 1: the partner's, 2: stop */

static void futex_wait(int expected)
{
    syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(void)
{
    syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *partner(void *arg)
{
    (void)arg;
    for (;;) {
        int t;
        while ((t = atomic_load(&turn)) == 0)
            futex_wait(0);
        if (t == 2)
            return NULL;
        atomic_store(&turn, 0);
        futex_wake();
    }
}

static void round_trips(long n)
{
    for (long i = 0; i < n; i++) {
        atomic_store(&turn, 1);
        futex_wake();
        while (atomic_load(&turn) == 1)
            futex_wait(1);
    }
}

int main(int argc, char **argv)
{
    pthread_t t;
    int err = pthread_create(&t, NULL, partner, NULL);
    if (err != 0) {
        errno = err;
        die("pthread_create");
    }
    measure("futex_pingpong", round_trips, target_ns(argc, argv));
    atomic_store(&turn, 2);
    futex_wake();
    pthread_join(t, NULL);
    return 0;
}
