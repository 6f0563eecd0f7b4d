/* EXIF orientation tests: the eight orientations read upright, regions map, bad tags are ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "image/exif.h"
#include "image/reader.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ORIENT_DIR TESSERA_TEST_DATA "/exif-orientation"
#define WORK TESSERA_TEST_WORK

static void orient_path(char *buf, size_t n, int o)
{
    snprintf(buf, n, ORIENT_DIR "/coffee-orient-%d.jpg", o);
}

static struct ts_reader *open_ok(const char *path)
{
    struct ts_reader *r = NULL;
    struct ts_err err = {0};
    int rc = ts_reader_open(path, &r, &err);
    if (rc != TS_OK)
        fail_msg("open %s: %d %s", path, rc, err.msg);
    return r;
}

static struct ts_image read_ok(struct ts_reader *r, const struct ts_read_req *q)
{
    struct ts_image img;
    struct ts_err err = {0};
    int rc = ts_reader_read(r, q, &img, &err);
    if (rc != TS_OK)
        fail_msg("read: %d %s", rc, err.msg);
    return img;
}

static double mean_abs_diff(const struct ts_image *a, const struct ts_image *b)
{
    uint64_t sum = 0;
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    for (uint32_t y = 0; y < a->height; y++)
        for (size_t x = 0; x < (size_t)a->width * a->channels; x++)
            sum += (uint64_t)abs(ts_image_row(a, y)[x] - ts_image_row(b, y)[x]);
    return (double)sum / ((double)a->width * a->height * a->channels);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void test_all_orientations_read_upright_and_alike(void **s)
{
    (void)s;
    char path[512];
    struct ts_read_req q = {.w = 300, .h = 200};
    struct ts_reader *r1 = open_ok(ORIENT_DIR "/coffee-orient-1.jpg");
    struct ts_image up = read_ok(r1, &q);
    for (int o = 1; o <= 8; o++) {
        orient_path(path, sizeof path, o);
        struct ts_reader *r = open_ok(path);
        assert_int_equal(r->info.width, 300);
        assert_int_equal(r->info.height, 200);
        assert_int_equal(r->info.levels[0].width, 300);
        assert_int_equal(r->info.levels[0].height, 200);
        struct ts_image img = read_ok(r, &q);
        double d = mean_abs_diff(&img, &up);
        print_message("orientation %d: mean abs diff %.2f\n", o, d);
        assert_true(d < 6.0);
        ts_image_free(&img);
        ts_reader_close(r);
    }
    ts_image_free(&up);
    ts_reader_close(r1);
}

/* The test above can fail: the stored pixels of a turned file, shown as stored, differ a lot. */
static void test_stored_pixels_of_turned_file_differ_from_upright(void **s)
{
    (void)s;
    size_t len;
    uint8_t *bytes = slurp(ORIENT_DIR "/coffee-orient-3.jpg", &len);
    struct ts_image raw, up;
    struct ts_read_req q = {.w = 300, .h = 200};
    struct ts_reader *r1 = open_ok(ORIENT_DIR "/coffee-orient-1.jpg");
    assert_int_equal(tu_decode(bytes, len, &raw), 0); /* libjpeg alone: ignores EXIF */
    up = read_ok(r1, &q);
    assert_true(mean_abs_diff(&raw, &up) > 20.0);
    ts_image_free(&raw), ts_image_free(&up);
    ts_reader_close(r1);
    free(bytes);
}

static void test_region_of_turned_file_matches_upright_region(void **s)
{
    (void)s;
    char path[512];
    struct ts_read_req q = {.x = 170, .y = 30, .w = 120, .h = 90};
    struct ts_reader *r1 = open_ok(ORIENT_DIR "/coffee-orient-1.jpg");
    struct ts_image up = read_ok(r1, &q);
    for (int o = 2; o <= 8; o++) {
        orient_path(path, sizeof path, o);
        struct ts_reader *r = open_ok(path);
        struct ts_image img = read_ok(r, &q);
        double d = mean_abs_diff(&img, &up);
        print_message("orientation %d region: mean abs diff %.2f\n", o, d);
        assert_true(d < 6.0);
        ts_image_free(&img);
        ts_reader_close(r);
    }
    ts_image_free(&up);
    ts_reader_close(r1);
}

