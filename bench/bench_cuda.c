/*
 * bench_cuda.c — GPU prompt processing and decode throughput, llama-bench style, with the decode
 * bandwidth roofline.
 *
 *   bench_cuda -m MODEL.gguf [-m MODEL2.gguf ...] [-p 512] [-n 128] [-d DEPTH] [-r 3] [--kv f16|f32] [--no-graph]
 *              [--no-pdl] [--no-persist] [--bps N] [--rows 2|4] [--no-merge] [--no-unit-pre] [--poller 0..3] [--cluster 2|4] [--ahead 1..4] [--norm-prefetch] [--tagged -1..3|8..15] [--tag-gpu] [--tag-nap NS] [--keys 32|64] [--multi-min BYTES] [--ub N] [--phases] [--bw 3.0e12] [-ngl N]
 *              [--batch B]
 *
 * pp<P>: one al_cuda_session_eval of P random tokens from an empty context (last logits returned);
 * tg<N>: N al_cuda_session_decode calls from an empty context (the persistent kernel, or the decode
 * graph; logits copied to the session's pinned buffer, as llama.cpp's); with -d D ("tg<N> @ d<D>", as
 * llama-bench's depth) from position D, after an untimed prefill of D tokens. One untimed warm-up
 * repetition, then the median of -r repetitions. Roofline: bandwidth / weight bytes per token
 * (al_model_weight_bytes: every matrix read once per token), default 3.0 TB/s (H100 SXM HBM3).
 * --batch B: tg<N> is also run as B sessions decoded together (al_cuda_session_decode_batch, one pass
 * per step for all B, captured into a graph), reported as tokens/s over all B sessions.
 * -ngl N: partial offload (al_cuda_model_init_layers: the last N layers on the GPU, the layers before
 * them on the CPU's threads every token). Without CUDA (or without a device) it says so and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/model.h"

#ifndef ALLOY_HAVE_CUDA
int main(void) {
    printf("bench_cuda: built without CUDA\n");
    return 0;
}
#else
#include "alloy/cuda.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* --phases: the persistent program's time per kind of op, over 8 decode steps after the bench */
static void print_phases(al_cuda_session *s, const int32_t *toks, float *lg) {
    al_cuda_prog *p = al_cuda_session_prog(s);
    if (!p) return;
    int n_ops, n_sync, n_blk;
    al_cuda_prog_shape(p, &n_ops, &n_sync, &n_blk);
    al_cuda_prog_time *t = calloc((size_t)n_ops, sizeof *t), *sum = calloc((size_t)n_ops, sizeof *sum);
    /* per op, from the release of the barrier before it (the last block done with the op before): the
     * median and the last block entering, having its input and done, mean over the steps */
    double *bt = calloc(3 * (size_t)n_ops * (size_t)n_blk, sizeof *bt), *col = calloc((size_t)n_blk, sizeof *col);
    double(*rel)[6] = calloc((size_t)n_ops, sizeof *rel);
    char(*names)[96] = calloc((size_t)n_ops, sizeof *names);
    al_status st = al_cuda_prog_timing(p, true);
    const int steps = 8;
    for (int i = 0; i < steps && !al_failed(&st); i++) {
        st = al_cuda_session_eval(s, &toks[i], 1, lg, false);
        if (!al_failed(&st)) st = al_cuda_prog_times(p, t);
        if (!al_failed(&st)) st = al_cuda_prog_block_times(p, bt);
        for (int j = 0; j < n_ops && !al_failed(&st); j++) {
            double r = 0.0;
            for (int b = 0; b < n_blk; b++) {
                const double d = j ? bt[3 * ((size_t)(j - 1) * n_blk + b)] : bt[3 * (size_t)b + 1];
                if (b == 0 || (j ? d > r : d < r)) r = d;
            }
            for (int w = 0; w < 3; w++) {
                const int pt = w == 0 ? 1 : w == 1 ? 2 : 0; /* entered, input, done */
                double mx = 0.0;
                for (int b = 0; b < n_blk; b++) {
                    const double v = bt[3 * ((size_t)j * n_blk + b) + pt];
                    col[b] = v > 0.0 ? v - r : 0.0; /* no input stamp: not a product */
                    if (col[b] > mx) mx = col[b];
                }
                rel[j][2 * w] += median(col, n_blk) / steps, rel[j][2 * w + 1] += mx / steps;
            }
        }
        for (int j = 0; j < n_ops && !al_failed(&st); j++) {
            sum[j].us += t[j].us / steps, sum[j].work += t[j].work / steps;
            sum[j].enter += t[j].enter / steps, sum[j].input += t[j].input / steps;
        }
    }
    double ph[7];
    al_status sp = al_cuda_prog_attn_phases(p, ph);
    const bool ph_ok = !al_failed(&st) && !al_failed(&sp);
    (void)al_cuda_prog_timing(p, false);
    if (al_failed(&st)) {
        fprintf(stderr, "bench_cuda: phases: %s\n", st.msg);
    } else {
        printf("persistent kernel: %d ops, %d barriers, %d blocks; time per op kind (mean of %d steps at pos %d), µs from block 0 "
               "entering the op:\n",
               n_ops, n_sync, n_blk, steps, al_cuda_session_pos(s) - steps);
        printf("| op | count | µs each | last block entered | last block has its input | last block done (work) | µs per token "
               "|\n|---|---|---|---|---|---|---|\n");
        /* ops of one kind (the same name) are summed: grp[j] = the first op named as op j */
        int *grp = malloc(sizeof(int) * (size_t)n_ops), *cnt = calloc((size_t)n_ops, sizeof *cnt);
        for (int j = 0; j < n_ops; j++) {
            al_cuda_prog_op_name(p, j, names[j], sizeof names[j]);
            grp[j] = j;
            for (int k = 0; k < j; k++)
                if (!strcmp(names[k], names[j])) {
                    grp[j] = k;
                    break;
                }
            cnt[grp[j]]++;
        }
        for (int j = 0; j < n_ops; j++)
            if (grp[j] != j) {
                al_cuda_prog_time *a = &sum[grp[j]];
                a->us += sum[j].us, a->work += sum[j].work, a->enter += sum[j].enter, a->input += sum[j].input;
                for (int w = 0; w < 6; w++) rel[grp[j]][w] += rel[j][w];
            }
        double total = 0, wtotal = 0;
        for (int j = 0; j < n_ops; j++) {
            if (grp[j] != j) continue;
            const al_cuda_prog_time *a = &sum[j];
            const int c = cnt[j];
            total += a->us;
            wtotal += a->work;
            printf("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.1f |\n", names[j], c, a->us / c, a->enter / c, a->input / c,
                   a->work / c, a->us);
        }
        printf("| all | %d | | | | %.1f | %.1f |\n\n", n_ops, wtotal, total);
        printf("per op from the release of the barrier before it (the last block done with the previous op), µs, "
               "median block / last block:\n| op | entered | has its input | done |\n|---|---|---|---|\n");
        for (int j = 0; j < n_ops; j++) {
            if (grp[j] != j) continue;
            const double *a = rel[j];
            const int c = cnt[j];
            printf("| %s | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f |\n", names[j], a[0] / c, a[1] / c, a[2] / c, a[3] / c,
                   a[4] / c, a[5] / c);
        }
        free(grp);
        free(cnt);
        printf("\n");
        if (ph_ok && ph[0] + ph[6] > 0)
            printf("attention unit 0 (last step), µs: norm weights %.2f, q/k heads + K/V tiles %.2f, scores %.2f, softmax %.2f, P·V + stores %.2f, "
                   "split arrival %.2f, merge %.2f\n\n", ph[0], ph[1], ph[2], ph[3], ph[4], ph[5], ph[6]);
    }
    free(t);
    free(sum);
    free(names);
    free(bt);
    free(col);
    free(rel);
}

