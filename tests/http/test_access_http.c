/* Restricted images over HTTP, against the real server: every protocol refuses a restricted
 * image without credentials (401) and with wrong ones (403); the login, click-through, kiosk and
 * external rules grant it; the degraded tier is a smaller image of its own; every
 * AuthAccessTokenError2 profile; expiry; a token is no cookie; and no cached answer made for an
 * authorised user ever reaches an unauthorised one. */
#include "grid.h"
#include "harness.h"
#include "testutil.h"

#include <crypt.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#define SECRET "secret = 0123456789abcdef0123456789abcdef-http\n"
#define ORIGIN "http://viewer.example"

static struct tu_server srv;   /* every rule */
static struct tu_server brief; /* sessions of 1 s */
static struct tu_server down;  /* maintenance */
static char work[1024];

static int start(struct tu_server *s, const char *root, const char *name, const char *extra,
                 const char *flag, const char *value)
{
    char ini[1200], users[1200], text[4096];
    snprintf(ini, sizeof ini, "%s/%s.ini", work, name);
    snprintf(users, sizeof users, "%s/users", work);
    snprintf(text, sizeof text,
             "[auth]\n" SECRET "users = %s\n%s"
             "[access secret]\nmatch = secret/\nprofile = login\nlabel = Log in to the test\n"
             "[access terms]\nmatch = terms/*.png\nprofile = clickthrough\ndegraded-size = 250\n"
             "[access kiosk]\nmatch = kiosk/\nprofile = kiosk\nnetworks = 127.0.0.0/8\n"
             "[access room]\nmatch = room/\nprofile = external\nheader = X-Reading-Room: yes\n"
             "[access lan]\nmatch = lan/\nprofile = external\nnetworks = 127.0.0.0/8\n"
             "[access far]\nmatch = far/\nprofile = external\nnetworks = 10.0.0.0/8\n",
             users, extra);
    if (tu_write_text(ini, text) != 0)
        return -1;
    const char *const args[] = {"--config", ini, flag, value, NULL};
    return tu_server_start(s, TESSERA_BIN, root, args);
}

static int group_setup(void **state)
{
    (void)state;
    tu_http_init();
    char root[1100], path[1200], grid[1200];
    snprintf(work, sizeof work, "%s", TESSERA_TEST_WORK);
    snprintf(root, sizeof root, "%s/root", work);
    if (tu_mkdirs(root) != 0 || tu_make_http_root(root) != 0)
        return -1;
    snprintf(grid, sizeof grid, "%s/grid.png", root);
    static const char *const dirs[] = {"secret", "terms", "kiosk", "room", "lan", "far"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", root, dirs[i]);
        if (tu_mkdirs(path) != 0)
            return -1;
        snprintf(path, sizeof path, "%s/%s/grid.png", root, dirs[i]);
        if (tu_copy_file(grid, path) != 0)
            return -1;
    }
    char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
    const char *hash = salt ? crypt("open sesame", salt) : NULL;
    char users[1200], line[512];
    snprintf(line, sizeof line, "alice:%s\n", hash ? hash : "");
    free(salt);
    snprintf(users, sizeof users, "%s/users", work);
    if (!hash || tu_write_text(users, line) != 0)
        return -1;
    int rc = start(&srv, root, "all", "", NULL, NULL);
    rc = rc ? rc : start(&brief, root, "brief", "session-ttl = 1\n", NULL, NULL);
    /* Also published over https by a proxy in front. */
    rc = rc ? rc
            : start(&down, root, "down", "maintenance = true\n", "--base-url",
                    "https://images.example");
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = tu_server_stop(&srv);
    rc |= tu_server_stop(&brief);
    rc |= tu_server_stop(&down);
    return rc;
}

/* GET with an optional "Name: value" header (or two). */
static long get(const struct tu_server *s, const char *path, const char *h1, const char *h2,
                struct tu_response *r)
{
    char url[4096];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    const char *const hs[] = {h1, h2, NULL};
    assert_int_equal(tu_request("GET", url, h1 ? hs : NULL, r), 0);
    return r->status;
}

static long status_of(const struct tu_server *s, const char *path, const char *h1)
{
    struct tu_response r;
    long st = get(s, path, h1, NULL, &r);
    tu_response_free(&r);
    return st;
}

