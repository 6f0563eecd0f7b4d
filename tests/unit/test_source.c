/* Identifiers to files below the image root: what resolves, what is refused, and reopening. */
/* cmocka needs these before it, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "image/source.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORK TESSERA_TEST_WORK
#define ROOT WORK "/root"
#define OUTSIDE WORK "/outside"

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot create %s", path);
    fputs(text, f);
    fclose(f);
}

/* The root holds plain files, a sub-folder, a file whose name ends in ";3", and links that
 * stay inside or lead out; outside it, a secret and the demo image. */
static int make_tree(void **state)
{
    (void)state;
    if (system("rm -rf '" WORK "'") != 0 || tu_mkdirs(ROOT "/sub") != 0 || tu_mkdirs(OUTSIDE) != 0)
        return -1;
    write_text(ROOT "/img.tif", "image");
    write_text(ROOT "/sub/b.png", "png");
    write_text(ROOT "/sub/.tif", "a hidden file");
    write_text(ROOT "/odd;3", "a name with a page-like suffix");
    write_text(ROOT "/replaced.tif", "first");
    write_text(ROOT "/kept.tif", "kept");
    write_text(ROOT "/sub/s_pyr_000_090.tif", "view");
    write_text(ROOT "/sub/s_pyr_020_090.jp2", "view");
    write_text(ROOT "/sub/s_pyr_350_090.tif", "view");
    write_text(ROOT "/sub/s_pyr_000_045.tif", "view");
    write_text(ROOT "/sub/s_pyr_000_090.tif.bak", "not an image name");
    write_text(ROOT "/sub/s_pyr_010_080.tif", "neither list: h not 0, v not 90");
    write_text(ROOT "/sub/t_pyr_030_090.tif", "another sequence");
    write_text(ROOT "/top_pyr_005_090.tif", "a sequence at the root");
    write_text(OUTSIDE "/secret.tif", "secret");
    write_text(OUTSIDE "/demo.jpg", "demo");
    if (symlink("img.tif", ROOT "/alias.tif") != 0 ||
        symlink("../img.tif", ROOT "/sub/up.tif") != 0 ||
        symlink(OUTSIDE "/secret.tif", ROOT "/escape.tif") != 0 ||
        symlink("../outside/secret.tif", ROOT "/escape-rel.tif") != 0 ||
        symlink(OUTSIDE, ROOT "/linkdir") != 0 ||
        symlink(ROOT "/img.tif", ROOT "/abs-alias.tif") != 0)
        return -1;
    return 0;
}

struct fixture {
    struct source_root root;
};

static int open_root(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct ts_err err = {0};
    if (!f || source_root_open(ROOT, NULL, &f->root, &err) != TS_OK) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int close_root(void **state)
{
    struct fixture *f = *state;
    source_root_close(&f->root);
    free(f);
    return 0;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("cannot stat %s", path);
    return st.st_ino;
}

static ino_t inode_of_fd(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        fail_msg("cannot fstat descriptor %d", fd);
    return st.st_ino;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

/* Resolves id and expects status; returns with out open on TS_OK (the caller closes). */
static void expect_resolve(const struct source_root *root, const char *id, int status,
                           struct source_file *out)
{
    struct ts_err err = {0};
    int rc = source_resolve(root, id, out, &err);
    if (rc != status)
        fail_msg("'%s' resolved with %d (%s), expected %d", id, rc, err.msg, status);
    if (rc != TS_OK)
        assert_int_equal(out->fd, -1);
}

static void test_file_resolves_to_an_open_descriptor_of_that_file(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, "img.tif", TS_OK, &src);
    assert_true(src.fd >= 0);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    assert_int_equal(src.st.st_ino, inode_of(ROOT "/img.tif"));
    assert_int_equal(src.st.st_size, strlen("image"));
    assert_int_equal(src.page, 0);
    assert_false(src.demo);
    assert_true(ends_with(src.path, "/root/img.tif"));
    source_close(&src);

    expect_resolve(&f->root, "sub/b.png", TS_OK, &src);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/sub/b.png"));
    source_close(&src);
}

static void test_missing_file_is_not_found(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, "nothing.tif", TS_ENOTFOUND, &src);
    expect_resolve(&f->root, "sub/nothing", TS_ENOTFOUND, &src);
    expect_resolve(&f->root, "nofolder/img.tif", TS_ENOTFOUND, &src);
    /* A folder is not an image. */
    expect_resolve(&f->root, "sub", TS_ENOTFOUND, &src);
}

