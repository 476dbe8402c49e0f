/*
 * test_dataset.c -- the data set API: idx files (raw and gzip) written by
 * the test itself into a temporary folder, their failure paths (missing,
 * truncated at every byte, lying headers, corrupt compression), and data
 * sets from caller arrays with shuffle, split and slice.
 */
#include "testutil.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

Suite *suite_dataset(void);

/* Sanitizers reserve terabytes of address space, so the memory cap below
 * can only be applied to a plain build. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TEST_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define TEST_UNDER_SANITIZER 1
#endif
#endif
#ifndef TEST_UNDER_SANITIZER
#define TEST_UNDER_SANITIZER 0
#endif

/* ---- the temporary folder (an unchecked fixture: made and removed by the
 * runner itself, so it is cleaned up even when a forked test fails) ---- */

static char tmp_dir[64];

static void tmp_dir_create(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/hlr-test-dataset-XXXXXX");
    if (!mkdtemp(tmp_dir))
        tmp_dir[0] = '\0';
}

static void tmp_dir_remove(void)
{
    if (!tmp_dir[0])
        return;
    DIR *dir = opendir(tmp_dir);
    if (dir) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(dir)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
            unlink(path);
        }
        closedir(dir);
    }
    rmdir(tmp_dir);
    tmp_dir[0] = '\0';
}

/* The full path of `name` inside the temporary folder. */
static void tmp_path(char *out, size_t cap, const char *name)
{
    ck_assert_msg(tmp_dir[0] != '\0', "could not create a temporary folder under /tmp");
    snprintf(out, cap, "%s/%s", tmp_dir, name);
}

/* ---- writing idx files ---- */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* An idx image file: magic, n, rows, cols (as given, possibly lies), then
 * the npix pixel bytes actually present. */
static bytes idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, const unsigned char *pix,
                        size_t npix)
{
    bytes b = {malloc(16 + npix), 16 + npix};
    ck_assert_ptr_nonnull(b.p);
    put_be32(b.p, magic);
    put_be32(b.p + 4, n);
    put_be32(b.p + 8, rows);
    put_be32(b.p + 12, cols);
    if (npix)
        memcpy(b.p + 16, pix, npix);
    return b;
}

/* An idx label file: magic, n (as given), then the nlab label bytes present. */
static bytes idx_labels(uint32_t magic, uint32_t n, const unsigned char *lab, size_t nlab)
{
    bytes b = {malloc(8 + nlab), 8 + nlab};
    ck_assert_ptr_nonnull(b.p);
    put_be32(b.p, magic);
    put_be32(b.p + 4, n);
    if (nlab)
        memcpy(b.p + 8, lab, nlab);
    return b;
}

