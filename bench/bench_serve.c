/*
 * bench_serve.c — the serving engine's throughput with concurrent requests (what `alloy serve` runs),
 * like llama.cpp's llama-batched-bench: R requests of P prompt tokens and G generated tokens each,
 * submitted at once to an engine of S slots, greedy, end-of-generation ignored.
 *
 *   bench_serve -m MODEL.gguf [-S 4] [-R S] [-p 128] [-n 128] [--device cpu|cuda] [--decode-batch B] [-ub N]
 *               [-c CTX] [-t THREADS]
 *
 * Prints one table row: slots, requests, aggregate generated tokens/s (all tokens generated / wall
 * time from the first submit to the last end), mean per-request decode rate (tokens after the first /
 * time after the prompt) and the mean time to first token (queueing + prefill). Prompt tokens are
 * pseudo-random ids, different per request. --device cuda serves every slot on GPU 0
 * (al_cuda_engine_backend_init) with --decode-batch slots per batched decode pass (1: each slot's own
 * persistent kernel); without CUDA that is an error.
 *
 * --device null: a backend that computes nothing — each slot's logits live in the slot's own buffer
 * (slot_logits, as the GPU backend's pinned buffers) and only a moving maximum changes — so the rates
 * are the engine's own cost per token: sampling, detokenizing, events, the worker loop.
 *
 * --turns T: one conversation of T turns instead: each turn's prompt is the last prompt, the tokens
 * generated for it (those fed back) and P new ones, so prefix reuse serves all but the new tokens;
 * prints each turn's prompt length, the tokens reused and the time to first token, then the last
 * turn's prompt on a fresh engine (nothing to reuse) for comparison.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloy/engine.h"
#include "alloy/model.h"
#ifdef ALLOY_HAVE_CUDA
#include "alloy/cuda.h"
#endif

typedef struct job {
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *left;
    int n_gen, n_cached;
    int32_t toks[4096];
    double t_queue, t_prompt, t_gen;
    al_finish finish;
    char error[200];
} job;

static bool on_event(void *ud, const al_event *ev) {
    job *j = ud;
    pthread_mutex_lock(j->mu);
    if (ev->kind == AL_EV_TOKEN) {
        if (ev->token >= 0 && j->n_gen < 4096) j->toks[j->n_gen++] = ev->token;
        pthread_mutex_unlock(j->mu);
        return true;
    }
    j->n_cached = ev->n_cached;
    j->n_gen = ev->n_generated;
    j->t_queue = ev->t_queue;
    j->t_prompt = ev->t_prompt;
    j->t_gen = ev->t_gen;
    j->finish = ev->finish;
    snprintf(j->error, sizeof j->error, "%s", ev->error ? ev->error : "");
    if (--*j->left == 0) pthread_cond_signal(j->cv);
    pthread_mutex_unlock(j->mu);
    return true;
}

static const char *opt(int argc, char **argv, const char *a, const char *b) {
    for (int i = 1; i + 1 < argc; i++)
        if ((a && !strcmp(argv[i], a)) || (b && !strcmp(argv[i], b))) return argv[i + 1];
    return NULL;
}

static int iopt(int argc, char **argv, const char *a, const char *b, int def) {
    const char *v = opt(argc, argv, a, b);
    return v ? atoi(v) : def;
}

/* a prompt token: pseudo-random ids above the first 100 (mostly control tokens) */
static int32_t rand_token(uint32_t *rng, int V) {
    *rng = *rng * 1664525u + 1013904223u;
    return (int32_t)(100 + (*rng >> 8) % (uint32_t)(V > 200 ? V - 100 : 1));
}

/* submits a greedy request of G tokens (end of generation ignored) whose events go to j */
static al_status submit(al_engine *e, const int32_t *prompt, int n, int G, job *j) {
    al_gen_request q;
    memset(&q, 0, sizeof q);
    q.prompt = prompt;
    q.n_prompt = (size_t)n;
    q.sampling = al_sampler_default_params();
    q.sampling.temp = 0;
    q.max_tokens = G;
    q.ignore_eos = true;
    q.on_event = on_event;
    q.ud = j;
    return al_engine_submit(e, &q, NULL);
}

