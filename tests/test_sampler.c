/* test_sampler.c — greedy, seeds, filters and penalties against their definitions. */
#include <math.h>
#include <stdlib.h>

#include "alloy/sampler.h"
#include "harness.h"

static al_sampler_params plain(float temp) {
    al_sampler_params p = al_sampler_default_params();
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static void test_greedy(void) {
    float lg[6] = {0.1f, 2.0f, -1.0f, 1.9f, 0.0f, 2.0f};
    al_sampler *s;
    al_sampler_params p = plain(0);
    REQUIRE_OK(al_sampler_init(&s, &p, 6));
    CHECK(al_sampler_sample(s, lg, NULL) == 1); /* first of the tied maxima */
    al_sampler_free(s);
    p = plain(1.0f);
    p.top_k = 1;
    REQUIRE_OK(al_sampler_init(&s, &p, 6));
    for (int i = 0; i < 20; i++) CHECK(al_sampler_sample(s, lg, NULL) == 1);
    al_sampler_free(s);
}

static void test_seed_repeatable(void) {
    float lg[32];
    for (int i = 0; i < 32; i++) lg[i] = sinf((float)i);
    al_sampler *a, *b, *c;
    al_sampler_params p = al_sampler_default_params();
    p.seed = 1234;
    REQUIRE_OK(al_sampler_init(&a, &p, 32));
    REQUIRE_OK(al_sampler_init(&b, &p, 32));
    p.seed = 99;
    REQUIRE_OK(al_sampler_init(&c, &p, 32));
    int same = 0, diff = 0;
    for (int i = 0; i < 200; i++) {
        int x = al_sampler_sample(a, lg, NULL), y = al_sampler_sample(b, lg, NULL), z = al_sampler_sample(c, lg, NULL);
        same += x == y;
        diff += x != z;
    }
    CHECK(same == 200);
    CHECK(diff > 0);
    al_sampler_free(a);
    al_sampler_free(b);
    al_sampler_free(c);
}

/* Draw frequencies follow softmax(logits / T) within 5 sigma. */
static void test_distribution(void) {
    float lg[4] = {1.0f, 0.0f, -1.0f, 0.5f};
    float T = 0.7f;
    al_sampler *s;
    al_sampler_params p = plain(T);
    p.seed = 7;
    REQUIRE_OK(al_sampler_init(&s, &p, 4));
    int counts[4] = {0};
    const int N = 40000;
    for (int i = 0; i < N; i++) counts[al_sampler_sample(s, lg, NULL)]++;
    double z = 0, e[4];
    for (int i = 0; i < 4; i++) z += exp(lg[i] / T);
    for (int i = 0; i < 4; i++) {
        e[i] = exp(lg[i] / T) / z;
        double sd = sqrt(N * e[i] * (1 - e[i]));
        CHECKF(fabs(counts[i] - N * e[i]) < 5 * sd, "token %d: %d draws, expected %.0f", i, counts[i], N * e[i]);
    }
    float pr;
    int t = al_sampler_sample(s, lg, &pr);
    CHECK_NEAR(pr, e[t], 1e-5);
    al_sampler_free(s);
}

static void test_top_p_min_p(void) {
    /* probs at T=1: softmax of log(0.5, 0.3, 0.15, 0.05) */
    float lg[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    al_sampler *s;
    al_sampler_params p = plain(1.0f);
    p.top_p = 0.75f; /* keeps 0.5 + 0.3 */
    REQUIRE_OK(al_sampler_init(&s, &p, 4));
    int seen[4] = {0};
    for (int i = 0; i < 2000; i++) seen[al_sampler_sample(s, lg, NULL)]++;
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    al_sampler_free(s);
    p = plain(1.0f);
    p.min_p = 0.25f; /* keeps p >= 0.125: 0.5, 0.3, 0.15 */
    REQUIRE_OK(al_sampler_init(&s, &p, 4));
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 4000; i++) seen[al_sampler_sample(s, lg, NULL)]++;
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] > 0 && seen[3] == 0);
    al_sampler_free(s);
}