static void test_identifier_without_extension_finds_the_file(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, "img", TS_OK, &src);
    assert_true(ends_with(src.path, "/root/img.tif"));
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);

    expect_resolve(&f->root, "sub/b", TS_OK, &src);
    assert_true(ends_with(src.path, "/root/sub/b.png"));
    source_close(&src);
}

static void test_traversal_absolute_empty_segments_and_controls_are_forbidden(void **state)
{
    struct fixture *f = *state;
    const char *forbidden[] = {"..",          "../outside/secret.tif",
                               "a/../b",      "sub/../img.tif",
                               "./img.tif",   "/etc/passwd",
                               "a//b",        "sub//b.png",
                               "img\x01.tif", "img\n.tif",
                               "img\x7f",     "sub\\b.png",
                               "sub/",        "sub//"};
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
        struct ts_err err = {0};
        int rc = source_check_identifier(forbidden[i], &err);
        if (rc != TS_EFORBIDDEN)
            fail_msg("check of '%s' gave %d, expected TS_EFORBIDDEN", forbidden[i], rc);
        assert_true(err.msg[0] != '\0');
        struct source_file src;
        expect_resolve(&f->root, forbidden[i], TS_EFORBIDDEN, &src);
    }
    struct ts_err err = {0};
    assert_int_equal(source_check_identifier("sub/b.png", &err), TS_OK);
    assert_int_equal(source_check_identifier("a..b/c.d", &err), TS_OK);
}

static void test_symlink_that_stays_inside_the_root_resolves(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, "alias.tif", TS_OK, &src);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);
    /* An absolute link is checked by where it really leads. */
    expect_resolve(&f->root, "abs-alias.tif", TS_OK, &src);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);
    expect_resolve(&f->root, "abs-alias.tif", TS_OK, &src);
    source_close(&src);
    assert_int_equal(source_reopen(&f->root, &src, &(struct ts_err){0}), TS_OK);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);
    /* Through "..", but never above the root. */
    expect_resolve(&f->root, "sub/up.tif", TS_OK, &src);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);
}

static void test_symlink_to_a_file_outside_the_root_is_forbidden(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, "escape.tif", TS_EFORBIDDEN, &src);
    expect_resolve(&f->root, "escape-rel.tif", TS_EFORBIDDEN, &src);
    /* The extension search must not find a way round it either. */
    expect_resolve(&f->root, "escape", TS_EFORBIDDEN, &src);
}

static void test_symlinked_directory_leading_outside_is_forbidden(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, "linkdir/secret.tif", TS_EFORBIDDEN, &src);
    expect_resolve(&f->root, "linkdir/secret", TS_EFORBIDDEN, &src);
}

static void test_page_suffix_names_a_page_of_the_file_before_it(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, "img.tif;2", TS_OK, &src);
    assert_int_equal(src.page, 1);
    assert_true(ends_with(src.path, "/root/img.tif"));
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);

    expect_resolve(&f->root, "img;1", TS_OK, &src);
    assert_int_equal(src.page, 0);
    source_close(&src);

    /* A file whose own name ends in ";3" is that file, page 0. */
    expect_resolve(&f->root, "odd;3", TS_OK, &src);
    assert_int_equal(src.page, 0);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/odd;3"));
    source_close(&src);

    /* Pages count from 1, and the suffix must be a number. */
    expect_resolve(&f->root, "img.tif;0", TS_ENOTFOUND, &src);
    expect_resolve(&f->root, "img.tif;x", TS_ENOTFOUND, &src);
    expect_resolve(&f->root, "nothing.tif;2", TS_ENOTFOUND, &src);
}

