/*
 * test_cuda_models.c — the GPU forward pass (al_cuda_session) against the CPU forward pass
 * (al_session) and against the Hugging Face logits, for every reference model in tests/data/hf:
 *  - prefill of the 37 reference tokens (all logits), F32 KV cache: GPU vs CPU and GPU vs HF within
 *    1e-4 relative (max |Δ| / max |ref|);
 *  - 12 decode steps after the prompt (greedy on the GPU logits; from the 3rd step on they replay the
 *    captured CUDA graph): each step's logits vs the CPU's for the same token within 1e-4, and the
 *    first 8 greedy tokens equal HF's greedy_next8;
 *  - the same with an F16 KV cache within 1e-2 (half-precision keys/values);
 *  - a Q8_0 GGUF of every reference model on the GPU vs the CPU on the same weights dequantized to
 *    F32: prefill (F16 GEMM) within 1e-2, decode and token-by-token (int8 activations, dp4a) 5e-2;
 *  - decode runs the persistent kernel or the captured graph (one of them is active);
 *  - the persistent decode kernel against the graph path on the same Q8_0 models (the same int8
 *    products, only float summation order differs — which can flip an int8 rounding, hence the int8
 *    decode bound): 80 greedy steps after the prompt and 48 steps from an empty context, F16 and F32
 *    caches, within 5e-2 (the first step over 1e-3 is printed); it must be active for every architecture
 *    whose decode is fused (all but zamba2 and jamba) and report why not for the others;
 *  - the engine on the GPU backend (al_cuda_engine_backend_init; what `alloy serve --device cuda`
 *    runs): 6 greedy requests over 3 slots on a hybrid Mamba-2/attention model, prompts prefilled in
 *    chunks of 16; every generated token is teacher-forced through a lone GPU session and the CPU and
 *    must be their argmax or within the int8 decode tolerance of it, and at least 90 % must be the lone
 *    GPU session's argmax exactly; the same with slots decoded in batches (al_cuda_session_decode_batch);
 *  - partial offload (al_cuda_model_init_layers: half, none, all but one of the layers on the device,
 *    the rest on the CPU each step) within 1e-4 of the CPU: prompt, 8 decode steps, a batch of two;
 *    and al_cuda_session_truncate (attention-only models: re-evaluated tokens give the same logits;
 *    models with SSM state: AL_ERR_UNSUPPORTED); al_cuda_session_snapshot / restore (all layers,
 *    partial too): the tokens after the snapshot re-evaluated after a restore give the same logits;
 *  - al_cuda_session_decode_batch itself: 5 sessions at different positions decoded together vs each
 *    alone, 10 steps alternating between one set of 5 and two sets of 3 and 2 (other orders, other
 *    leaders: each set captured once, then replayed from its graph), every architecture, within the
 *    int8 decode bound 5e-2.
 * Exits 77 (ctest: skipped) when built without CUDA or when no device is present.
 *
 * Built without nvcc, the same file is test_cuda_models_emul: src/cuda's C files (the forward pass, the
 * batched decode, the serving backend) on the CPU-emulated device of tests/cuda_emul.c (CPU ops,
 * graphs recorded and replayed, persistent programs as their recorded ops run in order, fused decode
 * products for the integer types), which checks their host logic in CI; the Q8_0 test (bounds of the
 * GPU's F16 prefill GEMM; the emulator's products take the CPU's int8 path) is left out there.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#ifndef ALLOY_HAVE_CUDA
int main(void) {
    printf("built without CUDA: skipped\n");
    return 77;
}
#else

#include "alloy/cuda.h"
#include "alloy/engine.h"
#include "alloy/model.h"
#include "alloy/tokenizer.h"
#include "cuda/prog_plan.h"

static al_cuda *g_cu; /* test-program state */

/* GPU on model `path` vs CPU on `cpu_path` (the same weights, maybe dequantized); tol bounds the
 * prefill, tol_dec the decode steps, tol_step the token-by-token pass; tol_ref > 0 adds the HF checks. */
static void compare(const char *name, const char *path, const char *cpu_path, const al_test_ref *r, al_type kvt, double tol,
                    double tol_dec, double tol_step, double tol_ref) {
    al_model *m, *mc = NULL;
    al_model_params mp = al_model_default_params();
    mp.n_threads = 2;
    al_status st = al_model_load(&m, path, &mp);
    if (!al_failed(&st) && strcmp(path, cpu_path)) {
        st = al_model_load(&mc, cpu_path, &mp);
        if (al_failed(&st)) al_model_free(m);
    }
    if (al_failed(&st)) {
        CHECKF(0, "%s: %s", name, st.msg);
        return;
    }
    int V = al_model_n_vocab(m), T = r->n_ids;
    al_cuda_model *cm;
    st = al_cuda_model_init(&cm, g_cu, m);
    if (al_failed(&st)) {
        CHECKF(0, "%s: %s", name, st.msg);
        al_model_free(m);
        return;
    }
    al_session *cs;
    al_cuda_session *gs;
    al_cuda_session_params gp = al_cuda_session_default_params();
    gp.n_ctx = 128;
    gp.kv_type = kvt;
    REQUIRE_OK(al_session_init(&cs, mc ? mc : m, 128));
    REQUIRE_OK(al_cuda_session_init(&gs, cm, &gp));
    float *lc = malloc(sizeof(float) * (size_t)V * (size_t)T), *lg = malloc(sizeof(float) * (size_t)V * (size_t)T);
    CHECK_OK(al_session_eval(cs, r->ids, T, lc, true));
    for (size_t i = 0; i < (size_t)V * (size_t)T; i++) lg[i] = NAN; /* poison: every logit must be written */
    CHECK_OK(al_cuda_session_eval(gs, r->ids, T, lg, true));
    double e = al_test_rel_err(lg, lc, (size_t)V * (size_t)T);
    printf("  %s %s: prefill GPU vs CPU rel err %.3g", name, al_type_name(kvt), e);
    CHECKF(e < tol, "%s %s: prefill GPU vs CPU rel err %g", name, al_type_name(kvt), e);
    if (tol_ref > 0) {
        double eh = al_test_rel_err(lg, r->logits, (size_t)V * (size_t)T);
        printf(", vs HF %.3g", eh);
        CHECKF(eh < tol_ref, "%s: prefill GPU vs HF rel err %g", name, eh);
    }
    { /* micro-batches of 5+ tokens: the same logits as one micro-batch (state and cache carried across);
       * none of <= 4 tokens, which would take the int8-activation products of decode */
        al_cuda_session *us;
        al_cuda_session_params up = gp;
        up.ubatch = 5;
        while (up.ubatch < T && T % up.ubatch != 0 && T % up.ubatch <= 4) up.ubatch++;
        REQUIRE_OK(al_cuda_session_init(&us, cm, &up));
        float *lu = malloc(sizeof(float) * (size_t)V * (size_t)T);
        CHECK_OK(al_cuda_session_eval(us, r->ids, T, lu, true));
        double eu = al_test_rel_err(lu, lg, (size_t)V * (size_t)T);
        printf(", micro-batches of %d %.3g", up.ubatch, eu);
        CHECKF(up.ubatch < T, "%s: prompt of %d tokens too short for micro-batches", name, T);
        CHECKF(eu < 1e-3, "%s %s: prefill in micro-batches of %d vs one rel err %g", name, al_type_name(kvt), up.ubatch, eu);
        free(lu);
        al_cuda_session_free(us);
    }
    /* decode: greedy on the GPU; the CPU fed the same tokens */
    int32_t tok = (int32_t)al_test_argmax(lg + (size_t)(T - 1) * (size_t)V, V);
    double worst = 0;
    bool greedy_ok = true;
    for (int i = 0; i < 12; i++) {
        if (i < 8 && tol_ref > 0 && tok != r->greedy[i]) greedy_ok = false;
        CHECK_OK(al_session_eval(cs, &tok, 1, lc, false));
        const float *dl = lg; /* odd steps: al_cuda_session_decode (logits left in the pinned buffer) */
        if (i % 2) CHECK_OK(al_cuda_session_decode(gs, tok, &dl));
        else CHECK_OK(al_cuda_session_eval(gs, &tok, 1, lg, false));
        if (!dl) break;
        double ed = al_test_rel_err(dl, lc, (size_t)V);
        if (ed > worst) worst = ed;
        tok = (int32_t)al_test_argmax(dl, V);
    }
    al_status why, pwhy;
    bool graph = al_cuda_session_graph_active(gs, &why), persist = al_cuda_session_persistent_active(gs, &pwhy);
    CHECKF(graph || persist, "%s: neither the decode graph nor the persistent kernel is active: %s / %s", name, why.msg, pwhy.msg);
    printf(", decode (%s) worst step %.3g", persist ? "persistent" : graph ? "graph" : "eager", worst);
    CHECKF(worst < tol_dec, "%s %s: decode GPU vs CPU rel err %g", name, al_type_name(kvt), worst);
    if (tol_ref > 0) CHECKF(greedy_ok, "%s %s: GPU greedy tokens differ from HF greedy_next8", name, al_type_name(kvt));
    CHECK(al_cuda_session_pos(gs) == T + 12);
    /* reset, then token-by-token prefill equals the batched one at the last position */
    al_cuda_session_reset(gs);
    al_session_reset(cs);
    CHECK_OK(al_session_eval(cs, r->ids, T, lc, false));
    for (int i = 0; i < T; i++) CHECK_OK(al_cuda_session_eval(gs, &r->ids[i], 1, lg, false));
    double e1 = al_test_rel_err(lg, lc, (size_t)V);
    printf(", token-by-token %.3g", e1);
    CHECKF(e1 < tol_step, "%s %s: step-by-step prefill vs CPU rel err %g", name, al_type_name(kvt), e1);
    { /* the same with attention / SSM units prepared only after the barrier (al_cuda_prog_set_unit_pre),
       * the barrier polled by sub-block 0 (al_cuda_prog_set_poller; default 3), weight rows put into L2 three steps
       * ahead (al_cuda_prog_set_prefetch_ahead) and norm weights during the barrier
       * (al_cuda_prog_set_norm_prefetch) */
        al_cuda_session *ns;
        al_cuda_session_params np = gp;
        np.persist_no_unit_pre = true;
        np.persist_poller = 0;
        np.persist_cluster = 2; /* clusters of 2 where the GPU holds the grid in them */
        np.persist_ahead = 3;
        np.persist_norm_prefetch = true;
        REQUIRE_OK(al_cuda_session_init(&ns, cm, &np));
        for (int i = 0; i < T; i++) CHECK_OK(al_cuda_session_eval(ns, &r->ids[i], 1, lg, false));
        double en = al_test_rel_err(lg, lc, (size_t)V);
        printf(", units prepared after the barrier, poller 0, clusters of 2, prefetch 3 steps ahead, norm prefetch: %.3g", en);
        CHECKF(en < tol_step, "%s %s: step-by-step with the decode knobs set, vs CPU rel err %g", name, al_type_name(kvt), en);
        al_cuda_session_free(ns);
    }
    printf("\n");
    /* bad input is refused */
    int32_t bad = V;
    CHECK_ERR(al_cuda_session_eval(gs, &bad, 1, lg, false), AL_ERR_RANGE);
    CHECK_ERR(al_cuda_session_decode(gs, bad, NULL), AL_ERR_RANGE);
    free(lc);
    free(lg);
    al_cuda_session_free(gs);
    al_session_free(cs);
    al_cuda_model_free(cm);
    al_model_free(m);
    al_model_free(mc);
}

