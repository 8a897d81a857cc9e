/* One byte bounced between two processes over two pipes: a wake-up through the kernel in
 * each direction. The result is one round trip. */
#include "bench.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int to_child[2], to_parent[2];

static void round_trips(long n)
{
    char c = 'x';
    for (long i = 0; i < n; i++) {
        if (write(to_child[1], &c, 1) != 1)
            die("write");
        if (read(to_parent[0], &c, 1) != 1)
            die("read");
    }
}

int main(int argc, char **argv)
{
    if (pipe(to_child) != 0 || pipe(to_parent) != 0)
        die("pipe");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        /* Only our own ends stay open, so the parent's close is our EOF. */
        close(to_child[1]);
        close(to_parent[0]);
        char c;
        while (read(to_child[0], &c, 1) == 1)
            if (write(to_parent[1], &c, 1) != 1)
                _exit(1);
        _exit(0);
    }
    close(to_child[0]);
    close(to_parent[1]);
    measure("pipe_pingpong", round_trips, target_ns(argc, argv));
    close(to_child[1]);
    waitpid(pid, NULL, 0);
    return 0;
}
