/* http.c — the HTTP side of `alloy serve`: libmicrohttpd daemon (internal epoll thread pool,
 * suspend/resume for generation), routing, body limits, auth, model names, capacity, and the
 * srv_job life cycle between HTTP connections and the engine: output parsing (alloy/chat.h,
 * streaming or one-shot), constraints (response formats, tool_choice), hang-up detection. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "serve/prompt.h"
#include "serve/serve_internal.h"

const srv_api_ops *const srv_api_table[SRV_API_COUNT] = {
    [SRV_OPENAI_CHAT] = &srv_ops_openai_chat,
    [SRV_OPENAI_COMPLETION] = &srv_ops_openai_completion,
    [SRV_ANTHROPIC] = &srv_ops_anthropic,
    [SRV_OLLAMA_CHAT] = &srv_ops_ollama_chat,
    [SRV_OLLAMA_GENERATE] = &srv_ops_ollama_generate,
};

struct al_server {
    al_server_params p;
    char *host, *api_key, *name, **aliases, *base;
    al_model *m;
    const al_tokenizer *tok;
    al_template *tpl;
    al_chat_format fmt;  /* tool-call layout asked of the model (from its template) */
    al_cvocab *cvocab;   /* the vocabulary for constraints */
    uint8_t *ranks;      /* srv_finish_ranks */
    al_engine *eng;
    struct MHD_Daemon *d;
    int port;
    srv_metrics *metrics;
    pthread_mutex_t mu; /* guards stopping and engine calls against al_server_free */
    bool stopping;
    atomic_int in_flight; /* generations accepted and not finished */
    int64_t started;
};

typedef enum route_kind {
    R_GEN, R_COUNT, R_MODELS, R_MODEL, R_TAGS, R_PS, R_SHOW, R_VERSION, R_HEALTH, R_METRICS, R_ROOT, R_KIND_COUNT
} route_kind;

typedef enum dialect { D_OPENAI, D_ANTHROPIC, D_OLLAMA, D_PLAIN } dialect;

typedef struct route {
    const char *method, *path;
    route_kind kind;
    srv_api api;
    dialect d;
    bool prefix;
} route;

static const route routes[] = {
    {"POST", "/v1/chat/completions", R_GEN, SRV_OPENAI_CHAT, D_OPENAI, false},
    {"POST", "/v1/completions", R_GEN, SRV_OPENAI_COMPLETION, D_OPENAI, false},
    {"POST", "/v1/messages", R_GEN, SRV_ANTHROPIC, D_ANTHROPIC, false},
    {"POST", "/v1/messages/count_tokens", R_COUNT, SRV_ANTHROPIC, D_ANTHROPIC, false},
    {"POST", "/api/chat", R_GEN, SRV_OLLAMA_CHAT, D_OLLAMA, false},
    {"POST", "/api/generate", R_GEN, SRV_OLLAMA_GENERATE, D_OLLAMA, false},
    {"GET", "/v1/models", R_MODELS, 0, D_OPENAI, false},
    {"GET", "/v1/models/", R_MODEL, 0, D_OPENAI, true},
    {"GET", "/api/tags", R_TAGS, 0, D_OLLAMA, false},
    {"GET", "/api/ps", R_PS, 0, D_OLLAMA, false},
    {"POST", "/api/show", R_SHOW, 0, D_OLLAMA, false},
    {"GET", "/api/version", R_VERSION, 0, D_OLLAMA, false},
    {"GET", "/health", R_HEALTH, 0, D_PLAIN, false},
    {"GET", "/metrics", R_METRICS, 0, D_PLAIN, false},
    {"GET", "/", R_ROOT, 0, D_PLAIN, false},
    {"HEAD", "/", R_ROOT, 0, D_PLAIN, false},
};

typedef struct conn_ctx {
    sbuf body;
    bool too_large;
    double t0;
    const char *endpoint; /* metrics label: a route path or "other" */
    int status;
    srv_job *job;
} conn_ctx;

/* ---- jobs ---- */

static void job_unref(srv_job *j) {
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left) return;
    srv_request_free(&j->req);
    free(j->prompt);
    sbuf_free(&j->out);
    sbuf_free(&j->text);
    al_chat_stream_free(j->cs);
    al_chat_msg_free(&j->msg);
    free(j->tool_name);
    free(j->lp);
    free(j->stop_string);
    srv_constraint_free(j->cons);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* Streaming parser events -> the API's framing (job->mu held). */