static void write_raw(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_msg(fwrite(p, 1, n, f) == n, "cannot write %zu bytes to %s", n, path);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *path, const unsigned char *p, size_t n)
{
    gzFile f = gzopen(path, "wb9");
    ck_assert_msg(f != NULL, "gzopen(%s) failed", path);
    if (n)
        ck_assert_msg(gzwrite(f, p, (unsigned)n) == (int)n, "gzwrite of %zu bytes to %s failed", n, path);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

/* The bytes of a file (to truncate or corrupt a gzip file made by write_gz). */
static bytes read_raw(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    ck_assert_int_ge(len, 0);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    bytes b = {malloc((size_t)len + 1), (size_t)len};
    ck_assert_ptr_nonnull(b.p);
    ck_assert_msg(fread(b.p, 1, b.n, f) == b.n, "short read of %s", path);
    fclose(f);
    return b;
}

/* ---- the standard small set: 18 images of 3 x 5 (rows != cols, so a
 * transposition shows), whose 270 pixels take every value 0..255, and
 * labels whose maximum is 7 while 4, 5 and 6 never occur ---- */

enum { STD_N = 18, STD_ROWS = 3, STD_COLS = 5, STD_PIX = STD_N * STD_ROWS * STD_COLS, STD_CLASSES = 8 };

static unsigned char std_pixels[STD_PIX];
static unsigned char std_labels[STD_N];

static void std_fill(void)
{
    for (int i = 0; i < STD_PIX; i++)
        std_pixels[i] = (unsigned char)((i * 7) % 256); /* 7 is odd: the first 256 cover 0..255 */
    for (int i = 0; i < STD_N; i++)
        std_labels[i] = (unsigned char)(i % 3 == 0 ? 7 : i % 4);
}

static bytes std_images_bytes(void) { return idx_images(0x00000803, STD_N, STD_ROWS, STD_COLS, std_pixels, STD_PIX); }
static bytes std_labels_bytes(void) { return idx_labels(0x00000801, STD_N, std_labels, STD_N); }

/* Write the standard set as `images` and `labels` (names in the folder),
 * raw or gzipped, and return their paths. */
static void std_write(const char *images, const char *labels, int gz_images, int gz_labels, char *img_path,
                      char *lab_path, size_t cap)
{
    std_fill();
    tmp_path(img_path, cap, images);
    tmp_path(lab_path, cap, labels);
    bytes bi = std_images_bytes(), bl = std_labels_bytes();
    (gz_images ? write_gz : write_raw)(img_path, bi.p, bi.n);
    (gz_labels ? write_gz : write_raw)(lab_path, bl.p, bl.n);
    free(bi.p);
    free(bl.p);
}

/*
 * Check a loaded data set against the standard set, value for value, and
 * free it.  The first problem found is described, the set freed, and only
 * then the test failed, so a failure leaks nothing under CK_FORK=no.
 */
static void expect_std_set_and_free(hlr_dataset *d, const char *what)
{
    ck_assert_msg(d != NULL, "%s: load failed: %s", what, hlr_last_error());
    char problem[512] = "";
    const float *x = hlr_dataset_inputs(d);
    const int32_t *y = hlr_dataset_labels(d);
    if (hlr_dataset_size(d) != STD_N)
        snprintf(problem, sizeof problem, "%lld samples, expected %d", (long long)hlr_dataset_size(d), STD_N);
    else if (hlr_dataset_num_classes(d) != STD_CLASSES)
        snprintf(problem, sizeof problem, "%d classes, expected %d (max label + 1)", hlr_dataset_num_classes(d),
                 STD_CLASSES);
    else if (hlr_dataset_sample_ndim(d) != 3 || hlr_dataset_sample_dim(d, 0) != 1 ||
             hlr_dataset_sample_dim(d, 1) != STD_ROWS || hlr_dataset_sample_dim(d, 2) != STD_COLS ||
             hlr_dataset_sample_dim(d, 3) != 0)
        snprintf(problem, sizeof problem, "sample shape has %d dims (%lld, %lld, %lld), expected (1, %d, %d)",
                 hlr_dataset_sample_ndim(d), (long long)hlr_dataset_sample_dim(d, 0),
                 (long long)hlr_dataset_sample_dim(d, 1), (long long)hlr_dataset_sample_dim(d, 2), STD_ROWS,
                 STD_COLS);
    else if (!x || !y)
        snprintf(problem, sizeof problem, "inputs %p, labels %p", (const void *)x, (const void *)y);
    if (!problem[0]) {
        /* Exactly byte / 255 in float, as torchvision's ToTensor computes
         * it: count the pixels that differ and name the first. */
        int wrong = 0, first = -1;
        for (int i = 0; i < STD_PIX; i++) {
            if (!(x[i] >= 0.0f && x[i] <= 1.0f) || x[i] != (float)std_pixels[i] / 255.0f) {
                wrong++;
                first = first < 0 ? i : first;
            }
        }
        if (wrong)
            snprintf(problem, sizeof problem, "%d of %d pixels are not exactly byte / 255; the first, pixel %d "
                     "(byte %d), is %.9g, expected %.9g", wrong, STD_PIX, first, std_pixels[first],
                     (double)x[first], (double)((float)std_pixels[first] / 255.0f));
    }
    for (int i = 0; !problem[0] && i < STD_N; i++)
        if (y[i] != std_labels[i])
            snprintf(problem, sizeof problem, "label %d is %d, expected %d", i, y[i], std_labels[i]);
    hlr_dataset_free(d);
    ck_assert_msg(!problem[0], "%s: %s", what, problem);
}

/* Expect the load to fail with a message that mentions each non-NULL fragment. */
static void expect_load_fails(const char *images, const char *labels, const char *frag1, const char *frag2,
                              const char *what)
{
    hlr_dataset *d = hlr_dataset_load_idx(images, labels);
    if (d) {
        hlr_dataset_free(d);
        ck_abort_msg("%s: hlr_dataset_load_idx succeeded, expected NULL", what);
    }
    if (frag1)
        ck_assert_msg(strstr(hlr_last_error(), frag1) != NULL, "%s: last error \"%s\" does not mention \"%s\"", what,
                      hlr_last_error(), frag1);
    if (frag2)
        ck_assert_msg(strstr(hlr_last_error(), frag2) != NULL, "%s: last error \"%s\" does not mention \"%s\"", what,
                      hlr_last_error(), frag2);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/*
 * Expect a load of tiny files whose header claims a huge size to fail, fast
 * and without allocating for the claimed size.  The load runs first in a
 * child process whose address space is capped at what it uses now plus
 * 256 MiB (not under a sanitizer, see above), so trusting the header shows
 * as a failure here rather than as swapping; then it is repeated here for
 * the message.
 */
static void expect_huge_claim_fails_fast_naming(const char *images, const char *labels, const char *named,
                                                const char *fragment, const char *what)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    ck_assert_msg(pid != -1, "fork failed");
    if (pid == 0) {
        if (!TEST_UNDER_SANITIZER) {
            long pages = 0;
            FILE *f = fopen("/proc/self/statm", "r");
            if (f) {
                if (fscanf(f, "%ld", &pages) != 1)
                    pages = 0;
                fclose(f);
            }
            if (pages > 0) {
                rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
                struct rlimit rl = {cap, cap};
                setrlimit(RLIMIT_AS, &rl);
            }
        }
        hlr_dataset *d = hlr_dataset_load_idx(images, labels);
        int code = d ? 10 : strstr(hlr_last_error(), "allocate") || strstr(hlr_last_error(), "memory") ? 11 : 0;
        hlr_dataset_free(d);
        _exit(code);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    double secs = seconds_since(&t0);
    ck_assert_msg(WIFEXITED(status), "%s: the loading process died (signal %d)", what,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    ck_assert_msg(WEXITSTATUS(status) != 10, "%s: the load succeeded, expected NULL", what);
    ck_assert_msg(WEXITSTATUS(status) != 11, "%s: the load ran out of memory: it allocated for the header's "
                  "claim instead of checking it against the file", what);
    ck_assert_msg(WEXITSTATUS(status) == 0, "%s: the loading process exited with %d", what, WEXITSTATUS(status));
    ck_assert_msg(secs < 2.0, "%s: failing took %.2f s, expected well under 2 s", what, secs);
    expect_load_fails(images, labels, named, fragment, what);
}

/* The same, where the message names the images file. */
static void expect_huge_claim_fails_fast(const char *images, const char *labels, const char *fragment,
                                         const char *what)
{
    expect_huge_claim_fails_fast_naming(images, labels, images, fragment, what);
}

/* ---- loading ---- */

START_TEST(test_idx_raw_loads_exact_pixels_labels_and_shape)
{
    char img[256], lab[256];
    std_write("raw-images", "raw-labels", 0, 0, img, lab, sizeof img);
    expect_std_set_and_free(hlr_dataset_load_idx(img, lab), "raw files");
}
END_TEST

START_TEST(test_idx_gzip_loads_the_same_as_raw)
{
    char img[256], lab[256];
    std_write("gz-images.gz", "gz-labels.gz", 1, 1, img, lab, sizeof img);
    expect_std_set_and_free(hlr_dataset_load_idx(img, lab), "gzip files");
}
END_TEST

START_TEST(test_idx_mixed_raw_and_gzip_load)
{
    char img[256], lab[256];
    std_write("mix-images.gz", "mix-labels", 1, 0, img, lab, sizeof img);
    expect_std_set_and_free(hlr_dataset_load_idx(img, lab), "gzip images, raw labels");
    std_write("mix2-images", "mix2-labels.gz", 0, 1, img, lab, sizeof img);
    expect_std_set_and_free(hlr_dataset_load_idx(img, lab), "raw images, gzip labels");
}
END_TEST

START_TEST(test_idx_pixel_extremes_are_exactly_0_and_1)
{
    char img[256], lab[256];
    tmp_path(img, sizeof img, "extreme-images");
    tmp_path(lab, sizeof lab, "extreme-labels");
    const unsigned char pix[] = {0, 255, 255, 0, 1, 254};
    const unsigned char labels[] = {255, 0, 3};
    bytes bi = idx_images(0x00000803, 3, 2, 1, pix, sizeof pix);
    bytes bl = idx_labels(0x00000801, 3, labels, sizeof labels);
    write_raw(img, bi.p, bi.n);
    write_raw(lab, bl.p, bl.n);
    free(bi.p);
    free(bl.p);
    hlr_dataset *d = hlr_dataset_load_idx(img, lab);
    ck_assert_msg(d != NULL, "load failed: %s", hlr_last_error());
    const float *x = hlr_dataset_inputs(d);
    ck_assert_msg(x[0] == 0.0f && x[1] == 1.0f && x[2] == 1.0f && x[3] == 0.0f,
                  "pixels 0, 255, 255, 0 became %.9g %.9g %.9g %.9g", (double)x[0], (double)x[1], (double)x[2],
                  (double)x[3]);
    /* The largest label byte, 255, gives 256 classes. */
    ck_assert_int_eq(hlr_dataset_num_classes(d), 256);
    ck_assert_int_eq(hlr_dataset_labels(d)[0], 255);
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 1), 2);
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 2), 1);
    hlr_dataset_free(d);
}
END_TEST