static void test_demo_identifier_opens_the_configured_demo_image(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    /* Without a demo image, "demo" is an ordinary (missing) identifier. */
    expect_resolve(&f->root, "demo", TS_ENOTFOUND, &src);

    struct source_root root;
    struct ts_err err = {0};
    assert_int_equal(source_root_open(ROOT, OUTSIDE "/demo.jpg", &root, &err), TS_OK);
    expect_resolve(&root, "demo", TS_OK, &src);
    assert_true(src.demo);
    assert_int_equal(inode_of_fd(src.fd), inode_of(OUTSIDE "/demo.jpg"));
    assert_string_equal(src.path, OUTSIDE "/demo.jpg");
    /* Reopening the demo image goes by its own path, which is not below the root. */
    source_close(&src);
    assert_int_equal(source_reopen(&root, &src, &err), TS_OK);
    assert_int_equal(inode_of_fd(src.fd), inode_of(OUTSIDE "/demo.jpg"));
    source_close(&src);
    source_root_close(&root);
    assert_int_equal(root.fd, -1);
}

static void test_reopen_of_an_unchanged_file_gives_the_same_inode(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    struct ts_err err = {0};
    expect_resolve(&f->root, "kept.tif", TS_OK, &src);
    ino_t before = inode_of_fd(src.fd);
    source_close(&src);
    assert_int_equal(source_reopen(&f->root, &src, &err), TS_OK);
    assert_true(src.fd >= 0);
    assert_int_equal(inode_of_fd(src.fd), before);
    /* Already open: nothing to do, the same descriptor stays. */
    int fd = src.fd;
    assert_int_equal(source_reopen(&f->root, &src, &err), TS_OK);
    assert_int_equal(src.fd, fd);
    source_close(&src);
}

static void test_reopen_after_a_rename_over_gives_the_new_file(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    struct ts_err err = {0};
    expect_resolve(&f->root, "replaced.tif", TS_OK, &src);
    ino_t before = inode_of_fd(src.fd);
    source_close(&src);
    write_text(ROOT "/replacement.tmp", "second");
    assert_int_equal(rename(ROOT "/replacement.tmp", ROOT "/replaced.tif"), 0);
    ino_t after = inode_of(ROOT "/replaced.tif");
    assert_true(after != before);
    /* The request goes on with the file the name gives now, and knows which one it is. */
    assert_int_equal(source_reopen(&f->root, &src, &err), TS_OK);
    assert_int_equal(inode_of_fd(src.fd), after);
    assert_int_equal(src.st.st_ino, after);
    assert_int_equal(src.st.st_size, 6);
    source_close(&src);

    /* Gone altogether: not found too. */
    expect_resolve(&f->root, "replaced.tif", TS_OK, &src);
    source_close(&src);
    assert_int_equal(unlink(ROOT "/replaced.tif"), 0);
    assert_int_equal(source_reopen(&f->root, &src, &err), TS_ENOTFOUND);
    assert_int_equal(src.fd, -1);
}

static void test_close_leaves_no_descriptor(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, "img.tif", TS_OK, &src);
    int fd = src.fd;
    assert_true(fd >= 0);
    source_close(&src);
    assert_int_equal(src.fd, -1);
    /* The descriptor itself was closed, and closing again is harmless. */
    assert_int_equal(close(fd), -1);
    source_close(&src);
    assert_int_equal(src.fd, -1);
}

/* iipsrv glues FILESYSTEM_PREFIX before the identifier: "/img.tif" (IIPImage's nginx rule
 * sends "IIIF=%2Fimg.tif") is a file below the root, however many slashes lead. */
static void test_leading_slashes_map_beneath_the_root(void **state)
{
    struct fixture *f = *state;
    const char *ids[] = {"/img.tif", "//img.tif", "///img", "/sub/b.png"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct source_file src;
        expect_resolve(&f->root, ids[i], TS_OK, &src);
        assert_true(ends_with(src.path, i == 3 ? "/root/sub/b.png" : "/root/img.tif"));
        source_close(&src);
    }
}

