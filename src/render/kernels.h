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

/* The resampler's moves between its row-major and transposed layouts, for 3-sample pixels and
 * groups of 8, where a vector transpose beats moving a pixel at a time. Each returns how many
 * it did from the start (0 where the CPU lacks the instructions); the caller moves the rest.
 *
 * rk_rows_to_cols3: pixel x of int16 row j (rows rowlen samples apart, j < 8) to
 * block[x * stride + j * 3]. Writes up to 4 samples past each pixel's 24, and reads up to 4
 * past the end of row 7: the caller owns both. */
size_t rk_rows_to_cols3(const int16_t *rows, size_t rowlen, size_t width, int16_t *block,
                        size_t stride);

/* rk_cols_to_rows3: pixel r of 8-bit column j (columns cstride bytes apart, j < 8) to
 * out[r * ostride + j * 3], exactly 24 bytes a row; reads up to 4 bytes past each column's
 * last pixel. */
uint32_t rk_cols_to_rows3(const uint8_t *cols, size_t cstride, uint32_t rows, uint8_t *out,
                          size_t ostride);

#endif
