/*
 * quant_blocks.h (internal) — GGUF/ggml block layouts, byte-exact. Sizes are asserted below;
 * every quant kernel (scalar, SIMD, CUDA) reads these structs.
 * K-quants use super-blocks of AL_QK_K = 256 elements.
 */
#ifndef ALLOY_QUANT_BLOCKS_H
#define ALLOY_QUANT_BLOCKS_H

#include <assert.h>
#include <stdint.h>
#include "alloy/quant.h"

typedef uint16_t al_half; /* IEEE binary16 bits */

typedef struct { al_half d; uint8_t qs[AL_QK4_0 / 2]; } al_block_q4_0;                 /* 18 B */
typedef struct { al_half d, m; uint8_t qs[AL_QK4_1 / 2]; } al_block_q4_1;              /* 20 B */
typedef struct { al_half d; uint8_t qh[4]; uint8_t qs[AL_QK5_0 / 2]; } al_block_q5_0;  /* 22 B */
typedef struct { al_half d, m; uint8_t qh[4]; uint8_t qs[AL_QK5_1 / 2]; } al_block_q5_1; /* 24 B */
typedef struct { al_half d; int8_t qs[AL_QK8_0]; } al_block_q8_0;                      /* 34 B */
typedef struct { al_half d, s; int8_t qs[AL_QK8_1]; } al_block_q8_1;                   /* 36 B; s = d * sum(qs) */

/* 2-bit: 16 sub-blocks of 16; scales: low 4 bits scale, high 4 bits min */
typedef struct { uint8_t scales[AL_QK_K / 16]; uint8_t qs[AL_QK_K / 4]; al_half d, dmin; } al_block_q2_K; /* 84 B */
/* 3-bit: hmask = high bit, qs = low 2 bits, 16 6-bit scales packed in 12 bytes */
typedef struct { uint8_t hmask[AL_QK_K / 8]; uint8_t qs[AL_QK_K / 4]; uint8_t scales[12]; al_half d; } al_block_q3_K; /* 110 B */
/* 4-bit: 8 sub-blocks of 32, 6-bit scales and mins packed in 12 bytes */
typedef struct { al_half d, dmin; uint8_t scales[12]; uint8_t qs[AL_QK_K / 2]; } al_block_q4_K; /* 144 B */
typedef struct { al_half d, dmin; uint8_t scales[12]; uint8_t qh[AL_QK_K / 8]; uint8_t qs[AL_QK_K / 2]; } al_block_q5_K; /* 176 B */
/* 6-bit: ql low 4 bits, qh high 2 bits, 16 int8 scales */
typedef struct { uint8_t ql[AL_QK_K / 2]; uint8_t qh[AL_QK_K / 4]; int8_t scales[AL_QK_K / 16]; al_half d; } al_block_q6_K; /* 210 B */
/* activation format for K-quant dots: bsums[i] = sum of qs[16 i .. 16 i + 15] */
typedef struct { float d; int8_t qs[AL_QK_K]; int16_t bsums[AL_QK_K / 16]; } al_block_q8_K; /* 292 B */
/* non-linear 4-bit: qs index al_kvalues_iq4nl */
typedef struct { al_half d; uint8_t qs[AL_QK4_NL / 2]; } al_block_iq4_nl; /* 18 B */
typedef struct { al_half d; uint16_t scales_h; uint8_t scales_l[AL_QK_K / 64]; uint8_t qs[AL_QK_K / 2]; } al_block_iq4_xs; /* 136 B */

static_assert(sizeof(al_block_q4_0) == 18, "q4_0");
static_assert(sizeof(al_block_q4_1) == 20, "q4_1");
static_assert(sizeof(al_block_q5_0) == 22, "q5_0");
static_assert(sizeof(al_block_q5_1) == 24, "q5_1");
static_assert(sizeof(al_block_q8_0) == 34, "q8_0");
static_assert(sizeof(al_block_q8_1) == 36, "q8_1");
static_assert(sizeof(al_block_q2_K) == 84, "q2_K");
static_assert(sizeof(al_block_q3_K) == 110, "q3_K");
static_assert(sizeof(al_block_q4_K) == 144, "q4_K");
static_assert(sizeof(al_block_q5_K) == 176, "q5_K");
static_assert(sizeof(al_block_q6_K) == 210, "q6_K");
static_assert(sizeof(al_block_q8_K) == 292, "q8_K");
static_assert(sizeof(al_block_iq4_nl) == 18, "iq4_nl");
static_assert(sizeof(al_block_iq4_xs) == 136, "iq4_xs");

/* IQ4_NL / IQ4_XS codebook (GGUF spec values). */
static const int8_t al_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

/* Unpack the j-th (0..7) 6-bit scale and min of a Q4_K/Q5_K super-block. */
static inline void al_get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

#endif