static void test_scaled_read_of_turned_file_stays_upright(void **s)
{
    (void)s;
    char path[512];
    /* DCT scaling may deliver anything from 75x50 up; upright means wider than tall. */
    struct ts_read_req q = {.w = 300, .h = 200, .min_w = 75, .min_h = 50};
    struct ts_reader *r1 = open_ok(ORIENT_DIR "/coffee-orient-1.jpg");
    struct ts_image up = read_ok(r1, &q);
    assert_true(up.width < 300);
    for (int o = 5; o <= 8; o++) {
        orient_path(path, sizeof path, o);
        struct ts_reader *r = open_ok(path);
        struct ts_image img = read_ok(r, &q);
        assert_true(img.width >= 75 && img.height >= 50);
        assert_int_equal(img.width, up.width);
        assert_int_equal(img.height, up.height);
        assert_true(mean_abs_diff(&img, &up) < 8.0);
        ts_image_free(&img);
        ts_reader_close(r);
    }
    ts_image_free(&up);
    ts_reader_close(r1);
}

/* Stored 3x2: A B C / D E F, one-channel pixel values 1..6. */
static void check_apply(uint32_t o, uint32_t w, uint32_t h, const char *want)
{
    struct ts_image st, out;
    struct ts_err err = {0};
    assert_int_equal(ts_image_alloc(&st, 3, 2, 1), TS_OK);
    for (uint8_t i = 0; i < 6; i++)
        st.data[i] = (uint8_t)('A' + i);
    assert_int_equal(ts_exif_apply(o, &st, &out, &err), TS_OK);
    assert_int_equal(out.width, w);
    assert_int_equal(out.height, h);
    char got[8] = {0};
    for (uint32_t y = 0; y < h; y++)
        memcpy(got + y * w, ts_image_row(&out, y), w);
    assert_string_equal(got, want);
    ts_image_free(&st), ts_image_free(&out);
}

static void test_apply_follows_the_exif_definitions(void **s)
{
    (void)s;
    check_apply(1, 3, 2, "ABCDEF");
    check_apply(2, 3, 2, "CBAFED"); /* mirrored left-right */
    check_apply(3, 3, 2, "FEDCBA"); /* turned 180 */
    check_apply(4, 3, 2, "DEFABC"); /* mirrored top-bottom */
    check_apply(5, 2, 3, "ADBECF"); /* transposed */
    check_apply(6, 2, 3, "DAEBFC"); /* needs 90 clockwise */
    check_apply(7, 2, 3, "FCEBDA"); /* transverse */
    check_apply(8, 2, 3, "CFBEAD"); /* needs 90 counter-clockwise */
}

static void test_stored_req_maps_region_and_minimums(void **s)
{
    (void)s;
    /* Stored 200x300 turned by 6 shows as 300x200; upright x runs down stored y backwards. */
    struct ts_read_req up = {.x = 10, .y = 20, .w = 100, .h = 50, .min_w = 40, .min_h = 30};
    struct ts_read_req st;
    ts_exif_stored_req(6, 200, 300, &up, &st);
    assert_int_equal(st.x, 20);
    assert_int_equal(st.w, 50);
    assert_int_equal(st.y, 300 - 10 - 100);
    assert_int_equal(st.h, 100);
    assert_int_equal(st.min_w, 30);
    assert_int_equal(st.min_h, 40);
    ts_exif_stored_req(3, 300, 200, &up, &st);
    assert_int_equal(st.x, 300 - 10 - 100);
    assert_int_equal(st.y, 200 - 20 - 50);
    assert_int_equal(st.w, 100);
    assert_int_equal(st.min_w, 40);
}

/* "Exif\0\0" + TIFF header + IFD0 with one entry (and one before it). */
static size_t make_app1(uint8_t *b, bool le, uint16_t type, uint16_t value)
{
    size_t n = 0;
#define P16(v)                                                                                     \
    (le ? (b[n] = (uint8_t)(v), b[n + 1] = (uint8_t)((v) >> 8))                                    \
        : (b[n] = (uint8_t)((v) >> 8), b[n + 1] = (uint8_t)(v)),                                   \
     n += 2)
#define P32(v) (le ? (P16((v)&0xffff), P16((v) >> 16)) : (P16((v) >> 16), P16((v)&0xffff)))
    memcpy(b, "Exif\0\0", 6);
    n = 6;
    b[n++] = le ? 'I' : 'M';
    b[n++] = le ? 'I' : 'M';
    P16(42);
    P32(8u);
    P16(2);                                /* entries */
    P16(0x010f), P16(2), P32(4u), P32(0u); /* Make, an ASCII tag to skip */
    P16(0x0112), P16(type), P32(1u), P16(value), P16(0);
    P32(0u); /* no next IFD */
#undef P16
#undef P32
    return n;
}

