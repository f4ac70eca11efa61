/* prompt.c — from an API-neutral srv_request to prompt tokens: chat template rendering (the
 * model's template, ChatML when it has none) with tools and enable_thinking, raw prompts for the
 * completion endpoints, and tokenization. */
#include <stdlib.h>
#include <string.h>

#include "serve/prompt.h"

/* ChatML, used when a model ships no template (tools listed in the system turn). */
static const char chatml_template[] =
    "{%- if tools %}{{ '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}{{ messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{ '# Tools\\n\\nYou may call functions. Signatures:\\n<tools>' }}{%- for tool in tools %}{{ '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{ '\\n</tools>\\nReturn each call as <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- for m in messages %}{%- if m['role'] != 'system' %}"
    "{%- if m['role'] == 'tool' %}{{ '<|im_start|>user\\n<tool_response>\\n' + m['content'] + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] }}"
    "{%- if m['tool_calls'] %}{%- for c in m['tool_calls'] %}{{ '\\n<tool_call>\\n{\"name\": \"' + c['function']['name'] + '\", \"arguments\": ' + (c['function']['arguments'] | tojson) + '}\\n</tool_call>' }}{%- endfor %}{%- endif %}"
    "{{ '<|im_end|>\\n' }}{%- endif %}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";

/* Whether srv_build_prompt passes tools to the model's template (else they go into the system
 * turn in the Hermes layout, see inject_tools). */
static bool template_takes_tools(const char *src) { return src && strstr(src, "tools"); }

al_status srv_template_load(const al_tokenizer *tok, al_template **out, al_chat_format *fmt) {
    const char *src = al_tokenizer_chat_template(tok);
    if (src) {
        al_status st = al_template_init(out, src, strlen(src));
        if (!al_failed(&st)) {
            *fmt = template_takes_tools(src) ? al_chat_detect_format(src) : AL_CHAT_FMT_HERMES;
            return st;
        }
    }
    *fmt = al_chat_detect_format(chatml_template);
    return al_template_init(out, chatml_template, strlen(chatml_template));
}

static const char *tok_text(const al_tokenizer *tok, int32_t id) {
    size_t n;
    return id >= 0 ? al_tokenizer_token_text(tok, id, &n) : NULL;
}

static bool render(const al_template *tpl, const al_tokenizer *tok, json_t *messages, json_t *tools, int think, char **out,
                   size_t *len, srv_error *e) {
    json_t *extra = json_object();
    if (think >= 0) json_object_set_new(extra, "enable_thinking", json_boolean(think));
    al_template_opts opts = {0};
    opts.max_output = 4u << 20;
    al_status st = al_chat_render(tpl, messages, tools, true, extra, tok_text(tok, al_tokenizer_bos(tok)),
                                  tok_text(tok, al_tokenizer_eos(tok)), &opts, out, len);
    json_decref(extra);
    if (al_failed(&st))
        return srv_fail(e, 400, "invalid_request_error", "messages", "the chat template rejected the conversation: %s", st.msg);
    return true;
}

/* For templates that ignore `tools`: the tool signatures and the call format go into the system
 * turn (Hermes style), so the model still sees them. Returns a new messages array. */
static json_t *inject_tools(json_t *messages, json_t *tools) {
    sbuf b = {0};
    json_t *first = json_array_get(messages, 0);
    bool has_sys = json_is_string(json_object_get(first, "role")) && !strcmp(json_string_value(json_object_get(first, "role")), "system");
    if (has_sys) {
        sbuf_adds(&b, json_string_value(json_object_get(first, "content")) ? json_string_value(json_object_get(first, "content")) : "");
        sbuf_adds(&b, "\n\n");
    }
    sbuf_adds(&b, "# Tools\n\nYou may call one or more functions. Function signatures:\n<tools>");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        sbuf_adds(&b, "\n");
        sbuf_add_json(&b, t);
    }
    sbuf_adds(&b, "\n</tools>\n\nFor each call, reply with <tool_call>{\"name\": <name>, \"arguments\": <object>}</tool_call>.");
    json_t *res = json_array();
    json_array_append_new(res, json_pack("{s:s,s:s}", "role", "system", "content", b.p ? b.p : ""));
    sbuf_free(&b);
    json_array_foreach(messages, i, t) if (i > 0 || !has_sys) json_array_append(res, t);
    return res;
}

