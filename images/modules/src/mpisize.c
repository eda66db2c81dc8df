/* mpisize: which CPUs each MPI task may run on, to check what a job really got.
 *
 * Every rank reads its own CPU affinity (sched_getaffinity) and the Slurm variables that
 * describe its share; rank 0 gathers the lines and prints them in rank order, then a
 * summary, so the output is the same however the ranks are scheduled. */
#define _GNU_SOURCE
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE 512

/* "0-3,8,10-11" from a CPU set; returns the number of CPUs. */
static int cpu_list(const cpu_set_t *set, char *out, size_t outlen)
{
    int count = 0, first = -1, prev = -2;
    size_t used = 0;
    out[0] = '\0';
    for (int cpu = 0; cpu <= CPU_SETSIZE; cpu++) {
        int on = cpu < CPU_SETSIZE && CPU_ISSET(cpu, set);
        if (on) {
            count++;
            if (first < 0)
                first = cpu;
            prev = cpu;
            continue;
        }
        if (first >= 0) {
            int n = first == prev ? snprintf(out + used, outlen - used, "%s%d", used ? "," : "", first)
                                  : snprintf(out + used, outlen - used, "%s%d-%d", used ? "," : "", first, prev);
            if (n > 0 && (size_t)n < outlen - used)
                used += (size_t)n;
            first = -1;
        }
    }
    return count;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

int main(int argc, char **argv)
{
    int rank, size, len;
    char name[MPI_MAX_PROCESSOR_NAME];
    char cpus[256];
    char line[LINE];
    cpu_set_t set;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(name, &len);

    CPU_ZERO(&set);
    int ncpu = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        ncpu = cpu_list(&set, cpus, sizeof cpus);
    else
        strcpy(cpus, "unknown");
    /* the rank among the tasks on this node (MPI-3), which SLURM_LOCALID is not under mpirun */
    MPI_Comm node;
    int local = 0;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    snprintf(line, sizeof line,
             "rank %d of %d on %s (local rank %d): %d CPU%s allowed (%s), SLURM_CPUS_PER_TASK=%s",
             rank, size, name, local, ncpu, ncpu == 1 ? "" : "s", cpus, env_or("SLURM_CPUS_PER_TASK", "unset"));

    char *all = NULL;
    char *hosts = NULL;
    int *counts = NULL;
    if (rank == 0) {
        all = calloc((size_t)size, LINE);
        hosts = calloc((size_t)size, MPI_MAX_PROCESSOR_NAME);
        counts = calloc((size_t)size, sizeof *counts);
        if (!all || !hosts || !counts)
            MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Gather(line, LINE, MPI_CHAR, all, LINE, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, MPI_COMM_WORLD);
    MPI_Gather(&ncpu, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);

    if (rank == 0) {
        int nodes = 0, total = 0;
        for (int i = 0; i < size; i++) {
            printf("%s\n", all + (size_t)i * LINE);
            total += counts[i];
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                seen = strcmp(hosts + (size_t)i * MPI_MAX_PROCESSOR_NAME, hosts + (size_t)j * MPI_MAX_PROCESSOR_NAME) == 0;
            nodes += !seen;
        }
        printf("mpisize: %d task%s on %d node%s, %d CPU%s allowed in total\n", size, size == 1 ? "" : "s", nodes,
               nodes == 1 ? "" : "s", total, total == 1 ? "" : "s");
        fflush(stdout);
        free(all);
        free(hosts);
        free(counts);
    }
    MPI_Finalize();
    return 0;
}
