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