static const char *const archs[] = {"llama", "qwen3", "mamba2", "nemotron_h", "zamba2", "jamba", "qwen2", "llama3_rope"};
#define N_ARCHS (int)(sizeof archs / sizeof archs[0])

static void test_hf_f32_cache(void) {
    for (int i = 0; i < N_ARCHS; i++) {
        al_test_ref r = {0};
        REQUIRE(al_test_load_ref(archs[i], &r));
        char p[256];
        snprintf(p, sizeof p, "hf/%s", archs[i]);
        compare(archs[i], al_test_path(p), al_test_path(p), &r, AL_TYPE_F32, 1e-4, 1e-4, 1e-4, 2e-4);
        free(r.logits);
    }
}

static void test_hf_f16_cache(void) {
    for (int i = 0; i < N_ARCHS; i++) {
        al_test_ref r = {0};
        REQUIRE(al_test_load_ref(archs[i], &r));
        char p[256];
        snprintf(p, sizeof p, "hf/%s", archs[i]);
        compare(archs[i], al_test_path(p), al_test_path(p), &r, AL_TYPE_F16, 1e-2, 1e-2, 1e-2, 0);
        free(r.logits);
    }
}

/* Q8_0 GGUF on the GPU vs the CPU on the same weights dequantized to F32 (so the CPU reference has no
 * activation rounding): prefill through the F16 GEMM within 1e-2; decode and the token-by-token pass
 * round activations to int8 blocks of 32 (dp4a matrix-vector, llama.cpp's MMVQ scheme): 5e-2 of
 * max |logit| over 12 steps of these tiny models (measured on an H100: ≤ 2.4 % for 6 of the 8, 3.4 %
 * llama3_rope, 4.5 % zamba2; the exactness of the kernels is checked per matrix in test_cuda_ops).
 * (The CPU on the Q8_0 file itself is no closer a reference: its own Q8 activations put it up to 17 %
 * away from the GPU on jamba.) */
static __attribute__((unused)) void test_gguf_q8_0(void) {
    for (int i = 0; i < N_ARCHS; i++) {
        al_test_ref r = {0};
        REQUIRE(al_test_load_ref(archs[i], &r));
        char src[256], out[256], deq[256];
        snprintf(src, sizeof src, "hf/%s", archs[i]);
        snprintf(out, sizeof out, "test_cuda_%s_q8_0.gguf", archs[i]);
        snprintf(deq, sizeof deq, "test_cuda_%s_q8_0_f32.gguf", archs[i]);
        al_status st = al_model_convert(al_test_path(src), out, "Q8_0", 2, NULL, NULL);
        if (!al_failed(&st)) st = al_model_convert(out, deq, "F32", 2, NULL, NULL);
        if (al_failed(&st)) {
            CHECKF(0, "%s: convert: %s", archs[i], st.msg);
            free(r.logits);
            continue;
        }
        compare(out, out, deq, &r, AL_TYPE_F32, 1e-2, 5e-2, 5e-2, 0);
        remove(out);
        remove(deq);
        free(r.logits);
    }
}

/* tests/data/hf/<arch> as a Q8_0 GGUF (the file `out`, made here), loaded and uploaded to g_cu */
static al_status q8_model(const char *arch, const char *tag, char *out, size_t size, al_model **m, al_cuda_model **cm) {
    char src[256];
    snprintf(src, sizeof src, "hf/%s", arch);
    snprintf(out, size, "test_cuda_%s_%s.gguf", tag, arch);
    *m = NULL;
    *cm = NULL;
    al_model_params mp = al_model_default_params();
    al_status st = al_model_convert(al_test_path(src), out, "Q8_0", 2, NULL, NULL);
    if (!al_failed(&st)) st = al_model_load(m, out, &mp);
    if (!al_failed(&st)) st = al_cuda_model_init(cm, g_cu, *m);
    return st;
}

