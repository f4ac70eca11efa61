/*
 * engine.c — continuous batching (see alloy/engine.h).
 *
 * Worker loop, one iteration:
 *   1. admit queued requests into free slots (reset session, new sampler);
 *   2. prefill: at most one chunk of `prefill_chunk` prompt tokens of one admitting slot, so that
 *      a long prompt does not stall the other streams; the last chunk yields the first token;
 *   3. decode: every slot with a token to feed goes into one backend decode call (on the CPU one
 *      batched forward pass); each then samples its next token, runs stop checks and emits its event.
 * Invariant: a slot in DECODE has exactly one sampled-but-unfed token in `next`; a slot's
 * cached[0 .. n_cached) are the tokens its backend state holds (n_cached < 0: unknown, reset first).
 * The slots' sequence state lives in the backend (al_engine_backend); the CPU backend is
 * engine_cpu.c.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/engine.h"
#include "alloy/tokenizer.h"
#include "model/session_internal.h"

#define MIN_REUSE 16 /* tokens: see admit */

typedef enum slot_state { SLOT_FREE = 0, SLOT_PREFILL, SLOT_DECODE } slot_state;

typedef struct req {
    uint64_t id;
    al_gen_request r;     /* prompt and stop point into the copies below */
    int32_t *prompt;
    char **stop;
    double t_submit;
    bool cancelled;
    struct req *next;
} req;

typedef struct slot {
    slot_state state;
    req *rq;
    void *s;              /* the backend's sequence state */
    al_sampler *smp;
    al_detok *dt;
    float *logits;        /* [n_vocab]: the engine's, or the backend's (own_logits false) */
    bool own_logits;
    uint8_t *allowed;     /* [n_vocab] */
    size_t prefilled;
    bool started;         /* the first prefill chunk of the request has run */
    int reuse;            /* prompt tokens the state already holds (chosen at admission) */
    int32_t *cached;      /* [n_ctx] tokens fed into the state, in order */
    int n_cached;         /* -1: the state is unknown (a backend call failed) */
    int snap_pos;         /* the last prompt's length when the state can go back to its end (a backend
                             snapshot, or truncation) and end_logits are its logits; -1: none */
    float *end_logits;    /* [n_vocab] */
    uint64_t used;        /* admission count when last given a request (least recently used goes first) */
    int32_t next;         /* token sampled, to be fed */
    int n_gen;
    char *text;           /* generated text so far */
    size_t text_len, text_cap, emitted;
    double t_start, t_prompt_done;
} slot;

struct al_engine {
    al_model *m;
    const al_tokenizer *tok;
    int n_parallel, n_ctx, n_vocab;
    int prefill_chunk;
    al_engine_backend b;
    char *device;
    slot *slots;
    void **batch_slots;   /* decode call arguments, [n_parallel] each */
    int32_t *batch_tok;
    float **batch_logits;
    int *batch_idx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    req *queue_head, *queue_tail;
    int queued;
    bool stop;
    uint64_t next_id;
    uint64_t admitted;    /* requests given a slot so far */
    char last_error[256]; /* the backend's last failure (under mu) */
    al_engine_stats stats;
};

static void req_free(req *q) {
    if (!q) return;
    free(q->prompt);
    for (int i = 0; i < q->r.n_stop; i++) free(q->stop[i]);
    free(q->stop);
    free(q);
}

static bool emit(slot *sl, al_event *ev) {
    ev->id = sl->rq->id;
    return sl->rq->r.on_event(sl->rq->r.ud, ev);
}

static void finish(al_engine *e, slot *sl, al_finish why, const char *stop_string, const char *error) {
    al_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = AL_EV_DONE;
    ev.finish = why;
    ev.stop_string = stop_string;
    ev.error = error;
    ev.n_prompt = (int)sl->rq->r.n_prompt;
    ev.n_generated = sl->n_gen;
    ev.n_cached = sl->started ? sl->reuse : 0;
    double now = al_time_sec();
    ev.t_queue = sl->t_start - sl->rq->t_submit;
    ev.t_prompt = (sl->t_prompt_done > 0 ? sl->t_prompt_done : now) - sl->t_start;
    ev.t_gen = sl->t_prompt_done > 0 ? now - sl->t_prompt_done : 0;
    emit(sl, &ev);
    pthread_mutex_lock(&e->mu);
    e->stats.tokens_generated += (uint64_t)sl->n_gen;
    e->stats.active--;
    pthread_mutex_unlock(&e->mu);
    al_sampler_free(sl->smp);
    sl->smp = NULL;
    req_free(sl->rq);
    sl->rq = NULL;
    sl->state = SLOT_FREE;
}

