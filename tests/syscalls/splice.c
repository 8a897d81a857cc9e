/* splice, tee, vmsplice, and the in-kernel copies sendfile and copy_file_range: data and
 * offsets (explicit offsets move, the file position does not), waiting and
 * SPLICE_F_NONBLOCK, and the errors (EINVAL, EBADF, ESPIPE, EISDIR, EAGAIN). */
#include "child.h"

#include <sys/sendfile.h>
#include <sys/uio.h>

static int make_file(const char *leaf, const char *data)
{
    CHECK_OK(write_file(tmp_path(leaf), data, strlen(data)));
    return open(tmp_path(leaf), O_RDWR);
}

static void read_back(int fd, char *buf, size_t n)
{
    memset(buf, 0, n);
    ssize_t r = read(fd, buf, n - 1);
    (void)r;
}

static void test_splice(void)
{
    char buf[128];
    int p[2];
    CHECK_OK(pipe(p));
    int f = CHECK_OK(make_file("src", "0123456789"));

    /* File to pipe with an explicit offset: the offset moves, the position does not. */
    loff_t off = 2;
    CHECK_EQ(splice(f, &off, p[1], NULL, 5, 0), 5);
    CHECK_EQ(off, 7);
    CHECK_EQ(lseek(f, 0, SEEK_CUR), 0);
    /* Without one: the file position moves. */
    CHECK_EQ(splice(f, NULL, p[1], NULL, 3, 0), 3);
    CHECK_EQ(lseek(f, 0, SEEK_CUR), 3);
    read_back(p[0], buf, sizeof buf);
    CHECK_STREQ(buf, "23456012");

    /* Pipe to file, with and without an offset. */
    int out = CHECK_OK(open(tmp_path("dst"), O_CREAT | O_RDWR, 0644));
    CHECK_EQ(write(p[1], "abcdef", 6), 6);
    loff_t oo = 4;
    CHECK_EQ(splice(p[0], NULL, out, &oo, 2, 0), 2);
    CHECK_EQ(oo, 6);
    CHECK_EQ(lseek(out, 0, SEEK_CUR), 0);
    CHECK_EQ(splice(p[0], NULL, out, NULL, 100, 0), 4);
    CHECK_EQ(lseek(out, 0, SEEK_CUR), 4);
    CHECK_EQ(pread(out, buf, sizeof buf, 0), 6);
    CHECK_MEMEQ(buf, "cdefab", 6);

    /* Pipe to pipe. */
    int q[2];
    CHECK_OK(pipe(q));
    CHECK_EQ(write(p[1], "xyz", 3), 3);
    CHECK_EQ(splice(p[0], NULL, q[1], NULL, 10, 0), 3);
    read_back(q[0], buf, sizeof buf);
    CHECK_STREQ(buf, "xyz");

    /* Errors. */
    CHECK_EQ(splice(-1, NULL, p[1], NULL, 0, 0), 0); /* len 0 is checked first */
    CHECK_ERRNO(splice(f, NULL, p[1], NULL, 1, 0x100), EINVAL);
    CHECK_ERRNO(splice(-1, NULL, p[1], NULL, 1, 0), EBADF);
    CHECK_ERRNO(splice(f, NULL, -1, NULL, 1, 0), EBADF);
    CHECK_ERRNO(splice(f, NULL, out, NULL, 1, 0), EINVAL); /* no pipe */
    CHECK_ERRNO(splice(f, NULL, p[0], NULL, 1, 0), EBADF); /* read end as output */
    CHECK_ERRNO(splice(p[1], NULL, out, NULL, 1, 0), EBADF); /* write end as input */
    loff_t z = 0;
    CHECK_ERRNO(splice(p[0], &z, out, NULL, 1, 0), ESPIPE);
    CHECK_ERRNO(splice(f, NULL, p[1], &z, 1, 0), ESPIPE);
    loff_t neg = -1;
    CHECK_ERRNO(splice(f, &neg, p[1], NULL, 1, 0), EINVAL);
    CHECK_ERRNO(splice(p[0], NULL, p[1], NULL, 1, 0), EINVAL); /* one pipe */
    int app = CHECK_OK(open(tmp_path("dst"), O_WRONLY | O_APPEND));
    CHECK_EQ(write(p[1], "q", 1), 1);
    CHECK_ERRNO(splice(p[0], NULL, app, NULL, 1, 0), EINVAL);
    close(app);
    CHECK_EQ(read(p[0], buf, 1), 1);
    int ro = CHECK_OK(open(tmp_path("dst"), O_RDONLY));
    CHECK_EQ(write(p[1], "q", 1), 1);
    CHECK_ERRNO(splice(p[0], NULL, ro, NULL, 1, 0), EBADF);
    CHECK_EQ(read(p[0], buf, 1), 1);
    close(ro);

    /* Empty pipe: EAGAIN with SPLICE_F_NONBLOCK, 0 once no writer is left. */
    CHECK_ERRNO(splice(p[0], NULL, out, NULL, 1, SPLICE_F_NONBLOCK), EAGAIN);
    CHECK_ERRNO(splice(p[0], NULL, q[1], NULL, 1, SPLICE_F_NONBLOCK), EAGAIN);
    close(p[1]);
    CHECK_EQ(splice(p[0], NULL, out, NULL, 1, 0), 0);
    CHECK_EQ(splice(p[0], NULL, q[1], NULL, 1, 0), 0);
    close(p[0]);

    /* A full pipe: EAGAIN with SPLICE_F_NONBLOCK; no reader: EPIPE (SIGPIPE ignored). */
    int r[2];
    CHECK_OK(pipe(r));
    CHECK_OK(fcntl(r[1], F_SETFL, O_NONBLOCK));
    static char blob[1 << 16];
    while (write(r[1], blob, sizeof blob) > 0)
        ;
    CHECK_OK(fcntl(r[1], F_SETFL, 0));
    CHECK_ERRNO(splice(f, NULL, r[1], NULL, 1, SPLICE_F_NONBLOCK), EAGAIN);
    close(r[0]);
    signal(SIGPIPE, SIG_IGN);
    CHECK_ERRNO(splice(f, NULL, r[1], NULL, 1, 0), EPIPE);
    signal(SIGPIPE, SIG_DFL);
    close(r[1]);

    /* A blocking splice waits for a writer in another process. */
    int w[2];
    CHECK_OK(pipe(w));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50 * 1000);
        _exit(write(w[1], "late", 4) == 4 ? 0 : 1);
    }
    close(w[1]);
    CHECK_EQ(splice(w[0], NULL, q[1], NULL, 16, 0), 4);
    read_back(q[0], buf, sizeof buf);
    CHECK_STREQ(buf, "late");
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    close(w[0]);
    close(q[0]);
    close(q[1]);
    close(f);
    close(out);
}

