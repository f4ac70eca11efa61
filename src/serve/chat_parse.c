/* chat_parse.c — the incremental parser of assistant output: content, <think> reasoning and tool
 * calls in each family's layout (see al_chat_format).
 *
 * Design: a byte-driven state machine. Input bytes go through `in` (a queue: rejected candidates
 * are pushed back to its front and re-read as content). In content mode, bytes that may begin a
 * marker are held in `mk`; a complete marker switches mode. After a tool marker every raw byte is
 * also kept in `hold` until the call is committed (its name is known, and for bare-JSON layouts
 * enough to tell it from ordinary JSON), so that a candidate that turns out not to be a call is
 * replayed as content. No decision looks at bytes beyond the one being read, except through these
 * holds, which is why the result does not depend on how the input was split. */
#include "serve/chat_internal.h"

#define MAX_NAME 256
#define MAX_CALLS 4096

/* ---- markers ---- */
typedef enum mk_kind { MK_THINK, MK_HERMES, MK_NEMO, MK_MISTRAL, MK_PYTAG, MK_BRACE, MK_FENCE, MK_COUNT } mk_kind;
static const char *const mk_text[MK_COUNT] = {
    [MK_THINK] = "<think>", [MK_HERMES] = "<tool_call>", [MK_NEMO] = "<TOOLCALL>",
    [MK_MISTRAL] = "[TOOL_CALLS]", [MK_PYTAG] = "<|python_tag|>", [MK_BRACE] = "{", [MK_FENCE] = "```json",
};

typedef enum mode { M_CONTENT, M_THINK, M_TOOL } mode;

/* Phases inside a tool block. */
typedef enum tphase {
    T_OBJ,        /* an object {"name", "arguments"} is being read by `obj` */
    T_WS_OBJ,     /* whitespace, then an object must start */
    T_HERMES_END, /* whitespace, then "</tool_call>" (or anything: the block ends) */
    T_ARR_OPEN,   /* whitespace, then '[' (Nemotron) */
    T_ARR_SEP,    /* whitespace, then ',' (next object) or ']' */
    T_NEMO_END,   /* whitespace, then "</TOOLCALL>" */
    T_MIS_START,  /* after [TOOL_CALLS]: '[' array, '{' object, else a name */
    T_MIS_NAME,   /* name bytes until "[ARGS]" or "[CALL_ID]" */
    T_MIS_CALLID, /* id bytes until "[ARGS]" */
    T_MIS_ARGS,   /* the arguments value after [ARGS] */
    T_L3_SEP,     /* after a Llama 3 call: whitespace / ';' then another object, else content */
    T_FENCE_END,  /* whitespace, then "```" */
} tphase;

typedef enum okey { K_OTHER, K_NAME, K_ARGS } okey;

typedef enum ost {
    O_START, O_KEY_OR_END, O_KEY_START, O_KEY, O_KEY_ESC, O_COLON, O_VAL_START, O_NAME, O_VALUE, O_AFTER,
} ost;

typedef enum commit_at { C_NAME, C_NAME_ARGS, C_END } commit_at;

typedef struct tobj {
    ost st;
    okey cur;
    chat_buf key;
    chat_buf name_raw;   /* the name's JSON string, quotes included */
    chat_jscan js;       /* the value being read (arguments or a skipped value) */
    bool have_name, have_args, args_string, committed;
    chat_buf args;       /* raw text of the arguments value */
    size_t args_sent;    /* bytes of args already sent in ARGS events */
    char *name;
} tobj;

typedef struct sink {
    chat_buf ws;   /* trailing whitespace, sent only if more text follows */
    bool started;  /* non-whitespace text was sent */
} sink;

struct al_chat_stream {
    al_chat_parse_opts o;
    uint64_t seed;
    mode m;
    bool finished, eof, think_done;
    chat_buf in;       /* queued input */
    size_t ip;         /* read position in `in` */
    chat_buf mk;       /* content/think mode: bytes that may begin a marker */
    /* tool block */
    tphase tp;
    mk_kind marker;    /* the marker that opened the block */
    commit_at policy;
    bool block_committed;
    bool mis_single;   /* Mistral block with one bare object */
    chat_buf hold;     /* raw bytes since the block (or, once committed, the object) began */
    chat_buf lit;      /* partial closing literal / Mistral name */
    tobj obj;
    /* output */
    sink sk_content, sk_reason;
    int pend_kind;     /* AL_CHAT_EV_CONTENT / REASONING / 0 */
    chat_buf pend;
    chat_buf content, reasoning;
    al_tool_call *calls;
    size_t n_calls, cap_calls;
    al_chat_event_fn fn;
    void *ud;
    bool oom;
};

