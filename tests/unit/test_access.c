/* Access rules and their credentials: which rule an image falls under, cookies and tokens that
 * verify only as written by this server's secret (not tampered, forged, expired or of the
 * other kind), the user file's crypt(3) hashes, networks, and the degraded tier's geometry. */
#include "config.h"
#include "core/access.h"
#include "testutil.h"

#include <crypt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define SECRET "secret = 0123456789abcdef0123456789abcdef\n"

static struct ts_access *parse_ok(const char *text)
{
    struct ts_access *a = NULL;
    struct ts_err err = {0};
    int rc = ts_access_parse(text, &a, &err);
    if (rc)
        fprintf(stderr, "parse: %s\n", err.msg);
    assert_int_equal(rc, TS_OK);
    assert_non_null(a);
    return a;
}

static const char rules[] = "[auth]\n" SECRET "[access open-part]\nmatch = restricted/public/\n"
                            "profile = open\n"
                            "[access reading]\nmatch = restricted/\nprofile = clickthrough\n"
                            "[access maps]\nmatch = maps/*.tif\nmatch = atlas-??.jp2\n"
                            "profile = external\nheader = X-Reading-Room: yes\n"
                            "networks = 10.1.0.0/16, 2001:db8::/32\ndegraded-size = 500\n";

static void test_first_matching_rule_wins(void **state)
{
    (void)state;
    struct ts_access *a = parse_ok(rules);
    assert_string_equal(ts_access_match(a, "restricted/public/x.tif")->name, "open-part");
    assert_string_equal(ts_access_match(a, "restricted/x.tif")->name, "reading");
    assert_string_equal(ts_access_match(a, "restricted/deep/er/x.tif")->name, "reading");
    assert_string_equal(ts_access_match(a, "maps/world.tif")->name, "maps");
    assert_string_equal(ts_access_match(a, "atlas-07.jp2")->name, "maps");
    assert_null(ts_access_match(a, "atlas-107.jp2"));
    assert_null(ts_access_match(a, "restrictedx/a.tif")); /* a folder is a whole segment */
    assert_null(ts_access_match(a, "maps/world.jp2"));
    assert_null(ts_access_match(a, "other.tif"));
    const struct ts_access_rule *m = ts_access_rule_named(a, "maps");
    assert_int_equal(m->profile, TS_PROFILE_EXTERNAL);
    assert_int_equal(m->degraded_size, 500);
    assert_string_equal(m->header, "X-Reading-Room");
    assert_string_equal(m->header_value, "yes");
    ts_access_free(a);
}

static void parse_fails(const char *text, const char *why)
{
    struct ts_access *a = NULL;
    struct ts_err err = {0};
    assert_int_equal(ts_access_parse(text, &a, &err), TS_EINVAL);
    assert_null(a);
    if (!strstr(err.msg, why))
        fail_msg("reason '%s' does not say '%s'", err.msg, why);
}

static void test_bad_configurations_are_refused(void **state)
{
    (void)state;
    parse_fails("[access a]\nmatch = x/\nprofile = clickthrough\n", "secret");
    parse_fails("[auth]\nsecret = short\n[access a]\nmatch = x/\nprofile = kiosk\n", "secret");
    parse_fails("[auth]\n" SECRET "[access a]\nprofile = kiosk\n", "match");
    parse_fails("[auth]\n" SECRET "[access a]\nmatch = x/\n", "profile");
    parse_fails("[auth]\n" SECRET "[access a]\nmatch = x/\nprofile = magic\n", "profile");
    parse_fails("[auth]\n" SECRET "[access a]\nmatch = x/\nprofile = login\n", "users");
    parse_fails("[auth]\n" SECRET "[access a]\nmatch = x/\nprofile = external\n", "header");
    parse_fails("[auth]\n" SECRET
                "[access a]\nmatch = x/\nprofile = external\nnetworks = 10.0.0.0/40\n",
                "networks");
    parse_fails("[auth]\n" SECRET "[access a]\nmatch = x/\nprofile = kiosk\ncolour = red\n",
                "unknown");
    parse_fails("[auth]\n" SECRET "origins = ftp://x\n[access a]\nmatch = x/\nprofile = kiosk\n",
                "origins");
    /* Open rules alone need no secret; no rules at all is no access control. */
    struct ts_access *a = parse_ok("[access a]\nmatch = x/\nprofile = open\n");
    ts_access_free(a);
    struct ts_err err = {0};
    assert_int_equal(ts_access_parse("", &a, &err), TS_OK);
    assert_null(a);
}

