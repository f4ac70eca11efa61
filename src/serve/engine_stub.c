/* engine_stub.c — TEMPORARY sequential stand-in for src/model/engine.c (include/alloy/engine.h) so
 * the server can be built and tested before the real continuous-batching engine lands. Slots are
 * advanced round-robin, one al_session_eval per slot per step (no batching). Delete on merge. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/engine.h"
#include "alloy/tokenizer.h"

typedef struct job {
    uint64_t id;
    al_gen_request r;
    int32_t *prompt;
    char **stop;
    bool cancel;
    struct job *next;
    /* slot state */
    al_sampler *smp;
    al_detok *dt;
    char *gen;      /* all generated text */
    size_t gen_len, gen_cap;
    size_t emitted; /* bytes of gen handed out */
    int n_gen;
    int32_t last;
    double t_submit, t_start, t_prefilled;
} job;

struct al_engine {
    al_model *m;
    const al_tokenizer *tok;
    int n_parallel, n_ctx, n_vocab;
    al_session **sess;
    job **slot;
    job *queue_head, *queue_tail;
    int n_queued;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    bool stop;
    uint64_t next_id;
    al_engine_stats st;
    float *logits;
    uint8_t *allowed;
};

static void job_free(job *j) {
    if (!j) return;
    free(j->prompt);
    for (int i = 0; i < j->r.n_stop; i++) free(j->stop[i]);
    free(j->stop);
    al_sampler_free(j->smp);
    al_detok_free(j->dt);
    free(j->gen);
    free(j);
}

static void finish(al_engine *e, job *j, al_finish f, const char *stop, const char *err) {
    al_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = AL_EV_DONE;
    ev.id = j->id;
    ev.finish = f;
    ev.stop_string = stop;
    ev.error = err;
    ev.n_prompt = (int)j->r.n_prompt;
    ev.n_generated = j->n_gen;
    double now = al_time_sec();
    ev.t_queue = j->t_start > 0 ? j->t_start - j->t_submit : now - j->t_submit;
    ev.t_prompt = j->t_prefilled > 0 ? j->t_prefilled - j->t_start : 0;
    ev.t_gen = j->t_prefilled > 0 ? now - j->t_prefilled : 0;
    j->r.on_event(j->r.ud, &ev);
    pthread_mutex_lock(&e->mu);
    e->st.tokens_generated += (uint64_t)j->n_gen;
    pthread_mutex_unlock(&e->mu);
}

/* Longest suffix of s[0,n) that is a proper prefix of some stop string. */
static size_t holdback(const job *j, const char *s, size_t n) {
    size_t best = 0;
    for (int k = 0; k < j->r.n_stop; k++) {
        size_t sl = strlen(j->stop[k]);
        for (size_t l = sl > n ? n : sl - 1; l > best; l--)
            if (!memcmp(s + n - l, j->stop[k], l)) {
                best = l;
                break;
            }
    }
    return best;
}

