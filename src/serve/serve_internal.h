/*
 * serve_internal.h — pieces of `alloy serve` shared by the HTTP layer and the three API dialects.
 *
 * Flow of one generation request:
 *   body --srv_api_ops.parse--> srv_request (API-neutral: HF chat messages and tools converted by
 *        alloy/chat.h, tool_choice, an output grammar, sampling, limits)
 *        --srv_build_prompt--> prompt tokens (chat template, tools in HF form)
 *        --al_engine_submit--> engine events (token filter: srv_constraint over al_constraint)
 *        --job_on_event--> streaming: al_chat_stream events (content / reasoning / tool calls)
 *        framed per API into job->out; otherwise the text is parsed once at the end
 *        (al_chat_parse) and answered as one JSON body (srv_api_ops.full).
 * A srv_job is shared by the engine (until AL_EV_DONE) and the HTTP connection (until the
 * request completes); it is reference counted and all its fields are guarded by job->mu.
 */
#ifndef ALLOY_SERVE_INTERNAL_H
#define ALLOY_SERVE_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>

#include "alloy/chat.h"
#include "alloy/engine.h"
#include "alloy/serve.h"
#include "alloy/template.h"
#include "alloy/tokenizer.h"

/* ---- growable byte buffer ------------------------------------------------------------------ */

typedef struct sbuf {
    char *p; /* NUL-terminated when non-NULL */
    size_t len, cap;
    bool oom;
} sbuf;

void sbuf_add(sbuf *b, const char *s, size_t n);
void sbuf_adds(sbuf *b, const char *s);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the compact JSON text of j (j is not consumed). */
void sbuf_add_json(sbuf *b, const json_t *j);
/* Appends j compactly and decrefs it (convenience for freshly built objects). */
void sbuf_add_json_steal(sbuf *b, json_t *j);
void sbuf_free(sbuf *b);

/* ---- requests ------------------------------------------------------------------------------ */

typedef enum srv_api {
    SRV_OPENAI_CHAT = 0,
    SRV_OPENAI_COMPLETION,
    SRV_ANTHROPIC,
    SRV_OLLAMA_CHAT,
    SRV_OLLAMA_GENERATE,
    SRV_API_COUNT
} srv_api;


#define SRV_MAX_STOP 16

typedef struct srv_request {
    srv_api api;
    char *model;              /* as given, may be NULL */
    bool stream, include_usage;
    /* chat APIs: messages in Hugging Face chat-template form ({role, content, tool_calls
     * [{type, function{name, arguments(object)}}], tool_call_id, name, reasoning_content}) */
    json_t *messages;
    json_t *tools;            /* [{type:"function", function:{name, description, parameters}}] or NULL */
    al_tool_choice tool_choice;
    bool parallel_tool_calls;
    /* completion APIs */
    char *prompt;
    int32_t *prompt_ids;      /* OpenAI completions given token ids */
    size_t n_prompt_ids;
    char *system;             /* Ollama generate: system prompt */
    char *suffix;
    bool raw;                 /* Ollama generate: no template */
    bool echo;                /* OpenAI completions */
    /* sampling and limits */
    al_sampler_params sp;
    int max_tokens;           /* <= 0: until the context is full */
    char *stop[SRV_MAX_STOP];
    int n_stop;
    bool logprobs;
    int top_logprobs;
    al_grammar *format;       /* response_format / Ollama format: the output's grammar, or NULL */
    int think;                /* -1 unset, 0 off, 1 on */
    int think_budget;         /* Anthropic thinking.budget_tokens */
    bool count_only;          /* Anthropic count_tokens */
} srv_request;

typedef struct srv_error {
    int status;               /* HTTP status */
    const char *type;         /* API error type, e.g. "invalid_request_error" */
    char msg[256];
    char param[64];
} srv_error;

