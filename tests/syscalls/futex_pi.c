/* Priority-inheritance mutexes (FUTEX_LOCK_PI/UNLOCK_PI/TRYLOCK_PI through glibc). */
#include "check.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>

static pthread_mutex_t m;
static long counter;

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        pthread_mutex_lock(&m);
        counter++;
        pthread_mutex_unlock(&m);
    }
    return NULL;
}

static void *try_from_other(void *arg)
{
    (void)arg;
    return (void *)(long)pthread_mutex_trylock(&m);
}

int main(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    CHECK_EQ(pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT), 0);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    CHECK_EQ(pthread_mutex_init(&m, &a), 0);

    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(counter, 80000);

    /* Held here: another thread's trylock fails, our second lock is EDEADLK. */
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    pthread_t o;
    void *r;
    pthread_create(&o, NULL, try_from_other, NULL);
    pthread_join(o, &r);
    CHECK_EQ((long)r, EBUSY);
    CHECK_EQ(pthread_mutex_lock(&m), EDEADLK);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), EPERM);

    /* The raw calls: unlocking a lock we do not hold is EPERM. */
    unsigned word = 0;
    CHECK_ERRNO(syscall(SYS_futex, &word, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0), EPERM);
    CHECK_OK(syscall(SYS_futex, &word, FUTEX_TRYLOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0));
    CHECK_EQ(word, (unsigned)syscall(SYS_gettid));
    CHECK_ERRNO(syscall(SYS_futex, &word, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0), EDEADLK);
    CHECK_OK(syscall(SYS_futex, &word, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0));
    CHECK_EQ(word, 0u);
    return check_done();
}
