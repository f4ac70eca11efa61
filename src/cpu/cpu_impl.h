/*
 * cpu_impl.h (internal) — the kernel tables behind alloy/cpu.h.
 *
 * Every (weight type, ISA) pair has at most one kernel pair:
 *  - dot1: the public al_vec_dot_fn, s = dot(x, y) over n elements;
 *  - dotn: one weight row x against nr (1..AL_DOT_NR) activation rows:
 *        s[r * bs] = dot(x, (const char *)y + r * by)   for r in [0, nr)
 *    bs in floats, by in bytes. It decodes each weight block once for all nr rows, which is
 *    what makes prefill (m > 1) compute-efficient.
 * Each ISA file exports one table al_dot_table_<isa>[AL_TYPE_COUNT] (entries with dot1 == NULL
 * mean "no kernel": the dispatcher falls back to scalar) and one activation quantizer.
 * x is the weight row, y the activation row in the type's vec_dot_type (al_dot_act_type).
 */
#ifndef ALLOY_CPU_IMPL_H
#define ALLOY_CPU_IMPL_H

#include "alloy/cpu.h"
#include "format/quant_blocks.h"

#define AL_DOT_NR 4

typedef void (*al_dot_nr_fn)(int64_t n, float *s, size_t bs, const void *x, const void *y, size_t by, int nr);

typedef struct al_dot_kernel {
    al_vec_dot_fn dot1;
    al_dot_nr_fn dotn;
} al_dot_kernel;

/* Activation quantizer of one ISA: out in format vt (Q8_0, Q8_1, Q8_K, F16, BF16, F32).
 * Returns false when vt is not handled (the caller falls back to scalar). n is a multiple of
 * the block size of vt. */
typedef bool (*al_quant_act_fn)(al_type vt, const float *x, void *out, int64_t n);

/* Widens n elements of F16 / BF16 to F32; false when t is not handled by that ISA. */
typedef bool (*al_widen_fn)(al_type t, const void *src, float *dst, int64_t n);

extern const al_dot_kernel al_dot_table_scalar[AL_TYPE_COUNT];
bool al_quant_act_scalar(al_type vt, const float *x, void *out, int64_t n);
#if defined(ALLOY_HAVE_X86)
extern const al_dot_kernel al_dot_table_avx2[AL_TYPE_COUNT];
extern const al_dot_kernel al_dot_table_avx512[AL_TYPE_COUNT];
bool al_quant_act_avx2(al_type vt, const float *x, void *out, int64_t n);
bool al_quant_act_avx512(al_type vt, const float *x, void *out, int64_t n);
bool al_widen_avx2(al_type t, const void *src, float *dst, int64_t n);
bool al_widen_avx512(al_type t, const void *src, float *dst, int64_t n);
#endif
#if defined(ALLOY_HAVE_ARM)
extern const al_dot_kernel al_dot_table_neon[AL_TYPE_COUNT];
bool al_quant_act_neon(al_type vt, const float *x, void *out, int64_t n);
bool al_widen_neon(al_type t, const void *src, float *dst, int64_t n);
#endif

/* Any dequantizable row to F32, SIMD for F16/BF16 where the ISA has it, else the reference. */
void al_widen_row(al_type t, al_isa isa, const void *src, float *dst, int64_t n);

/* Multi-row kernel for (t, isa), falling back to scalar; NULL if t has no kernel at all. */
al_dot_nr_fn al_dot_nr_get(al_type t, al_isa isa);

/* The activation type a weight type's kernels consume (traits' vec_dot_type). */
static inline al_type al_dot_act_type(al_type t) { return al_type_traits_get(t)->vec_dot_type; }

/* Wraps an always-inline kernel body `name##_impl(n, s, bs, x, y, by, NR)` (NR a compile-time
 * constant after inlining) into the two exported shapes. */
#define AL_DOT_EXPORT(name)                                                                        \
    static void name##_1(int64_t n, float *s, const void *x, const void *y) {                      \
        name##_impl(n, s, 0, x, y, 0, 1);                                                          \
    }                                                                                              \
    static void name##_n(int64_t n, float *s, size_t bs, const void *x, const void *y, size_t by,  \
                         int nr) {                                                                 \
        switch (nr) {                                                                              \
        case 1: name##_impl(n, s, bs, x, y, by, 1); break;                                         \
        case 2: name##_impl(n, s, bs, x, y, by, 2); break;                                         \
        case 3: name##_impl(n, s, bs, x, y, by, 3); break;                                         \
        default: name##_impl(n, s, bs, x, y, by, 4); break;                                        \
        }                                                                                          \
    }

#define AL_DOT_ENTRY(type, name) [type] = {name##_1, name##_n}

#define AL_INLINE static inline __attribute__((always_inline))
/* Full unrolling of the small fixed loops (rows, sub-blocks) so accumulators live in registers;
 * GCC -O2 does not always do it by itself. */
#define AL_UNROLL _Pragma("GCC unroll 8")

/* Q4_K/Q5_K: unpack 12 scale bytes into 8 scales (bytes 0..7) and 8 mins (bytes 8..15). */
static inline void al_unpack_k4_scales(const uint8_t *s12, uint32_t out[4]) {
    uint32_t u0, u1, u2;
    __builtin_memcpy(&u0, s12, 4);
    __builtin_memcpy(&u1, s12 + 4, 4);
    __builtin_memcpy(&u2, s12 + 8, 4);
    out[0] = u0 & 0x3f3f3f3fu;
    out[1] = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    out[2] = u1 & 0x3f3f3f3fu;
    out[3] = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
}

/* Q3_K: unpack 12 scale bytes into 16 unsigned 6-bit scales (subtract 32 for the value). */
static inline void al_unpack_q3k_scales(const uint8_t *s12, uint32_t out[4]) {
    uint32_t a0, a1, t;
    __builtin_memcpy(&a0, s12, 4);
    __builtin_memcpy(&a1, s12 + 4, 4);
    __builtin_memcpy(&t, s12 + 8, 4);
    out[0] = (a0 & 0x0f0f0f0fu) | (((t >> 0) & 0x03030303u) << 4);
    out[1] = (a1 & 0x0f0f0f0fu) | (((t >> 2) & 0x03030303u) << 4);
    out[2] = ((a0 >> 4) & 0x0f0f0f0fu) | (((t >> 4) & 0x03030303u) << 4);
    out[3] = ((a1 >> 4) & 0x0f0f0f0fu) | (((t >> 6) & 0x03030303u) << 4);
}

/* IQ4_XS: the 6-bit scale (0..63) of sub-block ib (0..7); value = ls - 32. */
static inline int al_iq4xs_scale(const al_block_iq4_xs *b, int ib) {
    return ((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((b->scales_h >> 2 * ib) & 3) << 4);
}

#endif
