/* Sequential file I/O in 1 MiB blocks, reported in MB/s (10^6 bytes per second).
 * Usage: seqio write NAME PATH MIB   create PATH, write MIB MiB, close; unlink it
 *        seqio read NAME PATH        read PATH to the end
 *        seqio both NAME PATH MIB    write as above, then read it back; unlink it
 * The metrics are named `NAME_write` and `NAME_read`. */
#include "bench.h"
#include <fcntl.h>
#include <unistd.h>

#define BLOCK (1L << 20)

static char block[BLOCK];
static const char *prefix;

static void report(const char *op, double bytes, double ns)
{
    printf("RESULT %s_%s %.1f MB/s\n", prefix, op, bytes / ns * 1e3);
    fflush(stdout);
}

static void write_file(const char *path, long mib)
{
    memset(block, 'b', sizeof block);
    double t0 = now_ns();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open for writing");
    for (long i = 0; i < mib; i++)
        if (write(fd, block, BLOCK) != BLOCK)
            die("write");
    if (close(fd) != 0)
        die("close");
    report("write", (double)mib * BLOCK, now_ns() - t0);
}

static void read_file(const char *path)
{
    double t0 = now_ns();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open for reading");
    double total = 0;
    for (;;) {
        ssize_t got = read(fd, block, BLOCK);
        if (got < 0)
            die("read");
        if (got == 0)
            break;
        total += (double)got;
    }
    close(fd);
    report("read", total, now_ns() - t0);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "read") == 0) {
        prefix = argv[2];
        read_file(argv[3]);
        return 0;
    }
    if (argc == 5 && (strcmp(argv[1], "write") == 0 || strcmp(argv[1], "both") == 0)) {
        prefix = argv[2];
        write_file(argv[3], atol(argv[4]));
        if (strcmp(argv[1], "both") == 0)
            read_file(argv[3]);
        if (unlink(argv[3]) != 0)
            die("unlink");
        return 0;
    }
    fprintf(stderr, "usage: seqio write|both NAME PATH MIB | seqio read NAME PATH\n");
    return 2;
}
