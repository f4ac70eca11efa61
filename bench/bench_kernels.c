/*
 * bench_kernels.c — CPU kernel throughput, printed as a markdown table.
 *
 *   bench_kernels [TYPE,TYPE,...] [--mib N] [--no-prefill]
 *
 * For every weight type and ISA:
 *  - dequant: al_dequantize_row (reference converter) throughput, GB/s of quantized input, 1 thread;
 *  - matvec: al_cpu_matmul with m = 1 over a weight matrix of k = 4096 and enough rows to hold at
 *    least N MiB (default 256, larger than the last-level cache), GB/s of weights read, with 1 thread
 *    and with all threads, and the latter as a fraction of the measured read bandwidth;
 *  - prefill: al_cpu_matmul with m = 64, n_out = 1024, k = 4096, all threads, GFLOP/s (SIMD ISAs).
 * Memory bandwidth: read-sum over 512 MiB (1 thread and all threads) and a 256 MiB memcpy.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloy/cpu.h"
#include "format/quant_blocks.h"

static const al_type k_types[] = {AL_TYPE_F32,  AL_TYPE_F16,  AL_TYPE_BF16, AL_TYPE_Q8_0, AL_TYPE_Q4_0,
                                  AL_TYPE_Q4_1, AL_TYPE_Q5_0, AL_TYPE_Q5_1, AL_TYPE_IQ4_NL, AL_TYPE_Q2_K,
                                  AL_TYPE_Q3_K, AL_TYPE_Q4_K, AL_TYPE_Q5_K, AL_TYPE_Q6_K, AL_TYPE_IQ4_XS};

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Random weights: random bits; float types kept finite and small, f16 block scales kept sane. */
static void fill_weights(al_type t, void *dst, size_t nbytes, uint64_t *rng) {
    uint64_t *p = dst;
    for (size_t i = 0; i < nbytes / 8; i++) {
        uint64_t r = rng_next(rng);
        if (t == AL_TYPE_F32) r = (r & 0x807fffff807fffffULL) | 0x3f0000003f000000ULL;
        if (t == AL_TYPE_F16) r &= 0xbbffbbffbbffbbffULL;
        if (t == AL_TYPE_BF16) r = (r & 0x807f807f807f807fULL) | 0x3c003c003c003c00ULL;
        p[i] = r;
    }
    const al_type_traits *tr = al_type_traits_get(t);
    if (!tr->is_quantized) return;
    size_t offs[2] = {0, (size_t)-1};
    switch (t) {
    case AL_TYPE_Q4_1: case AL_TYPE_Q5_1: case AL_TYPE_Q4_K: case AL_TYPE_Q5_K: offs[1] = 2; break;
    case AL_TYPE_Q2_K: offs[0] = 80; offs[1] = 82; break;
    case AL_TYPE_Q3_K: offs[0] = 108; break;
    case AL_TYPE_Q6_K: offs[0] = 208; break;
    default: break;
    }
    const uint16_t h = al_f32_to_f16(0.002f);
    for (size_t b = 0; b < nbytes / tr->type_size; b++)
        for (int j = 0; j < 2; j++)
            if (offs[j] != (size_t)-1) memcpy((char *)dst + b * tr->type_size + offs[j], &h, 2);
}

/* ---- memory bandwidth ---------------------------------------------------------------------- */

typedef struct rd_job {
    const uint64_t *p;
    size_t n;
    uint64_t sink[64];
} rd_job;

static void rd_task(void *arg, int ith, int nth) {
    rd_job *j = arg;
    int64_t lo, hi;
    al_split((int64_t)j->n / 8, ith, nth, &lo, &hi);
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (int64_t i = lo * 8; i < hi * 8; i += 8) {
        a += j->p[i] ^ j->p[i + 4];
        b += j->p[i + 1] ^ j->p[i + 5];
        c += j->p[i + 2] ^ j->p[i + 6];
        d += j->p[i + 3] ^ j->p[i + 7];
    }
    j->sink[ith % 64] = a + b + c + d;
}

static double read_bw(al_pool *pool, const uint64_t *p, size_t bytes) {
    rd_job j = {p, bytes / 8, {0}};
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = al_time_sec();
        al_pool_run(pool, rd_task, &j, 0);
        double dt = al_time_sec() - t0;
        if (dt < best) best = dt;
    }
    return (double)bytes / best / 1e9;
}

/* ---- timing helpers -------------------------------------------------------------------------- */

/* Runs matmul repeatedly for about `budget` seconds (at least 2 runs after a warm-up); best time. */
static double time_matmul(al_cpu *c, const al_tensor *W, const float *X, float *Y, int64_t m, double budget) {
    const int64_t k = W->ne[0], n = W->ne[1];
    al_status st = al_cpu_matmul(c, W, X, k, Y, n, m);
    if (st.code) {
        fprintf(stderr, "matmul failed: %s\n", st.msg);
        return NAN;
    }
    double best = 1e30, start = al_time_sec();
    for (int rep = 0; rep < 2 || al_time_sec() - start < budget; rep++) {
        double t0 = al_time_sec();
        (void)al_cpu_matmul(c, W, X, k, Y, n, m);
        double dt = al_time_sec() - t0;
        if (dt < best) best = dt;
        if (rep > 200) break;
    }
    return best;
}

static double time_dequant(al_type t, const void *src, float *dst, int64_t n) {
    double best = 1e30, start = al_time_sec();
    for (int rep = 0; rep < 3 || al_time_sec() - start < 0.1; rep++) {
        double t0 = al_time_sec();
        al_status st = al_dequantize_row(t, src, dst, n);
        if (st.code) return NAN;
        double dt = al_time_sec() - t0;
        if (dt < best) best = dt;
        if (rep > 100) break;
    }
    return best;
}