al_chat_parse_opts al_chat_parse_opts_default(al_chat_format f) {
    al_chat_parse_opts o;
    memset(&o, 0, sizeof o);
    o.format = f;
    o.parse_tools = true;
    o.parse_reasoning = true;
    return o;
}

/* ---- output ---- */

static void emit(al_chat_stream *s, al_chat_event *ev) {
    if (s->fn) s->fn(s->ud, ev);
}

static void flush_pend(al_chat_stream *s, bool all) {
    if (!s->pend.n) return;
    size_t n = all ? s->pend.n : chat_utf8_complete_prefix(s->pend.p, s->pend.n);
    if (!n) return;
    chat_buf *dst = s->pend_kind == AL_CHAT_EV_CONTENT ? &s->content : &s->reasoning;
    if (!chat_buf_put(dst, s->pend.p, n)) s->oom = true;
    al_chat_event ev = {.kind = (al_chat_event_kind)s->pend_kind, .text = s->pend.p, .len = n};
    emit(s, &ev);
    chat_buf_drop(&s->pend, n);
}

static void out_text(al_chat_stream *s, int kind, const char *p, size_t n) {
    if (s->pend_kind != kind) { flush_pend(s, true); s->pend_kind = kind; }
    if (!chat_buf_put(&s->pend, p, n)) s->oom = true;
}

static void sink_put(al_chat_stream *s, int kind, const char *p, size_t n) {
    sink *k = kind == AL_CHAT_EV_CONTENT ? &s->sk_content : &s->sk_reason;
    size_t i = 0;
    while (i < n) {
        if (chat_is_ws((unsigned char)p[i])) {
            size_t j = i;
            while (j < n && chat_is_ws((unsigned char)p[j])) j++;
            if (k->started && !chat_buf_put(&k->ws, p + i, j - i)) s->oom = true;
            i = j;
            continue;
        }
        size_t j = i;
        while (j < n && !chat_is_ws((unsigned char)p[j])) j++;
        if (k->ws.n) { out_text(s, kind, k->ws.p, k->ws.n); chat_buf_clear(&k->ws); }
        out_text(s, kind, p + i, j - i);
        k->started = true;
        i = j;
    }
}

static void content_put(al_chat_stream *s, const char *p, size_t n) { sink_put(s, AL_CHAT_EV_CONTENT, p, n); }

/* Pushes bytes back to the front of the input queue. */
static void replay(al_chat_stream *s, const char *p, size_t n) {
    if (!n) return;
    chat_buf nb = {0};
    if (!chat_buf_put(&nb, p, n) || !chat_buf_put(&nb, s->in.p + s->ip, s->in.n - s->ip)) {
        chat_buf_free(&nb);
        s->oom = true;
        return;
    }
    chat_buf_free(&s->in);
    s->in = nb;
    s->ip = 0;
}

/* ---- tool calls ---- */

static void obj_reset(tobj *o) {
    chat_buf_free(&o->key);
    chat_buf_free(&o->name_raw);
    chat_buf_free(&o->args);
    free(o->name);
    memset(o, 0, sizeof *o);
}

static bool is_mistral(const al_chat_stream *s) {
    return s->o.format == AL_CHAT_FMT_MISTRAL || s->o.format == AL_CHAT_FMT_MISTRAL_V11;
}

/* Sends args bytes not yet sent (only complete UTF-8 characters unless `all`). */
static void args_flush(al_chat_stream *s, bool all) {
    tobj *o = &s->obj;
    if (!o->committed || o->args_string || o->args_sent >= o->args.n) return;
    size_t end = all ? o->args.n : chat_utf8_complete_prefix(o->args.p, o->args.n);
    if (end <= o->args_sent) return;
    al_chat_event ev = {.kind = AL_CHAT_EV_TOOL_ARGS, .index = (int)s->n_calls - 1,
                        .text = o->args.p + o->args_sent, .len = end - o->args_sent};
    emit(s, &ev);
    o->args_sent = end;
}

