/*
 * alloy/yaml.h — a YAML document read (with libyaml) into a jansson tree.
 *
 * Contract
 *  - One document; mappings become JSON objects, sequences arrays, scalars typed by the YAML 1.2
 *    core schema: plain `null`/`~`/empty -> null, `true`/`false` (and capitalised forms) -> bool,
 *    decimal / 0x / 0o integers -> integer (must fit int64), decimal floats -> real; quoted and
 *    block scalars, and anything else, are strings. Explicit tags: only !!str !!int !!float !!bool
 *    !!null (and the non-specific "!") are honoured; any other tag is refused.
 *  - Refused with AL_ERR_FORMAT, never a crash: syntax errors (with line/column), aliases (no
 *    expansion at all, so no "billion laughs"), several documents, duplicate or non-scalar mapping
 *    keys, strings holding NUL bytes, non-finite numbers (.inf / .nan), nesting deeper than
 *    AL_YAML_MAX_DEPTH. Input larger than AL_YAML_MAX_BYTES is refused with AL_ERR_RANGE.
 *  - On success *out is a new reference the caller json_decref()s; on failure *out is NULL.
 *    `what` names the input in error messages (e.g. the file path).
 */
#ifndef ALLOY_YAML_H
#define ALLOY_YAML_H

#include <jansson.h>

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_YAML_MAX_DEPTH 64
#define AL_YAML_MAX_BYTES (4u << 20)

al_status al_yaml_parse(json_t **out, const char *text, size_t len, const char *what);
al_status al_yaml_load_file(json_t **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif
