/*
 * alloy/template.h — a Jinja2-subset interpreter for the chat templates shipped in GGUF files
 * (tokenizer.chat_template) and Hugging Face tokenizer_config.json.
 *
 * Contract
 *  - Semantics follow Python jinja2 as configured by transformers' apply_chat_template:
 *    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, the loopcontrols
 *    extension (break/continue), default (non-strict) Undefined, and the globals
 *    raise_exception(msg), strftime_now(fmt), plus a `tojson` filter equal to
 *    json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...).
 *    The goal is byte-identical output for real templates (Llama 3.x, Qwen 2.5/3, Mistral,
 *    Gemma, Phi-3, Nemotron-H, ChatML, ...). Unsupported syntax is a parse error, never a guess.
 *  - Values come from a JSON object (jansson): objects keep insertion order (as Python dicts),
 *    JSON integers are Python ints, JSON reals are Python floats.
 *  - al_template_init parses once; the template is immutable afterwards and may be rendered
 *    concurrently from several threads. Syntax errors report "line L, column C".
 *  - Rendering is bounded: output size, scratch memory, evaluation steps (loop iterations,
 *    calls) and nesting depth are capped (al_template_opts); a hostile template gets an error
 *    (AL_ERR_RANGE / AL_ERR_NOMEM), never a hang or a crash. raise_exception() and jinja2 runtime
 *    errors (undefined attribute access, type errors) give AL_ERR_INVALID with the message.
 *  - Ownership: *out from the render calls is malloc'd, NUL-terminated (out_len excludes the NUL),
 *    and freed by the caller with free(). On failure *out is NULL.
 */
#ifndef ALLOY_TEMPLATE_H
#define ALLOY_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_template al_template;

typedef struct al_template_opts {
    size_t max_output;   /* bytes of rendered text; 0: 16 MiB */
    size_t max_memory;   /* bytes of scratch memory for one render; 0: 256 MiB */
    uint64_t max_steps;  /* evaluation steps (nodes evaluated, loop iterations); 0: 50 million */
    int max_depth;       /* nesting of macro calls / expressions; 0: 256 */
    bool fixed_now;      /* strftime_now uses `now` (UTC) instead of the local clock */
    int64_t now;         /* unix seconds, used when fixed_now */
} al_template_opts;

/* Parses `src` (len bytes, need not be NUL-terminated). */
al_status al_template_init(al_template **out, const char *src, size_t len);
void al_template_free(al_template *t);

/* Renders with `context` (a JSON object; NULL = empty) and default limits. */
al_status al_template_render(const al_template *t, const json_t *context, char **out, size_t *out_len);
/* Same with explicit limits / clock; opts NULL = defaults. */
al_status al_template_render_opts(const al_template *t, const json_t *context,
                                  const al_template_opts *opts, char **out, size_t *out_len);

/* Renders a conversation the way transformers' apply_chat_template does: the context is
 * {messages, tools (None when NULL), documents: None, add_generation_prompt, bos_token, eos_token}
 * plus the keys of `extra` (e.g. enable_thinking), which override. bos/eos NULL = "". */
al_status al_chat_render(const al_template *t, const json_t *messages, const json_t *tools,
                         bool add_generation_prompt, const json_t *extra, const char *bos,
                         const char *eos, const al_template_opts *opts, char **out, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
