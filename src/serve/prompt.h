/* prompt.h — building prompt tokens for a request (see prompt.c). */
#ifndef ALLOY_SERVE_PROMPT_H
#define ALLOY_SERVE_PROMPT_H

#include "serve/serve_internal.h"

typedef struct srv_prompt {
    int32_t *ids; /* malloc'd */
    size_t n;
    char *text;   /* the rendered text (NULL for token-id prompts) */
    bool starts_in_think;
} srv_prompt;

/* The model's chat template, or a ChatML template with tool support when it has none/unparsable.
 * *fmt: the tool-call layout the model is asked for (detected from the template; Hermes when the
 * tools are described in the system turn or the ChatML fallback is used). */
al_status srv_template_load(const al_tokenizer *tok, al_template **out, al_chat_format *fmt);
bool srv_build_prompt(const al_template *tpl, const al_tokenizer *tok, const srv_request *r, srv_prompt *p, srv_error *e);
void srv_prompt_free(srv_prompt *p);

#endif
