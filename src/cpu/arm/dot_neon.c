/*
 * dot_neon.c — AArch64 Advanced SIMD kernels (baseline ARMv8-A: no dotprod/i8mm assumed, so int8
 * products use vmull_s8 + vpadalq_s16). Multi-row (NR) shapes as in cpu_impl.h.
 * Kernels: F32, F16, BF16 (F32 activations), Q4_0, Q8_0, IQ4_NL (Q8_0), Q4_K, Q6_K (Q8_K).
 * Other types fall back to the scalar reference. Activation quantizers: Q8_0, Q8_1, Q8_K.
 */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "cpu/cpu_impl.h"

static inline float fp16(uint16_t h) {
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

static inline uint16_t to_fp16(float v) {
    __fp16 f = (__fp16)v; /* round to nearest even */
    uint16_t h;
    memcpy(&h, &f, 2);
    return h;
}

/* acc += pairwise sums of a * b (16 int8 lanes; |a|,|b| <= 128 so int16 products are exact) */
AL_INLINE int32x4_t dot_s8(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

#define YROW(T, y, by, r) ((const T *)((const char *)(y) + (size_t)(r) * (by)))

/* ---- legacy 32-blocks against Q8_0: weights decoded to two int8x16 (elements 0..15, 16..31) --- */

AL_INLINE void dec_q4_0(const al_block_q4_0 *b, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t v = vld1q_u8(b->qs);
    *lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0f))), vdupq_n_s8(8));
    *hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
}
AL_INLINE void dec_q8_0(const al_block_q8_0 *b, int8x16_t *lo, int8x16_t *hi) {
    *lo = vld1q_s8(b->qs);
    *hi = vld1q_s8(b->qs + 16);
}
AL_INLINE void dec_iq4_nl(const al_block_iq4_nl *b, int8x16_t *lo, int8x16_t *hi) {
    const int8x16_t tab = vld1q_s8(al_kvalues_iq4nl);
    const uint8x16_t v = vld1q_u8(b->qs);
    *lo = vqtbl1q_s8(tab, vandq_u8(v, vdupq_n_u8(0x0f)));
    *hi = vqtbl1q_s8(tab, vshrq_n_u8(v, 4));
}

#define LEGACY_KERNEL(name, XT, DEC)                                                               \
    AL_INLINE void name##_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy,     \
                               size_t by, const int NR) {                                          \
        const XT *x = vx;                                                                          \
        const int64_t nb = n / 32;                                                                 \
        const al_block_q8_0 *y[AL_DOT_NR];                                                         \
        float32x4_t acc[AL_DOT_NR];                                                                \
        AL_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            y[r] = YROW(al_block_q8_0, vy, by, r);                                                 \
            acc[r] = vdupq_n_f32(0.0f);                                                            \
        }                                                                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            int8x16_t lo, hi;                                                                      \
            DEC(&x[i], &lo, &hi);                                                                  \
            const float dx = fp16(x[i].d);                                                         \
            AL_UNROLL for (int r = 0; r < NR; r++) {                                                         \
                int32x4_t p = dot_s8(vdupq_n_s32(0), lo, vld1q_s8(y[r][i].qs));                    \
                p = dot_s8(p, hi, vld1q_s8(y[r][i].qs + 16));                                      \
                acc[r] = vmlaq_n_f32(acc[r], vcvtq_f32_s32(p), dx * fp16(y[r][i].d));              \
            }                                                                                      \
        }                                                                                          \
        AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = vaddvq_f32(acc[r]);                               \
    }

LEGACY_KERNEL(k_q4_0, al_block_q4_0, dec_q4_0)
LEGACY_KERNEL(k_q8_0, al_block_q8_0, dec_q8_0)
LEGACY_KERNEL(k_iq4_nl, al_block_iq4_nl, dec_iq4_nl)

/* ---- K-quants against Q8_K ------------------------------------------------------------------ */

