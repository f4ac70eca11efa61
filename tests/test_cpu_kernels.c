/*
 * test_cpu_kernels.c — dot kernels, activation quantizers and matmul.
 *  - reference rows: blk.0.ffn_up.weight of a tiny model quantized by llama.cpp into every type, with
 *    its reference dequantization (tests/data/kernels/, from /work/shared/quant via extract.py):
 *    every ISA's vec_dot == dot(reference dequantized row, dequantized activation) within float
 *    rounding (1e-5 of the sum of |terms|).
 *  - random weights (random bytes with sane f16 scales) at odd sizes: scalar vec_dot == dot of the
 *    reference dequantized row (al_dequantize_row) with the dequantized activation, and every SIMD
 *    kernel, single- and multi-row, == scalar, both within 1e-5 of the sum of |terms|.
 *  - activation quantizers: SIMD output == scalar output byte for byte (ties, zero blocks, signed
 *    max); scalar == the library reference quantizer (al_quantize_row) once that is real.
 *  - matmul: threaded == single-thread bit for bit, == scalar vec_dot loop within tolerance, strides.
 */
#include <stddef.h>
#include <stdlib.h>

#include "alloy/cpu.h"
#include "cpu/cpu_impl.h"
#include "harness.h"

static const al_type k_types[] = {AL_TYPE_F32,  AL_TYPE_F16,  AL_TYPE_BF16, AL_TYPE_Q4_0, AL_TYPE_Q4_1,
                                  AL_TYPE_Q5_0, AL_TYPE_Q5_1, AL_TYPE_Q8_0, AL_TYPE_Q2_K, AL_TYPE_Q3_K,
                                  AL_TYPE_Q4_K, AL_TYPE_Q5_K, AL_TYPE_Q6_K, AL_TYPE_IQ4_NL, AL_TYPE_IQ4_XS};
