/* See kernels.h. The vector versions pair taps: rows k and k+1 are interleaved sample by sample
 * and one multiply-add instruction (pmaddwd) gives x * w[k] + y * w[k+1] for four samples at
 * once, so a window of n taps costs n/2 multiply-adds per four samples, with the sums held in
 * registers until the window ends. */
#include "render/kernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RK_X86 1
#include <immintrin.h>
#endif

/* Windows longer than this (none the resampler makes: its box pre-shrink keeps Lanczos under
 * a 4x reduction, 27 taps) take the plain loop rather than a bigger stack array. */
#define RK_MAX_PAIRS 32

static _Atomic int chosen = -1;

static enum rk_level detect(void)
{
    enum rk_level best = RK_C;
#ifdef RK_X86
    best = RK_SSE2; /* part of x86-64 itself */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        best = RK_AVX2;
#endif
    const char *cap = getenv("TESSERA_SIMD");
    if (cap) {
        enum rk_level want = strcmp(cap, "c") == 0      ? RK_C
                             : strcmp(cap, "sse2") == 0 ? RK_SSE2
                                                        : RK_AVX2;
        if (want < best)
            best = want;
    }
    return best;
}

enum rk_level rk_level(void)
{
    int level = atomic_load_explicit(&chosen, memory_order_relaxed);
    if (level < 0) {
        level = (int)detect();
        atomic_store_explicit(&chosen, level, memory_order_relaxed);
    }
    return (enum rk_level)level;
}

void rk_use(enum rk_level level)
{
    enum rk_level best = (atomic_store_explicit(&chosen, -1, memory_order_relaxed), rk_level());
    atomic_store_explicit(&chosen, (int)(level < best ? level : best), memory_order_relaxed);
}

const char *rk_level_name(enum rk_level level)
{
    return level == RK_AVX2 ? "avx2" : level == RK_SSE2 ? "sse2" : "c";
}

static inline int32_t clamp_i32(int64_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

static void u8_to_i16_c(const uint8_t *const *rows, const int16_t *w, uint32_t count, size_t from,
                        size_t n, int shift, int16_t *out)
{
    for (size_t i = from; i < n; i++) {
        int32_t sum = 1 << (shift - 1);
        for (uint32_t k = 0; k < count; k++)
            sum += w[k] * rows[k][i];
        /* >> of a negative sum: arithmetic on every compiler Tessera targets (floor). */
        out[i] = (int16_t)clamp_i32(sum >> shift, INT16_MIN, INT16_MAX);
    }
}

static void i16_to_u8_c(const int16_t *base, size_t stride, const int16_t *w, uint32_t count,
                        size_t from, size_t n, int shift, uint8_t *out)
{
    for (size_t i = from; i < n; i++) {
        int32_t sum = 1 << (shift - 1);
        for (uint32_t k = 0; k < count; k++)
            sum += w[k] * base[k * stride + i];
        out[i] = (uint8_t)clamp_i32(sum >> shift, 0, 255);
    }
}

#ifdef RK_X86
/* Taps k and k+1 as one int32 for pmaddwd: w[k] in the low half, multiplying the first row
 * of the pair. An odd window's last pair has a zero partner (and reads row k twice). */
static uint32_t pairs_of(const int16_t *w, uint32_t count, uint32_t *pairs)
{
    uint32_t np = (count + 1) / 2;
    for (uint32_t p = 0; p < np; p++) {
        uint32_t k = 2 * p;
        uint16_t hi = k + 1 < count ? (uint16_t)w[k + 1] : 0;
        pairs[p] = (uint32_t)(uint16_t)w[k] | (uint32_t)hi << 16;
    }
    return np;
}

static size_t u8_to_i16_sse2(const uint8_t *const *rows, const uint32_t *pairs, uint32_t count,
                             size_t i, size_t n, int shift, int16_t *out)
{
    const __m128i z = _mm_setzero_si128(), half = _mm_set1_epi32(1 << (shift - 1));
    const __m128i sh = _mm_cvtsi32_si128(shift);
    for (; i + 16 <= n; i += 16) {
        __m128i a0 = half, a1 = half, a2 = half, a3 = half;
        for (uint32_t k = 0; k < count; k += 2) {
            const uint8_t *r1 = k + 1 < count ? rows[k + 1] : rows[k];
            __m128i wp = _mm_set1_epi32((int32_t)pairs[k / 2]);
            __m128i x = _mm_loadu_si128((const __m128i *)(rows[k] + i));
            __m128i y = _mm_loadu_si128((const __m128i *)(r1 + i));
            __m128i xl = _mm_unpacklo_epi8(x, z), xh = _mm_unpackhi_epi8(x, z);
            __m128i yl = _mm_unpacklo_epi8(y, z), yh = _mm_unpackhi_epi8(y, z);
            a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_unpacklo_epi16(xl, yl), wp));
            a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_unpackhi_epi16(xl, yl), wp));
            a2 = _mm_add_epi32(a2, _mm_madd_epi16(_mm_unpacklo_epi16(xh, yh), wp));
            a3 = _mm_add_epi32(a3, _mm_madd_epi16(_mm_unpackhi_epi16(xh, yh), wp));
        }
        a0 = _mm_sra_epi32(a0, sh);
        a1 = _mm_sra_epi32(a1, sh);
        a2 = _mm_sra_epi32(a2, sh);
        a3 = _mm_sra_epi32(a3, sh);
        _mm_storeu_si128((__m128i *)(out + i), _mm_packs_epi32(a0, a1));
        _mm_storeu_si128((__m128i *)(out + i + 8), _mm_packs_epi32(a2, a3));
    }
    return i;
}

static size_t i16_to_u8_sse2(const int16_t *base, size_t stride, const uint32_t *pairs,
                             uint32_t count, size_t i, size_t n, int shift, uint8_t *out)
{
    const __m128i half = _mm_set1_epi32(1 << (shift - 1));
    const __m128i sh = _mm_cvtsi32_si128(shift);
    for (; i + 16 <= n; i += 16) {
        __m128i a0 = half, a1 = half, a2 = half, a3 = half;
        for (uint32_t k = 0; k < count; k += 2) {
            const int16_t *r0 = base + k * stride + i;
            const int16_t *r1 = k + 1 < count ? r0 + stride : r0;
            __m128i wp = _mm_set1_epi32((int32_t)pairs[k / 2]);
            __m128i x0 = _mm_loadu_si128((const __m128i *)r0);
            __m128i x1 = _mm_loadu_si128((const __m128i *)(r0 + 8));
            __m128i y0 = _mm_loadu_si128((const __m128i *)r1);
            __m128i y1 = _mm_loadu_si128((const __m128i *)(r1 + 8));
            a0 = _mm_add_epi32(a0, _mm_madd_epi16(_mm_unpacklo_epi16(x0, y0), wp));
            a1 = _mm_add_epi32(a1, _mm_madd_epi16(_mm_unpackhi_epi16(x0, y0), wp));
            a2 = _mm_add_epi32(a2, _mm_madd_epi16(_mm_unpacklo_epi16(x1, y1), wp));
            a3 = _mm_add_epi32(a3, _mm_madd_epi16(_mm_unpackhi_epi16(x1, y1), wp));
        }
        __m128i p0 = _mm_packs_epi32(_mm_sra_epi32(a0, sh), _mm_sra_epi32(a1, sh));
        __m128i p1 = _mm_packs_epi32(_mm_sra_epi32(a2, sh), _mm_sra_epi32(a3, sh));
        _mm_storeu_si128((__m128i *)(out + i), _mm_packus_epi16(p0, p1));
    }
    return i;
}

/* AVX2: vpmovzxbw widens 16 bytes in order, and the in-lane unpacks and packs undo each other's
 * lane split, so results land in order without a permute (except the final byte pack). */
__attribute__((target("avx2"))) static size_t u8_to_i16_avx2(const uint8_t *const *rows,
                                                             const uint32_t *pairs, uint32_t count,
                                                             size_t i, size_t n, int shift,
                                                             int16_t *out)
{
    const __m256i half = _mm256_set1_epi32(1 << (shift - 1));
    const __m128i sh = _mm_cvtsi32_si128(shift);
    for (; i + 32 <= n; i += 32) {
        __m256i a0 = half, a1 = half, a2 = half, a3 = half;
        for (uint32_t k = 0; k < count; k += 2) {
            const uint8_t *r1 = k + 1 < count ? rows[k + 1] : rows[k];
            __m256i wp = _mm256_set1_epi32((int32_t)pairs[k / 2]);
            __m256i x0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(rows[k] + i)));
            __m256i x1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(rows[k] + i + 16)));
            __m256i y0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(r1 + i)));
            __m256i y1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(r1 + i + 16)));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, y0), wp));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, y0), wp));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_unpacklo_epi16(x1, y1), wp));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_unpackhi_epi16(x1, y1), wp));
        }
        __m256i p0 = _mm256_packs_epi32(_mm256_sra_epi32(a0, sh), _mm256_sra_epi32(a1, sh));
        __m256i p1 = _mm256_packs_epi32(_mm256_sra_epi32(a2, sh), _mm256_sra_epi32(a3, sh));
        _mm256_storeu_si256((__m256i *)(out + i), p0);
        _mm256_storeu_si256((__m256i *)(out + i + 16), p1);
    }
    return i;
}

