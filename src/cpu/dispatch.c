/*
 * dispatch.c — run-time ISA detection and the [type][isa] kernel lookup.
 * The per-ISA tables are defined next to their kernels (dot_scalar.c, x86/dot_avx2.c, ...).
 */
#include "cpu/cpu_impl.h"

static const char *const isa_names[AL_ISA_COUNT] = {
    [AL_ISA_SCALAR] = "scalar", [AL_ISA_AVX2] = "avx2", [AL_ISA_AVX512] = "avx512", [AL_ISA_NEON] = "neon"};

/* Kernel tables and activation quantizers indexed by ISA; NULL: not compiled in. */
static const al_dot_kernel *const isa_tables[AL_ISA_COUNT] = {
    [AL_ISA_SCALAR] = al_dot_table_scalar,
#if defined(ALLOY_HAVE_X86)
    [AL_ISA_AVX2] = al_dot_table_avx2,
    [AL_ISA_AVX512] = al_dot_table_avx512,
#endif
#if defined(ALLOY_HAVE_ARM)
    [AL_ISA_NEON] = al_dot_table_neon,
#endif
};

static const al_quant_act_fn isa_quant[AL_ISA_COUNT] = {
    [AL_ISA_SCALAR] = al_quant_act_scalar,
#if defined(ALLOY_HAVE_X86)
    [AL_ISA_AVX2] = al_quant_act_avx2,
    [AL_ISA_AVX512] = al_quant_act_avx512,
#endif
#if defined(ALLOY_HAVE_ARM)
    [AL_ISA_NEON] = al_quant_act_neon,
#endif
};

static const al_widen_fn isa_widen[AL_ISA_COUNT] = {
#if defined(ALLOY_HAVE_X86)
    [AL_ISA_AVX2] = al_widen_avx2,
    [AL_ISA_AVX512] = al_widen_avx512,
#endif
#if defined(ALLOY_HAVE_ARM)
    [AL_ISA_NEON] = al_widen_neon,
#endif
};

void al_widen_row(al_type t, al_isa isa, const void *src, float *dst, int64_t n) {
    if ((unsigned)isa < AL_ISA_COUNT && isa_widen[isa] && isa_widen[isa](t, src, dst, n)) return;
    al_type_traits_get(t)->to_float(src, dst, n);
}

const char *al_isa_name(al_isa isa) {
    if (isa == AL_ISA_AUTO) return "auto";
    return (unsigned)isa < AL_ISA_COUNT ? isa_names[isa] : "?";
}

#if defined(ALLOY_HAVE_X86)
#include <cpuid.h>
/* clang's __builtin_cpu_supports does not know "f16c": read CPUID leaf 1, ECX bit 29 */
static bool has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

bool al_isa_supported(al_isa isa) {
    if ((unsigned)isa >= AL_ISA_COUNT || !isa_tables[isa]) return false;
    switch (isa) {
    case AL_ISA_SCALAR: return true;
#if defined(ALLOY_HAVE_X86)
    case AL_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case AL_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma") && has_f16c();
#endif
#if defined(ALLOY_HAVE_ARM)
    case AL_ISA_NEON: return true; /* baseline on AArch64 */
#endif
    default: return false;
    }
}

al_isa al_isa_best(void) {
    static const al_isa order[] = {AL_ISA_AVX512, AL_ISA_AVX2, AL_ISA_NEON};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (al_isa_supported(order[i])) return order[i];
    return AL_ISA_SCALAR;
}

static const al_dot_kernel *kernel_exact(al_type t, al_isa isa) {
    if ((unsigned)t >= AL_TYPE_COUNT || (unsigned)isa >= AL_ISA_COUNT || !isa_tables[isa]) return NULL;
    const al_dot_kernel *k = &isa_tables[isa][t];
    return k->dot1 ? k : NULL;
}

al_vec_dot_fn al_vec_dot_get_exact(al_type t, al_isa isa) {
    const al_dot_kernel *k = kernel_exact(t, isa);
    return k ? k->dot1 : NULL;
}

al_vec_dot_fn al_vec_dot_get(al_type t, al_isa isa) {
    if (isa == AL_ISA_AUTO) isa = al_isa_best();
    al_vec_dot_fn f = al_vec_dot_get_exact(t, isa);
    return f ? f : al_vec_dot_get_exact(t, AL_ISA_SCALAR);
}

al_dot_nr_fn al_dot_nr_get(al_type t, al_isa isa) {
    if (isa == AL_ISA_AUTO) isa = al_isa_best();
    const al_dot_kernel *k = kernel_exact(t, isa);
    if (!k) k = kernel_exact(t, AL_ISA_SCALAR);
    return k ? k->dotn : NULL;
}

al_status al_quantize_act(al_type vt, const float *x, void *out, int64_t n, al_isa isa) {
    if (isa == AL_ISA_AUTO) isa = al_isa_best();
    if ((unsigned)isa >= AL_ISA_COUNT || !isa_quant[isa])
        return al_err(AL_ERR_UNSUPPORTED, "quantize_act: ISA %s not compiled in", al_isa_name(isa));
    const al_type_traits *tr = al_type_traits_get(vt);
    if (!tr->name) return al_err(AL_ERR_INVALID, "quantize_act: unknown type %d", (int)vt);
    if (n < 0 || n % tr->block_size)
        return al_err(AL_ERR_INVALID, "quantize_act: %lld elements not a multiple of %s block %d", (long long)n,
                      tr->name, tr->block_size);
    if (isa_quant[isa](vt, x, out, n)) return al_ok();
    if (al_quant_act_scalar(vt, x, out, n)) return al_ok();
    return al_err(AL_ERR_UNSUPPORTED, "quantize_act: %s is not an activation format", tr->name);
}