/* Records an error and returns false. */
bool srv_fail(srv_error *e, int status, const char *type, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

void srv_request_init(srv_request *r, srv_api api);
void srv_request_free(srv_request *r);

/* Typed field access for the parsers. Absent or null fields leave *out untouched and succeed;
 * present fields of the wrong type fail with 400 naming the field. */
bool srv_get_str(json_t *o, const char *key, char **out, srv_error *e);
bool srv_get_bool(json_t *o, const char *key, bool *out, srv_error *e);
bool srv_get_int(json_t *o, const char *key, int *out, int lo, int hi, srv_error *e);
bool srv_get_float(json_t *o, const char *key, float *out, float lo, float hi, srv_error *e);
bool srv_get_u64(json_t *o, const char *key, uint64_t *out, bool *set, srv_error *e);
/* "stop": a string or an array of strings. */
bool srv_get_stop(json_t *o, const char *key, srv_request *r, srv_error *e);
/* Parses the body as a JSON object (400 when it is not). */
json_t *srv_parse_body(const char *body, size_t len, srv_error *e);
/* A failed al_status of the chat library -> 400 naming `param`; true when st is ok. */
bool srv_chat_ok(al_status st, const char *param, srv_error *e);

/* ---- jobs ---------------------------------------------------------------------------------- */

typedef struct srv_logprob {
    int32_t token;
    float logprob;
    int n_top;
    int32_t top_ids[AL_MAX_TOP_LOGPROBS];
    float top_logprobs[AL_MAX_TOP_LOGPROBS];
} srv_logprob;

typedef enum srv_channel { SRV_CH_CONTENT = 0, SRV_CH_REASONING, SRV_CH_TOOL } srv_channel;

typedef struct srv_constraint srv_constraint;

struct al_server;
struct srv_api_ops;
struct MHD_Connection;

typedef struct srv_job {
    pthread_mutex_t mu;
    int refs;
    struct al_server *srv;
    const struct srv_api_ops *ops;
    srv_request req;
    char id[48];
    int64_t created; /* unix seconds */
    double t_begin;  /* monotonic, request received */
    /* prompt */
    int32_t *prompt;
    size_t n_prompt;
    /* connection (NULL once it is gone) */
    struct MHD_Connection *conn;
    bool suspended, conn_gone;
    int sock;            /* the client's socket, watched for a hang-up while a non-streaming answer waits; -1 */
    bool client_left;    /* cancelled because the client hung up */
    uint64_t engine_id;
    bool submitted;
    /* streaming output not yet sent */
    sbuf out;
    size_t out_pos;
    /* output: `text` is everything generated. Chat parsing (`parse`) splits it into content,
     * reasoning and tool calls, incrementally (`cs`, streaming) or once at the end; without it
     * the text is the content as is. `msg` is the result once done. */
    sbuf text;
    bool parse;
    al_chat_parse_opts popts;
    al_chat_stream *cs;
    al_chat_msg msg;
    char *tool_name;  /* streaming: the name of the open tool call */
    srv_logprob *lp;
    size_t n_lp, cap_lp, lp_sent;
    bool done;
    al_finish finish;
    char *stop_string;
    char errmsg[256];
    int n_prompt_tokens, n_gen, n_cached;
    double t_queue, t_prompt, t_gen;
    /* per-API streaming state */
    bool started;
    int block;      /* Anthropic: index of the open block, -1 none */
    int block_kind; /* Anthropic: srv_channel of the open block */
    srv_constraint *cons; /* the token filter, or NULL */
} srv_job;

typedef struct srv_api_ops {
    const char *name;         /* endpoint label for metrics, e.g. "/v1/chat/completions" */
    bool (*parse)(const char *body, size_t len, srv_request *r, srv_error *e);
    void (*error_body)(const srv_error *e, sbuf *out);
    const char *stream_type;  /* Content-Type of streamed responses */
    void (*stream_open)(srv_job *j);
    void (*stream_delta)(srv_job *j, srv_channel ch, const char *text, size_t len);
    /* TOOL_START / TOOL_ARGS / TOOL_END events of the streaming parser; NULL: no tools */
    void (*stream_tool)(srv_job *j, const al_chat_event *ev);
    void (*stream_close)(srv_job *j);
    void (*full)(srv_job *j, sbuf *out);
} srv_api_ops;

extern const srv_api_ops srv_ops_openai_chat, srv_ops_openai_completion, srv_ops_anthropic,
    srv_ops_ollama_chat, srv_ops_ollama_generate, srv_ops_anthropic_count;
/* Indexed by srv_api. */
extern const srv_api_ops *const srv_api_table[SRV_API_COUNT];

/* Error bodies of each dialect (also used outside generation: auth, 404, 413). */
void srv_error_openai(const srv_error *e, sbuf *out);
void srv_error_anthropic(const srv_error *e, sbuf *out);
void srv_error_ollama(const srv_error *e, sbuf *out);

/* Arguments of a parsed call as JSON text: what the model wrote when that is a JSON object (so it
 * equals the streamed argument deltas), else the object al_chat gives ({} at worst). malloc'd. */
char *srv_call_args(const al_tool_call *c);

/* ---- constrained decoding ----------------------------------------------------------------- */

/* Per-token preference when the output must be wrapped up (see constrain.c); n_vocab bytes. */
uint8_t *srv_finish_ranks(const al_tokenizer *tok);
/* A token filter for one request: `g` (taken, freed with the constraint) over the vocabulary `v`.
 * think: a leading <think> block is left free; think_open: the prompt already opened it.
 * From step `finish_from` on, the allowed tokens are narrowed to those that close the value
 * soonest (ranks), so the output completes before max_tokens. */
al_status srv_constraint_new(srv_constraint **out, al_grammar *g, const al_cvocab *v, const uint8_t *ranks, bool think,
                             bool think_open, int finish_from);
void srv_constraint_free(srv_constraint *c);
bool srv_constraint_apply(void *ud, const char *text, size_t len, uint8_t *allowed, int n_vocab);

/* Random id "<prefix><24 hex>". */
void srv_make_id(char *buf, size_t size, const char *prefix);
/* RFC 3339 time with nanoseconds and zone, as Ollama writes it. */
void srv_time_rfc3339(char *buf, size_t size);

/* Served model name and accepted aliases. */
const char *srv_model_name(const struct al_server *s);
const al_tokenizer *srv_tokenizer(const struct al_server *s);

/* ---- metrics ------------------------------------------------------------------------------- */

typedef struct srv_metrics srv_metrics;
al_status srv_metrics_init(srv_metrics **out);
void srv_metrics_free(srv_metrics *m);
/* One finished HTTP request: endpoint label (from a fixed set), status, seconds. */
void srv_metrics_request(srv_metrics *m, const char *endpoint, int status, double seconds);
void srv_metrics_tokens(srv_metrics *m, int n_prompt, int n_gen, double ttft, double seconds);
void srv_metrics_render(srv_metrics *m, const al_engine_stats *st, int in_flight, sbuf *out);

#endif