#define N_TYPES (int)(sizeof k_types / sizeof k_types[0])

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}
static float frand(uint64_t *s) { return (float)((rng_next(s) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }

static void random_acts(float *x, int64_t n, uint64_t *rng) {
    for (int64_t i = 0; i < n; i++) x[i] = frand(rng) * (i % 97 == 5 ? 8.0f : 1.0f);
}

static void set_half(void *block, size_t off, float v) {
    uint16_t h = al_f32_to_f16(v);
    memcpy((char *)block + off, &h, 2);
}

/* Random weights: random bytes, with each f16 scale field set to a sane value. */
static void make_weights(al_type t, void *dst, int64_t nrows, int64_t k, uint64_t *rng) {
    const al_type_traits *tr = al_type_traits_get(t);
    const int64_t nel = nrows * k;
    if (t == AL_TYPE_F32) {
        for (int64_t i = 0; i < nel; i++) ((float *)dst)[i] = frand(rng);
        return;
    }
    if (t == AL_TYPE_F16 || t == AL_TYPE_BF16) {
        for (int64_t i = 0; i < nel; i++)
            ((uint16_t *)dst)[i] = t == AL_TYPE_F16 ? al_f32_to_f16(frand(rng)) : al_f32_to_bf16(frand(rng));
        return;
    }
    const size_t nbytes = (size_t)(nel / tr->block_size) * tr->type_size;
    for (size_t i = 0; i < nbytes; i++) ((uint8_t *)dst)[i] = (uint8_t)rng_next(rng);
    size_t off_d = 0, off_m = (size_t)-1;
    switch (t) {
    case AL_TYPE_Q4_1: off_m = offsetof(al_block_q4_1, m); break;
    case AL_TYPE_Q5_1: off_m = offsetof(al_block_q5_1, m); break;
    case AL_TYPE_Q2_K: off_d = offsetof(al_block_q2_K, d); off_m = offsetof(al_block_q2_K, dmin); break;
    case AL_TYPE_Q3_K: off_d = offsetof(al_block_q3_K, d); break;
    case AL_TYPE_Q4_K: off_m = offsetof(al_block_q4_K, dmin); break;
    case AL_TYPE_Q5_K: off_m = offsetof(al_block_q5_K, dmin); break;
    case AL_TYPE_Q6_K: off_d = offsetof(al_block_q6_K, d); break;
    default: break;
    }
    for (size_t b = 0; b < nbytes / tr->type_size; b++) {
        char *blk = (char *)dst + b * tr->type_size;
        set_half(blk, off_d, 0.001f + 0.01f * frand(rng));
        if (off_m != (size_t)-1) set_half(blk, off_m, 0.02f * frand(rng));
    }
}

/* Dequantized activation row (the values the kernels multiply with). */
static void act_dequant(al_type vt, const void *a, float *out, int64_t k) {
    switch (vt) {
    case AL_TYPE_F32: memcpy(out, a, (size_t)k * 4); break;
    case AL_TYPE_Q8_0:
        for (int64_t i = 0; i < k; i++) {
            const al_block_q8_0 *b = (const al_block_q8_0 *)a + i / 32;
            out[i] = al_f16_to_f32(b->d) * b->qs[i % 32];
        }
        break;
    case AL_TYPE_Q8_1:
        for (int64_t i = 0; i < k; i++) {
            const al_block_q8_1 *b = (const al_block_q8_1 *)a + i / 32;
            out[i] = al_f16_to_f32(b->d) * b->qs[i % 32];
        }
        break;
    case AL_TYPE_Q8_K:
        for (int64_t i = 0; i < k; i++) {
            const al_block_q8_K *b = (const al_block_q8_K *)a + i / 256;
            out[i] = b->d * b->qs[i % 256];
        }
        break;
    default: for (int64_t i = 0; i < k; i++) out[i] = NAN;
    }
}

/* dot(reference dequantized weight row, dequantized activation) and its sum of |terms|. Q8_1 carries
 * s = f16(d * sum(qs)) (d unrounded) which the Q4_1/Q5_1 min term uses by design: corrected here. */
static double expected_dot(al_type t, const void *wrow, const float *wd, const void *act, const float *xa, int64_t k,
                           double *mag) {
    double want = 0;
    *mag = 0;
    for (int64_t j = 0; j < k; j++) {
        want += (double)wd[j] * xa[j];
        *mag += fabs((double)wd[j] * xa[j]);
    }
    if (al_dot_act_type(t) == AL_TYPE_Q8_1) {
        const size_t ts = al_type_traits_get(t)->type_size;
        for (int64_t b = 0; b < k / 32; b++) {
            const al_block_q8_1 *ab = (const al_block_q8_1 *)act + b;
            uint16_t mh;
            memcpy(&mh, (const char *)wrow + b * ts + 2, 2); /* Q4_1 / Q5_1: m follows d */
            int sq = 0;
            for (int j = 0; j < 32; j++) sq += ab->qs[j];
            want += (double)al_f16_to_f32(mh) * (al_f16_to_f32(ab->s) - (double)al_f16_to_f32(ab->d) * sq);
        }
    }
    return want;
}

static int isa_list(al_isa *out) {
    int n = 0;
    for (int i = 0; i < AL_ISA_COUNT; i++)
        if (al_isa_supported((al_isa)i)) out[n++] = (al_isa)i;
    return n;
}

/* ---------------------------------------------------------------------------------------------- */

static void test_isa(void) {
    CHECK(al_isa_supported(AL_ISA_SCALAR));
    CHECK(al_isa_supported(al_isa_best()));
    CHECK(!al_isa_supported(AL_ISA_COUNT));
    CHECK(!al_isa_supported(AL_ISA_AUTO));
    CHECK(strcmp(al_isa_name(AL_ISA_AVX512), "avx512") == 0);
    for (int t = 0; t < N_TYPES; t++) {
        CHECKF(al_vec_dot_get_exact(k_types[t], AL_ISA_SCALAR) != NULL, "no scalar kernel for %s", al_type_name(k_types[t]));
        CHECK(al_vec_dot_get(k_types[t], AL_ISA_AUTO) != NULL);
    }
    CHECK(al_vec_dot_get_exact(AL_TYPE_I32, AL_ISA_SCALAR) == NULL);
    CHECK(al_vec_dot_get_exact(AL_TYPE_Q4_0, AL_ISA_COUNT) == NULL);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) CHECK(al_isa_supported(AL_ISA_AVX2));
#endif
    al_isa l[AL_ISA_COUNT];
    int n = isa_list(l);
    printf("  ISAs:");
    for (int i = 0; i < n; i++) printf(" %s", al_isa_name(l[i]));
    printf(" (best %s)\n", al_isa_name(al_isa_best()));
}

static void test_quant_act(void) {
    enum { N = 2048 };
    float *x = malloc(N * sizeof(float));
    uint8_t *ref = malloc(N * 4), *got = malloc(N * 4), *lib = malloc(N * 4);
    REQUIRE(x && ref && got && lib);
    uint64_t rng = 0x1234567;
    random_acts(x, N, &rng);
    /* block 0 (32) and super-block 1 (256..511) zero; block 1: exact .5 ties after scaling by 1 */
    for (int j = 0; j < 32; j++) x[j] = 0.0f;
    for (int j = 256; j < 512; j++) x[j] = 0.0f;
    for (int j = 0; j < 32; j++) x[32 + j] = (float)(j - 16) + 0.5f;
    x[32 + 5] = 127.0f;
    /* super-block 2: ties under iscale = 1 (max = -127 first), and +127 later */
    for (int j = 0; j < 256; j++) x[512 + j] = (float)((j % 200) - 100) + 0.5f;
    x[512 + 7] = -127.0f;
    x[512 + 100] = 127.0f;
    const al_type vts[] = {AL_TYPE_Q8_0, AL_TYPE_Q8_1, AL_TYPE_Q8_K, AL_TYPE_F16, AL_TYPE_BF16, AL_TYPE_F32};
    al_isa isas[AL_ISA_COUNT];
    const int n_isa = isa_list(isas);
    for (size_t v = 0; v < sizeof vts / sizeof vts[0]; v++) {
        const size_t sz = al_type_row_size(vts[v], N);
        REQUIRE(sz > 0 && sz <= N * 4);
        memset(ref, 0, N * 4);
        CHECK_OK(al_quantize_act(vts[v], x, ref, N, AL_ISA_SCALAR));
        for (int i = 0; i < n_isa; i++) {
            memset(got, 0xcd, N * 4);
            CHECK_OK(al_quantize_act(vts[v], x, got, N, isas[i]));
            CHECKF(memcmp(ref, got, sz) == 0, "%s act quantizer on %s differs from scalar", al_type_name(vts[v]),
                   al_isa_name(isas[i]));
        }
        /* scalar == the library's reference quantizer, when it exists (stubs leave dst untouched) */
        memset(lib, 0xcd, sz);
        al_status qs = al_quantize_row(vts[v], x, lib, N, NULL);
        if (al_failed(&qs)) continue;
        bool stub = true;
        for (size_t b = 0; b < sz; b++) stub &= lib[b] == 0xcd;
        if (stub) {
            printf("  (reference %s quantizer not available yet: skipped)\n", al_type_name(vts[v]));
            continue;
        }
        CHECKF(memcmp(ref, lib, sz) == 0, "%s act quantizer differs from al_quantize_row", al_type_name(vts[v]));
    }
    /* invariants that do not need the reference: Q8_0 round trip within d/2, Q8_K bsums */
    {
        al_block_q8_0 *q = (al_block_q8_0 *)(void *)ref;
        CHECK_OK(al_quantize_act(AL_TYPE_Q8_0, x, q, N, AL_ISA_SCALAR));
        CHECK(q[0].d == 0 && q[1].d == al_f32_to_f16(1.0f) && q[1].qs[0] == -16); /* roundf(-15.5) = -16 */
        CHECK(q[1].qs[1] == -15); /* roundf(-14.5) = -15: away from zero */
        for (int b = 2; b < N / 32; b++) {
            float d = al_f16_to_f32(q[b].d);
            for (int j = 0; j < 32; j++) {
                if (!(fabsf(d * q[b].qs[j] - x[32 * b + j]) <= 0.57f * d + 1e-6f) /* d/2, plus f16 rounding of d times 127 */ && (1)) {
                    CHECKF(0, "Q8_0 block %d elem %d: %g vs %g (d %g)", b, j, d * q[b].qs[j], x[32 * b + j], d);
                    b = N;
                    break;
                }
            }
        }
        al_block_q8_K *qk = (al_block_q8_K *)(void *)got;
        CHECK_OK(al_quantize_act(AL_TYPE_Q8_K, x, qk, N, AL_ISA_SCALAR));
        CHECK(qk[1].d == 0.0f && qk[1].qs[3] == 0 && qk[1].bsums[2] == 0);
        CHECK(qk[2].d == 1.0f);                 /* iscale = -127 / -127 */
        CHECK(qk[2].qs[0] == -100);             /* -99.5 -> -100 (ties to even) */
        CHECK(qk[2].qs[1] == -98);              /* -98.5 -> -98 */
        CHECK(qk[2].qs[100] == 127);
        for (int b = 0; b < N / 256; b++)
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += qk[b].qs[16 * j + l];
                CHECK(qk[b].bsums[j] == s);
            }
    }
    CHECK_ERR(al_quantize_act(AL_TYPE_Q8_0, x, got, 33, AL_ISA_SCALAR), AL_ERR_INVALID);
    CHECK_ERR(al_quantize_act(AL_TYPE_Q4_K, x, got, 256, AL_ISA_SCALAR), AL_ERR_UNSUPPORTED);
    free(x);
    free(ref);
    free(got);
    free(lib);
}