__attribute__((target("avx2"))) static size_t i16_to_u8_avx2(const int16_t *base, size_t stride,
                                                             const uint32_t *pairs, uint32_t count,
                                                             size_t i, size_t n, int shift,
                                                             uint8_t *out)
{
    const __m256i half = _mm256_set1_epi32(1 << (shift - 1));
    const __m128i sh = _mm_cvtsi32_si128(shift);
    for (; i + 32 <= n; i += 32) {
        __m256i a0 = half, a1 = half, a2 = half, a3 = half;
        for (uint32_t k = 0; k < count; k += 2) {
            const int16_t *r0 = base + k * stride + i;
            const int16_t *r1 = k + 1 < count ? r0 + stride : r0;
            __m256i wp = _mm256_set1_epi32((int32_t)pairs[k / 2]);
            __m256i x0 = _mm256_loadu_si256((const __m256i *)r0);
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(r0 + 16));
            __m256i y0 = _mm256_loadu_si256((const __m256i *)r1);
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(r1 + 16));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, y0), wp));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, y0), wp));
            a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_unpacklo_epi16(x1, y1), wp));
            a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_unpackhi_epi16(x1, y1), wp));
        }
        __m256i p0 = _mm256_packs_epi32(_mm256_sra_epi32(a0, sh), _mm256_sra_epi32(a1, sh));
        __m256i p1 = _mm256_packs_epi32(_mm256_sra_epi32(a2, sh), _mm256_sra_epi32(a3, sh));
        /* packus works per 128-bit lane: quads come out 0, 2, 1, 3. */
        __m256i u = _mm256_permute4x64_epi64(_mm256_packus_epi16(p0, p1), 0xD8);
        _mm256_storeu_si256((__m256i *)(out + i), u);
    }
    return i;
}
#endif

#ifdef RK_X86
/* Four pixels of each of the 8 rows per step. A row's 4 pixels (24 bytes) are spread to a
 * 64-bit slot each, the 8 x 4 slots transposed (unpacks within lanes, then lane swaps), and
 * each pixel's 8 slots packed back to 48 bytes: two 32-byte stores, the second overwriting
 * the first's spare 8 bytes. */
__attribute__((target("avx2"))) static size_t
rows_to_cols3_avx2(const int16_t *rows, size_t rowlen, size_t width, int16_t *block, size_t stride)
{
    /* After the qword permute, lane 0 holds pixels 0-1 at bytes 0 and 6, lane 1 pixels 2-3 at
     * bytes 4 and 10 (source bytes 8-23). */
    const __m256i spread = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, -1, -1, 6, 7, 8, 9, 10, 11, -1, -1, 4,
                                            5, 6, 7, 8, 9, -1, -1, 10, 11, 12, 13, 14, 15, -1, -1);
    const __m256i pack = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, -1, -1, -1, -1, 0,
                                          1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, -1, -1, -1, -1);
    const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    size_t x = 0;
    for (; x + 4 <= width; x += 4) {
        __m256i e[8], lo[4], hi[4];
        for (int j = 0; j < 8; j++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(rows + (size_t)j * rowlen + x * 3));
            e[j] = _mm256_shuffle_epi8(_mm256_permute4x64_epi64(v, 0x94), spread);
        }
        for (int j = 0; j < 4; j++) {
            lo[j] = _mm256_unpacklo_epi64(e[2 * j], e[2 * j + 1]); /* pixels 0 | 2 */
            hi[j] = _mm256_unpackhi_epi64(e[2 * j], e[2 * j + 1]); /* pixels 1 | 3 */
        }
        __m256i px[4][2] = {
            {_mm256_permute2x128_si256(lo[0], lo[1], 0x20),
             _mm256_permute2x128_si256(lo[2], lo[3], 0x20)},
            {_mm256_permute2x128_si256(hi[0], hi[1], 0x20),
             _mm256_permute2x128_si256(hi[2], hi[3], 0x20)},
            {_mm256_permute2x128_si256(lo[0], lo[1], 0x31),
             _mm256_permute2x128_si256(lo[2], lo[3], 0x31)},
            {_mm256_permute2x128_si256(hi[0], hi[1], 0x31),
             _mm256_permute2x128_si256(hi[2], hi[3], 0x31)},
        };
        for (int p = 0; p < 4; p++) {
            int16_t *d = block + (x + (size_t)p) * stride;
            for (int h = 0; h < 2; h++) {
                __m256i v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(px[p][h], pack), join);
                _mm256_storeu_si256((__m256i *)(d + 12 * h), v);
            }
        }
    }
    return x;
}

/* Four rows of the 8 columns per step: each column's 4 pixels spread to 32-bit slots, two
 * 4 x 4 transposes, and each row's 8 slots packed back to 24 bytes. */
