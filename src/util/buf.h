/* A growable byte buffer that always knows its length: the currency of encoders and responses. */
#ifndef TESSERA_BUF_H
#define TESSERA_BUF_H

#include <stddef.h>
#include <stdint.h>

/* `{0}` is an empty buffer with no cap. With a cap (max > 0), len never exceeds max: an
 * append, appendf or reserve that would pass it fails with TS_ETOOLONG and leaves the buffer
 * as it was, so text built from a request is refused whole rather than cut short. */
struct ts_buf {
    uint8_t *data;
    size_t len;
    size_t cap; /* bytes allocated at data */
    size_t max; /* most bytes len may reach; 0 means no cap beyond memory */
};

/* An empty buffer whose contents may never exceed max bytes (0: no cap). */
void ts_buf_init_capped(struct ts_buf *b, size_t max);
/* Makes room for extra more bytes after len. TS_ETOOLONG past the cap, TS_ENOMEM when the
 * allocation fails; either way the buffer is unchanged. */
int ts_buf_reserve(struct ts_buf *b, size_t extra);
int ts_buf_append(struct ts_buf *b, const void *data, size_t len);
int ts_buf_append_str(struct ts_buf *b, const char *s);
int ts_buf_appendf(struct ts_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The contents as a C string: a NUL is kept after len (not counted in it, and allowed even
 * when len == max). "" for an empty buffer; NULL only when the NUL cannot be allocated. */
const char *ts_buf_str(struct ts_buf *b);
/* Frees the contents; the cap stays, so the buffer can be reused under the same limit. */
void ts_buf_free(struct ts_buf *b);

#endif