/* one persistent-vs-graph run; returns the worst step's relative error */
static double persist_steps(al_cuda_session *pa, al_cuda_session *pb, const al_test_ref *r, int V, bool prompt, int steps) {
    float *la = malloc(sizeof(float) * (size_t)V), *lb = malloc(sizeof(float) * (size_t)V);
    double worst = 0;
    int32_t tok = r->ids[0];
    if (prompt) {
        CHECK_OK(al_cuda_session_eval(pa, r->ids, r->n_ids, la, false));
        CHECK_OK(al_cuda_session_eval(pb, r->ids, r->n_ids, lb, false));
        tok = (int32_t)al_test_argmax(la, V);
    }
    for (int i = 0; i < steps; i++) {
        for (int j = 0; j < V; j++) la[j] = lb[j] = NAN;
        CHECK_OK(al_cuda_session_eval(pa, &tok, 1, la, false));
        CHECK_OK(al_cuda_session_eval(pb, &tok, 1, lb, false));
        double e = al_test_rel_err(la, lb, (size_t)V);
        if (!(e <= 1e-3) && worst <= 1e-3) printf("    first step over 1e-3: %d (position %d): %.3g\n", i, al_cuda_session_pos(pa) - 1, e);
        if (!(e <= worst)) worst = e; /* NaN sticks */
        tok = prompt ? (int32_t)al_test_argmax(la, V) : r->ids[(i + 1) % r->n_ids];
    }
    free(la);
    free(lb);
    return worst;
}

/* a persistent program of params pt against the graph path of pg, both at n_ctx 384, 320 steps past no
 * prompt (positions to 320: past 4 key splits of 64, where the attention keeps its barrier only at
 * some positions); the worst logit difference, *gave_up whether a tagged wait gave up (NAN / true
 * where a session could not start) */
static double long_steps(al_cuda_model *cm, const al_cuda_session_params *pt, const al_cuda_session_params *pg, const al_test_ref *r,
                         int V, bool *gave_up) {
    al_cuda_session_params pl = *pt, gl = *pg;
    pl.n_ctx = gl.n_ctx = 384;
    al_cuda_session *tl = NULL, *gls = NULL;
    double e = NAN;
    *gave_up = true;
    al_status st = al_cuda_session_init(&tl, cm, &pl);
    if (!al_failed(&st)) st = al_cuda_session_init(&gls, cm, &gl);
    CHECK_OK(st);
    if (!al_failed(&st)) {
        e = persist_steps(tl, gls, r, V, false, 320);
        CHECK_OK(al_cuda_prog_tag_failed(al_cuda_session_prog(tl), gave_up));
    }
    al_cuda_session_free(tl);
    al_cuda_session_free(gls);
    return e;
}

