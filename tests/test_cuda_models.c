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
 *    whose decode is fused (all but zamba2 and jamba) and report why not for the others.
 * Exits 77 (ctest: skipped) when built without CUDA or when no device is present.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#ifndef ALLOY_HAVE_CUDA
int main(void) {
    printf("built without CUDA: skipped\n");
    return 77;
}
#else

#include "alloy/cuda.h"
#include "alloy/model.h"

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
       * the barrier polled by sub-block 3 (al_cuda_prog_set_poller), weight rows put into L2 three steps
       * ahead (al_cuda_prog_set_prefetch_ahead) and norm weights during the barrier
       * (al_cuda_prog_set_norm_prefetch) */
        al_cuda_session *ns;
        al_cuda_session_params np = gp;
        np.persist_no_unit_pre = true;
        np.persist_poller = 3;
        np.persist_ahead = 3;
        np.persist_norm_prefetch = true;
        REQUIRE_OK(al_cuda_session_init(&ns, cm, &np));
        for (int i = 0; i < T; i++) CHECK_OK(al_cuda_session_eval(ns, &r->ids[i], 1, lg, false));
        double en = al_test_rel_err(lg, lc, (size_t)V);
        printf(", units prepared after the barrier, poller 3, prefetch 3 steps ahead, norm prefetch: %.3g", en);
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
static void test_gguf_q8_0(void) {
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

static void test_persistent(void) {
    for (int i = 0; i < N_ARCHS; i++) {
        al_test_ref r = {0};
        REQUIRE(al_test_load_ref(archs[i], &r));
        char src[256], out[256];
        snprintf(src, sizeof src, "hf/%s", archs[i]);
        snprintf(out, sizeof out, "test_cuda_persist_%s.gguf", archs[i]);
        al_model *m = NULL;
        al_cuda_model *cm = NULL;
        al_model_params mp = al_model_default_params();
        al_status st = al_model_convert(al_test_path(src), out, "Q8_0", 2, NULL, NULL);
        if (!al_failed(&st)) st = al_model_load(&m, out, &mp);
        if (!al_failed(&st)) st = al_cuda_model_init(&cm, g_cu, m);
        CHECKF(!al_failed(&st), "%s: %s", archs[i], st.msg);
        const bool expect = strcmp(archs[i], "zamba2") && strcmp(archs[i], "jamba");
        for (int kv = 0; kv < 2 && !al_failed(&st); kv++) {
            al_cuda_session_params pp = al_cuda_session_default_params(), pg = pp;
            pp.n_ctx = pg.n_ctx = 128;
            pp.kv_type = pg.kv_type = kv ? AL_TYPE_F32 : AL_TYPE_F16;
            pg.persistent = false;
            al_cuda_session *sa = NULL, *sb = NULL;
            REQUIRE_OK(al_cuda_session_init(&sa, cm, &pp));
            REQUIRE_OK(al_cuda_session_init(&sb, cm, &pg));
            al_status why;
            const bool on = al_cuda_session_persistent_active(sa, &why);
            CHECKF(on == expect, "%s: persistent decode %s (%s)", archs[i], on ? "on" : "off", why.msg);
            CHECKF(on || why.msg[0], "%s: no reason given for no persistent decode", archs[i]);
            CHECK(!al_cuda_session_persistent_active(sb, NULL));
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

int main(void) {
    if (al_cuda_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        return 77;
    }
    al_status st = al_cuda_init(&g_cu, 0);
    if (al_failed(&st)) {
        fprintf(stderr, "al_cuda_init: %s\n", st.msg);
        return 1;
    }
    AL_RUN(test_hf_f32_cache);
    AL_RUN(test_hf_f16_cache);
    AL_RUN(test_gguf_q8_0);
    AL_RUN(test_persistent);
    al_cuda_free(g_cu);
    return al_test_finish();
}
#endif
