/* getpid round trip: the cheapest syscall, so the pure cost of trapping one. */
#include "bench.h"
#include <sys/syscall.h>
#include <unistd.h>

static void op(long n)
{
    for (long i = 0; i < n; i++)
        syscall(SYS_getpid); /* not getpid(): no libc caching */
}

int main(int argc, char **argv)
{
    measure("getpid", op, target_ns(argc, argv));
    return 0;
}