/* Real rows quantized by llama.cpp and their reference dequantization. */
static void test_reference_rows(void) {
    static const char *names[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K",
                                  "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "BF16", "F16"};
    enum { K = 256, ROWS = 16 };
    al_isa isas[AL_ISA_COUNT];
    const int n_isa = isa_list(isas);
    uint64_t rng = 99;
    float x[K], xa[K];
    random_acts(x, K, &rng);
    for (size_t t = 0; t < sizeof names / sizeof names[0]; t++) {
        al_type type;
        REQUIRE(al_type_from_name(names[t], &type));
        char p[64];
        size_t nb = 0, nf = 0;
        snprintf(p, sizeof p, "kernels/%s.bin", names[t]);
        uint8_t *w = al_test_read_file(al_test_path(p), &nb);
        snprintf(p, sizeof p, "kernels/%s.f32", names[t]);
        float *wf = al_test_read_file(al_test_path(p), &nf);
        const size_t rs = al_type_row_size(type, K);
        if (!w || !wf || nb != rs * ROWS || nf != sizeof(float) * K * ROWS) {
            CHECKF(0, "%s: reference data missing or wrong size", names[t]);
            free(w);
            free(wf);
            continue;
        }
        const al_type vt = al_dot_act_type(type);
        uint8_t act[2048];
        REQUIRE(al_type_row_size(vt, K) <= sizeof act);
        CHECK_OK(al_quantize_act(vt, x, act, K, AL_ISA_SCALAR));
        act_dequant(vt, act, xa, K);
        for (int r = 0; r < ROWS; r++) {
            double mag;
            const double want = expected_dot(type, w + r * rs, wf + r * K, act, xa, K, &mag);
            for (int i = 0; i < n_isa; i++) {
                float got = NAN;
                al_vec_dot_get(type, isas[i])(K, &got, w + r * rs, act);
                CHECKF(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s row %d %s: %.9g want %.9g (mag %g)", names[t], r,
                       al_isa_name(isas[i]), got, want, mag);
            }
        }
        free(w);
        free(wf);
    }
}

static int64_t test_k(al_type t, int which) {
    const int bs = al_type_traits_get(t)->block_size;
    if (bs == 1) return (int64_t[]){37, 200, 1001}[which];
    return bs * (int64_t[]){3, 5, 9}[which];
}

static void test_simd_vs_scalar(void) {
    al_isa isas[AL_ISA_COUNT];
    const int n_isa = isa_list(isas);
    uint64_t rng = 7;
    for (int ti = 0; ti < N_TYPES; ti++) {
        const al_type t = k_types[ti];
        const al_type vt = al_dot_act_type(t);
        for (int kk = 0; kk < 3; kk++) {
            const int64_t k = test_k(t, kk);
            const size_t rs = al_type_row_size(t, k), as = al_type_row_size(vt, k);
            REQUIRE(rs && as);
            uint8_t *w = malloc(rs), *a = malloc(as * AL_DOT_NR);
            float *x = malloc(sizeof(float) * k), *wb = malloc(sizeof(float) * k), *xa = malloc(sizeof(float) * k);
            REQUIRE(w && a && x && wb && xa);
            make_weights(t, w, 1, k, &rng);
            CHECK_OK(al_dequantize_row(t, w, wb, k)); /* reference dequantization */
            float ref[AL_DOT_NR];
            double mag[AL_DOT_NR];
            for (int r = 0; r < AL_DOT_NR; r++) {
                random_acts(x, k, &rng);
                CHECK_OK(al_quantize_act(vt, x, a + r * as, k, AL_ISA_SCALAR));
                act_dequant(vt, a + r * as, xa, k);
                const double want = expected_dot(t, w, wb, a + r * as, xa, k, &mag[r]);
                al_vec_dot_get_exact(t, AL_ISA_SCALAR)(k, &ref[r], w, a + r * as);
                CHECKF(fabs(ref[r] - want) <= 1e-5 * mag[r] + 1e-30, "%s k=%lld scalar %.9g vs dequantized dot %.9g",
                       al_type_name(t), (long long)k, ref[r], want);
            }
            for (int i = 0; i < n_isa; i++) {
                al_vec_dot_fn f = al_vec_dot_get(t, isas[i]);
                al_dot_nr_fn fn = al_dot_nr_get(t, isas[i]);
                for (int r = 0; r < AL_DOT_NR; r++) {
                    float got = NAN;
                    f(k, &got, w, a + r * as);
                    CHECKF(fabs(got - ref[r]) <= 1e-5 * mag[r] + 1e-30, "%s k=%lld %s row %d: %.9g vs scalar %.9g",
                           al_type_name(t), (long long)k, al_isa_name(isas[i]), r, got, ref[r]);
                }
                for (int nr = 1; nr <= AL_DOT_NR; nr++) {
                    float out[2 * AL_DOT_NR];
                    for (int j = 0; j < 2 * AL_DOT_NR; j++) out[j] = -12345.0f;
                    fn(k, out, 2, w, a, as, nr); /* output stride 2 floats */
                    for (int r = 0; r < AL_DOT_NR; r++) {
                        if (r < nr)
                            CHECKF(fabs(out[2 * r] - ref[r]) <= 1e-5 * mag[r] + 1e-30, "%s k=%lld %s nr=%d row %d",
                                   al_type_name(t), (long long)k, al_isa_name(isas[i]), nr, r);
                        else
                            CHECK(out[2 * r] == -12345.0f);
                        CHECK(out[2 * r + 1] == -12345.0f);
                    }
                }
            }
            free(w);
            free(a);
            free(x);
            free(wb);
            free(xa);
        }
    }
}

static void test_matmul(void) {
    al_isa isas[AL_ISA_COUNT];
    const int n_isa = isa_list(isas);
    uint64_t rng = 42;
    const int64_t n_out = 33, ms[] = {1, 3, 7, 40};
    al_cpu *single[AL_ISA_COUNT] = {0}, *multi[AL_ISA_COUNT] = {0};
    for (int i = 0; i < n_isa; i++) {
        REQUIRE_OK(al_cpu_init(&single[isas[i]], 1, isas[i]));
        REQUIRE_OK(al_cpu_init(&multi[isas[i]], 4, isas[i]));
        CHECK(al_cpu_isa(multi[isas[i]]) == isas[i]);
        CHECK(al_cpu_threads(multi[isas[i]]) == 4);
    }
    for (int ti = 0; ti < N_TYPES; ti++) {
        const al_type t = k_types[ti];
        const al_type vt = al_dot_act_type(t);
        const int64_t k = test_k(t, 1);
        al_tensor W;
        REQUIRE_OK(al_tensor_init(&W, NULL, t, 2, (int64_t[]){k, n_out}));
        make_weights(t, W.data, n_out, k, &rng);
        const int64_t ldx = k + 3, ldy = n_out + 5, mmax = 40;
        float *X = malloc(sizeof(float) * ldx * mmax), *Y1 = malloc(sizeof(float) * ldy * mmax),
              *Yn = malloc(sizeof(float) * ldy * mmax), *wb = malloc(sizeof(float) * k), *xa = malloc(sizeof(float) * k);
        const size_t as = al_type_row_size(vt, k);
        uint8_t *a = malloc(as);
        REQUIRE(X && Y1 && Yn && wb && xa && a);
        random_acts(X, ldx * mmax, &rng);
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
            const int64_t m = ms[mi];
            for (int i = 0; i < n_isa; i++) {
                for (int64_t j = 0; j < ldy * mmax; j++) Y1[j] = Yn[j] = -777.0f;
                CHECK_OK(al_cpu_matmul(single[isas[i]], &W, X, ldx, Y1, ldy, m));
                CHECK_OK(al_cpu_matmul(multi[isas[i]], &W, X, ldx, Yn, ldy, m));
                const bool blas = m >= 32 && (t == AL_TYPE_F32 || t == AL_TYPE_F16 || t == AL_TYPE_BF16);
                int bad = 0;
                for (int64_t r = 0; r < m && bad < 3; r++) {
                    CHECK_OK(al_quantize_act(vt, X + r * ldx, a, k, AL_ISA_SCALAR));
                    act_dequant(vt, a, xa, k);
                    for (int64_t o = 0; o < ldy && bad < 3; o++) {
                        const float g1 = Y1[r * ldy + o], gn = Yn[r * ldy + o];
                        if (o >= n_out) {
                            if (g1 != -777.0f || gn != -777.0f) { CHECKF(0, "%s: padding written", al_type_name(t)); bad++; }
                            continue;
                        }
                        if (!blas && memcmp(&g1, &gn, 4) != 0) {
                            CHECKF(0, "%s %s m=%lld [%lld][%lld]: 1 thread %.9g != 4 threads %.9g", al_type_name(t),
                                   al_isa_name(isas[i]), (long long)m, (long long)r, (long long)o, g1, gn);
                            bad++;
                        }
                        const char *wrow = (const char *)W.data + o * W.nb[1];
                        float want;
                        al_vec_dot_get_exact(t, AL_ISA_SCALAR)(k, &want, wrow, a);
                        CHECK_OK(al_dequantize_row(t, wrow, wb, k));
                        double mag = 0;
                        for (int64_t j = 0; j < k; j++) mag += fabs((double)wb[j] * xa[j]);
                        if (!(fabs(gn - want) <= 1e-5 * mag + 1e-30) || !(fabs(g1 - want) <= 1e-5 * mag + 1e-30)) {
                            CHECKF(0, "%s %s m=%lld [%lld][%lld]: %.9g / %.9g want %.9g", al_type_name(t),
                                   al_isa_name(isas[i]), (long long)m, (long long)r, (long long)o, g1, gn, want);
                            bad++;
                        }
                    }
                }
                for (int64_t j = m * ldy; j < ldy * mmax; j++)
                    if (Yn[j] != -777.0f) { CHECKF(0, "%s: rows past m written", al_type_name(t)); break; }
            }
        }
        al_tensor_free(&W);
        free(X);
        free(Y1);
        free(Yn);
        free(wb);
        free(xa);
        free(a);
    }
    for (int i = 0; i < n_isa; i++) {
        al_cpu_free(single[isas[i]]);
        al_cpu_free(multi[isas[i]]);
    }
}

