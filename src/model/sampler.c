/* sampler.c — penalties, top-k / top-p / min-p filtering, temperature and a seeded draw. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/sampler.h"

typedef struct cand {
    int32_t id;
    float logit;
} cand;

struct al_sampler {
    al_sampler_params p;
    int n_vocab;
    cand *c;          /* [n_vocab] */
    int32_t *hist;    /* ring of the last penalty_last_n tokens */
    int n_hist, hist_pos;
    int *counts;      /* [n_vocab] occurrences within the window */
    uint8_t *pen;     /* [(n_vocab + 7) / 8] bit i: counts[i] > 0 (a small table the sampling pass reads) */
    bool penalize;    /* some penalty changes logits (repeat != 1, frequency or presence != 0) */
    uint64_t rng[2];  /* xorshift128+ */
};

al_sampler_params al_sampler_default_params(void) {
    al_sampler_params p = {0.8f, 40, 0.95f, 0.05f, 1.0f, 0.0f, 0.0f, 64, 0};
    return p;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double al_sampler_uniform(al_sampler *s) {
    uint64_t a = s->rng[0], b = s->rng[1];
    s->rng[0] = b;
    a ^= a << 23;
    s->rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
    return (double)((s->rng[1] + b) >> 11) * (1.0 / 9007199254740992.0);
}

void al_sampler_reset(al_sampler *s, uint64_t seed) {
    uint64_t x = seed;
    s->rng[0] = splitmix(&x);
    s->rng[1] = splitmix(&x);
    s->n_hist = s->hist_pos = 0;
    memset(s->counts, 0, sizeof(int) * (size_t)s->n_vocab);
    memset(s->pen, 0, (size_t)(s->n_vocab + 7) / 8);
}

al_status al_sampler_init(al_sampler **out, const al_sampler_params *p, int n_vocab) {
    *out = NULL;
    if (n_vocab <= 0) return al_err(AL_ERR_INVALID, "sampler: n_vocab %d", n_vocab);
    if (!(p->temp >= 0) || !(p->top_p >= 0) || !(p->min_p >= 0) || !(p->repeat_penalty > 0) || p->penalty_last_n < 0)
        return al_err(AL_ERR_INVALID, "sampler: parameter out of range");
    al_sampler *s = calloc(1, sizeof *s);
    if (!s) return al_err(AL_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->penalize = p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
    s->c = malloc(sizeof(cand) * (size_t)n_vocab);
    s->counts = calloc((size_t)n_vocab, sizeof(int));
    s->pen = calloc((size_t)(n_vocab + 7) / 8, 1);
    s->hist = malloc(sizeof(int32_t) * (size_t)(p->penalty_last_n > 0 ? p->penalty_last_n : 1));
    if (!s->c || !s->counts || !s->pen || !s->hist) {
        al_sampler_free(s);
        return al_err(AL_ERR_NOMEM, "sampler: out of memory");
    }
    al_sampler_reset(s, p->seed);
    *out = s;
    return al_ok();
}

void al_sampler_free(al_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->counts);
    free(s->pen);
    free(s->hist);
    free(s);
}

void al_sampler_accept(al_sampler *s, int32_t token) {
    int w = s->p.penalty_last_n;
    if (w <= 0 || token < 0 || token >= s->n_vocab) return;
    if (s->n_hist == w) {
        int32_t old = s->hist[s->hist_pos];
        if (--s->counts[old] == 0) s->pen[old >> 3] &= (uint8_t)~(1u << (old & 7));
    } else {
        s->n_hist++;
    }
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % w;
    s->counts[token]++;
    s->pen[token >> 3] |= (uint8_t)(1u << (token & 7));
}

static int cmp_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->logit, y = ((const cand *)b)->logit;
    if (x != y) return x < y ? 1 : -1;
    return ((const cand *)a)->id - ((const cand *)b)->id; /* stable tie order */
}

/* min-heap on the sampling order: the root is the worst kept candidate */
static void sift_down(cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cmp_desc(&h[l], &h[w]) > 0) w = l;
        if (r < n && cmp_desc(&h[r], &h[w]) > 0) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* logit i after the repetition penalties (tokens within the window only); NaN as -inf */