/* One step of job j in session s. Returns false when the job finished. */
static bool step(al_engine *e, job *j, al_session *s) {
    al_status st;
    if (j->t_prefilled == 0) {
        j->t_start = al_time_sec();
        al_session_reset(s);
        st = al_session_eval(s, j->prompt, (int)j->r.n_prompt, e->logits, false);
        j->t_prefilled = al_time_sec();
    } else {
        st = al_session_eval(s, &j->last, 1, e->logits, false);
    }
    if (al_failed(&st)) {
        finish(e, j, AL_FINISH_ERROR, NULL, st.msg);
        return false;
    }
    /* log-softmax for logprobs */
    float mx = -INFINITY;
    for (int i = 0; i < e->n_vocab; i++) mx = e->logits[i] > mx ? e->logits[i] : mx;
    double z = 0;
    for (int i = 0; i < e->n_vocab; i++) z += exp((double)(e->logits[i] - mx));
    float lz = mx + (float)log(z);
    if (j->r.constraint) {
        memset(e->allowed, 1, (size_t)e->n_vocab);
        if (j->r.constraint(j->r.constraint_ud, j->gen ? j->gen : "", j->gen_len, e->allowed, e->n_vocab))
            for (int i = 0; i < e->n_vocab; i++)
                if (!e->allowed[i]) e->logits[i] = -INFINITY;
    }
    if (j->r.ignore_eos)
        for (int i = 0; i < e->n_vocab; i++)
            if (al_tokenizer_is_eog(e->tok, i)) e->logits[i] = -INFINITY;
    al_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = AL_EV_TOKEN;
    ev.id = j->id;
    int32_t t = al_sampler_sample(j->smp, e->logits, NULL);
    al_sampler_accept(j->smp, t);
    j->last = t;
    ev.token = t;
    ev.logprob = e->logits[t] == -INFINITY ? -INFINITY : 0;
    /* the unfiltered logprob: recompute from the raw value is not possible after masking, so
       approximate by the pre-mask value stored before (we keep the masked value only when allowed) */
    ev.logprob = e->logits[t] - lz;
    if (j->r.top_logprobs > 0) {
        int n = j->r.top_logprobs > AL_MAX_TOP_LOGPROBS ? AL_MAX_TOP_LOGPROBS : j->r.top_logprobs;
        for (int k = 0; k < n; k++) {
            int bi = -1;
            for (int i = 0; i < e->n_vocab; i++) {
                bool used = false;
                for (int q = 0; q < k; q++) used |= ev.top_ids[q] == i;
                if (!used && (bi < 0 || e->logits[i] > e->logits[bi])) bi = i;
            }
            ev.top_ids[k] = bi;
            ev.top_logprobs[k] = e->logits[bi] - lz;
        }
        ev.n_top = n;
    }
    if (al_tokenizer_is_eog(e->tok, t)) {
        /* flush held-back text */
        if (j->emitted < j->gen_len) {
            ev.text = j->gen + j->emitted;
            ev.text_len = j->gen_len - j->emitted;
            j->emitted = j->gen_len;
        } else {
            ev.text = "";
        }
        if (ev.text_len && !j->r.on_event(j->r.ud, &ev)) {
            finish(e, j, AL_FINISH_CANCELLED, NULL, NULL);
            return false;
        }
        finish(e, j, AL_FINISH_STOP, NULL, NULL);
        return false;
    }
    j->n_gen++;
    const char *piece;
    size_t plen;
    al_detok_push(j->dt, t, &piece, &plen);
    if (j->gen_len + plen + 1 > j->gen_cap) {
        size_t cap = (j->gen_len + plen + 1) * 2;
        char *g = realloc(j->gen, cap);
        if (!g) {
            finish(e, j, AL_FINISH_ERROR, NULL, "out of memory");
            return false;
        }
        j->gen = g;
        j->gen_cap = cap;
    }
    memcpy(j->gen + j->gen_len, piece, plen);
    j->gen_len += plen;
    j->gen[j->gen_len] = 0;
    const char *pend = j->gen + j->emitted;
    size_t pend_len = j->gen_len - j->emitted;
    const char *hit = NULL;
    size_t hit_at = 0;
    for (int k = 0; k < j->r.n_stop; k++) {
        const char *p = strstr(pend, j->stop[k]);
        if (p && (!hit || (size_t)(p - pend) < hit_at)) {
            hit = j->stop[k];
            hit_at = (size_t)(p - pend);
        }
    }
    bool at_len = (j->r.max_tokens > 0 && j->n_gen >= j->r.max_tokens) || al_session_pos(s) + 1 >= e->n_ctx;
    size_t give = hit ? hit_at : (at_len ? pend_len : pend_len - holdback(j, pend, pend_len));
    ev.text = pend;
    char save = pend[give];
    ((char *)pend)[give] = 0;
    ev.text_len = give;
    bool ok = j->r.on_event(j->r.ud, &ev);
    ((char *)pend)[give] = save;
    j->emitted += give;
    if (!ok) {
        finish(e, j, AL_FINISH_CANCELLED, NULL, NULL);
        return false;
    }
    if (hit) {
        finish(e, j, AL_FINISH_STOP, hit, NULL);
        return false;
    }
    if (at_len) {
        finish(e, j, AL_FINISH_LENGTH, NULL, NULL);
        return false;
    }
    return true;
}

