/*
 * test_engine.c — continuous batching: concurrent greedy requests produce exactly the tokens a
 * lone session produces; stop strings, max_tokens, cancellation and queueing beyond n_parallel.
 * The same through a slot backend that decodes its slots one at a time (the shape of the GPU's),
 * its ownership rules, and a backend whose decode fails; prefix reuse on a hybrid and an
 * attention-only model.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloy/engine.h"
#include "alloy/tokenizer.h"
#include "model/model_internal.h"
#include "harness.h"

#define MAXR 8
#define MAXT 64

typedef struct collect {
    pthread_mutex_t mu;
    int n_tok;
    int32_t toks[MAXT];
    float lp[MAXT];                 /* the token's logprob */
    int n_top[MAXT];
    int32_t top_ids[MAXT][4];
    float top_lp[MAXT][4];
    char text[4096];
    size_t text_len;
    bool done;
    al_finish finish;
    char error[256];
    int cancel_after; /* return false after this many tokens (0: never) */
    int n_prompt, n_gen;
} collect;

static bool on_event(void *ud, const al_event *ev) {
    collect *c = ud;
    pthread_mutex_lock(&c->mu);
    bool keep = true;
    if (ev->kind == AL_EV_TOKEN) {
        if (ev->token >= 0 && c->n_tok < MAXT) {
            c->lp[c->n_tok] = ev->logprob;
            c->n_top[c->n_tok] = ev->n_top;
            for (int k = 0; k < ev->n_top && k < 4; k++) {
                c->top_ids[c->n_tok][k] = ev->top_ids[k];
                c->top_lp[c->n_tok][k] = ev->top_logprobs[k];
            }
            c->toks[c->n_tok++] = ev->token;
        }
        if (c->text_len + ev->text_len < sizeof c->text) {
            memcpy(c->text + c->text_len, ev->text, ev->text_len);
            c->text_len += ev->text_len;
            c->text[c->text_len] = '\0';
        }
        if (c->cancel_after && c->n_tok >= c->cancel_after) keep = false;
    } else {
        c->done = true;
        c->finish = ev->finish;
        snprintf(c->error, sizeof c->error, "%s", ev->error ? ev->error : "");
        c->n_prompt = ev->n_prompt;
        c->n_gen = ev->n_generated;
    }
    pthread_mutex_unlock(&c->mu);
    return keep;
}

static bool wait_done(collect *c, int n) {
    for (int tries = 0; tries < 3000; tries++) {
        int done = 0;
        for (int i = 0; i < n; i++) {
            pthread_mutex_lock(&c[i].mu);
            done += c[i].done;
            pthread_mutex_unlock(&c[i].mu);
        }
        if (done == n) return true;
        usleep(10000);
    }
    return false;
}

static al_model *model;
static const al_tokenizer *tok;

/* greedy continuation of prompt by a lone session of m */
static int lone_greedy_of(al_model *m, const int32_t *prompt, int n, int steps, int32_t *out) {
    al_session *s;
    if (al_session_init(&s, m, 256).code) return 0;
    int V = al_model_n_vocab(m);
    float *lg = malloc(sizeof(float) * (size_t)V);
    al_session_eval(s, prompt, n, lg, false);
    for (int i = 0; i < steps; i++) {
        int b = 0;
        for (int j = 1; j < V; j++)
            if (lg[j] > lg[b]) b = j;
        out[i] = b;
        al_session_eval(s, &out[i], 1, lg, false);
    }
    free(lg);
    al_session_free(s);
    return steps;
}

static int lone_greedy(const int32_t *prompt, int n, int steps, int32_t *out) {
    return lone_greedy_of(model, prompt, n, steps, out);
}

static al_gen_request base_req(const int32_t *p, size_t n, collect *c) {
    al_gen_request r;
    memset(&r, 0, sizeof r);
    r.prompt = p;
    r.n_prompt = n;
    r.sampling = al_sampler_default_params();
    r.sampling.temp = 0;
    r.max_tokens = 12;
    r.ignore_eos = true;
    r.on_event = on_event;
    r.ud = c;
    return r;
}