static void test_orientation_parsed_in_both_byte_orders(void **s)
{
    (void)s;
    uint8_t b[64];
    size_t n = make_app1(b, true, 3, 6);
    assert_int_equal(ts_exif_orientation(b, n), 6);
    n = make_app1(b, false, 3, 8);
    assert_int_equal(ts_exif_orientation(b, n), 8);
    n = make_app1(b, false, 3, 2);
    assert_int_equal(ts_exif_orientation(b, n), 2);
}

static void test_malformed_exif_is_ignored(void **s)
{
    (void)s;
    uint8_t b[64], c[64];
    size_t n = make_app1(b, true, 3, 6);
    /* Every truncation: either the whole entry is there (6) or nothing is believed (1). */
    for (size_t cut = 0; cut < n; cut++) {
        uint32_t o = ts_exif_orientation(b, cut);
        assert_true(o == 1 || (o == 6 && cut >= 6 + 8 + 2 + 24));
    }
    assert_int_equal(ts_exif_orientation(b, 6 + 8 + 2 + 24 - 1), 1);
    memcpy(c, b, n), c[10] = 0xf0, c[11] = 0xff, c[12] = 0xff, c[13] = 0xff; /* IFD far away */
    assert_int_equal(ts_exif_orientation(c, n), 1);
    memcpy(c, b, n), c[10] = 3, c[11] = 0; /* IFD inside the header */
    assert_int_equal(ts_exif_orientation(c, n), 1);
    /* 65535 entries claimed and none is the orientation: the walk stops at the end. */
    memcpy(c, b, n), c[14] = 0xff, c[15] = 0xff, c[28] = 0x13;
    assert_int_equal(ts_exif_orientation(c, n), 1);
    /* ... while an intact entry before the end is still believed. */
    memcpy(c, b, n), c[14] = 0xff, c[15] = 0xff;
    assert_int_equal(ts_exif_orientation(c, n), 6);
    memcpy(c, b, n), c[6] = 'X'; /* bad byte order mark */
    assert_int_equal(ts_exif_orientation(c, n), 1);
    memcpy(c, b, n), c[8] = 43; /* not 42 */
    assert_int_equal(ts_exif_orientation(c, n), 1);
    memcpy(c, b, n), c[0] = 'e'; /* not Exif */
    assert_int_equal(ts_exif_orientation(c, n), 1);
    n = make_app1(b, true, 4, 6); /* LONG, not SHORT */
    assert_int_equal(ts_exif_orientation(b, n), 1);
    n = make_app1(b, true, 3, 9); /* out of range */
    assert_int_equal(ts_exif_orientation(b, n), 1);
    n = make_app1(b, true, 3, 0);
    assert_int_equal(ts_exif_orientation(b, n), 1);
    assert_int_equal(ts_exif_orientation(NULL, 0), 1);
}

