/* A growable byte buffer that always knows its length: the currency of encoders and responses. */
#ifndef TESSERA_BUF_H
#define TESSERA_BUF_H

#include <stddef.h>
#include <stdint.h>

struct ts_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

int ts_buf_reserve(struct ts_buf *b, size_t extra);
int ts_buf_append(struct ts_buf *b, const void *data, size_t len);
int ts_buf_appendf(struct ts_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void ts_buf_free(struct ts_buf *b);

#endif