/* Logs in as alice at the secret rule's access service; cookie receives "Cookie: ..." */
static void login(const struct tu_server *s, const char *password, long want, char *cookie,
                  size_t cap)
{
    char auth[256], pair[128], b64[200];
    snprintf(pair, sizeof pair, "alice:%s", password);
    /* base64 of pair */
    static const char d[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(pair), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(uint8_t)pair[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(uint8_t)pair[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint8_t)pair[i + 2];
        b64[o++] = d[v >> 18 & 63];
        b64[o++] = d[v >> 12 & 63];
        b64[o++] = i + 1 < n ? d[v >> 6 & 63] : '=';
        b64[o++] = i + 2 < n ? d[v & 63] : '=';
    }
    b64[o] = '\0';
    snprintf(auth, sizeof auth, "Authorization: Basic %s", b64);
    struct tu_response r;
    assert_int_equal(get(s, "/auth/access/secret?origin=" ORIGIN, auth, NULL, &r), want);
    char set[1024] = "";
    if (want == 200) {
        assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
        /* HttpOnly always; over plain HTTP, Lax and no Secure. */
        assert_non_null(strstr(set, "HttpOnly"));
        assert_non_null(strstr(set, "SameSite=Lax"));
        assert_null(strstr(set, "Secure"));
        set[strcspn(set, ";")] = '\0';
        snprintf(cookie, cap, "Cookie: %s", set);
    } else {
        assert_false(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
    }
    tu_response_free(&r);
}

static const char *const restricted_paths[] = {
    "/iiif/3/secret%2Fgrid.png/full/max/0/default.jpg",
    "/iiif/3/secret%2Fgrid.png/0,0,256,256/256,/0/default.jpg",
    "/iiif/2/secret%2Fgrid.png/full/100,/0/default.png",
    "/iiif/3/secret%2Fgrid.png/info.json",
    "/iiif/2/secret%2Fgrid.png/info.json",
    "/fcgi-bin/iipsrv.fcgi?FIF=secret/grid.png&CVT=jpeg",
    "/fcgi-bin/iipsrv.fcgi?FIF=secret/grid.png&JTL=0,0",
    "/fcgi-bin/iipsrv.fcgi?FIF=secret/grid.png&OBJ=IIP,1.0&OBJ=Max-size",
    "/fcgi-bin/iipsrv.fcgi?DeepZoom=secret/grid.png.dzi",
    "/fcgi-bin/iipsrv.fcgi?DeepZoom=secret/grid.png_files/9/0_0.jpg",
    "/fcgi-bin/iipsrv.fcgi?Zoomify=secret/grid.png/ImageProperties.xml",
    "/fcgi-bin/iipsrv.fcgi?Zoomify=secret/grid.png/TileGroup0/0-0-0.jpg",
    "/manifest/secret/grid.png",
};

static void test_every_protocol_refuses_without_credentials(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof restricted_paths / sizeof restricted_paths[0]; i++) {
        struct tu_response r;
        long st = get(&srv, restricted_paths[i], NULL, NULL, &r);
        if (st != 401)
            fail_msg("%s: %ld without credentials, want 401", restricted_paths[i], st);
        assert_true(tu_header_contains(&r, "Vary", "Cookie"));
        /* RFC 9110 15.5.2: every 401 says how to authenticate. */
        char challenge[256] = "";
        if (!tu_header(&r, "WWW-Authenticate", 0, challenge, sizeof challenge) ||
            strcmp(challenge, "Bearer realm=\"secret\"") != 0)
            fail_msg("%s: WWW-Authenticate '%s', want Bearer realm=\"secret\"", restricted_paths[i],
                     challenge);
        /* Nothing of the image: no image type on a refusal. */
        char type[256] = "";
        tu_header(&r, "Content-Type", 0, type, sizeof type);
        assert_int_not_equal(strncmp(type, "image/", 6), 0);
        tu_response_free(&r);
        st = status_of(&srv, restricted_paths[i], "Cookie: tessera_access=forged.cookie");
        if (st != 403)
            fail_msg("%s: %ld with a forged cookie, want 403", restricted_paths[i], st);
    }
    /* The same image outside the rule is served to anyone. */
    assert_int_equal(status_of(&srv, "/iiif/3/grid.png/full/100,/0/default.jpg", NULL), 200);
}

static void test_refused_info_json_declares_the_services(void **state)
{
    (void)state;
    struct tu_response r;
    assert_int_equal(get(&srv, "/iiif/3/secret%2Fgrid.png/info.json", NULL, NULL, &r), 401);
    json_t *info = json_loads((const char *)r.body.data, 0, NULL);
    assert_non_null(info);
    json_t *ctx = json_object_get(info, "@context");
    assert_true(json_is_array(ctx));
    assert_string_equal(json_string_value(json_array_get(ctx, 0)),
                        "http://iiif.io/api/auth/2/context.json");
    json_t *probe = json_array_get(json_object_get(info, "service"), 0);
    assert_string_equal(json_string_value(json_object_get(probe, "type")), "AuthProbeService2");
    char want[256];
    snprintf(want, sizeof want, "%s/auth/probe/secret%%2Fgrid.png", srv.base);
    assert_string_equal(json_string_value(json_object_get(probe, "id")), want);
    json_t *access = json_array_get(json_object_get(probe, "service"), 0);
    assert_string_equal(json_string_value(json_object_get(access, "type")), "AuthAccessService2");
    assert_string_equal(json_string_value(json_object_get(access, "profile")), "active");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(access, "label"), "en"), 0)),
                        "Log in to the test");
    json_t *token = json_array_get(json_object_get(access, "service"), 0);
    json_t *out = json_array_get(json_object_get(access, "service"), 1);
    assert_string_equal(json_string_value(json_object_get(token, "type")),
                        "AuthAccessTokenService2");
    assert_string_equal(json_string_value(json_object_get(out, "type")), "AuthLogoutService2");
    json_decref(info);
    tu_response_free(&r);
    /* The manifest names the probe with the image's service, the auth context first. */
    assert_int_equal(get(&srv, "/manifest/secret/grid.png", NULL, NULL, &r), 401);
    json_t *m = json_loads((const char *)r.body.data, 0, NULL);
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "@context"), 0)),
                        "http://iiif.io/api/auth/2/context.json");
    json_t *canvas = json_array_get(json_object_get(m, "items"), 0);
    json_t *page = json_array_get(json_object_get(canvas, "items"), 0);
    json_t *body = json_object_get(json_array_get(json_object_get(page, "items"), 0), "body");
    json_t *svc = json_array_get(json_object_get(body, "service"), 0);
    probe = json_array_get(json_object_get(svc, "service"), 0);
    assert_string_equal(json_string_value(json_object_get(probe, "id")), want);
    json_decref(m);
    tu_response_free(&r);
}