static void job_chat_event(void *ud, const al_chat_event *ev) {
    srv_job *j = ud;
    if (ev->kind == AL_CHAT_EV_CONTENT || ev->kind == AL_CHAT_EV_REASONING) {
        if (ev->len) j->ops->stream_delta(j, ev->kind == AL_CHAT_EV_CONTENT ? SRV_CH_CONTENT : SRV_CH_REASONING, ev->text, ev->len);
        return;
    }
    if (!j->req.parallel_tool_calls && ev->index > 0) return; /* dropped from the final message too */
    if (ev->kind == AL_CHAT_EV_TOOL_START) {
        free(j->tool_name);
        j->tool_name = strdup(ev->name);
    }
    if (j->ops->stream_tool) j->ops->stream_tool(j, ev);
}

/* The final message once the engine is done: parsed (streaming: what the stream gathered) or,
 * without chat parsing, the text as content. */
static void job_finish_output(srv_job *j) {
    al_status st = al_ok();
    if (j->cs) {
        st = al_chat_stream_finish(j->cs, j->req.stream && !j->conn_gone ? job_chat_event : NULL, j, &j->msg);
    } else if (j->parse) {
        st = al_chat_parse(j->text.p ? j->text.p : "", j->text.len, &j->popts, &j->msg);
    } else {
        j->msg.content = malloc(j->text.len + 1);
        if (j->msg.content) {
            memcpy(j->msg.content, j->text.p ? j->text.p : "", j->text.len);
            j->msg.content[j->text.len] = 0;
            j->msg.content_len = j->text.len;
        }
    }
    if (al_failed(&st) && j->finish != AL_FINISH_ERROR) {
        j->finish = AL_FINISH_ERROR;
        snprintf(j->errmsg, sizeof j->errmsg, "parsing the output: %.200s", st.msg);
    }
    if (!j->msg.content) {
        j->msg.content = calloc(1, 1);
        j->msg.content_len = 0;
    }
    if (!j->msg.reasoning) {
        j->msg.reasoning = calloc(1, 1);
        j->msg.reasoning_len = 0;
    }
    if (!j->req.parallel_tool_calls)
        while (j->msg.n_calls > 1) {
            al_tool_call *c = &j->msg.calls[--j->msg.n_calls];
            free(c->id);
            free(c->name);
            free(c->arguments_text);
            json_decref(c->arguments);
        }
}

/* The client of a waiting non-streaming request hung up (EOF on its socket). */
static bool client_gone(int fd) {
    if (fd < 0) return false;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static bool job_on_event(void *ud, const al_event *ev) {
    srv_job *j = ud;
    pthread_mutex_lock(&j->mu);
    bool keep = !j->conn_gone;
    if (ev->kind == AL_EV_TOKEN) {
        if (j->n_lp == j->cap_lp) {
            size_t cap = j->cap_lp ? j->cap_lp * 2 : 64;
            srv_logprob *lp = realloc(j->lp, sizeof *lp * cap);
            if (lp) j->lp = lp, j->cap_lp = cap;
        }
        if (j->n_lp < j->cap_lp && ev->token >= 0) {
            srv_logprob *l = &j->lp[j->n_lp++];
            l->token = ev->token;
            l->logprob = ev->logprob;
            l->n_top = ev->n_top;
            memcpy(l->top_ids, ev->top_ids, sizeof l->top_ids);
            memcpy(l->top_logprobs, ev->top_logprobs, sizeof l->top_logprobs);
        }
        if (ev->text_len) {
            sbuf_add(&j->text, ev->text, ev->text_len);
            if (j->req.stream && !j->conn_gone) {
                if (j->cs) {
                    al_status st = al_chat_stream_feed(j->cs, ev->text, ev->text_len, job_chat_event, j);
                    if (al_failed(&st)) keep = false;
                } else {
                    j->ops->stream_delta(j, SRV_CH_CONTENT, ev->text, ev->text_len);
                }
            }
        }
        if (keep && !j->req.stream && j->suspended && client_gone(j->sock)) {
            j->client_left = true;
            keep = false;
        }
    } else {
        j->finish = ev->finish;
        if (ev->stop_string) j->stop_string = strdup(ev->stop_string);
        if (ev->error) snprintf(j->errmsg, sizeof j->errmsg, "%s", ev->error);
        j->n_prompt_tokens = ev->n_prompt;
        j->n_gen = ev->n_generated;
        j->n_cached = ev->n_cached;
        j->t_queue = ev->t_queue;
        j->t_prompt = ev->t_prompt;
        j->t_gen = ev->t_gen;
        job_finish_output(j);
        if (j->req.stream && !j->conn_gone) j->ops->stream_close(j);
        j->done = true;
        /* before the client can see the answer, so its next request finds the slot free */
        atomic_fetch_sub(&j->srv->in_flight, 1);
        srv_metrics_tokens(j->srv->metrics, ev->n_prompt, ev->n_generated, ev->t_queue + ev->t_prompt,
                           ev->t_queue + ev->t_prompt + ev->t_gen);
    }
    /* streams resume for every piece; a waiting answer only once it is complete */
    if (j->suspended && j->conn && (j->req.stream || ev->kind == AL_EV_DONE)) {
        j->suspended = false;
        MHD_resume_connection(j->conn);
    }
    pthread_mutex_unlock(&j->mu);
    if (ev->kind == AL_EV_DONE) job_unref(j);
    return keep;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    srv_job *j = cls;
    (void)pos;
    pthread_mutex_lock(&j->mu);
    ssize_t r;
    if (j->out_pos < j->out.len) {
        size_t n = j->out.len - j->out_pos < max ? j->out.len - j->out_pos : max;
        memcpy(buf, j->out.p + j->out_pos, n);
        j->out_pos += n;
        if (j->out_pos == j->out.len) j->out.len = j->out_pos = 0;
        r = (ssize_t)n;
    } else if (j->done || j->out.oom) {
        r = j->out.oom ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        j->suspended = true;
        MHD_suspend_connection(j->conn);
        r = 0;
    }
    pthread_mutex_unlock(&j->mu);
    return r;
}

static void stream_free(void *cls) { job_unref(cls); }

/* ---- replies ---- */

static enum MHD_Result reply(conn_ctx *cx, struct MHD_Connection *c, int status, const char *type, sbuf *body) {
    struct MHD_Response *r = MHD_create_response_from_buffer(body->len, body->p ? body->p : (char *)"", MHD_RESPMEM_MUST_COPY);
    sbuf_free(body);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 503 || status == 529 || status == 429) MHD_add_response_header(r, "Retry-After", "1");
    cx->status = status;
    enum MHD_Result res = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return res;
}

