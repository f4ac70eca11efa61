/* status.c — al_status constructors and logging. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation" /* messages are truncated on purpose */
#endif
#include <stdio.h>
#include <string.h>

#include "alloy/core.h"

static const char *const code_names[AL_ERR_COUNT] = {
    [AL_OK] = "ok",
    [AL_ERR_INVALID] = "invalid argument",
    [AL_ERR_IO] = "i/o error",
    [AL_ERR_FORMAT] = "format error",
    [AL_ERR_NOMEM] = "out of memory",
    [AL_ERR_UNSUPPORTED] = "unsupported",
    [AL_ERR_NOT_FOUND] = "not found",
    [AL_ERR_RANGE] = "out of range",
    [AL_ERR_CANCELLED] = "cancelled",
};

const char *al_code_name(al_code code) {
    return (unsigned)code < AL_ERR_COUNT && code_names[code] ? code_names[code] : "unknown error";
}

al_status al_err(al_code code, const char *fmt, ...) {
    al_status s;
    s.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s.msg, sizeof s.msg, fmt, ap);
    va_end(ap);
    return s;
}

al_status al_err_wrap(al_status inner, const char *fmt, ...) {
    al_status s;
    s.code = inner.code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s.msg, sizeof s.msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof s.msg) snprintf(s.msg + n, sizeof s.msg - (size_t)n, ": %s", inner.msg);
    return s;
}

static void log_stderr(void *ud, al_log_level level, const char *msg) {
    (void)ud;
    static const char *const names[] = {"debug", "info", "warn", "error", ""};
    fprintf(stderr, "[%s] %s\n", names[level < AL_LOG_NONE ? level : AL_LOG_NONE], msg);
}

al_logger al_logger_stderr(al_log_level level) {
    al_logger lg = {log_stderr, NULL, level};
    return lg;
}

void al_log(const al_logger *lg, al_log_level level, const char *fmt, ...) {
    if (!lg || !lg->fn || level < lg->level) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    lg->fn(lg->ud, level, buf);
}