static void test_hook_settings_and_defaults(void **state)
{
    (void)state;
    const char *rule = "[access h]\nmatch = x/\nprofile = hook\n";
    char text[1024];
    snprintf(text, sizeof text, "[auth]\n" SECRET "hook = http://127.0.0.1:9/decide\n%s", rule);
    struct ts_access *a = parse_ok(text);
    assert_int_equal(ts_access_rule_named(a, "h")->profile, TS_PROFILE_HOOK);
    assert_string_equal(a->hook_url, "http://127.0.0.1:9/decide");
    assert_int_equal(a->hook_timeout_ms, 500); /* the defaults the README names */
    assert_int_equal(a->hook_ttl, 30);
    assert_int_equal(a->hook_entries, 1024);
    ts_access_free(a);
    snprintf(text, sizeof text,
             "[auth]\n" SECRET "hook = https://auth.example/decide?site=1\nhook-timeout = 250\n"
             "hook-cache-ttl = 0\nhook-cache-entries = 16\n%s",
             rule);
    a = parse_ok(text);
    assert_int_equal(a->hook_timeout_ms, 250);
    assert_int_equal(a->hook_ttl, 0);
    assert_int_equal(a->hook_entries, 16);
    ts_access_free(a);
    snprintf(text, sizeof text, "[auth]\n" SECRET "%s", rule);
    parse_fails(text, "hook wants [auth] hook = URL");
    parse_fails("[auth]\n" SECRET "hook = ftp://x/\n", "http");
    parse_fails("[auth]\n" SECRET "hook = http://x/\nhook-timeout = 0\n", "milliseconds");
    parse_fails("[auth]\n" SECRET "hook = http://x/\nhook-timeout = 60000\n", "milliseconds");
    parse_fails("[auth]\n" SECRET "hook = http://x/\nhook-cache-ttl = soon\n", "seconds");
}

static struct ts_access *signer(void)
{
    return parse_ok("[auth]\n" SECRET "[access r]\nmatch = x/\nprofile = kiosk\n");
}

static void sign(const struct ts_access *a, char kind, const char *rules_list, int64_t expires,
                 struct ts_buf *out)
{
    struct ts_grant g = {.expires = expires};
    snprintf(g.rules, sizeof g.rules, "%s", rules_list);
    snprintf(g.origin, sizeof g.origin, "https://viewer.example");
    ts_buf_init_capped(out, 4096);
    assert_int_equal(ts_access_sign(a, kind, &g, out), TS_OK);
    assert_non_null(ts_buf_str(out));
}

static void test_cookie_verifies_and_names_its_rules(void **state)
{
    (void)state;
    struct ts_access *a = signer();
    int64_t now = (int64_t)time(NULL);
    struct ts_buf c;
    sign(a, TS_CRED_COOKIE, "r,other", now + 60, &c);
    struct ts_grant g;
    assert_int_equal(ts_access_verify(a, TS_CRED_COOKIE, (const char *)c.data, c.len, now, &g),
                     TS_CRED_OK);
    assert_true(ts_grant_has(&g, "r"));
    assert_true(ts_grant_has(&g, "other"));
    assert_false(ts_grant_has(&g, "oth"));
    assert_string_equal(g.origin, "https://viewer.example");
    assert_int_equal(g.expires, now + 60);
    ts_buf_free(&c);
    ts_access_free(a);
}

static void test_tampered_forged_and_expired_cookies_fail(void **state)
{
    (void)state;
    struct ts_access *a = signer();
    int64_t now = (int64_t)time(NULL);
    struct ts_buf c;
    sign(a, TS_CRED_COOKIE, "r", now + 60, &c);
    struct ts_grant g;
    char *t = (char *)c.data;
    /* Every single changed character of the payload or the signature is caught. */
    for (size_t i = 0; i < c.len; i++) {
        char keep = t[i];
        t[i] = keep == 'A' ? 'B' : 'A';
        enum ts_cred v = ts_access_verify(a, TS_CRED_COOKIE, t, c.len, now, &g);
        if (v == TS_CRED_OK)
            fail_msg("a cookie changed at byte %zu still verified", i);
        t[i] = keep;
    }
    /* The same payload signed with another server's secret. */
    struct ts_access *other =
        parse_ok("[auth]\nsecret = ffffffffffffffffffffffffffffffffffff\n[access r]\nmatch = x/\n"
                 "profile = kiosk\n");
    struct ts_buf forged;
    sign(other, TS_CRED_COOKIE, "r", now + 60, &forged);
    assert_int_equal(
        ts_access_verify(a, TS_CRED_COOKIE, (const char *)forged.data, forged.len, now, &g),
        TS_CRED_INVALID);
    /* Expired: genuine but past its time. */
    assert_int_equal(ts_access_verify(a, TS_CRED_COOKIE, t, c.len, now + 61, &g), TS_CRED_EXPIRED);
    assert_int_equal(ts_access_verify(a, TS_CRED_COOKIE, "", 0, now, &g), TS_CRED_MISSING);
    assert_int_equal(ts_access_verify(a, TS_CRED_COOKIE, "abc", 3, now, &g), TS_CRED_INVALID);
    assert_int_equal(ts_access_verify(a, TS_CRED_COOKIE, "abc.", 4, now, &g), TS_CRED_INVALID);
    ts_buf_free(&forged);
    ts_buf_free(&c);
    ts_access_free(other);
    ts_access_free(a);
}