static void expect_grid_png(const struct tu_response *r, uint32_t w, uint32_t h)
{
    struct ts_image img;
    assert_int_equal(tu_decode_body(r, &img), 0);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    /* The centre of cell (3, 2) has that cell's colour at any scale. */
    uint8_t rgb[3];
    grid_cell_color(3, 2, rgb);
    assert_true(tu_pixel_diff(&img, w * 35 / 100, h * 25 / 100, rgb) <= 2);
    ts_image_free(&img);
}

static void test_login_grants_the_full_image(void **state)
{
    (void)state;
    char cookie[1024];
    login(&srv, "wrong", 403, cookie, sizeof cookie);
    login(&srv, "open sesame", 200, cookie, sizeof cookie);
    struct tu_response r;
    assert_int_equal(
        get(&srv, "/iiif/3/secret%2Fgrid.png/full/max/0/default.png", cookie, NULL, &r), 200);
    expect_grid_png(&r, 1000, 1000);
    /* Meant for this user alone: no shared cache may keep it. */
    assert_true(tu_header_contains(&r, "Cache-Control", "private"));
    assert_true(tu_header_contains(&r, "Vary", "Cookie, Authorization"));
    tu_response_free(&r);
    for (size_t i = 0; i < sizeof restricted_paths / sizeof restricted_paths[0]; i++) {
        long st = status_of(&srv, restricted_paths[i], cookie);
        if (st != 200)
            fail_msg("%s: %ld with the login's cookie, want 200", restricted_paths[i], st);
    }
}

/* The response cache (and the browser's validators) for a tile fetched by an authorised user
 * must not answer the same URL for anyone else. */
