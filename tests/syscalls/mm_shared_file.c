/* MAP_SHARED file mappings: stores through the mapping reach the file and the file's
 * writes reach the mapping. */
#include "check.h"
#include <sys/mman.h>

int main(void)
{
    check_tmpdir("mm_shared_file");
    long page = sysconf(_SC_PAGESIZE);
    char data[3000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = 'a' + i % 26;
    CHECK_OK(write_file(tmp_path("shared"), data, sizeof data));
    int fd = CHECK_OK(open(tmp_path("shared"), O_RDWR));

    char *shared = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(shared != MAP_FAILED);
    if (shared != MAP_FAILED) {
        char c = 0;
        shared[1] = '#';
        CHECK_EQ(pread(fd, &c, 1, 1), 1);
        CHECK_EQ(c, '#');
        CHECK_OK(msync(shared, page, MS_SYNC));
        CHECK_EQ(pwrite(fd, "Z", 1, 2), 1);
        CHECK_EQ(shared[2], 'Z');
        CHECK_OK(munmap(shared, page));
    }
    /* Opened read-only, a shared writable mapping is refused. */
    int ro = CHECK_OK(open(tmp_path("shared"), O_RDONLY));
    CHECK_ERRNO(mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0), EACCES);
    close(ro);
    close(fd);
    return check_done();
}