/* every request's greedy tokens and text equal a lone session's */
static void check_concurrent_greedy(al_engine *e) {
    const char *prompts[MAXR] = {"Hello world", "The quick brown fox", "1 2 3 4", "Once upon a time",
                                 "int main(void) {", "Paris is", "a", "Lorem ipsum dolor sit amet"};
    collect c[MAXR];
    int32_t *ids[MAXR];
    size_t n[MAXR];
    for (int i = 0; i < MAXR; i++) {
        memset(&c[i], 0, sizeof c[i]);
        pthread_mutex_init(&c[i].mu, NULL);
        REQUIRE_OK(al_tokenizer_encode(tok, prompts[i], strlen(prompts[i]), true, false, &ids[i], &n[i]));
        al_gen_request r = base_req(ids[i], n[i], &c[i]);
        CHECK_OK(al_engine_submit(e, &r, NULL));
    }
    CHECK(wait_done(c, MAXR));
    for (int i = 0; i < MAXR; i++) {
        int32_t want[12];
        lone_greedy(ids[i], (int)n[i], 12, want);
        CHECKF(c[i].finish == AL_FINISH_LENGTH, "req %d finish %d", i, c[i].finish);
        CHECKF(c[i].n_tok == 12 && c[i].n_gen == 12 && c[i].n_prompt == (int)n[i], "req %d: %d tokens", i, c[i].n_tok);
        for (int t = 0; t < 12 && t < c[i].n_tok; t++)
            CHECKF(c[i].toks[t] == want[t], "req %d token %d: %d, alone %d", i, t, c[i].toks[t], want[t]);
        char *dec;
        size_t dl;
        REQUIRE_OK(al_tokenizer_decode(tok, want, 12, 0, &dec, &dl));
        CHECKF(dl == c[i].text_len && !memcmp(dec, c[i].text, dl), "req %d text differs", i);
        free(dec);
        free(ids[i]);
    }
    al_engine_stats st = al_engine_get_stats(e);
    CHECK(st.requests_total == MAXR && st.active == 0 && st.queued == 0);
}

static void test_concurrent_greedy(void) {
    al_engine *e;
    REQUIRE_OK(al_engine_init(&e, model, 3, 256));
    CHECK(!strcmp(al_engine_device(e), "cpu") && al_engine_device_bytes(e) == 0);
    check_concurrent_greedy(e);
    al_engine_free(e);
}

static void test_backend(void) {
    al_test_backend sb = {.m = model, .prefill_chunk = 5};
    al_engine_backend b;
    al_test_backend_make(&sb, &b);
    al_engine *e;
    REQUIRE_OK(al_engine_init_backend(&e, model, 3, 256, &b));
    CHECK(sb.slots_live == 3 && al_engine_n_ctx(e) == 256);
    CHECK(!strcmp(al_engine_device(e), "serial test device") && al_engine_device_bytes(e) == 12345);
    check_concurrent_greedy(e); /* prompts longer than 5 tokens prefill in several chunks */
    CHECKF(sb.max_batch == 3, "largest decode call %d slots", sb.max_batch);
    al_engine_free(e);
    CHECK(sb.slots_live == 0 && sb.destroyed == 1);

    /* a failing decode ends every request of the call with its message */
    al_test_backend fb = {.m = model, .prefill_chunk = 5, .fail_after = 4};
    al_test_backend_make(&fb, &b);
    REQUIRE_OK(al_engine_init_backend(&e, model, 2, 256, &b));
    int32_t *ids;
    size_t n;
    REQUIRE_OK(al_tokenizer_encode(tok, "Hello world", 11, true, false, &ids, &n));
    collect c[2];
    for (int i = 0; i < 2; i++) {
        memset(&c[i], 0, sizeof c[i]);
        pthread_mutex_init(&c[i].mu, NULL);
        al_gen_request r = base_req(ids, n, &c[i]);
        CHECK_OK(al_engine_submit(e, &r, NULL));
    }
    CHECK(wait_done(c, 2));
    for (int i = 0; i < 2; i++)
        CHECKF(c[i].finish == AL_FINISH_ERROR && strstr(c[i].error, "device lost") && c[i].n_tok < 12,
               "req %d: finish %d error '%s' tokens %d", i, c[i].finish, c[i].error, c[i].n_tok);
    al_engine_free(e);
    free(ids);
    CHECK(fb.slots_live == 0 && fb.destroyed == 1);

    /* ownership passes even when initialisation fails: destroy runs once */
    al_test_backend bad = {.m = model, .prefill_chunk = 5};
    al_test_backend_make(&bad, &b);
    b.decode = NULL;
    CHECK_ERR(al_engine_init_backend(&e, model, 2, 256, &b), AL_ERR_INVALID);
    CHECK(bad.destroyed == 1 && bad.slots_live == 0);
    al_test_backend big = {.m = model, .prefill_chunk = 5};
    al_test_backend_make(&big, &b);
    CHECK_ERR(al_engine_init_backend(&e, model, 0, 256, &b), AL_ERR_INVALID);
    CHECK(big.destroyed == 1 && big.slots_live == 0);
    al_test_backend third = {.m = model, .prefill_chunk = 5, .fail_init = 2}; /* the third slot fails */
    al_test_backend_make(&third, &b);
    CHECK_ERR(al_engine_init_backend(&e, model, 3, 256, &b), AL_ERR_NOMEM);
    CHECK(third.destroyed == 1 && third.slots_live == 0 && third.inits == 3);
}