/* POSTs an urlencoded body to the secret rule's access service. */
static long post_form(const struct tu_server *s, const char *type, const char *body, size_t len,
                      struct tu_response *r)
{
    char url[512], ct[128];
    snprintf(url, sizeof url, "%s/auth/access/secret?origin=" ORIGIN, s->base);
    snprintf(ct, sizeof ct, "Content-Type: %s", type);
    const char *const hs[] = {ct, NULL};
    assert_int_equal(tu_post(url, hs, body, len, r), 0);
    return r->status;
}

/* A browser without scripts posts the login form itself: the page's form says POST, and the
 * posted user and password (a '+' for the space, %2B for a plus) set the same cookie. */
static void test_login_form_posts_without_scripts(void **state)
{
    (void)state;
    struct tu_response r;
    assert_int_equal(get(&srv, "/auth/access/secret?origin=" ORIGIN, NULL, NULL, &r), 200);
    assert_non_null(strstr((const char *)r.body.data, "<form id=\"f\" method=\"post\">"));
    tu_response_free(&r);
    const char *form = "application/x-www-form-urlencoded";
    const char *wrong = "user=alice&password=open+sesam";
    assert_int_equal(post_form(&srv, form, wrong, strlen(wrong), &r), 403);
    assert_false(tu_header(&r, "Set-Cookie", 0, (char[8]){0}, 8));
    tu_response_free(&r);
    const char *right = "user=alice&password=open+sesame";
    assert_int_equal(post_form(&srv, form, right, strlen(right), &r), 200);
    char set[1024] = "", cookie[1100];
    assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
    assert_non_null(strstr(set, "HttpOnly"));
    assert_true(tu_header_contains(&r, "Cache-Control", "no-store"));
    tu_response_free(&r);
    set[strcspn(set, ";")] = '\0';
    snprintf(cookie, sizeof cookie, "Cookie: %s", set);
    assert_int_equal(
        get(&srv, "/iiif/3/secret%2Fgrid.png/full/max/0/default.png", cookie, NULL, &r), 200);
    expect_grid_png(&r, 1000, 1000);
    tu_response_free(&r);
    /* The same page over Basic still works (scripts on). */
    char basic[1024];
    login(&srv, "open sesame", 200, basic, sizeof basic);
}

static void test_login_form_refuses_bad_posts(void **state)
{
    (void)state;
    struct tu_response r;
    const char *form = "application/x-www-form-urlencoded";
    const char *right = "user=alice&password=open+sesame";
    /* Not a form. */
    assert_int_equal(post_form(&srv, "application/json", right, strlen(right), &r), 415);
    tu_response_free(&r);
    /* A form without the password. */
    assert_int_equal(post_form(&srv, form, "user=alice", 10, &r), 400);
    tu_response_free(&r);
    /* Over the 4 KB a body may carry: 413, whatever it holds. */
    size_t big = 5000;
    char *body = malloc(big);
    assert_non_null(body);
    memcpy(body, right, strlen(right));
    memset(body + strlen(right), 'x', big - strlen(right));
    memcpy(body + strlen(right), "&pad=", 5);
    assert_int_equal(post_form(&srv, form, body, big, &r), 413);
    assert_false(tu_header(&r, "Set-Cookie", 0, (char[8]){0}, 8));
    tu_response_free(&r);
    free(body);
    /* Other services and images are not posted to. */
    char url[512];
    snprintf(url, sizeof url, "%s/auth/access/terms?origin=" ORIGIN, srv.base);
    assert_int_equal(tu_post(url, NULL, "accept=1", 8, &r), 0);
    assert_int_equal(r.status, 405);
    assert_false(tu_header(&r, "Set-Cookie", 0, (char[8]){0}, 8));
    tu_response_free(&r);
    snprintf(url, sizeof url, "%s/iiif/3/grid.png/info.json", srv.base);
    assert_int_equal(tu_post(url, NULL, "a=1", 3, &r), 0);
    assert_int_equal(r.status, 405);
    tu_response_free(&r);
}

