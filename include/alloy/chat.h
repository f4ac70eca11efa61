/*
 * alloy/chat.h — the model-output side of chat serving: tool-call formats, reasoning split,
 * request message conversion (OpenAI / Anthropic / Ollama -> the Hugging Face message list that
 * chat templates expect) and constrained decoding of JSON / JSON-Schema / tool calls.
 *
 * Contract
 *  - Formats. A model family writes tool calls in one of the al_chat_format layouts; the layout is
 *    detected from the chat template text (al_chat_detect_format). Parsing accepts, for every
 *    format, the layout of that family (see the enum) and `<think>...</think>` reasoning.
 *  - Parsing. al_chat_stream is an incremental parser: feed it the generated text in pieces of any
 *    size (splits may fall inside tags or UTF-8 characters); it calls back with content /
 *    reasoning deltas as soon as they cannot belong to a tag, holds back text that may still start
 *    one, and reports tool calls as START (id + name) / ARGS (argument-JSON text deltas) / END.
 *    Deltas are valid UTF-8 whenever the input is (an incomplete trailing character is held).
 *    Decisions never depend on where the text was split: the final message equals what
 *    al_chat_parse (one call) gives for the concatenated text. Content and reasoning are trimmed
 *    of leading and trailing whitespace (trailing whitespace is held until more text arrives).
 *  - Tool calls carry a generated id ("call_" + 24 alphanumerics; 9 alphanumerics for the Mistral
 *    formats, which their templates require) and arguments as a JSON object (`{}` when the model
 *    wrote something that is not a JSON object; `arguments_text` keeps what it wrote).
 *  - Ownership: every char* / json_t* in an al_chat_msg belongs to it and is released by
 *    al_chat_msg_free. Conversions return new references (json_decref them). Strings handed to
 *    callbacks are valid only during the call.
 *  - Constrained decoding. An al_grammar (immutable, shareable) describes the allowed output:
 *    optional literal prefix + a JSON value (any JSON object, or a JSON-Schema subset) + optional
 *    literal suffix, possibly several alternatives. An al_cvocab (immutable, shareable) holds the
 *    token pieces of a vocabulary, sorted into a trie, computed once. An al_constraint (one per
 *    request, not thread-safe) caches the recognizer state for the text generated so far and marks
 *    the tokens that keep it a valid prefix; end-of-generation tokens are allowed exactly when the
 *    value (and suffix) is complete. Keys with known names, enum and const values must be written
 *    in their compact JSON spelling (no escapes that change the bytes); whitespace runs are capped.
 *  - No globals with mutable state; nothing prints.
 */
#ifndef ALLOY_CHAT_H
#define ALLOY_CHAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_tokenizer al_tokenizer;

/* ---- formats ------------------------------------------------------------------------------ */

typedef enum al_chat_format {
    AL_CHAT_FMT_GENERIC = 0, /* <tool_call>{..}</tool_call>, or a JSON object {"name", "arguments"}
                                anywhere in the output (optionally in a ```json fence) */
    AL_CHAT_FMT_HERMES,      /* Hermes 2 Pro / Qwen2.5 / Qwen3: <tool_call>{"name", "arguments"}</tool_call> */
    AL_CHAT_FMT_LLAMA3,      /* Llama 3.1/3.2/3.3: [<|python_tag|>]{"name", "parameters"} at the start */
    AL_CHAT_FMT_MISTRAL,     /* Mistral v3 (Nemo, Small): [TOOL_CALLS][{"name", "arguments"}, ...] */
    AL_CHAT_FMT_MISTRAL_V11, /* Mistral v11+ (Small 3.2, Magistral): [TOOL_CALLS]name[ARGS]{...} */
    AL_CHAT_FMT_NEMOTRON,    /* Nemotron (Nano v2 / H): <TOOLCALL>[{"name", "arguments"}]</TOOLCALL> */
    AL_CHAT_FMT_COUNT
} al_chat_format;

const char *al_chat_format_name(al_chat_format f); /* "generic", "hermes", ... */
/* From the chat template text (NULL: generic). Looks for each family's tool-call markers. */
al_chat_format al_chat_detect_format(const char *chat_template);
/* True when the rendered prompt leaves a <think> block open (the template started the reasoning,
 * as DeepSeek-R1 and some Qwen3 / Nemotron templates do): the output then starts inside it. */
bool al_chat_prompt_opens_think(const char *prompt, size_t len);