static void test_persistent(void) {
    for (int i = 0; i < N_ARCHS; i++) {
        al_test_ref r = {0};
        REQUIRE(al_test_load_ref(archs[i], &r));
        char out[256];
        al_model *m;
        al_cuda_model *cm;
        al_status st = q8_model(archs[i], "persist", out, sizeof out, &m, &cm);
        CHECKF(!al_failed(&st), "%s: %s", archs[i], st.msg);
        const bool expect = strcmp(archs[i], "zamba2") && strcmp(archs[i], "jamba");
        for (int kv = 0; kv < 2 && !al_failed(&st); kv++) {
            al_cuda_session_params pp = al_cuda_session_default_params(), pg = pp;
            pp.n_ctx = pg.n_ctx = 128;
            pp.kv_type = pg.kv_type = kv ? AL_TYPE_F32 : AL_TYPE_F16;
            pp.persist_tagged = AL_TAG_OFF; /* the barrier-only program; the tagged ones below */
            pg.persistent = false;
            al_cuda_session *sa = NULL, *sb = NULL;
            REQUIRE_OK(al_cuda_session_init(&sa, cm, &pp));
            REQUIRE_OK(al_cuda_session_init(&sb, cm, &pg));
            al_status why;
            const bool on = al_cuda_session_persistent_active(sa, &why);
            CHECKF(on == expect, "%s: persistent decode %s (%s)", archs[i], on ? "on" : "off", why.msg);
            CHECKF(on || why.msg[0], "%s: no reason given for no persistent decode", archs[i]);
            CHECK(!al_cuda_session_persistent_active(sb, NULL));
            if (on && !kv) { /* the default parameters' tagged level (AL_TAG_AUTO): the edges product -> product and
                              * attention -> wo for these small transformers, off where a layer is an SSM */
                al_cuda_session_params pa = al_cuda_session_default_params();
                pa.n_ctx = 64;
                al_cuda_session *sd = NULL;
                REQUIRE_OK(al_cuda_session_init(&sd, cm, &pa));
                const int lv = al_cuda_prog_tag_level(al_cuda_session_prog(sd));
#ifdef ALLOY_CUDA_EMULATED /* the emulator's programs keep every barrier */
                CHECKF(lv == AL_TAG_OFF, "%s: emulated tagged level %d", archs[i], lv);
#else
                const bool ssm = !strcmp(archs[i], "mamba2") || !strcmp(archs[i], "nemotron_h");
                CHECKF(lv == (ssm || al_model_n_embd(m) > 1024 ? AL_TAG_OFF : AL_TAG_SMALL), "%s: automatic tagged level %d", archs[i],
                       lv);
#endif
                al_cuda_session_free(sd);
            }
            if (on) {
                const int V = al_model_n_vocab(m);
                const double e1 = persist_steps(sa, sb, &r, V, true, 80);
                al_cuda_session_reset(sa);
                al_cuda_session_reset(sb);
                const double e2 = persist_steps(sa, sb, &r, V, false, 48);
                printf("  %s %s: persistent vs graph: 80 steps after the prompt %.3g, 48 from empty %.3g\n", archs[i],
                       kv ? "F32" : "F16", e1, e2);
                /* the two paths run the same integer products; where the persistent attention sums in another
                 * order (1e-7), an activation of the next Q8_0 product can round to the neighbouring int8 step
                 * and move these tiny random models' logits by ~1 %, which then stays in the KV cache — so the
                 * bound is the int8 decode tolerance of the tests above (the attention unit itself is held to
                 * 2e-5 of the CPU in test_cuda_ops) */
                CHECKF(e1 < 5e-2 && e2 < 5e-2, "%s %s: persistent decode differs from the graph path: %g / %g", archs[i],
                       kv ? "F32" : "F16", e1, e2);
                /* tagged hand-off (al_cuda_prog_set_tagged), each level: fewer barriers, the same results; the F32-cache
                 * runs with gpu-scope words, a nap between reloads and clusters of 2 */
                int ns_prev = 0;
                al_cuda_prog_shape(al_cuda_session_prog(sa), NULL, &ns_prev, NULL);
                for (int lv = AL_TAG_PRODUCTS; lv <= AL_TAG_FULL; lv++) {
                    al_cuda_session_params pt = pp;
                    pt.persist_tagged = lv;
                    pt.persist_tag_gpu = kv;
                    pt.persist_tag_nap = kv ? 64 : 0;
                    pt.persist_cluster = kv ? 2 : 0; /* the barriers left in clusters of 2 (where the GPU holds them) */
                    al_cuda_session *sc = NULL;
                    REQUIRE_OK(al_cuda_session_init(&sc, cm, &pt));
                    CHECKF(al_cuda_session_persistent_active(sc, &why), "%s: tagged persistent decode off (%s)", archs[i], why.msg);
                    int ns_c = 0;
                    al_cuda_prog_shape(al_cuda_session_prog(sc), NULL, &ns_c, NULL);
                    const bool dense = strcmp(archs[i], "mamba2") && strcmp(archs[i], "nemotron_h");
#ifndef ALLOY_CUDA_EMULATED /* the emulator's programs keep every barrier */
                    CHECKF(dense ? ns_c < ns_prev : ns_c <= ns_prev, "%s level %d: tagged program keeps %d barriers (level below: %d)",
                           archs[i], lv, ns_c, ns_prev);
#endif
                    ns_prev = ns_c;
                    al_cuda_session_reset(sb);
                    const double e3 = persist_steps(sc, sb, &r, V, true, 80);
                    al_cuda_session_reset(sc);
                    al_cuda_session_reset(sb);
                    const double e4 = persist_steps(sc, sb, &r, V, false, 48);
                    bool gave_up = true;
                    CHECK_OK(al_cuda_prog_tag_failed(al_cuda_session_prog(sc), &gave_up));
                    CHECKF(!gave_up, "%s level %d: a tagged wait gave up", archs[i], lv);
                    printf("  %s %s: tagged level %d (%d barriers) vs graph: %.3g, %.3g\n", archs[i], kv ? "F32" : "F16", lv, ns_c, e3, e4);
                    CHECKF(e3 < 5e-2 && e4 < 5e-2, "%s %s level %d: tagged persistent decode differs from the graph path: %g / %g",
                           archs[i], kv ? "F32" : "F16", lv, e3, e4);
                    /* against the barrier program on the tagged kernel instance (al_cuda_prog_set_kernel_ref; the
                     * default instance is another compilation, measured 1e-7 of the logits apart, 6e-3 where that
                     * flipped an int8 step of llama F16): the same products and sums in the same order, bit for bit
                     * (the H100 run of 55dd31f, when one kernel served both: 0 everywhere). Not where the order
                     * differs: the SSM models' grouped norms sum with shared-memory atomics, and at level 3 wo
                     * merges tagged key splits online from position 64 on — those keep the int8 decode bound. */
                    al_cuda_session_params pr = pt;
                    pr.persist_kernel_ref = true;
                    al_cuda_session *sr = NULL;
                    REQUIRE_OK(al_cuda_session_init(&sr, cm, &pr));
                    al_cuda_session_reset(sc);
                    const double e7 = persist_steps(sc, sr, &r, V, true, 80);
                    printf("  %s %s: tagged level %d vs barriers (same instance), 80 steps: %.3g\n", archs[i], kv ? "F32" : "F16", lv,
                           e7);
                    const bool exact = dense && lv < AL_TAG_FULL;
                    CHECKF(exact ? e7 == 0.0 : e7 < 5e-2, "%s %s level %d: tagged decode differs from the barrier program: %g", archs[i],
                           kv ? "F32" : "F16", lv, e7);
                    al_cuda_session_free(sr);
                    al_cuda_session_free(sc);
                    if (lv == AL_TAG_FULL && !kv && !strcmp(archs[i], "qwen3")) {
                        /* the attention's barrier that only some positions meet (sync 2): past 4 key splits (positions
                         * >= 256), and from 2 with wo's merge off */
                        al_cuda_session_params pn = pt;
                        pn.persist_no_merge = true;
                        al_cuda_session *tn = NULL;
                        REQUIRE_OK(al_cuda_session_init(&tn, cm, &pn));
                        bool gl_up = true, gn_up = true;
                        const double e5 = long_steps(cm, &pt, &pg, &r, V, &gl_up);
                        al_cuda_session_reset(sb);
                        const double e6 = persist_steps(tn, sb, &r, V, true, 80);
                        CHECK_OK(al_cuda_prog_tag_failed(al_cuda_session_prog(tn), &gn_up));
                        printf("  %s: tagged, 320 steps (to position 320) %.3g; tagged without the merge in wo %.3g\n", archs[i], e5, e6);
                        CHECKF(!gl_up && !gn_up, "%s: a tagged wait gave up (long context %d, no merge %d)", archs[i], gl_up, gn_up);
                        CHECKF(e5 < 5e-2 && e6 < 5e-2, "%s: tagged decode past 4 splits / without the merge differs: %g / %g", archs[i], e5,
                               e6);
                        al_cuda_session_free(tn);
                    }
                }
                /* the edges one by one (AL_TAG_EDGES | mask): only after the attentions, both of the attentions', and
                 * the small transformers' default (AL_TAG_AUTO): after the products and the attentions */
                int ns0 = 0;
                al_cuda_prog_shape(al_cuda_session_prog(sa), NULL, &ns0, NULL);
                const int em[3] = {AL_TAG_EDGES | AL_TAG_E_AP, AL_TAG_EDGES | AL_TAG_E_PA | AL_TAG_E_AP, AL_TAG_SMALL};
                for (int e = 0; e < 3 && !kv; e++) {
                    al_cuda_session_params pe = pp;
                    pe.persist_tagged = em[e];
                    al_cuda_session *se = NULL;
                    REQUIRE_OK(al_cuda_session_init(&se, cm, &pe));
                    int ns_e = 0;
                    al_cuda_prog_shape(al_cuda_session_prog(se), NULL, &ns_e, NULL);
#ifndef ALLOY_CUDA_EMULATED
                    const bool has_attn = strcmp(archs[i], "mamba2") != 0;
                    CHECKF(has_attn ? ns_e < ns0 : ns_e == ns0, "%s edges %d: %d barriers (barrier program %d)", archs[i], em[e], ns_e, ns0);
                    CHECKF(al_cuda_prog_tag_level(al_cuda_session_prog(se)) == em[e], "%s: edges level %d", archs[i],
                           al_cuda_prog_tag_level(al_cuda_session_prog(se)));
#endif
                    al_cuda_session_reset(sb);
                    const double ee = persist_steps(se, sb, &r, V, true, 80);
                    bool up = true;
                    CHECK_OK(al_cuda_prog_tag_failed(al_cuda_session_prog(se), &up));
                    printf("  %s: tagged edges %d (%d barriers) vs graph, 80 steps: %.3g\n", archs[i], em[e], ns_e, ee);
                    CHECKF(!up && ee < 5e-2, "%s edges %d: a wait gave up (%d) or decode differs from the graph path: %g", archs[i], em[e],
                           up, ee);
                    al_cuda_session_free(se);
                    if (em[e] == AL_TAG_SMALL && !strcmp(archs[i], "qwen3")) { /* the default past 4 key splits */
                        bool l_up = true;
                        const double el = long_steps(cm, &pe, &pg, &r, V, &l_up);
                        printf("  %s: tagged edges %d, 320 steps (to position 320): %.3g\n", archs[i], em[e], el);
                        CHECKF(!l_up && el < 5e-2, "%s edges %d, 320 steps: a wait gave up (%d) or decode differs: %g", archs[i], em[e],
                               l_up, el);
                    }
                }
            } else {
                printf("  %s: persistent decode off: %s\n", archs[i], why.msg);
            }
            al_cuda_session_free(sa);
            al_cuda_session_free(sb);
        }
        al_cuda_model_free(cm);
        al_model_free(m);
        remove(out);
        free(r.logits);
    }
}

/* snapshot after 8 tokens, 4 more (logits X), 3 others, restore: the same 4 give X again */
static double snapshot_check(al_cuda_model *cm, const al_test_ref *r, int V) {
    al_cuda_session_params gp = al_cuda_session_default_params();
    gp.n_ctx = 64;
    gp.kv_type = AL_TYPE_F32;
    al_cuda_session *s = NULL;
    if (al_cuda_session_init(&s, cm, &gp).code) return INFINITY;
    float *x = malloc(sizeof(float) * (size_t)V), *y = malloc(sizeof(float) * (size_t)V);
    double e = INFINITY;
    if (!al_cuda_session_eval(s, r->ids, 8, x, false).code && !al_cuda_session_snapshot(s).code &&
        !al_cuda_session_eval(s, r->ids + 8, 4, x, false).code && !al_cuda_session_eval(s, r->ids + 20, 3, y, false).code &&
        !al_cuda_session_restore(s).code && al_cuda_session_pos(s) == 8 && !al_cuda_session_eval(s, r->ids + 8, 4, y, false).code)
        e = al_test_rel_err(y, x, (size_t)V);
    CHECK_OK(al_cuda_session_restore(s)); /* still valid after going on from it: back again */
    CHECK(al_cuda_session_pos(s) == 8);
    al_cuda_session_reset(s);
    CHECK(al_cuda_session_restore(s).code == AL_ERR_NOT_FOUND); /* reset drops it */
    free(x);
    free(y);
    al_cuda_session_free(s);
    return e;
}

/* Partial offload (al_cuda_model_init_layers): with half of the layers, none and all but one on the
 * device, every reference model (F32 weights, F32 cache) gives the CPU's logits within 1e-4: the prompt
 * (all positions), 8 greedy decode steps, then two sessions decoded as one batch (each its own CPU
 * layers); the device holds fewer bytes than with every layer. */