/* ---- load failures ---- */

START_TEST(test_idx_missing_file_fails_naming_it)
{
    char img[256], lab[256], missing[256];
    std_write("m-images", "m-labels", 0, 0, img, lab, sizeof img);
    tmp_path(missing, sizeof missing, "no-such-file");
    expect_load_fails(missing, lab, missing, NULL, "missing images file");
    expect_load_fails(img, missing, missing, NULL, "missing labels file");
    expect_load_fails("/nonexistent-hlr-dir/images", "/nonexistent-hlr-dir/labels", "/nonexistent-hlr-dir/images",
                      NULL, "both missing");
}
END_TEST

START_TEST(test_idx_null_path_fails)
{
    char img[256], lab[256];
    std_write("n-images", "n-labels", 0, 0, img, lab, sizeof img);
    expect_load_fails(NULL, lab, "images path is NULL", NULL, "NULL images path");
    expect_load_fails(img, NULL, "labels path is NULL", NULL, "NULL labels path");
    expect_load_fails(NULL, NULL, "NULL", NULL, "both paths NULL");
}
END_TEST

START_TEST(test_idx_directory_as_file_fails_naming_it)
{
    char img[256], lab[256];
    std_write("dir-images", "dir-labels", 0, 0, img, lab, sizeof img);
    expect_load_fails(tmp_dir, lab, tmp_dir, NULL, "a folder as the images file");
    expect_load_fails(img, tmp_dir, tmp_dir, NULL, "a folder as the labels file");
}
END_TEST

START_TEST(test_idx_bad_magic_fails_naming_the_file)
{
    char img[256], lab[256], bad[256];
    std_write("bm-images", "bm-labels", 0, 0, img, lab, sizeof img);
    /* Swapped files: each has the other's magic. */
    expect_load_fails(lab, img, lab, "magic", "labels file given as images");
    /* A wrong magic in an otherwise valid image file, raw and gzipped. */
    tmp_path(bad, sizeof bad, "bm-bad-images");
    const uint32_t magics[] = {0x00000000, 0x03080000, 0x00000802, 0x00000804, 0x00000c03, 0xFFFFFFFF};
    for (size_t k = 0; k < sizeof magics / sizeof magics[0]; k++) {
        bytes b = idx_images(magics[k], STD_N, STD_ROWS, STD_COLS, std_pixels, STD_PIX);
        char what[128];
        snprintf(what, sizeof what, "image magic 0x%08x", magics[k]);
        write_raw(bad, b.p, b.n);
        expect_load_fails(bad, lab, bad, "magic", what);
        write_gz(bad, b.p, b.n);
        expect_load_fails(bad, lab, bad, "magic", what);
        free(b.p);
    }
    const uint32_t label_magics[] = {0x00000803, 0x00000800, 0x01000000};
    for (size_t k = 0; k < sizeof label_magics / sizeof label_magics[0]; k++) {
        bytes b = idx_labels(label_magics[k], STD_N, std_labels, STD_N);
        char what[128];
        snprintf(what, sizeof what, "label magic 0x%08x", label_magics[k]);
        write_raw(bad, b.p, b.n);
        expect_load_fails(img, bad, bad, "magic", what);
        free(b.p);
    }
}
END_TEST

/* A FIFO as either file is refused at once (it used to block forever in gzopen). */
START_TEST(test_idx_fifo_fails_without_blocking)
{
    char img[256], lab[256], pipe[256];
    std_write("ff-images", "ff-labels", 0, 0, img, lab, sizeof img);
    tmp_path(pipe, sizeof pipe, "ff-pipe");
    for (int which = 0; which < 2; which++) {
        fifo_guard g;
        fifo_guard_start(&g, pipe);
        hlr_dataset *d = which == 0 ? hlr_dataset_load_idx(pipe, lab) : hlr_dataset_load_idx(img, pipe);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", hlr_last_error());
        int blocked = fifo_guard_stop(&g);
        hlr_dataset_free(d);
        ck_assert_msg(!blocked, "a FIFO as the %s file blocked until a writer came", which ? "labels" : "images");
        ck_assert_ptr_null(d);
        ck_assert_msg(strstr(msg, "not a regular file") && strstr(msg, pipe), "message: %s", msg);
    }
}
END_TEST

/* A gzip file of `zeros` zero bytes after the given header, made without
 * holding them all in memory. */
