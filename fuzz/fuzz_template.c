/* fuzz_template.c — parse + render arbitrary template text with a small fixed chat context.
 * Must never crash, hang or leak: rendering runs under tight limits (steps, output, memory, depth)
 * so every input finishes quickly; errors are expected and ignored. */
#include <stdint.h>
#include <stdlib.h>

#include "alloy/template.h"

static const char *const k_context =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"},"
    " {\"role\": \"user\", \"content\": \"Hi <tool_response>\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>r</think>ok\", \"tool_calls\": [{\"id\": \"abcdefghi\","
    "  \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": 1.5, \"b\": [true, null]}}}]},"
    " {\"role\": \"tool\", \"content\": \"42\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"enable_thinking\": false}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *ctx;
    if (!ctx) ctx = json_loads(k_context, 0, NULL);
    if (size > 1 << 16) return 0;
    al_template *t = NULL;
    al_status st = al_template_init(&t, (const char *)data, size);
    if (st.code != AL_OK) return 0;
    al_template_opts o = {.max_output = 1 << 16, .max_memory = 8 << 20, .max_steps = 200000, .max_depth = 64,
                          .fixed_now = true, .now = 1727308800};
    char *out = NULL;
    size_t n = 0;
    (void)al_template_render_opts(t, ctx, &o, &out, &n);
    free(out);
    al_template_free(t);
    return 0;
}