static enum MHD_Result reply_json(conn_ctx *cx, struct MHD_Connection *c, int status, json_t *o) {
    sbuf b = {0};
    sbuf_add_json_steal(&b, o);
    return reply(cx, c, b.oom ? 500 : status, "application/json", &b);
}

static void error_body(dialect d, const srv_error *e, sbuf *b) {
    if (d == D_ANTHROPIC) srv_error_anthropic(e, b);
    else if (d == D_OLLAMA) srv_error_ollama(e, b);
    else srv_error_openai(e, b);
}

static enum MHD_Result reply_error(conn_ctx *cx, struct MHD_Connection *c, dialect d, const srv_error *e) {
    sbuf b = {0};
    error_body(d, e, &b);
    return reply(cx, c, e->status, "application/json", &b);
}

static enum MHD_Result fail(conn_ctx *cx, struct MHD_Connection *c, dialect d, int status, const char *type, const char *fmt,
                            const char *arg) {
    srv_error e;
    srv_fail(&e, status, type, NULL, fmt, arg);
    return reply_error(cx, c, d, &e);
}

/* ---- model names ---- */

const char *srv_model_name(const al_server *s) { return s->name; }
const al_tokenizer *srv_tokenizer(const al_server *s) { return s->tok; }

static bool same_model(const char *want, const char *have) {
    if (!strcmp(want, have)) return true;
    size_t wl = strlen(want), hl = strlen(have);
    if (wl == hl + 7 && !strncmp(want, have, hl) && !strcmp(want + hl, ":latest")) return true;
    if (hl == wl + 7 && !strncmp(have, want, wl) && !strcmp(have + wl, ":latest")) return true;
    return false;
}

static bool model_ok(const al_server *s, const char *name) {
    if (!name || !*name) return true;
    if (same_model(name, s->name) || same_model(name, s->base)) return true;
    for (char **a = s->aliases; a && *a; a++)
        if (same_model(name, *a)) return true;
    return false;
}

/* ---- handlers ---- */

static dialect dialect_of_url(const char *url) {
    if (!strncmp(url, "/v1/messages", 12)) return D_ANTHROPIC;
    if (!strncmp(url, "/api/", 5)) return D_OLLAMA;
    return D_OPENAI;
}

static json_t *details_json(const al_server *s) {
    /* Ollama writes parameter_size as e.g. "596.05M" or "1.2B" */
    char size[32];
    double n = (double)al_model_n_params(s->m);
    if (n >= 1e9) snprintf(size, sizeof size, "%.1fB", n / 1e9);
    else snprintf(size, sizeof size, "%.2fM", n / 1e6);
    const char *arch = al_arch_name(al_model_arch(s->m));
    return json_pack("{s:s,s:s,s:s,s:[s],s:s,s:s}", "parent_model", "", "format", "gguf", "family", arch, "families", arch,
                     "parameter_size", size, "quantization_level", al_model_ftype_name(s->m));
}

static json_t *tag_json(const al_server *s, bool ps) {
    char t[64];
    srv_time_rfc3339(t, sizeof t);
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "name", s->name, "model", s->name, "modified_at", t, "size",
                          (json_int_t)al_model_weight_bytes(s->m), "digest", "", "details", details_json(s));
    if (ps) {
        json_object_set_new(o, "expires_at", json_string("2318-01-01T00:00:00Z"));
        json_object_set_new(o, "size_vram", json_integer((json_int_t)al_engine_device_bytes(s->eng)));
        json_object_set_new(o, "context_length", json_integer(al_engine_n_ctx(s->eng)));
    }
    return o;
}