/* top-k keeps exactly the k largest logits (heap selection over a large vocabulary). */
static void test_top_k(void) {
    enum { V = 5000, K = 7 };
    float *lg = malloc(sizeof(float) * V);
    for (int i = 0; i < V; i++) lg[i] = sinf((float)i * 12.9898f) * 3.0f;
    int top[K];
    for (int j = 0; j < K; j++) { /* reference: repeated argmax */
        int b = -1;
        for (int i = 0; i < V; i++) {
            bool used = false;
            for (int q = 0; q < j; q++) used |= top[q] == i;
            if (!used && (b < 0 || lg[i] > lg[b])) b = i;
        }
        top[j] = b;
    }
    al_sampler *s;
    al_sampler_params p = plain(2.0f);
    p.top_k = K;
    REQUIRE_OK(al_sampler_init(&s, &p, V));
    int hits[K] = {0};
    for (int d = 0; d < 3000; d++) {
        int t = al_sampler_sample(s, lg, NULL), found = -1;
        for (int j = 0; j < K; j++)
            if (top[j] == t) found = j;
        CHECKF(found >= 0, "token %d is not among the top %d", t, K);
        if (found >= 0) hits[found]++;
    }
    for (int j = 0; j < K; j++) CHECKF(hits[j] > 0, "top token %d never drawn", top[j]);
    al_sampler_free(s);
    free(lg);
}

static void test_penalties(void) {
    al_sampler *s;
    al_sampler_params p = plain(0);
    p.repeat_penalty = 2.0f;
    p.penalty_last_n = 2;
    REQUIRE_OK(al_sampler_init(&s, &p, 3));
    float lg[3] = {3.0f, 2.0f, -1.0f};
    al_sampler_accept(s, 0);
    CHECK(al_sampler_sample(s, lg, NULL) == 1); /* 3/2 = 1.5 < 2 */
    al_sampler_accept(s, 1);
    al_sampler_accept(s, 2); /* window of 2: token 0 falls out */
    CHECK(al_sampler_sample(s, lg, NULL) == 0);
    al_sampler_free(s);
    p = plain(0);
    p.frequency_penalty = 0.4f;
    p.presence_penalty = 0.3f;
    REQUIRE_OK(al_sampler_init(&s, &p, 3));
    float lg2[3] = {1.0f, 0.5f, 0.0f};
    al_sampler_accept(s, 0); /* 1 - 0.4 - 0.3 = 0.3 < 0.5 */
    CHECK(al_sampler_sample(s, lg2, NULL) == 1);
    al_sampler_accept(s, 1);
    al_sampler_accept(s, 1); /* 0.5 - 0.8 - 0.3 = -0.6; token 0 at 0.3 wins */
    CHECK(al_sampler_sample(s, lg2, NULL) == 0);
    al_sampler_free(s);
    al_sampler_params bad = plain(-1.0f);
    CHECK_ERR(al_sampler_init(&s, &bad, 3), AL_ERR_INVALID);
}

/* penalties over a vocabulary of 1000 with a sliding window of 4 (shorter than the 6 strong tokens
 * take to come round, so tokens leave it), greedy and through the top-k heap (top_k 1 at temperature
 * 1 is greedy too), against a brute-force reference over the window */
static void test_penalties_window(void) {
    enum { V = 1000, W = 4, STEPS = 60 };
    al_sampler_params p = plain(0);
    p.repeat_penalty = 1.5f;
    p.presence_penalty = 0.25f;
    p.frequency_penalty = 0.125f;
    p.penalty_last_n = W;
    al_sampler_params pk = p;
    pk.temp = 1.0f;
    pk.top_k = 1;
    al_sampler *g, *k;
    REQUIRE_OK(al_sampler_init(&g, &p, V));
    REQUIRE_OK(al_sampler_init(&k, &pk, V));
    float lg[V];
    int32_t hist[STEPS];
    uint32_t x = 7;
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < V; i++) { /* a few strong tokens around byte boundaries of the mask, the rest noise */
            x = x * 1664525u + 1013904223u;
            lg[i] = (float)(x >> 8) / (float)(1u << 24) - 0.5f;
        }
        const int strong[] = {0, 7, 8, 15, 16, 999};
        for (int j = 0; j < 6; j++) lg[strong[j]] = 3.0f + 0.01f * (float)j;
        int best = -1;
        float bl = 0;
        for (int i = 0; i < V; i++) {
            int cnt = 0;
            for (int h = t - W < 0 ? 0 : t - W; h < t; h++) cnt += hist[h] == i;
            float l = lg[i];
            if (cnt) l = (l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty) - (float)cnt * p.frequency_penalty - p.presence_penalty;
            if (best < 0 || l > bl) bl = l, best = i;
        }
        const int32_t a = al_sampler_sample(g, lg, NULL), b = al_sampler_sample(k, lg, NULL);
        CHECKF(a == best && b == best, "step %d: greedy %d, top-1 %d, reference %d", t, a, b, best);
        hist[t] = best;
        al_sampler_accept(g, best);
        al_sampler_accept(k, best);
    }
    al_sampler_free(g);
    al_sampler_free(k);
}

