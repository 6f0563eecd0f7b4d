/* Lists in request headers: Accept and Accept-Encoding (RFC 9110 12.4.2, 12.5). */
#ifndef TESSERA_ACCEPT_H
#define TESSERA_ACCEPT_H

#include <stddef.h>

/* One element of a comma-separated list such as "gzip;q=0.8, br". */
struct ts_list_elem {
    const char *name; /* not NUL-terminated: name_len bytes, blanks trimmed */
    size_t name_len;
    double q; /* its q parameter; 1 when absent, 0 when malformed */
};

/* Reads the element at p into e; returns where the next one starts, or NULL at the end of the
 * list (e is then untouched). */
const char *ts_list_next(const char *p, struct ts_list_elem *e);

/* The q-value an Accept value gives a media type: the most specific range that matches wins
 * (the type itself, then its major type with any subtype, then any type at all); -1 when
 * none does, or accept is NULL. */
double ts_accept_q(const char *accept, const char *type);

#endif
