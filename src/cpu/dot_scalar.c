/*
 * dot_scalar.c — reference (portable C) dot kernels for every weight type against its
 * vec_dot_type, and the reference activation quantizers. SIMD kernels are tested against these.
 *
 * Integer sums are exact (block sums fit in int32); float accumulation is per block, in order.
 * Activation formats: Q8_0 (legacy 32-blocks, IQ4_NL), Q8_1 (Q4_1, Q5_1), Q8_K (K-quants,
 * IQ4_XS), F32 (F32, F16, BF16 weights: converted on the fly, activations stay exact).
 */
#include <math.h>
#include <string.h>

#include "cpu/cpu_impl.h"

#define F16(h) al_f16_to_f32(h)

/* ---- activation quantizers (match the GGUF reference quantizers) ---------------------------- */

static void q8_0_ref(const float *x, al_block_q8_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / AL_QK8_0; i++, x += AL_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < AL_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = al_f32_to_f16(d);
        for (int j = 0; j < AL_QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void q8_1_ref(const float *x, al_block_q8_1 *y, int64_t n) {
    for (int64_t i = 0; i < n / AL_QK8_1; i++, x += AL_QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < AL_QK8_1; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < AL_QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = al_f32_to_f16(d);
        y[i].s = al_f32_to_f16((float)sum * d);
    }
}

/* round to nearest, ties to even (|v| < 2^22) */
static inline int nearest_int(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static void q8_K_ref(const float *x, al_block_q8_K *y, int64_t n) {
    for (int64_t i = 0; i < n / AL_QK_K; i++, x += AL_QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < AL_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < AL_QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < AL_QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)s;
        }
        y[i].d = 1.0f / iscale;
    }
}

bool al_quant_act_scalar(al_type vt, const float *x, void *out, int64_t n) {
    switch (vt) {
    case AL_TYPE_Q8_0: q8_0_ref(x, out, n); return true;
    case AL_TYPE_Q8_1: q8_1_ref(x, out, n); return true;
    case AL_TYPE_Q8_K: q8_K_ref(x, out, n); return true;
    case AL_TYPE_F32: memcpy(out, x, (size_t)n * sizeof(float)); return true;
    case AL_TYPE_F16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)out)[i] = al_f32_to_f16(x[i]);
        return true;
    case AL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) ((uint16_t *)out)[i] = al_f32_to_bf16(x[i]);
        return true;
    default: return false;
    }
}

/* ---- float weights · F32 activations -------------------------------------------------------- */

static void dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    double sum = 0.0; /* reference: accumulate wider so it is the accurate twin */
    for (int64_t i = 0; i < n; i++) sum += (double)x[i] * y[i];
    *s = (float)sum;
}

static void dot_f16(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)F16(x[i]) * y[i];
    *s = (float)sum;
}

static void dot_bf16(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx;
    const float *y = vy;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)al_bf16_to_f32(x[i]) * y[i];
    *s = (float)sum;
}

/* ---- legacy 32-blocks ---------------------------------------------------------------------- */

static void dot_q4_0(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q4_0 *x = vx;
    const al_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK4_0; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += ((x[i].qs[j] & 0xf) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sum += F16(x[i].d) * F16(y[i].d) * (float)sumi;
    }
    *s = sum;
}

static void dot_q4_1(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q4_1 *x = vx;
    const al_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK4_1; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += (x[i].qs[j] & 0xf) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        }
        sum += F16(x[i].d) * F16(y[i].d) * (float)sumi + F16(x[i].m) * F16(y[i].s);
    }
    *s = sum;
}

static void dot_q5_0(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q5_0 *x = vx;
    const al_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK5_0; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            sumi += (((x[i].qs[j] & 0xf) | (h0 << 4)) - 16) * y[i].qs[j];
            sumi += (((x[i].qs[j] >> 4) | (h1 << 4)) - 16) * y[i].qs[j + 16];
        }
        sum += F16(x[i].d) * F16(y[i].d) * (float)sumi;
    }
    *s = sum;
}

static void dot_q5_1(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q5_1 *x = vx;
    const al_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK5_1; i++) {
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            sumi += ((x[i].qs[j] & 0xf) | (h0 << 4)) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) | (h1 << 4)) * y[i].qs[j + 16];
        }
        sum += F16(x[i].d) * F16(y[i].d) * (float)sumi + F16(x[i].m) * F16(y[i].s);
    }
    *s = sum;
}

