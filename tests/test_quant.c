/*
 * test_quant.c — block formats against the GGUF reference (tests/data/quant, made by
 * scripts/extract_quant_refs.py from /work/shared/quant):
 *  1. dequantization of blk.0.ffn_up.weight ([512][256]) of every type is bit-identical to the
 *     reference's float32 output;
 *  2. quantizing the F16 source gives an RMSE within 5% of the reference file's RMSE (and, since
 *     the reference quantizers are followed step by step, the same bytes as llama.cpp's);
 *  3. quantize -> dequantize of synthetic rows (random, zero, constant, outlier, tiny, with and
 *     without importance weights) stays finite and within a per-type error bound;
 *  4. al_quantize_rows with a thread pool equals the single-threaded row loop byte for byte;
 *  5. F16 / BF16 conversions; Q8_1 / Q8_K activation blocks; non-finite input; argument errors;
 *  6. the split-row layout of Q6_K / Q8_0 (the GPU's image): the reference blocks, split, put back
 *     together from the documented field offsets, dequantize bit-identically to the reference;
 *     unsplit restores the bytes.
 */
#include <stdlib.h>

#include "alloy/quant.h"
#include "harness.h"

#define NE0 256
#define NE1 512
#define NEL (NE0 * NE1)

typedef struct qcase {
    const char *name;
    al_type type;
    bool in_refs;      /* a reference GGUF exists */
    double max_err;    /* bound on max |err| / max |x| per block (synthetic rows) */
    double max_err_im; /* the same with importance weights (the fit favours heavy columns) */
    double rms_err;    /* bound on rms(err) / rms(x) for gaussian / uniform rows */
} qcase;

/* Bounds: about the worst case of the format (e.g. Q4_0 clamps the opposite extreme -max to 7/8 max,
 * an error of max/8) with a little room for fp16 scale rounding. */