static enum MHD_Result handle_show(al_server *s, conn_ctx *cx, struct MHD_Connection *c) {
    srv_error e;
    json_t *b = srv_parse_body(cx->body.p, cx->body.len, &e);
    if (!b) return reply_error(cx, c, D_OLLAMA, &e);
    char *name = NULL;
    bool ok = srv_get_str(b, "model", &name, &e) && srv_get_str(b, "name", &name, &e);
    json_decref(b);
    if (!ok) {
        free(name);
        return reply_error(cx, c, D_OLLAMA, &e);
    }
    if (!name || !model_ok(s, name)) {
        srv_fail(&e, 404, "not_found_error", "model", "model '%s' not found", name ? name : "");
        free(name);
        return reply_error(cx, c, D_OLLAMA, &e);
    }
    free(name);
    const char *arch = al_arch_name(al_model_arch(s->m));
    char key[96];
    snprintf(key, sizeof key, "%s.context_length", arch);
    json_t *info = json_pack("{s:s,s:i}", "general.architecture", arch, key, al_model_n_ctx_train(s->m));
    snprintf(key, sizeof key, "%s.embedding_length", arch);
    json_object_set_new(info, key, json_integer(al_model_n_embd(s->m)));
    snprintf(key, sizeof key, "%s.block_count", arch);
    json_object_set_new(info, key, json_integer(al_model_n_layer(s->m)));
    const char *tpl = al_tokenizer_chat_template(s->tok);
    char t[64];
    srv_time_rfc3339(t, sizeof t);
    return reply_json(cx, c, 200,
                      json_pack("{s:s,s:s,s:s,s:o,s:o,s:[s,s,s],s:s}", "modelfile", "", "parameters", "", "template",
                                tpl ? tpl : "", "details", details_json(s), "model_info", info, "capabilities",
                                "completion", "tools", "thinking", "modified_at", t));
}

