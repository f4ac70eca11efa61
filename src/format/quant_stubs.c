/* quant_stubs.c — TEMPORARY placeholders until quant_legacy.c / quant_k.c / quant_iq.c land. Delete then. */
#include <string.h>
#include "format/quant_impl.h"
void al_to_float_q4_0(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q4_0(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q4_1(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q4_1(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q5_0(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q5_0(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q5_1(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q5_1(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q8_0(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q8_0(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q8_1(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q8_1(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q2_K(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q2_K(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q3_K(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q3_K(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q4_K(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q4_K(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q5_K(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q5_K(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q6_K(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q6_K(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_q8_K(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_q8_K(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_iq4_nl(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_iq4_nl(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
void al_to_float_iq4_xs(const void *src, float *dst, int64_t n) { (void)src; memset(dst, 0, (size_t)n * 4); }
void al_from_float_iq4_xs(const float *src, void *dst, int64_t n, const float *im) { (void)src; (void)dst; (void)n; (void)im; }
