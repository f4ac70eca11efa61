/*
 * bench_sampler.c — host time of one al_sampler_sample over a vocabulary of V logits (default
 * Qwen's 151 936), default parameters and greedy, mean of R calls:
 *   bench_sampler [V] [R]
 * A GPU decode step of a small model takes ~1 ms, so this is the per-token host cost beside it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "alloy/core.h"
#include "alloy/sampler.h"

static double per_call_ms(const al_sampler_params *p, const float *lg, int V, int R) {
    al_sampler *s;
    al_status st = al_sampler_init(&s, p, V);
    if (al_failed(&st)) return -1;
    volatile int32_t sink = 0;
    const double t0 = al_time_sec();
    for (int r = 0; r < R; r++) sink += al_sampler_sample(s, lg, NULL);
    const double ms = (al_time_sec() - t0) / R * 1e3;
    al_sampler_free(s);
    return ms;
}

int main(int argc, char **argv) {
    const int V = argc > 1 ? atoi(argv[1]) : 151936, R = argc > 2 ? atoi(argv[2]) : 200;
    if (V <= 0 || R <= 0) return 2;
    float *lg = malloc(sizeof(float) * (size_t)V);
    if (!lg) return 1;
    uint32_t x = 1;
    for (int i = 0; i < V; i++) {
        x = x * 1664525u + 1013904223u;
        lg[i] = (float)(x >> 8) / (float)(1u << 24) * 10.0f;
    }
    al_sampler_params p = al_sampler_default_params();
    printf("V %d: default parameters %.3f ms", V, per_call_ms(&p, lg, V, R));
    p.temp = 0;
    printf(", greedy %.3f ms per token\n", per_call_ms(&p, lg, V, R));
    free(lg);
    return 0;
}