/* The call becomes final: START event, buffered args. */
static void call_commit(al_chat_stream *s) {
    tobj *o = &s->obj;
    if (o->committed) return;
    if (s->n_calls >= MAX_CALLS) { s->oom = true; return; }
    if (s->n_calls == s->cap_calls) {
        size_t cap = s->cap_calls ? s->cap_calls * 2 : 4;
        al_tool_call *c = realloc(s->calls, cap * sizeof *c);
        if (!c) { s->oom = true; return; }
        s->calls = c;
        s->cap_calls = cap;
    }
    al_tool_call *c = &s->calls[s->n_calls++];
    memset(c, 0, sizeof *c);
    char id[32];
    chat_make_call_id(&s->seed, is_mistral(s), id);
    c->id = strdup(id);
    c->name = strdup(o->name ? o->name : "");
    if (!c->id || !c->name) s->oom = true;
    flush_pend(s, true);
    o->committed = true;
    s->block_committed = true;
    al_chat_event ev = {.kind = AL_CHAT_EV_TOOL_START, .index = (int)s->n_calls - 1, .id = c->id, .name = c->name};
    emit(s, &ev);
    args_flush(s, false);
}

/* Ends the committed call: final arguments, END event. */
static void call_end(al_chat_stream *s) {
    tobj *o = &s->obj;
    if (!o->committed) return;
    al_tool_call *c = &s->calls[s->n_calls - 1];
    json_t *args = NULL;
    char *text = NULL;
    if (o->args_string) {
        /* "arguments": "<JSON text>" — some models encode the object as a string. */
        json_t *str = json_loadb(o->args.p ? o->args.p : "", o->args.n, JSON_DECODE_ANY, NULL);
        if (json_is_string(str)) text = strdup(json_string_value(str));
        json_decref(str);
        if (!text) text = strdup("");
        if (text && *text) {
            al_chat_event ev = {.kind = AL_CHAT_EV_TOOL_ARGS, .index = (int)s->n_calls - 1, .text = text, .len = strlen(text)};
            emit(s, &ev);
        }
    } else {
        if (!o->have_args && o->args.n == 0) {
            chat_buf_put(&o->args, "{}", 2);
        }
        args_flush(s, true);
        text = strndup(o->args.p ? o->args.p : "", o->args.n);
    }
    if (text) args = json_loads(text, 0, NULL);
    if (!json_is_object(args)) { json_decref(args); args = json_object(); }
    c->arguments = args;
    c->arguments_text = text;
    if (!args || !text) s->oom = true;
    char *compact = args ? json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    al_chat_event ev = {.kind = AL_CHAT_EV_TOOL_END, .index = (int)s->n_calls - 1,
                        .text = compact ? compact : "{}", .len = compact ? strlen(compact) : 2};
    emit(s, &ev);
    free(compact);
    obj_reset(o);
}

/* Gives up the current candidate. Uncommitted block: the marker becomes content and the held
 * bytes (the failing one included) are read again; committed block: only this object's bytes. */
static void reject(al_chat_stream *s) {
    if (s->obj.committed) call_end(s);
    if (!s->block_committed) content_put(s, mk_text[s->marker], strlen(mk_text[s->marker]));
    chat_buf h = s->hold;
    memset(&s->hold, 0, sizeof s->hold);
    replay(s, h.p, h.n);
    chat_buf_free(&h);
    obj_reset(&s->obj);
    chat_buf_clear(&s->lit);
    s->m = M_CONTENT;
}

/* The block is over: the bytes in `rest` (not part of it) are read again as content. */
static void block_end(al_chat_stream *s, const char *rest, size_t n) {
    if (s->obj.committed) call_end(s);
    chat_buf r = {0};
    if (n && !chat_buf_put(&r, rest, n)) s->oom = true;
    chat_buf_free(&s->hold);
    chat_buf_clear(&s->lit);
    obj_reset(&s->obj);
    s->m = M_CONTENT;
    replay(s, r.p, r.n);
    chat_buf_free(&r);
}

static void obj_begin(al_chat_stream *s, commit_at policy) {
    obj_reset(&s->obj);
    s->policy = policy;
    s->tp = T_OBJ;
    if (s->block_committed) chat_buf_clear(&s->hold);
}

typedef enum orc { OR_MORE, OR_DONE, OR_DONE_UNGET, OR_FAIL } orc;

static bool key_is(const chat_buf *k, const char *w) { return k->n == strlen(w) && memcmp(k->p, w, k->n) == 0; }

static void maybe_commit(al_chat_stream *s) {
    tobj *o = &s->obj;
    if (o->committed || !o->have_name) return;
    if (s->policy == C_NAME || (s->policy == C_NAME_ARGS && o->have_args)) call_commit(s);
}

