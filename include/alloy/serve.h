/*
 * alloy/serve.h — an HTTP server speaking the OpenAI, Anthropic and Ollama APIs over one model.
 *
 * Contract
 *  - al_server_start binds host:port (port 0: an ephemeral port, see al_server_port), starts an
 *    al_engine with n_parallel slots over `m` and an HTTP daemon (libmicrohttpd, internal epoll
 *    thread pool) and returns at once; requests are served from the daemon's threads until
 *    al_server_free, which cancels what is generating, answers it, and stops everything. The
 *    model must outlive the server; the server never frees it.
 *  - Endpoints: OpenAI  POST /v1/chat/completions, /v1/completions, GET /v1/models[/{id}];
 *               Anthropic POST /v1/messages, /v1/messages/count_tokens;
 *               Ollama  POST /api/chat, /api/generate, /api/show, GET /api/tags, /api/ps, /api/version;
 *               GET /health, GET /metrics (Prometheus text format 0.0.4).
 *    Errors use each API's own error shape and status codes.
 *  - Model names: OpenAI and Ollama requests must name the served model (its name, the name
 *    without ":latest", the file's basename with or without ".gguf", or an entry of `aliases`);
 *    an absent/empty name means the served model; anything else is 404 in the API's shape.
 *    Anthropic requests may name any model (as proxies to Claude clients expect).
 *  - Limits: bodies over max_body get 413; more than n_parallel + max_queue generations in flight
 *    get 503 (OpenAI, Ollama) / 529 overloaded_error (Anthropic); a prompt that does not fit the
 *    slot context is 400; a connection idle for timeout_s (e.g. a half-sent request) is closed.
 *  - Chat output goes through alloy/chat.h: the tool-call layout is detected from the chat template
 *    (Hermes when the model has none, or its template ignores tools and they are described in the
 *    system turn); tool calls are returned in each API's shape (OpenAI tool_calls, Anthropic
 *    tool_use blocks, Ollama tool_calls with object arguments) and streamed as they are written;
 *    <think> reasoning becomes reasoning_content / thinking blocks / thinking.
 *  - Constraints: OpenAI response_format json_object / json_schema and Ollama format "json" / a
 *    schema restrict decoding to the grammar; tool_choice "required" / a named tool (Anthropic
 *    "any" / "tool"; accepted on Ollama's /api/chat as an extension) forces exactly one call of a
 *    tool whose arguments match its parameters schema; "none" offers no tools. Near max_tokens a
 *    constrained value is wrapped up so that it completes.
 *  - A client that disconnects cancels its generation (streaming: on the next write; otherwise
 *    its socket is checked for a hang-up at every generated token).
 *  - Strings in the params are copied; the params struct may be freed after the call.
 */
#ifndef ALLOY_SERVE_H
#define ALLOY_SERVE_H

#include "alloy/core.h"
#include "alloy/engine.h"
#include "alloy/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_server al_server;

typedef struct al_server_params {
    const char *host;         /* bind address, "127.0.0.1" when NULL */
    int port;                 /* 0: ephemeral */
    int n_parallel;           /* engine slots (concurrent generations); <= 0: 4 */
    int n_ctx;                /* tokens per slot; <= 0: the model's default */
    int n_http_threads;       /* HTTP thread pool; <= 0: 4 */
    int max_queue;            /* generations waiting for a slot before 503; < 0: 64 */
    size_t max_body;          /* request body bytes; 0: 8 MiB */
    int timeout_s;            /* idle connection timeout in seconds; <= 0: 30 */
    const char *api_key;      /* NULL or "": no authentication */
    const char *model_name;   /* served name; NULL: the file's basename without ".gguf" */
    const char *const *aliases; /* extra accepted names, NULL-terminated list; may be NULL */
    const al_logger *log;     /* request log (info) and errors; may be NULL */
    const al_engine_backend *backend; /* where the slots run; NULL: the CPU. Its ctx is owned by the
                                         server from al_server_start on, whatever that returns */
} al_server_params;

al_server_params al_server_default_params(void);
al_status al_server_start(al_server **out, al_model *m, const al_server_params *p);
int al_server_port(const al_server *s);
const char *al_server_model_name(const al_server *s);
const char *al_server_device(const al_server *s); /* where the slots run: "cpu" or the GPU's description */
void al_server_free(al_server *s);

/* Resolves a model reference to a loadable path (GGUF file or HF folder):
 *  - an existing file or directory is returned as is;
 *  - otherwise `name` is read as an Ollama reference ([host/][namespace/]model[:tag], tag
 *    "latest" and namespace "library" and host "registry.ollama.ai" by default) and looked up
 *    in ollama_dir (NULL: $OLLAMA_MODELS, else ~/.ollama/models): manifests/<host>/<ns>/<model>/<tag>
 *    names the blob of layer "application/vnd.ollama.image.model", blobs/sha256-<hex>.
 * AL_ERR_NOT_FOUND when nothing matches. */
al_status al_serve_resolve_model(const char *name, const char *ollama_dir, char *path, size_t size);

#ifdef __cplusplus
}
#endif
#endif
