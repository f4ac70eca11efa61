/*
 * quant_search.h (internal) — scale searches shared by the reference quantizers (quant_legacy.c,
 * quant_k.c, quant_iq.c). They follow the algorithms of ggml's reference quantizers so that the
 * produced blocks (and their error) match llama.cpp's.
 *
 * Conventions: x holds n values of one (sub-)block; weights w (n values, >= 0) or NULL where noted;
 * L receives the unsigned level of every element. Returned scales are such that x[i] ~ scale * q[i]
 * (symmetric searches) or x[i] ~ scale * L[i] - min (affine searches, *neg_min = min >= 0).
 */
#ifndef ALLOY_QUANT_SEARCH_H
#define ALLOY_QUANT_SEARCH_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Bit-exact dequantization and reference-identical quantization need every a * b + c evaluated as
 * two rounded operations: forbid FMA contraction in the files that include this header, even when
 * the library is built with -march=native. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Blocks whose max |x| is below this are treated as all zero. */
#define AL_GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even, through the 1.5 * 2^23 float trick; saturates at +-2^22 - 1 so
 * that extreme ratios (e.g. x / tiny scale) cannot wrap. NaN maps to 0. */
static inline int al_nearest_int(float f) {
    if (!(fabsf(f) <= 4194303.0f)) return f > 0 ? 4194303 : f < 0 ? -4194303 : 0;
    float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int al_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Symmetric search on levels [-nmax, nmax - 1] stored as L = l + nmax. rmse_type 0: plain
 * round-from-max; 1: weighted least squares with w = qw or x^2 and a sweep over 18 trial scales
 * around nmax / max. Returns the scale (0 for an all-zero block). */
float al_make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type, const float *qw);

/* Symmetric search on levels [-nmax, nmax - 1] (L = l + nmax) with weights x^2 and coordinate
 * descent on single levels (ggml make_q3_quants with do_rmse). Returns the scale. */
float al_make_q3_quants(int n, int nmax, const float *x, int8_t *L);

/* Affine search (levels 0..nmax, x ~ scale * L - neg_min, min clamped to <= 0) with least-squares
 * refits over nstep + 1 trial inverse scales (rmin + rdelta * is + nmax) / (max - min).
 * weights NULL means x^2. use_mad: minimise weighted |err| instead of err^2. */
float al_make_qkx_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *neg_min,
                         uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad);

/* Positive values only (e.g. sub-block scales): levels 0..nmax minimising sum w (x - scale L)^2
 * (w required), then coordinate descent. Returns the scale. */
float al_make_qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *w);

/* Index of the nearest entry of the sorted table val[0..n-1] (ties toward the upper entry only when
 * strictly closer, as ggml's best_index_int8). */
static inline int al_best_index_int8(int n, const int8_t *val, float x) {
    if (x <= val[0]) return 0;
    if (x >= val[n - 1]) return n - 1;
    int lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (x < val[mid]) hi = mid;
        else lo = mid;
    }
    return x - val[hi - 1] < val[hi] - x ? hi - 1 : hi;
}

#endif