static void test_cached_authorised_answer_is_never_served_without_credentials(void **state)
{
    (void)state;
    char cookie[1024], inm[128], etag[100];
    login(&srv, "open sesame", 200, cookie, sizeof cookie);
    const char *tile = "/iiif/3/secret%2Fgrid.png/256,256,256,256/256,/0/default.jpg";
    struct tu_response r;
    for (int i = 0; i < 2; i++) { /* the second is a cache hit */
        assert_int_equal(get(&srv, tile, cookie, NULL, &r), 200);
        assert_true(tu_header(&r, "ETag", 0, etag, sizeof etag));
        tu_response_free(&r);
    }
    snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
    assert_int_equal(get(&srv, tile, cookie, inm, &r), 304);
    tu_response_free(&r);
    assert_int_equal(get(&srv, tile, NULL, NULL, &r), 401);
    assert_true(r.body.len < 200 && !strstr((const char *)r.body.data, "JFIF"));
    tu_response_free(&r);
    /* The authorised answer's validator does not get a 304 (and so the image) either. */
    assert_int_equal(get(&srv, tile, inm, NULL, &r), 401);
    tu_response_free(&r);
    assert_int_equal(status_of(&srv, tile, "Cookie: tessera_access=x.y"), 403);
}

static void test_degraded_tier_is_a_smaller_image_of_its_own(void **state)
{
    (void)state;
    struct tu_response r;
    /* Everyone: a 250 px image, with its own info.json. */
    assert_int_equal(get(&srv, "/iiif/3/terms%2Fgrid.png/info.json", NULL, NULL, &r), 200);
    json_t *info = json_loads((const char *)r.body.data, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(info, "width")), 250);
    assert_int_equal(json_integer_value(json_object_get(info, "height")), 250);
    json_decref(info);
    tu_response_free(&r);
    assert_int_equal(get(&srv, "/iiif/3/terms%2Fgrid.png/full/max/0/default.png", NULL, NULL, &r),
                     200);
    expect_grid_png(&r, 250, 250);
    tu_response_free(&r);
    /* A region of the degraded image: the file's pixels under it, at the degraded scale. */
    assert_int_equal(
        get(&srv, "/iiif/3/terms%2Fgrid.png/50,25,50,50/max/0/default.png", NULL, NULL, &r), 200);
    struct ts_image img;
    assert_int_equal(tu_decode_body(&r, &img), 0);
    assert_int_equal(img.width, 50);
    uint8_t rgb[3];
    grid_cell_color(2, 1, rgb); /* (50..100, 25..75) of 250 is (200..400, 100..300) of 1000 */
    assert_true(tu_pixel_diff(&img, 12, 12, rgb) <= 2);
    ts_image_free(&img);
    tu_response_free(&r);
    /* More pixels than the tier has: refused, never upscaled from the file. */
    assert_int_equal(status_of(&srv, "/iiif/3/terms%2Fgrid.png/full/^500,/0/default.png", NULL),
                     403);
    assert_int_equal(
        status_of(&srv, "/iiif/3/terms%2Fgrid.png/0,0,100,100/^200,/0/default.png", NULL), 403);
    /* After the click-through: the full image at the same URL, cached apart. */
    char set[1024], cookie[1100];
    assert_int_equal(get(&srv, "/auth/access/terms?origin=" ORIGIN, NULL, NULL, &r), 200);
    assert_false(tu_header(&r, "Set-Cookie", 0, set, sizeof set)); /* the terms, not yet */
    assert_non_null(strstr((const char *)r.body.data, "name=\"accept\""));
    tu_response_free(&r);
    assert_int_equal(get(&srv, "/auth/access/terms?origin=" ORIGIN "&accept=1", NULL, NULL, &r),
                     200);
    assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
    set[strcspn(set, ";")] = '\0';
    snprintf(cookie, sizeof cookie, "Cookie: %s", set);
    tu_response_free(&r);
    assert_int_equal(get(&srv, "/iiif/3/terms%2Fgrid.png/full/max/0/default.png", cookie, NULL, &r),
                     200);
    expect_grid_png(&r, 1000, 1000);
    tu_response_free(&r);
    /* And the degraded answer still for everyone else. */
    assert_int_equal(get(&srv, "/iiif/3/terms%2Fgrid.png/full/max/0/default.png", NULL, NULL, &r),
                     200);
    expect_grid_png(&r, 250, 250);
    tu_response_free(&r);
    /* The click-through's cookie is not the login's. */
    assert_int_equal(status_of(&srv, "/iiif/3/secret%2Fgrid.png/full/100,/0/default.jpg", cookie),
                     403);
}