static inline float penalized(const al_sampler *s, const float *logits, int i) {
    float l = logits[i];
    if (s->penalize && s->pen[i >> 3] >> (i & 7) & 1) {
        const al_sampler_params *p = &s->p;
        if (p->repeat_penalty != 1.0f) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)s->counts[i] * p->frequency_penalty + p->presence_penalty;
    }
    return isnan(l) ? -INFINITY : l;
}

/* the largest of x[0..n), NaN as -inf; eight independent lanes so that the loop vectorizes */
static inline float max_of(const float *x, int n) {
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
    float r = m[0];
    for (int j = 1; j < 8; j++) r = m[j] > r ? m[j] : r;
    return r;
}

/* whether a token of [b, e) is within the penalty window */
static inline bool any_penalized(const al_sampler *s, int b, int e) {
    for (int i = b; i < e;) {
        if ((i & 7) == 0 && i + 8 <= e) {
            if (s->pen[i >> 3]) return true;
            i += 8;
        } else {
            if (s->pen[i >> 3] >> (i & 7) & 1) return true;
            i++;
        }
    }
    return false;
}

#define SCAN_BLOCK 64 /* top-k: logits looked at a block at a time; a block under the worst kept one is skipped */

int32_t al_sampler_sample(al_sampler *s, const float *logits, float *prob) {
    const al_sampler_params *p = &s->p;
    int n = s->n_vocab;
    if (p->temp <= 0) { /* greedy: the first maximum */
        int best = 0;
        float bl = penalized(s, logits, 0);
        if (s->penalize) {
            for (int i = 1; i < n; i++) {
                const float l = penalized(s, logits, i);
                if (l > bl) bl = l, best = i;
            }
        } else { /* the maximum (NaN as -inf), then its first position; all -inf / NaN: 0 */
            const float m = max_of(logits, n);
            if (m > bl)
                while (!(logits[best] == m)) best++;
        }
        if (prob) *prob = 1.0f;
        return best;
    }
    /* top-k: a min-heap of the k best (O(n log k)), candidates streamed through it in id order so
     * only better ones are written; then sort those k. No top-k: all candidates, sorted. */
    int k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    for (int i = 0; i < k; i++) s->c[i] = (cand){i, penalized(s, logits, i)};
    if (k < n) {
        cand *hp = s->c; /* heap in c[0..k) */
        for (int i = k / 2 - 1; i >= 0; i--) sift_down(hp, k, i);
        for (int b = k; b < n; b += SCAN_BLOCK) {
            const int e = n - b < SCAN_BLOCK ? n : b + SCAN_BLOCK;
            /* penalties lower logits unless negative: only blocks without window tokens are skipped */
            if ((!s->penalize || !any_penalized(s, b, e)) && !(max_of(logits + b, e - b) > hp[0].logit)) continue;
            for (int i = b; i < e; i++) {
                /* NaN never compares greater, so the raw logit serves where nothing is penalized */
                const float l = s->penalize ? penalized(s, logits, i) : logits[i];
                if (l > hp[0].logit) { /* better than the worst kept (an equal logit has the higher id: worse) */
                    hp[0] = (cand){i, l};
                    sift_down(hp, k, 0);
                }
            }
        }
    }
    qsort(s->c, (size_t)k, sizeof(cand), cmp_desc);
    n = k;
    /* softmax at temperature 1 for top-p / min-p (llama.cpp applies them before temperature) */
    double mx = s->c[0].logit, sum = 0;
    for (int i = 0; i < n; i++) sum += exp(s->c[i].logit - mx);
    if (p->top_p < 1.0f) {
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += exp(s->c[i].logit - mx) / sum;
            if (cum >= p->top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0) {
        /* keep tokens with prob >= min_p * max prob, i.e. logit >= max + log(min_p) */
        double thr = mx + log(p->min_p);
        int keepn = 1;
        while (keepn < n && s->c[keepn].logit >= thr) keepn++;
        n = keepn;
    }
    double mt = s->c[0].logit / p->temp, tot = 0;
    for (int i = 0; i < n; i++) tot += exp(s->c[i].logit / p->temp - mt);
    double r = al_sampler_uniform(s) * tot, acc = 0;
    int pick = n - 1;
    for (int i = 0; i < n; i++) {
        acc += exp(s->c[i].logit / p->temp - mt);
        if (r < acc) {
            pick = i;
            break;
        }
    }
    if (prob) *prob = (float)(exp(s->c[pick].logit / p->temp - mt) / tot);
    return s->c[pick].id;
}
