/* open+read+close of a small file, and stat of a deep path: the file-system fast paths.
 * Usage: file_ops TARGET_MS SMALL_FILE DEEP_PATH */
#include "bench.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *small_file;
static const char *deep_path;

static void open_read_close(long n)
{
    char buf[4096];
    for (long i = 0; i < n; i++) {
        int fd = open(small_file, O_RDONLY);
        if (fd < 0)
            die("open");
        if (read(fd, buf, sizeof buf) < 0)
            die("read");
        close(fd);
    }
}

static void stat_deep(long n)
{
    struct stat st;
    for (long i = 0; i < n; i++)
        if (stat(deep_path, &st) != 0)
            die("stat");
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: file_ops TARGET_MS SMALL_FILE DEEP_PATH\n");
        return 2;
    }
    small_file = argv[2];
    deep_path = argv[3];
    double target = target_ns(argc, argv);
    measure("open_read_close", open_read_close, target);
    measure("stat_deep", stat_deep, target);
    return 0;
}