/* The message the token page posts, and where to. */
static json_t *token_message(const struct tu_server *s, const char *query, const char *cookie,
                             char *target, size_t cap)
{
    char path[2048];
    snprintf(path, sizeof path, "/auth/token/%s", query);
    struct tu_response r;
    assert_int_equal(get(s, path, cookie, NULL, &r), 200); /* always 200 (Auth 2.0 4.3) */
    assert_true(tu_header_contains(&r, "Content-Type", "text/html"));
    assert_true(tu_header_contains(&r, "Cache-Control", "no-store"));
    const char *p = strstr((const char *)r.body.data, "postMessage(");
    assert_non_null(p);
    json_error_t e;
    json_t *m = json_loads(p + 12, JSON_DISABLE_EOF_CHECK, &e);
    assert_non_null(m);
    json_t *t = json_loads(p + 12 + e.position + 2, JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &e);
    assert_true(json_is_string(t));
    snprintf(target, cap, "%s", json_string_value(t));
    json_decref(t);
    tu_response_free(&r);
    return m;
}

static void expect_error(const struct tu_server *s, const char *query, const char *cookie,
                         const char *profile)
{
    char target[256];
    json_t *m = token_message(s, query, cookie, target, sizeof target);
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *got = json_string_value(json_object_get(m, "profile"));
    if (!type || strcmp(type, "AuthAccessTokenError2") || !got || strcmp(got, profile))
        fail_msg("%s: %s %s, want AuthAccessTokenError2 %s", query, type ? type : "-",
                 got ? got : "-", profile);
    assert_null(json_object_get(m, "accessToken"));
    json_decref(m);
}

static void token_for(const struct tu_server *s, const char *rule, const char *cookie, char *token,
                      size_t cap)
{
    char q[512], target[256];
    snprintf(q, sizeof q, "%s?messageId=m%%201&origin=" ORIGIN, rule);
    json_t *m = token_message(s, q, cookie, target, sizeof target);
    assert_string_equal(json_string_value(json_object_get(m, "type")), "AuthAccessToken2");
    assert_string_equal(json_string_value(json_object_get(m, "messageId")), "m 1");
    assert_string_equal(target, ORIGIN); /* a token goes to the origin that asked only */
    assert_true(json_integer_value(json_object_get(m, "expiresIn")) > 0);
    snprintf(token, cap, "%s", json_string_value(json_object_get(m, "accessToken")));
    json_decref(m);
}

static void test_token_error_profiles(void **state)
{
    (void)state;
    char cookie[1024], other[1100], set[1024];
    login(&srv, "open sesame", 200, cookie, sizeof cookie);
    expect_error(&srv, "secret?origin=" ORIGIN, cookie, "invalidRequest");
    expect_error(&srv, "secret?messageId=1", cookie, "invalidRequest");
    expect_error(&srv, "nosuchrule?messageId=1&origin=" ORIGIN, cookie, "invalidRequest");
    expect_error(&srv, "secret?messageId=1&origin=javascript:alert(1)", cookie, "invalidOrigin");
    /* The session was opened from ORIGIN: another viewer may not take its token. */
    expect_error(&srv, "secret?messageId=1&origin=http://evil.example", cookie, "invalidOrigin");
    expect_error(&srv, "secret?messageId=1&origin=" ORIGIN, NULL, "missingAspect");
    expect_error(&srv, "secret?messageId=1&origin=" ORIGIN, "Cookie: tessera_access=bad.sig",
                 "invalidAspect");
    /* A genuine cookie of another rule. */
    struct tu_response r;
    assert_int_equal(get(&srv, "/auth/access/terms?accept=1", NULL, NULL, &r), 200);
    assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
    set[strcspn(set, ";")] = '\0';
    snprintf(other, sizeof other, "Cookie: %s", set);
    tu_response_free(&r);
    expect_error(&srv, "secret?messageId=1&origin=" ORIGIN, other, "invalidAspect");
    expect_error(&down, "secret?messageId=1&origin=" ORIGIN, cookie, "unavailable");
    /* The external rule's aspect is the header itself. */
    expect_error(&srv, "room?messageId=1&origin=" ORIGIN, NULL, "missingAspect");
    expect_error(&srv, "room?messageId=1&origin=" ORIGIN, "X-Reading-Room: no", "invalidAspect");
    /* An error carries no secret and may go to any window; a message id is quoted safely. */
    char target[256];
    json_t *m = token_message(&srv, "secret?messageId=%3C%2Fscript%3E&origin=" ORIGIN, NULL, target,
                              sizeof target);
    assert_string_equal(json_string_value(json_object_get(m, "messageId")), "</script>");
    json_decref(m);
}