static enum MHD_Result handle_simple(al_server *s, const route *rt, conn_ctx *cx, struct MHD_Connection *c, const char *url) {
    switch (rt->kind) {
    case R_MODELS:
        return reply_json(cx, c, 200,
                          json_pack("{s:s,s:[{s:s,s:s,s:I,s:s}]}", "object", "list", "data", "id", s->name, "object", "model",
                                    "created", (json_int_t)s->started, "owned_by", "alloy"));
    case R_MODEL: {
        const char *id = url + strlen(rt->path);
        if (!model_ok(s, id)) {
            srv_error e;
            srv_fail(&e, 404, "invalid_request_error", "model", "The model '%s' does not exist", id);
            return reply_error(cx, c, D_OPENAI, &e);
        }
        return reply_json(cx, c, 200, json_pack("{s:s,s:s,s:I,s:s}", "id", s->name, "object", "model", "created",
                                                (json_int_t)s->started, "owned_by", "alloy"));
    }
    case R_TAGS: return reply_json(cx, c, 200, json_pack("{s:[o]}", "models", tag_json(s, false)));
    case R_PS: return reply_json(cx, c, 200, json_pack("{s:[o]}", "models", tag_json(s, true)));
    case R_SHOW: return handle_show(s, cx, c);
    case R_VERSION: return reply_json(cx, c, 200, json_pack("{s:s}", "version", AL_VERSION_STRING));
    case R_HEALTH: { /* unhealthy once the backend keeps failing (e.g. a lost GPU): for liveness probes */
        al_engine_stats st = al_engine_get_stats(s->eng);
        if (st.fail_streak < 3) return reply_json(cx, c, 200, json_pack("{s:s}", "status", "ok"));
        char err[256];
        al_engine_last_error(s->eng, err, sizeof err);
        return reply_json(cx, c, 503, json_pack("{s:s,s:s,s:i}", "status", "error", "error", err, "failures", st.fail_streak));
    }
    case R_METRICS: {
        sbuf b = {0};
        al_engine_stats st = al_engine_get_stats(s->eng);
        int in_flight = atomic_load(&s->in_flight);
        srv_metrics_render(s->metrics, &st, in_flight, &b);
        return reply(cx, c, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    }
    case R_ROOT: {
        sbuf b = {0};
        sbuf_adds(&b, "alloy is running");
        return reply(cx, c, 200, "text/plain; charset=utf-8", &b);
    }
    default: return fail(cx, c, D_PLAIN, 500, "api_error", "%s", "unroutable");
    }
}

/* Ollama answers an empty conversation by loading the model: done_reason "load". */
static enum MHD_Result ollama_load_reply(al_server *s, conn_ctx *cx, struct MHD_Connection *c, const srv_request *r) {
    char t[64];
    srv_time_rfc3339(t, sizeof t);
    json_t *o = json_pack("{s:s,s:s,s:b,s:s}", "model", r->model ? r->model : s->name, "created_at", t, "done", 1,
                          "done_reason", "load");
    if (r->api == SRV_OLLAMA_CHAT) json_object_set_new(o, "message", json_pack("{s:s,s:s}", "role", "assistant", "content", ""));
    else json_object_set_new(o, "response", json_string(""));
    return reply_json(cx, c, 200, o);
}

static enum MHD_Result handle_gen(al_server *s, const route *rt, conn_ctx *cx, struct MHD_Connection *c) {
    const srv_api_ops *ops = rt->kind == R_COUNT ? &srv_ops_anthropic_count : srv_api_table[rt->api];
    srv_error e;
    memset(&e, 0, sizeof e);
    srv_request req;
    srv_request_init(&req, rt->api);
    if (!ops->parse(cx->body.p, cx->body.len, &req, &e)) {
        srv_request_free(&req);
        return reply_error(cx, c, rt->d, &e);
    }
    if (rt->d != D_ANTHROPIC && !model_ok(s, req.model)) {
        if (rt->d == D_OLLAMA)
            srv_fail(&e, 404, "not_found_error", "model", "model '%s' not found", req.model);
        else
            srv_fail(&e, 404, "invalid_request_error", "model", "The model '%s' does not exist", req.model);
        srv_request_free(&req);
        return reply_error(cx, c, rt->d, &e);
    }
    if ((rt->api == SRV_OLLAMA_CHAT && json_array_size(req.messages) == 0) ||
        (rt->api == SRV_OLLAMA_GENERATE && req.prompt && !*req.prompt && !(req.system && *req.system))) {
        enum MHD_Result res = ollama_load_reply(s, cx, c, &req);
        srv_request_free(&req);
        return res;
    }
    srv_prompt p;
    if (!srv_build_prompt(s->tpl, s->tok, &req, &p, &e)) {
        srv_prompt_free(&p);
        srv_request_free(&req);
        return reply_error(cx, c, rt->d, &e);
    }
    if (rt->kind == R_COUNT) {
        size_t n = p.n;
        srv_prompt_free(&p);
        srv_request_free(&req);
        return reply_json(cx, c, 200, json_pack("{s:I}", "input_tokens", (json_int_t)n));
    }
    int n_ctx = al_engine_n_ctx(s->eng);
    if (p.n >= (size_t)n_ctx) {
        srv_fail(&e, 400, "invalid_request_error", "messages",
                 "the prompt is %zu tokens long, which does not fit the context of %d tokens (leave room for at least one generated token)",
                 p.n, n_ctx);
        srv_prompt_free(&p);
        srv_request_free(&req);
        return reply_error(cx, c, rt->d, &e);
    }
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        srv_prompt_free(&p);
        srv_request_free(&req);
        return fail(cx, c, rt->d, 500, "api_error", "%s", "out of memory");
    }
    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1;
    j->srv = s;
    j->ops = ops;
    j->req = req;
    j->prompt = p.ids;
    j->n_prompt = p.n;
    p.ids = NULL;
    j->n_prompt_tokens = (int)j->n_prompt;
    j->created = (int64_t)time(NULL);
    j->t_begin = cx->t0;
    j->conn = c;
    j->sock = -1;
    j->block = -1;
    srv_make_id(j->id, sizeof j->id,
                rt->api == SRV_OPENAI_CHAT ? "chatcmpl-" : rt->api == SRV_OPENAI_COMPLETION ? "cmpl-" : rt->api == SRV_ANTHROPIC ? "msg_" : "");
    cx->job = j;