/* --batch: B sessions (s and B - 1 more) decoding tg steps as one batch each step; the median over
 * reps of the time of those tg steps, or < 0 on failure (message in *st) */
static double bench_batch(al_cuda_model *cm, al_cuda_session *s, const al_cuda_session_params *sp, int B, int tg, int reps, int V,
                          al_status *st) {
    al_cuda_session *ss[64] = {s};
    float *lg[64] = {0};
    int32_t tok[64];
    double t[64];
    if (B > 64) B = 64;
    if (reps > 63) reps = 63;
    for (int i = 1; i < B && !al_failed(st); i++) *st = al_cuda_session_init(&ss[i], cm, sp);
    for (int i = 0; i < B; i++)
        if (!(lg[i] = malloc(sizeof(float) * (size_t)V))) *st = al_err(AL_ERR_NOMEM, "bench: out of memory");
    if (!al_failed(st) && B > al_cuda_session_batch_max(s))
        *st = al_err(AL_ERR_INVALID, "--batch %d: at most %d", B, al_cuda_session_batch_max(s));
    for (int r = 0; r <= reps && !al_failed(st); r++) {
        for (int i = 0; i < B; i++) al_cuda_session_reset(ss[i]), tok[i] = (int32_t)((7919u * (unsigned)(i + 1)) % (unsigned)V);
        double a = al_time_sec();
        for (int k = 0; k < tg && !al_failed(st); k++) {
            *st = al_cuda_session_decode_batch(ss, tok, B, lg);
            for (int i = 0; i < B; i++) tok[i] = (int32_t)((unsigned)(tok[i] * 31 + k) % (unsigned)V);
        }
        if (r) t[r - 1] = al_time_sec() - a;
    }
    for (int i = 0; i < B; i++) free(lg[i]);
    al_status why;
    const int graphs = al_failed(st) ? 0 : al_cuda_session_batch_graphs(s, &why);
    if (!al_failed(st) && !graphs) printf("batched decode: no graph captured: %s\n", why.msg);
    for (int i = 1; i < B; i++) al_cuda_session_free(ss[i]);
    return al_failed(st) ? -1 : median(t, reps);
}