/* ---- parsed output ------------------------------------------------------------------------ */

typedef struct al_tool_call {
    char *id;
    char *name;
    json_t *arguments;    /* a JSON object */
    char *arguments_text; /* the arguments JSON text as streamed in ARGS deltas */
} al_tool_call;

typedef struct al_chat_msg {
    char *content;   /* never NULL after a parse ("" when none) */
    size_t content_len;
    char *reasoning; /* never NULL after a parse */
    size_t reasoning_len;
    al_tool_call *calls;
    size_t n_calls;
} al_chat_msg;

void al_chat_msg_free(al_chat_msg *m); /* releases the members and zeroes *m; NULL ok */

typedef struct al_chat_parse_opts {
    al_chat_format format;
    bool parse_tools;     /* false: tool-call markup stays content (no tools in the request) */
    bool parse_reasoning; /* false: <think> stays content */
    bool starts_in_think; /* the prompt opened <think>: output starts as reasoning */
    uint64_t id_seed;     /* seed for call ids; 0: derived from the clock */
} al_chat_parse_opts;

/* Defaults: GENERIC, parse_tools and parse_reasoning on. */
al_chat_parse_opts al_chat_parse_opts_default(al_chat_format f);

/* One-shot parse of a complete assistant output. */
al_status al_chat_parse(const char *text, size_t len, const al_chat_parse_opts *opts, al_chat_msg *out);

/* {"role":"assistant","content":..|null,"reasoning_content":..(when any),
 *  "tool_calls":[{"id","type":"function","function":{"name","arguments":<JSON text>}}](when any)} */
json_t *al_chat_msg_to_openai(const al_chat_msg *m);

/* ---- streaming ---------------------------------------------------------------------------- */

typedef enum al_chat_event_kind {
    AL_CHAT_EV_CONTENT = 1, /* text: content delta */
    AL_CHAT_EV_REASONING,   /* text: reasoning delta */
    AL_CHAT_EV_TOOL_START,  /* index, id, name */
    AL_CHAT_EV_TOOL_ARGS,   /* index, text: next piece of the arguments JSON text */
    AL_CHAT_EV_TOOL_END,    /* index, text: the arguments as compact JSON (what al_chat_msg holds) */
} al_chat_event_kind;

typedef struct al_chat_event {
    al_chat_event_kind kind;
    int index;        /* tool-call index (0-based) for TOOL_* events */
    const char *id;   /* TOOL_START */
    const char *name; /* TOOL_START */
    const char *text;
    size_t len;
} al_chat_event;

typedef void (*al_chat_event_fn)(void *ud, const al_chat_event *ev);

typedef struct al_chat_stream al_chat_stream;

al_status al_chat_stream_init(al_chat_stream **out, const al_chat_parse_opts *opts);
void al_chat_stream_free(al_chat_stream *s);
/* fn may be NULL (only the final message is wanted). */
al_status al_chat_stream_feed(al_chat_stream *s, const char *text, size_t len, al_chat_event_fn fn, void *ud);
/* End of output: flushes held text and ends an open tool call; moves the accumulated message into
 * *out (the stream can then only be freed). */
al_status al_chat_stream_finish(al_chat_stream *s, al_chat_event_fn fn, void *ud, al_chat_msg *out);

/* ---- request conversion ------------------------------------------------------------------- */
/* All return a new JSON array of HF messages: {role: system|user|assistant|tool, content: string,
 * [reasoning_content], [tool_calls: [{id?, type: "function", function: {name, arguments: object}}]],
 * [tool_call_id, name] (tool)}. Text parts are joined with "\n"; images are dropped. Malformed
 * input -> AL_ERR_INVALID naming the offending field. */
al_status al_chat_messages_from_openai(const json_t *messages, json_t **out);
/* system: NULL, a string or an array of text blocks. */
al_status al_chat_messages_from_anthropic(const json_t *system, const json_t *messages, json_t **out);
al_status al_chat_messages_from_ollama(const json_t *messages, json_t **out);

/* Tools into the OpenAI/HF list [{type: "function", function: {name, description?, parameters}}].
 * Anthropic tools are {name, description, input_schema}. NULL or empty -> *out = NULL. */
al_status al_chat_tools_from_openai(const json_t *tools, json_t **out); /* also Ollama */
al_status al_chat_tools_from_anthropic(const json_t *tools, json_t **out);

