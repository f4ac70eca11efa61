/* bandwidth.c — measured memory read bandwidth: the numerator of every decode roofline. */
#include <string.h>

#include "alloy/cpu.h"

typedef struct bw_job {
    const uint64_t *buf;
    size_t n;
    uint64_t sums[256];
} bw_job;

static void bw_task(void *arg, int ith, int nth) {
    bw_job *j = arg;
    int64_t lo, hi;
    al_split((int64_t)j->n, ith, nth, &lo, &hi);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    for (; i < hi; i++) s0 += j->buf[i];
    j->sums[ith & 255] = s0 + s1 + s2 + s3;
}

double al_measure_read_bandwidth(al_pool *pool, size_t bytes, int reps) {
    size_t n = bytes / sizeof(uint64_t);
    uint64_t *buf = al_alloc(NULL, n * sizeof(uint64_t));
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i; /* touch every page */
    bw_job j;
    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.n = n;
    double best = 0;
    for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
        double t0 = al_time_sec();
        al_pool_run(pool, bw_task, &j, 0);
        double dt = al_time_sec() - t0;
        if (dt > 0 && (double)(n * sizeof(uint64_t)) / dt > best) best = (double)(n * sizeof(uint64_t)) / dt;
    }
    al_free(NULL, buf);
    return best;
}