static const qcase cases[] = {
    {"Q4_0", AL_TYPE_Q4_0, true, 0.13, 0.20, 0.10},     {"Q4_1", AL_TYPE_Q4_1, true, 0.08, 0.20, 0.09},
    {"Q5_0", AL_TYPE_Q5_0, true, 0.07, 0.10, 0.055},    {"Q5_1", AL_TYPE_Q5_1, true, 0.04, 0.08, 0.045},
    {"Q8_0", AL_TYPE_Q8_0, true, 0.005, 0.005, 0.007},  {"Q8_1", AL_TYPE_Q8_1, false, 0.005, 0.005, 0.007},
    {"Q2_K", AL_TYPE_Q2_K, true, 0.40, 0.70, 0.35},     {"Q3_K", AL_TYPE_Q3_K, true, 0.20, 0.30, 0.18},
    {"Q4_K", AL_TYPE_Q4_K, true, 0.09, 0.10, 0.085},    {"Q5_K", AL_TYPE_Q5_K, true, 0.04, 0.05, 0.042},
    {"Q6_K", AL_TYPE_Q6_K, true, 0.025, 0.05, 0.022},   {"Q8_K", AL_TYPE_Q8_K, false, 0.004, 0.004, 0.009},
    {"IQ4_NL", AL_TYPE_IQ4_NL, true, 0.11, 0.18, 0.095}, {"IQ4_XS", AL_TYPE_IQ4_XS, true, 0.11, 0.18, 0.095},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* tests/data/quant/<name>.ffn_up.<ext> of exactly `want` bytes (made by scripts/extract_quant_refs.py) */
static void *read_data(const char *name, const char *ext, size_t want) {
    char rel[128];
    snprintf(rel, sizeof rel, "quant/%s.ffn_up.%s", name, ext);
    return al_test_read_data(rel, want);
}

/* the unquantized source tensor, float32 [NE1][NE0] */
static float *load_source(void) {
    uint16_t *h = read_data("F16", "bin", NEL * 2);
    if (!h) return NULL;
    float *x = malloc(NEL * sizeof(float));
    for (int i = 0; i < NEL; i++) x[i] = al_f16_to_f32(h[i]);
    free(h);
    return x;
}

static double rmse(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

/* 1 */
static void check_dequant_exact(const char *name, al_type t, al_pool *pool) {
    const size_t rb = al_type_row_size(t, NE0);
    REQUIRE(rb > 0);
    void *raw = read_data(name, "bin", rb * NE1);
    float *ref = read_data(name, "f32", NEL * sizeof(float));
    float *out = malloc(NEL * sizeof(float));
    if (raw && ref) {
        CHECK_OK(al_dequantize_rows(t, raw, out, NE1, NE0, pool));
        int64_t bad = -1, nbad = 0;
        for (int64_t i = 0; i < NEL; i++) {
            if (f2u(out[i]) != f2u(ref[i])) {
                if (bad < 0) bad = i;
                nbad++;
            }
        }
        CHECKF(bad < 0, "%s: %lld of %d values differ; first at %lld (row %lld col %lld): got %.9g (0x%08x) want %.9g (0x%08x)",
               name, (long long)nbad, NEL, (long long)bad, (long long)(bad / NE0), (long long)(bad % NE0),
               bad >= 0 ? out[bad] : 0.0, bad >= 0 ? f2u(out[bad]) : 0u, bad >= 0 ? ref[bad] : 0.0,
               bad >= 0 ? f2u(ref[bad]) : 0u);
        /* the single-row entry point agrees */
        float row[NE0];
        CHECK_OK(al_dequantize_row(t, (const char *)raw + 7 * rb, row, NE0));
        CHECK(memcmp(row, ref + 7 * NE0, sizeof row) == 0);
    }
    free(raw);
    free(ref);
    free(out);
}

static void test_dequant_bit_exact(void) {
    al_pool *pool;
    REQUIRE_OK(al_pool_init(&pool, 3));
    for (int c = 0; c < NCASES; c++)
        if (cases[c].in_refs) check_dequant_exact(cases[c].name, cases[c].type, c % 2 ? pool : NULL);
    check_dequant_exact("F16", AL_TYPE_F16, NULL);
    check_dequant_exact("BF16", AL_TYPE_BF16, pool);
    al_pool_free(pool);
}

/* 2 */
static void test_quantize_rmse_vs_reference(void) {
    float *src = load_source();
    REQUIRE(src);
    float *deq = malloc(NEL * sizeof(float));
    void *q = malloc(al_type_row_size(AL_TYPE_Q8_0, NE0) * NE1);
    for (int c = 0; c < NCASES; c++) {
        if (!cases[c].in_refs) continue;
        const al_type t = cases[c].type;
        const size_t rb = al_type_row_size(t, NE0);
        float *ref = read_data(cases[c].name, "f32", NEL * sizeof(float));
        uint8_t *refq = read_data(cases[c].name, "bin", rb * NE1);
        if (!ref || !refq) { free(ref); free(refq); continue; }
        for (int r = 0; r < NE1; r++) CHECK_OK(al_quantize_row(t, src + r * NE0, (char *)q + r * rb, NE0, NULL));
        CHECK_OK(al_dequantize_rows(t, q, deq, NE1, NE0, NULL));
        const double ours = rmse(deq, src, NEL), theirs = rmse(ref, src, NEL);
        size_t same = 0;
        for (size_t i = 0; i < rb * NE1; i++) same += ((uint8_t *)q)[i] == refq[i];
        printf("  %-7s rmse %.6e  reference %.6e  ratio %.4f  bytes equal to reference %.2f%%\n", cases[c].name, ours,
               theirs, ours / theirs, 100.0 * same / (double)(rb * NE1));
        CHECKF(ours <= 1.05 * theirs, "%s: rmse %g > 1.05 x reference %g", cases[c].name, ours, theirs);
        /* the reference file was made without an imatrix by llama.cpp's *_ref quantizers, which these
         * follow step by step: the blocks should come out (nearly) identical */
        CHECKF(same >= 0.999 * (double)(rb * NE1), "%s: only %zu of %zu bytes equal the reference quantizer's",
               cases[c].name, same, rb * NE1);
        free(ref);
        free(refq);
    }
    free(q);
    free(deq);
    free(src);
}

/* 3 */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* xorshift64*, uniform in (0, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((rng_state * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0) + 1e-17;
}
static float grand(void) { return (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand())); }

enum { NR = 10, RN = 512 };

static void make_rows(float *x) {
    for (int r = 0; r < NR; r++) {
        float *row = x + r * RN;
        for (int i = 0; i < RN; i++) {
            switch (r) {
            case 0: row[i] = grand(); break;                              /* gaussian */
            case 1: row[i] = 0.02f * grand() + 0.01f; break;              /* small, off-centre */
            case 2: row[i] = 0.0f; break;                                 /* all zero */
            case 3: row[i] = 0.75f; break;                                /* constant positive */
            case 4: row[i] = -3.0f; break;                                /* constant negative */
            case 5: row[i] = i == 77 ? 1000.0f : grand(); break;          /* one huge outlier */
            case 6: row[i] = i == 300 ? -2000.0f : 0.1f * grand(); break; /* negative outlier */
            case 7: row[i] = 1e-20f * grand(); break;                     /* below GROUP_MAX_EPS scale */
            case 8: row[i] = (float)(urand() * 4.0 - 1.0); break;         /* uniform, skewed */
            default: row[i] = i % 64 < 32 ? 0.0f : 5.0f * grand(); break; /* zero half blocks */
            }
        }
    }
}

static void check_roundtrip(const qcase *qc, const float *x, const float *imatrix) {
    const size_t rb = al_type_row_size(qc->type, RN);
    const int bs = al_type_traits_get(qc->type)->block_size;
    const double bound = imatrix ? qc->max_err_im : qc->max_err;
    const char *tag = imatrix ? " (imatrix)" : "";
    uint8_t *q = calloc(NR, rb);
    float *y = malloc(NR * RN * sizeof(float));
    CHECK_OK(al_quantize_rows(qc->type, x, q, NR, RN, imatrix, NULL));
    CHECK_OK(al_dequantize_rows(qc->type, q, y, NR, RN, NULL));
    for (int r = 0; r < NR; r++) {
        const float *xr = x + r * RN, *yr = y + r * RN;
        double s2 = 0, e2 = 0;
        for (int b = 0; b < RN; b += bs) {
            double amax = 0, maxerr = 0;
            bool finite = true;
            for (int i = b; i < b + bs; i++) {
                finite = finite && isfinite(yr[i]);
                const double e = fabs((double)yr[i] - xr[i]);
                if (fabs(xr[i]) > amax) amax = fabs(xr[i]);
                if (e > maxerr) maxerr = e;
                s2 += (double)xr[i] * xr[i];
                e2 += e * e;
            }
            CHECKF(finite, "%s%s row %d block %d: non-finite output", qc->name, tag, r, b / bs);
            if (!finite) break;
            if (amax < 1e-8) /* fp16 scales underflow: the block may come back as zeros, never larger */
                CHECKF(maxerr <= amax, "%s%s row %d block %d: tiny block err %g > max %g", qc->name, tag, r, b / bs, maxerr, amax);
            else
                CHECKF(maxerr <= bound * amax, "%s%s row %d block %d: max err %g > %g x block max %g", qc->name, tag, r,
                       b / bs, maxerr, bound, amax);
            /* constants are represented almost exactly (IQ4_XS: blocks may pick scales of either sign,
             * and the 6-bit sub-scales then cost up to ~1/56 relative) */
            if (r == 3 || r == 4) {
                const double cb = qc->type == AL_TYPE_IQ4_XS ? 0.02 : 2e-3;
                CHECKF(maxerr <= cb * amax, "%s%s row %d: constant %g reproduced with err %g", qc->name, tag, r, xr[0], maxerr);
            }
        }
        if (r == 0 || r == 8)
            CHECKF(sqrt(e2 / s2) <= qc->rms_err, "%s%s row %d: relative rms err %g > %g", qc->name, tag, r, sqrt(e2 / s2),
                   qc->rms_err);
    }
    free(q);
    free(y);
}

static void test_roundtrip_synthetic(void) {
    float *x = malloc(NR * RN * sizeof(float));
    float *im = malloc(RN * sizeof(float));
    make_rows(x);
    for (int i = 0; i < RN; i++) im[i] = (float)(0.05 + 2.0 * urand() * urand());
    for (int c = 0; c < NCASES; c++) {
        check_roundtrip(&cases[c], x, NULL);
        check_roundtrip(&cases[c], x, im);
    }
    free(x);
    free(im);
}

/* importance weights must steer the error toward the heavily weighted columns */
static void test_imatrix_effect(void) {
    float *src = load_source();
    REQUIRE(src);
    float *im = malloc(NE0 * sizeof(float));
    for (int i = 0; i < NE0; i++) im[i] = i % 8 == 0 ? 100.0f : 0.1f;
    float *y = malloc(NEL * sizeof(float));
    void *q = malloc(al_type_row_size(AL_TYPE_Q8_0, NE0) * NE1);
    for (int c = 0; c < NCASES; c++) {
        const al_type t = cases[c].type;
        if (t == AL_TYPE_Q8_0 || t == AL_TYPE_Q8_1 || t == AL_TYPE_Q8_K) continue; /* ignore weights */
        double werr[2];
        for (int pass = 0; pass < 2; pass++) {
            CHECK_OK(al_quantize_rows(t, src, q, NE1, NE0, pass ? im : NULL, NULL));
            CHECK_OK(al_dequantize_rows(t, q, y, NE1, NE0, NULL));
            double s = 0;
            for (int i = 0; i < NEL; i++) s += im[i % NE0] * ((double)y[i] - src[i]) * ((double)y[i] - src[i]);
            werr[pass] = s;
        }
        CHECKF(werr[1] < werr[0], "%s: weighted error with imatrix %g not below without %g", cases[c].name, werr[1], werr[0]);
    }
    free(q);
    free(y);
    free(im);
    free(src);
}

/* 4 */
static void test_pool_matches_serial(void) {
    float *src = load_source();
    REQUIRE(src);
    float *im = malloc(NE0 * sizeof(float));
    for (int i = 0; i < NE0; i++) im[i] = 0.5f + (float)(i % 7);
    al_pool *pool;
    REQUIRE_OK(al_pool_init(&pool, 4));
    const size_t cap = al_type_row_size(AL_TYPE_Q8_K, NE0) * NE1;
    uint8_t *a = malloc(cap), *b = malloc(cap);
    for (int c = 0; c < NCASES; c++) {
        const al_type t = cases[c].type;
        const size_t rb = al_type_row_size(t, NE0);
        for (int w = 0; w < 2; w++) {
            memset(a, 0xAA, cap);
            memset(b, 0x55, cap);
            CHECK_OK(al_quantize_rows(t, src, a, NE1, NE0, w ? im : NULL, pool));
            for (int r = 0; r < NE1; r++) CHECK_OK(al_quantize_row(t, src + r * NE0, b + r * rb, NE0, w ? im : NULL));
            CHECKF(memcmp(a, b, rb * NE1) == 0, "%s%s: pooled quantization differs", cases[c].name, w ? " (imatrix)" : "");
        }
    }
    free(a);
    free(b);
    free(im);
    al_pool_free(pool);
    free(src);
}

/* 5 */
static void test_f16_bf16(void) {
    /* round trip of the reference tensors: float -> half bytes must reproduce the file */
    const char *names[2] = {"F16", "BF16"};
    const al_type types[2] = {AL_TYPE_F16, AL_TYPE_BF16};
    for (int k = 0; k < 2; k++) {
        uint16_t *raw = read_data(names[k], "bin", NEL * 2);
        float *ref = read_data(names[k], "f32", NEL * sizeof(float));
        uint16_t *h = malloc(NEL * 2);
        if (raw && ref) {
            CHECK_OK(al_quantize_rows(types[k], ref, h, NE1, NE0, NULL, NULL));
            CHECKF(memcmp(h, raw, NEL * 2) == 0, "%s: float -> half does not reproduce the file", names[k]);
        }
        free(raw);
        free(ref);
        free(h);
    }
    const float v[] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 1e-7f, 3.14159265f, 1e30f, -1e-30f};
    const uint16_t want_h[] = {0x0000, 0x8000, 0x3c00, 0xc100, 0x7bff, 0x0002, 0x4248, 0x7c00, 0x8000};  /* from Python struct 'e' */
    const uint16_t want_b[] = {0x0000, 0x8000, 0x3f80, 0xc020, 0x4780, 0x33d7, 0x4049, 0x714a, 0x8da2};
    uint16_t h[9], b[9];
    float back[9];
    CHECK_OK(al_quantize_row(AL_TYPE_F16, v, h, 9, NULL));
    CHECK_OK(al_quantize_row(AL_TYPE_BF16, v, b, 9, NULL));
    for (int i = 0; i < 9; i++) {
        CHECKF(h[i] == want_h[i], "f16(%g) = 0x%04x, want 0x%04x", v[i], h[i], want_h[i]);
        CHECKF(b[i] == want_b[i], "bf16(%g) = 0x%04x, want 0x%04x", v[i], b[i], want_b[i]);
    }
    CHECK_OK(al_dequantize_row(AL_TYPE_F16, h, back, 9));
    CHECK(back[2] == 1.0f && back[3] == -2.5f && back[4] == 65504.0f && isinf(back[7]));
    float nan = NAN;
    uint16_t hn, bn;
    CHECK_OK(al_quantize_row(AL_TYPE_F16, &nan, &hn, 1, NULL));
    CHECK_OK(al_quantize_row(AL_TYPE_BF16, &nan, &bn, 1, NULL));
    CHECK(isnan(al_f16_to_f32(hn)) && isnan(al_bf16_to_f32(bn)));
}

static void test_activation_blocks(void) {
    float x[512];
    for (int i = 0; i < 512; i++) x[i] = grand() * (i < 256 ? 1.0f : 30.0f);
    x[3] = -7.5f;
    uint8_t buf[2 * 292];
    /* Q8_K: d = max / -127 so the max element is exactly -127 * d; bsums are sums of 16 */
    REQUIRE_OK(al_quantize_row(AL_TYPE_Q8_K, x, buf, 512, NULL));
    for (int b = 0; b < 2; b++) {
        const uint8_t *blk = buf + 292 * b;
        float d;
        memcpy(&d, blk, 4);
        const int8_t *qs = (const int8_t *)(blk + 4);
        float amax = 0;
        int imax = 0;
        for (int i = 0; i < 256; i++)
            if (fabsf(x[256 * b + i]) > amax) { amax = fabsf(x[256 * b + i]); imax = i; }
        CHECK(qs[imax] == (x[256 * b + imax] > 0 ? 127 : -127));
        CHECK_NEAR(fabs(d) * 127, amax, 1e-6 * amax);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += qs[16 * j + i];
            int16_t bs;
            memcpy(&bs, blk + 4 + 256 + 2 * j, 2);
            CHECKF(bs == s, "Q8_K bsums[%d] = %d, want %d", j, bs, s);
        }
    }
    /* Q8_1: s = d * sum(qs) (as fp16) */
    REQUIRE_OK(al_quantize_row(AL_TYPE_Q8_1, x, buf, 64, NULL));
    for (int b = 0; b < 2; b++) {
        const uint8_t *blk = buf + 36 * b;
        uint16_t dh, sh;
        memcpy(&dh, blk, 2);
        memcpy(&sh, blk + 2, 2);
        const int8_t *qs = (const int8_t *)(blk + 4);
        int s = 0;
        float amax = 0;
        for (int i = 0; i < 32; i++) {
            s += qs[i];
            if (fabsf(x[32 * b + i]) > amax) amax = fabsf(x[32 * b + i]);
        }
        CHECK_NEAR(al_f16_to_f32(dh), amax / 127, 1e-3 * amax / 127);
        CHECK_NEAR(al_f16_to_f32(sh), al_f16_to_f32(dh) * s, 2e-3 * fabs(al_f16_to_f32(dh) * s) + 1e-6);
    }
    /* all-zero Q8_K block: d = 0, bsums 0 */
    float z[256] = {0};
    memset(buf, 0x7f, sizeof buf);
    REQUIRE_OK(al_quantize_row(AL_TYPE_Q8_K, z, buf, 256, NULL));
    for (int i = 0; i < 292; i++) CHECKF(buf[i] == 0, "zero Q8_K byte %d = %d", i, buf[i]);
}