static void write_gz_bomb(const char *path, const unsigned char *header, size_t hlen, size_t zeros)
{
    gzFile f = gzopen(path, "wb1");
    ck_assert_msg(f != NULL, "gzopen(%s) failed", path);
    ck_assert_int_eq(gzwrite(f, header, (unsigned)hlen), (int)hlen);
    static const unsigned char block[1 << 16];
    for (size_t done = 0; done < zeros; done += sizeof block)
        ck_assert_int_eq(gzwrite(f, block, sizeof block), (int)sizeof block);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

/*
 * A gzip bomb: a header for one 28 x 28 image (or one label) and 512 MiB of
 * zeros, in about half a megabyte.  It must be refused after the promised
 * bytes and one more: the loader used to inflate the whole stream first,
 * so the child process (its address space capped 256 MiB above its size)
 * ran out of memory.
 */
START_TEST(test_idx_gzip_bomb_is_refused_without_inflating_it)
{
    char img[256], lab[256], bomb[256];
    std_write("gb-images", "gb-labels", 0, 0, img, lab, sizeof img);
    tmp_path(bomb, sizeof bomb, "gb-bomb.gz");
    const size_t zeros = (size_t)512 << 20;
    unsigned char h[16];
    put_be32(h, 0x00000803);
    put_be32(h + 4, 1);
    put_be32(h + 8, 28);
    put_be32(h + 12, 28);
    write_gz_bomb(bomb, h, 16, zeros);
    char one_label[256];
    tmp_path(one_label, sizeof one_label, "gb-one-label");
    unsigned char seven = 7;
    bytes b = idx_labels(0x00000801, 1, &seven, 1);
    write_raw(one_label, b.p, b.n);
    free(b.p);
    expect_huge_claim_fails_fast(bomb, one_label, "longer than its header says", "images: one image, then 512 MiB");

    put_be32(h, 0x00000801);
    put_be32(h + 4, STD_N);
    write_gz_bomb(bomb, h, 8, zeros);
    expect_huge_claim_fails_fast_naming(img, bomb, bomb, "longer than its header says",
                                        "labels: 18 labels, then 512 MiB");
}
END_TEST

START_TEST(test_idx_count_mismatch_fails_naming_both_counts)
{
    char img[256], lab[256];
    std_write("cm-images", "cm-labels", 0, 0, img, lab, sizeof img);
    /* 17 consistent labels against 18 images. */
    bytes b = idx_labels(0x00000801, STD_N - 1, std_labels, STD_N - 1);
    write_raw(lab, b.p, b.n);
    free(b.p);
    expect_load_fails(img, lab, "18 images", "17 labels", "18 images, 17 labels");
    /* 19 labels against 18 images. */
    unsigned char more[STD_N + 1] = {0};
    b = idx_labels(0x00000801, STD_N + 1, more, sizeof more);
    write_raw(lab, b.p, b.n);
    free(b.p);
    expect_load_fails(img, lab, "18 images", "19 labels", "18 images, 19 labels");
}
END_TEST

START_TEST(test_idx_truncated_at_every_offset_fails_cleanly)
{
    char img[256], lab[256], cut[256];
    std_write("t-images", "t-labels", 0, 0, img, lab, sizeof img);
    tmp_path(cut, sizeof cut, "t-cut");
    bytes bi = std_images_bytes(), bl = std_labels_bytes();
    for (size_t len = 0; len < bi.n; len++) {
        char what[128];
        snprintf(what, sizeof what, "images cut to %zu of %zu bytes", len, bi.n);
        write_raw(cut, bi.p, len);
        expect_load_fails(cut, lab, cut, NULL, what);
    }
    for (size_t len = 0; len < bl.n; len++) {
        char what[128];
        snprintf(what, sizeof what, "labels cut to %zu of %zu bytes", len, bl.n);
        write_raw(cut, bl.p, len);
        expect_load_fails(img, cut, cut, NULL, what);
    }
    free(bi.p);
    free(bl.p);
}
END_TEST

START_TEST(test_idx_gzip_truncated_at_every_offset_fails_cleanly)
{
    char img[256], lab[256], cut[256];
    std_write("tg-images.gz", "tg-labels.gz", 1, 1, img, lab, sizeof img);
    tmp_path(cut, sizeof cut, "tg-cut.gz");
    bytes gi = read_raw(img), gl = read_raw(lab);
    ck_assert_msg(gi.n > 18, "the gzip file has only %zu bytes", gi.n);
    for (size_t len = 0; len < gi.n; len++) {
        char what[128];
        snprintf(what, sizeof what, "gzip images cut to %zu of %zu bytes", len, gi.n);
        write_raw(cut, gi.p, len);
        expect_load_fails(cut, lab, cut, NULL, what);
    }
    for (size_t len = 0; len < gl.n; len++) {
        char what[128];
        snprintf(what, sizeof what, "gzip labels cut to %zu of %zu bytes", len, gl.n);
        write_raw(cut, gl.p, len);
        expect_load_fails(img, cut, cut, NULL, what);
    }
    free(gi.p);
    free(gl.p);
}
END_TEST

START_TEST(test_idx_trailing_bytes_fail)
{
    char img[256], lab[256], extra[256];
    std_write("tb-images", "tb-labels", 0, 0, img, lab, sizeof img);
    tmp_path(extra, sizeof extra, "tb-extra");
    const size_t extras[] = {1, STD_COLS, STD_ROWS * STD_COLS, 70000};
    for (size_t k = 0; k < sizeof extras / sizeof extras[0]; k++) {
        size_t npix = STD_PIX + extras[k];
        unsigned char *pix = calloc(npix, 1);
        ck_assert_ptr_nonnull(pix);
        memcpy(pix, std_pixels, STD_PIX);
        bytes b = idx_images(0x00000803, STD_N, STD_ROWS, STD_COLS, pix, npix);
        char what[128];
        snprintf(what, sizeof what, "%zu extra image bytes", extras[k]);
        write_raw(extra, b.p, b.n);
        expect_load_fails(extra, lab, extra, NULL, what);
        write_gz(extra, b.p, b.n);
        expect_load_fails(extra, lab, extra, NULL, what);
        free(b.p);
        free(pix);
    }
    unsigned char labs[STD_N + 1];
    memcpy(labs, std_labels, STD_N);
    labs[STD_N] = 1;
    bytes b = idx_labels(0x00000801, STD_N, labs, sizeof labs);
    write_raw(extra, b.p, b.n);
    expect_load_fails(img, extra, extra, NULL, "1 extra label byte");
    write_gz(extra, b.p, b.n);
    expect_load_fails(img, extra, extra, NULL, "1 extra label byte, gzip");
    free(b.p);
}
END_TEST

START_TEST(test_idx_huge_header_count_fails_fast_without_allocating)
{
    char img[256], lab[256], big[256], biglab[256];
    std_write("h-images", "h-labels", 0, 0, img, lab, sizeof img);
    tmp_path(big, sizeof big, "h-big-images");
    tmp_path(biglab, sizeof biglab, "h-big-labels");

    /* 0xFFFFFFFF images of 3 x 5 in a 286-byte file. */
    bytes b = idx_images(0x00000803, 0xFFFFFFFFu, STD_ROWS, STD_COLS, std_pixels, STD_PIX);
    write_raw(big, b.p, b.n);
    free(b.p);
    expect_huge_claim_fails_fast(big, lab, NULL, "0xFFFFFFFF images");

    /* Huge sides. */
    b = idx_images(0x00000803, STD_N, 0xFFFFFFFFu, 0xFFFFFFFFu, std_pixels, STD_PIX);
    write_raw(big, b.p, b.n);
    free(b.p);
    expect_huge_claim_fails_fast(big, lab, NULL, "0xFFFFFFFF x 0xFFFFFFFF pixels");

    /* A plausible MNIST-like header (1e8 images of 28 x 28, 78 GB as
     * floats) whose labels agree, in tiny files, raw and gzipped: only the
     * check of the header against the bytes present can catch it. */
    const uint32_t n = 100000000u;
    b = idx_images(0x00000803, n, 28, 28, std_pixels, STD_PIX);
    bytes bl = idx_labels(0x00000801, n, std_labels, STD_N);
    write_raw(big, b.p, b.n);
    write_raw(biglab, bl.p, bl.n);
    expect_huge_claim_fails_fast(big, biglab, NULL, "1e8 images and labels claimed, raw");
    write_gz(big, b.p, b.n);
    write_gz(biglab, bl.p, bl.n);
    expect_huge_claim_fails_fast(big, biglab, NULL, "1e8 images and labels claimed, gzip");
    free(b.p);
    free(bl.p);

    /* Labels claiming 0xFFFFFFFF in a tiny file, images valid. */
    b = idx_labels(0x00000801, 0xFFFFFFFFu, std_labels, STD_N);
    write_raw(biglab, b.p, b.n);
    free(b.p);
    hlr_dataset *d = hlr_dataset_load_idx(img, biglab);
    ck_assert_ptr_null(d);
    ck_assert_error_mentions(biglab);
}
END_TEST

START_TEST(test_idx_zero_sizes_fail)
{
    char img[256], lab[256], bad[256], badlab[256];
    std_write("z-images", "z-labels", 0, 0, img, lab, sizeof img);
    tmp_path(bad, sizeof bad, "z-bad-images");
    tmp_path(badlab, sizeof badlab, "z-bad-labels");

    bytes b = idx_images(0x00000803, STD_N, 0, STD_COLS, NULL, 0);
    write_raw(bad, b.p, b.n);
    free(b.p);
    expect_load_fails(bad, lab, bad, NULL, "zero rows");

    b = idx_images(0x00000803, STD_N, STD_ROWS, 0, NULL, 0);
    write_raw(bad, b.p, b.n);
    free(b.p);
    expect_load_fails(bad, lab, bad, NULL, "zero columns");

    /* Zero images with zero labels: consistent, but an empty data set. */
    b = idx_images(0x00000803, 0, STD_ROWS, STD_COLS, NULL, 0);
    bytes bl = idx_labels(0x00000801, 0, NULL, 0);
    write_raw(bad, b.p, b.n);
    write_raw(badlab, bl.p, bl.n);
    free(b.p);
    free(bl.p);
    expect_load_fails(bad, badlab, bad, NULL, "zero images");
}
END_TEST

START_TEST(test_idx_corrupt_gzip_fails_naming_the_file)
{
    char img[256], lab[256], bad[256];
    std_write("c-images.gz", "c-labels.gz", 1, 1, img, lab, sizeof img);
    tmp_path(bad, sizeof bad, "c-bad.gz");
    bytes g = read_raw(img);
    /* gzopen's header is 10 bytes, the trailer 8 (CRC-32, then length). */
    ck_assert_msg(g.n > 40, "the gzip file has only %zu bytes", g.n);
    size_t body = g.n - 18;
    const size_t offsets[] = {10 + body / 4, 10 + body / 3, 10 + body / 2, 10 + 2 * body / 3, 10 + 3 * body / 4,
                              g.n - 8 /* CRC */, g.n - 2 /* length */};
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        const unsigned char flips[] = {0xFF, 0x01, 0x80};
        for (size_t f = 0; f < sizeof flips; f++) {
            g.p[offsets[k]] ^= flips[f];
            write_raw(bad, g.p, g.n);
            g.p[offsets[k]] ^= flips[f];
            char what[128];
            snprintf(what, sizeof what, "gzip images with byte %zu of %zu xor 0x%02x", offsets[k], g.n, flips[f]);
            expect_load_fails(bad, lab, bad, NULL, what);
        }
    }
    free(g.p);

    /* The label file too. */
    g = read_raw(lab);
    g.p[g.n - 5] ^= 0xFF; /* in the CRC */
    write_raw(bad, g.p, g.n);
    expect_load_fails(img, bad, bad, NULL, "gzip labels with a corrupt CRC");
    free(g.p);
}
END_TEST