/* One byte of a {"name": .., "arguments"|"parameters": ..} object. */
static orc obj_byte(al_chat_stream *s, unsigned char c) {
    tobj *o = &s->obj;
    switch (o->st) {
    case O_START:
        if (chat_is_ws(c)) return OR_MORE;
        if (c != '{') return OR_FAIL;
        o->st = O_KEY_OR_END;
        return OR_MORE;
    case O_KEY_OR_END:
    case O_KEY_START:
        if (chat_is_ws(c)) return OR_MORE;
        if (c == '}' && o->st == O_KEY_OR_END) return OR_DONE;
        if (c != '"') return OR_FAIL;
        chat_buf_clear(&o->key);
        o->st = O_KEY;
        return OR_MORE;
    case O_KEY:
        if (c == '"') {
            o->cur = key_is(&o->key, "name") && !o->have_name ? K_NAME
                   : (key_is(&o->key, "arguments") || key_is(&o->key, "parameters")) && !o->have_args ? K_ARGS
                   : K_OTHER;
            o->st = O_COLON;
            return OR_MORE;
        }
        if (c < 0x20 || o->key.n > 64) return OR_FAIL;
        if (c == '\\') o->st = O_KEY_ESC;
        chat_buf_putc(&o->key, (char)c);
        return OR_MORE;
    case O_KEY_ESC:
        chat_buf_putc(&o->key, (char)c);
        o->st = O_KEY;
        return OR_MORE;
    case O_COLON:
        if (chat_is_ws(c)) return OR_MORE;
        if (c != ':') return OR_FAIL;
        o->st = O_VAL_START;
        return OR_MORE;
    case O_VAL_START:
        if (chat_is_ws(c)) return OR_MORE;
        chat_jscan_init(&o->js);
        if (o->cur == K_NAME) {
            if (c != '"') return OR_FAIL;
            chat_buf_clear(&o->name_raw);
        } else if (o->cur == K_ARGS) {
            o->have_args = true;
            o->args_string = c == '"';
            chat_buf_clear(&o->args);
            o->args_sent = 0;
            maybe_commit(s);
        }
        o->st = o->cur == K_NAME ? O_NAME : O_VALUE;
        /* the first byte belongs to the value */
        __attribute__((fallthrough));
    case O_NAME:
    case O_VALUE: {
        chat_jscan_rc rc = chat_jscan_byte(&o->js, c);
        if (rc == JS_ERR) return OR_FAIL;
        bool unget = rc == JS_DONE_UNGET;
        if (!unget) {
            chat_buf *dst = o->cur == K_NAME ? &o->name_raw : o->cur == K_ARGS ? &o->args : NULL;
            if (dst) {
                if (dst == &o->name_raw && dst->n > MAX_NAME) return OR_FAIL;
                if (!chat_buf_put(dst, (const char *)&c, 1)) s->oom = true;
            }
            if (o->cur == K_ARGS && rc == JS_MORE) args_flush(s, false);
        }
        if (rc == JS_MORE) return OR_MORE;
        /* value complete */
        if (o->cur == K_NAME) {
            json_t *str = json_loadb(o->name_raw.p, o->name_raw.n, JSON_DECODE_ANY, NULL);
            if (!json_is_string(str) || json_string_length(str) == 0) { json_decref(str); return OR_FAIL; }
            o->name = strdup(json_string_value(str));
            json_decref(str);
            if (!o->name) { s->oom = true; return OR_FAIL; }
            o->have_name = true;
            maybe_commit(s);
        } else if (o->cur == K_ARGS) {
            args_flush(s, false);
        }
        o->st = O_AFTER;
        if (!unget) return OR_MORE;
    }
        /* the byte after a number / literal */
        __attribute__((fallthrough));
    case O_AFTER:
        if (chat_is_ws(c)) return OR_MORE;
        if (c == ',') { o->st = O_KEY_START; return OR_MORE; }
        if (c == '}') return OR_DONE;
        return OR_FAIL;
    }
    return OR_FAIL;
}

/* The object closed: decide whether it is a call. */
static bool obj_finish(al_chat_stream *s) {
    tobj *o = &s->obj;
    if (!o->have_name) return false;
    if (s->policy != C_NAME && !o->have_args) return false;
    call_commit(s);
    call_end(s);
    return true;
}

/* Matches a literal after optional whitespace. Returns 1 matched, 0 need more, -1 mismatch
 * (then s->lit holds the bytes read, the failing byte included, for block_end). */
static int lit_byte(al_chat_stream *s, const char *lit, unsigned char c) {
    if (s->lit.n == 0 && chat_is_ws(c)) return 0;
    chat_buf_putc(&s->lit, (char)c);
    size_t L = strlen(lit);
    if (s->lit.n <= L && memcmp(s->lit.p, lit, s->lit.n) == 0) {
        if (s->lit.n == L) { chat_buf_clear(&s->lit); return 1; }
        return 0;
    }
    return -1;
}

