/* The resampler's inner loops: one filter window applied down a stack of rows.
 *
 * Each output sample is sum_k w[k] * row_k[i] over a window of `count` rows, accumulated in
 * int32 and rounded once. There is a plain C version of each loop and, on x86-64, SSE2 and
 * AVX2 versions that keep the sums in registers for the whole window (the plain loop would
 * read and write an int32 row per tap). All versions give the same bytes; which one runs is
 * chosen once, from what the CPU supports (TESSERA_SIMD=c|sse2|avx2 caps it, for tests and
 * comparisons). */
#ifndef TESSERA_RENDER_KERNELS_H
#define TESSERA_RENDER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum rk_level { RK_C = 0, RK_SSE2 = 1, RK_AVX2 = 2 };

/* The best level this CPU and TESSERA_SIMD allow; rk_use() overrides it (tests). */
enum rk_level rk_level(void);
void rk_use(enum rk_level level);
const char *rk_level_name(enum rk_level level);

/* out[i] = (sum_k w[k] * rows[k][i] + 2^(shift-1)) >> shift, for 8-bit rows; shift >= 1.
 * |sum_k w[k]| * 255 and the positive taps' sum must keep the total inside int32 and the
 * result inside int16 (the resampler's weights do). */
void rk_rows_u8_to_i16(const uint8_t *const *rows, const int16_t *w, uint32_t count, size_t n,
                       int shift, int16_t *out);

/* out[i] = clamp((sum_k w[k] * base[k * stride + i] + 2^(shift-1)) >> shift, 0, 255), for int16
 * rows `stride` samples apart. */
void rk_rows_i16_to_u8(const int16_t *base, size_t stride, const int16_t *w, uint32_t count,
                       size_t n, int shift, uint8_t *out);

#endif
