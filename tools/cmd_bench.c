/*
 * cmd_bench.c — `alloy logits` (reference logits for tests) and `alloy bench` (llama-bench style
 * pp/tg tokens per second, with the decode roofline: measured bandwidth / weight bytes per token;
 * -d N as llama-bench's depth: tg from position N, after an untimed prefill of N tokens).
 */
#include <stdlib.h>
#include <string.h>

#include "alloy/model.h"
#include "cli.h"

static int parse_tokens(const char *s, int32_t **out) {
    int cap = 16, n = 0;
    int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);
    while (v && *s) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s) break;
        if (n == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, sizeof(int32_t) * (size_t)cap);
            if (!nv) break;
            v = nv;
        }
        v[n++] = (int32_t)x;
        s = *end == ',' ? end + 1 : end;
    }
    *out = v;
    return n;
}

static al_status load(int argc, char **argv, al_model **m) {
    al_model_params mp = al_model_default_params();
    mp.n_threads = cli_int(argc, argv, "-t", "--threads", 0);
    const char *path = cli_opt(argc, argv, "-m", "--model");
    return al_model_load(m, path ? path : cli_default_model(), &mp);
}

int cmd_logits(int argc, char **argv) {
    const char *toks = cli_opt(argc, argv, NULL, "--tokens"), *out = cli_opt(argc, argv, "-o", "--output");
    if (!toks || !out) {
        fprintf(stderr, "usage: alloy logits -m MODEL --tokens 1,2,3 -o OUT.f32\n");
        return 2;
    }
    int32_t *ids;
    int n = parse_tokens(toks, &ids);
    if (n <= 0) {
        free(ids);
        return cli_fail(al_err(AL_ERR_INVALID, "--tokens: no token ids"));
    }
    al_model *m;
    al_status st = load(argc, argv, &m);
    if (al_failed(&st)) {
        free(ids);
        return cli_fail(st);
    }
    cli_session *s = NULL;
    size_t V = (size_t)al_model_n_vocab(m);
    float *lg = malloc(sizeof(float) * V * (size_t)n);
    st = lg ? cli_session_init(&s, m, n, argc, argv) : al_err(AL_ERR_NOMEM, "out of memory");
    if (!al_failed(&st)) st = cli_session_eval(s, ids, n, lg, true);
    if (!al_failed(&st)) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(lg, sizeof(float), V * (size_t)n, f) != V * (size_t)n) st = al_err(AL_ERR_IO, "cannot write %s", out);
        if (f) fclose(f);
    }
    free(lg);
    free(ids);
    cli_session_free(s);
    al_model_free(m);
    return al_failed(&st) ? cli_fail(st) : 0;
}

int cmd_bench(int argc, char **argv) {
    int pp = cli_int(argc, argv, "-p", "--prompt", 512), tg = cli_int(argc, argv, "-n", "--gen", 128);
    int reps = cli_int(argc, argv, "-r", "--reps", 1), depth = cli_int(argc, argv, "-d", "--depth", 0);
    if (pp < 0 || tg < 0 || depth < 0 || reps < 1) return cli_fail(al_err(AL_ERR_INVALID, "bench: -p, -n, -d must be >= 0, -r >= 1"));
    al_model *m;
    al_status st = load(argc, argv, &m);
    if (al_failed(&st)) return cli_fail(st);
    char desc[256];
    al_model_describe(m, desc, sizeof desc);
    int V = al_model_n_vocab(m);
    cli_session *s;
    st = cli_session_init(&s, m, pp + depth + tg + 8, argc, argv);
    if (al_failed(&st)) {
        al_model_free(m);
        return cli_fail(st);
    }
    int nt = pp > depth ? pp : depth; /* random prompt / context tokens, at least one */
    if (nt < 1) nt = 1;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)nt);
    float *lg = malloc(sizeof(float) * (size_t)V);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < nt; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        toks[i] = (int32_t)(x % (uint64_t)V);
    }
    double best_pp = 0, best_tg = 0;
    for (int r = 0; r < reps && !al_failed(&st); r++) {
        cli_session_reset(s);
        double t0 = al_time_sec();
        if (pp > 0) st = cli_session_eval(s, toks, pp, lg, false);
        double t1 = al_time_sec();
        if (pp > 0 && pp / (t1 - t0) > best_pp) best_pp = pp / (t1 - t0);
        /* tg as llama-bench measures it: a separate test from an empty context (the first token,
         * which faults in the weights when pp is 0, is not timed), or from position depth */
        cli_session_reset(s);
        if (!al_failed(&st)) st = cli_session_eval(s, toks, depth > 0 ? depth : 1, lg, false);
        t0 = al_time_sec();
        for (int i = 0; i < tg && !al_failed(&st); i++) {
            const float *out; /* the logits stay where the backend put them (llama.cpp's llama_get_logits) */
            st = cli_session_decode(s, toks[i % (pp > 0 ? pp : 1)], lg, &out);
        }
        t1 = al_time_sec();
        if (tg > 0 && tg / (t1 - t0) > best_tg) best_tg = tg / (t1 - t0);
    }
    if (!al_failed(&st)) {
        int threads = al_cpu_threads(al_model_cpu(m));
        const bool gpu = cli_session_is_gpu(s);
        /* --bandwidth GB/s skips the measurement (e.g. a figure measured once, or a device's). On the GPU
         * the default is 3000 GB/s, the device-to-device copy rate measured on an H100 SXM
         * (docs/benchmarks-cuda.md) */
        double bw = cli_num(argc, argv, NULL, "--bandwidth", 0) * 1e9;
        if (bw <= 0) bw = gpu ? 3000e9 : al_measure_read_bandwidth(al_cpu_pool(al_model_cpu(m)), (size_t)1 << 30, 3);
        double bytes = (double)al_model_weight_bytes(m);
        double roof = bytes > 0 ? bw / bytes : 0;
        printf("model: %s\n", desc);
        if (gpu)
            printf("device: %s, all layers offloaded, bandwidth for the roofline: %.1f GB/s%s\n", cli_session_device(s),
                   bw / 1e9, cli_opt(argc, argv, NULL, "--bandwidth") ? "" : " (H100 SXM copy rate; --bandwidth to change)");
        else
            printf("threads: %d, isa: %s, measured read bandwidth: %.1f GB/s\n", threads, al_isa_name(al_cpu_isa(al_model_cpu(m))), bw / 1e9);
        printf("| test | tokens/s |\n|---|---|\n");
        if (pp > 0) printf("| pp%d | %.2f |\n", pp, best_pp);
        if (tg > 0 && depth > 0) printf("| tg%d @ d%d | %.2f |\n", tg, depth, best_tg);
        else if (tg > 0) printf("| tg%d | %.2f |\n", tg, best_tg);
        if (tg > 0)
            printf("decode roofline: %.2f tokens/s (%.2f MB/token); tg at %.1f%% of roofline\n", roof, bytes / 1e6,
                   roof > 0 ? 100.0 * best_tg / roof : 0);
    }
    free(toks);
    free(lg);
    cli_session_free(s);
    al_model_free(m);
    return al_failed(&st) ? cli_fail(st) : 0;
}
