/* The generic CMYK -> sRGB device link used for CMYK sources without an embedded profile. */
#ifndef TESSERA_CMYK_FALLBACK_H
#define TESSERA_CMYK_FALLBACK_H

#include <stddef.h>
#include <stdint.h>

/* An ICC v2 device link (CMYK, not inverted, to sRGB); see tools/gen_cmyk_fallback.c. */
extern const size_t ts_cmyk_fallback_len;
extern const uint8_t ts_cmyk_fallback_icc[];

#endif