/* ---- data sets from arrays: samples of shape (2, 3) whose six values
 * encode the sample's id (8 id + j) and whose label is id % 7, so any
 * reordering can be checked sample by sample ---- */

enum { ENC_F = 6, ENC_CLASSES = 7 };
static const int64_t enc_shape[] = {2, 3};

static hlr_dataset *make_encoded(int64_t n)
{
    float *x = malloc((size_t)n * ENC_F * sizeof(float));
    int32_t *y = malloc((size_t)n * sizeof(int32_t));
    ck_assert(x && y);
    for (int64_t i = 0; i < n; i++) {
        for (int j = 0; j < ENC_F; j++)
            x[i * ENC_F + j] = (float)(i * 8 + j);
        y[i] = (int32_t)(i % ENC_CLASSES);
    }
    hlr_dataset *d = hlr_dataset_from(2, enc_shape, n, x, y, ENC_CLASSES);
    free(x);
    free(y);
    ck_assert_msg(d != NULL, "hlr_dataset_from(%lld samples) failed: %s", (long long)n, hlr_last_error());
    return d;
}

/* The id of sample p, checking that its six values and its label agree with it. */
static int64_t encoded_id(const hlr_dataset *d, int64_t p)
{
    const float *x = hlr_dataset_inputs(d) + p * ENC_F;
    int64_t id = (int64_t)x[0] / 8;
    ck_assert_msg(x[0] == (float)(id * 8), "sample %lld starts with %g, not a multiple of 8", (long long)p,
                  (double)x[0]);
    for (int j = 1; j < ENC_F; j++)
        ck_assert_msg(x[j] == (float)(id * 8 + j), "sample %lld (id %lld) value %d is %g, expected %g: rows were mixed",
                      (long long)p, (long long)id, j, (double)x[j], (double)(id * 8 + j));
    int32_t label = hlr_dataset_labels(d)[p];
    ck_assert_msg(label == id % ENC_CLASSES, "sample %lld (id %lld) has label %d, expected %lld: the label did not "
                  "follow its image", (long long)p, (long long)id, label, (long long)(id % ENC_CLASSES));
    return id;
}

