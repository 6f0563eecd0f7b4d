/* The admin endpoint's gate: the bearer token, the method, the identifier, and no endpoint at
 * all without a token. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "protocol/admin.h"
#include "server/router.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WORK TESSERA_TEST_WORK
#define TOKEN "s3cret-token-0123456789"

static struct ts_app *app_with_token(const char *token)
{
    if (tu_mkdirs(WORK "/root") != 0)
        return NULL;
    struct ts_app *app = calloc(1, sizeof *app);
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    snprintf(cfg.root, sizeof cfg.root, "%s", WORK "/root");
    snprintf(cfg.admin_token, sizeof cfg.admin_token, "%s", token);
    struct ts_err err = {0};
    if (!app || ts_app_init(app, &cfg, &err) != TS_OK) {
        fprintf(stderr, "app: %s\n", err.msg);
        tu_app_free(app);
        return NULL;
    }
    return app;
}

static int setup(void **state)
{
    *state = app_with_token(TOKEN);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    tu_app_free(*state);
    return 0;
}

static const char *one_header(void *ctx, const char *name)
{
    return !strcasecmp(name, "Authorization") ? ctx : NULL;
}

struct routed {
    struct ts_job job;
    int rc;
    struct ts_err err;
};

static void route(const struct ts_app *app, const char *method, const char *path, const char *query,
                  const char *authorization, struct routed *out)
{
    struct ts_request req = {method,     path, query, one_header, (void *)authorization,
                             "HTTP/1.1", NULL, NULL,  0};
    memset(out, 0, sizeof *out);
    out->rc = router_route(app, &req, &out->job, &out->err);
}

static const char *job_header(const struct ts_job *job, const char *name)
{
    for (int i = 0; i < job->nheaders; i++)
        if (!strcasecmp(job->headers[i].name, name))
            return job->headers[i].value;
    return NULL;
}

static void test_bearer_token_must_match_whole(void **state)
{
    (void)state;
    assert_true(admin_authorized("Bearer " TOKEN, TOKEN));
    assert_true(admin_authorized("bearer   " TOKEN " ", TOKEN));
    assert_false(admin_authorized(NULL, TOKEN));
    assert_false(admin_authorized("", TOKEN));
    assert_false(admin_authorized(TOKEN, TOKEN));
    assert_false(admin_authorized("Basic " TOKEN, TOKEN));
    assert_false(admin_authorized("Bearer ", TOKEN));
    assert_false(admin_authorized("Bearer " TOKEN "x", TOKEN));
    assert_false(admin_authorized("Bearer s3cret-token-012345678", TOKEN));
    assert_false(admin_authorized("Bearer S3cret-token-0123456789", TOKEN));
    /* No token configured: nothing opens it, not even an empty guess. */
    assert_false(admin_authorized("Bearer ", ""));
    assert_false(admin_authorized("Bearer x", ""));
}

static void test_purge_with_the_token_is_a_purge_job(void **state)
{
    struct routed r;
    route(*state, "POST", "/admin/purge", "x=1&id=sub%2Fa%20b%2Bc.tif", "Bearer " TOKEN, &r);
    if (r.rc != TS_OK)
        fail_msg("routing gave %d (%s)", r.rc, r.err.msg);
    assert_int_equal(r.job.kind, TS_JOB_PURGE);
    assert_string_equal(ts_buf_str(&r.job.identifier), "sub/a b+c.tif");
    assert_false(r.job.cacheable);
    ts_job_free(&r.job);
}

static void test_purge_without_or_with_a_wrong_token_is_401(void **state)
{
    const char *bad[] = {NULL, "Bearer nope-nope-nope-nope", "Basic " TOKEN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct routed r;
        route(*state, "POST", "/admin/purge", "id=a.tif", bad[i], &r);
        assert_int_equal(r.rc, TS_EUNAUTH);
        assert_int_equal(ts_status_http(r.rc), 401);
        const char *challenge = job_header(&r.job, "WWW-Authenticate");
        assert_non_null(challenge);
        assert_true(!strncmp(challenge, "Bearer realm=", 13));
        assert_int_equal(strstr(challenge, "invalid_token") != NULL, bad[i] != NULL);
        /* The reason never repeats what was sent. */
        assert_null(strstr(r.err.msg, "nope"));
        ts_job_free(&r.job);
    }
}