static void lit_fail_end(al_chat_stream *s) {
    chat_buf l = s->lit;
    memset(&s->lit, 0, sizeof s->lit);
    block_end(s, l.p, l.n);
    chat_buf_free(&l);
}

static bool name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* Byte in the Mistral v11 name / call-id phases: `lit` accumulates until a bracket tag. */
static void mistral_tag_byte(al_chat_stream *s, unsigned char c) {
    chat_buf_putc(&s->lit, (char)c);
    const char *p = s->lit.p;
    size_t n = s->lit.n;
    static const char args_tag[] = "[ARGS]", id_tag[] = "[CALL_ID]";
    size_t nb = 0; /* bytes before the '[' of a tag in progress */
    while (nb < n && p[nb] != '[') nb++;
    if (s->tp == T_MIS_NAME && nb < n && (nb == 0 || nb > MAX_NAME)) { reject(s); return; }
    for (size_t i = 0; i < nb; i++)
        if (s->tp == T_MIS_NAME ? !name_char((unsigned char)p[i]) : (unsigned char)p[i] < 0x20) { reject(s); return; }
    if (nb == n) {
        if (n > MAX_NAME) reject(s);
        return;
    }
    size_t tn = n - nb;
    bool is_args = tn <= 6 && memcmp(p + nb, args_tag, tn) == 0;
    bool is_id = s->tp == T_MIS_NAME && tn <= 9 && memcmp(p + nb, id_tag, tn) == 0;
    if (!is_args && !is_id) { reject(s); return; }
    if (is_args && tn == 6) {
        if (s->tp == T_MIS_NAME) {
            free(s->obj.name);
            s->obj.name = strndup(p, nb);
            s->obj.have_name = true;
        }
        chat_buf_clear(&s->lit);
        s->obj.cur = K_ARGS;
        s->obj.have_args = true;
        s->obj.st = O_VALUE;
        chat_jscan_init(&s->obj.js);
        call_commit(s);
        s->tp = T_MIS_ARGS;
    } else if (is_id && tn == 9) {
        free(s->obj.name);
        s->obj.name = strndup(p, nb);
        s->obj.have_name = true;
        chat_buf_clear(&s->lit);
        s->tp = T_MIS_CALLID;
    }
}