/* Expect d to hold exactly ids first, first + 1, ..., in order. */
static void expect_ids_in_order(const hlr_dataset *d, int64_t first, int64_t count, const char *what)
{
    ck_assert_msg(hlr_dataset_size(d) == count, "%s: %lld samples, expected %lld", what,
                  (long long)hlr_dataset_size(d), (long long)count);
    for (int64_t p = 0; p < count; p++) {
        int64_t id = encoded_id(d, p);
        ck_assert_msg(id == first + p, "%s: sample %lld has id %lld, expected %lld", what, (long long)p,
                      (long long)id, (long long)(first + p));
    }
}

START_TEST(test_dataset_from_copies_and_reports_shape)
{
    enum { N = 4 };
    float x[N * ENC_F];
    int32_t y[N] = {0, 2, 1, 2};
    for (int i = 0; i < N * ENC_F; i++)
        x[i] = (float)i * 0.5f;
    hlr_dataset *d = hlr_dataset_from(2, enc_shape, N, x, y, 5);
    ck_assert_msg(d != NULL, "hlr_dataset_from failed: %s", hlr_last_error());
    ck_assert_ptr_ne(hlr_dataset_inputs(d), x);
    ck_assert_ptr_ne(hlr_dataset_labels(d), y);
    /* Changing the caller's arrays does not change the data set. */
    for (int i = 0; i < N * ENC_F; i++)
        x[i] = -1.0f;
    for (int i = 0; i < N; i++)
        y[i] = 4;
    for (int i = 0; i < N * ENC_F; i++)
        ck_assert_msg(hlr_dataset_inputs(d)[i] == (float)i * 0.5f, "input %d is %g, expected %g", i,
                      (double)hlr_dataset_inputs(d)[i], (double)((float)i * 0.5f));
    const int32_t want[N] = {0, 2, 1, 2};
    for (int i = 0; i < N; i++)
        ck_assert_msg(hlr_dataset_labels(d)[i] == want[i], "label %d is %d, expected %d", i,
                      hlr_dataset_labels(d)[i], want[i]);
    ck_assert_int_eq(hlr_dataset_size(d), N);
    ck_assert_int_eq(hlr_dataset_num_classes(d), 5); /* as given, not max label + 1 */
    ck_assert_int_eq(hlr_dataset_sample_ndim(d), 2);
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 0), 2);
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 1), 3);
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 2), 0);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_dataset_from_rejects_invalid_arguments)
{
    float x[4 * ENC_F] = {0};
    int32_t y[4] = {0, 1, 2, 0};
    const int64_t zero_dim[] = {2, 0};
    const int64_t neg_dim[] = {-1, 3};
    const int64_t huge[] = {(int64_t)1 << 40, (int64_t)1 << 40};
    const int64_t nine[HLR_MAX_DIMS + 1] = {1, 1, 1, 1, 1, 1, 1, 1, 1};

    ck_assert_ptr_null(hlr_dataset_from(2, NULL, 4, x, y, 3));
    ck_assert_error_mentions("NULL");
    ck_assert_ptr_null(hlr_dataset_from(2, enc_shape, 4, NULL, y, 3));
    ck_assert_error_mentions("NULL");
    ck_assert_ptr_null(hlr_dataset_from(2, enc_shape, 4, x, NULL, 3));
    ck_assert_error_mentions("NULL");

    ck_assert_ptr_null(hlr_dataset_from(2, enc_shape, 0, x, y, 3));
    ck_assert_error_mentions("n >= 1");
    ck_assert_ptr_null(hlr_dataset_from(2, enc_shape, -5, x, y, 3));
    ck_assert_error_mentions("n >= 1");

    ck_assert_ptr_null(hlr_dataset_from(2, enc_shape, 4, x, y, 0));
    ck_assert_error_mentions("num_classes");
    ck_assert_ptr_null(hlr_dataset_from(2, enc_shape, 4, x, y, -3));
    ck_assert_error_mentions("num_classes");

    ck_assert_ptr_null(hlr_dataset_from(0, enc_shape, 4, x, y, 3));
    ck_assert_error_mentions("dimensions");
    ck_assert_ptr_null(hlr_dataset_from(-1, enc_shape, 4, x, y, 3));
    ck_assert_error_mentions("dimensions");
    ck_assert_ptr_null(hlr_dataset_from(HLR_MAX_DIMS + 1, nine, 4, x, y, 3));
    ck_assert_error_mentions("dimensions");

    ck_assert_ptr_null(hlr_dataset_from(2, zero_dim, 4, x, y, 3));
    ck_assert_error_mentions("dimension 1");
    ck_assert_ptr_null(hlr_dataset_from(2, neg_dim, 4, x, y, 3));
    ck_assert_error_mentions("dimension 0");
    ck_assert_ptr_null(hlr_dataset_from(2, huge, 1, x, y, 3));
    ck_assert_error_mentions("dimension 1");

    /* Labels outside [0, num_classes), at the first and last position. */
    int32_t low[4] = {-1, 0, 0, 0};
    ck_assert_ptr_null(hlr_dataset_from(2, enc_shape, 4, x, low, 3));
    ck_assert_error_mentions("label -1");
    int32_t high[4] = {0, 1, 2, 3};
    ck_assert_ptr_null(hlr_dataset_from(2, enc_shape, 4, x, high, 3));
    ck_assert_error_mentions("label 3");
    /* The boundary itself is fine. */
    hlr_dataset *d = hlr_dataset_from(2, enc_shape, 4, x, high, 4);
    ck_assert_msg(d != NULL, "labels 0..3 with 4 classes rejected: %s", hlr_last_error());
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_dataset_shuffle_is_a_permutation_with_labels_following)
{
    enum { N = 50 };
    hlr_dataset *d = make_encoded(N);
    ck_assert_ok(hlr_dataset_shuffle(d, 123));
    ck_assert_int_eq(hlr_dataset_size(d), N);
    int seen[N] = {0};
    int moved = 0;
    for (int64_t p = 0; p < N; p++) {
        int64_t id = encoded_id(d, p);
        ck_assert_msg(id >= 0 && id < N, "sample %lld has id %lld, outside 0..%d", (long long)p, (long long)id, N - 1);
        ck_assert_msg(seen[id] == 0, "id %lld appears twice after shuffling", (long long)id);
        seen[id] = 1;
        moved += id != p;
    }
    ck_assert_msg(moved >= N / 2, "only %d of %d samples moved", moved, N);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_dataset_shuffle_is_deterministic_per_seed)
{
    enum { N = 40 };
    hlr_dataset *a = make_encoded(N), *b = make_encoded(N), *c = make_encoded(N);
    ck_assert_ok(hlr_dataset_shuffle(a, 7));
    ck_assert_ok(hlr_dataset_shuffle(b, 7));
    ck_assert_ok(hlr_dataset_shuffle(c, 8));
    int differ = 0;
    for (int64_t p = 0; p < N; p++) {
        int64_t ia = encoded_id(a, p), ib = encoded_id(b, p), ic = encoded_id(c, p);
        ck_assert_msg(ia == ib, "seed 7 twice: position %lld holds id %lld, then id %lld", (long long)p,
                      (long long)ia, (long long)ib);
        differ += ia != ic;
    }
    ck_assert_msg(differ > 0, "seeds 7 and 8 gave the same order of %d samples", N);
    ck_assert_int_eq(memcmp(hlr_dataset_inputs(a), hlr_dataset_inputs(b), N * ENC_F * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(hlr_dataset_labels(a), hlr_dataset_labels(b), N * sizeof(int32_t)), 0);
    hlr_dataset_free(a);
    hlr_dataset_free(b);
    hlr_dataset_free(c);
}
END_TEST

START_TEST(test_dataset_shuffle_edge_cases)
{
    ck_assert_status(hlr_dataset_shuffle(NULL, 1), HLR_EINVAL);
    ck_assert_error_mentions("NULL");
    hlr_dataset *one = make_encoded(1);
    ck_assert_ok(hlr_dataset_shuffle(one, 99));
    expect_ids_in_order(one, 0, 1, "a one-sample set after shuffling");
    hlr_dataset_free(one);
}
END_TEST

START_TEST(test_dataset_split_moves_round_fraction_to_the_tail)
{
    /* Expected tails worked out by hand as round(fraction * n), halves up. */
    static const struct {
        int64_t n;
        double fraction;
        int64_t tail;
    } cases[] = {{10, 0.25, 3}, {10, 0.3, 3}, {10, 0.1, 1}, {10, 0.9, 9}, {7, 0.5, 4},
                 {3, 0.5, 2},   {50, 0.2, 10}, {2, 0.5, 1}, {9, 0.3, 3}, {11, 0.14, 2}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int64_t n = cases[k].n, tail = cases[k].tail;
        hlr_dataset *d = make_encoded(n);
        hlr_dataset *t = hlr_dataset_split(d, cases[k].fraction);
        ck_assert_msg(t != NULL, "split(%lld samples, %g) failed: %s", (long long)n, cases[k].fraction,
                      hlr_last_error());
        char what[128];
        snprintf(what, sizeof what, "tail of split(%lld, %g)", (long long)n, cases[k].fraction);
        expect_ids_in_order(t, n - tail, tail, what);
        snprintf(what, sizeof what, "head of split(%lld, %g)", (long long)n, cases[k].fraction);
        expect_ids_in_order(d, 0, n - tail, what);
        ck_assert_int_eq(hlr_dataset_num_classes(t), ENC_CLASSES);
        ck_assert_int_eq(hlr_dataset_sample_ndim(t), 2);
        ck_assert_int_eq(hlr_dataset_sample_dim(t, 0), 2);
        ck_assert_int_eq(hlr_dataset_sample_dim(t, 1), 3);
        hlr_dataset_free(t);
        hlr_dataset_free(d);
    }
}
END_TEST

START_TEST(test_dataset_split_rejects_bad_fractions_and_empty_parts)
{
    hlr_dataset *d = make_encoded(10);
    const double bad[] = {0.0, 1.0, NAN, -0.25, 1.5, INFINITY, -INFINITY, -0.0};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_msg(hlr_dataset_split(d, bad[k]) == NULL, "split(10, %g) succeeded, expected NULL", bad[k]);
        ck_assert_error_mentions("fraction");
    }
    /* Fractions inside (0, 1) that round to an empty tail or head. */
    const double empty[] = {0.04, 1e-9, 0.96, 0.999999};
    for (size_t k = 0; k < sizeof empty / sizeof empty[0]; k++) {
        ck_assert_msg(hlr_dataset_split(d, empty[k]) == NULL, "split(10, %g) succeeded, expected NULL", empty[k]);
        ck_assert_error_mentions("empty");
    }
    expect_ids_in_order(d, 0, 10, "a set after rejected splits");
    hlr_dataset_free(d);

    hlr_dataset *one = make_encoded(1);
    ck_assert_ptr_null(hlr_dataset_split(one, 0.5));
    ck_assert_error_mentions("empty");
    ck_assert_int_eq(hlr_dataset_size(one), 1);
    hlr_dataset_free(one);

    ck_assert_ptr_null(hlr_dataset_split(NULL, 0.5));
    ck_assert_error_mentions("NULL");
}
END_TEST

