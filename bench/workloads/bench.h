/* Shared by the workload programs: a clock, a self-sizing timing loop and one output format.
 *
 * Each program prints one line per metric, `RESULT <metric> <value> <unit>`, which the
 * harness parses; on failure it prints `<what>: <strerror>` to stderr and exits non-zero,
 * and the harness shows that line as the reason for `n/a`. */
#ifndef BENCH_H
#define BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__attribute__((unused)) static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

__attribute__((unused)) static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(1);
}

/* How long one measurement should last, from argv[1] in milliseconds (default 200). The
 * same program then costs about the same wall time natively and in a slow sandbox. */
__attribute__((unused)) static double target_ns(int argc, char **argv)
{
    double ms = argc > 1 ? atof(argv[1]) : 200.0;
    return (ms > 0 ? ms : 200.0) * 1e6;
}

/* Runs `op(n)` (which does the operation n times) with growing n until one batch lasts at
 * least `target` ns, then prints the cost of one operation from that batch. */
__attribute__((unused)) static void measure(const char *metric, void (*op)(long n), double target)
{
    long n = 1;
    op(1); /* warm-up: first-touch faults, lazy binding, caches */
    for (;;) {
        double t0 = now_ns();
        op(n);
        double dt = now_ns() - t0;
        if (dt >= target || n >= (1L << 40)) {
            printf("RESULT %s %.3f ns/op\n", metric, dt / (double)n);
            fflush(stdout);
            return;
        }
        /* Aim 20% past the target, growing at most 100x per step. */
        double next = dt > 0 ? (double)n * target * 1.2 / dt : (double)n * 100.0;
        if (next > (double)n * 100.0)
            next = (double)n * 100.0;
        n = next > (double)(n + 1) ? (long)next : n + 1;
    }
}

#endif