    /* output parsing: chat endpoints always (reasoning, tool calls when offered); Ollama generate
     * for reasoning only when asked for or opened by the prompt; completions never */
    srv_request *rq = &j->req;
    bool chat = rq->messages != NULL;
    bool tools = chat && json_array_size(rq->tools) > 0 && rq->tool_choice.kind != AL_TOOL_CHOICE_NONE;
    bool forced = tools && (rq->tool_choice.kind == AL_TOOL_CHOICE_REQUIRED || rq->tool_choice.kind == AL_TOOL_CHOICE_NAMED);
    j->parse = chat || (rq->api == SRV_OLLAMA_GENERATE && (rq->think == 1 || p.starts_in_think));
    j->popts = al_chat_parse_opts_default(s->fmt);
    j->popts.parse_tools = tools && (forced || !rq->format);
    j->popts.starts_in_think = p.starts_in_think;
    srv_prompt_free(&p);
    al_status cst = al_ok();
    if (j->parse && rq->stream) cst = al_chat_stream_init(&j->cs, &j->popts);
    /* the constraint: a forced tool call, else the response format */
    al_grammar *gram = NULL;
    if (!al_failed(&cst)) {
        if (forced) cst = al_grammar_from_tool_choice(&rq->tool_choice, s->fmt, rq->tools, &gram);
        else gram = rq->format, rq->format = NULL;
    }
    if (!al_failed(&cst) && gram) {
        int budget = rq->max_tokens > 0 ? rq->max_tokens : al_engine_n_ctx(s->eng) - (int)j->n_prompt;
        int reserve = budget / 3 < 16 ? 16 : budget / 3 > 96 ? 96 : budget / 3;
        cst = srv_constraint_new(&j->cons, gram, s->cvocab, s->ranks, rq->think == 1, j->popts.starts_in_think, budget - reserve);
    }
    if (al_failed(&cst)) {
        srv_chat_ok(cst, forced ? "tool_choice" : NULL, &e);
        return reply_error(cx, c, rt->d, &e);
    }