static void test_tee(void)
{
    char buf[64];
    int a[2], b[2];
    CHECK_OK(pipe(a));
    CHECK_OK(pipe(b));
    CHECK_EQ(write(a[1], "hello", 5), 5);
    CHECK_EQ(tee(a[0], b[1], 3, 0), 3);
    /* The source keeps its data. */
    read_back(b[0], buf, sizeof buf);
    CHECK_STREQ(buf, "hel");
    read_back(a[0], buf, sizeof buf);
    CHECK_STREQ(buf, "hello");
    CHECK_ERRNO(tee(a[0], b[1], 1, SPLICE_F_NONBLOCK), EAGAIN);
    CHECK_ERRNO(tee(a[0], a[1], 1, 0), EINVAL);
    int f = CHECK_OK(make_file("tee", "x"));
    CHECK_ERRNO(tee(f, b[1], 1, 0), EINVAL);
    CHECK_ERRNO(tee(a[0], f, 1, 0), EINVAL);
    CHECK_ERRNO(tee(a[1], b[1], 1, 0), EBADF);
    CHECK_ERRNO(tee(a[0], b[1], 1, 0x100), EINVAL);
    CHECK_EQ(tee(a[0], b[1], 0, 0), 0);
    close(a[1]);
    CHECK_EQ(tee(a[0], b[1], 1, 0), 0);
    close(f);
    close(a[0]);
    close(b[0]);
    close(b[1]);
}