static void test_purge_refuses_other_methods_and_a_missing_identifier(void **state)
{
    struct routed r;
    route(*state, "GET", "/admin/purge", "id=a.tif", "Bearer " TOKEN, &r);
    assert_int_equal(r.rc, TS_EMETHOD);
    assert_string_equal(job_header(&r.job, "Allow"), "POST");
    ts_job_free(&r.job);
    const char *queries[] = {NULL, "", "id=", "ident=a.tif"};
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        route(*state, "POST", "/admin/purge", queries[i], "Bearer " TOKEN, &r);
        assert_int_equal(r.rc, TS_EINVAL);
        assert_non_null(strstr(r.err.msg, "id="));
        ts_job_free(&r.job);
    }
    route(*state, "POST", "/admin/purge", "id=a%00b", "Bearer " TOKEN, &r);
    assert_int_equal(r.rc, TS_EINVAL);
    ts_job_free(&r.job);
    route(*state, "POST", "/admin/other", "id=a.tif", "Bearer " TOKEN, &r);
    assert_int_equal(r.rc, TS_ENOTFOUND);
    ts_job_free(&r.job);
}

static void test_without_a_token_there_is_no_admin_endpoint(void **state)
{
    (void)state;
    struct ts_app *app = app_with_token("");
    assert_non_null(app);
    struct routed r;
    route(app, "POST", "/admin/purge", "id=a.tif", "Bearer ", &r);
    assert_int_equal(r.rc, TS_ENOTFOUND);
    assert_null(job_header(&r.job, "WWW-Authenticate"));
    ts_job_free(&r.job);
    /* And the other routes still refuse POST. */
    route(app, "POST", "/iiif/3/a.tif/info.json", NULL, NULL, &r);
    assert_int_equal(r.rc, TS_EMETHOD);
    ts_job_free(&r.job);
    tu_app_free(app);
}

static void test_short_tokens_and_two_sources_are_refused_at_start(void **state)
{
    (void)state;
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    char token[256];
    struct ts_err err = {0};
    snprintf(cfg.admin_token, sizeof cfg.admin_token, "short");
    assert_int_equal(ts_config_admin_token(&cfg, token, sizeof token, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "16"));
    snprintf(cfg.admin_token, sizeof cfg.admin_token, "has a space in it, long enough");
    assert_int_equal(ts_config_admin_token(&cfg, token, sizeof token, &err), TS_EINVAL);
    snprintf(cfg.admin_token, sizeof cfg.admin_token, "%s", TOKEN);
    snprintf(cfg.admin_token_file, sizeof cfg.admin_token_file, "/nonexistent");
    assert_int_equal(ts_config_check(&cfg, &err), TS_EINVAL);
}

static void test_token_file_gives_its_first_line(void **state)
{
    (void)state;
    assert_int_equal(tu_mkdirs(WORK), 0);
    const char *path = WORK "/token";
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(TOKEN "\r\nsecond line\n", f);
    fclose(f);
    struct ts_config cfg;
    ts_config_defaults(&cfg);
    snprintf(cfg.admin_token_file, sizeof cfg.admin_token_file, "%s", path);
    char token[256];
    struct ts_err err = {0};
    assert_int_equal(ts_config_admin_token(&cfg, token, sizeof token, &err), TS_OK);
    assert_string_equal(token, TOKEN);
    snprintf(cfg.admin_token_file, sizeof cfg.admin_token_file, "%s", WORK "/missing");
    assert_int_equal(ts_config_admin_token(&cfg, token, sizeof token, &err), TS_EINVAL);
    assert_non_null(strstr(err.msg, "missing"));
    assert_string_equal(token, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer_token_must_match_whole),
        cmocka_unit_test_setup_teardown(test_purge_with_the_token_is_a_purge_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_without_or_with_a_wrong_token_is_401, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_purge_refuses_other_methods_and_a_missing_identifier,
                                        setup, teardown),
        cmocka_unit_test(test_without_a_token_there_is_no_admin_endpoint),
        cmocka_unit_test(test_short_tokens_and_two_sources_are_refused_at_start),
        cmocka_unit_test(test_token_file_gives_its_first_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
