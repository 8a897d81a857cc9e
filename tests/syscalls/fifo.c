/* FIFOs made with mknod/mkfifo: the open rules of fifo(7) and data between processes. */
#include "child.h"

#include <sys/stat.h>

int main(void)
{
    check_tmpdir("fifo");
    const char *f = tmp_path("f");
    CHECK_OK(mkfifo(f, 0644));
    struct stat st;
    CHECK_OK(stat(f, &st));
    CHECK(S_ISFIFO(st.st_mode));

    /* No reader: a non-blocking writer gets ENXIO; a non-blocking reader opens at once. */
    CHECK_ERRNO(open(f, O_WRONLY | O_NONBLOCK), ENXIO);
    int r = CHECK_OK(open(f, O_RDONLY | O_NONBLOCK));
    char buf[16];
    CHECK_EQ(read(r, buf, sizeof buf), 0); /* no writer yet: end of file */
    int w = CHECK_OK(open(f, O_WRONLY | O_NONBLOCK));
    CHECK_EQ(write(w, "abc", 3), 3);
    CHECK_EQ(read(r, buf, sizeof buf), 3);
    CHECK_MEMEQ(buf, "abc", 3);
    close(w);
    close(r);

    /* O_RDWR never waits. */
    int rw = CHECK_OK(open(f, O_RDWR));
    CHECK_EQ(write(rw, "x", 1), 1);
    CHECK_EQ(read(rw, buf, 1), 1);
    close(rw);

    /* A blocking reader waits for a writer in another process, then gets its data. */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(f, O_WRONLY);
        int ok = fd >= 0 && write(fd, "hello", 5) == 5;
        _exit(ok ? 0 : 1);
    }
    r = CHECK_OK(open(f, O_RDONLY));
    ssize_t n = 0, got;
    while ((got = read(r, buf + n, sizeof buf - n)) > 0)
        n += got;
    CHECK_EQ(n, 5);
    CHECK_MEMEQ(buf, "hello", 5);
    close(r);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_EXITED(status, 0);

    /* A directory or regular file is not a FIFO. */
    CHECK_OK(write_file(tmp_path("reg"), "z", 1));
    CHECK_ERRNO(mkfifo(tmp_path("reg"), 0644), EEXIST);
    return check_done();
}
