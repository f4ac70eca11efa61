/*
 * quant_legacy.c — reference (scalar) Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 row converters.
 * Blocks of 32: element j of a block holds x ~ d * q (Q*_0) or x ~ d * q + m (Q*_1). In the packed
 * nibbles, byte j carries elements j (low nibble) and j + 16 (high nibble); Q5 keeps bit 4 of element
 * j in bit j of the little-endian 32-bit qh. Dequantization evaluates exactly as ggml does
 * (q * d, then + m) so the results are bit-identical. Without importance weights the quantizers are
 * ggml's *_ref ones; with weights they run the weighted searches of quantize_row_*_impl.
 */
#include "format/quant_impl.h"
#include "format/quant_search.h"

#define QK 32

static inline uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) | ((uint32_t)qh[3] << 24);
}
static inline void store_qh(uint8_t qh[4], uint32_t v) {
    for (int i = 0; i < 4; i++) qh[i] = (uint8_t)(v >> (8 * i));
}

/* (int)v for v in [0, hi], saturating outside (and 0 for NaN); the reference's truncating casts. */
static inline int trunc_sat(float v, int hi) {
    if (!(v >= 0.0f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* sigma2 = mean of x^2 over the row: the per-row term of the importance weights. */
static float row_sigma2(const float *x, int64_t n) {
    float s = 0;
    for (int64_t j = 0; j < n; j++) s += x[j] * x[j];
    return s / (float)n;
}

static void make_weights(const float *xb, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < QK; j++) w[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
}

/* ---- Q4_0 ------------------------------------------------------------------------------------ */

void al_to_float_q4_0(const void *src, float *dst, int64_t n) {
    const al_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = al_f16_to_f32(b[i].d);
        for (int j = 0; j < QK / 2; j++) {
            const int x0 = (b[i].qs[j] & 0x0F) - 8;
            const int x1 = (b[i].qs[j] >> 4) - 8;
            dst[j] = x0 * d;
            dst[j + QK / 2] = x1 * d;
        }
    }
}

void al_from_float_q4_0(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q4_0 *y = dst;
    const int64_t nb = n / QK;
    if (imatrix) {
        const float sigma2 = row_sigma2(src, n);
        float w[QK];
        int8_t L[QK];
        for (int64_t ib = 0; ib < nb; ib++) {
            const float *xb = src + ib * QK;
            make_weights(xb, imatrix + ib * QK, sigma2, w);
            const float d = al_make_qx_quants(QK, 8, xb, L, 1, w);
            y[ib].d = al_f32_to_f16(d);
            for (int j = 0; j < QK / 2; j++) y[ib].qs[j] = (uint8_t)(L[j] | (L[j + QK / 2] << 4));
        }
        return;
    }
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + i * QK;
        float amax = 0, max = 0;
        for (int j = 0; j < QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = al_f32_to_f16(d);
        for (int j = 0; j < QK / 2; j++) {
            const int q0 = trunc_sat(x[j] * id + 8.5f, 15);
            const int q1 = trunc_sat(x[j + QK / 2] * id + 8.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- Q4_1 ------------------------------------------------------------------------------------ */

void al_to_float_q4_1(const void *src, float *dst, int64_t n) {
    const al_block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = al_f16_to_f32(b[i].d);
        const float m = al_f16_to_f32(b[i].m);
        for (int j = 0; j < QK / 2; j++) {
            const int x0 = b[i].qs[j] & 0x0F;
            const int x1 = b[i].qs[j] >> 4;
            dst[j] = x0 * d + m;
            dst[j + QK / 2] = x1 * d + m;
        }
    }
}

void al_from_float_q4_1(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q4_1 *y = dst;
    const int64_t nb = n / QK;
    if (imatrix) {
        const float sigma2 = row_sigma2(src, n);
        float w[QK], neg_min;
        uint8_t L[QK], Laux[QK];
        for (int64_t ib = 0; ib < nb; ib++) {
            const float *xb = src + ib * QK;
            make_weights(xb, imatrix + ib * QK, sigma2, w);
            const float d = al_make_qkx_quants(QK, 15, xb, w, L, &neg_min, Laux, -0.9f, 0.05f, 36, false);
            y[ib].d = al_f32_to_f16(d);
            y[ib].m = al_f32_to_f16(-neg_min);
            for (int j = 0; j < QK / 2; j++) y[ib].qs[j] = (uint8_t)(L[j] | (L[j + QK / 2] << 4));
        }
        return;
    }
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + i * QK;
        float min = INFINITY, max = -INFINITY;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        if (!(min <= max)) min = max = 0; /* all NaN */
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = al_f32_to_f16(d);
        y[i].m = al_f32_to_f16(min);
        for (int j = 0; j < QK / 2; j++) {
            const int q0 = trunc_sat((x[j] - min) * id + 0.5f, 15);
            const int q1 = trunc_sat((x[j + QK / 2] - min) * id + 0.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- Q5_0 ------------------------------------------------------------------------------------ */

void al_to_float_q5_0(const void *src, float *dst, int64_t n) {
    const al_block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = al_f16_to_f32(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QK / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            const int x0 = ((b[i].qs[j] & 0x0F) | h0) - 16;
            const int x1 = ((b[i].qs[j] >> 4) | h1) - 16;
            dst[j] = x0 * d;
            dst[j + QK / 2] = x1 * d;
        }
    }
}

/* L: 32 levels 0..31 -> low nibbles in qs, bit 4 in qh */
static void pack_q5(const uint8_t *L, uint8_t qs[QK / 2], uint8_t qh_out[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        const uint32_t l0 = L[j], l1 = L[j + QK / 2];
        qs[j] = (uint8_t)((l0 & 0x0F) | ((l1 & 0x0F) << 4));
        qh |= ((l0 & 0x10u) >> 4) << j;
        qh |= ((l1 & 0x10u) >> 4) << (j + QK / 2);
    }
    store_qh(qh_out, qh);
}

void al_from_float_q5_0(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q5_0 *y = dst;
    const int64_t nb = n / QK;
    uint8_t L[QK];
    if (imatrix) {
        const float sigma2 = row_sigma2(src, n);
        float w[QK];
        int8_t Ls[QK];
        for (int64_t ib = 0; ib < nb; ib++) {
            const float *xb = src + ib * QK;
            make_weights(xb, imatrix + ib * QK, sigma2, w);
            const float d = al_make_qx_quants(QK, 16, xb, Ls, 1, w);
            y[ib].d = al_f32_to_f16(d);
            for (int j = 0; j < QK; j++) L[j] = (uint8_t)Ls[j];
            pack_q5(L, y[ib].qs, y[ib].qh);
        }
        return;
    }
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + i * QK;
        float amax = 0, max = 0;
        for (int j = 0; j < QK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = al_f32_to_f16(d);
        for (int j = 0; j < QK; j++) L[j] = (uint8_t)trunc_sat(x[j] * id + 16.5f, 31);
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

/* ---- Q5_1 ------------------------------------------------------------------------------------ */

void al_to_float_q5_1(const void *src, float *dst, int64_t n) {
    const al_block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = al_f16_to_f32(b[i].d);
        const float m = al_f16_to_f32(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < QK / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            const int x0 = (b[i].qs[j] & 0x0F) | h0;
            const int x1 = (b[i].qs[j] >> 4) | h1;
            dst[j] = x0 * d + m;
            dst[j + QK / 2] = x1 * d + m;
        }
    }
}

void al_from_float_q5_1(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q5_1 *y = dst;
    const int64_t nb = n / QK;
    uint8_t L[QK];
    if (imatrix) {
        const float sigma2 = row_sigma2(src, n);
        float w[QK], neg_min;
        uint8_t Laux[QK];
        for (int64_t ib = 0; ib < nb; ib++) {
            const float *xb = src + ib * QK;
            make_weights(xb, imatrix + ib * QK, sigma2, w);
            const float d = al_make_qkx_quants(QK, 31, xb, w, L, &neg_min, Laux, -0.9f, 0.05f, 36, false);
            y[ib].d = al_f32_to_f16(d);
            y[ib].m = al_f32_to_f16(-neg_min);
            pack_q5(L, y[ib].qs, y[ib].qh);
        }
        return;
    }
    for (int64_t i = 0; i < nb; i++) {
        const float *x = src + i * QK;
        float min = INFINITY, max = -INFINITY;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        if (!(min <= max)) min = max = 0;
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = al_f32_to_f16(d);
        y[i].m = al_f32_to_f16(min);
        for (int j = 0; j < QK; j++) L[j] = (uint8_t)trunc_sat((x[j] - min) * id + 0.5f, 31);
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

/* ---- Q8_0 / Q8_1 ------------------------------------------------------------------------------ */

void al_to_float_q8_0(const void *src, float *dst, int64_t n) {
    const al_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = al_f16_to_f32(b[i].d);
        for (int j = 0; j < QK; j++) dst[j] = b[i].qs[j] * d;
    }
}

/* qs[j] = round(x[j] / d) with d = amax / 127 (rounded half away from zero); returns d, *sum = sum qs */
static float quantize_q8_block(const float *x, int8_t *qs, int *sum) {
    float amax = 0;
    for (int j = 0; j < QK; j++) {
        const float a = fabsf(x[j]);
        if (a > amax) amax = a;
    }
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    int s = 0;
    for (int j = 0; j < QK; j++) {
        const float v = x[j] * id;
        /* |v| <= 127 up to rounding; NaN -> 0 */
        const int q = v == v ? (int)roundf(v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v) : 0;
        qs[j] = (int8_t)q;
        s += q;
    }
    *sum = s;
    return d;
}

void al_from_float_q8_0(const float *src, void *dst, int64_t n, const float *imatrix) {
    (void)imatrix; /* like ggml, Q8_0 ignores importance weights */
    al_block_q8_0 *y = dst;
    int sum;
    for (int64_t i = 0; i < n / QK; i++) y[i].d = al_f32_to_f16(quantize_q8_block(src + i * QK, y[i].qs, &sum));
}

void al_to_float_q8_1(const void *src, float *dst, int64_t n) {
    const al_block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK; i++, dst += QK) {
        const float d = al_f16_to_f32(b[i].d);
        for (int j = 0; j < QK; j++) dst[j] = b[i].qs[j] * d;
    }
}

void al_from_float_q8_1(const float *src, void *dst, int64_t n, const float *imatrix) {
    (void)imatrix;
    al_block_q8_1 *y = dst;
    int sum;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = quantize_q8_block(src + i * QK, y[i].qs, &sum);
        y[i].d = al_f32_to_f16(d);
        y[i].s = al_f32_to_f16(sum * d);
    }
}