static void test_partial(void) {
    for (int a = 0; a < N_ARCHS; a++) {
        al_test_ref r = {0};
        REQUIRE(al_test_load_ref(archs[a], &r));
        char src[256];
        snprintf(src, sizeof src, "hf/%s", archs[a]);
        al_model *m = NULL;
        al_model_params mp = al_model_default_params();
        mp.n_threads = 2;
        REQUIRE_OK(al_model_load(&m, al_test_path(src), &mp));
        const int V = al_model_n_vocab(m), T = r.n_ids, L = al_model_n_layer(m);
        al_cuda_model *full = NULL;
        REQUIRE_OK(al_cuda_model_init(&full, g_cu, m));
        const int counts[3] = {L / 2, 0, L - 1};
        float *lc = malloc(sizeof(float) * (size_t)V * (size_t)T), *lg = malloc(sizeof(float) * (size_t)V * (size_t)T);
        float *lb[2] = {malloc(sizeof(float) * (size_t)V), malloc(sizeof(float) * (size_t)V)};
        for (int k = 0; k < 3; k++) {
            al_cuda_model *cm = NULL;
            REQUIRE_OK(al_cuda_model_init_layers(&cm, g_cu, m, counts[k]));
            CHECK(al_cuda_model_gpu_layers(cm) == counts[k] && al_cuda_model_bytes(cm) < al_cuda_model_bytes(full));
            al_cuda_session_params gp = al_cuda_session_default_params();
            gp.n_ctx = 128;
            gp.kv_type = AL_TYPE_F32;
            al_cuda_session *gs[2] = {NULL, NULL};
            al_session *cs[2] = {NULL, NULL};
            for (int i = 0; i < 2; i++) {
                REQUIRE_OK(al_cuda_session_init(&gs[i], cm, &gp));
                REQUIRE_OK(al_session_init(&cs[i], m, 128));
            }
            CHECK(!al_cuda_session_persistent_active(gs[0], NULL));
            al_status st_cut;
            CHECK_OK(al_session_eval(cs[0], r.ids, T, lc, true));
            for (size_t i = 0; i < (size_t)V * (size_t)T; i++) lg[i] = NAN;
            CHECK_OK(al_cuda_session_eval(gs[0], r.ids, T, lg, true));
            double e = al_test_rel_err(lg, lc, (size_t)V * (size_t)T), worst = 0;
            int32_t tok = (int32_t)al_test_argmax(lc + (size_t)(T - 1) * (size_t)V, V);
            for (int step = 0; step < 8; step++) {
                CHECK_OK(al_session_eval(cs[0], &tok, 1, lc, false));
                CHECK_OK(al_cuda_session_eval(gs[0], &tok, 1, lg, false));
                const double ed = al_test_rel_err(lg, lc, (size_t)V);
                worst = ed > worst ? ed : worst;
                tok = (int32_t)al_test_argmax(lc, V);
            }
            /* session 1 at another position; then both decoded as one batch */
            CHECK_OK(al_session_eval(cs[1], r.ids, 5, lc, false));
            CHECK_OK(al_cuda_session_eval(gs[1], r.ids, 5, lg, false));
            int32_t bt[2] = {tok, (int32_t)al_test_argmax(lc, V)};
            double wb = 0;
            for (int step = 0; step < 3; step++) {
                CHECK_OK(al_cuda_session_decode_batch(gs, bt, 2, lb));
                for (int i = 0; i < 2; i++) {
                    CHECK_OK(al_session_eval(cs[i], &bt[i], 1, lc, false));
                    const double eb = al_test_rel_err(lb[i], lc, (size_t)V);
                    wb = eb > wb ? eb : wb;
                    bt[i] = (int32_t)al_test_argmax(lc, V);
                }
            }
            /* cutting back (prefix reuse): the same tokens again after a truncate give the same logits */
            al_cuda_session_reset(gs[0]);
            CHECK_OK(al_cuda_session_eval(gs[0], r.ids, 10, lc, false));
            st_cut = al_cuda_session_truncate(gs[0], 6);
            if (al_model_can_truncate(m)) {
                CHECK_OK(st_cut);
                CHECK_OK(al_cuda_session_eval(gs[0], r.ids + 6, 4, lg, false));
                CHECKF(al_cuda_session_pos(gs[0]) == 10 && al_test_rel_err(lg, lc, (size_t)V) < 1e-5, "%s: after a truncate %g",
                       archs[a], al_test_rel_err(lg, lc, (size_t)V));
            } else {
                CHECK(st_cut.code == AL_ERR_UNSUPPORTED && al_cuda_session_pos(gs[0]) == 10);
            }
            const double es = snapshot_check(cm, &r, V);
            CHECKF(es < 1e-5, "%s with %d device layers: after restoring a snapshot %g", archs[a], counts[k], es);
            printf("  %s, %d of %d layers on the device (%zu of %zu bytes): prefill %.3g, decode %.3g, batch %.3g, "
                   "snapshot %.3g\n", archs[a], counts[k], L, al_cuda_model_bytes(cm), al_cuda_model_bytes(full), e, worst, wb, es);
            CHECKF(e < 1e-4 && worst < 1e-4 && wb < 1e-4, "%s with %d device layers: prefill %g decode %g batch %g", archs[a],
                   counts[k], e, worst, wb);
            for (int i = 0; i < 2; i++) {
                al_cuda_session_free(gs[i]);
                al_session_free(cs[i]);
            }
            al_cuda_model_free(cm);
        }
        const double ef = snapshot_check(full, &r, V);
        CHECKF(ef < 1e-5, "%s: after restoring a snapshot %g", archs[a], ef);
        free(lc);
        free(lg);
        free(lb[0]);
        free(lb[1]);
        al_cuda_model_free(full);
        al_model_free(m);
        free(r.logits);
    }
}

/* ---- the engine on the GPU ---- */

#define ENG_REQ 6
#define ENG_GEN 16

typedef struct eng_out {
    pthread_mutex_t mu;
    int32_t toks[ENG_GEN];
    int n_tok;
    bool done;
    al_finish finish;
    char error[256];
} eng_out;

static bool eng_event(void *ud, const al_event *ev) {
    eng_out *o = ud;
    pthread_mutex_lock(&o->mu);
    if (ev->kind == AL_EV_TOKEN && ev->token >= 0 && o->n_tok < ENG_GEN) o->toks[o->n_tok++] = ev->token;
    if (ev->kind == AL_EV_DONE) {
        o->done = true;
        o->finish = ev->finish;
        snprintf(o->error, sizeof o->error, "%s", ev->error ? ev->error : "");
    }
    pthread_mutex_unlock(&o->mu);
    return true;
}

/* how far token t is below the argmax of lg, relative to max |lg| (0: t is an argmax) */
static double below_max(const float *lg, int V, int32_t t) {
    const int b = al_test_argmax(lg, V);
    double mx = 0;
    for (int i = 0; i < V; i++) mx = fabs(lg[i]) > mx ? fabs(lg[i]) : mx;
    return mx > 0 ? ((double)lg[b] - lg[t]) / mx : 0;
}