static void tool_byte(al_chat_stream *s, unsigned char c) {
    if (!s->block_committed || s->tp == T_OBJ || s->tp == T_WS_OBJ || s->tp == T_MIS_NAME)
        if (!s->obj.committed) chat_buf_putc(&s->hold, (char)c);
    switch (s->tp) {
    case T_WS_OBJ:
        if (chat_is_ws(c)) return;
        s->tp = T_OBJ;
        /* fallthrough */
    case T_OBJ: {
        orc r = obj_byte(s, c);
        if (r == OR_MORE) return;
        if (r == OR_FAIL) {
            if (s->obj.committed) {
                /* a broken call after its name was sent: end it, read on from this byte */
                char b = (char)c;
                block_end(s, &b, 1);
            } else {
                reject(s);
            }
            return;
        }
        if (!obj_finish(s)) { reject(s); return; }
        switch (s->marker) {
        case MK_HERMES: s->tp = T_HERMES_END; break;
        case MK_NEMO: s->tp = T_ARR_SEP; break;
        case MK_MISTRAL:
            if (s->mis_single) block_end(s, NULL, 0);
            else s->tp = T_ARR_SEP;
            break;
        case MK_FENCE: s->tp = T_FENCE_END; break;
        case MK_BRACE:
        case MK_PYTAG:
            if (s->o.format == AL_CHAT_FMT_LLAMA3) s->tp = T_L3_SEP;
            else block_end(s, NULL, 0);
            break;
        default: block_end(s, NULL, 0); break;
        }
        return;
    }
    case T_HERMES_END: {
        int r = lit_byte(s, "</tool_call>", c);
        if (r == 1) block_end(s, NULL, 0);
        else if (r < 0) lit_fail_end(s);
        return;
    }
    case T_FENCE_END: {
        int r = lit_byte(s, "```", c);
        if (r == 1) block_end(s, NULL, 0);
        else if (r < 0) lit_fail_end(s);
        return;
    }
    case T_NEMO_END: {
        int r = lit_byte(s, "</TOOLCALL>", c);
        if (r == 1) block_end(s, NULL, 0);
        else if (r < 0) lit_fail_end(s);
        return;
    }
    case T_ARR_OPEN:
        if (chat_is_ws(c)) return;
        if (c != '[') { reject(s); return; }
        obj_begin(s, C_NAME);
        s->tp = T_WS_OBJ;
        return;
    case T_ARR_SEP:
        if (chat_is_ws(c)) return;
        if (c == ',') { obj_begin(s, C_NAME); s->tp = T_WS_OBJ; return; }
        if (c == ']') {
            if (s->marker == MK_NEMO) s->tp = T_NEMO_END;
            else block_end(s, NULL, 0);
            return;
        }
        {
            char b = (char)c;
            block_end(s, &b, 1);
        }
        return;
    case T_MIS_START:
        if (chat_is_ws(c)) return;
        if (c == '[') { obj_begin(s, C_NAME); s->tp = T_WS_OBJ; return; }
        if (c == '{') { /* [TOOL_CALLS]{..}: one object without the array */
            obj_begin(s, C_NAME);
            s->mis_single = true;
            s->tp = T_OBJ;
            obj_byte(s, c);
            return;
        }
        s->tp = T_MIS_NAME;
        chat_buf_clear(&s->lit);
        mistral_tag_byte(s, c);
        return;
    case T_MIS_NAME:
    case T_MIS_CALLID:
        mistral_tag_byte(s, c);
        return;
    case T_MIS_ARGS: {
        tobj *o = &s->obj;
        if (o->args.n == 0 && chat_is_ws(c)) return;
        chat_jscan_rc rc = chat_jscan_byte(&o->js, c);
        if (rc == JS_ERR) { char b = (char)c; block_end(s, &b, 1); return; }
        if (rc == JS_DONE_UNGET) { char b = (char)c; block_end(s, &b, 1); return; }
        if (o->args.n == 0 && c == '"') o->args_string = true;
        chat_buf_putc(&o->args, (char)c);
        if (rc == JS_DONE) block_end(s, NULL, 0);
        else args_flush(s, false);
        return;
    }
    case T_L3_SEP:
        if (chat_is_ws(c) || c == ';') return;
        if (c == '{') { /* the next call: a new uncommitted candidate opened by "{" */
            chat_buf_clear(&s->hold);
            s->block_committed = false;
            s->marker = MK_BRACE;
            obj_begin(s, C_NAME_ARGS);
            obj_byte(s, c);
            return;
        }
        {
            char b = (char)c;
            block_end(s, &b, 1);
        }
        return;
    }
}

/* ---- content / think modes ---- */

static bool marker_active(const al_chat_stream *s, mk_kind k) {
    const al_chat_parse_opts *o = &s->o;
    if (k == MK_THINK)
        return o->parse_reasoning && !s->think_done && !s->sk_content.started && s->n_calls == 0;
    if (!o->parse_tools) return false;
    switch (o->format) {
    case AL_CHAT_FMT_GENERIC: return k == MK_HERMES || k == MK_BRACE || k == MK_FENCE;
    case AL_CHAT_FMT_HERMES: return k == MK_HERMES;
    case AL_CHAT_FMT_LLAMA3: return k == MK_PYTAG || (k == MK_BRACE && !s->sk_content.started);
    case AL_CHAT_FMT_MISTRAL:
    case AL_CHAT_FMT_MISTRAL_V11: return k == MK_MISTRAL;
    case AL_CHAT_FMT_NEMOTRON: return k == MK_NEMO;
    default: return false;
    }
}

static void open_block(al_chat_stream *s, mk_kind k) {
    flush_pend(s, true);
    s->m = M_TOOL;
    s->marker = k;
    s->block_committed = false;
    s->mis_single = false;
    chat_buf_clear(&s->hold);
    chat_buf_clear(&s->lit);
    obj_reset(&s->obj);
    switch (k) {
    case MK_HERMES: obj_begin(s, C_NAME); s->tp = T_WS_OBJ; break;
    case MK_NEMO: s->tp = T_ARR_OPEN; break;
    case MK_MISTRAL: s->tp = T_MIS_START; break;
    case MK_PYTAG: obj_begin(s, C_NAME_ARGS); s->tp = T_WS_OBJ; break;
    case MK_FENCE: obj_begin(s, C_END); s->tp = T_WS_OBJ; break;
    case MK_BRACE:
        obj_begin(s, s->o.format == AL_CHAT_FMT_LLAMA3 ? C_NAME_ARGS : C_END);
        s->tp = T_OBJ;
        obj_byte(s, '{');
        break;
    default: break;
    }
}

