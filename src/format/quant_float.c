/* quant_float.c — F32/F16/BF16 row conversions. */
#include <string.h>

#include "format/quant_impl.h"

void al_to_float_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }
void al_from_float_f32(const float *src, void *dst, int64_t n, const float *imatrix) {
    (void)imatrix;
    memcpy(dst, src, (size_t)n * sizeof(float));
}
void al_to_float_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = al_f16_to_f32(s[i]);
}
void al_from_float_f16(const float *src, void *dst, int64_t n, const float *imatrix) {
    (void)imatrix;
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = al_f32_to_f16(src[i]);
}
void al_to_float_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = al_bf16_to_f32(s[i]);
}
void al_from_float_bf16(const float *src, void *dst, int64_t n, const float *imatrix) {
    (void)imatrix;
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = al_f32_to_bf16(src[i]);
}