static void engine_gpu(int n_parallel, int batch) {
    const char *path = "test_cuda_engine.gguf";
    al_model *m = NULL;
    al_model_params mp = al_model_default_params();
    mp.n_threads = 2;
    REQUIRE_OK(al_model_create_preset("alloy-tiny", al_test_path("tokenizers/ggml-vocab-llama-spm.gguf"), path, "Q8_0", 5));
    REQUIRE_OK(al_model_load(&m, path, &mp));
    const al_tokenizer *tok;
    REQUIRE_OK(al_model_tokenizer(m, &tok));
    const int V = al_model_n_vocab(m);
    al_cuda_serve_params sp = al_cuda_serve_default_params();
    sp.session.ubatch = 16; /* prompts below span 1 .. 4 prefill chunks */
    sp.batch = batch;
    al_engine_backend b;
    REQUIRE_OK(al_cuda_engine_backend_init(&b, m, &sp));
    CHECK(b.device_bytes > 0 && b.prefill_chunk == 16);
    al_engine *e;
    REQUIRE_OK(al_engine_init_backend(&e, m, n_parallel, 256, &b));
    printf("  engine on %s (%d slots, decode batch %d), %zu device bytes\n", al_engine_device(e), n_parallel, batch,
           al_engine_device_bytes(e));
    const char *prompts[ENG_REQ] = {"Hello world", "The quick brown fox jumps over the lazy dog and keeps running far away",
                                    "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24", "a",
                                    "int main(void) { return 0; }", "Once upon a time"};
    eng_out out[ENG_REQ];
    int32_t *ids[ENG_REQ];
    size_t n[ENG_REQ];
    for (int i = 0; i < ENG_REQ; i++) {
        memset(&out[i], 0, sizeof out[i]);
        pthread_mutex_init(&out[i].mu, NULL);
        REQUIRE_OK(al_tokenizer_encode(tok, prompts[i], strlen(prompts[i]), true, false, &ids[i], &n[i]));
        al_gen_request r;
        memset(&r, 0, sizeof r);
        r.prompt = ids[i];
        r.n_prompt = n[i];
        r.sampling = al_sampler_default_params();
        r.sampling.temp = 0;
        r.max_tokens = ENG_GEN;
        r.ignore_eos = true;
        r.on_event = eng_event;
        r.ud = &out[i];
        CHECK_OK(al_engine_submit(e, &r, NULL));
    }
    bool all = false;
    for (int tries = 0; tries < 6000 && !all; tries++) {
        all = true;
        for (int i = 0; i < ENG_REQ; i++) {
            pthread_mutex_lock(&out[i].mu);
            all &= out[i].done;
            pthread_mutex_unlock(&out[i].mu);
        }
        if (!all) usleep(10000);
    }
    CHECK(all);
    al_engine_free(e); /* frees the backend: the lone session below uses a context of its own */

    al_cuda_model *cm = NULL;
    REQUIRE_OK(al_cuda_model_init(&cm, g_cu, m));
    float *lc = malloc(sizeof(float) * (size_t)V), *lgpu = malloc(sizeof(float) * (size_t)V);
    int exact = 0, total = 0;
    double worst_gpu = 0, worst_cpu = 0;
    for (int i = 0; i < ENG_REQ && all; i++) {
        CHECKF(out[i].finish == AL_FINISH_LENGTH && out[i].n_tok == ENG_GEN, "req %d: finish %d, %d tokens (%s)", i,
               out[i].finish, out[i].n_tok, out[i].error);
        al_cuda_session *gs = NULL;
        al_session *cs = NULL;
        al_cuda_session_params lp = al_cuda_session_default_params();
        lp.n_ctx = 256;
        REQUIRE_OK(al_cuda_session_init(&gs, cm, &lp));
        REQUIRE_OK(al_session_init(&cs, m, 256));
        CHECK_OK(al_cuda_session_eval(gs, ids[i], (int)n[i], lgpu, false));
        CHECK_OK(al_session_eval(cs, ids[i], (int)n[i], lc, false));
        for (int t = 0; t < out[i].n_tok; t++) {
            const int32_t y = out[i].toks[t];
            const double dg = below_max(lgpu, V, y), dc = below_max(lc, V, y);
            exact += dg == 0;
            total++;
            worst_gpu = dg > worst_gpu ? dg : worst_gpu;
            worst_cpu = dc > worst_cpu ? dc : worst_cpu;
            CHECKF(dg < 5e-2 && dc < 5e-2, "req %d step %d: token %d is %.3g (lone GPU) / %.3g (CPU) below the argmax", i, t, y,
                   dg, dc);
            CHECK_OK(al_cuda_session_eval(gs, &y, 1, lgpu, false));
            CHECK_OK(al_session_eval(cs, &y, 1, lc, false));
        }
        al_cuda_session_free(gs);
        al_session_free(cs);
    }
    printf("  engine tokens: %d of %d the lone GPU session's argmax; worst gap %.3g (GPU) %.3g (CPU)\n", exact, total,
           worst_gpu, worst_cpu);
    CHECKF(total == ENG_REQ * ENG_GEN && exact * 10 >= total * 9, "%d of %d tokens exact", exact, total);
    free(lc);
    free(lgpu);
    for (int i = 0; i < ENG_REQ; i++) free(ids[i]);
    al_cuda_model_free(cm);
    al_model_free(m);
    remove(path);
}

static void test_engine_gpu(void) {
    engine_gpu(3, 1); /* each slot's persistent kernel */
    engine_gpu(3, 2); /* a batched pair and a lone slot */
    engine_gpu(6, 6); /* one batch of 6: products in row groups of 4 and 2 */
}

/* al_cuda_session_decode_batch: 5 sessions at different positions decoded together vs each alone
 * (graph path, same integer products; the batch runs the norms unfused, so int8 roundings of the
 * activations may differ: the int8 decode bound), for every architecture; then the argument checks. */
static void test_decode_batch(void) {
    enum { NS = 5, STEPS = 10 };
    for (int a = 0; a < N_ARCHS; a++) {
        al_test_ref r = {0};
        REQUIRE(al_test_load_ref(archs[a], &r));
        char out[256];
        al_model *m;
        al_cuda_model *cm;
        al_status st = q8_model(archs[a], "batch", out, sizeof out, &m, &cm);
        CHECKF(!al_failed(&st), "%s: %s", archs[a], st.msg);
        if (al_failed(&st)) {
            al_model_free(m);
            free(r.logits);
            continue;
        }
        const int V = al_model_n_vocab(m);
        al_cuda_session_params sp = al_cuda_session_default_params();
        sp.n_ctx = 128;
        sp.ubatch = 32;
        sp.persistent = false;
        al_cuda_session *A[NS], *B[NS];
        float *la[NS], *lb[NS];
        int32_t tok[NS];
        for (int i = 0; i < NS; i++) {
            REQUIRE_OK(al_cuda_session_init(&A[i], cm, &sp));
            REQUIRE_OK(al_cuda_session_init(&B[i], cm, &sp));
            la[i] = malloc(sizeof(float) * (size_t)V);
            lb[i] = malloc(sizeof(float) * (size_t)V);
            const int np = 1 + (7 * i) % r.n_ids; /* prompts of 1, 8, 15, 22, 29 tokens */
            CHECK_OK(al_cuda_session_eval(A[i], r.ids, np, la[i], false));
            CHECK_OK(al_cuda_session_eval(B[i], r.ids, np, lb[i], false));
            tok[i] = (int32_t)al_test_argmax(lb[i], V);
        }
        double worst = 0;
        /* even steps: all five in order; odd steps: {2, 0, 1} and {4, 3} (other sets, other leaders) */
        static const int order[NS] = {2, 0, 1, 4, 3};
        for (int step = 0; step < STEPS; step++) {
            for (int i = 0; i < NS; i++)
                for (int j = 0; j < V; j++) la[i][j] = NAN;
            if (step % 2 == 0) {
                CHECK_OK(al_cuda_session_decode_batch(A, tok, NS, la));
            } else {
                al_cuda_session *oa[NS];
                int32_t ot[NS];
                float *ol[NS];
                for (int i = 0; i < NS; i++) oa[i] = A[order[i]], ot[i] = tok[order[i]], ol[i] = la[order[i]];
                CHECK_OK(al_cuda_session_decode_batch(oa, ot, 3, ol));
                CHECK_OK(al_cuda_session_decode_batch(oa + 3, ot + 3, 2, ol + 3));
            }
            for (int i = 0; i < NS; i++) {
                CHECK_OK(al_cuda_session_eval(B[i], &tok[i], 1, lb[i], false));
                CHECK(al_cuda_session_pos(A[i]) == al_cuda_session_pos(B[i]));
                const double e = al_test_rel_err(la[i], lb[i], (size_t)V);
                if (!(e <= worst)) worst = e;
                tok[i] = (int32_t)al_test_argmax(lb[i], V);
            }
        }
        al_status gwhy;
        const int ng = al_cuda_session_batch_graphs(A[0], &gwhy) + al_cuda_session_batch_graphs(A[2], NULL) +
                       al_cuda_session_batch_graphs(A[4], NULL);
        printf("  %s: %d sessions batched vs alone, %d steps: worst %.3g; %d captured passes%s%s\n", archs[a], NS, STEPS, worst,
               ng, gwhy.msg[0] ? ": " : "", gwhy.msg);
        CHECKF(ng == 3, "%s: %d batched passes captured, 3 expected (%s)", archs[a], ng, gwhy.msg);
        CHECKF(worst < 5e-2, "%s: batched decode differs from lone decode: %g", archs[a], worst);
        al_cuda_session *dup[2] = {A[0], A[0]};
        CHECK_ERR(al_cuda_session_decode_batch(dup, tok, 2, la), AL_ERR_INVALID);
        CHECK(al_cuda_session_batch_max(A[0]) == 16);
        int32_t bad[2] = {tok[0], V};
        CHECK_ERR(al_cuda_session_decode_batch(A, bad, 2, la), AL_ERR_RANGE);
        for (int i = 0; i < NS; i++) {
            al_cuda_session_free(A[i]);
            al_cuda_session_free(B[i]);
            free(la[i]);
            free(lb[i]);
        }
        al_cuda_model_free(cm);
        al_model_free(m);
        remove(out);
        free(r.logits);
    }
}