static void content_byte(al_chat_stream *s, unsigned char c) {
    chat_buf_putc(&s->mk, (char)c);
    for (;;) {
        bool prefix = false;
        for (int k = 0; k < MK_COUNT; k++) {
            if (!marker_active(s, (mk_kind)k)) continue;
            size_t L = strlen(mk_text[k]);
            if (s->mk.n <= L && memcmp(s->mk.p, mk_text[k], s->mk.n) == 0) {
                if (s->mk.n == L) {
                    chat_buf_clear(&s->mk);
                    if (k == MK_THINK) { flush_pend(s, true); s->m = M_THINK; s->think_done = true; }
                    else open_block(s, (mk_kind)k);
                    return;
                }
                prefix = true;
            }
        }
        if (prefix || s->mk.n == 0) return;
        /* the first held byte cannot begin a marker */
        content_put(s, s->mk.p, 1);
        chat_buf_drop(&s->mk, 1);
        if (s->mk.n == 0) return;
    }
}

static void think_byte(al_chat_stream *s, unsigned char c) {
    static const char close[] = "</think>";
    chat_buf_putc(&s->mk, (char)c);
    for (;;) {
        size_t L = sizeof close - 1;
        if (s->mk.n <= L && memcmp(s->mk.p, close, s->mk.n) == 0) {
            if (s->mk.n == L) {
                chat_buf_clear(&s->mk);
                flush_pend(s, true);
                s->m = M_CONTENT;
            }
            return;
        }
        sink_put(s, AL_CHAT_EV_REASONING, s->mk.p, 1);
        chat_buf_drop(&s->mk, 1);
        if (s->mk.n == 0) return;
    }
}

static void run(al_chat_stream *s) {
    while (s->ip < s->in.n && !s->oom) {
        unsigned char c = (unsigned char)s->in.p[s->ip++];
        switch (s->m) {
        case M_CONTENT: content_byte(s, c); break;
        case M_THINK: think_byte(s, c); break;
        case M_TOOL: tool_byte(s, c); break;
        }
    }
    if (s->ip == s->in.n) { chat_buf_clear(&s->in); s->ip = 0; }
}

/* End of input in the current mode; may queue bytes to read again. */
static void at_eof(al_chat_stream *s) {
    switch (s->m) {
    case M_CONTENT:
        if (s->mk.n) { content_put(s, s->mk.p, s->mk.n); chat_buf_clear(&s->mk); }
        break;
    case M_THINK:
        if (s->mk.n) { sink_put(s, AL_CHAT_EV_REASONING, s->mk.p, s->mk.n); chat_buf_clear(&s->mk); }
        break;
    case M_TOOL:
        if (s->tp == T_MIS_ARGS) {
            block_end(s, NULL, 0);
        } else if (s->obj.committed) {
            block_end(s, NULL, 0);
        } else if (s->tp == T_OBJ || s->tp == T_WS_OBJ || s->tp == T_ARR_OPEN || s->tp == T_MIS_START ||
                   s->tp == T_MIS_NAME || s->tp == T_MIS_CALLID) {
            reject(s);
        } else {
            lit_fail_end(s); /* a partial closing tag: read it again as content */
        }
        break;
    }
}

/* ---- public ---- */

al_status al_chat_stream_init(al_chat_stream **out, const al_chat_parse_opts *opts) {
    if (!out) return al_err(AL_ERR_INVALID, "al_chat_stream_init: out is NULL");
    *out = NULL;
    al_chat_parse_opts o = opts ? *opts : al_chat_parse_opts_default(AL_CHAT_FMT_GENERIC);
    if ((unsigned)o.format >= AL_CHAT_FMT_COUNT) return al_err(AL_ERR_INVALID, "al_chat_stream_init: unknown format %d", (int)o.format);
    al_chat_stream *s = calloc(1, sizeof *s);
    if (!s) return al_err(AL_ERR_NOMEM, "al_chat_stream_init: out of memory");
    s->o = o;
    s->seed = o.id_seed ? o.id_seed : chat_default_seed(s);
    if (o.starts_in_think && o.parse_reasoning) { s->m = M_THINK; s->think_done = true; }
    *out = s;
    return al_ok();
}

static void msg_free_members(al_tool_call *calls, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(calls[i].id);
        free(calls[i].name);
        free(calls[i].arguments_text);
        json_decref(calls[i].arguments);
    }
    free(calls);
}

