/*
 * test_cuda_host.cu — the GPU's readers of quantized weights, compiled for the host (no GPU needed;
 * built wherever nvcc is): the weight rows are llama.cpp's reference blocks (tests/data/quant, as in
 * test_quant), turned into the bytes the GPU holds by al_cuda_row_image (what al_cuda_weight_upload
 * uploads), then
 *  1. al_qt<T>::load8 (prefill dequantization, get_rows, the embedding op) of every quantized type
 *     gives the reference's dequantized floats, for rows of 1 to 12 blocks;
 *  2. al_mmq<T>::dot (the decode products' int8 path), over every chunk of a row, R = 2 and 4 rows per
 *     step, rows contiguous or paired from two matrices as gate/up pairs are, fewer rows than R,
 *     equals sum_i w_i * xq_i * xd_(i/32) of the dequantized reference rows and random int8 activations
 *     (in double) within float rounding.
 */
#include <stdlib.h>
#include <string.h>

#include "alloy/quant.h"
#include "cuda/mmq.cuh"
extern "C" {
#include "harness.h"
}

#define NE0 256 /* the reference tensor: [512][256] per type */
#define NE1 512

typedef struct ref_rows {
    uint8_t *raw; /* GGUF blocks [NE1][row of NE0] */
    float *f32;   /* the reference's dequantization */
    size_t rb;    /* bytes of a 256-element row */
} ref_rows;

/* tests/data/quant/<name>.ffn_up.{bin,f32} (as test_quant reads them) */
static bool load_ref(const char *name, al_type t, ref_rows *r) {
    char rel[128];
    r->rb = al_type_row_size(t, NE0);
    snprintf(rel, sizeof rel, "quant/%s.ffn_up.bin", name);
    r->raw = (uint8_t *)al_test_read_data(rel, r->rb * NE1);
    snprintf(rel, sizeof rel, "quant/%s.ffn_up.f32", name);
    r->f32 = (float *)al_test_read_data(rel, sizeof(float) * NE0 * NE1);
    return r->raw && r->f32;
}

/* the GPU image of n_rows rows of k elements (consecutive blocks of the reference from block b0),
 * rows row_bytes apart, 16-byte aligned, 64 spare bytes past the end (word readers may look ahead) */
static uint8_t *gpu_rows(al_type t, const ref_rows *r, int64_t k, int n_rows, size_t b0_bytes, size_t *row_bytes) {
    *row_bytes = al_cuda_row_bytes(t, k);
    const size_t grb = al_type_row_size(t, k), total = *row_bytes * (size_t)n_rows + 64;
    uint8_t *img = (uint8_t *)aligned_alloc(16, (total + 15) / 16 * 16);
    memset(img, 0x5A, total);
    for (int i = 0; i < n_rows; i++) CHECK_OK(al_cuda_row_image(t, k, r->raw + b0_bytes + (size_t)i * grb, img + (size_t)i * *row_bytes));
    return img;
}