/* Debian's iipsrv has no prefix: clients send the full path of a file under the root. */
static void test_absolute_path_under_the_root_is_that_file(void **state)
{
    struct fixture *f = *state;
    struct source_file src;
    expect_resolve(&f->root, ROOT "/img.tif", TS_OK, &src);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);
    expect_resolve(&f->root, ROOT "//sub/b", TS_OK, &src);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/sub/b.png"));
    source_close(&src);
    /* Not found under the root answers as outside it would: the status does not reveal it. */
    expect_resolve(&f->root, ROOT "/nothing.tif", TS_EFORBIDDEN, &src);
    /* A page of a file given by its full path. */
    expect_resolve(&f->root, ROOT "/img.tif;2", TS_OK, &src);
    assert_int_equal(src.page, 1);
    source_close(&src);
}

static void test_absolute_path_outside_the_root_is_forbidden(void **state)
{
    struct fixture *f = *state;
    const char *ids[] = {OUTSIDE "/secret.tif",      "/etc/passwd",
                         "/nothing-here.tif",        ROOT "/../outside/secret.tif",
                         "/../outside/secret.tif",   ROOT "x/img.tif",
                         ROOT "/linkdir/secret.tif", ROOT "/escape.tif"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct source_file src;
        struct ts_err err = {0};
        int rc = source_resolve(&f->root, ids[i], &src, &err);
        if (rc != TS_EFORBIDDEN)
            fail_msg("'%s' resolved with %d (%s), expected TS_EFORBIDDEN", ids[i], rc, err.msg);
        assert_int_equal(src.fd, -1);
        assert_true(err.msg[0] != '\0');
    }
}

/* iipsrv without FILESYSTEM_PREFIX: a full path names that file wherever it is; relative
 * identifiers, "..", and what is not a regular file stay refused. */
static void test_allow_anywhere_opens_full_paths_outside_the_root(void **state)
{
    struct fixture *f = *state;
    struct ts_err err = {0};
    assert_int_equal(source_root_allow_anywhere(&f->root, &err), TS_OK);
    struct source_file src;
    expect_resolve(&f->root, OUTSIDE "/secret.tif", TS_OK, &src);
    assert_string_equal(src.path, OUTSIDE "/secret.tif");
    assert_int_equal(inode_of_fd(src.fd), inode_of(OUTSIDE "/secret.tif"));
    /* Handed on and opened again, from / as it was found. */
    source_close(&src);
    assert_int_equal(source_reopen(&f->root, &src, &err), TS_OK);
    assert_int_equal(inode_of_fd(src.fd), inode_of(OUTSIDE "/secret.tif"));
    source_close(&src);
    /* Without its extension, as any identifier. */
    expect_resolve(&f->root, OUTSIDE "/secret", TS_OK, &src);
    source_close(&src);
    /* A full path inside the root is still the root's file. */
    expect_resolve(&f->root, ROOT "/img.tif", TS_OK, &src);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);
    expect_resolve(&f->root, "/nothing-here.tif", TS_ENOTFOUND, &src);
    expect_resolve(&f->root, ROOT "/../outside/secret.tif", TS_EFORBIDDEN, &src);
    expect_resolve(&f->root, "../outside/secret.tif", TS_EFORBIDDEN, &src);
    expect_resolve(&f->root, "escape.tif", TS_EFORBIDDEN, &src);
    expect_resolve(&f->root, "/tmp", TS_ENOTFOUND, &src);
}

static void test_root_spelled_through_a_symbolic_link_is_recognised(void **state)
{
    (void)state;
    unlink(WORK "/rootlink");
    assert_int_equal(symlink(ROOT, WORK "/rootlink"), 0);
    struct source_root root;
    struct ts_err err = {0};
    assert_int_equal(source_root_open(WORK "/rootlink/", NULL, &root, &err), TS_OK);
    assert_string_equal(root.given, WORK "/rootlink");
    assert_string_equal(source_under_root(&root, WORK "/rootlink/sub/b.png"), "sub/b.png");
    char real[sizeof root.path + 16];
    snprintf(real, sizeof real, "%s//img.tif", root.path);
    assert_string_equal(source_under_root(&root, real), "img.tif");
    assert_null(source_under_root(&root, root.path));
    assert_null(source_under_root(&root, WORK "/rootlinkx/img.tif"));
    assert_null(source_under_root(&root, "img.tif"));
    struct source_file src;
    expect_resolve(&root, WORK "/rootlink/img.tif", TS_OK, &src);
    assert_int_equal(inode_of_fd(src.fd), inode_of(ROOT "/img.tif"));
    source_close(&src);
    expect_resolve(&root, ROOT "/img.tif", TS_OK, &src);
    source_close(&src);
    source_root_close(&root);
    unlink(WORK "/rootlink");
}