    al_gen_request g;
    memset(&g, 0, sizeof g);
    g.prompt = j->prompt;
    g.n_prompt = j->n_prompt;
    g.sampling = j->req.sp;
    g.max_tokens = j->req.max_tokens;
    g.stop = (const char *const *)j->req.stop;
    g.n_stop = j->req.n_stop;
    g.logprobs = j->req.logprobs;
    g.top_logprobs = j->req.logprobs ? j->req.top_logprobs : 0;
    g.render_special = tools; /* tool-call markers may be control tokens */
    g.on_event = job_on_event;
    g.ud = j;
    if (j->cons) {
        g.constraint = srv_constraint_apply;
        g.constraint_ud = j->cons;
    }
    if (!j->req.stream) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) j->sock = ci->connect_fd;
    }
    if (j->req.stream) j->ops->stream_open(j);

    pthread_mutex_lock(&s->mu);
    al_status st = al_ok();
    int limit = s->p.n_parallel + s->p.max_queue;
    if (s->stopping) st = al_err(AL_ERR_CANCELLED, "the server is shutting down");
    else if (atomic_fetch_add(&s->in_flight, 1) >= limit) {
        atomic_fetch_sub(&s->in_flight, 1);
        st = al_err(AL_ERR_NOMEM, "the server is busy (%d requests generating or queued); retry later", limit);
    } else {
        j->refs++; /* the engine's */
        st = al_engine_submit(s->eng, &g, &j->engine_id);
        if (al_failed(&st)) {
            j->refs--;
            atomic_fetch_sub(&s->in_flight, 1);
        } else {
            j->submitted = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (al_failed(&st)) {
        int status = st.code == AL_ERR_NOMEM || st.code == AL_ERR_CANCELLED ? (rt->d == D_ANTHROPIC ? 529 : 503)
                     : st.code == AL_ERR_RANGE || st.code == AL_ERR_INVALID ? 400 : 500;
        srv_fail(&e, status, status == 400 ? "invalid_request_error" : status == 500 ? "api_error" : "overloaded_error", NULL, "%s",
                 st.msg);
        return reply_error(cx, c, rt->d, &e);
    }
    if (j->req.stream) {
        pthread_mutex_lock(&j->mu);
        j->refs++; /* the response's */
        pthread_mutex_unlock(&j->mu);
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, j, stream_free);
        if (!r) {
            job_unref(j);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", ops->stream_type);
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        cx->status = 200;
        enum MHD_Result res = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return res;
    }
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    if (!done) {
        j->suspended = true;
        MHD_suspend_connection(c);
    }
    pthread_mutex_unlock(&j->mu);
    return MHD_YES; /* answered by finish_job when the engine is done */
}

/* Non-streaming: called again after the engine finished and resumed the connection. */
static enum MHD_Result finish_job(al_server *s, conn_ctx *cx, struct MHD_Connection *c) {
    srv_job *j = cx->job;
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    if (!done) {
        j->suspended = true;
        MHD_suspend_connection(c);
        pthread_mutex_unlock(&j->mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&j->mu);
    (void)s;
    dialect d = j->req.api == SRV_ANTHROPIC ? D_ANTHROPIC : j->req.api >= SRV_OLLAMA_CHAT ? D_OLLAMA : D_OPENAI;
    if (j->client_left) {
        /* nobody to read it; answered so that the connection closes quietly */
        srv_error e;
        srv_fail(&e, 503, "api_error", NULL, "the client closed the connection");
        enum MHD_Result res = reply_error(cx, c, d, &e);
        cx->status = 499;
        return res;
    }
    if (j->finish == AL_FINISH_ERROR || j->finish == AL_FINISH_CANCELLED) {
        srv_error e;
        srv_fail(&e, j->finish == AL_FINISH_ERROR ? 500 : 503, "api_error", NULL, "%s",
                 j->finish == AL_FINISH_ERROR ? j->errmsg : "the generation was cancelled (server shutting down)");
        return reply_error(cx, c, d, &e);
    }
    sbuf b = {0};
    j->ops->full(j, &b);
    return reply(cx, c, b.oom ? 500 : 200, "application/json", &b);
}

static enum MHD_Result too_large(al_server *s, conn_ctx *cx, struct MHD_Connection *c, const char *url) {
    srv_error e;
    srv_fail(&e, 413, "request_too_large", NULL, "the request body is larger than the limit of %zu bytes", s->p.max_body);
    return reply_error(cx, c, dialect_of_url(url), &e);
}

static bool authorized(const al_server *s, struct MHD_Connection *c) {
    if (!s->api_key) return true;
    const char *x = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key");
    if (x && !strcmp(x, s->api_key)) return true;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return a && !strncasecmp(a, "Bearer ", 7) && !strcmp(a + 7, s->api_key);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    al_server *s = cls;
    (void)version;
    conn_ctx *cx = *con_cls;
    if (!cx) {
        cx = calloc(1, sizeof *cx);
        if (!cx) return MHD_NO;
        cx->t0 = al_time_sec();
        cx->endpoint = "other";
        *con_cls = cx;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->p.max_body) {
            cx->too_large = true;
            return too_large(s, cx, c, url);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cx->too_large) {
            if (cx->body.len + *upload_size > s->p.max_body) {
                cx->too_large = true;
                sbuf_free(&cx->body);
            } else {
                sbuf_add(&cx->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cx->job) return finish_job(s, cx, c);
    dialect d = dialect_of_url(url);
    if (cx->too_large) return too_large(s, cx, c, url);
    if (cx->body.oom) return fail(cx, c, d, 500, "api_error", "%s", "out of memory");
    const route *rt = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        const route *r = &routes[i];
        bool match = r->prefix ? !strncmp(url, r->path, strlen(r->path)) && url[strlen(r->path)] : !strcmp(url, r->path);
        if (!match) continue;
        path_known = true;
        if (!strcmp(method, r->method)) {
            rt = r;
            break;
        }
    }
    if (!rt) {
        if (path_known) return fail(cx, c, d, 405, "invalid_request_error", "method %s not allowed here", method);
        return fail(cx, c, d, 404, "not_found_error", "no endpoint %s", url);
    }
    cx->endpoint = rt->path;
    if (rt->kind != R_HEALTH && rt->kind != R_ROOT && rt->kind != R_METRICS && !authorized(s, c))
        return fail(cx, c, rt->d, 401, "authentication_error", "%s", "invalid or missing API key");
    if (rt->kind == R_GEN || rt->kind == R_COUNT) return handle_gen(s, rt, cx, c);
    return handle_simple(s, rt, cx, c, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    al_server *s = cls;
    (void)c;
    conn_ctx *cx = *con_cls;
    if (!cx) return;
    *con_cls = NULL;
    int status = cx->status ? cx->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status == 200) status = 499; /* client went away */
    srv_metrics_request(s->metrics, cx->endpoint, status, al_time_sec() - cx->t0);
    al_log(s->p.log, AL_LOG_INFO, "%s %d %.3fs", cx->endpoint, status, al_time_sec() - cx->t0);
    srv_job *j = cx->job;
    if (j) {
        pthread_mutex_lock(&j->mu);
        bool cancel = !j->done && j->submitted;
        j->conn = NULL;
        j->conn_gone = true;
        j->suspended = false;
        uint64_t id = j->engine_id;
        pthread_mutex_unlock(&j->mu);
        if (cancel) {
            pthread_mutex_lock(&s->mu);
            if (!s->stopping) al_engine_cancel(s->eng, id);
            pthread_mutex_unlock(&s->mu);
        }
        job_unref(j);
    }
    sbuf_free(&cx->body);
    free(cx);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    al_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    al_log(s->p.log, AL_LOG_WARN, "http: %s", msg);
}

/* ---- life cycle ---- */

al_server_params al_server_default_params(void) {
    al_server_params p;
    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = 11434;
    p.n_parallel = 4;
    p.max_queue = 64;
    p.max_body = 8u << 20;
    p.timeout_s = 30;
    p.n_http_threads = 4;
    return p;
}

static char *base_name(const char *path) {
    const char *b = strrchr(path, '/');
    b = b && b[1] ? b + 1 : path;
    char *s = strdup(b);
    if (!s) return NULL;
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/') s[--n] = 0;
    if (n > 5 && !strcmp(s + n - 5, ".gguf")) s[n - 5] = 0;
    return s;
}

void al_server_free(al_server *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    al_engine_free(s->eng); /* answers everything in flight (cancelled) and resumes its connections */
    if (s->d) MHD_stop_daemon(s->d);
    al_template_free(s->tpl);
    al_cvocab_free(s->cvocab);
    free(s->ranks);
    srv_metrics_free(s->metrics);
    free(s->host);
    free(s->api_key);
    free(s->name);
    free(s->base);
    for (char **a = s->aliases; a && *a; a++) free(*a);
    free(s->aliases);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

al_status al_server_start(al_server **out, al_model *m, const al_server_params *params) {
    *out = NULL;
    al_server_params def = al_server_default_params();
    al_server *s = calloc(1, sizeof *s);
    if (!s) {
        if (params && params->backend && params->backend->destroy) params->backend->destroy(params->backend->ctx);
        return al_err(AL_ERR_NOMEM, "serve: out of memory");
    }
    bool backend_taken = false;
    pthread_mutex_init(&s->mu, NULL);
    s->p = params ? *params : def;
    if (!s->p.host) s->p.host = def.host;
    if (s->p.n_parallel <= 0) s->p.n_parallel = def.n_parallel;
    if (s->p.max_queue < 0) s->p.max_queue = def.max_queue;
    if (!s->p.max_body) s->p.max_body = def.max_body;
    if (s->p.timeout_s <= 0) s->p.timeout_s = def.timeout_s;
    if (s->p.n_http_threads <= 0) s->p.n_http_threads = def.n_http_threads;
    s->m = m;
    s->started = (int64_t)time(NULL);
    s->host = strdup(s->p.host);
    s->api_key = s->p.api_key && *s->p.api_key ? strdup(s->p.api_key) : NULL;
    s->base = base_name(al_model_path(m) ? al_model_path(m) : "model");
    s->name = s->p.model_name && *s->p.model_name ? strdup(s->p.model_name) : (s->base ? strdup(s->base) : NULL);
    size_t na = 0;
    for (const char *const *a = s->p.aliases; a && *a; a++) na++;
    s->aliases = calloc(na + 1, sizeof *s->aliases);
    al_status st = (s->host && s->name && s->base && s->aliases && (!s->p.api_key || !*s->p.api_key || s->api_key))
                       ? al_ok()
                       : al_err(AL_ERR_NOMEM, "serve: out of memory");
    for (size_t i = 0; i < na && !al_failed(&st); i++)
        if (!(s->aliases[i] = strdup(s->p.aliases[i]))) st = al_err(AL_ERR_NOMEM, "serve: out of memory");
    s->p.host = s->host;
    s->p.api_key = s->api_key;
    s->p.model_name = s->name;
    s->p.aliases = NULL;
    if (!al_failed(&st)) st = al_model_tokenizer(m, &s->tok);
    if (!al_failed(&st)) st = srv_template_load(s->tok, &s->tpl, &s->fmt);
    if (!al_failed(&st)) st = al_cvocab_from_tokenizer(&s->cvocab, s->tok);
    if (!al_failed(&st) && !(s->ranks = srv_finish_ranks(s->tok))) st = al_err(AL_ERR_NOMEM, "serve: out of memory");
    if (!al_failed(&st)) st = srv_metrics_init(&s->metrics);
    if (!al_failed(&st) && s->p.backend) {
        st = al_engine_init_backend(&s->eng, m, s->p.n_parallel, s->p.n_ctx, s->p.backend);
        backend_taken = true;
    } else if (!al_failed(&st)) {
        st = al_engine_init(&s->eng, m, s->p.n_parallel, s->p.n_ctx);
    }
    struct addrinfo *ai = NULL;
    if (!al_failed(&st)) {
        struct addrinfo hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        char port[16];
        snprintf(port, sizeof port, "%d", s->p.port);
        int rc = getaddrinfo(s->host, port, &hints, &ai);
        if (rc || !ai) st = al_err(AL_ERR_INVALID, "serve: cannot resolve host '%s': %s", s->host, gai_strerror(rc));
    }
    if (!al_failed(&st)) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                                MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->p.n_http_threads, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)s->p.timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
        if (!s->d) st = al_err(AL_ERR_IO, "serve: cannot listen on %s:%d (in use, or not permitted)", s->host, s->p.port);
    }
    if (ai) freeaddrinfo(ai);
    if (!al_failed(&st)) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        s->port = info ? info->port : s->p.port;
    }
    if (al_failed(&st)) {
        if (!backend_taken && s->p.backend && s->p.backend->destroy) s->p.backend->destroy(s->p.backend->ctx);
        al_server_free(s);
        return st;
    }
    s->p.backend = NULL; /* the engine's copy is the one in use */
    *out = s;
    return al_ok();
}

int al_server_port(const al_server *s) { return s->port; }
const char *al_server_model_name(const al_server *s) { return s->name; }
const char *al_server_device(const al_server *s) { return al_engine_device(s->eng); }