/* NaN / Inf in one super-block must not crash (UBSan build) nor leak into the other blocks */
static void test_nonfinite_input(void) {
    float x[512], clean[512];
    for (int i = 0; i < 512; i++) clean[i] = x[i] = grand();
    x[5] = NAN;
    x[40] = INFINITY;
    x[200] = -INFINITY;
    uint8_t qa[2 * 292], qb[2 * 292];
    for (int c = 0; c < NCASES; c++) {
        const al_type t = cases[c].type;
        const size_t half = al_type_row_size(t, 256);
        CHECK_OK(al_quantize_row(t, x, qa, 512, NULL));
        CHECK_OK(al_quantize_row(t, clean, qb, 512, NULL));
        CHECKF(memcmp(qa + half, qb + half, half) == 0, "%s: non-finite values in the first 256 changed the rest", cases[c].name);
        float y[512];
        CHECK_OK(al_dequantize_row(t, qa, y, 512));
    }
}

static void test_errors(void) {
    float x[64] = {0};
    uint8_t q[256];
    CHECK_ERR(al_quantize_row(AL_TYPE_Q4_K, x, q, 64, NULL), AL_ERR_INVALID);
    CHECK_ERR(al_dequantize_row(AL_TYPE_Q4_0, q, x, 33), AL_ERR_INVALID);
    CHECK_ERR(al_quantize_row(AL_TYPE_I32, x, q, 4, NULL), AL_ERR_UNSUPPORTED);
    CHECK_ERR(al_quantize_row((al_type)5, x, q, 32, NULL), AL_ERR_UNSUPPORTED);
    CHECK_ERR(al_quantize_rows(AL_TYPE_Q4_0, x, q, 1, 48, NULL, NULL), AL_ERR_INVALID);
    for (int c = 0; c < NCASES; c++) {
        const al_type_traits *tr = al_type_traits_get(cases[c].type);
        CHECK(tr->to_float && tr->from_float && tr->is_quantized);
        al_type t;
        CHECK(al_type_from_name(cases[c].name, &t) && t == cases[c].type);
    }
}

