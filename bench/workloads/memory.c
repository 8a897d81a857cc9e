/* mmap+touch+munmap of 1 MiB (an allocator's big-block cycle), and the cost of one page
 * fault on fresh anonymous memory. */
#include "bench.h"
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1L << 20)
#define FAULT_REGION (64 * MIB)

static long page_size;

static void touch(char *p, long len)
{
    for (long off = 0; off < len; off += page_size)
        p[off] = 1;
}

static void mmap_touch_munmap(long n)
{
    for (long i = 0; i < n; i++) {
        char *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            die("mmap");
        touch(p, MIB);
        if (munmap(p, MIB) != 0)
            die("munmap");
    }
}

/* n page faults, FAULT_REGION at a time; the mmap/munmap around them is amortised over
 * 16384 faults. */
static void page_faults(long n)
{
    long pages = FAULT_REGION / page_size;
    while (n > 0) {
        long count = n < pages ? n : pages;
        char *p = mmap(NULL, FAULT_REGION, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            die("mmap");
        touch(p, count * page_size);
        if (munmap(p, FAULT_REGION) != 0)
            die("munmap");
        n -= count;
    }
}

int main(int argc, char **argv)
{
    page_size = sysconf(_SC_PAGESIZE);
    double target = target_ns(argc, argv);
    measure("mmap_touch_munmap", mmap_touch_munmap, target);
    measure("page_fault", page_faults, target);
    return 0;
}
