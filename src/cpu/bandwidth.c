/* bandwidth.c — measured memory read bandwidth: the numerator of every decode roofline. */
#include <string.h>

#include "alloy/cpu.h"

typedef struct bw_job {
    const uint64_t *buf;
    size_t n;
    uint64_t sums[256];
} bw_job;

/* 16 independent lanes so the loop vectorizes into full-width loads (the sum is only kept so the
 * reads cannot be optimized away) */
static void bw_task(void *arg, int ith, int nth) {
    bw_job *j = arg;
    int64_t lo, hi;
    al_split((int64_t)j->n, ith, nth, &lo, &hi);
    uint64_t acc[16] = {0};
    int64_t i = lo;
    for (; i + 16 <= hi; i += 16)
        for (int l = 0; l < 16; l++) acc[l] += j->buf[i + l];
    for (; i < hi; i++) acc[0] += j->buf[i];
    uint64_t s = 0;
    for (int l = 0; l < 16; l++) s += acc[l];
    j->sums[ith & 255] = s;
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