static void test_matmul_errors(void) {
    al_cpu *c;
    REQUIRE_OK(al_cpu_init(&c, 2, AL_ISA_AUTO));
    CHECK(al_isa_supported(al_cpu_isa(c)));
    al_tensor W;
    REQUIRE_OK(al_tensor_init(&W, NULL, AL_TYPE_Q4_0, 2, (int64_t[]){64, 4}));
    float X[128] = {0}, Y[16];
    CHECK_ERR(al_cpu_matmul(c, &W, X, 32, Y, 4, 1), AL_ERR_INVALID);  /* ldx < k */
    CHECK_ERR(al_cpu_matmul(c, &W, X, 64, Y, 3, 1), AL_ERR_INVALID);  /* ldy < n_out */
    CHECK_ERR(al_cpu_matmul(c, &W, X, 64, Y, 4, -1), AL_ERR_INVALID);
    CHECK_ERR(al_cpu_matmul(c, NULL, X, 64, Y, 4, 1), AL_ERR_INVALID);
    CHECK_OK(al_cpu_matmul(c, &W, X, 64, Y, 4, 0));
    CHECK_OK(al_cpu_matmul(c, &W, X, 64, Y, 4, 2));
    for (int i = 0; i < 8; i++) CHECK(Y[i] == 0.0f);
    al_tensor_free(&W);
    REQUIRE_OK(al_tensor_init(&W, NULL, AL_TYPE_I32, 2, (int64_t[]){8, 2}));
    CHECK_ERR(al_cpu_matmul(c, &W, X, 8, Y, 2, 1), AL_ERR_UNSUPPORTED);
    al_tensor_free(&W);
    al_cpu_free(c);
    al_cpu_free(NULL);
    al_cpu *bad = NULL;
    CHECK_ERR(al_cpu_init(&bad, 1, AL_ISA_COUNT), AL_ERR_UNSUPPORTED);
    CHECK(bad == NULL);
}