static void test_token_is_not_a_cookie(void **state)
{
    (void)state;
    struct ts_access *a = signer();
    int64_t now = (int64_t)time(NULL);
    struct ts_buf t1, t2, c;
    sign(a, TS_CRED_TOKEN, "r", now + 60, &t1);
    sign(a, TS_CRED_TOKEN, "r", now + 60, &t2);
    sign(a, TS_CRED_COOKIE, "r", now + 60, &c);
    struct ts_grant g;
    assert_int_equal(ts_access_verify(a, TS_CRED_TOKEN, (const char *)t1.data, t1.len, now, &g),
                     TS_CRED_OK);
    assert_int_equal(ts_access_verify(a, TS_CRED_COOKIE, (const char *)t1.data, t1.len, now, &g),
                     TS_CRED_INVALID);
    assert_int_equal(ts_access_verify(a, TS_CRED_TOKEN, (const char *)c.data, c.len, now, &g),
                     TS_CRED_INVALID);
    /* Opaque and fresh each time: two tokens for the same grant differ, and neither is the
     * cookie's text. */
    assert_string_not_equal((const char *)t1.data, (const char *)t2.data);
    assert_string_not_equal((const char *)t1.data, (const char *)c.data);
    ts_buf_free(&t1);
    ts_buf_free(&t2);
    ts_buf_free(&c);
    ts_access_free(a);
}

static void test_cookie_found_among_others(void **state)
{
    (void)state;
    size_t n;
    const char *v = ts_access_cookie("a=1; tessera_access=XYZ.abc; b=2", &n);
    assert_non_null(v);
    assert_int_equal(n, 7);
    assert_memory_equal(v, "XYZ.abc", 7);
    assert_null(ts_access_cookie("xtessera_access=1; tessera_accessx=2", &n));
    assert_null(ts_access_cookie(NULL, &n));
}

static void test_networks_contain_addresses(void **state)
{
    (void)state;
    struct ts_access *a = parse_ok(rules);
    const struct ts_access_rule *m = ts_access_rule_named(a, "maps");
    assert_true(ts_access_in_networks(m, "10.1.2.3"));
    assert_true(ts_access_in_networks(m, "10.1.255.255"));
    assert_false(ts_access_in_networks(m, "10.2.0.1"));
    assert_true(ts_access_in_networks(m, "2001:db8:1::5"));
    assert_false(ts_access_in_networks(m, "2001:db9::5"));
    assert_false(ts_access_in_networks(m, "not an address"));
    assert_false(ts_access_in_networks(m, NULL));
    ts_access_free(a);
}

static void write_users(const char *path, const char *line1, const char *line2)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n%s\n", line1, line2);
    fclose(f);
}

static void test_user_file_checks_yescrypt_and_bcrypt(void **state)
{
    (void)state;
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    char path[1024], y[512], b[512];
    snprintf(path, sizeof path, "%s/users", TESSERA_TEST_WORK);
    /* Hashes made by libcrypt itself, as mkpasswd would. */
    char *ys = crypt_gensalt_ra("$y$", 0, NULL, 0);
    char *bs = crypt_gensalt_ra("$2b$", 4, NULL, 0);
    assert_non_null(ys);
    assert_non_null(bs);
    snprintf(y, sizeof y, "alice:%s", crypt("wonder land", ys));
    snprintf(b, sizeof b, "bob:%s", crypt("builder", bs));
    free(ys);
    free(bs);
    assert_non_null(strstr(y, ":$y$"));
    assert_non_null(strstr(b, ":$2b$"));
    write_users(path, y, b);
    char text[2048];
    snprintf(text, sizeof text,
             "[auth]\n" SECRET "users = %s\n[access r]\nmatch = x/\nprofile = login\n", path);
    struct ts_access *a = parse_ok(text);
    struct ts_err err = {0};
    assert_int_equal(ts_access_check_user(a, "alice", "wonder land", &err), TS_OK);
    assert_int_equal(ts_access_check_user(a, "bob", "builder", &err), TS_OK);
    assert_int_equal(ts_access_check_user(a, "alice", "builder", &err), TS_EFORBIDDEN);
    assert_int_equal(ts_access_check_user(a, "bob", "", &err), TS_EFORBIDDEN);
    assert_int_equal(ts_access_check_user(a, "carol", "x", &err), TS_EFORBIDDEN);
    assert_int_equal(ts_access_check_user(a, "alic", "wonder land", &err), TS_EFORBIDDEN);
    remove(path);
    assert_int_equal(ts_access_check_user(a, "alice", "wonder land", &err), TS_EIO);
    ts_access_free(a);
}

