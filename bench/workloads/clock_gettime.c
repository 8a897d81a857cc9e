/* clock_gettime(CLOCK_MONOTONIC) as libc calls it: through the vDSO where there is one. */
#include "bench.h"

static void op(long n)
{
    struct timespec t;
    for (long i = 0; i < n; i++)
        if (clock_gettime(CLOCK_MONOTONIC, &t) != 0)
            die("clock_gettime");
}

int main(int argc, char **argv)
{
    measure("clock_gettime", op, target_ns(argc, argv));
    return 0;
}