static void test_vmsplice(void)
{
    char buf[64];
    int p[2];
    CHECK_OK(pipe(p));
    char one[] = "vm", two[] = "splice";
    struct iovec iov[2] = {{one, 2}, {two, 6}};
    CHECK_EQ(vmsplice(p[1], iov, 2, 0), 8);
    read_back(p[0], buf, sizeof buf);
    CHECK_STREQ(buf, "vmsplice");
    /* From the read end into user memory. */
    CHECK_EQ(write(p[1], "back", 4), 4);
    char got[8] = {0};
    struct iovec out = {got, sizeof got};
    CHECK_EQ(vmsplice(p[0], &out, 1, 0), 4);
    CHECK_MEMEQ(got, "back", 4);
    CHECK_ERRNO(vmsplice(p[0], &out, 1, SPLICE_F_NONBLOCK), EAGAIN);
    CHECK_EQ(vmsplice(p[1], iov, 0, 0), 0);
    CHECK_ERRNO(vmsplice(p[1], iov, 1, 0x100), EINVAL);
    CHECK_ERRNO(vmsplice(p[1], iov, 1025, 0), EINVAL);
    int f = CHECK_OK(make_file("vm", "x"));
    CHECK_ERRNO(vmsplice(f, iov, 1, 0), EBADF);
    CHECK_ERRNO(vmsplice(-1, iov, 1, 0), EBADF);
    struct iovec bad = {BAD_PTR, 4};
    CHECK_ERRNO(vmsplice(p[1], &bad, 1, 0), EFAULT);
    close(f);
    close(p[0]);
    close(p[1]);
}

static void test_sendfile(void)
{
    char buf[64];
    int in = CHECK_OK(make_file("sf-in", "sendfile-data"));
    int out = CHECK_OK(open(tmp_path("sf-out"), O_CREAT | O_RDWR | O_TRUNC, 0644));
    off_t off = 4;
    CHECK_EQ(sendfile(out, in, &off, 4), 4);
    CHECK_EQ(off, 8);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 0);
    CHECK_EQ(sendfile(out, in, NULL, 8), 8);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 8);
    CHECK_EQ(pread(out, buf, sizeof buf, 0), 12);
    CHECK_MEMEQ(buf, "filesendfile", 12);
    /* At the end of the input: 0. */
    off = 100;
    CHECK_EQ(sendfile(out, in, &off, 4), 0);
    CHECK_EQ(sendfile(out, in, NULL, 0), 0);

    /* Into a pipe. */
    int p[2];
    CHECK_OK(pipe(p));
    off = 0;
    CHECK_EQ(sendfile(p[1], in, &off, 4), 4);
    read_back(p[0], buf, sizeof buf);
    CHECK_STREQ(buf, "send");

    /* Into a full blocking pipe: waits until a reader makes room. */
    CHECK_OK(fcntl(p[1], F_SETFL, O_NONBLOCK));
    static char blob[4096];
    while (write(p[1], blob, sizeof blob) > 0)
        ;
    CHECK_OK(fcntl(p[1], F_SETFL, 0));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50 * 1000);
        _exit(read(p[0], blob, sizeof blob) == sizeof blob ? 0 : 1);
    }
    off = 0;
    CHECK_EQ(sendfile(p[1], in, &off, 4), 4);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_EXITED(st, 0);
    while (read(p[0], blob, sizeof blob) == sizeof blob && fcntl(p[0], F_SETFL, O_NONBLOCK) == 0)
        ;
    CHECK_OK(fcntl(p[0], F_SETFL, 0));

    /* Errors. */
    CHECK_ERRNO(sendfile(out, -1, NULL, 1), EBADF);
    CHECK_ERRNO(sendfile(-1, in, NULL, 1), EBADF);
    int wo = CHECK_OK(open(tmp_path("sf-in"), O_WRONLY));
    CHECK_ERRNO(sendfile(out, wo, NULL, 1), EBADF);
    int ro = CHECK_OK(open(tmp_path("sf-out"), O_RDONLY));
    CHECK_ERRNO(sendfile(ro, in, NULL, 1), EBADF);
    int app = CHECK_OK(open(tmp_path("sf-out"), O_WRONLY | O_APPEND));
    CHECK_ERRNO(sendfile(app, in, NULL, 1), EINVAL);
    off = -1;
    CHECK_ERRNO(sendfile(out, in, &off, 1), EINVAL);
    CHECK_EQ(write(p[1], "z", 1), 1);
    CHECK_ERRNO(sendfile(out, p[0], NULL, 1), EINVAL);
    CHECK_ERRNO(sendfile(out, in, BAD_PTR, 1), EFAULT);
    close(wo);
    close(ro);
    close(app);
    close(p[0]);
    close(p[1]);
    close(in);
    close(out);
}