static void test_probe_follows_the_token(void **state)
{
    (void)state;
    char cookie[1024], token[1024], bearer[1100];
    struct tu_response r;
    assert_int_equal(get(&srv, "/auth/probe/secret%2Fgrid.png", NULL, NULL, &r), 200);
    json_t *p = json_loads((const char *)r.body.data, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(p, "type")), "AuthProbeResult2");
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 401);
    assert_null(json_object_get(p, "substitute"));
    json_decref(p);
    tu_response_free(&r);
    login(&srv, "open sesame", 200, cookie, sizeof cookie);
    token_for(&srv, "secret", cookie, token, sizeof token);
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", token);
    assert_int_equal(get(&srv, "/auth/probe/secret%2Fgrid.png", bearer, NULL, &r), 200);
    p = json_loads((const char *)r.body.data, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 200);
    json_decref(p);
    assert_true(tu_header_contains(&r, "Access-Control-Allow-Origin", "*"));
    tu_response_free(&r);
    /* A token is no cookie: the image refuses it. */
    char as_cookie[1100];
    snprintf(as_cookie, sizeof as_cookie, "Cookie: tessera_access=%s", token);
    assert_int_equal(
        status_of(&srv, "/iiif/3/secret%2Fgrid.png/full/100,/0/default.jpg", as_cookie), 403);
    /* Nor is a cookie a token. */
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", strchr(cookie, '=') + 1);
    assert_int_equal(get(&srv, "/auth/probe/secret%2Fgrid.png", bearer, NULL, &r), 200);
    p = json_loads((const char *)r.body.data, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 403);
    json_decref(p);
    tu_response_free(&r);
    /* The degraded tier: 401 with a substitute the caller can see. */
    assert_int_equal(get(&srv, "/auth/probe/terms%2Fgrid.png", NULL, NULL, &r), 200);
    p = json_loads((const char *)r.body.data, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(p, "status")), 401);
    json_t *sub = json_array_get(json_object_get(p, "substitute"), 0);
    char want[256];
    snprintf(want, sizeof want, "%s/iiif/3/terms%%2Fgrid.png", srv.base);
    assert_string_equal(json_string_value(json_object_get(sub, "id")), want);
    json_decref(p);
    tu_response_free(&r);
    /* The probe is preflighted for its Authorization header. */
    char url[512];
    snprintf(url, sizeof url, "%s/auth/probe/secret%%2Fgrid.png", srv.base);
    const char *const pre[] = {"Origin: " ORIGIN, "Access-Control-Request-Method: GET",
                               "Access-Control-Request-Headers: authorization", NULL};
    assert_int_equal(tu_request("OPTIONS", url, pre, &r), 0);
    assert_int_equal(r.status, 204);
    assert_true(tu_header_contains(&r, "Access-Control-Allow-Headers", "authorization"));
    assert_true(tu_header_contains(&r, "Access-Control-Allow-Methods", "GET"));
    tu_response_free(&r);
}

static void test_kiosk_and_external_rules(void **state)
{
    (void)state;
    const char *kiosk = "/iiif/3/kiosk%2Fgrid.png/full/100,/0/default.jpg";
    assert_int_equal(status_of(&srv, kiosk, NULL), 401);
    struct tu_response r;
    char set[1024], cookie[1100];
    assert_int_equal(get(&srv, "/auth/access/kiosk?origin=" ORIGIN, NULL, NULL, &r), 200);
    assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set)); /* at once: no interaction */
    set[strcspn(set, ";")] = '\0';
    snprintf(cookie, sizeof cookie, "Cookie: %s", set);
    tu_response_free(&r);
    assert_int_equal(status_of(&srv, kiosk, cookie), 200);
    /* External: the trusted front end's header, or the client's network. */
    const char *room = "/iiif/3/room%2Fgrid.png/full/100,/0/default.jpg";
    assert_int_equal(status_of(&srv, room, NULL), 401);
    assert_int_equal(status_of(&srv, room, "X-Reading-Room: no"), 403);
    assert_int_equal(status_of(&srv, room, "X-Reading-Room: yes"), 200);
    assert_int_equal(status_of(&srv, "/iiif/3/lan%2Fgrid.png/full/100,/0/default.jpg", NULL), 200);
    assert_int_equal(status_of(&srv, "/iiif/3/far%2Fgrid.png/full/100,/0/default.jpg", NULL), 401);
    char token[1024];
    token_for(&srv, "room", "X-Reading-Room: yes", token, sizeof token);
    token_for(&srv, "lan", NULL, token, sizeof token);
    expect_error(&srv, "far?messageId=1&origin=" ORIGIN, NULL, "missingAspect");
    /* External rules have no access page. */
    assert_int_equal(status_of(&srv, "/auth/access/room", NULL), 404);
}