/* The barrier plan of tagged decode (al_prog_plan) on the op lists the forward pass records: a
 * two-layer transformer (embedding, QKV, attention, wo, gate/up, down, ..., LM head) loses the
 * barriers after QKV, the attention, wo, gate/up and down, whose outputs then go tagged (and the
 * residual sums read past them) — all but one in the first layer, whose gate/up reads the embedding
 * row, which is never tagged (the first barrier that can stay for it: after wo); a Mamba-2 out_proj
 * after the conv shift keeps
 * its barrier; fixed inputs (merged attention splits, the gate z) are never read past a dropped
 * barrier (of two barriers before one, the first goes); a recorded program that reads unordered data
 * is refused. */
#define PLAN_P(sy, nout, o0, o1, o2, ho, x, h, d, f0)                                                                 \
    (al_plan_op) {                                                                                                       \
        .kind = AL_PLAN_PRODUCT, .sync = sy, .n_out = nout, .out = {o0, o1, o2, NULL}, .h_out = ho, .in = {x, h, d}, \
        .fixed = {f0, NULL}                                                                                              \
    }
#define PLAN_O(k, sy, o0, o1) (al_plan_op){.kind = k, .sync = sy, .out = {o0, o1, NULL, NULL}}
#define PLAN_W(o0, x, m) /* wo: x the attention output, m the split partials it merges */                          \
    (al_plan_op) { .kind = AL_PLAN_PRODUCT, .sync = true, .n_out = 1, .out = {o0, NULL, NULL, NULL}, .in = {x, NULL, NULL, m} }