/* logprobs only when asked; then the token's and the top alternatives' match a log-softmax of a lone
 * session's logits (greedy: the token is the first alternative) */
static void test_logprobs(void) {
    al_engine *e;
    REQUIRE_OK(al_engine_init(&e, model, 2, 256));
    int32_t *ids;
    size_t n;
    REQUIRE_OK(al_tokenizer_encode(tok, "Once upon a time", 16, true, false, &ids, &n));
    collect c[2];
    for (int i = 0; i < 2; i++) {
        memset(&c[i], 0, sizeof c[i]);
        pthread_mutex_init(&c[i].mu, NULL);
        al_gen_request r = base_req(ids, n, &c[i]);
        r.max_tokens = 6;
        r.logprobs = i == 1;
        r.top_logprobs = i == 1 ? 4 : 0;
        CHECK_OK(al_engine_submit(e, &r, NULL));
    }
    CHECK(wait_done(c, 2));
    al_engine_free(e);
    REQUIRE(c[0].n_tok == 6 && c[1].n_tok == 6);
    for (int t = 0; t < 6; t++) CHECK(isnan(c[0].lp[t]) && c[0].n_top[t] == 0);
    /* the reference: log-softmax of a lone session's logits at each step */
    al_session *s;
    REQUIRE_OK(al_session_init(&s, model, 256));
    const int V = al_model_n_vocab(model);
    float *lg = malloc(sizeof(float) * (size_t)V);
    CHECK_OK(al_session_eval(s, ids, (int)n, lg, false));
    for (int t = 0; t < 6; t++) {
        double mx = lg[0], sum = 0;
        for (int i = 1; i < V; i++) mx = lg[i] > mx ? lg[i] : mx;
        for (int i = 0; i < V; i++) sum += exp(lg[i] - mx);
        const double lse = mx + log(sum);
        const int32_t y = c[1].toks[t];
        CHECKF(fabs(c[1].lp[t] - (lg[y] - lse)) < 1e-4, "step %d: logprob %g, reference %g", t, c[1].lp[t], lg[y] - lse);
        CHECK(c[1].n_top[t] == 4 && c[1].top_ids[t][0] == y);
        for (int k = 0; k < 4; k++) {
            const int32_t a = c[1].top_ids[t][k];
            int above = 0; /* ids with a larger logit, or an equal one and a lower id: exactly k */
            for (int i = 0; i < V; i++) above += lg[i] > lg[a] || (lg[i] == lg[a] && i < a);
            CHECKF(above == k && fabs(c[1].top_lp[t][k] - (lg[a] - lse)) < 1e-4, "step %d alternative %d: id %d rank %d", t, k,
                   a, above);
        }
        CHECK_OK(al_session_eval(s, &y, 1, lg, false));
    }
    free(lg);
    al_session_free(s);
    free(ids);
}