static void dot_q8_0(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q8_0 *x = vx;
    const al_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < AL_QK8_0; j++) sumi += x[i].qs[j] * y[i].qs[j];
        sum += F16(x[i].d) * F16(y[i].d) * (float)sumi;
    }
    *s = sum;
}

static void dot_iq4_nl(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_iq4_nl *x = vx;
    const al_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK4_NL; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += al_kvalues_iq4nl[x[i].qs[j] & 0xf] * y[i].qs[j];
            sumi += al_kvalues_iq4nl[x[i].qs[j] >> 4] * y[i].qs[j + 16];
        }
        sum += F16(x[i].d) * F16(y[i].d) * (float)sumi;
    }
    *s = sum;
}

/* ---- K-quants · Q8_K ---------------------------------------------------------------------- */

static void dot_q2_K(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q2_K *x = vx;
    const al_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK_K; i++) {
        int summs = 0, isum = 0;
        for (int j = 0; j < 16; j++) summs += (x[i].scales[j] >> 4) * y[i].bsums[j];
        const int8_t *q8 = y[i].qs;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q2 = x[i].qs + 32 * h;
            for (int j = 0; j < 4; j++) {
                for (int half = 0; half < 2; half++) {
                    int sc = x[i].scales[8 * h + 2 * j + half] & 0xf, acc = 0;
                    for (int l = 0; l < 16; l++) acc += ((q2[16 * half + l] >> (2 * j)) & 3) * q8[16 * half + l];
                    isum += sc * acc;
                }
                q8 += 32;
            }
        }
        const float dall = y[i].d * F16(x[i].d), dmin = y[i].d * F16(x[i].dmin);
        sum += dall * (float)isum - dmin * (float)summs;
    }
    *s = sum;
}

static void dot_q3_K(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q3_K *x = vx;
    const al_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK_K; i++) {
        uint32_t aux[4];
        al_unpack_q3k_scales(x[i].scales, aux);
        const uint8_t *sc = (const uint8_t *)aux;
        const int8_t *q8 = y[i].qs;
        int isum = 0, is = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q3 = x[i].qs + 32 * h;
            for (int j = 0; j < 4; j++) {
                const int bit = 4 * h + j;
                for (int half = 0; half < 2; half++, is++) {
                    int acc = 0;
                    for (int l = 0; l < 16; l++) {
                        int k = 16 * half + l;
                        int v = ((q3[k] >> (2 * j)) & 3) - ((x[i].hmask[k] >> bit) & 1 ? 0 : 4);
                        acc += v * q8[k];
                    }
                    isum += ((int)sc[is] - 32) * acc;
                }
                q8 += 32;
            }
        }
        sum += F16(x[i].d) * y[i].d * (float)isum;
    }
    *s = sum;
}

static void dot_q4_K(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q4_K *x = vx;
    const al_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK_K; i++) {
        uint32_t u[4];
        al_unpack_k4_scales(x[i].scales, u);
        const uint8_t *sc = (const uint8_t *)u, *mn = sc + 8;
        int summs = 0, isum = 0;
        for (int j = 0; j < 8; j++) summs += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
            int a = 0, b = 0;
            for (int l = 0; l < 32; l++) {
                a += (q4[l] & 0xf) * q8[l];
                b += (q4[l] >> 4) * q8[l + 32];
            }
            isum += sc[2 * j] * a + sc[2 * j + 1] * b;
        }
        sum += y[i].d * F16(x[i].d) * (float)isum - y[i].d * F16(x[i].dmin) * (float)summs;
    }
    *s = sum;
}

static void dot_q5_K(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q5_K *x = vx;
    const al_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK_K; i++) {
        uint32_t u[4];
        al_unpack_k4_scales(x[i].scales, u);
        const uint8_t *sc = (const uint8_t *)u, *mn = sc + 8;
        int summs = 0, isum = 0;
        for (int j = 0; j < 8; j++) summs += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
            int a = 0, b = 0;
            for (int l = 0; l < 32; l++) {
                int h = x[i].qh[l];
                a += ((q4[l] & 0xf) | (((h >> (2 * j)) & 1) << 4)) * q8[l];
                b += ((q4[l] >> 4) | (((h >> (2 * j + 1)) & 1) << 4)) * q8[l + 32];
            }
            isum += sc[2 * j] * a + sc[2 * j + 1] * b;
        }
        sum += y[i].d * F16(x[i].d) * (float)isum - y[i].d * F16(x[i].dmin) * (float)summs;
    }
    *s = sum;
}

