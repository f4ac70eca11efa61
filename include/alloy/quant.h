/*
 * alloy/quant.h — element and block formats: traits, dequantization, quantization.
 *
 * Contract
 *  - Block layouts are those of GGUF / ggml (byte-for-byte). A row of `n` elements of a block type
 *    occupies n / block_size blocks of type_size bytes; n must be a multiple of block_size.
 *  - al_dequantize_row reproduces the GGUF reference dequantization bit for bit.
 *  - al_quantize_row quantizes with the same search the reference uses (error within a few % of
 *    llama.cpp's), optionally weighted by per-column importance (NULL = uniform).
 *  - Traits are a table indexed by al_type; types without an entry report block_size 0.
 * Everything here is pure and thread-safe.
 */
#ifndef ALLOY_QUANT_H
#define ALLOY_QUANT_H

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_QK4_0 32
#define AL_QK4_1 32
#define AL_QK5_0 32
#define AL_QK5_1 32
#define AL_QK8_0 32
#define AL_QK8_1 32
#define AL_QK_K 256
#define AL_QK4_NL 32

typedef void (*al_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*al_from_float_fn)(const float *src, void *dst, int64_t n, const float *imatrix);

typedef struct al_type_traits {
    const char *name;      /* "Q4_K", "F32", ... NULL for unknown ids */
    int block_size;        /* elements per block (1 for plain types) */
    size_t type_size;      /* bytes per block */
    bool is_quantized;
    al_to_float_fn to_float;     /* NULL if not dequantizable (e.g. integer types) */
    al_from_float_fn from_float; /* NULL if Alloy cannot produce it */
    al_type vec_dot_type;  /* activation format its dot kernel consumes (Q8_0, Q8_K, F32, ...) */
} al_type_traits;

const al_type_traits *al_type_traits_get(al_type t); /* never NULL; unknown ids: name NULL */
bool al_type_valid(uint32_t id);                     /* known id with a name */
const char *al_type_name(al_type t);                 /* "?" for unknown */
bool al_type_from_name(const char *name, al_type *out); /* case-insensitive */
/* Bytes of a row of n elements; 0 if n is not a multiple of the block size or type unknown. */
size_t al_type_row_size(al_type t, int64_t n);

/* Dequantize n elements (multiple of block size). */
al_status al_dequantize_row(al_type t, const void *src, float *dst, int64_t n);
/* Quantize n elements; imatrix: per-element weights of length n, or NULL. */
al_status al_quantize_row(al_type t, const float *src, void *dst, int64_t n, const float *imatrix);
/* Whole tensors: nrows rows of n_per_row elements, contiguous. Multithreaded when pool != NULL. */
al_status al_quantize_rows(al_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row,
                           const float *imatrix, al_pool *pool);
al_status al_dequantize_rows(al_type t, const void *src, float *dst, int64_t nrows, int64_t n_per_row,
                             al_pool *pool);

/* Split-row layout: the GPU's image of Q6_K and Q8_0 rows, whose 210- / 34-byte blocks leave the
 * quants only 2-byte aligned in GGUF order. A row of nb blocks becomes, in order,
 *   Q6_K: quants [nb][192] (ql[128], qh[64] of each block), scales [nb][16], d [nb] (f16);
 *   Q8_0: quants [nb][32], d [nb] (f16);
 * zero-padded to al_split_row_size bytes (a multiple of 16), so with 16-byte aligned rows every 16
 * bytes of quants are one aligned load. The values are unchanged (same bytes, moved). */
bool al_split_type(al_type t);                   /* Q6_K, Q8_0 */
size_t al_split_row_size(al_type t, int64_t n);  /* 0: not a split type or n not whole blocks */
/* One row of n elements: GGUF block order src -> split dst (al_split_row_size bytes), and back
 * (al_unsplit_row: dst of al_type_row_size bytes). */
al_status al_split_row(al_type t, int64_t n, const void *src, void *dst);
al_status al_unsplit_row(al_type t, int64_t n, const void *src, void *dst);

#ifdef __cplusplus
}
#endif
#endif