/* al_cpu_matmul_n (fused Q/K/V-style products) equals separate al_cpu_matmul calls bit for bit,
 * including a mix of weight types that cannot be fused. */
static void test_matmul_n(void) {
    const int64_t k = 512;
    const al_type types[3] = {AL_TYPE_Q4_K, AL_TYPE_Q6_K, AL_TYPE_Q8_0};
    const int64_t outs[3] = {37, 16, 21};
    al_tensor W[3];
    float *src = malloc(sizeof(float) * (size_t)(k * 64));
    for (int64_t i = 0; i < k * 64; i++) src[i] = sinf((float)i * 0.37f) + 0.1f * cosf((float)i * 1.3f);
    for (int i = 0; i < 3; i++) {
        int64_t ne[2] = {k, outs[i]};
        REQUIRE_OK(al_tensor_init(&W[i], NULL, types[i], 2, ne));
        REQUIRE_OK(al_quantize_rows(types[i], src, W[i].data, outs[i], k, NULL, NULL));
    }
    al_cpu *c;
    REQUIRE_OK(al_cpu_init(&c, 2, AL_ISA_AUTO));
    for (int m = 1; m <= 5; m += 4) {
        float *x = malloc(sizeof(float) * (size_t)(k * m)), *a[3], *b[3];
        for (int64_t i = 0; i < k * m; i++) x[i] = cosf((float)i * 0.11f);
        int64_t ldy[3];
        for (int i = 0; i < 3; i++) {
            a[i] = calloc((size_t)(outs[i] * m), sizeof(float));
            b[i] = calloc((size_t)(outs[i] * m), sizeof(float));
            ldy[i] = outs[i];
            CHECK_OK(al_cpu_matmul(c, &W[i], x, k, a[i], outs[i], m));
        }
        const al_tensor *ws[3] = {&W[0], &W[1], &W[2]};
        CHECK_OK(al_cpu_matmul_n(c, 2, ws, x, k, b, ldy, m));        /* Q4_K + Q6_K: fused (both Q8_K) */
        CHECK_OK(al_cpu_matmul_n(c, 1, ws + 2, x, k, b + 2, ldy + 2, m)); /* Q8_0 alone */
        for (int i = 0; i < 3; i++) CHECKF(!memcmp(a[i], b[i], sizeof(float) * (size_t)(outs[i] * m)), "part %d m %d", i, m);
        for (int i = 0; i < 3; i++) memset(b[i], 0, sizeof(float) * (size_t)(outs[i] * m));
        CHECK_OK(al_cpu_matmul_n(c, 3, ws, x, k, b, ldy, m));        /* mixed formats: falls back */
        for (int i = 0; i < 3; i++) CHECKF(!memcmp(a[i], b[i], sizeof(float) * (size_t)(outs[i] * m)), "mixed part %d m %d", i, m);
        for (int i = 0; i < 3; i++) {
            free(a[i]);
            free(b[i]);
        }
        free(x);
    }
    al_cpu_free(c);
    for (int i = 0; i < 3; i++) al_tensor_free(&W[i]);
    free(src);
}

int main(void) {
    AL_RUN(test_isa);
    AL_RUN(test_quant_act);
    AL_RUN(test_reference_rows);
    AL_RUN(test_simd_vs_scalar);
    AL_RUN(test_matmul);
    AL_RUN(test_matmul_errors);
    AL_RUN(test_matmul_n);
    return al_test_finish();
}
