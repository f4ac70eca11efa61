/*
 * quant_k.c — reference (scalar) K-quant row converters: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
 * Super-blocks of 256 elements with a fp16 super-scale d (and dmin for the affine types) and
 * per-sub-block integer scales: Q2_K/Q3_K/Q6_K 16 sub-blocks of 16, Q4_K/Q5_K 8 sub-blocks of 32.
 * Dequantization evaluates in ggml's order ((d * sc) * q, then - (dmin * m)) so it is bit-identical.
 * Quantizers: without importance weights ggml's *_ref searches; with weights those of
 * quantize_row_*_impl (weights qw * sqrt(sigma2 + x^2), sub-block scales fitted by make_qp_quants).
 */
#include "format/quant_impl.h"
#include "format/quant_search.h"

#define QK AL_QK_K

/* Pack 256 two-bit levels: byte l of each 32-byte group g holds elements 128 g + l + 32 k at bits 2k. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < QK; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

static float sum_sq(const float *x, int n) {
    float s = 0;
    for (int j = 0; j < n; j++) s += x[j] * x[j];
    return s;
}

/* ---- Q2_K ------------------------------------------------------------------------------------ */

void al_to_float_q2_K(const void *src, float *dst, int64_t n) {
    const al_block_q2_K *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = al_f16_to_f32(b[i].d);
        const float min = al_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        float *y = dst + i * QK;
        int is = 0;
        for (int k = 0; k < QK; k += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    const uint8_t sc = b[i].scales[is++];
                    const float dl = d * (sc & 0xF);
                    const float ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* Requantize 16 sub-blocks of 16 with the stored (fp16) scales/mins; L in 0..3. */
static void q2_K_requantize(const float *x, const al_block_q2_K *y, uint8_t *L) {
    const float dd = al_f16_to_f32(y->d), dmin = al_f16_to_f32(y->dmin);
    for (int j = 0; j < QK / 16; j++) {
        const float d = dd * (y->scales[j] & 0xF);
        if (!d) continue;
        const float dm = dmin * (y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (uint8_t)al_clampi(al_nearest_int((x[16 * j + ii] + dm) / d), 0, 3);
    }
}

void al_from_float_q2_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q2_K *y = dst;
    uint8_t L[QK], Laux[16];
    float weights[16], mins[QK / 16], scales[QK / 16];
    for (int64_t i = 0; i < n / QK; i++) {
        const float *x = src + i * QK;
        if (imatrix) {
            const float *qwb = imatrix + i * QK;
            const float sigma2 = sum_sq(x, QK) / QK;
            float sw[QK / 16];
            uint8_t Ls[QK / 16], Lm[QK / 16];
            for (int j = 0; j < QK / 16; j++) {
                float s = 0;
                for (int l = 0; l < 16; l++) {
                    weights[l] = qwb[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
                    s += weights[l];
                }
                sw[j] = s;
                scales[j] = al_make_qkx_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
            }
            const float dm = al_make_qp_quants(QK / 16, 15, scales, Ls, sw);
            const float mm = al_make_qp_quants(QK / 16, 15, mins, Lm, sw);
            y[i].d = al_f32_to_f16(dm);
            y[i].dmin = al_f32_to_f16(mm);
            for (int j = 0; j < QK / 16; j++) y[i].scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
        } else {
            const float q4scale = 15.f;
            float max_scale = 0, max_min = 0;
            for (int j = 0; j < QK / 16; j++) {
                for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
                scales[j] = al_make_qkx_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
                if (scales[j] > max_scale) max_scale = scales[j];
                if (mins[j] > max_min) max_min = mins[j];
            }
            if (max_scale > 0) {
                const float iscale = q4scale / max_scale;
                for (int j = 0; j < QK / 16; j++) y[i].scales[j] = (uint8_t)al_clampi(al_nearest_int(iscale * scales[j]), 0, 15);
                y[i].d = al_f32_to_f16(max_scale / q4scale);
            } else {
                memset(y[i].scales, 0, sizeof y[i].scales);
                y[i].d = al_f32_to_f16(0.f);
            }
            if (max_min > 0) {
                const float iscale = q4scale / max_min;
                for (int j = 0; j < QK / 16; j++)
                    y[i].scales[j] |= (uint8_t)(al_clampi(al_nearest_int(iscale * mins[j]), 0, 15) << 4);
                y[i].dmin = al_f32_to_f16(max_min / q4scale);
            } else {
                y[i].dmin = al_f32_to_f16(0.f);
            }
        }
        q2_K_requantize(x, &y[i], L);
        pack_2bit(L, y[i].qs);
    }
}

/* ---- Q3_K ------------------------------------------------------------------------------------ */

/* 6-bit scale j (0..15) of a Q3_K super-block, minus its offset 32. */
static inline int q3_K_scale(const uint8_t *s, int j) {
    const int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* ls[j] in 0..63 -> the 12 packed scale bytes */
static void q3_K_pack_scales(const int *ls, uint8_t *s) {
    memset(s, 0, 12);
    for (int j = 0; j < QK / 16; j++) {
        const int l = ls[j];
        if (j < 8) s[j] = (uint8_t)(l & 0xF);
        else s[j - 8] |= (uint8_t)((l & 0xF) << 4);
        s[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
}

void al_to_float_q3_K(const void *src, float *dst, int64_t n) {
    const al_block_q3_K *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d_all = al_f16_to_f32(b[i].d);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        float *y = dst + i * QK;
        int is = 0;
        uint8_t m = 1;
        for (int k = 0; k < QK; k += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int half = 0; half < 2; half++) {
                    const float dl = d_all * q3_K_scale(b[i].scales, is++);
                    for (int l = 16 * half; l < 16 * half + 16; l++)
                        *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

void al_from_float_q3_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q3_K *y = dst;
    int8_t L[QK];
    float scales[QK / 16];
    int ls[QK / 16];
    for (int64_t i = 0; i < n / QK; i++) {
        const float *x = src + i * QK;
        if (imatrix) {
            const float *qwb = imatrix + i * QK;
            const float sigma2 = 2 * sum_sq(x, QK) / QK;
            float weight[16], sw[QK / 16];
            int8_t Ls[QK / 16];
            for (int j = 0; j < QK / 16; j++) {
                float s = 0;
                for (int l = 0; l < 16; l++) {
                    weight[l] = qwb[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
                    s += weight[l];
                }
                sw[j] = s;
                scales[j] = al_make_qx_quants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
            }
            const float d_block = al_make_qx_quants(QK / 16, 32, scales, Ls, 1, sw);
            for (int j = 0; j < QK / 16; j++) ls[j] = Ls[j];
            q3_K_pack_scales(ls, y[i].scales);
            y[i].d = al_f32_to_f16(d_block);
        } else {
            float max_scale = 0, amax = 0;
            for (int j = 0; j < QK / 16; j++) {
                scales[j] = al_make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
                if (fabsf(scales[j]) > amax) {
                    amax = fabsf(scales[j]);
                    max_scale = scales[j];
                }
            }
            if (max_scale) {
                const float iscale = -32.f / max_scale;
                for (int j = 0; j < QK / 16; j++) ls[j] = al_clampi(al_nearest_int(iscale * scales[j]), -32, 31) + 32;
                q3_K_pack_scales(ls, y[i].scales);
                y[i].d = al_f32_to_f16(1 / iscale);
            } else {
                memset(y[i].scales, 0, 12);
                y[i].d = al_f32_to_f16(0.f);
            }
        }
        /* requantize with the stored scales; L in 0..7 */
        const float dd = al_f16_to_f32(y[i].d);
        for (int j = 0; j < QK / 16; j++) {
            const float d = dd * q3_K_scale(y[i].scales, j);
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (int8_t)(al_clampi(al_nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
        }
        /* high bit of element j goes to hmask[j % 32] bit j / 32 */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        uint8_t U[QK];
        for (int j = 0; j < QK; j++) {
            int l = L[j];
            if (l > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                l -= 4;
            }
            U[j] = (uint8_t)l;
        }
        pack_2bit(U, y[i].qs);
    }
}

/* ---- Q4_K / Q5_K ------------------------------------------------------------------------------ */

/* ls, lm in 0..63 for 8 sub-blocks -> 12 packed bytes (inverse of al_get_scale_min_k4) */
static void k4_pack_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *s) {
    for (int j = 0; j < QK / 32; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/*
 * Shared Q4_K/Q5_K super-block search: fills d/dmin/scales and L (0..nmax) for 256 elements.
 * ref_rmin/ref_rdelta/ref_nstep: the unweighted reference search parameters of the type.
 */
static void k4_quantize_super(const float *x, const float *qw, int nmax, float ref_rmin, float ref_rdelta, int ref_nstep,
                              al_half *d_out, al_half *dmin_out, uint8_t *sc_out, uint8_t *L) {
    uint8_t Laux[32], ls[QK / 32], lm[QK / 32];
    float weights[32], mins[QK / 32], scales[QK / 32];
    if (qw) {
        const float sigma2 = 2 * sum_sq(x, QK) / QK;
        float sw[QK / 32];
        for (int j = 0; j < QK / 32; j++) {
            float s = 0;
            for (int l = 0; l < 32; l++) {
                weights[l] = qw[32 * j + l] * sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
                s += weights[l];
            }
            sw[j] = s;
            scales[j] = al_make_qkx_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.9f, 0.05f, 36, false);
        }
        const float d_block = al_make_qp_quants(QK / 32, 63, scales, ls, sw);
        const float m_block = al_make_qp_quants(QK / 32, 63, mins, lm, sw);
        k4_pack_scales(ls, lm, sc_out);
        *d_out = al_f32_to_f16(d_block);
        *dmin_out = al_f32_to_f16(m_block);
    } else {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK / 32; j++) {
            const float av_x = sqrtf(sum_sq(x + 32 * j, 32) / 32);
            for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = al_make_qkx_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, ref_rmin, ref_rdelta,
                                           ref_nstep, false);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < QK / 32; j++) {
            ls[j] = (uint8_t)al_clampi(al_nearest_int(inv_scale * scales[j]), 0, 63);
            lm[j] = (uint8_t)al_clampi(al_nearest_int(inv_min * mins[j]), 0, 63);
        }
        k4_pack_scales(ls, lm, sc_out);
        *d_out = al_f32_to_f16(max_scale / 63.f);
        *dmin_out = al_f32_to_f16(max_min / 63.f);
    }
    const float dd = al_f16_to_f32(*d_out), dmin = al_f16_to_f32(*dmin_out);
    for (int j = 0; j < QK / 32; j++) {
        uint8_t sc, m;
        al_get_scale_min_k4(j, sc_out, &sc, &m);
        const float d = dd * sc;
        if (!d) continue;
        const float dm = dmin * m;
        for (int ii = 0; ii < 32; ii++) L[32 * j + ii] = (uint8_t)al_clampi(al_nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

void al_to_float_q4_K(const void *src, float *dst, int64_t n) {
    const al_block_q4_K *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = al_f16_to_f32(b[i].d), min = al_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        float *y = dst + i * QK;
        for (int j = 0; j < QK / 32; j += 2, q += 32) {
            uint8_t sc, m;
            al_get_scale_min_k4(j, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            al_get_scale_min_k4(j + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void al_from_float_q4_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q4_K *y = dst;
    uint8_t L[QK];
    for (int64_t i = 0; i < n / QK; i++) {
        k4_quantize_super(src + i * QK, imatrix ? imatrix + i * QK : NULL, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin,
                          y[i].scales, L);
        /* byte l of 32-byte group g: element 64 g + l (low nibble), 64 g + 32 + l (high) */
        for (int j = 0; j < QK; j += 64)
            for (int l = 0; l < 32; l++) y[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void al_to_float_q5_K(const void *src, float *dst, int64_t n) {
    const al_block_q5_K *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = al_f16_to_f32(b[i].d), min = al_f16_to_f32(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        float *y = dst + i * QK;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < QK / 32; j += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            al_get_scale_min_k4(j, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            al_get_scale_min_k4(j + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

void al_from_float_q5_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q5_K *y = dst;
    uint8_t L[QK];
    for (int64_t i = 0; i < n / QK; i++) {
        k4_quantize_super(src + i * QK, imatrix ? imatrix + i * QK : NULL, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin,
                          y[i].scales, L);
        /* low nibbles as Q4_K; bit 4 of element 64 g + l -> qh[l] bit 2g, of 64 g + 32 + l -> bit 2g + 1 */
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int g = 0; g < QK / 64; g++) {
            for (int l = 0; l < 32; l++) {
                const int l1 = L[64 * g + l], l2 = L[64 * g + 32 + l];
                y[i].qh[l] |= (uint8_t)(((l1 >> 4) << (2 * g)) | ((l2 >> 4) << (2 * g + 1)));
                y[i].qs[32 * g + l] = (uint8_t)((l1 & 0xF) | ((l2 & 0xF) << 4));
            }
        }
    }
}

/* ---- Q6_K ------------------------------------------------------------------------------------ */

void al_to_float_q6_K(const void *src, float *dst, int64_t n) {
    const al_block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK; i++) {
        const float d = al_f16_to_f32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        float *y = dst + i * QK;
        for (int k = 0; k < QK; k += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

void al_from_float_q6_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_q6_K *y = dst;
    int8_t L[QK];
    float scales[QK / 16];
    for (int64_t i = 0; i < n / QK; i++) {
        const float *x = src + i * QK;
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK / 16; ib++) {
            /* like ggml, the importance weights are used as they are (no sigma2 term) */
            const float s = al_make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, imatrix ? imatrix + i * QK + 16 * ib : NULL);
            scales[ib] = s;
            if (fabsf(s) > max_abs_scale) {
                max_abs_scale = fabsf(s);
                max_scale = s;
            }
        }
        if (max_abs_scale < AL_GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = al_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < QK / 16; ib++) y[i].scales[ib] = (int8_t)al_clampi(al_nearest_int(iscale * scales[ib]), -128, 127);
        const float dd = al_f16_to_f32(y[i].d);
        for (int j = 0; j < QK / 16; j++) {
            const float d = dd * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (int8_t)(al_clampi(al_nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

/* ---- Q8_K ------------------------------------------------------------------------------------ */

void al_to_float_q8_K(const void *src, float *dst, int64_t n) {
    const al_block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK; i++)
        for (int j = 0; j < QK; j++) dst[i * QK + j] = b[i].d * b[i].qs[j];
}

void al_from_float_q8_K(const float *src, void *dst, int64_t n, const float *imatrix) {
    (void)imatrix; /* activation format: no importance weights */
    al_block_q8_K *y = dst;
    for (int64_t i = 0; i < n / QK; i++) {
        const float *x = src + i * QK;
        float max = 0, amax = 0;
        for (int j = 0; j < QK; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK; j++) y[i].qs[j] = (int8_t)al_clampi(al_nearest_int(iscale * x[j]), -127, 127);
        for (int j = 0; j < QK / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[16 * j + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}
