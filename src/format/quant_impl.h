/*
 * quant_impl.h (internal) — per-type reference (scalar) row converters behind the traits table.
 * to_float_X(src, dst, n): n elements, multiple of the block size.
 * from_float_X(src, dst, n, imatrix): imatrix may be NULL (uniform weights).
 */
#ifndef ALLOY_QUANT_IMPL_H
#define ALLOY_QUANT_IMPL_H

#include "format/quant_blocks.h"

#define AL_DECL_QTYPE(x)                                                                            \
    void al_to_float_##x(const void *src, float *dst, int64_t n);                                  \
    void al_from_float_##x(const float *src, void *dst, int64_t n, const float *imatrix);

AL_DECL_QTYPE(f32)
AL_DECL_QTYPE(f16)
AL_DECL_QTYPE(bf16)
AL_DECL_QTYPE(q4_0)
AL_DECL_QTYPE(q4_1)
AL_DECL_QTYPE(q5_0)
AL_DECL_QTYPE(q5_1)
AL_DECL_QTYPE(q8_0)
AL_DECL_QTYPE(q8_1)
AL_DECL_QTYPE(q2_K)
AL_DECL_QTYPE(q3_K)
AL_DECL_QTYPE(q4_K)
AL_DECL_QTYPE(q5_K)
AL_DECL_QTYPE(q6_K)
AL_DECL_QTYPE(q8_K)
AL_DECL_QTYPE(iq4_nl)
AL_DECL_QTYPE(iq4_xs)

#undef AL_DECL_QTYPE
#endif