static void test_sessions_expire_and_logout_ends_them(void **state)
{
    (void)state;
    char cookie[1024];
    const char *img = "/iiif/3/secret%2Fgrid.png/full/100,/0/default.jpg";
    login(&brief, "open sesame", 200, cookie, sizeof cookie);
    assert_int_equal(status_of(&brief, img, cookie), 200);
    sleep(2);
    assert_int_equal(status_of(&brief, img, cookie), 403);
    expect_error(&brief, "secret?messageId=1&origin=" ORIGIN, cookie, "expiredAspect");
    struct tu_response r;
    char set[256];
    assert_int_equal(get(&srv, "/auth/logout/secret", cookie, NULL, &r), 200);
    assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
    assert_non_null(strstr(set, "tessera_access=;"));
    assert_non_null(strstr(set, "Max-Age=0"));
    tu_response_free(&r);
}

static void test_cookies_behind_https_are_secure_and_cross_site(void **state)
{
    (void)state;
    struct tu_response r;
    assert_int_equal(get(&down, "/auth/access/kiosk", NULL, NULL, &r), 200);
    char set[1024];
    assert_true(tu_header(&r, "Set-Cookie", 0, set, sizeof set));
    assert_non_null(strstr(set, "; HttpOnly"));
    assert_non_null(strstr(set, "; Secure"));
    assert_non_null(strstr(set, "; SameSite=None"));
    tu_response_free(&r);
    assert_int_equal(get(&down, "/iiif/3/kiosk%2Fgrid.png/info.json", NULL, NULL, &r), 401);
    assert_non_null(strstr((const char *)r.body.data,
                           "\"https://images.example/auth/probe/kiosk%2Fgrid.png\""));
    tu_response_free(&r);
    /* The external rule's answers also vary by its header. */
    assert_int_equal(get(&srv, "/iiif/3/room%2Fgrid.png/full/50,/0/default.jpg",
                         "X-Reading-Room: yes", NULL, &r),
                     200);
    assert_true(tu_header_contains(&r, "Vary", "X-Reading-Room"));
    tu_response_free(&r);
}

static void test_rules_without_a_secret_stop_the_start(void **state)
{
    (void)state;
    char ini[1200], cmd[4096], out[4096];
    snprintf(ini, sizeof ini, "%s/nosecret.ini", work);
    assert_int_equal(tu_write_text(ini, "[access a]\nmatch = x/\nprofile = kiosk\n"), 0);
    snprintf(cmd, sizeof cmd, "%s --root %s --listen 127.0.0.1:0 --config %s 2>&1", TESSERA_BIN,
             work, ini);
    assert_int_not_equal(tu_run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "secret"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_protocol_refuses_without_credentials),
        cmocka_unit_test(test_refused_info_json_declares_the_services),
        cmocka_unit_test(test_login_grants_the_full_image),
        cmocka_unit_test(test_login_form_posts_without_scripts),
        cmocka_unit_test(test_login_form_refuses_bad_posts),
        cmocka_unit_test(test_cached_authorised_answer_is_never_served_without_credentials),
        cmocka_unit_test(test_degraded_tier_is_a_smaller_image_of_its_own),
        cmocka_unit_test(test_token_error_profiles),
        cmocka_unit_test(test_probe_follows_the_token),
        cmocka_unit_test(test_kiosk_and_external_rules),
        cmocka_unit_test(test_sessions_expire_and_logout_ends_them),
        cmocka_unit_test(test_cookies_behind_https_are_secure_and_cross_site),
        cmocka_unit_test(test_rules_without_a_secret_stop_the_start),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
