/* The web front as a browser sees it: folder pages split into pages with every entry once,
 * thumbnails named in their alt text, and error pages in HTML for browsers, text for others. */
#include "harness.h"
#include "testutil.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

/* More than two pages of 500, so a middle page exists; names that sort differently by number
 * and by text ("f10" before "f2"), and one that needs HTML escaping. */
#define NFILES 1203
#define NFOLDERS 3
#define NENTRIES (NFILES + NFOLDERS)

static struct tu_server server;
static char names[NENTRIES][32];
static int seen[NENTRIES];

static const char *const HTML_ACCEPT[] = {
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", NULL};

static int group_setup(void **state)
{
    (void)state;
    char root[512], dir[600], path[1200];
    snprintf(root, sizeof root, "%s/root", TESSERA_TEST_WORK);
    snprintf(dir, sizeof dir, "%s/many", root);
    if (tu_mkdirs(dir) != 0)
        return -1;
    for (int i = 0; i < NFILES; i++) {
        /* Empty files: a listing goes by name and type, the thumbnails are not fetched here. */
        snprintf(names[i], sizeof names[i], i == 7 ? "f%d & co.tif" : "f%d.tif", i);
        snprintf(path, sizeof path, "%.600s/%.31s", dir, names[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            return -1;
        close(fd);
    }
    for (int i = 0; i < NFOLDERS; i++) {
        snprintf(names[NFILES + i], sizeof names[0], "sub%d", i);
        snprintf(path, sizeof path, "%.600s/%.31s", dir, names[NFILES + i]);
        if (tu_mkdirs(path) != 0)
            return -1;
    }
    snprintf(path, sizeof path, "%.512s/grid.tif", root);
    if (tu_copy_file(TESSERA_TEST_DATA "/retina-pyr-jpeg-256.tif", path) != 0)
        return -1;
    /* A file named like an image that is none: the server's own failure (500). */
    snprintf(path, sizeof path, "%.512s/broken.tif", root);
    FILE *f = fopen(path, "w");
    if (!f || fputs("not a TIFF\n", f) < 0 || fclose(f) != 0)
        return -1;
    return tu_server_start(&server, TESSERA_BIN, root, NULL);
}

static int group_teardown(void **state)
{
    (void)state;
    return tu_server_stop(&server) == 0 ? 0 : -1;
}

static void get(const char *path, const char *const *headers, long status, struct tu_response *r)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", server.base, path);
    if (tu_request("GET", url, headers, r) != 0)
        fail_msg("GET %s: no answer (curl %d)", path, r->curl_code);
    if (r->status != status)
        fail_msg("GET %s: status %ld, want %ld: %.200s", path, r->status, status,
                 (const char *)r->body.data);
}

/* The text between the first `open` at or after *from and the next `close`; advances *from. */
static bool next_between(const char **from, const char *open, const char *close, char *out,
                         size_t cap)
{
    const char *a = strstr(*from, open);
    if (!a)
        return false;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b || (size_t)(b - a) >= cap)
        return false;
    memcpy(out, a, (size_t)(b - a));
    out[b - a] = '\0';
    *from = b + strlen(close);
    return true;
}

/* The text a browser shows for a name: entities decoded, <wbr> line-break hints gone. */
static void shown_text(char *s)
{
    char *at;
    while ((at = strstr(s, "&amp;")) != NULL)
        memmove(at + 1, at + 5, strlen(at + 5) + 1);
    while ((at = strstr(s, "<wbr>")) != NULL)
        memmove(at, at + 5, strlen(at + 5) + 1);
}

static int name_index(const char *name)
{
    for (int i = 0; i < NENTRIES; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

static void test_folder_pages_list_every_entry_exactly_once(void **state)
{
    (void)state;
    memset(seen, 0, sizeof seen);
    char path[256] = "/browse/many";
    int pages = 0;
    while (path[0]) {
        struct tu_response r;
        get(path, NULL, 200, &r);
        pages++;
        const char *body = (const char *)r.body.data;
        /* Each page says where it is in the whole. */
        char want[96];
        snprintf(want, sizeof want, "of %d &middot; page %d of 3", NENTRIES, pages);
        if (!strstr(body, want))
            fail_msg("%s does not say \"%s\"", path, want);
        int items = 0;
        char name[64];
        for (const char *p = body;
             next_between(&p, "<span class=\"name\">", "</span>", name, sizeof name);) {
            shown_text(name);
            int i = name_index(name);
            if (i < 0)
                fail_msg("%s lists '%s', which is not in the folder", path, name);
            seen[i]++;
            items++;
        }
        assert_int_equal(items, pages < 3 ? 500 : NENTRIES - 1000);
        /* Previous on every page but the first; next on every page but the last. */
        assert_int_equal(strstr(body, "rel=\"prev\"") != NULL, pages > 1);
        char next[256] = "";
        const char *p = body;
        if (next_between(&p, "<a rel=\"next\" href=\"", "\"", next, sizeof next))
            snprintf(path, sizeof path, "%s", next);
        else
            path[0] = '\0';
        tu_response_free(&r);
        assert_true(pages <= 3);
    }
    assert_int_equal(pages, 3);
    for (int i = 0; i < NENTRIES; i++)
        if (seen[i] != 1)
            fail_msg("'%s' appears %d times over the pages", names[i], seen[i]);
}

static void test_folder_page_numbers_out_of_range_are_refused(void **state)
{
    (void)state;
    struct tu_response r;
    get("/browse/many?page=4", NULL, 404, &r);
    assert_non_null(strstr((const char *)r.body.data, "no page 4"));
    tu_response_free(&r);
    const char *bad[] = {"/browse/many?page=0", "/browse/many?page=two", "/browse/many?page=-1",
                         "/browse/many?page=99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        get(bad[i], NULL, 400, &r);
        tu_response_free(&r);
    }
    /* A small folder is one page: no pager at all. */
    get("/?page=1", NULL, 200, &r);
    assert_null(strstr((const char *)r.body.data, "class=\"pager\""));
    tu_response_free(&r);
}

static void test_thumbnails_carry_the_file_name_as_alt_text(void **state)
{
    (void)state;
    struct tu_response r;
    get("/", NULL, 200, &r);
    assert_non_null(strstr((const char *)r.body.data, "alt=\"grid.tif\""));
    assert_null(strstr((const char *)r.body.data, "alt=\"\""));
    tu_response_free(&r);
    /* "f7 & co.tif" sorts after "f699.tif": on the second page. */
    get("/browse/many?page=2", NULL, 200, &r);
    assert_non_null(strstr((const char *)r.body.data, "alt=\"f7 &amp; co.tif\""));
    tu_response_free(&r);
}

/* A browser's page: HTML with our stylesheet, the status and reason, and the link back. */
static void expect_error_page(const char *path, long status, const char *reason)
{
    struct tu_response r;
    get(path, HTML_ACCEPT, status, &r);
    char type[128] = "";
    tu_header(&r, "Content-Type", 0, type, sizeof type);
    assert_string_equal(type, "text/html; charset=utf-8");
    const char *body = (const char *)r.body.data;
    char code[32];
    snprintf(code, sizeof code, "<p class=\"code\">%ld</p>", status);
    if (!strstr(body, "<!doctype html>") || !strstr(body, "href=\"/static/style.css\"") ||
        !strstr(body, code) || !strstr(body, "<a class=\"home\" href=\"/\">") ||
        !strstr(body, reason))
        fail_msg("%s: not our error page with '%s': %.600s", path, reason, body);
    assert_true(tu_header_contains(&r, "Content-Security-Policy", "script-src 'self'"));
    assert_true(tu_header_contains(&r, "Vary", "Accept"));
    tu_response_free(&r);
}

/* Any other client: the one-line text it always got. */
static void expect_error_text(const char *path, long status)
{
    struct tu_response r;
    get(path, NULL, status, &r);
    char type[128] = "";
    tu_header(&r, "Content-Type", 0, type, sizeof type);
    assert_string_equal(type, "text/plain; charset=utf-8");
    char head[32];
    snprintf(head, sizeof head, "%ld ", status);
    assert_int_equal(strncmp((const char *)r.body.data, head, strlen(head)), 0);
    assert_non_null(memchr(r.body.data, '\n', r.body.len));
    assert_null(strstr((const char *)r.body.data, "<"));
    assert_true(tu_header_contains(&r, "Vary", "Accept"));
    tu_response_free(&r);
}

static void test_browsers_get_error_pages_other_clients_get_text(void **state)
{
    (void)state;
    expect_error_page("/no/such/page", 404, "no such route");
    expect_error_page("/viewer/missing.tif", 404, "missing.tif");
    expect_error_page("/browse/..%2F..", 403, "folder may not contain");
    expect_error_page("/browse/many?page=9", 404, "no page 9");
    expect_error_page("/manifest/nothing.tif", 404, "nothing.tif");
    expect_error_page("/manifest/broken.tif", 500, "broken.tif");
    expect_error_text("/no/such/page", 404);
    expect_error_text("/viewer/missing.tif", 404);
    expect_error_text("/browse/..%2F..", 403);
    expect_error_text("/manifest/broken.tif", 500);
    /* Image API clients keep the spec's plain answers, whatever they accept. */
    struct tu_response r;
    get("/iiif/3/missing.tif/info.json", HTML_ACCEPT, 404, &r);
    assert_true(tu_header_contains(&r, "Content-Type", "text/plain"));
    tu_response_free(&r);
}

int main(void)
{
    tu_http_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folder_pages_list_every_entry_exactly_once),
        cmocka_unit_test(test_folder_page_numbers_out_of_range_are_refused),
        cmocka_unit_test(test_thumbnails_carry_the_file_name_as_alt_text),
        cmocka_unit_test(test_browsers_get_error_pages_other_clients_get_text),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