bool srv_build_prompt(const al_template *tpl, const al_tokenizer *tok, const srv_request *r, srv_prompt *p, srv_error *e) {
    memset(p, 0, sizeof *p);
    if (r->prompt_ids) {
        int32_t nv = al_tokenizer_vocab_size(tok);
        for (size_t i = 0; i < r->n_prompt_ids; i++)
            if (r->prompt_ids[i] >= nv)
                return srv_fail(e, 400, "invalid_request_error", "prompt", "token id %d is outside the vocabulary (%d)",
                                r->prompt_ids[i], nv);
        p->ids = malloc(sizeof(int32_t) * (r->n_prompt_ids ? r->n_prompt_ids : 1));
        if (!p->ids) return srv_fail(e, 500, "api_error", NULL, "out of memory");
        memcpy(p->ids, r->prompt_ids, sizeof(int32_t) * r->n_prompt_ids);
        p->n = r->n_prompt_ids;
        return true;
    }
    char *text = NULL;
    size_t len = 0;
    bool templated = false;
    if (r->messages) {
        json_t *tools = r->tool_choice.kind == AL_TOOL_CHOICE_NONE ? NULL : r->tools;
        const char *src = al_tokenizer_chat_template(tok);
        json_t *msgs = json_incref(r->messages);
        if (tools && json_array_size(tools) && src && !template_takes_tools(src)) {
            json_decref(msgs);
            msgs = inject_tools(r->messages, tools);
            tools = NULL;
        }
        bool ok = render(tpl, tok, msgs, tools, r->think, &text, &len, e);
        json_decref(msgs);
        if (!ok) return false;
        templated = true;
    } else if (r->api == SRV_OLLAMA_GENERATE && !r->raw) {
        json_t *msgs = json_array();
        if (r->system && *r->system) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", r->system));
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", r->prompt ? r->prompt : ""));
        bool ok = render(tpl, tok, msgs, NULL, r->think, &text, &len, e);
        json_decref(msgs);
        if (!ok) return false;
        templated = true;
    } else {
        text = strdup(r->prompt ? r->prompt : "");
        if (!text) return srv_fail(e, 500, "api_error", NULL, "out of memory");
        len = strlen(text);
    }
    /* a template that writes the BOS text itself must not get a second one */
    bool add_special = true;
    const char *bos = tok_text(tok, al_tokenizer_bos(tok));
    if (templated && bos && *bos && !strncmp(text, bos, strlen(bos))) add_special = false;
    /* a generation prompt ending in <think> opens the reasoning channel */
    p->starts_in_think = templated && al_chat_prompt_opens_think(text, len);
    al_status st = al_tokenizer_encode(tok, text, len, add_special, templated, &p->ids, &p->n);
    p->text = text;
    if (al_failed(&st)) return srv_fail(e, 400, "invalid_request_error", NULL, "tokenizing the prompt: %s", st.msg);
    if (p->n == 0) {
        /* the engine needs one token to start from */
        int32_t b = al_tokenizer_bos(tok);
        if (b < 0) return srv_fail(e, 400, "invalid_request_error", "prompt", "the prompt is empty");
        free(p->ids);
        p->ids = malloc(sizeof(int32_t));
        if (!p->ids) return srv_fail(e, 500, "api_error", NULL, "out of memory");
        p->ids[0] = b;
        p->n = 1;
    }
    return true;
}

void srv_prompt_free(srv_prompt *p) {
    free(p->ids);
    free(p->text);
    memset(p, 0, sizeof *p);
}
