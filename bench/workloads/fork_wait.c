/* fork+exit+wait, and fork+execve+wait of a static binary: the cost of making processes.
 * Usage: fork_wait TARGET_MS STATIC_BINARY */
#include "bench.h"
#include <sys/wait.h>
#include <unistd.h>

static char *exec_path;

static void reap(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child failed: status %#x\n", status);
        exit(1);
    }
}

static void fork_exit_wait(long n)
{
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            _exit(0);
        reap(pid);
    }
}

static void fork_exec_wait(long n)
{
    char *args[] = {exec_path, NULL};
    char *env[] = {NULL};
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            execve(exec_path, args, env);
            _exit(127);
        }
        reap(pid);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fork_wait TARGET_MS STATIC_BINARY\n");
        return 2;
    }
    exec_path = argv[2];
    double target = target_ns(argc, argv);
    measure("fork_exit_wait", fork_exit_wait, target);
    measure("fork_exec_wait", fork_exec_wait, target);
    return 0;
}