static void test_stop_and_cancel(void) {
    al_engine *e;
    REQUIRE_OK(al_engine_init(&e, model, 2, 256));
    int32_t *ids;
    size_t n;
    REQUIRE_OK(al_tokenizer_encode(tok, "Hello world", 11, true, false, &ids, &n));
    collect full;
    memset(&full, 0, sizeof full);
    al_gen_request r = base_req(ids, n, &full);
    r.max_tokens = 24;
    REQUIRE_OK(al_engine_submit(e, &r, NULL));
    REQUIRE(wait_done(&full, 1));
    REQUIRE(full.text_len > 12);
    /* stop at a substring in the middle of the greedy text */
    char stop[8];
    size_t at = full.text_len / 2;
    memcpy(stop, full.text + at, 3);
    stop[3] = '\0';
    const char *stops[1] = {stop};
    collect cs;
    memset(&cs, 0, sizeof cs);
    r = base_req(ids, n, &cs);
    r.max_tokens = 24;
    r.stop = stops;
    r.n_stop = 1;
    REQUIRE_OK(al_engine_submit(e, &r, NULL));
    REQUIRE(wait_done(&cs, 1));
    const char *first = strstr(full.text, stop);
    REQUIRE(first);
    CHECK(cs.finish == AL_FINISH_STOP);
    CHECKF(cs.text_len == (size_t)(first - full.text) && !memcmp(cs.text, full.text, cs.text_len),
           "stopped text '%s' vs full '%s' stop '%s'", cs.text, full.text, stop);
    /* cancel from the callback */
    collect cc;
    memset(&cc, 0, sizeof cc);
    r = base_req(ids, n, &cc);
    r.max_tokens = 24;
    cc.cancel_after = 3;
    REQUIRE_OK(al_engine_submit(e, &r, NULL));
    REQUIRE(wait_done(&cc, 1));
    CHECK(cc.finish == AL_FINISH_CANCELLED && cc.n_tok == 3);
    /* prompt too long */
    int32_t *big = calloc(300, sizeof(int32_t));
    r = base_req(big, 300, &cc);
    CHECK_ERR(al_engine_submit(e, &r, NULL), AL_ERR_RANGE);
    free(big);
    free(ids);
    al_engine_free(e);
}

/* runs one greedy request of max_tokens 8 to the end; its tokens into c */
static void run_one(al_engine *e, const int32_t *p, size_t n, collect *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    al_gen_request r = base_req(p, n, c);
    r.max_tokens = 8;
    CHECK_OK(al_engine_submit(e, &r, NULL));
    CHECK(wait_done(c, 1));
}

/* prompt = a ++ b */
static size_t join(int32_t *out, const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    memmove(out, a, sizeof *a * na);
    memcpy(out + na, b, sizeof *b * nb);
    return na + nb;
}

/* Prefix reuse on model m (hybrid: a prompt extending the cached sequence, or the last prompt through
 * its snapshot; attention-only: any common prefix; both: the last prompt again, nothing evaluated):
 * every answer equals a lone session's, and the engine counts the tokens it reused. */
static void check_prefix_reuse(al_model *m, bool attention_only) {
    const al_tokenizer *t;
    REQUIRE_OK(al_model_tokenizer(m, &t));
    al_engine *e;
    REQUIRE_OK(al_engine_init(&e, m, 1, 256));
    int32_t *p, *more, *other;
    size_t np, nm, no;
    REQUIRE_OK(al_tokenizer_encode(t, "Once upon a time", 16, true, false, &p, &np));
    REQUIRE_OK(al_tokenizer_encode(t, " there was a fox", 16, false, false, &more, &nm));
    REQUIRE_OK(al_tokenizer_encode(t, "The end of it all", 17, false, false, &other, &no));
    int32_t prompt[128], want[8];
    collect a, b, c, d;
    memset(&b, 0, sizeof b);
    run_one(e, p, np, &a); /* caches p + a's first 7 tokens (the 8th is never fed) */
    REQUIRE(a.n_tok == 8);
    size_t n = join(prompt, p, np, a.toks, 7);
    n = join(prompt, prompt, n, more, nm);
    run_one(e, prompt, n, &b); /* extends the cached sequence: reused on any model */
    lone_greedy_of(m, prompt, (int)n, 8, want);
    CHECK(b.n_tok == 8 && !memcmp(b.toks, want, sizeof want));
    al_engine_stats st = al_engine_get_stats(e);
    CHECKF(st.tokens_cached == np + 7, "extending prompt: %llu tokens reused, %zu expected",
           (unsigned long long)st.tokens_cached, np + 7);
    /* the whole last prompt, then something else than its reply (a template dropping past reasoning):
     * a hybrid model goes back to the snapshot taken at that prompt's end */
    collect e5;
    const size_t nb = n;
    n = join(prompt, prompt, nb, other, no);
    run_one(e, prompt, n, &e5);
    lone_greedy_of(m, prompt, (int)n, 8, want);
    CHECK(e5.n_tok == 8 && !memcmp(e5.toks, want, sizeof want) && b.toks[0] != other[0]);
    uint64_t before0 = st.tokens_cached;
    st = al_engine_get_stats(e);
    CHECKF(st.tokens_cached - before0 == nb, "prompt after the last prompt: %llu reused, %zu expected",
           (unsigned long long)(st.tokens_cached - before0), nb);
    n = join(prompt, p, np - 1, other, no); /* diverges inside the cached sequence */
    run_one(e, prompt, n, &c);
    lone_greedy_of(m, prompt, (int)n, 8, want);
    CHECK(c.n_tok == 8 && !memcmp(c.toks, want, sizeof want));
    const uint64_t before = st.tokens_cached;
    st = al_engine_get_stats(e);
    const uint64_t expect = attention_only ? np - 1 : 0; /* a hybrid model's SSM state cannot be cut back */
    CHECKF(st.tokens_cached - before == expect, "diverging prompt: %llu reused, %llu expected",
           (unsigned long long)(st.tokens_cached - before), (unsigned long long)expect);
    run_one(e, prompt, n, &d); /* the same prompt again (a regenerated reply): all of it, from its end's logits */
    CHECK(d.n_tok == 8 && !memcmp(d.toks, want, sizeof want));
    const uint64_t before2 = st.tokens_cached;
    st = al_engine_get_stats(e);
    CHECKF(st.tokens_cached - before2 == n, "repeated prompt: %llu reused, %zu expected", (unsigned long long)(st.tokens_cached - before2), n);
    al_engine_free(e);
    free(p);
    free(more);
    free(other);
}

