/* matmul_tmp.c — TEMPORARY reference matmul (dequantize rows, float dot) until the kernels branch lands. */
#include <stdlib.h>
#include "alloy/cpu.h"
struct al_cpu { al_pool *pool; };
al_status al_cpu_init(al_cpu **out, int n_threads, al_isa isa) {
    (void)isa; al_cpu *c = calloc(1, sizeof *c); AL_TRY(al_pool_init(&c->pool, n_threads)); *out = c; return al_ok(); }
void al_cpu_free(al_cpu *c) { if (!c) return; al_pool_free(c->pool); free(c); }
al_pool *al_cpu_pool(al_cpu *c) { return c->pool; }
int al_cpu_threads(const al_cpu *c) { return al_pool_size(c->pool); }
al_status al_cpu_matmul(al_cpu *c, const al_tensor *W, const float *X, int64_t ldx, float *Y, int64_t ldy, int64_t m) {
    (void)c; int64_t k = W->ne[0]; float *row = malloc(sizeof(float) * (size_t)k);
    for (int64_t r = 0; r < W->ne[1]; r++) {
        AL_TRY(al_dequantize_row(W->type, (const char *)W->data + W->nb[1] * (size_t)r, row, k));
        for (int64_t i = 0; i < m; i++) { double s = 0; for (int64_t j = 0; j < k; j++) s += (double)row[j] * X[i * ldx + j]; Y[i * ldy + r] = (float)s; }
    }
    free(row); return al_ok();
}