__attribute__((target("avx2"))) static uint32_t
cols_to_rows3_avx2(const uint8_t *cols, size_t cstride, uint32_t rows, uint8_t *out, size_t ostride)
{
    const __m128i spread = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    const __m128i pack = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    uint32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        __m128i d[8], t[8], q[2][4];
        for (int j = 0; j < 8; j++)
            d[j] = _mm_shuffle_epi8(
                _mm_loadu_si128((const __m128i *)(cols + (size_t)j * cstride + (size_t)r * 3)),
                spread);
        for (int h = 0; h < 2; h++) {
            const __m128i *c = d + 4 * h;
            t[4 * h] = _mm_unpacklo_epi32(c[0], c[1]);
            t[4 * h + 1] = _mm_unpacklo_epi32(c[2], c[3]);
            t[4 * h + 2] = _mm_unpackhi_epi32(c[0], c[1]);
            t[4 * h + 3] = _mm_unpackhi_epi32(c[2], c[3]);
            q[h][0] = _mm_unpacklo_epi64(t[4 * h], t[4 * h + 1]);
            q[h][1] = _mm_unpackhi_epi64(t[4 * h], t[4 * h + 1]);
            q[h][2] = _mm_unpacklo_epi64(t[4 * h + 2], t[4 * h + 3]);
            q[h][3] = _mm_unpackhi_epi64(t[4 * h + 2], t[4 * h + 3]);
        }
        for (int k = 0; k < 4; k++) {
            __m128i a = _mm_shuffle_epi8(q[0][k], pack), b = _mm_shuffle_epi8(q[1][k], pack);
            uint8_t *o = out + (size_t)(r + (uint32_t)k) * ostride;
            _mm_storeu_si128((__m128i *)o, _mm_or_si128(a, _mm_slli_si128(b, 12)));
            _mm_storel_epi64((__m128i *)(o + 16), _mm_srli_si128(b, 4));
        }
    }
    return r;
}
#endif

size_t rk_rows_to_cols3(const int16_t *rows, size_t rowlen, size_t width, int16_t *block,
                        size_t stride)
{
#ifdef RK_X86
    if (rk_level() == RK_AVX2)
        return rows_to_cols3_avx2(rows, rowlen, width, block, stride);
#endif
    (void)rows, (void)rowlen, (void)width, (void)block, (void)stride;
    return 0;
}

uint32_t rk_cols_to_rows3(const uint8_t *cols, size_t cstride, uint32_t rows, uint8_t *out,
                          size_t ostride)
{
#ifdef RK_X86
    if (rk_level() == RK_AVX2)
        return cols_to_rows3_avx2(cols, cstride, rows, out, ostride);
#endif
    (void)cols, (void)cstride, (void)rows, (void)out, (void)ostride;
    return 0;
}

void rk_rows_u8_to_i16(const uint8_t *const *rows, const int16_t *w, uint32_t count, size_t n,
                       int shift, int16_t *out)
{
    size_t done = 0;
#ifdef RK_X86
    enum rk_level level = rk_level();
    uint32_t pairs[RK_MAX_PAIRS];
    if (level != RK_C && count <= 2 * RK_MAX_PAIRS) {
        pairs_of(w, count, pairs);
        if (level == RK_AVX2) {
            done = u8_to_i16_avx2(rows, pairs, count, done, n, shift, out);
            /* The tail as one more vector ending at n: each sample is computed on its own, so
             * those done twice come out the same, and no sample is left to the scalar loop. */
            if (done < n && n >= 32)
                done = u8_to_i16_avx2(rows, pairs, count, n - 32, n, shift, out);
        }
        done = u8_to_i16_sse2(rows, pairs, count, done, n, shift, out);
    }
#endif
    u8_to_i16_c(rows, w, count, done, n, shift, out);
}

void rk_rows_i16_to_u8(const int16_t *base, size_t stride, const int16_t *w, uint32_t count,
                       size_t n, int shift, uint8_t *out)
{
    size_t done = 0;
#ifdef RK_X86
    enum rk_level level = rk_level();
    uint32_t pairs[RK_MAX_PAIRS];
    if (level != RK_C && count <= 2 * RK_MAX_PAIRS) {
        pairs_of(w, count, pairs);
        if (level == RK_AVX2) {
            done = i16_to_u8_avx2(base, stride, pairs, count, done, n, shift, out);
            if (done < n && n >= 32) /* the tail, as above */
                done = i16_to_u8_avx2(base, stride, pairs, count, n - 32, n, shift, out);
        }
        done = i16_to_u8_sse2(base, stride, pairs, count, done, n, shift, out);
    }
#endif
    i16_to_u8_c(base, stride, w, count, done, n, shift, out);
}
