/* Test helpers: mkdir -p, decoding with libraries independent of Tessera's readers, pixel
 * comparison. */
#include "testutil.h"

#include "core/app.h"
#include "grid.h"
#include "util/status.h"

/* jpeglib.h uses FILE without including stdio.h. */
#include <stdio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <webp/decode.h>

int tu_mkdirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            buf[i] = saved;
        }
    }
    return 0;
}

struct tu_jerr {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
};

static void tu_jpeg_error_exit(j_common_ptr cinfo)
{
    longjmp(((struct tu_jerr *)cinfo->err)->jump, 1);
}

static void tu_jpeg_silent(j_common_ptr cinfo, int level)
{
    (void)cinfo, (void)level;
}

static int tu_decode_jpeg(const uint8_t *data, size_t len, struct ts_image *out)
{
    struct jpeg_decompress_struct cinfo;
    struct tu_jerr jerr;
    struct ts_image img = {0};

    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = tu_jpeg_error_exit;
    jerr.mgr.emit_message = tu_jpeg_silent;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        ts_image_free(out);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (ts_image_alloc(&img, cinfo.output_width, cinfo.output_height,
                       (uint32_t)cinfo.output_components) != TS_OK) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    /* out owns the pixels from here, so the error path can free them. */
    *out = img;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = ts_image_row(out, cinfo.output_scanline);
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

struct tu_mem {
    const uint8_t *data;
    size_t len, pos;
};

static void tu_png_read(png_structp png, png_bytep dst, png_size_t n)
{
    struct tu_mem *m = png_get_io_ptr(png);
    if (n > m->len - m->pos)
        png_error(png, "truncated");
    memcpy(dst, m->data + m->pos, n);
    m->pos += n;
}

static int tu_decode_png(const uint8_t *data, size_t len, struct ts_image *out)
{
    struct tu_mem mem = {data, len, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    struct ts_image img = {0};

    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        ts_image_free(out);
        return -1;
    }
    png_set_read_fn(png, &mem, tu_png_read);
    png_read_info(png, info);
    png_set_expand(png);
    png_set_scale_16(png);
    png_read_update_info(png, info);
    if (png_get_interlace_type(png, info) != PNG_INTERLACE_NONE)
        png_error(png, "interlaced PNG not supported by the test decoder");
    if (ts_image_alloc(&img, png_get_image_width(png, info), png_get_image_height(png, info),
                       png_get_channels(png, info)) != TS_OK)
        png_error(png, "alloc");
    *out = img;
    for (uint32_t y = 0; y < out->height; y++)
        png_read_row(png, ts_image_row(out, y), NULL);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

static int tu_decode_webp(const uint8_t *data, size_t len, struct ts_image *out)
{
    WebPBitstreamFeatures f;
    uint32_t c;
    size_t size;
    if (WebPGetFeatures(data, len, &f) != VP8_STATUS_OK)
        return -1;
    c = f.has_alpha ? 4 : 3;
    if (ts_image_alloc(out, (uint32_t)f.width, (uint32_t)f.height, c) != TS_OK)
        return -1;
    size = out->stride * out->height;
    if (!(c == 4 ? WebPDecodeRGBAInto(data, len, out->data, size, (int)out->stride)
                 : WebPDecodeRGBInto(data, len, out->data, size, (int)out->stride))) {
        ts_image_free(out);
        return -1;
    }
    return 0;
}

int tu_decode(const uint8_t *data, size_t len, struct ts_image *out)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    out->data = NULL;
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return tu_decode_jpeg(data, len, out);
    if (len >= 8 && memcmp(data, png_sig, 8) == 0)
        return tu_decode_png(data, len, out);
    if (len >= 12 && memcmp(data, "RIFF", 4) == 0 && memcmp(data + 8, "WEBP", 4) == 0)
        return tu_decode_webp(data, len, out);
    return -1;
}

int tu_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

bool tu_same_image(const struct ts_image *a, const struct ts_image *b, char *why, size_t cap)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels) {
        if (why)
            snprintf(why, cap, "%ux%ux%u against %ux%ux%u", a->width, a->height, a->channels,
                     b->width, b->height, b->channels);
        return false;
    }
    for (uint32_t y = 0; y < a->height; y++)
        if (memcmp(ts_image_row(a, y), ts_image_row(b, y), (size_t)a->width * a->channels)) {
            if (why)
                snprintf(why, cap, "row %u differs", y);
            return false;
        }
    return true;
}