/* Two slots: an unrelated request goes to the least recently used slot rather than cutting back the
 * other's cached conversation, which the conversation's next turn then reuses whole. */
static void check_slot_choice(al_model *m) {
    const al_tokenizer *t;
    REQUIRE_OK(al_model_tokenizer(m, &t));
    al_engine *e;
    REQUIRE_OK(al_engine_init(&e, m, 2, 256));
    int32_t *pa, *pb, *more;
    size_t na, nb, nm;
    REQUIRE_OK(al_tokenizer_encode(t, "Once upon a time", 16, true, false, &pa, &na));
    REQUIRE_OK(al_tokenizer_encode(t, "Paris is a city", 15, true, false, &pb, &nb));
    REQUIRE_OK(al_tokenizer_encode(t, " there was a fox", 16, false, false, &more, &nm));
    collect a, b, a2;
    run_one(e, pa, na, &a);
    run_one(e, pb, nb, &b);
    int32_t prompt[128], want[8];
    size_t n = join(prompt, pa, na, a.toks, 7);
    n = join(prompt, prompt, n, more, nm);
    const uint64_t before = al_engine_get_stats(e).tokens_cached;
    run_one(e, prompt, n, &a2);
    lone_greedy_of(m, prompt, (int)n, 8, want);
    CHECK(a2.n_tok == 8 && !memcmp(a2.toks, want, sizeof want));
    const uint64_t got = al_engine_get_stats(e).tokens_cached - before;
    CHECKF(got == na + 7, "next turn reused %llu tokens, %zu expected", (unsigned long long)got, na + 7);
    al_engine_free(e);
    free(pa);
    free(pb);
    free(more);
}

static void test_prefix_reuse(void) {
    check_prefix_reuse(model, false); /* alloy-tiny: Mamba-2 and attention */
    /* the same shape with attention layers only */
    al_hparams hp = model->hp;
    REQUIRE_OK(al_hparams_set_pattern(&hp, "AAAA"));
    const char *path = "test_engine_attn.gguf";
    REQUIRE_OK(al_model_create_random(&hp, al_test_path("tokenizers/ggml-vocab-llama-spm.gguf"), path, "Q8_0", 4));
    al_model *attn = NULL;
    al_model_params mp = al_model_default_params();
    mp.n_threads = 2;
    REQUIRE_OK(al_model_load(&attn, path, &mp));
    CHECK(al_model_can_truncate(attn) && !al_model_can_truncate(model));
    check_prefix_reuse(attn, true);
    check_slot_choice(attn);
    check_slot_choice(model);
    al_model_free(attn);
    unlink(path);
}

int main(void) {
    char path[] = "/tmp/alloy_test_engine_XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    al_status st = al_model_create_preset("alloy-tiny", al_test_path("tokenizers/ggml-vocab-llama-spm.gguf"), path, "Q8_0", 3);
    if (st.code) {
        fprintf(stderr, "create: %s\n", st.msg);
        return 1;
    }
    al_model_params mp = al_model_default_params();
    mp.n_threads = 2;
    st = al_model_load(&model, path, &mp);
    if (st.code || al_model_tokenizer(model, &tok).code) {
        fprintf(stderr, "load: %s\n", st.msg);
        return 1;
    }
    AL_RUN(test_concurrent_greedy);
    AL_RUN(test_stop_and_cancel);
    AL_RUN(test_logprobs);
    AL_RUN(test_prefix_reuse);
    AL_RUN(test_backend);
    al_model_free(model);
    unlink(path);
    return al_test_finish();
}
