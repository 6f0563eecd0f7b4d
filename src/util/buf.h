/* A growable byte buffer that always knows its length: the currency of encoders and responses. */
#ifndef TESSERA_BUF_H
#define TESSERA_BUF_H

#include <stddef.h>
#include <stdint.h>

struct ts_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len (0 = none): growth beyond it fails with TS_ETOOLONG */
};

void ts_buf_init_capped(struct ts_buf *b, size_t max);
/* The contents as a NUL-terminated string (the NUL is not counted in len). */
const char *ts_buf_str(struct ts_buf *b);
int ts_buf_append_str(struct ts_buf *b, const char *s);

int ts_buf_reserve(struct ts_buf *b, size_t extra);
int ts_buf_append(struct ts_buf *b, const void *data, size_t len);
int ts_buf_appendf(struct ts_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void ts_buf_free(struct ts_buf *b);

#endif