int tu_pixel_diff(const struct ts_image *img, uint32_t x, uint32_t y, const uint8_t rgb[3])
{
    const uint8_t *p;
    int worst = 0;
    if (x >= img->width || y >= img->height)
        return 256;
    p = ts_image_row(img, y) + (size_t)x * img->channels;
    if (img->channels <= 2) {
        int d = abs((int)p[0] - (int)grid_luma(rgb));
        return d;
    }
    for (int c = 0; c < 3; c++) {
        int d = abs((int)p[c] - (int)rgb[c]);
        if (d > worst)
            worst = d;
    }
    return worst;
}

/* Reads one whitespace-delimited header number of a binary PNM. */
static int pnm_number(FILE *f, uint32_t *v)
{
    int c = fgetc(f);
    while (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '#') {
        if (c == '#')
            while (c != '\n' && c != EOF)
                c = fgetc(f);
        c = fgetc(f);
    }
    if (c < '0' || c > '9')
        return -1;
    *v = 0;
    while (c >= '0' && c <= '9' && *v < 100000000u) {
        *v = *v * 10u + (uint32_t)(c - '0');
        c = fgetc(f);
    }
    return 0;
}

/* Loads a binary PGM (P5) or PPM (P6), 8- or 16-bit, 16-bit rounded to 8. */
int tu_load_pnm(const char *path, struct ts_image *out)
{
    FILE *f = fopen(path, "rb");
    char magic[2];
    uint32_t w, h, maxval, ch;
    int rc = -1;
    out->data = NULL;
    if (!f)
        return -1;
    if (fread(magic, 1, 2, f) != 2 || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '6') ||
        pnm_number(f, &w) || pnm_number(f, &h) || pnm_number(f, &maxval) || maxval == 0 ||
        maxval > 65535)
        goto done;
    ch = magic[1] == '5' ? 1 : 3;
    if (ts_image_alloc(out, w, h, ch) != TS_OK)
        goto done;
    for (uint32_t y = 0; y < h; y++) {
        uint8_t *row = ts_image_row(out, y);
        for (size_t i = 0; i < (size_t)w * ch; i++) {
            int hi = maxval > 255 ? fgetc(f) : 0, lo = fgetc(f);
            if (hi == EOF || lo == EOF) {
                ts_image_free(out);
                goto done;
            }
            uint32_t v = ((uint32_t)hi << 8) | (uint32_t)lo;
            row[i] = (uint8_t)((v * 255u + maxval / 2) / maxval);
        }
    }
    rc = 0;
done:
    fclose(f);
    return rc;
}