static void test_copy_file_range(void)
{
    char buf[64];
    int in = CHECK_OK(make_file("cfr-in", "copy-file-range"));
    int out = CHECK_OK(open(tmp_path("cfr-out"), O_CREAT | O_RDWR | O_TRUNC, 0644));
    loff_t oi = 5, oo = 2;
    CHECK_EQ(copy_file_range(in, &oi, out, &oo, 4, 0), 4);
    CHECK_EQ(oi, 9);
    CHECK_EQ(oo, 6);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 0);
    CHECK_EQ(lseek(out, 0, SEEK_CUR), 0);
    CHECK_EQ(copy_file_range(in, NULL, out, NULL, 4, 0), 4);
    CHECK_EQ(lseek(in, 0, SEEK_CUR), 4);
    CHECK_EQ(lseek(out, 0, SEEK_CUR), 4);
    CHECK_EQ(pread(out, buf, sizeof buf, 0), 6);
    CHECK_MEMEQ(buf, "copyle", 6);
    /* Past the end of the input: 0. */
    oi = 1000;
    CHECK_EQ(copy_file_range(in, &oi, out, NULL, 4, 0), 0);

    CHECK_ERRNO(copy_file_range(in, NULL, out, NULL, 1, 1), EINVAL);
    CHECK_ERRNO(copy_file_range(-1, NULL, out, NULL, 1, 0), EBADF);
    int ro = CHECK_OK(open(tmp_path("cfr-out"), O_RDONLY));
    CHECK_ERRNO(copy_file_range(in, NULL, ro, NULL, 1, 0), EBADF);
    int app = CHECK_OK(open(tmp_path("cfr-out"), O_WRONLY | O_APPEND));
    CHECK_ERRNO(copy_file_range(in, NULL, app, NULL, 1, 0), EBADF);
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_ERRNO(copy_file_range(p[0], NULL, out, NULL, 1, 0), EINVAL);
    CHECK_ERRNO(copy_file_range(in, NULL, p[1], NULL, 1, 0), EINVAL);
    CHECK_OK(mkdir(tmp_path("cfr-dir"), 0755));
    int d = CHECK_OK(open(tmp_path("cfr-dir"), O_RDONLY | O_DIRECTORY));
    CHECK_ERRNO(copy_file_range(d, NULL, out, NULL, 1, 0), EISDIR);
    /* Overlapping ranges of one file. */
    loff_t a = 0, b = 2;
    CHECK_ERRNO(copy_file_range(out, &a, out, &b, 4, 0), EINVAL);
    loff_t neg = -1;
    CHECK_ERRNO(copy_file_range(in, &neg, out, NULL, 1, 0), EOVERFLOW);
    CHECK_ERRNO(copy_file_range(in, NULL, out, &neg, 1, 0), EOVERFLOW);
    close(d);
    close(ro);
    close(app);
    close(p[0]);
    close(p[1]);
    close(in);
    close(out);
}

int main(void)
{
    check_tmpdir("splice");
    test_splice();
    test_tee();
    test_vmsplice();
    test_sendfile();
    test_copy_file_range();
    return check_done();
}