/* Longest suffix of text that is a proper prefix of some stop string: must be held back. */
static size_t holdback(const slot *sl) {
    size_t best = 0;
    for (int i = 0; i < sl->rq->r.n_stop; i++) {
        const char *st = sl->rq->stop[i];
        size_t L = strlen(st);
        for (size_t k = L > sl->text_len ? sl->text_len : L - 1; k > best; k--)
            if (!memcmp(sl->text + sl->text_len - k, st, k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* log-softmax of the raw logits: logprob of tok and the n_top best alternatives (highest first, ties
 * to the lower id), found in the same pass as the maximum by insertion into the kept few. */
static void fill_logprobs(const float *lg, int V, int32_t tok, int n_top, al_event *ev) {
    double mx = lg[0], sum = 0;
    int n = 0;
    for (int i = 0; i < V; i++) {
        mx = lg[i] > mx ? lg[i] : mx;
        if (n_top <= 0 || (n == n_top && !(lg[i] > lg[ev->top_ids[n - 1]]))) continue;
        int j = n < n_top ? n++ : n - 1;
        for (; j > 0 && lg[i] > lg[ev->top_ids[j - 1]]; j--) ev->top_ids[j] = ev->top_ids[j - 1];
        ev->top_ids[j] = i;
    }
    for (int i = 0; i < V; i++) sum += exp(lg[i] - mx);
    double lse = mx + log(sum);
    ev->logprob = (float)(lg[tok] - lse);
    ev->n_top = n;
    for (int k = 0; k < n; k++) ev->top_logprobs[k] = (float)(lg[ev->top_ids[k]] - lse);
}

/* The request ends without completing a stop string: text held back as a possible stop-string
 * prefix is released (as an event with token -1). Returns on_event's verdict. */
static bool flush_held(slot *sl) {
    if (sl->emitted >= sl->text_len) return true;
    al_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = AL_EV_TOKEN;
    ev.token = -1;
    ev.text = sl->text + sl->emitted;
    ev.text_len = sl->text_len - sl->emitted;
    sl->emitted = sl->text_len;
    return emit(sl, &ev);
}

/* Samples from sl->logits, emits the token's text, decides whether the request is over.
 * Returns true if the slot continues (sl->next set). */
static bool sample_and_emit(al_engine *e, slot *sl) {
    req *q = sl->rq;
    const float *lg = sl->logits;
    if (q->r.constraint) {
        memset(sl->allowed, 1, (size_t)e->n_vocab);
        if (q->r.constraint(q->r.constraint_ud, sl->text ? sl->text : "", sl->text_len, sl->allowed, e->n_vocab)) {
            for (int i = 0; i < e->n_vocab; i++)
                if (!sl->allowed[i]) sl->logits[i] = -INFINITY;
        }
    }
    int32_t t = al_sampler_sample(sl->smp, lg, NULL);
    if (!q->r.ignore_eos && al_tokenizer_is_eog(e->tok, t)) {
        if (!flush_held(sl)) return finish(e, sl, AL_FINISH_CANCELLED, NULL, NULL), false;
        finish(e, sl, AL_FINISH_STOP, NULL, NULL);
        return false;
    }
    al_sampler_accept(sl->smp, t);
    sl->n_gen++;
    const char *piece;
    size_t plen;
    al_status st = al_detok_push(sl->dt, t, &piece, &plen);
    if (al_failed(&st)) return finish(e, sl, AL_FINISH_ERROR, NULL, st.msg), false;
    if (sl->text_len + plen + 1 > sl->text_cap) {
        size_t cap = sl->text_cap ? sl->text_cap : 256;
        while (sl->text_len + plen + 1 > cap) cap *= 2;
        char *nt = realloc(sl->text, cap);
        if (!nt) return finish(e, sl, AL_FINISH_ERROR, NULL, "out of memory"), false;
        sl->text = nt;
        sl->text_cap = cap;
    }
    memcpy(sl->text + sl->text_len, piece, plen);
    sl->text_len += plen;
    sl->text[sl->text_len] = '\0';
    /* a completed stop string ends the request; its text is not emitted */
    const char *hit = NULL;
    size_t hit_pos = 0;
    for (int i = 0; i < q->r.n_stop; i++) {
        size_t L = strlen(q->stop[i]);
        size_t from = sl->emitted > L ? sl->emitted - L : 0;
        const char *p = L ? strstr(sl->text + from, q->stop[i]) : NULL;
        if (p && (!hit || (size_t)(p - sl->text) < hit_pos)) {
            hit = q->stop[i];
            hit_pos = (size_t)(p - sl->text);
        }
    }
    size_t upto = hit ? hit_pos : sl->text_len - holdback(sl);
    al_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = AL_EV_TOKEN;
    ev.token = t;
    if (upto < sl->emitted) upto = sl->emitted;
    char saved = sl->text[upto];
    sl->text[upto] = '\0';
    ev.text = sl->text + sl->emitted;
    ev.text_len = upto - sl->emitted;
    if (q->r.logprobs || q->r.top_logprobs > 0) fill_logprobs(lg, e->n_vocab, t, q->r.top_logprobs, &ev);
    else ev.logprob = NAN;
    bool keep = emit(sl, &ev);
    sl->text[upto] = saved;
    sl->emitted = upto;
    if (!keep || q->cancelled) return finish(e, sl, AL_FINISH_CANCELLED, NULL, NULL), false;
    if (hit) return finish(e, sl, AL_FINISH_STOP, hit, NULL), false;
    if ((q->r.max_tokens > 0 && sl->n_gen >= q->r.max_tokens) || e->b.slot_pos(e->b.ctx, sl->s) + 1 >= e->n_ctx) {
        finish(e, sl, flush_held(sl) ? AL_FINISH_LENGTH : AL_FINISH_CANCELLED, NULL, NULL);
        return false;
    }
    sl->next = t;
    return true;
}

/* prompt tokens of q that slot sl's state can serve: all of them for the last prompt again (its
 * logits kept); else its whole cached sequence when the prompt extends it, the common prefix where the
 * state can be cut back, or the last prompt where the prompt starts with it — never the prompt's
 * last token, whose logits start generation */
static int reusable(const al_engine *e, const slot *sl, const req *q) {
    if (sl->n_cached <= 0) return 0;
    if (sl->snap_pos == (int)q->r.n_prompt && sl->n_cached >= sl->snap_pos &&
        !memcmp(sl->cached, q->prompt, sizeof(int32_t) * q->r.n_prompt))
        return sl->snap_pos; /* the same prompt again (a regenerated reply): nothing to evaluate */
    const int lim = (int)q->r.n_prompt - 1 < sl->n_cached ? (int)q->r.n_prompt - 1 : sl->n_cached;
    int n = 0;
    while (n < lim && sl->cached[n] == q->prompt[n]) n++;
    if (n == sl->n_cached || e->b.slot_truncate) return n;
    return sl->snap_pos > 0 && n >= sl->snap_pos ? sl->snap_pos : 0; /* back to the snapshot */
}

static void admit(al_engine *e) {
    pthread_mutex_lock(&e->mu);
    while (e->queue_head) {
        req *q = e->queue_head;
        /* the free slot with the most reusable tokens; on ties the least recently used, so that a
         * request that reuses little leaves the freshest cached conversations alone (a reuse that
         * would cut a cached sequence back to fewer than MIN_REUSE tokens ranks as none) */
        slot *sl = NULL;
        int best = -1, reuse = 0;
        for (int i = 0; i < e->n_parallel; i++) {
            slot *c = &e->slots[i];
            if (c->state != SLOT_FREE) continue;
            const int r = reusable(e, c, q), rank = r >= MIN_REUSE || r == c->n_cached ? r : 0;
            if (rank > best || (rank == best && c->used < sl->used)) best = rank, sl = c, reuse = r;
        }
        if (!sl) break;
        e->queue_head = q->next;
        if (!e->queue_head) e->queue_tail = NULL;
        e->queued--;
        e->stats.active++;
        sl->rq = q;
        sl->used = ++e->admitted;
        sl->state = SLOT_PREFILL;
        sl->prefilled = 0;
        sl->started = false;
        sl->reuse = reuse;
        sl->n_gen = 0;
        sl->text_len = sl->emitted = 0;
        sl->t_start = al_time_sec();
        sl->t_prompt_done = 0;
    }
    pthread_mutex_unlock(&e->mu);
}

/* tokens fed into the slot's state: remembered for prefix reuse */
static void remember(al_engine *e, slot *sl, const int32_t *tok, int n) {
    if (sl->n_cached < 0) return;
    if (sl->n_cached + n > e->n_ctx) {
        sl->n_cached = -1;
        return;
    }
    memcpy(sl->cached + sl->n_cached, tok, sizeof(int32_t) * (size_t)n);
    sl->n_cached += n;
}

/* the outcome of a backend call, for al_engine_stats (failure streak, total) */
static void backend_result(al_engine *e, const al_status *st) {
    pthread_mutex_lock(&e->mu);
    if (al_failed(st)) {
        e->stats.backend_errors++;
        e->stats.fail_streak++;
        snprintf(e->last_error, sizeof e->last_error, "%s", st->msg);
    } else {
        e->stats.fail_streak = 0;
    }
    pthread_mutex_unlock(&e->mu);
}

static void prefill_step(al_engine *e) {
    for (int i = 0; i < e->n_parallel; i++) {
        slot *sl = &e->slots[i];
        if (sl->state != SLOT_PREFILL) continue;
        req *q = sl->rq;
        if (!sl->started) {
            sl->started = true;
            /* keep the reusable prefix of the state (cut back to it where needed), or start afresh */
            al_status tr = al_ok();
            if (sl->reuse > 0 && sl->reuse < sl->n_cached)
                tr = e->b.slot_truncate ? e->b.slot_truncate(e->b.ctx, sl->s, sl->reuse)
                                        : e->b.slot_restore(e->b.ctx, sl->s); /* reuse == snap_pos */
            if (sl->reuse <= 0 || al_failed(&tr)) {
                e->b.slot_reset(e->b.ctx, sl->s);
                sl->reuse = 0;
                sl->snap_pos = -1;
            }
            if (sl->snap_pos > sl->reuse) sl->snap_pos = -1;
            sl->n_cached = sl->reuse;
            sl->prefilled = (size_t)sl->reuse;
            pthread_mutex_lock(&e->mu);
            e->stats.tokens_cached += (uint64_t)sl->reuse;
            pthread_mutex_unlock(&e->mu);
            if ((size_t)sl->reuse == q->r.n_prompt) memcpy(sl->logits, sl->end_logits, sizeof(float) * (size_t)e->n_vocab);
            al_detok_free(sl->dt);
            sl->dt = NULL;
            al_status dst = al_detok_init(&sl->dt, e->tok, q->r.render_special ? AL_DETOK_SPECIAL : 0);
            if (al_failed(&dst)) {
                finish(e, sl, AL_FINISH_ERROR, NULL, dst.msg);
                continue;
            }
            al_status st = al_sampler_init(&sl->smp, &q->r.sampling, e->n_vocab);
            if (al_failed(&st)) {
                finish(e, sl, AL_FINISH_ERROR, NULL, st.msg);
                continue;
            }
            for (size_t k = 0; k < q->r.n_prompt; k++) al_sampler_accept(sl->smp, q->prompt[k]);
        }
        if (q->cancelled) {
            finish(e, sl, AL_FINISH_CANCELLED, NULL, NULL);
            continue;
        }
        if (sl->prefilled == q->r.n_prompt) { /* all reused: the kept logits start generation */
            sl->t_prompt_done = al_time_sec();
            pthread_mutex_lock(&e->mu);
            e->stats.tokens_prompt += q->r.n_prompt;
            pthread_mutex_unlock(&e->mu);
            if (sample_and_emit(e, sl)) sl->state = SLOT_DECODE;
            return;
        }
        size_t left = q->r.n_prompt - sl->prefilled;
        int n = left > (size_t)e->prefill_chunk ? e->prefill_chunk : (int)left;
        bool last = (size_t)n == left;
        al_status st = e->b.slot_prefill(e->b.ctx, sl->s, q->prompt + sl->prefilled, n, last ? sl->logits : NULL);
        backend_result(e, &st);
        if (al_failed(&st)) {
            sl->n_cached = -1;
            finish(e, sl, AL_FINISH_ERROR, NULL, st.msg);
            continue;
        }
        remember(e, sl, q->prompt + sl->prefilled, n);
        sl->prefilled += (size_t)n;
        if (last && sl->n_cached > 0) { /* the prompt's end and its logits, for the next request */
            /* a cut back serves wherever the backend can cut; else a snapshot of the state here */
            al_status ss = e->b.slot_truncate ? al_ok()
                           : e->b.slot_snapshot ? e->b.slot_snapshot(e->b.ctx, sl->s) : al_err(AL_ERR_UNSUPPORTED, "no way back");
            sl->snap_pos = al_failed(&ss) ? -1 : sl->n_cached;
            memcpy(sl->end_logits, sl->logits, sizeof(float) * (size_t)e->n_vocab);
        }
        if (last) {
            sl->t_prompt_done = al_time_sec();
            pthread_mutex_lock(&e->mu);
            e->stats.tokens_prompt += q->r.n_prompt;
            pthread_mutex_unlock(&e->mu);
            if (sample_and_emit(e, sl)) sl->state = SLOT_DECODE;
        }
        return; /* one chunk per iteration */
    }
}

static void decode_step(al_engine *e) {
    int n = 0;
    for (int i = 0; i < e->n_parallel; i++) {
        slot *sl = &e->slots[i];
        if (sl->state != SLOT_DECODE) continue;
        if (sl->rq->cancelled) {
            finish(e, sl, AL_FINISH_CANCELLED, NULL, NULL);
            continue;
        }
        e->batch_slots[n] = sl->s;
        e->batch_tok[n] = sl->next;
        e->batch_logits[n] = sl->logits;
        e->batch_idx[n++] = i;
    }
    if (n == 0) return;
    al_status st = e->b.decode(e->b.ctx, e->batch_slots, e->batch_tok, n, e->batch_logits);
    backend_result(e, &st);
    for (int k = 0; k < n; k++) {
        slot *sl = &e->slots[e->batch_idx[k]];
        if (al_failed(&st)) {
            sl->n_cached = -1;
            finish(e, sl, AL_FINISH_ERROR, NULL, st.msg);
            continue;
        }
        remember(e, sl, &e->batch_tok[k], 1);
        if (!sample_and_emit(e, sl)) sl->state = SLOT_FREE;
    }
}

static bool busy(al_engine *e) {
    for (int i = 0; i < e->n_parallel; i++)
        if (e->slots[i].state != SLOT_FREE) return true;
    return false;
}

static void *worker(void *arg) {
    al_engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && !e->queue_head && !busy(e)) pthread_cond_wait(&e->cv, &e->mu);
        bool stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop) break;
        admit(e);
        prefill_step(e);
        decode_step(e);
    }
    return NULL;
}

al_status al_engine_init(al_engine **out, al_model *m, int n_parallel, int n_ctx) {
    *out = NULL;
    al_engine_backend b;
    AL_TRY(al_engine_cpu_backend(m, n_parallel, &b));
    return al_engine_init_backend(out, m, n_parallel, n_ctx, &b);
}

al_status al_engine_init_backend(al_engine **out, al_model *m, int n_parallel, int n_ctx, const al_engine_backend *b) {
    *out = NULL;
    if (!b || !b->slot_init || !b->slot_free || !b->slot_reset || !b->slot_pos || !b->slot_n_ctx || !b->slot_prefill ||
        !b->decode) {
        if (b && b->destroy) b->destroy(b->ctx);
        return al_err(AL_ERR_INVALID, "engine: backend without all of its functions");
    }
    const al_tokenizer *tok;
    al_status st = al_model_tokenizer(m, &tok);
    if (!al_failed(&st) && (n_parallel <= 0 || n_parallel > 1024))
        st = al_err(AL_ERR_INVALID, "engine: n_parallel %d out of [1, 1024]", n_parallel);
    al_engine *e = al_failed(&st) ? NULL : calloc(1, sizeof *e);
    if (!al_failed(&st) && !e) st = al_err(AL_ERR_NOMEM, "engine: out of memory");
    if (al_failed(&st)) {
        if (b->destroy) b->destroy(b->ctx);
        return st;
    }
    e->m = m;
    e->tok = tok;
    e->b = *b;
    e->n_parallel = n_parallel;
    e->n_vocab = al_model_n_vocab(m);
    e->prefill_chunk = b->prefill_chunk > 0 ? b->prefill_chunk : 256;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->device = strdup(b->device ? b->device : "");
    e->slots = calloc((size_t)n_parallel, sizeof *e->slots);
    e->batch_slots = calloc((size_t)n_parallel, sizeof *e->batch_slots);
    e->batch_tok = calloc((size_t)n_parallel, sizeof *e->batch_tok);
    e->batch_logits = calloc((size_t)n_parallel, sizeof *e->batch_logits);
    e->batch_idx = calloc((size_t)n_parallel, sizeof *e->batch_idx);
    if (!e->device || !e->slots || !e->batch_slots || !e->batch_tok || !e->batch_logits || !e->batch_idx)
        st = al_err(AL_ERR_NOMEM, "engine: out of memory");
    for (int i = 0; i < n_parallel && !al_failed(&st); i++) {
        slot *sl = &e->slots[i];
        /* every slot gets the first one's capacity (the model default resolved once) */
        sl->snap_pos = -1;
        st = b->slot_init(b->ctx, i == 0 ? n_ctx : e->n_ctx, &sl->s);
        if (!al_failed(&st) && i == 0) e->n_ctx = b->slot_n_ctx(b->ctx, sl->s);
        if (!al_failed(&st)) st = al_detok_init(&sl->dt, tok, 0);
        sl->own_logits = !b->slot_logits;
        if (!al_failed(&st)) sl->logits = b->slot_logits ? b->slot_logits(b->ctx, sl->s) : malloc(sizeof(float) * (size_t)e->n_vocab);
        sl->allowed = malloc((size_t)e->n_vocab);
        sl->cached = !al_failed(&st) ? malloc(sizeof(int32_t) * (size_t)(e->n_ctx > 0 ? e->n_ctx : 1)) : NULL;
        sl->end_logits = malloc(sizeof(float) * (size_t)e->n_vocab);
        if (!al_failed(&st) && (!sl->logits || !sl->allowed || !sl->cached || !sl->end_logits))
            st = al_err(AL_ERR_NOMEM, "engine: out of memory");
    }
    if (!al_failed(&st) && pthread_create(&e->thread, NULL, worker, e) != 0) st = al_err(AL_ERR_IO, "engine: cannot start worker");
    if (al_failed(&st)) {
        e->thread = 0;
        al_engine_free(e);
        return st;
    }
    e->stats.n_parallel = n_parallel;
    *out = e;
    return al_ok();
}

void al_engine_free(al_engine *e) {
    if (!e) return;
    if (e->thread) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    for (int i = 0; e->slots && i < e->n_parallel; i++) {
        slot *sl = &e->slots[i];
        if (sl->state != SLOT_FREE && sl->rq) finish(e, sl, AL_FINISH_CANCELLED, NULL, NULL);
        e->b.slot_free(e->b.ctx, sl->s);
        al_detok_free(sl->dt);
        if (sl->own_logits) free(sl->logits);
        free(sl->allowed);
        free(sl->cached);
        free(sl->end_logits);
        free(sl->text);
    }
    for (req *q = e->queue_head; q;) {
        req *nx = q->next;
        al_event ev;
        memset(&ev, 0, sizeof ev);
        ev.kind = AL_EV_DONE;
        ev.id = q->id;
        ev.finish = AL_FINISH_CANCELLED;
        ev.n_prompt = (int)q->r.n_prompt;
        q->r.on_event(q->r.ud, &ev);
        req_free(q);
        q = nx;
    }
    free(e->slots);
    free(e->batch_slots);
    free(e->batch_tok);
    free(e->batch_logits);
    free(e->batch_idx);
    free(e->device);
    if (e->b.destroy) e->b.destroy(e->b.ctx);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

al_status al_engine_submit(al_engine *e, const al_gen_request *r, uint64_t *id) {
    if (!r->on_event) return al_err(AL_ERR_INVALID, "engine: request without on_event");
    if (r->n_prompt == 0) return al_err(AL_ERR_INVALID, "engine: empty prompt");
    if (r->n_prompt + 1 > (size_t)e->n_ctx)
        return al_err(AL_ERR_RANGE, "prompt of %zu tokens exceeds the context of %d", r->n_prompt, e->n_ctx);
    if (r->top_logprobs < 0 || r->top_logprobs > AL_MAX_TOP_LOGPROBS || r->n_stop < 0 || r->n_stop > 64)
        return al_err(AL_ERR_INVALID, "engine: top_logprobs or stop count out of range");
    for (size_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= e->n_vocab) return al_err(AL_ERR_RANGE, "engine: token id %d out of range", r->prompt[i]);
    req *q = calloc(1, sizeof *q);
    if (!q) return al_err(AL_ERR_NOMEM, "engine: out of memory");
    q->r = *r;
    q->prompt = malloc(sizeof(int32_t) * r->n_prompt);
    q->stop = calloc((size_t)(r->n_stop ? r->n_stop : 1), sizeof(char *));
    bool ok = q->prompt && q->stop;
    if (ok) memcpy(q->prompt, r->prompt, sizeof(int32_t) * r->n_prompt);
    for (int i = 0; ok && i < r->n_stop; i++) ok = (q->stop[i] = strdup(r->stop[i] ? r->stop[i] : "")) != NULL;
    if (!ok) {
        req_free(q);
        return al_err(AL_ERR_NOMEM, "engine: out of memory");
    }
    q->r.prompt = q->prompt;
    q->r.stop = (const char *const *)q->stop;
    q->t_submit = al_time_sec();
    pthread_mutex_lock(&e->mu);
    const uint64_t qid = q->id = ++e->next_id; /* q may be finished and freed once the lock is released */
    if (e->queue_tail) e->queue_tail->next = q;
    else e->queue_head = q;
    e->queue_tail = q;
    e->queued++;
    e->stats.requests_total++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (id) *id = qid;
    return al_ok();
}

void al_engine_cancel(al_engine *e, uint64_t id) {
    pthread_mutex_lock(&e->mu);
    for (req *q = e->queue_head; q; q = q->next)
        if (q->id == id) q->cancelled = true;
    for (int i = 0; i < e->n_parallel; i++)
        if (e->slots[i].rq && e->slots[i].rq->id == id) e->slots[i].rq->cancelled = true;
    pthread_mutex_unlock(&e->mu);
}

al_engine_stats al_engine_get_stats(al_engine *e) {
    pthread_mutex_lock(&e->mu);
    al_engine_stats s = e->stats;
    s.queued = e->queued;
    pthread_mutex_unlock(&e->mu);
    return s;
}

int al_engine_n_ctx(const al_engine *e) { return e->n_ctx; }

void al_engine_last_error(al_engine *e, char *buf, size_t size) {
    pthread_mutex_lock(&e->mu);
    snprintf(buf, size, "%s", e->last_error);
    pthread_mutex_unlock(&e->mu);
}
const al_model *al_engine_model(const al_engine *e) { return e->m; }
const char *al_engine_device(const al_engine *e) { return e->device; }
size_t al_engine_device_bytes(const al_engine *e) { return e->b.device_bytes; }