void al_chat_stream_free(al_chat_stream *s) {
    if (!s) return;
    chat_buf_free(&s->in);
    chat_buf_free(&s->mk);
    chat_buf_free(&s->hold);
    chat_buf_free(&s->lit);
    obj_reset(&s->obj);
    chat_buf_free(&s->sk_content.ws);
    chat_buf_free(&s->sk_reason.ws);
    chat_buf_free(&s->pend);
    chat_buf_free(&s->content);
    chat_buf_free(&s->reasoning);
    msg_free_members(s->calls, s->n_calls);
    free(s);
}

al_status al_chat_stream_feed(al_chat_stream *s, const char *text, size_t len, al_chat_event_fn fn, void *ud) {
    if (!s || (!text && len)) return al_err(AL_ERR_INVALID, "al_chat_stream_feed: NULL argument");
    if (s->finished) return al_err(AL_ERR_INVALID, "al_chat_stream_feed: stream already finished");
    s->fn = fn;
    s->ud = ud;
    if (len && !chat_buf_put(&s->in, text, len)) s->oom = true;
    run(s);
    flush_pend(s, false);
    if (s->oom) return al_err(AL_ERR_NOMEM, "chat output parser: out of memory");
    return al_ok();
}

al_status al_chat_stream_finish(al_chat_stream *s, al_chat_event_fn fn, void *ud, al_chat_msg *out) {
    if (!s) return al_err(AL_ERR_INVALID, "al_chat_stream_finish: NULL stream");
    if (s->finished) return al_err(AL_ERR_INVALID, "al_chat_stream_finish: called twice");
    s->fn = fn;
    s->ud = ud;
    s->eof = true;
    /* Each at_eof either settles the mode or re-queues strictly fewer held bytes. */
    for (int guard = 0; guard < 1 << 20 && !s->oom; guard++) {
        run(s);
        if (s->m == M_CONTENT && s->mk.n == 0 && s->in.n == 0) break;
        at_eof(s);
        if (s->m != M_TOOL && s->in.n == 0 && s->mk.n == 0) { run(s); break; }
    }
    flush_pend(s, true);
    s->finished = true;
    if (s->oom) return al_err(AL_ERR_NOMEM, "chat output parser: out of memory");
    if (out) {
        memset(out, 0, sizeof *out);
        out->content = s->content.p ? s->content.p : strdup("");
        out->content_len = s->content.n;
        out->reasoning = s->reasoning.p ? s->reasoning.p : strdup("");
        out->reasoning_len = s->reasoning.n;
        memset(&s->content, 0, sizeof s->content);
        memset(&s->reasoning, 0, sizeof s->reasoning);
        out->calls = s->calls;
        out->n_calls = s->n_calls;
        s->calls = NULL;
        s->n_calls = s->cap_calls = 0;
        if (!out->content || !out->reasoning) { al_chat_msg_free(out); return al_err(AL_ERR_NOMEM, "out of memory"); }
    }
    return al_ok();
}

al_status al_chat_parse(const char *text, size_t len, const al_chat_parse_opts *opts, al_chat_msg *out) {
    if (!out) return al_err(AL_ERR_INVALID, "al_chat_parse: out is NULL");
    memset(out, 0, sizeof *out);
    al_chat_stream *s;
    AL_TRY(al_chat_stream_init(&s, opts));
    al_status st = al_chat_stream_feed(s, text, len, NULL, NULL);
    if (!al_failed(&st)) st = al_chat_stream_finish(s, NULL, NULL, out);
    al_chat_stream_free(s);
    return st;
}

void al_chat_msg_free(al_chat_msg *m) {
    if (!m) return;
    free(m->content);
    free(m->reasoning);
    msg_free_members(m->calls, m->n_calls);
    memset(m, 0, sizeof *m);
}

json_t *al_chat_msg_to_openai(const al_chat_msg *m) {
    if (!m) return NULL;
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "role", json_string("assistant"));
    if (m->content && m->content_len) json_object_set_new(o, "content", json_stringn(m->content, m->content_len));
    else json_object_set_new(o, "content", json_null());
    if (m->reasoning && m->reasoning_len) json_object_set_new(o, "reasoning_content", json_stringn(m->reasoning, m->reasoning_len));
    if (m->n_calls) {
        json_t *arr = json_array();
        for (size_t i = 0; i < m->n_calls; i++) {
            const al_tool_call *c = &m->calls[i];
            char *args = json_dumps(c->arguments, JSON_COMPACT | JSON_PRESERVE_ORDER);
            json_array_append_new(arr, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", c->id, "type", "function",
                                                 "function", "name", c->name, "arguments", args ? args : "{}"));
            free(args);
        }
        json_object_set_new(o, "tool_calls", arr);
    }
    return o;
}