static void test_degraded_image_is_scaled_and_mapped_back(void **state)
{
    (void)state;
    struct ts_image_info full = {.width = 4000, .height = 2000, .nlevels = 4};
    uint32_t w = 4000, h = 2000;
    for (int i = 0; i < 4; i++, w /= 2, h /= 2)
        full.levels[i] = (struct ts_level){w, h, 256, 256};
    struct ts_image_info v;
    ts_access_virtual_info(1000, &full, &v);
    assert_int_equal(v.width, 1000);
    assert_int_equal(v.height, 500);
    /* 1000x500 first, then only the stored levels smaller than it (500x250). */
    assert_int_equal(v.nlevels, 2);
    assert_int_equal(v.levels[1].width, 500);
    /* A tile of the degraded image reads four times its region from the file. */
    struct ts_plan p = {.img_w = 1000,
                        .img_h = 500,
                        .rx = 256,
                        .ry = 0,
                        .rw = 256,
                        .rh = 256,
                        .out_w = 256,
                        .out_h = 256};
    struct ts_err err = {0};
    assert_int_equal(ts_access_map_plan(&v, &full, &p, &err), TS_OK);
    assert_int_equal(p.rx, 1024);
    assert_int_equal(p.rw, 1024);
    assert_int_equal(p.rh, 1024);
    assert_int_equal(p.img_w, 4000);
    assert_int_equal(p.out_w, 256);
    /* Asking more pixels than the degraded image has would show the file's own detail. */
    struct ts_plan up = {
        .img_w = 1000, .img_h = 500, .rw = 100, .rh = 100, .out_w = 400, .out_h = 400};
    assert_int_equal(ts_access_map_plan(&v, &full, &up, &err), TS_EFORBIDDEN);
    /* Images already within the size are left as they are. */
    ts_access_virtual_info(5000, &full, &v);
    assert_int_equal(v.width, 4000);
    assert_int_equal(v.nlevels, 4);
}

static void test_config_file_keeps_access_sections_whole(void **state)
{
    (void)state;
    assert_int_equal(tu_mkdirs(TESSERA_TEST_WORK), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/server.ini", TESSERA_TEST_WORK);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* Keys repeat from rule to rule, and ordinary settings sit around them. */
    fputs("[server]\njpeg-quality = 70\n[auth]\n" SECRET "[access a]\nmatch = a/\n"
          "profile = kiosk\n[access b]\nmatch = b/\nmatch = c/*.tif\nprofile = clickthrough\n"
          "[server]\npng-level = 5\n",
          f);
    fclose(f);
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    struct ts_err err = {0};
    assert_int_equal(ts_config_load_ini(&cfg, path, &err), TS_OK);
    assert_int_equal(cfg.jpeg_quality, 70);
    assert_int_equal(cfg.png_level, 5);
    struct ts_access *a = parse_ok(cfg.access_rules);
    assert_int_equal(a->nrules, 2);
    assert_string_equal(ts_access_match(a, "a/x.tif")->name, "a");
    assert_string_equal(ts_access_match(a, "c/x.tif")->name, "b");
    assert_int_equal(ts_access_rule_named(a, "b")->profile, TS_PROFILE_CLICKTHROUGH);
    ts_access_free(a);
    /* A setting the rules do not know stops the start when the rules are parsed, named. */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[access a]\nmatch = a/\nprofile = kiosk\ncolour = red\n", f);
    fclose(f);
    ts_config_defaults(&cfg);
    assert_int_equal(ts_config_load_ini(&cfg, path, &err), TS_OK);
    assert_int_equal(ts_access_parse(cfg.access_rules, &a, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "colour"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_matching_rule_wins),
        cmocka_unit_test(test_bad_configurations_are_refused),
        cmocka_unit_test(test_hook_settings_and_defaults),
        cmocka_unit_test(test_cookie_verifies_and_names_its_rules),
        cmocka_unit_test(test_tampered_forged_and_expired_cookies_fail),
        cmocka_unit_test(test_token_is_not_a_cookie),
        cmocka_unit_test(test_cookie_found_among_others),
        cmocka_unit_test(test_networks_contain_addresses),
        cmocka_unit_test(test_user_file_checks_yescrypt_and_bcrypt),
        cmocka_unit_test(test_degraded_image_is_scaled_and_mapped_back),
        cmocka_unit_test(test_config_file_keeps_access_sections_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