/* one request to its end on e; *j receives its events */
static al_status run_turn(al_engine *e, const int32_t *prompt, int n, int G, job *j, pthread_mutex_t *mu, pthread_cond_t *cv) {
    int left = 1;
    *j = (job){.mu = mu, .cv = cv, .left = &left};
    AL_TRY(submit(e, prompt, n, G, j));
    pthread_mutex_lock(mu);
    while (left > 0) pthread_cond_wait(cv, mu);
    pthread_mutex_unlock(mu);
    return j->finish == AL_FINISH_LENGTH ? al_ok() : al_err(AL_ERR_IO, "turn ended %d: %s", j->finish, j->error);
}

/* --device null: a slot is its position and its logits buffer (given to the engine through
 * slot_logits, as the GPU backend gives its pinned buffers): the fixed row with a +10 at a position
 * that moves every step, so the host writes two floats per token, as if a device had copied the rest */
typedef struct null_backend {
    float *row;
    int V;
} null_backend;
typedef struct null_slot {
    int pos, n_ctx, hot;
    float *lg;
} null_slot;
static al_status null_init(void *ctx, int n_ctx, void **slot) {
    null_backend *b = ctx;
    null_slot *p = calloc(1, sizeof *p);
    if (p) p->lg = malloc(sizeof(float) * (size_t)b->V);
    if (!p || !p->lg) {
        if (p) free(p);
        return al_err(AL_ERR_NOMEM, "null backend: out of memory");
    }
    memcpy(p->lg, b->row, sizeof(float) * (size_t)b->V);
    p->n_ctx = n_ctx > 0 ? n_ctx : 4096;
    *slot = p;
    return al_ok();
}
static void null_free(void *ctx, void *slot) {
    (void)ctx;
    if (slot) free(((null_slot *)slot)->lg);
    free(slot);
}
static void null_reset(void *ctx, void *slot) { (void)ctx, ((null_slot *)slot)->pos = 0; }
static int null_pos(void *ctx, const void *slot) { return (void)ctx, ((const null_slot *)slot)->pos; }
static int null_n_ctx(void *ctx, const void *slot) { return (void)ctx, ((const null_slot *)slot)->n_ctx; }
static float *null_slot_logits(void *ctx, void *slot) { return (void)ctx, ((null_slot *)slot)->lg; }
static al_status null_truncate(void *ctx, void *slot, int n) {
    (void)ctx;
    ((null_slot *)slot)->pos = n;
    return al_ok();
}
/* the slot's logits at its position, into out (its own buffer: only the moved maximum is written) */
static void null_logits(null_backend *b, null_slot *p, float *out) {
    if (out != p->lg) memcpy(out, b->row, sizeof(float) * (size_t)b->V);
    else out[p->hot] = b->row[p->hot]; /* the engine may have masked entries: the row is what matters here */
    p->hot = (p->pos * 7919) % b->V;
    out[p->hot] = b->row[p->hot] + 10.0f; /* a different best token each step */
}
static al_status null_prefill(void *ctx, void *slot, const int32_t *tok, int n, float *logits) {
    (void)tok;
    null_slot *p = slot;
    p->pos += n;
    if (logits) null_logits(ctx, p, logits);
    return al_ok();
}
static al_status null_decode(void *ctx, void *const *slots, const int32_t *tok, int n, float *const *logits) {
    (void)tok;
    for (int i = 0; i < n; i++) {
        null_slot *p = slots[i];
        p->pos += 1;
        null_logits(ctx, p, logits[i]);
    }
    return al_ok();
}
static void null_destroy(void *ctx) {
    null_backend *b = ctx;
    if (b) free(b->row);
    free(b);
}
static al_status null_engine(al_engine **e, al_model *m, int slots, int n_ctx) {
    null_backend *b = calloc(1, sizeof *b);
    const int V = al_model_n_vocab(m);
    if (b) b->row = malloc(sizeof(float) * (size_t)V), b->V = V;
    if (!b || !b->row) {
        null_destroy(b);
        return al_err(AL_ERR_NOMEM, "null backend: out of memory");
    }
    uint32_t x = 1;
    for (int i = 0; i < V; i++) x = x * 1664525u + 1013904223u, b->row[i] = (float)(x >> 8) / (float)(1u << 24) * 4.0f;
    al_engine_backend be = {.ctx = b, .device = "null (no compute)", .prefill_chunk = 512, .slot_init = null_init,
                            .slot_free = null_free, .slot_reset = null_reset, .slot_pos = null_pos, .slot_n_ctx = null_n_ctx,
                            .slot_truncate = null_truncate, .slot_prefill = null_prefill, .decode = null_decode,
                            .slot_logits = null_slot_logits, .destroy = null_destroy};
    return al_engine_init_backend(e, m, slots, n_ctx, &be);
}