AL_INLINE void k_q4_K_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_q4_K *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    float sum[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        sum[r] = 0.0f;
    }
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    for (int64_t i = 0; i < nb; i++) {
        uint32_t u[4];
        al_unpack_k4_scales(x[i].scales, u);
        const uint8_t *sc = (const uint8_t *)u;
        const int16x8_t mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(sc + 8)));
        const float d = fp16(x[i].d), dmin = fp16(x[i].dmin);
        int32_t isum[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) {
            const int16x8_t pairs = vpaddq_s16(vld1q_s16(y[r][i].bsums), vld1q_s16(y[r][i].bsums + 8));
            const int32x4_t mp = vaddq_s32(vmull_s16(vget_low_s16(mins), vget_low_s16(pairs)),
                                           vmull_high_s16(mins, pairs));
            sum[r] -= dmin * y[r][i].d * (float)vaddvq_s32(mp);
            isum[r] = 0;
        }
        AL_UNROLL for (int j = 0; j < 4; j++) {
            const uint8x16_t b0 = vld1q_u8(x[i].qs + 32 * j), b1 = vld1q_u8(x[i].qs + 32 * j + 16);
            const int8x16_t l0 = vreinterpretq_s8_u8(vandq_u8(b0, m4)), l1 = vreinterpretq_s8_u8(vandq_u8(b1, m4));
            const int8x16_t h0 = vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), h1 = vreinterpretq_s8_u8(vshrq_n_u8(b1, 4));
            AL_UNROLL for (int r = 0; r < NR; r++) {
                const int8_t *q8 = y[r][i].qs + 64 * j;
                const int32x4_t pl = dot_s8(dot_s8(vdupq_n_s32(0), l0, vld1q_s8(q8)), l1, vld1q_s8(q8 + 16));
                const int32x4_t ph = dot_s8(dot_s8(vdupq_n_s32(0), h0, vld1q_s8(q8 + 32)), h1, vld1q_s8(q8 + 48));
                isum[r] += sc[2 * j] * vaddvq_s32(pl) + sc[2 * j + 1] * vaddvq_s32(ph);
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++) sum[r] += d * y[r][i].d * (float)isum[r];
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = sum[r];
}

AL_INLINE void k_q6_K_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_q6_K *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    float sum[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        sum[r] = 0.0f;
    }
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m3 = vdupq_n_u8(0x03), mc = vdupq_n_u8(0x0c), m30 = vdupq_n_u8(0x30);
    const int8x16_t k32 = vdupq_n_s8(32);
    for (int64_t i = 0; i < nb; i++) {
        const int8_t *sc = x[i].scales;
        const float d = fp16(x[i].d);
        int32_t isum[AL_DOT_NR] = {0};
        AL_UNROLL for (int h = 0; h < 2; h++) {
            AL_UNROLL for (int half = 0; half < 2; half++) {
                const uint8x16_t l0 = vld1q_u8(x[i].ql + 64 * h + 16 * half);
                const uint8x16_t l1 = vld1q_u8(x[i].ql + 64 * h + 32 + 16 * half);
                const uint8x16_t hb = vld1q_u8(x[i].qh + 32 * h + 16 * half);
                int8x16_t q[4];
                q[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4)));
                q[1] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(hb, mc), 2)));
                q[2] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l0, 4), vandq_u8(hb, m30)));
                q[3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(vshrq_n_u8(hb, 2), m30)));
                AL_UNROLL for (int k = 0; k < 4; k++) q[k] = vsubq_s8(q[k], k32);
                AL_UNROLL for (int r = 0; r < NR; r++) {
                    const int8_t *q8 = y[r][i].qs + 128 * h + 16 * half;
                    AL_UNROLL for (int k = 0; k < 4; k++)
                        isum[r] += sc[8 * h + 2 * k + half] * vaddvq_s32(dot_s8(vdupq_n_s32(0), q[k], vld1q_s8(q8 + 32 * k)));
                }
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++) sum[r] += d * y[r][i].d * (float)isum[r];
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = sum[r];
}

/* ---- float weights against F32 activations ----------------------------------------------------- */

AL_INLINE float32x4_t ld_f32(const float *p) { return vld1q_f32(p); }
AL_INLINE float32x4_t ld_f16(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
AL_INLINE float32x4_t ld_bf16(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
AL_INLINE float id_f32(float v) { return v; }

#define FLOAT_KERNEL(name, XT, LD, TOF)                                                            \
    AL_INLINE void name##_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy,     \
                               size_t by, const int NR) {                                          \
        const XT *x = vx;                                                                          \
        const float *y[AL_DOT_NR];                                                                 \
        float32x4_t acc[AL_DOT_NR][2];                                                             \
        AL_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            y[r] = YROW(float, vy, by, r);                                                         \
            acc[r][0] = acc[r][1] = vdupq_n_f32(0.0f);                                             \
        }                                                                                          \
        int64_t i = 0;                                                                             \
        for (; i + 8 <= n; i += 8) {                                                               \
            const float32x4_t x0 = LD(x + i), x1 = LD(x + i + 4);                                  \
            AL_UNROLL for (int r = 0; r < NR; r++) {                                                         \
                acc[r][0] = vfmaq_f32(acc[r][0], x0, vld1q_f32(y[r] + i));                         \
                acc[r][1] = vfmaq_f32(acc[r][1], x1, vld1q_f32(y[r] + i + 4));                     \
            }                                                                                      \
        }                                                                                          \
        AL_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            float t = vaddvq_f32(vaddq_f32(acc[r][0], acc[r][1]));                                 \
            for (int64_t j = i; j < n; j++) t += TOF(x[j]) * y[r][j];                              \
            s[r * bs] = t;                                                                         \
        }                                                                                          \
    }

FLOAT_KERNEL(k_f32, float, ld_f32, id_f32)
FLOAT_KERNEL(k_f16, uint16_t, ld_f16, fp16)
FLOAT_KERNEL(k_bf16, uint16_t, ld_bf16, al_bf16_to_f32)