/* A sequence's view file names, and the views found in its folder: horizontal angles with a
 * file at vertical 90, vertical angles with one at horizontal 0, sorted. */
static void test_sequence_frames_and_views(void **state)
{
    struct fixture *f = *state;
    struct ts_err err = {0};
    char name[64];
    assert_int_equal(source_sequence_frame("sub/s", "_pyr_", 20, 90, name, sizeof name, &err),
                     TS_OK);
    assert_string_equal(name, "sub/s_pyr_020_090");
    assert_int_equal(source_sequence_frame("s", "_x_", 1234, -5, name, sizeof name, &err), TS_OK);
    assert_string_equal(name, "s_x_1234_-05");
    assert_int_equal(source_sequence_frame("a-long-name", "_pyr_", 0, 90, name, 12, &err),
                     TS_ETOOLONG);

    struct source_views *v = calloc(1, sizeof *v);
    assert_non_null(v);
    assert_int_equal(source_sequence_views(&f->root, "sub/s", "_pyr_", v, &err), TS_OK);
    assert_int_equal(v->nh, 3);
    assert_int_equal(v->h[0], 0);
    assert_int_equal(v->h[1], 20);
    assert_int_equal(v->h[2], 350);
    assert_int_equal(v->nv, 2);
    assert_int_equal(v->v[0], 45);
    assert_int_equal(v->v[1], 90);
    assert_int_equal(source_sequence_views(&f->root, "/top", "_pyr_", v, &err), TS_OK);
    assert_int_equal(v->nh, 1);
    assert_int_equal(v->h[0], 5);
    assert_int_equal(v->nv, 0);
    assert_int_equal(source_sequence_views(&f->root, "nodir/s", "_pyr_", v, &err), TS_ENOTFOUND);
    assert_int_equal(source_sequence_views(&f->root, "../outside/s", "_pyr_", v, &err),
                     TS_EFORBIDDEN);
    assert_int_equal(source_sequence_views(&f->root, "linkdir/s", "_pyr_", v, &err), TS_ENOTFOUND);
    free(v);
    /* And a view resolves as any identifier without its extension does. */
    struct source_file src;
    assert_int_equal(source_resolve(&f->root, "sub/s_pyr_020_090", &src, &err), TS_OK);
    assert_true(ends_with(src.path, "/sub/s_pyr_020_090.jp2"));
    source_close(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, open_root, close_root)
        T(test_file_resolves_to_an_open_descriptor_of_that_file),
        T(test_missing_file_is_not_found),
        T(test_identifier_without_extension_finds_the_file),
        T(test_traversal_absolute_empty_segments_and_controls_are_forbidden),
        T(test_symlink_that_stays_inside_the_root_resolves),
        T(test_symlink_to_a_file_outside_the_root_is_forbidden),
        T(test_symlinked_directory_leading_outside_is_forbidden),
        T(test_page_suffix_names_a_page_of_the_file_before_it),
        T(test_demo_identifier_opens_the_configured_demo_image),
        T(test_reopen_of_an_unchanged_file_gives_the_same_inode),
        T(test_reopen_after_a_rename_over_gives_the_new_file),
        T(test_close_leaves_no_descriptor),
        T(test_leading_slashes_map_beneath_the_root),
        T(test_absolute_path_under_the_root_is_that_file),
        T(test_absolute_path_outside_the_root_is_forbidden),
        T(test_allow_anywhere_opens_full_paths_outside_the_root),
        T(test_root_spelled_through_a_symbolic_link_is_recognised),
        T(test_sequence_frames_and_views),
#undef T
    };
    return cmocka_run_group_tests(tests, make_tree, NULL);
}
