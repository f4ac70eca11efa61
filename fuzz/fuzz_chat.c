/* fuzz_chat.c — the chat output parser (every format, one-shot and streamed with splits taken
 * from the input), the grammar recognizer and the request conversions over arbitrary bytes.
 * Input: byte 0 picks the format and flags, byte 1 seeds the split sizes, the rest is the text.
 * Properties: no crash / leak / UB; streaming gives the same message as one-shot parsing. */
#include <stdlib.h>
#include <string.h>

#include "alloy/chat.h"

static bool same(const al_chat_msg *a, const al_chat_msg *b) {
    if (a->content_len != b->content_len || memcmp(a->content, b->content, a->content_len)) return false;
    if (a->reasoning_len != b->reasoning_len || memcmp(a->reasoning, b->reasoning, a->reasoning_len)) return false;
    if (a->n_calls != b->n_calls) return false;
    for (size_t i = 0; i < a->n_calls; i++)
        if (strcmp(a->calls[i].name, b->calls[i].name) || !json_equal(a->calls[i].arguments, b->calls[i].arguments)) return false;
    return true;
}

static void on_event(void *ud, const al_chat_event *ev) {
    size_t *n = ud;
    *n += ev->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    al_chat_parse_opts o = al_chat_parse_opts_default((al_chat_format)(data[0] % AL_CHAT_FMT_COUNT));
    o.starts_in_think = data[0] & 0x40;
    o.parse_reasoning = !(data[0] & 0x20);
    o.parse_tools = !(data[0] & 0x10);
    o.id_seed = 1;
    unsigned split = data[1];
    const char *text = (const char *)data + 2;
    size_t len = size - 2;

    al_chat_msg one, two;
    if (al_chat_parse(text, len, &o, &one).code != AL_OK) return 0;
    al_chat_stream *s;
    if (al_chat_stream_init(&s, &o).code == AL_OK) {
        size_t events = 0;
        for (size_t pos = 0; pos < len;) {
            size_t k = 1 + (split + pos * 7) % 9;
            if (k > len - pos) k = len - pos;
            al_chat_stream_feed(s, text + pos, k, on_event, &events);
            pos += k;
        }
        if (al_chat_stream_finish(s, on_event, &events, &two).code == AL_OK) {
            if (!same(&one, &two)) abort();
            json_t *j = al_chat_msg_to_openai(&two);
            json_decref(j);
            al_chat_msg_free(&two);
        }
        al_chat_stream_free(s);
    }
    al_chat_msg_free(&one);

    /* recognizer: any JSON value; and the text as a schema when it parses as one */
    al_grammar *g;
    if (al_grammar_json_schema(&g, json_true()).code == AL_OK) {
        bool complete;
        bool ok = al_grammar_accepts(g, text, len, &complete) && complete;
        json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
        (void)ok;
        if (j) {
            al_grammar *sg;
            if (al_grammar_json_schema(&sg, j).code == AL_OK) {
                al_grammar_accepts(sg, "{\"a\": [1, \"x\", null]}", 21, NULL);
                al_grammar_free(sg);
            }
            if (al_grammar_tool_call(&sg, o.format, j, NULL).code == AL_OK) al_grammar_free(sg);
            json_t *out = NULL;
            if (al_chat_messages_from_openai(j, &out).code == AL_OK) json_decref(out);
            if (al_chat_messages_from_anthropic(NULL, j, &out).code == AL_OK) json_decref(out);
            if (al_chat_messages_from_ollama(j, &out).code == AL_OK) json_decref(out);
            if (al_chat_tools_from_openai(j, &out).code == AL_OK) json_decref(out);
            if (al_chat_tools_from_anthropic(j, &out).code == AL_OK) json_decref(out);
            if (al_grammar_from_response_format(j, &sg).code == AL_OK) al_grammar_free(sg);
            json_decref(j);
        }
        al_grammar_free(g);
    }
    return 0;
}