static void *worker(void *arg) {
    al_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        for (int i = 0; i < e->n_parallel && e->queue_head; i++)
            if (!e->slot[i]) {
                job *j = e->queue_head;
                e->queue_head = j->next;
                if (!e->queue_head) e->queue_tail = NULL;
                e->n_queued--;
                e->slot[i] = j;
            }
        int active = 0;
        for (int i = 0; i < e->n_parallel; i++) active += e->slot[i] != NULL;
        e->st.active = active;
        e->st.queued = e->n_queued;
        if (!active) {
            if (e->stop) break;
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        for (int i = 0; i < e->n_parallel; i++) {
            job *j = e->slot[i];
            if (!j) continue;
            bool cancel = j->cancel || e->stop;
            pthread_mutex_unlock(&e->mu);
            bool more = false;
            if (cancel)
                finish(e, j, AL_FINISH_CANCELLED, NULL, NULL);
            else
                more = step(e, j, e->sess[i]);
            pthread_mutex_lock(&e->mu);
            if (!more) {
                e->slot[i] = NULL;
                job_free(j);
            }
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

al_status al_engine_init(al_engine **out, al_model *m, int n_parallel, int n_ctx) {
    *out = NULL;
    if (n_parallel <= 0) n_parallel = 1;
    al_engine *e = calloc(1, sizeof *e);
    if (!e) return al_err(AL_ERR_NOMEM, "engine: out of memory");
    e->m = m;
    e->n_parallel = n_parallel;
    e->n_vocab = al_model_n_vocab(m);
    al_status st = al_model_tokenizer(m, &e->tok);
    if (al_failed(&st)) {
        free(e);
        return st;
    }
    e->sess = calloc((size_t)n_parallel, sizeof *e->sess);
    e->slot = calloc((size_t)n_parallel, sizeof *e->slot);
    e->logits = malloc(sizeof(float) * (size_t)e->n_vocab);
    e->allowed = malloc((size_t)e->n_vocab);
    if (!e->sess || !e->slot || !e->logits || !e->allowed) st = al_err(AL_ERR_NOMEM, "engine: out of memory");
    for (int i = 0; i < n_parallel && !al_failed(&st); i++) st = al_session_init(&e->sess[i], m, n_ctx);
    if (!al_failed(&st)) e->n_ctx = al_session_n_ctx(e->sess[0]);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->st.n_parallel = n_parallel;
    if (!al_failed(&st) && pthread_create(&e->th, NULL, worker, e)) st = al_err(AL_ERR_NOMEM, "engine: no thread");
    if (al_failed(&st)) {
        for (int i = 0; i < n_parallel && e->sess; i++) al_session_free(e->sess[i]);
        free(e->sess);
        free(e->slot);
        free(e->logits);
        free(e->allowed);
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
        free(e);
        return st;
    }
    *out = e;
    return al_ok();
}

void al_engine_free(al_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->th, NULL);
    while (e->queue_head) {
        job *j = e->queue_head;
        e->queue_head = j->next;
        finish(e, j, AL_FINISH_CANCELLED, NULL, NULL);
        job_free(j);
    }
    for (int i = 0; i < e->n_parallel; i++) al_session_free(e->sess[i]);
    free(e->sess);
    free(e->slot);
    free(e->logits);
    free(e->allowed);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

al_status al_engine_submit(al_engine *e, const al_gen_request *r, uint64_t *id) {
    if (!r->on_event) return al_err(AL_ERR_INVALID, "engine: no on_event");
    if (r->n_prompt == 0) return al_err(AL_ERR_INVALID, "engine: empty prompt");
    if (r->n_prompt >= (size_t)e->n_ctx)
        return al_err(AL_ERR_RANGE, "prompt of %zu tokens does not fit the context of %d", r->n_prompt, e->n_ctx);
    job *j = calloc(1, sizeof *j);
    if (!j) return al_err(AL_ERR_NOMEM, "engine: out of memory");
    j->r = *r;
    j->prompt = malloc(sizeof(int32_t) * r->n_prompt);
    j->stop = calloc((size_t)(r->n_stop > 0 ? r->n_stop : 1), sizeof(char *));
    al_status st = (j->prompt && j->stop) ? al_ok() : al_err(AL_ERR_NOMEM, "engine: out of memory");
    if (!al_failed(&st)) memcpy(j->prompt, r->prompt, sizeof(int32_t) * r->n_prompt);
    for (int i = 0; i < r->n_stop && !al_failed(&st); i++)
        if (!(j->stop[i] = strdup(r->stop[i]))) st = al_err(AL_ERR_NOMEM, "engine: out of memory");
    j->r.prompt = j->prompt;
    j->r.stop = (const char *const *)j->stop;
    if (!al_failed(&st)) st = al_sampler_init(&j->smp, &r->sampling, e->n_vocab);
    if (!al_failed(&st)) st = al_detok_init(&j->dt, e->tok, 0);
    for (size_t i = 0; i < r->n_prompt && !al_failed(&st); i++) al_sampler_accept(j->smp, r->prompt[i]);
    if (al_failed(&st)) {
        job_free(j);
        return st;
    }
    j->t_submit = al_time_sec();
    pthread_mutex_lock(&e->mu);
    j->id = ++e->next_id;
    if (id) *id = j->id;
    if (e->queue_tail)
        e->queue_tail->next = j;
    else
        e->queue_head = j;
    e->queue_tail = j;
    e->n_queued++;
    e->st.queued = e->n_queued;
    e->st.requests_total++;
    e->st.tokens_prompt += r->n_prompt;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return al_ok();
}

void al_engine_cancel(al_engine *e, uint64_t id) {
    pthread_mutex_lock(&e->mu);
    for (job *j = e->queue_head; j; j = j->next)
        if (j->id == id) j->cancel = true;
    for (int i = 0; i < e->n_parallel; i++)
        if (e->slot[i] && e->slot[i]->id == id) e->slot[i]->cancel = true;
    pthread_mutex_unlock(&e->mu);
}

al_engine_stats al_engine_get_stats(al_engine *e) {
    pthread_mutex_lock(&e->mu);
    al_engine_stats s = e->st;
    pthread_mutex_unlock(&e->mu);
    return s;
}

int al_engine_n_ctx(const al_engine *e) { return e->n_ctx; }
const al_model *al_engine_model(const al_engine *e) { return e->m; }