/* the first maximum (NaN as -inf, all -inf / NaN: token 0), greedy and through the top-k heap (top_k 1
 * at temperature 1), on sizes around the scan's 8 lanes and 64-logit blocks, with ties, NaN and -inf
 * placed across block edges; then a negative frequency penalty (which raises a logit) on a token
 * inside a block whose raw logits are all below the best kept one */
static void test_scan_edges(void) {
    const int sizes[] = {1, 2, 7, 8, 9, 63, 64, 65, 127, 129, 1000, 5003};
    uint32_t x = 99;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int V = sizes[si];
        float *lg = malloc(sizeof(float) * (size_t)V);
        for (int trial = 0; trial < 40; trial++) {
            for (int i = 0; i < V; i++) {
                x = x * 1664525u + 1013904223u;
                const uint32_t r = x >> 24;
                lg[i] = r < 20 ? NAN : r < 40 ? -INFINITY : (float)((x >> 8) % 16) * 0.25f - 2.0f; /* coarse: many ties */
            }
            if (trial == 0)
                for (int i = 0; i < V; i++) lg[i] = i % 2 ? NAN : -INFINITY;
            int best = 0;
            float bl = isnan(lg[0]) ? -INFINITY : lg[0];
            for (int i = 1; i < V; i++)
                if (lg[i] > bl) bl = lg[i], best = i;
            al_sampler *g, *k;
            al_sampler_params p = plain(0), pk = plain(1.0f);
            pk.top_k = 1;
            REQUIRE_OK(al_sampler_init(&g, &p, V));
            REQUIRE_OK(al_sampler_init(&k, &pk, V));
            const int32_t a = al_sampler_sample(g, lg, NULL);
            CHECKF(a == best, "V %d trial %d: greedy %d, reference %d", V, trial, a, best);
            if (bl > -INFINITY) { /* top-k needs one finite candidate to mean the same */
                const int32_t b = al_sampler_sample(k, lg, NULL);
                CHECKF(b == best, "V %d trial %d: top-1 %d, reference %d", V, trial, b, best);
            }
            al_sampler_free(g);
            al_sampler_free(k);
        }
        free(lg);
    }
    enum { V = 1000 };
    float lg[V];
    for (int i = 0; i < V; i++) lg[i] = -1.0f - 0.001f * (float)(i % 50);
    lg[3] = 0.5f;   /* the best raw logit, in the first block */
    lg[700] = 0.2f; /* in a block of raw logits all below 0.5 */
    al_sampler_params p = plain(1.0f);
    p.top_k = 1;
    p.frequency_penalty = -1.0f; /* raises a seen token by 1 per occurrence */
    al_sampler *s;
    REQUIRE_OK(al_sampler_init(&s, &p, V));
    CHECK(al_sampler_sample(s, lg, NULL) == 3);
    al_sampler_accept(s, 700);
    CHECKF(al_sampler_sample(s, lg, NULL) == 700, "a raised token in a skippable block was not found");
    al_sampler_free(s);
}

int main(void) {
    AL_RUN(test_greedy);
    AL_RUN(test_seed_repeatable);
    AL_RUN(test_distribution);
    AL_RUN(test_top_p_min_p);
    AL_RUN(test_top_k);
    AL_RUN(test_penalties);
    AL_RUN(test_penalties_window);
    AL_RUN(test_scan_edges);
    return al_test_finish();
}
