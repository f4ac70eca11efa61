/*
 * alloy/cpu.h — CPU compute kernels: dot products per weight type and ISA, matrix products.
 *
 * Contract
 *  - ISA is picked at run time (AVX-512 > AVX2 > scalar on x86-64, NEON on ARM64) unless forced.
 *    Every SIMD kernel has a scalar twin that is the reference (tests compare them).
 *  - Weight rows of a quantized type are dotted with activations converted to that type's
 *    `vec_dot_type` (Q8_0 for the legacy 32-blocks, Q8_K for K-quants and IQ4_XS, F32/F16/BF16
 *    for float types: see al_type_traits). Accumulation is in float32.
 *  - al_cpu owns a thread pool and scratch memory. One al_cpu is used by one thread at a time.
 *  - al_cpu_matmul: W is [n_out][k] (ggml: ne[0] = k, ne[1] = n_out), any dot-able type;
 *    X is [m][k] float32 rows with row stride ldx floats; Y is [m][n_out] float32 with stride ldy.
 *    Y = X · Wᵀ. Threads split the output features (decode, m = 1) or tiles (prefill).
 */
#ifndef ALLOY_CPU_H
#define ALLOY_CPU_H

#include "alloy/core.h"
#include "alloy/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum al_isa {
    AL_ISA_SCALAR = 0,
    AL_ISA_AVX2,   /* AVX2 + FMA + F16C */
    AL_ISA_AVX512, /* AVX-512 F/BW/VL (+VNNI where present) */
    AL_ISA_NEON,
    AL_ISA_COUNT,
    AL_ISA_AUTO = -1
} al_isa;

const char *al_isa_name(al_isa isa);
bool al_isa_supported(al_isa isa); /* compiled in and supported by this CPU */
al_isa al_isa_best(void);

/* s = dot(x, y) over n elements; x is a row of the weight type, y of its vec_dot_type. */
typedef void (*al_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

/* NULL when the (type, isa) pair has no kernel; al_vec_dot_get falls back to scalar itself. */
al_vec_dot_fn al_vec_dot_get_exact(al_type t, al_isa isa);
al_vec_dot_fn al_vec_dot_get(al_type t, al_isa isa);

/* Converts n floats into the activation format `vt` (Q8_0, Q8_K, F16, BF16 or F32 copy). */
al_status al_quantize_act(al_type vt, const float *x, void *out, int64_t n, al_isa isa);

typedef struct al_cpu al_cpu;

al_status al_cpu_init(al_cpu **out, int n_threads, al_isa isa);
void al_cpu_free(al_cpu *c);
al_pool *al_cpu_pool(al_cpu *c);
al_isa al_cpu_isa(const al_cpu *c);
int al_cpu_threads(const al_cpu *c);

al_status al_cpu_matmul(al_cpu *c, const al_tensor *W, const float *X, int64_t ldx, float *Y, int64_t ldy,
                        int64_t m);

/* Several products of the same X: Y[i] = X · W[i]ᵀ. Weights of equal k and activation format
 * share one activation conversion and one parallel section (decode's Q/K/V and gate/up);
 * otherwise this is n calls of al_cpu_matmul. */
al_status al_cpu_matmul_n(al_cpu *c, int n, const al_tensor *const *W, const float *X, int64_t ldx, float *const *Y,
                          const int64_t *ldy, int64_t m);

/* Measured read bandwidth of main memory in bytes/s: all threads of `pool` summing a buffer of
 * `bytes` (use >> last-level cache, e.g. 1 GiB), best of `reps`. */
double al_measure_read_bandwidth(al_pool *pool, size_t bytes, int reps);

#ifdef __cplusplus
}
#endif
#endif
