/*
 * alloy/sampler.h — turning logits into the next token.
 *
 * Contract
 *  - Pipeline (llama.cpp's order): repetition/presence/frequency penalties over the last
 *    `penalty_last_n` accepted tokens -> top-k -> top-p -> min-p -> temperature -> draw.
 *    temp <= 0 is greedy (argmax after penalties).
 *  - Randomness comes from a generator seeded by `seed` and owned by the sampler: the same seed,
 *    logits and accepted tokens give the same tokens on every machine.
 *  - The sampler copies logits into its own buffer; the caller's array is not modified.
 */
#ifndef ALLOY_SAMPLER_H
#define ALLOY_SAMPLER_H

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_sampler_params {
    float temp;              /* 0: greedy */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    int penalty_last_n;      /* window of accepted tokens the penalties look at */
    uint64_t seed;
} al_sampler_params;

typedef struct al_sampler al_sampler;

al_sampler_params al_sampler_default_params(void); /* temp 0.8, top_k 40, top_p 0.95, min_p 0.05 */
al_status al_sampler_init(al_sampler **out, const al_sampler_params *p, int n_vocab);
void al_sampler_free(al_sampler *s);
void al_sampler_reset(al_sampler *s, uint64_t seed); /* forget history, reseed */
/* Records a token of the context (prompt or generated) for the penalties. */
void al_sampler_accept(al_sampler *s, int32_t token);
/* Picks the next token from logits[n_vocab]. If prob != NULL it receives the probability of the
 * chosen token under the final (filtered, tempered) distribution. */
int32_t al_sampler_sample(al_sampler *s, const float *logits, float *prob);
/* Uniform float in [0, 1) from the sampler's generator (for tests and speculative decoding). */
double al_sampler_uniform(al_sampler *s);

#ifdef __cplusplus
}
#endif
#endif
