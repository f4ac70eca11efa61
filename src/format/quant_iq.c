/*
 * quant_iq.c — reference (scalar) IQ4_NL and IQ4_XS row converters.
 * Both store 4-bit indices into the non-linear codebook al_kvalues_iq4nl (byte j of a 32-element
 * block: element j low nibble, element j + 16 high nibble). IQ4_NL: blocks of 32 with a fp16 scale.
 * IQ4_XS: super-blocks of 256, fp16 d and per-32 6-bit scales ls (x ~ d * (ls - 32) * value), low
 * 4 bits in scales_l (two per byte), high 2 bits in scales_h (2 bits per block).
 * Quantization: ggml's best-scale search over the grid (15 trial scales around max / value[0]),
 * weighted by x^2, or by imatrix * sqrt(sigma2 + x^2) when importance weights are given.
 */
#include "format/quant_impl.h"
#include "format/quant_search.h"

#define NTRY 7

/*
 * O(1) replacement for al_best_index_int8 over al_kvalues_iq4nl with identical results: the codebook
 * entries are integers, so for val[0] < x < val[15] the lower neighbour of x is the last entry
 * <= floor(x), looked up in lo[floor(x) + 128]. Built per call (no global state).
 */
typedef struct iq4_lut {
    uint8_t lo[256];
    float val[16]; /* the codebook as floats */
} iq4_lut;

static void iq4_lut_init(iq4_lut *t) {
    int k = 0;
    for (int f = -128; f < 128; f++) {
        while (k < 15 && al_kvalues_iq4nl[k + 1] <= f) k++;
        t->lo[f + 128] = (uint8_t)k;
    }
    for (int i = 0; i < 16; i++) t->val[i] = al_kvalues_iq4nl[i];
}

static inline int iq4_index(const iq4_lut *t, float x) {
    const float *val = t->val;
    if (x <= val[0]) return 0;
    if (x >= val[15] || x != x) return 15;
    int k = t->lo[(int)(x + 128.0f)]; /* x + 128 > 1: truncation is floor, up to rounding of the sum */
    if (x < val[k]) k--;               /* ... which may land one entry high */
    return x - val[k] < val[k + 1] - x ? k : k + 1;
}

void al_to_float_iq4_nl(const void *src, float *dst, int64_t n) {
    const al_block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / AL_QK4_NL; i++, dst += AL_QK4_NL) {
        const float d = al_f16_to_f32(b[i].d);
        for (int j = 0; j < AL_QK4_NL / 2; j++) {
            dst[j] = d * al_kvalues_iq4nl[b[i].qs[j] & 0xf];
            dst[j + AL_QK4_NL / 2] = d * al_kvalues_iq4nl[b[i].qs[j] >> 4];
        }
    }
}

void al_to_float_iq4_xs(const void *src, float *dst, int64_t n) {
    const al_block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / AL_QK_K; i++) {
        const float d = al_f16_to_f32(b[i].d);
        const uint8_t *qs = b[i].qs;
        for (int ib = 0; ib < AL_QK_K / 32; ib++, dst += 32, qs += 16) {
            const int ls = ((b[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((b[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (ls - 32);
            for (int j = 0; j < 16; j++) {
                dst[j] = dl * al_kvalues_iq4nl[qs[j] & 0xf];
                dst[j + 16] = dl * al_kvalues_iq4nl[qs[j] >> 4];
            }
        }
    }
}

/*
 * Best scale of one block of 32 over the codebook; returns it (0 for an all-zero block) and leaves
 * the indices of the best candidate's first pass in L (the caller requantizes with the stored scale).
 */
static float iq4_block_scale(const iq4_lut *lut, const float *xb, const float *weight, uint8_t *L) {
    const int8_t *values = al_kvalues_iq4nl;
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++) {
        if (fabsf(xb[j]) > amax) {
            amax = fabsf(xb[j]);
            max = xb[j];
        }
    }
    if (amax < AL_GROUP_MAX_EPS) {
        memset(L, 0, 32);
        return 0.0f;
    }
    float d = -max / values[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        const int l = iq4_index(lut, id * xb[j]);
        L[j] = (uint8_t)l;
        const float q = lut->val[l], w = weight[j];
        sumqx += w * q * xb[j];
        sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int itry = -NTRY; itry <= NTRY; itry++) {
        id = (itry + values[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const int l = iq4_index(lut, id * xb[j]);
            const float q = lut->val[l], w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* weights of the 32 elements of xb: qw * sqrt(sigma2 + x^2) or x^2 */
static void iq4_weights(const float *xb, const float *qw, float sigma2, float *w) {
    for (int j = 0; j < 32; j++) w[j] = qw ? qw[j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
}

static void iq4_pack(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
}

void al_from_float_iq4_nl(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_iq4_nl *y = dst;
    float w[32];
    uint8_t L[32];
    iq4_lut lut;
    iq4_lut_init(&lut);
    for (int64_t ib = 0; ib < n / AL_QK4_NL; ib++) {
        const float *xb = src + ib * AL_QK4_NL;
        float sigma2 = 0;
        for (int j = 0; j < 32; j++) sigma2 += xb[j] * xb[j];
        sigma2 *= 2.f / 32;
        iq4_weights(xb, imatrix ? imatrix + ib * AL_QK4_NL : NULL, sigma2, w);
        const float d = iq4_block_scale(&lut, xb, w, L);
        y[ib].d = al_f32_to_f16(d);
        const float id = d ? 1 / d : 0.0f;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_index(&lut, id * xb[j]);
        iq4_pack(L, y[ib].qs);
    }
}

void al_from_float_iq4_xs(const float *src, void *dst, int64_t n, const float *imatrix) {
    al_block_iq4_xs *y = dst;
    float w[32], scales[AL_QK_K / 32];
    uint8_t L[AL_QK_K];
    iq4_lut lut;
    iq4_lut_init(&lut);
    for (int64_t i = 0; i < n / AL_QK_K; i++) {
        const float *x = src + i * AL_QK_K;
        float sigma2 = 0;
        for (int j = 0; j < AL_QK_K; j++) sigma2 += x[j] * x[j];
        sigma2 *= 2.f / AL_QK_K;
        float max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < AL_QK_K / 32; ib++) {
            iq4_weights(x + 32 * ib, imatrix ? imatrix + i * AL_QK_K + 32 * ib : NULL, sigma2, w);
            scales[ib] = iq4_block_scale(&lut, x + 32 * ib, w, L + 32 * ib);
            if (fabsf(scales[ib]) > amax_scale) {
                amax_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        const float d = -max_scale / 32;
        y[i].d = al_f32_to_f16(d);
        y[i].scales_h = 0;
        memset(y[i].scales_l, 0, sizeof y[i].scales_l);
        const float id = d ? 1 / d : 0.0f;
        for (int ib = 0; ib < AL_QK_K / 32; ib++) {
            const int l = al_clampi(al_nearest_int(id * scales[ib]), -32, 31);
            const float dl = d * l;
            const float idl = dl ? 1 / dl : 0.0f;
            for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)iq4_index(&lut, idl * x[32 * ib + j]);
            const int lu = l + 32;
            y[i].scales_l[ib / 2] |= (uint8_t)((lu & 0xf) << (4 * (ib % 2)));
            y[i].scales_h |= (uint16_t)((lu >> 4) << (2 * ib));
            iq4_pack(L + 32 * ib, y[i].qs + 16 * ib);
        }
    }
}