template <int T> static void check_load8(const char *name) {
    ref_rows r;
    if (!load_ref(name, (al_type)T, &r)) {
        free(r.raw), free(r.f32);
        return;
    }
    const int bs = al_type_traits_get((al_type)T)->block_size;
    const int64_t ks[3] = {bs == 256 ? 256 : 96, 1024, 3072};
    for (int ki = 0; ki < 3; ki++) {
        const int64_t k = ks[ki];
        const int n_rows = (int)((int64_t)NE0 * NE1 / k) < 8 ? (int)((int64_t)NE0 * NE1 / k) : 8;
        size_t row_bytes;
        uint8_t *img = gpu_rows((al_type)T, &r, k, n_rows, 0, &row_bytes);
        double worst = 0;
        for (int i = 0; i < n_rows; i++)
            for (int64_t i8 = 0; i8 < k / 8; i8++) {
                float v[8];
                al_qt<T>::load8(img + (size_t)i * row_bytes, k, i8, v);
                for (int t = 0; t < 8; t++) {
                    const float ref = r.f32[(size_t)i * k + 8 * i8 + t];
                    const double e = fabs((double)v[t] - ref) / (fabs(ref) + 1e-30);
                    if (e > worst) worst = e;
                }
            }
        CHECKF(worst <= 1e-6, "load8 %s k %lld: relative error %g", name, (long long)k, worst);
        free(img);
    }
    free(r.raw), free(r.f32);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* rows of k elements, R per step: sum of dot over every chunk vs the reference in double */
template <int T, int R> static void check_dot(const char *name, const ref_rows *r, int64_t k, bool paired, int nr) {
    const int n_rows = 4; /* contiguous: rows 0..3; paired: rows 0, 1 of "gate" and of "up" (2 rows on) */
    size_t row_bytes;
    uint8_t *img = gpu_rows((al_type)T, r, k, n_rows, 0, &row_bytes);
    /* paired as mmq_rows pairs gate and up: row r at (r & 1) * rb + (r >> 1) * rb2 */
    const int64_t rb = paired ? 2 * (int64_t)row_bytes : (int64_t)row_bytes, rb2 = paired ? (int64_t)row_bytes : 2 * (int64_t)row_bytes;
    const int src_row[4] = {0, paired ? 2 : 1, paired ? 1 : 2, 3}; /* reference row of weight row r */
    int8_t *xq = (int8_t *)aligned_alloc(16, (size_t)k);
    float *xd = (float *)malloc(sizeof(float) * (size_t)(k / 32));
    for (int64_t i = 0; i < k; i++) xq[i] = (int8_t)((int)(rnd() % 255) - 127);
    for (int64_t b = 0; b < k / 32; b++) xd[b] = 0.001f + (float)(rnd() % 1000) * 1e-5f;
    float acc[R];
    for (int q = 0; q < R; q++) acc[q] = 0.0f;
    for (int64_t c = 0; c < k / al_mmq<T>::chunk; c++) al_mmq<T>::template dot<R>(img, rb, rb2, nr, c, k, xq, xd, acc);
    for (int q = 0; q < R; q++) {
        double ref = 0, mag = 0;
        if (q >= nr) continue; /* rows past nr: unspecified (the dots may sum row 0 there instead of branching) */
        for (int64_t i = 0; i < k; i++) {
            const double t = (double)r->f32[(size_t)src_row[q] * k + i] * xq[i] * xd[i / 32];
            ref += t, mag += fabs(t);
        }
        CHECKF(fabs(acc[q] - ref) <= 1e-5 * mag + 1e-30, "dot %s k %lld R %d row %d of %d (%s): %.9g, want %.9g (sum |terms| %g)",
               name, (long long)k, R, q, nr, paired ? "paired" : "contiguous", acc[q], ref, mag);
    }
    free(img), free(xq), free(xd);
}

template <int T> static void check_dots(const char *name) {
    ref_rows r;
    if (!load_ref(name, (al_type)T, &r)) {
        free(r.raw), free(r.f32);
        return;
    }
    const int64_t ks[3] = {256, 1024, 3072};
    for (int ki = 0; ki < 3; ki++)
        for (int paired = 0; paired < 2; paired++) {
            check_dot<T, 2>(name, &r, ks[ki], paired, 2);
            check_dot<T, 2>(name, &r, ks[ki], paired, 1);
            check_dot<T, 4>(name, &r, ks[ki], paired, 4);
            check_dot<T, 4>(name, &r, ks[ki], paired, 3);
        }
    free(r.raw), free(r.f32);
}

static void test_load8(void) {
    check_load8<AL_TYPE_Q4_0>("Q4_0");
    check_load8<AL_TYPE_Q4_1>("Q4_1");
    check_load8<AL_TYPE_Q5_0>("Q5_0");
    check_load8<AL_TYPE_Q5_1>("Q5_1");
    check_load8<AL_TYPE_Q8_0>("Q8_0");
    check_load8<AL_TYPE_IQ4_NL>("IQ4_NL");
    check_load8<AL_TYPE_Q2_K>("Q2_K");
    check_load8<AL_TYPE_Q3_K>("Q3_K");
    check_load8<AL_TYPE_Q4_K>("Q4_K");
    check_load8<AL_TYPE_Q5_K>("Q5_K");
    check_load8<AL_TYPE_Q6_K>("Q6_K");
    check_load8<AL_TYPE_IQ4_XS>("IQ4_XS");
}

/* the branch-free pair decode of the Q4_K / Q5_K scale field (the dots' path) against the per-sub-block
 * one (al_scale_min_k4, which test_load8 checks against llama.cpp's blocks), for every j on scale
 * fields of random bytes and of all-ones / all-zeros / alternating bits (every 6-bit and high-2-bit
 * pattern boundary) */
static void test_scale_pair(void) {
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int bad = 0;
    for (int t = 0; t < 4096; t++) {
        uint8_t h[16];
        for (int i = 0; i < 16; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            h[i] = t == 0 ? 0xFF : t == 1 ? 0x00 : t == 2 ? 0xAA : t == 3 ? 0x55 : (uint8_t)(rng >> 56);
        }
        uint4 hd;
        memcpy(&hd, h, sizeof hd);
        for (int j = 0; j < 4; j++) {
            int sc[2], mn[2];
            al_scale_min_k4_pair(hd, j, sc, mn);
            for (int u = 0; u < 2; u++) {
                int d, m;
                al_scale_min_k4(2 * j + u, h + 4, &d, &m);
                if (sc[u] != d || mn[u] != m) {
                    if (bad++ < 5) CHECKF(false, "header %d, sub-block %d: pair %d/%d, single %d/%d", t, 2 * j + u, sc[u], mn[u], d, m);
                }
            }
        }
    }
    CHECKF(bad == 0, "%d scale/min mismatches", bad);
}

static void test_dot(void) {
    check_dots<AL_TYPE_Q8_0>("Q8_0");
    check_dots<AL_TYPE_Q4_K>("Q4_K");
    check_dots<AL_TYPE_Q5_K>("Q5_K");
    check_dots<AL_TYPE_Q6_K>("Q6_K");
    check_dots<AL_TYPE_Q4_0>("Q4_0");
    check_dots<AL_TYPE_Q4_1>("Q4_1");
    check_dots<AL_TYPE_Q5_0>("Q5_0");
    check_dots<AL_TYPE_Q5_1>("Q5_1");
    check_dots<AL_TYPE_IQ4_NL>("IQ4_NL");
    check_dots<AL_TYPE_IQ4_XS>("IQ4_XS");
    check_dots<AL_TYPE_Q2_K>("Q2_K");
    check_dots<AL_TYPE_Q3_K>("Q3_K");
}

int main(void) {
    AL_RUN(test_load8);
    AL_RUN(test_scale_pair);
    AL_RUN(test_dot);
    return al_test_finish();
}