typedef enum al_tool_choice_kind {
    AL_TOOL_CHOICE_AUTO = 0,
    AL_TOOL_CHOICE_NONE,     /* do not pass tools to the template */
    AL_TOOL_CHOICE_REQUIRED, /* constrain the output to one call of any tool */
    AL_TOOL_CHOICE_NAMED,    /* constrain the output to one call of `name` */
} al_tool_choice_kind;

typedef struct al_tool_choice {
    al_tool_choice_kind kind;
    char name[256];
} al_tool_choice;

/* OpenAI: "none"|"auto"|"required"|{"type":"function","function":{"name":..}}; NULL = auto.
 * Anthropic: {"type":"auto"|"any"|"tool"|"none", "name":..}. A named tool must be in `tools`
 * (the converted list) -> else AL_ERR_INVALID. */
al_status al_tool_choice_from_openai(const json_t *choice, const json_t *tools, al_tool_choice *out);
al_status al_tool_choice_from_anthropic(const json_t *choice, const json_t *tools, al_tool_choice *out);

/* ---- grammars ----------------------------------------------------------------------------- */

typedef struct al_grammar al_grammar;

/* Any JSON object (OpenAI response_format json_object, Ollama format:"json"). */
al_status al_grammar_json_object(al_grammar **out);
/* A JSON-Schema subset: type (string or list) object/array/string/number/integer/boolean/null,
 * properties, required, additionalProperties (false / schema), items, enum, const, anyOf/oneOf,
 * local $ref (#/$defs/.., #/definitions/..). Other keywords are ignored. true / {} = any value. */
al_status al_grammar_json_schema(al_grammar **out, const json_t *schema);
/* One call of a tool from `tools` (HF/OpenAI list), in the wrapper of `fmt`; name NULL = any. */
al_status al_grammar_tool_call(al_grammar **out, al_chat_format fmt, const json_t *tools, const char *name);
/* The constraint a tool_choice asks for: REQUIRED / NAMED -> al_grammar_tool_call; AUTO / NONE ->
 * *out = NULL (no constraint; for NONE the caller also leaves the tools out of the prompt). */
al_status al_grammar_from_tool_choice(const al_tool_choice *choice, al_chat_format fmt, const json_t *tools, al_grammar **out);
/* OpenAI response_format ({"type":"text"|"json_object"|"json_schema",..}) or Ollama format
 * ("json" or a schema object). *out = NULL when no constraint applies. */
al_status al_grammar_from_response_format(const json_t *rf, al_grammar **out);
void al_grammar_free(al_grammar *g);
/* Whether text is a valid prefix; *complete (optional): whether it is also a complete output. */
bool al_grammar_accepts(const al_grammar *g, const char *text, size_t len, bool *complete);

/* ---- constrained decoding ----------------------------------------------------------------- */

typedef struct al_cvocab al_cvocab;

enum { AL_CVOCAB_EOG = 1, AL_CVOCAB_CONTROL = 2 }; /* per-token flags */

/* Pieces of every token (control tokens by their text, never inside JSON strings). */
al_status al_cvocab_from_tokenizer(al_cvocab **out, const al_tokenizer *t);
/* From explicit pieces (bytes, lens[i] each) and flags (NULL: none). */
al_status al_cvocab_from_pieces(al_cvocab **out, const char *const *pieces, const size_t *lens,
                                const uint8_t *flags, int32_t n);
void al_cvocab_free(al_cvocab *v);
int32_t al_cvocab_size(const al_cvocab *v);

typedef struct al_constraint al_constraint;

enum { AL_CONSTRAINT_ALLOW_THINK = 1 }; /* a leading <think>...</think> block is left free */

/* g and v must outlive the constraint. */
al_status al_constraint_init(al_constraint **out, const al_grammar *g, const al_cvocab *v, unsigned flags);
void al_constraint_free(al_constraint *c);
/* allowed[0, n_vocab) arrives all 1; sets 0 for tokens that may not follow `text` (the whole text
 * generated so far). Text that is not a valid prefix leaves only end-of-generation tokens. */
al_status al_constraint_mask(al_constraint *c, const char *text, size_t len, uint8_t *allowed, int n_vocab);
/* Signature of al_constraint_fn (alloy/engine.h); ud is the al_constraint. */
bool al_constraint_apply(void *ud, const char *text_so_far, size_t len, uint8_t *allowed, int n_vocab);

#ifdef __cplusplus
}
#endif
#endif