static void dot_q6_K(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_q6_K *x = vx;
    const al_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales, *q8 = y[i].qs;
        int isum = 0;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, q8 += 128) {
            int a[8] = {0};
            for (int l = 0; l < 32; l++) {
                int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                int is = l / 16;
                a[is + 0] += q1 * q8[l];
                a[is + 2] += q2 * q8[l + 32];
                a[is + 4] += q3 * q8[l + 64];
                a[is + 6] += q4 * q8[l + 96];
            }
            for (int j = 0; j < 8; j++) isum += sc[j] * a[j];
        }
        sum += F16(x[i].d) * y[i].d * (float)isum;
    }
    *s = sum;
}

static void dot_iq4_xs(int64_t n, float *s, const void *vx, const void *vy) {
    const al_block_iq4_xs *x = vx;
    const al_block_q8_K *y = vy;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / AL_QK_K; i++) {
        const uint8_t *qs = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int isum = 0;
        for (int ib = 0; ib < 8; ib++, qs += 16, q8 += 32) {
            int acc = 0;
            for (int j = 0; j < 16; j++) {
                acc += al_kvalues_iq4nl[qs[j] & 0xf] * q8[j];
                acc += al_kvalues_iq4nl[qs[j] >> 4] * q8[j + 16];
            }
            isum += (al_iq4xs_scale(&x[i], ib) - 32) * acc;
        }
        sum += F16(x[i].d) * y[i].d * (float)isum;
    }
    *s = sum;
}

/* Scalar multi-row: loop the single-row reference (it is the reference, not the fast path). */
#define SCALAR_EXPORT(name)                                                                        \
    static void name##_1(int64_t n, float *s, const void *x, const void *y) { name(n, s, x, y); }   \
    static void name##_n(int64_t n, float *s, size_t bs, const void *x, const void *y, size_t by,  \
                         int nr) {                                                                 \
        for (int r = 0; r < nr; r++) name(n, s + (size_t)r * bs, x, (const char *)y + (size_t)r * by); \
    }

SCALAR_EXPORT(dot_f32)
SCALAR_EXPORT(dot_f16)
SCALAR_EXPORT(dot_bf16)
SCALAR_EXPORT(dot_q4_0)
SCALAR_EXPORT(dot_q4_1)
SCALAR_EXPORT(dot_q5_0)
SCALAR_EXPORT(dot_q5_1)
SCALAR_EXPORT(dot_q8_0)
SCALAR_EXPORT(dot_iq4_nl)
SCALAR_EXPORT(dot_q2_K)
SCALAR_EXPORT(dot_q3_K)
SCALAR_EXPORT(dot_q4_K)
SCALAR_EXPORT(dot_q5_K)
SCALAR_EXPORT(dot_q6_K)
SCALAR_EXPORT(dot_iq4_xs)

const al_dot_kernel al_dot_table_scalar[AL_TYPE_COUNT] = {
    AL_DOT_ENTRY(AL_TYPE_F32, dot_f32),       AL_DOT_ENTRY(AL_TYPE_F16, dot_f16),
    AL_DOT_ENTRY(AL_TYPE_BF16, dot_bf16),     AL_DOT_ENTRY(AL_TYPE_Q4_0, dot_q4_0),
    AL_DOT_ENTRY(AL_TYPE_Q4_1, dot_q4_1),     AL_DOT_ENTRY(AL_TYPE_Q5_0, dot_q5_0),
    AL_DOT_ENTRY(AL_TYPE_Q5_1, dot_q5_1),     AL_DOT_ENTRY(AL_TYPE_Q8_0, dot_q8_0),
    AL_DOT_ENTRY(AL_TYPE_IQ4_NL, dot_iq4_nl), AL_DOT_ENTRY(AL_TYPE_Q2_K, dot_q2_K),
    AL_DOT_ENTRY(AL_TYPE_Q3_K, dot_q3_K),     AL_DOT_ENTRY(AL_TYPE_Q4_K, dot_q4_K),
    AL_DOT_ENTRY(AL_TYPE_Q5_K, dot_q5_K),     AL_DOT_ENTRY(AL_TYPE_Q6_K, dot_q6_K),
    AL_DOT_ENTRY(AL_TYPE_IQ4_XS, dot_iq4_xs),
};
