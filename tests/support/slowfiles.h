/* Small files of huge images, the kind that once took a worker for minutes: each written in a
 * few seconds at most, for tests and timings of the readers' worst cases. */
#ifndef TESSERA_TEST_SLOWFILES_H
#define TESSERA_TEST_SLOWFILES_H

#include <stdint.h>

/* A solid-colour RGB PNG of w x h, written row by row (a few MB for 20000 x 20000). */
int slow_png(const char *path, uint32_t w, uint32_t h);
/* A JPEG whose frame header says w x h but whose data holds a few blocks and then EOI: the
 * decoder fills the rest with gray, row after row (under 1 KB). */
int slow_jpeg(const char *path, uint32_t w, uint32_t h);
/* An RGB deflate TIFF of one tile of edge x edge (edge a multiple of 16). */
int slow_tiff(const char *path, uint32_t edge);

#endif
