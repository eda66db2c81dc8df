/* testapp: a small program for trying out jobs.
 *
 * Prints where it runs and what the job gave it (Slurm variables, allowed CPUs), and can keep
 * one CPU busy or sleep for a while, so a user can watch a job in squeue/sstat. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef TESTAPP_VERSION
#define TESTAPP_VERSION "0"
#endif

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: testapp [--cpu SECONDS] [--sleep SECONDS]"
#ifdef TESTAPP_JSON
            " [--json]"
#endif
            " [--version] [--help]\n"
            "Print where testapp runs and what the job gave it, then optionally keep one CPU busy\n"
            "(--cpu) or sleep (--sleep) for the given number of seconds.\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double cpu_seconds = 0, sleep_seconds = 0;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            printf("testapp %s\n", TESTAPP_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--cpu") && i + 1 < argc) {
            cpu_seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--sleep") && i + 1 < argc) {
            sleep_seconds = atof(argv[++i]);
#ifdef TESTAPP_JSON
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
#endif
        } else {
            fprintf(stderr, "testapp: unrecognised argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    cpu_set_t set;
    CPU_ZERO(&set);
    int ncpu = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    const char *job = env_or("SLURM_JOB_ID", "none");
    if (json) {
        printf("{\"version\": \"%s\", \"host\": \"%s\", \"pid\": %d, \"job\": \"%s\", \"task\": \"%s\", "
               "\"ntasks\": \"%s\", \"cpus_allowed\": %d}\n",
               TESTAPP_VERSION, host, (int)getpid(), job, env_or("SLURM_PROCID", "0"),
               env_or("SLURM_NTASKS", "1"), ncpu);
    } else {
        printf("testapp %s on %s (pid %d)\n", TESTAPP_VERSION, host, (int)getpid());
        printf("  job %s, step %s, task %s of %s, %d CPU%s allowed, SLURM_CPUS_PER_TASK=%s\n", job,
               env_or("SLURM_STEP_ID", "none"), env_or("SLURM_PROCID", "0"), env_or("SLURM_NTASKS", "1"), ncpu,
               ncpu == 1 ? "" : "s", env_or("SLURM_CPUS_PER_TASK", "unset"));
    }
    fflush(stdout);

    if (cpu_seconds > 0) {
        volatile double x = 0;
        double end = now() + cpu_seconds;
        while (now() < end)
            for (int k = 0; k < 100000; k++)
                x += k * 0.5;
        printf("testapp: kept a CPU busy for %.0f s\n", cpu_seconds);
    }
    if (sleep_seconds > 0) {
        usleep((useconds_t)(sleep_seconds * 1e6));
        printf("testapp: slept %.0f s\n", sleep_seconds);
    }
    return 0;
}
