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
    int n_gen;
    double t_queue, t_prompt, t_gen;
    al_finish finish;
    char error[200];
} job;

static bool on_event(void *ud, const al_event *ev) {
    job *j = ud;
    if (ev->kind != AL_EV_DONE) return true;
    pthread_mutex_lock(j->mu);
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
    const bool gpu = dev && strcmp(dev, "cpu");
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
    const int n_ctx = iopt(argc, argv, "-c", NULL, P + G + 16);
    al_engine *e = NULL;
    if (gpu) {
#ifdef ALLOY_HAVE_CUDA
        al_cuda_serve_params sp = al_cuda_serve_default_params();
        sp.session.ubatch = iopt(argc, argv, "-ub", NULL, 0);
        sp.batch = B;
        al_engine_backend b;
        st = al_cuda_engine_backend_init(&b, m, &sp);
        if (!al_failed(&st)) st = al_engine_init_backend(&e, m, S, n_ctx, &b);
#else
        st = al_err(AL_ERR_UNSUPPORTED, "--device %s: built without CUDA", dev);
#endif
    } else {
        st = al_engine_init(&e, m, S, n_ctx);
    }
    if (al_failed(&st)) {
        fprintf(stderr, "bench_serve: %s\n", st.msg);
        al_model_free(m);
        return 1;
    }
    const int V = al_model_n_vocab(m);
    int32_t *prompt = malloc(sizeof(int32_t) * (size_t)P * (size_t)R);
    job *jobs = calloc((size_t)R, sizeof *jobs);
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int left = R;
    uint32_t rng = 12345;
    for (int i = 0; i < P * R; i++) {
        rng = rng * 1664525u + 1013904223u;
        prompt[i] = (int32_t)(100 + (rng >> 8) % (uint32_t)(V > 200 ? V - 100 : 1));
    }
    const double t0 = al_time_sec();
    for (int r = 0; r < R && !al_failed(&st); r++) {
        jobs[r] = (job){.mu = &mu, .cv = &cv, .left = &left};
        al_gen_request q;
        memset(&q, 0, sizeof q);
        q.prompt = prompt + (size_t)r * (size_t)P;
        q.n_prompt = (size_t)P;
        q.sampling = al_sampler_default_params();
        q.sampling.temp = 0;
        q.max_tokens = G;
        q.ignore_eos = true;
        q.on_event = on_event;
        q.ud = &jobs[r];
        st = al_engine_submit(e, &q, NULL);
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