static bool type_selected(const char *filter, al_type t) {
    if (!filter) return true;
    const char *name = al_type_name(t);
    size_t ln = strlen(name);
    for (const char *p = filter; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == ln && strncasecmp(p, name, l) == 0) return true;
        p += l + (e ? 1 : 0);
    }
    return false;
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    size_t mib = 256;
    bool prefill = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-prefill")) prefill = false;
        else filter = argv[i];
    }
    const int nth = al_cpu_count();
    al_pool *pool1 = NULL, *pooln = NULL;
    if (al_pool_init(&pool1, 1).code || al_pool_init(&pooln, nth).code) return 1;

    /* memory bandwidth */
    const size_t bw_bytes = (size_t)512 << 20;
    uint64_t *buf = al_alloc(NULL, bw_bytes), *buf2 = al_alloc(NULL, bw_bytes / 2);
    if (!buf || !buf2) return 1;
    memset(buf, 1, bw_bytes);
    memset(buf2, 2, bw_bytes / 2);
    const double bw1 = read_bw(pool1, buf, bw_bytes), bwn = read_bw(pooln, buf, bw_bytes);
    double cp = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = al_time_sec();
        memcpy(buf2, buf, bw_bytes / 2);
        double dt = al_time_sec() - t0;
        if (dt < cp) cp = dt;
    }
    const double bwcp = 2.0 * (double)(bw_bytes / 2) / cp / 1e9; /* read + write */
    al_free(NULL, buf);
    al_free(NULL, buf2);
    printf("## Memory bandwidth\n\n| test | GB/s |\n|---|---|\n");
    printf("| read-sum 512 MiB, 1 thread | %.1f |\n| read-sum 512 MiB, %d threads | %.1f |\n", bw1, nth, bwn);
    printf("| memcpy 256 MiB (read+write) | %.1f |\n\n", bwcp);

    al_isa isas[AL_ISA_COUNT];
    int n_isa = 0;
    for (int i = 0; i < AL_ISA_COUNT; i++)
        if (al_isa_supported((al_isa)i)) isas[n_isa++] = (al_isa)i;

    const int64_t K = 4096, PM = 64, PN = 1024;
    printf("## Kernels (k = %lld; matvec over >= %zu MiB of weights; prefill m = %lld, n_out = %lld, %d threads)\n\n",
           (long long)K, mib, (long long)PM, (long long)PN, nth);
    printf("| type | bits/w | dequant GB/s | ISA | matvec 1T GB/s | matvec %dT GB/s | %dT / read BW | prefill GFLOP/s |\n",
           nth, nth);
    printf("|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);

    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    float *X = malloc(sizeof(float) * K * PM), *Y = NULL;
    for (int64_t i = 0; i < K * PM; i++) X[i] = (float)((int64_t)(rng_next(&rng) % 2001) - 1000) * 1e-3f;

    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        const al_type t = k_types[ti];
        if (!type_selected(filter, t)) continue;
        const size_t row = al_type_row_size(t, K);
        int64_t rows = (int64_t)(((mib << 20) + row - 1) / row);
        if (rows < 4096) rows = 4096;
        al_tensor W, Wp;
        if (al_tensor_init(&W, NULL, t, 2, (int64_t[]){K, rows}).code) return 1;
        fill_weights(t, W.data, (size_t)rows * row, &rng);
        if (al_tensor_view(&Wp, t, 2, (int64_t[]){K, PN}, W.data).code) return 1;
        free(Y);
        Y = malloc(sizeof(float) * (size_t)(rows > PN * PM ? rows : PN * PM));

        /* dequant: 1024 rows (4 Mi elements) from the start of W */
        const int64_t dn = K * 1024;
        float *dq = malloc(sizeof(float) * dn);
        const double tdq = time_dequant(t, W.data, dq, dn);
        free(dq);
        const double bpw = 8.0 * (double)row / (double)K;
        char dqs[32] = "n/a";
        if (!isnan(tdq)) snprintf(dqs, sizeof dqs, "%.2f", (double)dn * (double)row / (double)K / tdq / 1e9);

        for (int ii = 0; ii < n_isa; ii++) {
            al_cpu *c1 = NULL, *cn = NULL;
            if (al_cpu_init(&c1, 1, isas[ii]).code || al_cpu_init(&cn, nth, isas[ii]).code) return 1;
            const double wbytes = (double)rows * (double)row;
            const double budget = isas[ii] == AL_ISA_SCALAR ? 0.1 : 0.2;
            const double t1 = time_matmul(c1, &W, X, Y, 1, budget);
            const double tn = time_matmul(cn, &W, X, Y, 1, budget);
            char pre[32] = "-";
            if (prefill && isas[ii] != AL_ISA_SCALAR) {
                const double tp = time_matmul(cn, &Wp, X, Y, PM, 0.2);
                snprintf(pre, sizeof pre, "%.1f", 2.0 * PM * PN * K / tp / 1e9);
            }
            printf("| %s | %.2f | %s | %s | %.1f | %.1f | %.0f%% | %s |\n", ii == 0 ? al_type_name(t) : "", bpw,
                   ii == 0 ? dqs : "", al_isa_name(isas[ii]), wbytes / t1 / 1e9, wbytes / tn / 1e9,
                   100.0 * wbytes / tn / 1e9 / bwn, pre);
            fflush(stdout);
            al_cpu_free(c1);
            al_cpu_free(cn);
        }
        al_tensor_free(&W);
    }
    free(X);
    free(Y);
    al_pool_free(pool1);
    al_pool_free(pooln);
    return 0;
}