/* 6: GGUF block fields (offset, bytes) and their split regions (bytes per block before the field) */
typedef struct split_case {
    const char *name;
    al_type type;
    int n_blocks[3]; /* row lengths tried, in blocks (rows of the reference tensor concatenated) */
    int nf;
    int off[3], bytes[3], region[3];
} split_case;

static void test_split_rows(void) {
    static const split_case sc[] = {
        {"Q6_K", AL_TYPE_Q6_K, {1, 4, 12}, 3, {0, 192, 208}, {192, 16, 2}, {0, 192, 208}},
        {"Q8_0", AL_TYPE_Q8_0, {1, 3, 64}, 2, {2, 0}, {32, 2}, {0, 32}},
    };
    for (int c = 0; c < 2; c++) {
        const split_case *q = &sc[c];
        const size_t rb = al_type_row_size(q->type, NE0), bsz = al_type_traits_get(q->type)->type_size;
        uint8_t *raw = read_data(q->name, "bin", rb * NE1);
        float *ref = read_data(q->name, "f32", NEL * sizeof(float));
        if (!raw || !ref) {
            free(raw);
            free(ref);
            continue;
        }
        CHECK(al_split_type(q->type));
        for (int li = 0; li < 3; li++) {
            const int nb = q->n_blocks[li];
            const int64_t n = (int64_t)nb * al_type_traits_get(q->type)->block_size;
            const size_t grs = al_type_row_size(q->type, n), srs = al_split_row_size(q->type, n);
            CHECKF(srs % 16 == 0 && srs >= grs && srs < grs + 16, "%s n %lld: split row %zu bytes", q->name, (long long)n, srs);
            uint8_t *sp = malloc(srs + 16), *blk = malloc(grs), *back = malloc(grs);
            float *deq = malloc(sizeof(float) * (size_t)n);
            const int rows = (int)((rb * NE1) / grs);
            int bad = 0;
            for (int r = 0; r < rows && !bad; r++) {
                const uint8_t *src = raw + (size_t)r * grs;
                memset(sp, 0xA5, srs + 16);
                CHECK_OK(al_split_row(q->type, n, src, sp));
                for (size_t i = grs; i < srs; i++) bad |= sp[i] != 0;       /* padding zeroed */
                for (size_t i = srs; i < srs + 16; i++) bad |= sp[i] != 0xA5; /* nothing past the row */
                for (int b = 0; b < nb; b++) /* a GGUF block again, from the documented split offsets */
                    for (int f = 0; f < q->nf; f++)
                        memcpy(blk + (size_t)b * bsz + q->off[f], sp + (size_t)q->region[f] * nb + (size_t)b * q->bytes[f], q->bytes[f]);
                CHECK_OK(al_dequantize_row(q->type, blk, deq, n));
                bad |= memcmp(deq, ref + (size_t)r * n, sizeof(float) * (size_t)n) != 0;
                CHECK_OK(al_unsplit_row(q->type, n, sp, back));
                bad |= memcmp(back, src, grs) != 0;
            }
            CHECKF(!bad, "%s rows of %lld: split layout wrong", q->name, (long long)n);
            free(sp);
            free(blk);
            free(back);
            free(deq);
        }
        free(raw);
        free(ref);
    }
    uint8_t a[256] = {0}, b[256];
    CHECK(!al_split_type(AL_TYPE_Q4_K) && al_split_row_size(AL_TYPE_Q4_K, 256) == 0);
    CHECK(al_split_row_size(AL_TYPE_Q6_K, 100) == 0 && al_split_row_size(AL_TYPE_Q8_0, 33) == 0);
    CHECK(al_split_row_size(AL_TYPE_Q6_K, 1024) == 848 && al_split_row_size(AL_TYPE_Q8_0, 256) == 272);
    CHECK_ERR(al_split_row(AL_TYPE_Q4_K, 256, a, b), AL_ERR_INVALID);
    CHECK_ERR(al_unsplit_row(AL_TYPE_Q8_0, 40, a, b), AL_ERR_INVALID);
}

int main(void) {
    AL_RUN(test_dequant_bit_exact);
    AL_RUN(test_quantize_rmse_vs_reference);
    AL_RUN(test_roundtrip_synthetic);
    AL_RUN(test_imatrix_effect);
    AL_RUN(test_pool_matches_serial);
    AL_RUN(test_f16_bf16);
    AL_RUN(test_activation_blocks);
    AL_RUN(test_nonfinite_input);
    AL_RUN(test_errors);
    AL_RUN(test_split_rows);
    return al_test_finish();
}
