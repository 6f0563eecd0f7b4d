/* Times the float reference resampler (tests/support/resample_ref.c) against render_resample_rect
 * on the same inputs, interleaved run by run so machine noise hits both alike; prints the median
 * of each, source megapixels per second, the speed-up, and the PSNR of the new output against
 * the old. Usage: resample_bench [repeats [case]] (default 9 repeats, every case; a case is
 * named as printed, e.g. 4096x4096x3->800x800). */
#include "render/render.h"
#include "resample_ref.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Smooth gradients, sharp edges and noise: a photo-like mix where filter quality shows. */
static void make_source(struct ts_image *img, uint32_t w, uint32_t h, uint32_t ch)
{
    uint32_t rng = 2024;
    if (ts_image_alloc(img, w, h, ch)) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = ts_image_row(img, y);
        for (uint32_t x = 0; x < w; x++) {
            for (uint32_t c = 0; c < ch; c++) {
                rng = rng * 1664525u + 1013904223u;
                double v = 128 + 90 * sin(x * (0.01 + 0.004 * c) + y * 0.013) +
                           (((x / 97 + y / 61) & 1) ? 20 : -20) + (int)(rng >> 28) - 8;
                if (ch == 4 && c == 3)
                    v = 255 - (x * 255.0 / w) * 0.6;
                row[(size_t)x * ch + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}

static double psnr(const struct ts_image *a, const struct ts_image *b)
{
    double se = 0;
    size_t n = (size_t)a->width * a->channels;
    for (uint32_t y = 0; y < a->height; y++) {
        const uint8_t *p = ts_image_row(a, y), *q = ts_image_row(b, y);
        for (size_t i = 0; i < n; i++)
            se += (double)(p[i] - q[i]) * (p[i] - q[i]);
    }
    se /= (double)n * a->height;
    return se == 0 ? INFINITY : 10 * log10(255.0 * 255.0 / se);
}

struct bench_case {
    uint32_t sw, sh, ch, dw, dh;
};

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 9;
    static const struct bench_case cases[] = {
        {4096, 4096, 3, 200, 200}, {4096, 4096, 3, 800, 800},   {4096, 4096, 3, 2000, 2000},
        {1000, 1000, 3, 800, 800}, {1000, 1000, 3, 2400, 2400}, {5000, 5000, 3, 4000, 4000},
        {1500, 1000, 3, 800, 533}, {4096, 4096, 1, 800, 800},   {4096, 4096, 4, 800, 800},
        {312, 312, 3, 200, 200},   {313, 176, 3, 200, 113},
    };
    if (repeats < 1)
        repeats = 1;
    double *t_old = calloc(repeats, sizeof *t_old), *t_new = calloc(repeats, sizeof *t_new);
    printf("%-24s %10s %10s %9s %9s %8s %8s\n", "case", "old ms", "new ms", "old MP/s", "new MP/s",
           "speedup", "PSNR dB");
    /* RESAMPLE_BENCH_NEW_ONLY=1 skips the reference, for profiling the new code alone. */
    const char *only = getenv("RESAMPLE_BENCH_NEW_ONLY");
    bool new_only = only && *only == '1';
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bench_case *c = &cases[i];
        struct ts_image src, a, b;
        char name[64];
        snprintf(name, sizeof name, "%ux%ux%u->%ux%u", c->sw, c->sh, c->ch, c->dw, c->dh);
        if (argc > 2 && strcmp(argv[2], name) != 0)
            continue;
        make_source(&src, c->sw, c->sh, c->ch);
        for (int r = 0; r < repeats; r++) {
            double t0 = now();
            if ((new_only ? render_resize : ref_resize)(&src, c->dw, c->dh, &a))
                return 1;
            double t1 = now();
            if (render_resize(&src, c->dw, c->dh, &b))
                return 1;
            double t2 = now();
            t_old[r] = t1 - t0;
            t_new[r] = t2 - t1;
            if (r + 1 < repeats) {
                ts_image_free(&a);
                ts_image_free(&b);
            }
        }
        qsort(t_old, repeats, sizeof *t_old, cmp_double);
        qsort(t_new, repeats, sizeof *t_new, cmp_double);
        double mo = t_old[repeats / 2], mn = t_new[repeats / 2];
        double mp = (double)c->sw * c->sh / 1e6;
        printf("%-24s %10.2f %10.2f %9.1f %9.1f %7.2fx %8.2f\n", name, mo * 1e3, mn * 1e3, mp / mo,
               mp / mn, mo / mn, psnr(&a, &b));
        ts_image_free(&a);
        ts_image_free(&b);
        ts_image_free(&src);
    }
    free(t_old);
    free(t_new);
    return 0;
}