int tu_write_ppm(const char *path, const struct ts_image *img)
{
    if (img->channels != 3)
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fprintf(f, "P6\n%u %u\n255\n", img->width, img->height) > 0;
    for (uint32_t y = 0; y < img->height && ok; y++)
        ok = fwrite(ts_image_row(img, y), 1, (size_t)img->width * 3, f) == (size_t)img->width * 3;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* ---- a JPEG 2000 block store over an LRU of the test's own ---- */

static bool tu_block_get(void *ctx, const char *key, struct ts_buf *out)
{
    struct tu_block_cache *c = ctx;
    bool hit = false;
    pthread_rwlock_rdlock(&c->lock);
    if (c->lru)
        hit = ts_lru_get(c->lru, key, out);
    pthread_rwlock_unlock(&c->lock);
    return hit;
}

static void tu_block_put(void *ctx, const char *key, const void *value, size_t len)
{
    struct tu_block_cache *c = ctx;
    pthread_rwlock_rdlock(&c->lock);
    if (c->lru)
        ts_lru_put(c->lru, key, value, len);
    pthread_rwlock_unlock(&c->lock);
}

int tu_block_cache_init(struct tu_block_cache *c, size_t budget)
{
    memset(c, 0, sizeof *c);
    if (pthread_rwlock_init(&c->lock, NULL) != 0)
        return -1;
    if (ts_lru_create(budget, 4, &c->lru) != TS_OK) {
        pthread_rwlock_destroy(&c->lock);
        return -1;
    }
    c->budget = budget;
    c->store.ctx = c;
    c->store.get = tu_block_get;
    c->store.put = tu_block_put;
    c->store.max_value = budget / 4 / 2;
    return 0;
}

void tu_block_cache_empty(struct tu_block_cache *c)
{
    struct ts_lru *fresh = NULL;
    if (ts_lru_create(c->budget, 4, &fresh) != TS_OK)
        fresh = NULL;
    pthread_rwlock_wrlock(&c->lock);
    ts_lru_destroy(c->lru);
    c->lru = fresh;
    pthread_rwlock_unlock(&c->lock);
}

void tu_block_cache_stats(struct tu_block_cache *c, struct ts_lru_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&c->lock);
    if (c->lru)
        ts_lru_stats(c->lru, out);
    pthread_rwlock_unlock(&c->lock);
}

void tu_block_cache_free(struct tu_block_cache *c)
{
    ts_lru_destroy(c->lru);
    c->lru = NULL;
    pthread_rwlock_destroy(&c->lock);
}

int tu_open_ro(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC);
}

int tu_copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = NULL;
    char buf[65536];
    size_t n;
    int rc = -1;
    if (in && (out = fopen(dst, "wb")) != NULL) {
        rc = 0;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, n, out) != n)
                rc = -1;
        if (ferror(in))
            rc = -1;
    }
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

double tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void tu_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int tu_read_file(const char *path, struct ts_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = ts_buf_append(out, chunk, n) == 0 ? 0 : -1;
    if (ferror(f))
        rc = -1;
    fclose(f);
    return rc;
}

struct ts_app *tu_app_new(const char *root)
{
    if (tu_mkdirs(root) != 0)
        return NULL;
    struct ts_app *app = calloc(1, sizeof *app);
    if (!app)
        return NULL;
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    snprintf(cfg.root, sizeof cfg.root, "%s", root);
    struct ts_err err = {0};
    if (ts_app_init(app, &cfg, &err) != TS_OK) {
        fprintf(stderr, "app on %s: %s\n", root, err.msg);
        tu_app_free(app);
        return NULL;
    }
    return app;
}

void tu_app_free(struct ts_app *app)
{
    if (app)
        ts_app_free(app);
    free(app);
}

/* The state and parent of a process, from /proc/PID/stat: 0, or -1 when it cannot be read. */
static int proc_stat(const char *pid, char *state, int *ppid)
{
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command may hold spaces and parentheses: fields resume after the last ')'. */
    char *close_paren = strrchr(buf, ')');
    return close_paren && sscanf(close_paren + 1, " %c %d", state, ppid) == 2 ? 0 : -1;
}

int tu_parent_of(int pid)
{
    char name[32], state;
    int ppid;
    snprintf(name, sizeof name, "%d", pid);
    return proc_stat(name, &state, &ppid) == 0 ? ppid : -1;
}

int tu_count_children(int parent, int *zombies, int *live)
{
    return tu_list_children(parent, zombies, live, NULL, 0);
}

int tu_list_children(int parent, int *zombies, int *live, int *pids, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    *zombies = *live = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char state;
        int ppid;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (proc_stat(e->d_name, &state, &ppid) != 0 || ppid != parent)
            continue;
        if (state == 'Z')
            (*zombies)++;
        else if (++*live <= max)
            pids[*live - 1] = atoi(e->d_name);
    }
    closedir(d);
    return 0;
}
