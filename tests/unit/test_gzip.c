/* gzip content coding: which Accept-Encoding values admit it, and that what ts_gzip writes is a
 * gzip stream zlib inflates back to the input. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
// clang-format on

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "util/gzip.h"
#include "util/status.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void test_accept_encoding_admits_gzip_as_rfc_9110_reads_it(void **state)
{
    (void)state;
    const char *yes[] = {"gzip",
                         "GZIP",
                         "x-gzip",
                         "deflate, gzip",
                         "br;q=1.0, gzip;q=0.5",
                         " gzip ; q=0.001",
                         "*",
                         "identity, *;q=0.3",
                         "gzip, *;q=0"};
    const char *no[] = {"",      "identity",    "deflate, br", "gzip;q=0", "gzip;q=0.000",
                        "*;q=0", "gzip;q=0, *", "gzipper",     "gzip;q=x"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!ts_accepts_gzip(yes[i]))
            fail_msg("'%s' should admit gzip", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (ts_accepts_gzip(no[i]))
            fail_msg("'%s' should not admit gzip", no[i]);
    assert_false(ts_accepts_gzip(NULL));
}

static void test_gzip_output_inflates_to_the_input(void **state)
{
    (void)state;
    struct ts_buf in = {0}, out = {0};
    for (int i = 0; i < 2000; i++)
        assert_int_equal(ts_buf_appendf(&in, "{\"label\": {\"none\": [\"p. %d\"]}},\n", i), 0);
    assert_int_equal(ts_buf_append(&out, "x", 1), 0); /* appends after what is there */
    assert_int_equal(ts_gzip(in.data, in.len, &out), TS_OK);
    assert_true(out.len - 1 < in.len / 4);
    assert_int_equal(out.data[1], 0x1f); /* the gzip magic */
    assert_int_equal(out.data[2], 0x8b);
    uint8_t *back = malloc(in.len + 16);
    assert_non_null(back);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = out.data + 1;
    z.avail_in = (uInt)(out.len - 1);
    z.next_out = back;
    z.avail_out = (uInt)(in.len + 16);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, in.len);
    assert_memory_equal(back, in.data, in.len);
    inflateEnd(&z);
    free(back);

    /* Past a capped buffer's room: refused whole, the buffer as it was. */
    struct ts_buf small;
    ts_buf_init_capped(&small, 16);
    assert_int_equal(ts_gzip(in.data, in.len, &small), TS_ETOOLONG);
    assert_int_equal(small.len, 0);
    ts_buf_free(&small);
    ts_buf_free(&in);
    ts_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_encoding_admits_gzip_as_rfc_9110_reads_it),
        cmocka_unit_test(test_gzip_output_inflates_to_the_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