AL_DOT_EXPORT(k_f32)
AL_DOT_EXPORT(k_f16)
AL_DOT_EXPORT(k_bf16)
AL_DOT_EXPORT(k_q4_0)
AL_DOT_EXPORT(k_q8_0)
AL_DOT_EXPORT(k_iq4_nl)
AL_DOT_EXPORT(k_q4_K)
AL_DOT_EXPORT(k_q6_K)

const al_dot_kernel al_dot_table_neon[AL_TYPE_COUNT] = {
    AL_DOT_ENTRY(AL_TYPE_F32, k_f32),   AL_DOT_ENTRY(AL_TYPE_F16, k_f16),       AL_DOT_ENTRY(AL_TYPE_BF16, k_bf16),
    AL_DOT_ENTRY(AL_TYPE_Q4_0, k_q4_0), AL_DOT_ENTRY(AL_TYPE_Q8_0, k_q8_0),     AL_DOT_ENTRY(AL_TYPE_IQ4_NL, k_iq4_nl),
    AL_DOT_ENTRY(AL_TYPE_Q4_K, k_q4_K), AL_DOT_ENTRY(AL_TYPE_Q6_K, k_q6_K),
};

/* ---- activation quantizers -------------------------------------------------------------------- */

AL_INLINE float absmax32(const float *x) {
    float32x4_t m = vabsq_f32(vld1q_f32(x));
    for (int k = 4; k < 32; k += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + k)));
    return vmaxvq_f32(m);
}

/* 32 values: qs = roundf(x * id) (vcvtaq: nearest, ties away from zero, as roundf); returns sum */
AL_INLINE int q8_block(const float *x, float id, int8_t *qs) {
    int32x4_t sum = vdupq_n_s32(0);
    for (int k = 0; k < 32; k += 8) {
        const int32x4_t a = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + k), id));
        const int32x4_t b = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + k + 4), id));
        sum = vaddq_s32(sum, vaddq_s32(a, b));
        vst1_s8(qs + k, vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))));
    }
    return vaddvq_s32(sum);
}

static void q8_0_neon(const float *x, al_block_q8_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        const float d = absmax32(x) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = to_fp16(d);
        (void)q8_block(x, id, y[i].qs);
    }
}

static void q8_1_neon(const float *x, al_block_q8_1 *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        const float d = absmax32(x) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const int sum = q8_block(x, id, y[i].qs);
        y[i].d = to_fp16(d);
        y[i].s = to_fp16((float)sum * d);
    }
}

static void q8_K_neon(const float *x, al_block_q8_K *y, int64_t n) {
    for (int64_t i = 0; i < n / AL_QK_K; i++, x += AL_QK_K) {
        float amax = 0.0f;
        for (int k = 0; k < AL_QK_K; k += 32) amax = fmaxf(amax, absmax32(x + k));
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0.0f; /* signed value of the first element reaching amax, as the reference */
        for (int k = 0; k < AL_QK_K; k++)
            if (fabsf(x[k]) == amax) {
                max = x[k];
                break;
            }
        const float iscale = -127.0f / max;
        const int32x4_t lim = vdupq_n_s32(127);
        for (int k = 0; k < AL_QK_K; k += 16) {
            int32x4_t v[4];
            AL_UNROLL for (int j = 0; j < 4; j++) /* vcvtnq: nearest, ties to even, as the reference */
                v[j] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + k + 4 * j), iscale)), lim);
            const int16x8_t a = vcombine_s16(vqmovn_s32(v[0]), vqmovn_s32(v[1]));
            const int16x8_t b = vcombine_s16(vqmovn_s32(v[2]), vqmovn_s32(v[3]));
            vst1q_s8(y[i].qs + k, vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
            y[i].bsums[k / 16] = (int16_t)vaddvq_s32(vaddq_s32(vaddq_s32(v[0], v[1]), vaddq_s32(v[2], v[3])));
        }
        y[i].d = 1.0f / iscale;
    }
}

bool al_quant_act_neon(al_type vt, const float *x, void *out, int64_t n) {
    switch (vt) {
    case AL_TYPE_Q8_0: q8_0_neon(x, out, n); return true;
    case AL_TYPE_Q8_1: q8_1_neon(x, out, n); return true;
    case AL_TYPE_Q8_K: q8_K_neon(x, out, n); return true;
    case AL_TYPE_F32: memcpy(out, x, (size_t)n * sizeof(float)); return true;
    default: return false;
    }
}

bool al_widen_neon(al_type t, const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    if (t == AL_TYPE_F16) {
        for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, ld_f16(h + i));
        for (; i < n; i++) dst[i] = fp16(h[i]);
        return true;
    }
    if (t == AL_TYPE_BF16) {
        for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, ld_bf16(h + i));
        for (; i < n; i++) dst[i] = al_bf16_to_f32(h[i]);
        return true;
    }
    return false;
}