START_TEST(test_dataset_split_head_is_independent_of_the_tail)
{
    hlr_dataset *d = make_encoded(10);
    hlr_dataset *t = hlr_dataset_split(d, 0.3);
    ck_assert_ptr_nonnull(t);
    /* Shuffling the shrunken head must only permute its own 7 samples. */
    ck_assert_ok(hlr_dataset_shuffle(d, 5));
    int seen[7] = {0};
    for (int64_t p = 0; p < 7; p++) {
        int64_t id = encoded_id(d, p);
        ck_assert_msg(id >= 0 && id < 7, "head sample %lld has id %lld after shuffling, outside 0..6", (long long)p,
                      (long long)id);
        ck_assert_msg(!seen[id], "id %lld twice in the head", (long long)id);
        seen[id] = 1;
    }
    expect_ids_in_order(t, 7, 3, "tail after shuffling the head");
    /* The head cannot be sliced past its new end. */
    ck_assert_ptr_null(hlr_dataset_slice(d, 5, 3));
    ck_assert_error_mentions("7 samples");
    /* And it splits again from what it holds now. */
    hlr_dataset *t2 = hlr_dataset_split(d, 0.5);
    ck_assert_ptr_nonnull(t2);
    ck_assert_int_eq(hlr_dataset_size(t2), 4); /* round(3.5) */
    ck_assert_int_eq(hlr_dataset_size(d), 3);
    hlr_dataset_free(t2);
    hlr_dataset_free(t);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_dataset_slice_copies_the_range)
{
    hlr_dataset *d = make_encoded(10);
    hlr_dataset *s = hlr_dataset_slice(d, 3, 4);
    ck_assert_msg(s != NULL, "slice(3, 4) failed: %s", hlr_last_error());
    expect_ids_in_order(s, 3, 4, "slice [3, 7)");
    ck_assert_int_eq(hlr_dataset_num_classes(s), ENC_CLASSES);
    ck_assert_int_eq(hlr_dataset_sample_ndim(s), 2);
    ck_assert_int_eq(hlr_dataset_sample_dim(s, 1), 3);
    /* A copy: reordering the source leaves it alone. */
    ck_assert_ok(hlr_dataset_shuffle(d, 11));
    expect_ids_in_order(s, 3, 4, "slice [3, 7) after shuffling its source");
    hlr_dataset_free(s);

    hlr_dataset *all = hlr_dataset_slice(d, 0, 10);
    ck_assert_ptr_nonnull(all);
    ck_assert_int_eq(memcmp(hlr_dataset_inputs(all), hlr_dataset_inputs(d), 10 * ENC_F * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(hlr_dataset_labels(all), hlr_dataset_labels(d), 10 * sizeof(int32_t)), 0);
    hlr_dataset_free(all);

    hlr_dataset *last = hlr_dataset_slice(d, 9, 1);
    ck_assert_ptr_nonnull(last);
    ck_assert_int_eq(hlr_dataset_size(last), 1);
    ck_assert_int_eq(encoded_id(last, 0), encoded_id(d, 9));
    hlr_dataset_free(last);
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_dataset_slice_rejects_ranges_outside)
{
    hlr_dataset *d = make_encoded(10);
    static const int64_t bad[][2] = {{-1, 1},        {0, 0},        {0, -1},         {10, 1},
                                     {5, 6},         {0, 11},       {INT64_MAX, 1},  {1, INT64_MAX},
                                     {INT64_MIN, 2}, {-5, INT64_MAX}, {INT64_MAX, INT64_MAX}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        hlr_dataset *s = hlr_dataset_slice(d, bad[k][0], bad[k][1]);
        if (s) {
            hlr_dataset_free(s);
            ck_abort_msg("slice(%lld, %lld) of 10 samples succeeded, expected NULL", (long long)bad[k][0],
                         (long long)bad[k][1]);
        }
        ck_assert_error_mentions("10 samples");
    }
    ck_assert_ptr_null(hlr_dataset_slice(NULL, 0, 1));
    ck_assert_error_mentions("NULL");
    hlr_dataset_free(d);
}
END_TEST

START_TEST(test_dataset_accessors_on_null)
{
    ck_assert_int_eq(hlr_dataset_size(NULL), 0);
    ck_assert_int_eq(hlr_dataset_num_classes(NULL), 0);
    ck_assert_int_eq(hlr_dataset_sample_ndim(NULL), 0);
    ck_assert_int_eq(hlr_dataset_sample_dim(NULL, 0), 0);
    ck_assert_ptr_null(hlr_dataset_inputs(NULL));
    ck_assert_ptr_null(hlr_dataset_labels(NULL));
    hlr_dataset_free(NULL);
    /* Out-of-range sample dimensions of a real set give 0 as well. */
    hlr_dataset *d = make_encoded(2);
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 2), 0);
    ck_assert_int_eq(hlr_dataset_sample_dim(d, 100), 0);
    hlr_dataset_free(d);
}
END_TEST