/* sp: the session parameters of the command line (n_ctx set here) */
static int bench_one(al_cuda *cu, const char *path, int pp, int tg, int depth, int reps, al_cuda_session_params sp, bool phases,
                     double bw, int ngl, int batch) {
    al_model *m;
    al_model_params mp = al_model_default_params();
    al_status st = al_model_load(&m, path, &mp);
    if (al_failed(&st)) {
        fprintf(stderr, "bench_cuda: %s\n", st.msg);
        return 1;
    }
    double t0 = al_time_sec();
    al_cuda_model *cm = NULL;
    st = al_cuda_model_init_layers(&cm, cu, m, ngl);
    double t_up = al_time_sec() - t0;
    al_cuda_session *s = NULL;
    sp.n_ctx = pp + depth + tg + 8;
    if (!al_failed(&st)) st = al_cuda_session_init(&s, cm, &sp);
    int V = al_model_n_vocab(m);
    int nt = pp > tg ? pp : tg; /* random tokens: prompt, generation, context */
    if (depth > nt) nt = depth;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)nt + 4);
    float *lg = malloc(sizeof(float) * (size_t)V);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < nt; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        toks[i] = (int32_t)(x % (uint64_t)V);
    }
    double tpp[64], ttg[64];
    if (reps > 63) reps = 63;
    for (int r = 0; r <= reps && !al_failed(&st); r++) { /* r == 0: warm-up */
        if (pp > 0) {
            al_cuda_session_reset(s);
            double a = al_time_sec();
            st = al_cuda_session_eval(s, toks, pp, lg, false);
            if (r) tpp[r - 1] = al_time_sec() - a;
        }
        if (tg > 0 && !al_failed(&st)) {
            al_cuda_session_reset(s);
            if (depth > 0) st = al_cuda_session_eval(s, toks, depth, lg, false); /* untimed context: decode from position depth */
            double a = al_time_sec();
            for (int i = 0; i < tg && !al_failed(&st); i++) {
                const float *out; /* logits left in the session's pinned buffer, as llama_get_logits */
                st = al_cuda_session_decode(s, toks[i], &out);
            }
            if (r) ttg[r - 1] = al_time_sec() - a;
        }
    }
    if (!al_failed(&st) && phases && tg >= 8) print_phases(s, toks, lg);
    if (!al_failed(&st) && al_cuda_session_prog(s) && al_cuda_prog_tag_level(al_cuda_session_prog(s))) { /* a wait that gave up: the numbers mean nothing */
        bool gave_up = false;
        st = al_cuda_prog_tag_failed(al_cuda_session_prog(s), &gave_up);
        if (!al_failed(&st) && gave_up) st = al_err(AL_ERR_INVALID, "tagged hand-off: a wait gave up (results invalid)");
    }
    double t_batch = 0;
    if (!al_failed(&st) && batch > 1 && tg > 0) t_batch = bench_batch(cm, s, &sp, batch, tg, reps, V, &st);
    if (!al_failed(&st)) {
        char desc[256], dev[256];
        al_model_describe(m, desc, sizeof desc);
        al_cuda_describe(cu, dev, sizeof dev);
        double bytes = (double)al_model_weight_bytes(m);
        printf("model: %s (%s)\n", path, desc);
        al_status why;
        bool active = al_cuda_session_graph_active(s, &why);
        al_status pwhy;
        bool pers = al_cuda_session_persistent_active(s, &pwhy);
        if (pers) {
            int n_ops = 0, n_sync = 0, n_blk = 0;
            al_cuda_prog_shape(al_cuda_session_prog(s), &n_ops, &n_sync, &n_blk);
            printf("decode: persistent kernel (%d ops, %d barriers, %d blocks in clusters of %d; tagged hand-off level %d%s, nap %d ns)\n",
                   n_ops, n_sync, n_blk, al_cuda_prog_cluster(al_cuda_session_prog(s)), al_cuda_prog_tag_level(al_cuda_session_prog(s)),
                   sp.persist_tag_gpu ? " gpu-scope" : "", sp.persist_tag_nap);
        }
        else printf("decode: graph/eager: %s\n", pwhy.msg);
        printf("device: %s; weights on device %.1f MB (upload %.2f s); KV %s; PDL %s; decode graph %s%s%s\n", dev,
               (double)al_cuda_model_bytes(cm) / 1e6, t_up, al_type_name(sp.kv_type), al_cuda_pdl(cu) ? "on" : "off", active ? "on" : "off",
               sp.use_graph && !active ? ": " : "", sp.use_graph && !active ? why.msg : "");
        printf("| test | tokens/s | ms/token |\n|---|---|---|\n");
        double pps = 0, tgs = 0;
        if (pp > 0) {
            double t = median(tpp, reps);
            pps = pp / t;
            printf("| pp%d | %.1f | %.4f |\n", pp, pps, 1e3 * t / pp);
        }
        if (tg > 0) {
            double t = median(ttg, reps);
            tgs = tg / t;
            if (depth > 0) printf("| tg%d @ d%d | %.1f | %.4f |\n", tg, depth, tgs, 1e3 * t / tg);
            else printf("| tg%d | %.1f | %.4f |\n", tg, tgs, 1e3 * t / tg);
            double roof = bw / bytes;
            if (batch > 1)
                printf("| tg%d x %d sessions (one batch per step) | %.1f | %.4f |\n", tg, batch, (double)tg * batch / t_batch,
                       1e3 * t_batch / ((double)tg * batch));
            printf("decode roofline at %.2f TB/s: %.1f tokens/s (%.2f MB/token); tg%d at %.1f%% of roofline\n\n", bw / 1e12,
                   roof, bytes / 1e6, tg, 100.0 * tgs / roof);
        }
    } else {
        fprintf(stderr, "bench_cuda: %s: %s\n", path, st.msg);
    }
    free(toks);
    free(lg);
    al_cuda_session_free(s);
    al_cuda_model_free(cm);
    al_model_free(m);
    return al_failed(&st) ? 1 : 0;
}