/* an engine of `slots` slots on the CPU or (gpu) GPU 0 with the command line's -ub / --decode-batch */
static al_status make_engine(al_engine **e, al_model *m, bool gpu, const char *dev, int slots, int n_ctx, int argc, char **argv) {
    if (dev && !strcmp(dev, "null")) return null_engine(e, m, slots, n_ctx);
    if (!gpu) return al_engine_init(e, m, slots, n_ctx);
#ifdef ALLOY_HAVE_CUDA
    (void)dev;
    al_cuda_serve_params sp = al_cuda_serve_default_params();
    sp.session.ubatch = iopt(argc, argv, "-ub", NULL, 0);
    sp.batch = iopt(argc, argv, NULL, "--decode-batch", 1);
    al_engine_backend b;
    AL_TRY(al_cuda_engine_backend_init(&b, m, &sp));
    return al_engine_init_backend(e, m, slots, n_ctx, &b);
#else
    (void)argc, (void)argv;
    return al_err(AL_ERR_UNSUPPORTED, "--device %s: built without CUDA", dev);
#endif
}

/* --turns: a conversation on e, then its last prompt on a fresh engine */
static int conversation(al_engine *e, al_engine *fresh, int turns, int P, int G, int V) {
    const int n_max = turns * (P + G);
    int32_t *prompt = malloc(sizeof(int32_t) * (size_t)n_max);
    job *j = malloc(sizeof *j);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    uint32_t rng = 777;
    int n = 0;
    al_status st = prompt && j ? al_ok() : al_err(AL_ERR_NOMEM, "out of memory");
    printf("| turn | prompt tokens | reused | TTFT ms |\n|---:|---:|---:|---:|\n");
    for (int t = 0; t < turns && !al_failed(&st); t++) {
        for (int i = 0; i < P; i++) prompt[n++] = rand_token(&rng, V); /* the user's new message */
        st = run_turn(e, prompt, n, G, j, &mu, &cv);
        if (al_failed(&st)) break;
        printf("| %d | %d | %d | %.1f |\n", t + 1, n, j->n_cached, 1e3 * (j->t_queue + j->t_prompt));
        if (t + 1 < turns) { /* the reply, as fed back (its last token never was) */
            memcpy(prompt + n, j->toks, sizeof(int32_t) * (size_t)(j->n_gen - 1));
            n += j->n_gen - 1;
        }
    }
    if (!al_failed(&st)) st = run_turn(fresh, prompt, n, G, j, &mu, &cv);
    if (!al_failed(&st))
        printf("| last prompt, fresh engine | %d | %d | %.1f |\n", n, j->n_cached, 1e3 * (j->t_queue + j->t_prompt));
    if (al_failed(&st)) fprintf(stderr, "bench_serve: %s\n", st.msg);
    free(prompt);
    free(j);
    return al_failed(&st) ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *path = opt(argc, argv, "-m", "--model");
    if (!path) {
        fprintf(stderr, "usage: bench_serve -m MODEL.gguf [-S slots] [-R requests] [-p prompt] [-n gen] [--device cpu|cuda]\n"
                        "                   [--decode-batch B] [-ub N] [-c CTX] [-t THREADS]\n");
        return 2;
    }
    const int S = iopt(argc, argv, "-S", "--slots", 4), R = iopt(argc, argv, "-R", "--requests", S);
    const int P = iopt(argc, argv, "-p", NULL, 128), G = iopt(argc, argv, "-n", NULL, 128);
    const int B = iopt(argc, argv, NULL, "--decode-batch", 1);
    const char *dev = opt(argc, argv, NULL, "--device");
    const bool gpu = dev && strcmp(dev, "cpu") && strcmp(dev, "null");
    if (S < 1 || R < 1 || P < 1 || G < 1) {
        fprintf(stderr, "bench_serve: -S, -R, -p and -n must be positive\n");
        return 2;
    }
    al_model_params mp = al_model_default_params();
    mp.n_threads = iopt(argc, argv, "-t", NULL, 0);
    al_model *m = NULL;
    al_status st = al_model_load(&m, path, &mp);
    if (al_failed(&st)) {
        fprintf(stderr, "bench_serve: %s\n", st.msg);
        return 1;
    }
    const int n_ctx = iopt(argc, argv, "-c", NULL, (iopt(argc, argv, NULL, "--turns", 0) > 1 ? iopt(argc, argv, NULL, "--turns", 0) : 1) * (P + G) + 16);
    const int turns = iopt(argc, argv, NULL, "--turns", 0);
    al_engine *e = NULL, *fresh = NULL;
    st = make_engine(&e, m, gpu, dev, S, n_ctx, argc, argv);
    /* --turns: the last prompt again on a fresh engine of the same device */
    if (!al_failed(&st) && turns > 0)
        st = make_engine(&fresh, m, gpu, dev, 1, n_ctx < turns * (P + G) + 16 ? turns * (P + G) + 16 : n_ctx, argc, argv);
    if (al_failed(&st)) {
        fprintf(stderr, "bench_serve: %s\n", st.msg);
        al_engine_free(e);
        al_model_free(m);
        return 1;
    }
    const int V = al_model_n_vocab(m);
    if (turns > 0) {
        int rc = conversation(e, fresh, turns, P, G, V);
        al_engine_free(fresh);
        al_engine_free(e);
        al_model_free(m);
        return rc;
    }
    int32_t *prompt = malloc(sizeof(int32_t) * (size_t)P * (size_t)R);
    job *jobs = calloc((size_t)R, sizeof *jobs);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int left = R;
    uint32_t rng = 12345;
    for (int i = 0; i < P * R; i++) prompt[i] = rand_token(&rng, V);
    const double t0 = al_time_sec();
    for (int r = 0; r < R && !al_failed(&st); r++) {
        jobs[r] = (job){.mu = &mu, .cv = &cv, .left = &left};
        st = submit(e, prompt + (size_t)r * (size_t)P, P, G, &jobs[r]);
        if (al_failed(&st)) {
            pthread_mutex_lock(&mu);
            left -= R - r; /* the rest are never submitted */
            pthread_mutex_unlock(&mu);
        }
    }
    pthread_mutex_lock(&mu);
    while (left > 0) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    const double wall = al_time_sec() - t0;
    int gen = 0, ok = 0;
    double rate = 0, ttft = 0;
    for (int r = 0; r < R; r++) {
        if (jobs[r].finish != AL_FINISH_LENGTH) {
            if (jobs[r].finish) fprintf(stderr, "bench_serve: request %d ended %d: %s\n", r, jobs[r].finish, jobs[r].error);
            continue;
        }
        ok++;
        gen += jobs[r].n_gen;
        rate += jobs[r].t_gen > 0 ? (jobs[r].n_gen - 1) / jobs[r].t_gen : 0;
        ttft += jobs[r].t_queue + jobs[r].t_prompt;
    }
    if (al_failed(&st)) fprintf(stderr, "bench_serve: submit: %s\n", st.msg);
    printf("| device | slots | decode batch | requests | prompt | gen | tokens/s (all) | tokens/s per request | TTFT ms |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    printf("| %s | %d | %d | %d | %d | %d | %.1f | %.1f | %.1f |\n", al_engine_device(e), S, gpu ? B : S, R, P, G,
           gen / wall, ok ? rate / ok : 0, ok ? 1e3 * ttft / ok : 0);
    al_engine_free(e);
    al_model_free(m);
    free(prompt);
    free(jobs);
    return ok == R ? 0 : 1;
}