#define PLAN_A(q, k, v, o0, o1) (al_plan_op){.kind = AL_PLAN_ATTN, .sync = true, .out = {o0, o1, NULL, NULL}, .in = {q, k, v}}
static void test_prog_plan(void) {
    static char bu[16];
    void *h = bu, *h2 = bu + 1, *delta = bu + 2, *big = bu + 3, *q = bu + 4, *k = bu + 5, *v = bu + 6, *t3 = bu + 7,
         *part = bu + 8, *lg = bu + 9, *emb = bu + 10, *zx = bu + 11, *y = bu + 12, *conv = bu + 13, *st = bu + 14;
    const al_plan_op tf[12] = {
        PLAN_O(AL_PLAN_EMBED, false, h, emb),
        PLAN_P(true, 3, q, k, v, NULL, NULL, NULL, NULL, NULL), /* h: the block's own copy of the embedding */
        PLAN_A(q, k, v, t3, part),
        PLAN_W(delta, t3, part),
        PLAN_P(true, 1, big, NULL, NULL, h2, NULL, h, delta, NULL),
        PLAN_P(true, 1, delta, NULL, NULL, NULL, big, NULL, NULL, NULL),
        PLAN_P(true, 3, q, k, v, h, NULL, h2, delta, NULL),
        PLAN_A(q, k, v, t3, part),
        PLAN_W(delta, t3, part),
        PLAN_P(true, 1, big, NULL, NULL, h2, NULL, h, delta, NULL),
        PLAN_P(true, 1, delta, NULL, NULL, NULL, big, NULL, NULL, NULL),
        PLAN_P(false, 1, lg, NULL, NULL, h, NULL, h2, delta, NULL),
    };
    al_plan_out o[12];
    CHECK_OK(al_prog_plan(tf, 12, AL_TAG_FULL, o));
    const bool sync[12] = {false, false, false, true, false, false, false, false, false, false, false, false};
    for (int i = 0; i < 12; i++) CHECKF(o[i].sync == sync[i], "op %d: barrier %d, expected %d", i, o[i].sync, sync[i]);
    /* tagged reads: the attentions (2, 7) read q, k, v of their QKV, the wo products (3, 8) the attention's output
     * and partials, E (5) D's big, A1 (6) D's residual sum and E's delta, D1 A1's residual sum and C1's delta,
     * E1 D1's, the head D1's residual sum and E1's delta; D (4) reads C's delta past the barrier */
    const int tags[12][4] = {{-1, -1, -1, -1}, {-1, -1, -1, -1}, {1, 1, 1, -1}, {2, -1, -1, 2},
                             {-1, -1, -1, -1}, {4, -1, -1, -1},  {-1, 4, 5, -1}, {6, 6, 6, -1},
                             {7, -1, -1, 7},   {-1, 6, 8, -1},   {9, -1, -1, -1}, {-1, 9, 10, -1}};
    for (int i = 0; i < 12; i++)
        for (int qq = 0; qq < 4; qq++) CHECKF(o[i].in_tag[qq] == tags[i][qq], "op %d input %d: tag %d, expected %d", i, qq, o[i].in_tag[qq], tags[i][qq]);
    const int n_tagged[12] = {0, 3, 2, 0, 1, 1, 3, 2, 1, 1, 1, 0}; /* outputs 0 .. n - 1 tagged */
    const bool th[12] = {false, false, false, false, true, false, true, false, false, true, false, false};
    for (int i = 0; i < 12; i++) {
        for (int m = 0; m < 4; m++)
            CHECKF(o[i].tag_out[m] == (m < n_tagged[i]), "op %d: tagged output %d: %d", i, m, o[i].tag_out[m]);
        CHECKF(o[i].tag_h_out == th[i], "op %d: tagged residual %d", i, o[i].tag_h_out);
    }

    /* lower levels: 0 keeps the recorded barriers and reads nothing tagged; 1 drops only those between
     * products (wo's too: the barrier after the attention now orders the embedding row for gate/up); 2
     * also those between QKV and the attention */
    const bool lsync[3][12] = {{false, true, true, true, true, true, true, true, true, true, true, false},
                               {false, true, true, false, false, false, true, true, false, false, false, false},
                               {false, false, true, false, false, false, false, true, false, false, false, false}};
    for (int lv = AL_TAG_OFF; lv < AL_TAG_FULL; lv++) {
        CHECK_OK(al_prog_plan(tf, 12, lv, o));
        for (int i = 0; i < 12; i++) {
            CHECKF(o[i].sync == lsync[lv][i], "level %d op %d: barrier %d, expected %d", lv, i, o[i].sync, lsync[lv][i]);
            for (int qq = 0; qq < 4; qq++) /* nothing tagged at 0; the attentions' q, k, v from 2 on; wo's input never */
                CHECKF(o[i].in_tag[qq] < 0 || (lv > AL_TAG_OFF && qq != AL_PLAN_M && i != 3 && i != 8 &&
                                               (lv == AL_TAG_ATTN_IN || (i != 2 && i != 7))),
                       "level %d op %d input %d: tag %d", lv, i, qq, o[i].in_tag[qq]);
        }
        CHECK(lv == AL_TAG_OFF || (o[5].in_tag[AL_PLAN_X] == 4 && o[4].in_tag[AL_PLAN_D] == 3 && o[9].in_tag[AL_PLAN_D] == 8));
        CHECK(lv != AL_TAG_ATTN_IN || (o[2].in_tag[0] == 1 && o[7].in_tag[2] == 6 && o[6].tag_out[2] && !o[2].tag_out[0]));
    }
    CHECK_OK(al_prog_plan(tf, 12, AL_TAG_OFF - 1, o)); /* below 0: as 0 */
    CHECK(!o[0].sync && o[1].sync && o[10].sync && o[2].in_tag[0] < 0);
    /* the edges one by one (AL_TAG_EDGES | mask): only after the attentions (wo reads their output and
     * partials tagged); the attentions' both edges (QKV -> attention too); products' edges alone = level 1 */
    const int emask[3] = {AL_TAG_E_AP, AL_TAG_E_PA | AL_TAG_E_AP, AL_TAG_E_PP};
    const bool esync[2][12] = {{false, true, false, true, true, true, true, false, true, true, true, false},
                               {false, false, false, true, true, true, false, false, true, true, true, false}};
    for (int e = 0; e < 3; e++) {
        CHECK_OK(al_prog_plan(tf, 12, AL_TAG_EDGES | emask[e], o));
        for (int i = 0; i < 12; i++) {
            const bool want = e < 2 ? esync[e][i] : lsync[AL_TAG_PRODUCTS][i];
            CHECKF(o[i].sync == want, "edges %d op %d: barrier %d, expected %d", emask[e], i, o[i].sync, want);
            for (int qq = 0; qq < 4; qq++) {
                const int wt = e == 2 ? -2 /* as level 1, checked below */
                               : (i == 3 || i == 8) && (qq == AL_PLAN_X || qq == AL_PLAN_M) ? i - 1
                               : e == 1 && (i == 2 || i == 7) && qq < 3 ? i - 1 : -1;
                if (wt != -2)
                    CHECKF(o[i].in_tag[qq] == wt, "edges %d op %d input %d: tag %d, expected %d", emask[e], i, qq, o[i].in_tag[qq], wt);
            }
        }
        CHECK(e == 2 ? o[5].in_tag[AL_PLAN_X] == 4 && o[2].in_tag[0] < 0 : o[2].tag_out[0] && o[2].tag_out[1] && !o[4].tag_h_out);
        CHECK(e != 1 || (o[1].tag_out[0] && o[1].tag_out[2] && o[6].tag_out[1]));
    }

    /* Mamba-2: in_proj, SSM step, conv shift, out_proj (gated norm: h = y, fixed z), next in_proj */
    const al_plan_op mb[5] = {
        PLAN_P(true, 1, zx, NULL, NULL, h2, NULL, h, delta, NULL),
        PLAN_O(AL_PLAN_OTHER, true, y, st),
        PLAN_O(AL_PLAN_OTHER, false, conv, NULL),
        PLAN_P(true, 1, delta, NULL, NULL, NULL, NULL, y, NULL, zx),
        PLAN_P(false, 1, zx, NULL, NULL, h, NULL, h2, delta, NULL),
    };
    CHECK_OK(al_prog_plan(mb, 5, AL_TAG_FULL, o));
    CHECK(o[0].sync && o[1].sync && !o[2].sync && o[3].sync); /* the shift reads zx, which the next in_proj writes */
    for (int i = 0; i < 5; i++) CHECK(o[i].in_tag[0] < 0 && o[i].in_tag[1] < 0 && o[i].in_tag[2] < 0 && !o[i].tag_out[0]);

    /* a product reading the one before through a fixed input keeps the barrier; so does one whose
     * later reader would lose the barrier before a fixed input */
    const al_plan_op fx[3] = {
        PLAN_P(true, 1, y, NULL, NULL, NULL, h, NULL, NULL, NULL),
        PLAN_P(true, 1, big, NULL, NULL, NULL, NULL, NULL, NULL, y),
        PLAN_P(false, 1, lg, NULL, NULL, NULL, big, NULL, NULL, NULL),
    };
    CHECK_OK(al_prog_plan(fx, 3, AL_TAG_FULL, o));
    CHECK(o[0].sync && !o[1].sync && o[2].in_tag[0] == 1 && o[1].tag_out[0] && !o[0].tag_out[0]);
    const al_plan_op fl[3] = {
        PLAN_P(true, 1, y, NULL, NULL, NULL, h, NULL, NULL, NULL),
        PLAN_P(true, 1, big, NULL, NULL, NULL, y, NULL, NULL, NULL),
        PLAN_P(false, 1, lg, NULL, NULL, NULL, big, NULL, NULL, y), /* reads y (fixed) again: one of the barriers stays */
    };
    CHECK_OK(al_prog_plan(fl, 3, AL_TAG_FULL, o));
    CHECK(!o[0].sync && o[1].sync && o[1].in_tag[0] == 0 && o[2].in_tag[0] < 0);
    /* two outputs (q, k, v): never handed on tagged */
    const al_plan_op mo[2] = {
        PLAN_P(true, 2, q, k, NULL, NULL, h, NULL, NULL, NULL),
        PLAN_P(false, 1, lg, NULL, NULL, NULL, q, NULL, NULL, NULL),
    };
    CHECK_OK(al_prog_plan(mo, 2, AL_TAG_FULL, o));
    CHECK(o[0].sync && o[1].in_tag[0] < 0);
    /* an attention that does not read all of the product's outputs, or after a conv shift: the barrier stays */
    const al_plan_op ap[3] = {
        PLAN_P(true, 3, q, k, v, NULL, NULL, h, NULL, NULL),
        PLAN_A(q, k, NULL, t3, part),
        PLAN_P(false, 1, lg, NULL, NULL, NULL, NULL, NULL, NULL, part),
    };
    CHECK_OK(al_prog_plan(ap, 3, AL_TAG_FULL, o));
    CHECK(o[0].sync && o[1].in_tag[0] < 0 && !o[0].tag_out[0]);
    const al_plan_op as[4] = {
        PLAN_O(AL_PLAN_OTHER, false, conv, NULL),
        PLAN_P(true, 3, q, k, v, NULL, NULL, h, NULL, NULL),
        PLAN_A(q, k, v, t3, part),
        PLAN_P(false, 1, lg, NULL, NULL, NULL, NULL, NULL, NULL, part),
    };
    CHECK_OK(al_prog_plan(as, 4, AL_TAG_FULL, o));
    CHECK(o[1].sync && o[2].in_tag[0] < 0);
    /* refused: a product reads what an attention wrote with no barrier between */
    const al_plan_op bad[2] = {
        PLAN_O(AL_PLAN_OTHER, false, t3, NULL),
        PLAN_P(false, 1, lg, NULL, NULL, NULL, t3, NULL, NULL, NULL),
    };
    CHECK_ERR(al_prog_plan(bad, 2, AL_TAG_FULL, o), AL_ERR_INVALID);
}

int main(void) {
    AL_RUN(test_prog_plan); /* host logic only */
    if (al_cuda_device_count() == 0) {
        printf("no CUDA device: skipped the rest\n");
        return al_test_finish() ? 1 : 77;
    }
    al_status st = al_cuda_init(&g_cu, 0);
    if (al_failed(&st)) {
        fprintf(stderr, "al_cuda_init: %s\n", st.msg);
        return 1;
    }
    AL_RUN(test_hf_f32_cache);
    AL_RUN(test_hf_f16_cache);
#ifndef ALLOY_CUDA_EMULATED /* its bounds are those of the GPU's F16 prefill GEMM, which the emulator lacks */
    AL_RUN(test_gguf_q8_0);
#endif
    AL_RUN(test_persistent);
    AL_RUN(test_decode_batch);
    AL_RUN(test_partial);
    AL_RUN(test_engine_gpu);
    al_cuda_free(g_cu);
    return al_test_finish();
}
#endif