Suite *suite_dataset(void)
{
    Suite *s = suite_create("dataset");

    TCase *tc = tcase_create("idx");
    tcase_add_unchecked_fixture(tc, tmp_dir_create, tmp_dir_remove);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idx_raw_loads_exact_pixels_labels_and_shape);
    tcase_add_test(tc, test_idx_gzip_loads_the_same_as_raw);
    tcase_add_test(tc, test_idx_mixed_raw_and_gzip_load);
    tcase_add_test(tc, test_idx_pixel_extremes_are_exactly_0_and_1);
    tcase_add_test(tc, test_idx_missing_file_fails_naming_it);
    tcase_add_test(tc, test_idx_null_path_fails);
    tcase_add_test(tc, test_idx_directory_as_file_fails_naming_it);
    tcase_add_test(tc, test_idx_bad_magic_fails_naming_the_file);
    tcase_add_test(tc, test_idx_count_mismatch_fails_naming_both_counts);
    tcase_add_test(tc, test_idx_fifo_fails_without_blocking);
    tcase_add_test(tc, test_idx_gzip_bomb_is_refused_without_inflating_it);
    tcase_add_test(tc, test_idx_truncated_at_every_offset_fails_cleanly);
    tcase_add_test(tc, test_idx_gzip_truncated_at_every_offset_fails_cleanly);
    tcase_add_test(tc, test_idx_trailing_bytes_fail);
    tcase_add_test(tc, test_idx_huge_header_count_fails_fast_without_allocating);
    tcase_add_test(tc, test_idx_zero_sizes_fail);
    tcase_add_test(tc, test_idx_corrupt_gzip_fails_naming_the_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("arrays");
    tcase_add_test(tc, test_dataset_from_copies_and_reports_shape);
    tcase_add_test(tc, test_dataset_from_rejects_invalid_arguments);
    tcase_add_test(tc, test_dataset_shuffle_is_a_permutation_with_labels_following);
    tcase_add_test(tc, test_dataset_shuffle_is_deterministic_per_seed);
    tcase_add_test(tc, test_dataset_shuffle_edge_cases);
    tcase_add_test(tc, test_dataset_split_moves_round_fraction_to_the_tail);
    tcase_add_test(tc, test_dataset_split_rejects_bad_fractions_and_empty_parts);
    tcase_add_test(tc, test_dataset_split_head_is_independent_of_the_tail);
    tcase_add_test(tc, test_dataset_slice_copies_the_range);
    tcase_add_test(tc, test_dataset_slice_rejects_ranges_outside);
    tcase_add_test(tc, test_dataset_accessors_on_null);
    suite_add_tcase(s, tc);

    return s;
}