/* A real file whose IFD0 offset is corrupted opens as stored, without orientation. */
static void test_jpeg_with_corrupt_exif_opens_as_stored(void **s)
{
    (void)s;
    size_t len, i;
    uint8_t *bytes = slurp(ORIENT_DIR "/coffee-orient-6.jpg", &len);
    for (i = 0; i + 14 < len; i++)
        if (memcmp(bytes + i, "Exif\0\0", 6) == 0)
            break;
    assert_true(i + 14 < len);
    bool le = bytes[i + 6] == 'I';
    /* IFD0 offset -> 0xfffffff0 in either byte order. */
    memset(bytes + i + 10, 0xff, 4);
    bytes[i + 10 + (le ? 0 : 3)] = 0xf0;
    assert_int_equal(tu_mkdirs(WORK), 0);
    FILE *f = fopen(WORK "/corrupt-exif.jpg", "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    fclose(f);
    struct ts_reader *r = open_ok(WORK "/corrupt-exif.jpg");
    assert_int_equal(r->info.width, 200);
    assert_int_equal(r->info.height, 300);
    struct ts_read_req q = {.w = 200, .h = 300};
    struct ts_image img = read_ok(r, &q);
    struct ts_image raw;
    assert_int_equal(tu_decode(bytes, len, &raw), 0);
    assert_memory_equal(img.data, raw.data, (size_t)200 * 300 * 3);
    ts_image_free(&img), ts_image_free(&raw);
    ts_reader_close(r);
    free(bytes);
}

/* An EXIF APP1 payload, big-endian, IFD0 with Artist (inline: 4 bytes or fewer), Copyright (at
 * an offset), Orientation 1, and an ImageDescription whose count runs past the data. */
static size_t exif_payload(uint8_t *b)
{
    static const char rights[] = "CC BY 4.0, the archive";
    size_t n = 0, ifd = 8, entries = 4, data = ifd + 2 + entries * 12 + 4;
    memcpy(b, "Exif\0\0MM\0\x2a\0\0\0\x08", 14);
    n = 6 + ifd;
    uint8_t *t = b + 6;
    t[ifd] = 0, t[ifd + 1] = (uint8_t)entries;
    const struct {
        uint16_t tag, type;
        uint32_t count, value;
    } e[4] = {{0x013B, 2, 4, 0x416C6900},                 /* "Ali\0" inline */
              {0x8298, 2, sizeof rights, (uint32_t)data}, /* at an offset */
              {0x0112, 3, 1, 0x00010000},                 /* orientation 1 */
              {0x010E, 2, 5000, (uint32_t)data}};         /* past the end */
    for (size_t i = 0; i < entries; i++) {
        uint8_t *q = t + ifd + 2 + i * 12;
        q[0] = (uint8_t)(e[i].tag >> 8), q[1] = (uint8_t)e[i].tag;
        q[2] = 0, q[3] = (uint8_t)e[i].type;
        for (int k = 0; k < 4; k++) {
            q[4 + k] = (uint8_t)(e[i].count >> (24 - 8 * k));
            q[8 + k] = (uint8_t)(e[i].value >> (24 - 8 * k));
        }
    }
    memset(t + ifd + 2 + entries * 12, 0, 4);
    memcpy(t + data, rights, sizeof rights);
    n = 6 + data + sizeof rights;
    return n;
}

struct texts {
    char seen[512];
};

static int collect_text(void *ctx, const char *name, const char *value, size_t len)
{
    struct texts *t = ctx;
    size_t used = strlen(t->seen);
    snprintf(t->seen + used, sizeof t->seen - used, "%s=%.*s;", name, (int)strnlen(value, len),
             value);
    return 0;
}

static void test_text_tags_read_inline_and_at_offsets(void **s)
{
    (void)s;
    uint8_t payload[512];
    size_t n = exif_payload(payload);
    struct texts t = {""};
    assert_int_equal(ts_exif_texts(payload, n, collect_text, &t), 0);
    /* The description's count runs past the data: left out, the rest kept. */
    assert_string_equal(t.seen, "creator=Ali;rights=CC BY 4.0, the archive;");
    t.seen[0] = '\0';
    assert_int_equal(ts_exif_texts(payload, 20, collect_text, &t), 0);
    assert_string_equal(t.seen, "");
}

/* An APP13 payload: one 8BIM block (id 0x0404, empty name) of IPTC records: a record-1 field
 * (not text we read), ObjectName, By-line and Caption of record 2. */
static size_t iptc_payload(uint8_t *b)
{
    static const struct {
        uint8_t record, dataset;
        const char *text;
    } rec[] = {{1, 90, "\x1b%G"},
               {2, 5, "Portolan"},
               {2, 80, "Grazioso Benincasa"},
               {2, 120, "A chart of the Mediterranean"}};
    uint8_t iptc[256];
    size_t n = 0;
    for (size_t i = 0; i < sizeof rec / sizeof rec[0]; i++) {
        size_t l = strlen(rec[i].text);
        iptc[n++] = 0x1C, iptc[n++] = rec[i].record, iptc[n++] = rec[i].dataset;
        iptc[n++] = (uint8_t)(l >> 8), iptc[n++] = (uint8_t)l;
        memcpy(iptc + n, rec[i].text, l);
        n += l;
    }
    size_t p = 0;
    memcpy(b, "Photoshop 3.0", 14);
    p = 14;
    memcpy(b + p, "8BIM\x04\x04\0\0", 8); /* id 0x0404, empty name padded to 2 */
    p += 8;
    b[p++] = 0, b[p++] = 0, b[p++] = (uint8_t)(n >> 8), b[p++] = (uint8_t)n;
    memcpy(b + p, iptc, n);
    return p + n;
}

static void test_iptc_text_records(void **s)
{
    (void)s;
    uint8_t payload[512];
    size_t n = iptc_payload(payload);
    struct texts t = {""};
    assert_int_equal(ts_iptc_texts(payload, n, collect_text, &t), 0);
    assert_string_equal(t.seen, "title=Portolan;creator=Grazioso Benincasa;description=A chart of "
                                "the Mediterranean;");
    /* A block whose size runs past the segment is not read at all. */
    t.seen[0] = '\0';
    assert_int_equal(ts_iptc_texts(payload, n - 5, collect_text, &t), 0);
    assert_string_equal(t.seen, "");
    t.seen[0] = '\0';
    assert_int_equal(ts_iptc_texts(payload, 10, collect_text, &t), 0);
    assert_string_equal(t.seen, "");
}

/* The same payload and an XMP packet spliced into a real JPEG after its SOI: the reader reports
 * both as the TIFF reader reports tags, for IIP's objects and manifests. */
static void test_jpeg_reader_reports_exif_xmp_and_iptc_texts(void **s)
{
    (void)s;
    static const char xmp[] = "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><dc:title>T</dc:title>"
                              "</x:xmpmeta>";
    char path[512];
    orient_path(path, sizeof path, 1);
    size_t len;
    uint8_t *jpeg = slurp(path, &len);
    uint8_t payload[512];
    size_t n = exif_payload(payload);
    assert_int_equal(tu_mkdirs(WORK), 0);
    FILE *f = fopen(WORK "/texts.jpg", "wb");
    assert_non_null(f);
    uint8_t app1[4] = {0xFF, 0xE1, (uint8_t)((n + 2) >> 8), (uint8_t)(n + 2)};
    uint8_t app1x[4] = {0xFF, 0xE1, (uint8_t)((sizeof xmp - 1 + 2) >> 8),
                        (uint8_t)(sizeof xmp - 1 + 2)};
    assert_int_equal(fwrite(jpeg, 1, 2, f), 2);
    assert_int_equal(fwrite(app1, 1, 4, f), 4);
    assert_int_equal(fwrite(payload, 1, n, f), n);
    assert_int_equal(fwrite(app1x, 1, 4, f), 4);
    assert_int_equal(fwrite(xmp, 1, sizeof xmp - 1, f), sizeof xmp - 1);
    uint8_t iptc[512];
    size_t ni = iptc_payload(iptc);
    uint8_t app13[4] = {0xFF, 0xED, (uint8_t)((ni + 2) >> 8), (uint8_t)(ni + 2)};
    assert_int_equal(fwrite(app13, 1, 4, f), 4);
    assert_int_equal(fwrite(iptc, 1, ni, f), ni);
    assert_int_equal(fwrite(jpeg + 2, 1, len - 2, f), len - 2);
    fclose(f);
    free(jpeg);
    struct ts_reader *r = open_ok(WORK "/texts.jpg");
    const char *creator = ts_image_meta(&r->info, "creator");
    const char *rights = ts_image_meta(&r->info, "rights");
    const char *packet = ts_image_meta(&r->info, "xmp");
    assert_non_null(creator);
    assert_string_equal(creator, "Ali");
    assert_non_null(rights);
    assert_string_equal(rights, "CC BY 4.0, the archive");
    assert_non_null(packet);
    assert_non_null(strstr(packet, "<dc:title>T</dc:title>"));
    /* EXIF named the creator first; IPTC alone gives the description and the title. */
    assert_string_equal(ts_image_meta(&r->info, "description"), "A chart of the Mediterranean");
    assert_string_equal(ts_image_meta(&r->info, "title"), "Portolan");
    ts_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_orientations_read_upright_and_alike),
        cmocka_unit_test(test_stored_pixels_of_turned_file_differ_from_upright),
        cmocka_unit_test(test_region_of_turned_file_matches_upright_region),
        cmocka_unit_test(test_scaled_read_of_turned_file_stays_upright),
        cmocka_unit_test(test_apply_follows_the_exif_definitions),
        cmocka_unit_test(test_stored_req_maps_region_and_minimums),
        cmocka_unit_test(test_orientation_parsed_in_both_byte_orders),
        cmocka_unit_test(test_malformed_exif_is_ignored),
        cmocka_unit_test(test_jpeg_with_corrupt_exif_opens_as_stored),
        cmocka_unit_test(test_text_tags_read_inline_and_at_offsets),
        cmocka_unit_test(test_jpeg_reader_reports_exif_xmp_and_iptc_texts),
        cmocka_unit_test(test_iptc_text_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