int main(int argc, char **argv) {
    const char *models[16];
    int n_models = 0, pp = 512, tg = 128, depth = 0, reps = 3;
    al_cuda_session_params sp = al_cuda_session_default_params();
    bool pdl = true, phases = false;
    long long multi_min = -1; /* --multi-min: al_cuda_set_mmq_multi_min (-1: its default) */
    double bw = 3.0e12;
    int ngl = -1, batch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-m") && v && n_models < 16) models[n_models++] = argv[++i];
        else if (!strcmp(a, "-p") && v) pp = atoi(argv[++i]);
        else if (!strcmp(a, "-n") && v) tg = atoi(argv[++i]);
        else if (!strcmp(a, "-d") && v) depth = atoi(argv[++i]);
        else if (!strcmp(a, "-r") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--kv") && v) sp.kv_type = !strcmp(argv[++i], "f32") ? AL_TYPE_F32 : AL_TYPE_F16;
        else if (!strcmp(a, "--no-graph")) sp.use_graph = false;
        else if (!strcmp(a, "--no-pdl")) pdl = false;
        else if (!strcmp(a, "--no-persist")) sp.persistent = false;
        else if (!strcmp(a, "--phases")) phases = true;
        else if (!strcmp(a, "--bps") && v) sp.persist_blocks_per_sm = atoi(argv[++i]);
        else if (!strcmp(a, "--rows") && v) sp.persist_rows = atoi(argv[++i]);
        else if (!strcmp(a, "--no-merge")) sp.persist_no_merge = true;
        else if (!strcmp(a, "--no-unit-pre")) sp.persist_no_unit_pre = true;
        else if (!strcmp(a, "--poller") && v) sp.persist_poller = atoi(argv[++i]);
        else if (!strcmp(a, "--tagged") && v) sp.persist_tagged = atoi(argv[++i]);
        else if (!strcmp(a, "--tag-gpu")) sp.persist_tag_gpu = true;
        else if (!strcmp(a, "--tag-nap") && v) sp.persist_tag_nap = atoi(argv[++i]);
        else if (!strcmp(a, "--cluster") && v) sp.persist_cluster = atoi(argv[++i]);
        else if (!strcmp(a, "--ahead") && v) sp.persist_ahead = atoi(argv[++i]);
        else if (!strcmp(a, "--norm-prefetch")) sp.persist_norm_prefetch = true;
        else if (!strcmp(a, "--keys") && v) sp.persist_attn_keys = atoi(argv[++i]);
        else if (!strcmp(a, "--multi-min") && v) multi_min = atoll(argv[++i]);
        else if (!strcmp(a, "--ub") && v) sp.ubatch = atoi(argv[++i]);
        else if (!strcmp(a, "--bw") && v) bw = atof(argv[++i]);
        else if (!strcmp(a, "-ngl") && v) ngl = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && v) batch = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_cuda -m MODEL.gguf [-m ...] [-p 512] [-n 128] [-d DEPTH] [-r 3] [--kv f16|f32] [--no-graph] [--no-pdl] [--no-persist] [--bps N] [--rows 2|4] [--no-merge] [--no-unit-pre] [--poller 0..3] [--cluster 2|4] [--ahead 1..4] [--norm-prefetch] [--tagged -1..3|8..15] [--tag-gpu] [--tag-nap NS] [--keys 32|64] [--multi-min BYTES] [--ub N] [--phases] [--bw B/s] [-ngl N] [--batch B]\n");
            return 2;
        }
    }
    if (!n_models || reps < 1) {
        fprintf(stderr, "bench_cuda: no model (-m) given\n");
        return 2;
    }
    if (al_cuda_device_count() == 0) {
        printf("bench_cuda: no CUDA device\n");
        return 0;
    }
    al_cuda *cu;
    al_status st = al_cuda_init(&cu, 0);
    if (al_failed(&st)) {
        fprintf(stderr, "bench_cuda: %s\n", st.msg);
        return 1;
    }
    al_cuda_set_pdl(cu, pdl);
    al_cuda_set_mmq_multi_min(cu, multi_min);
    int rc = 0;
    for (int i = 0; i < n_models; i++) rc |= bench_one(cu, models[i], pp, tg, depth, reps, sp, phases, bw, ngl, batch);
    al_cuda_free(cu);
    return rc;
}
#endif
