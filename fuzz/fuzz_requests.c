/* fuzz_requests.c — the request parsers of `alloy serve` (OpenAI chat/completions, Anthropic
 * messages/count_tokens, Ollama chat/generate: JSON body -> srv_request) on arbitrary bytes.
 * (The output-side parsers are fuzzed by fuzz_chat.c.)
 * Input: first byte selects the parser, the rest is the body. Must never crash or leak; a parse
 * either succeeds or reports an HTTP 4xx/5xx status with a message. */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const srv_api_ops *const ops[] = {&srv_ops_openai_chat, &srv_ops_openai_completion, &srv_ops_anthropic,
                                             &srv_ops_anthropic_count, &srv_ops_ollama_chat, &srv_ops_ollama_generate};
    static const srv_api apis[] = {SRV_OPENAI_CHAT, SRV_OPENAI_COMPLETION, SRV_ANTHROPIC, SRV_ANTHROPIC, SRV_OLLAMA_CHAT,
                                   SRV_OLLAMA_GENERATE};
    size_t k = data[0] % (sizeof ops / sizeof *ops);
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    srv_request r;
    srv_error e;
    memset(&e, 0, sizeof e);
    srv_request_init(&r, apis[k]);
    bool ok = ops[k]->parse(body, len, &r, &e);
    if (!ok && (e.status < 400 || e.status > 599 || !e.msg[0])) __builtin_trap();
    if (ok && r.n_stop > SRV_MAX_STOP) __builtin_trap();
    if (ok && r.messages && !json_is_array(r.messages)) __builtin_trap();
    srv_request_free(&r);
    /* error bodies of every dialect */
    if (!ok) {
        sbuf b = {0};
        srv_error_openai(&e, &b);
        srv_error_anthropic(&e, &b);
        srv_error_ollama(&e, &b);
        sbuf_free(&b);
    }
    return 0;
}
