/* The variations generator: sizes, determinism, rect labels vs aspect,
 * convexity of the convex set, backgrounds, and the written benchmark.
 * Digit sets use MNIST fetched by scripts/fetch-data.sh ($CAE_DATA_DIR,
 * default <source>/data); without it those tests fail with a clear message. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cae/data.h"
#include "cae/rng.h"
#include "testutil.h"

#define NPIX 784

static const char *data_dir(void)
{
    static char buf[512];
    const char *d = getenv("CAE_DATA_DIR");
    if (d && *d) return d;
    snprintf(buf, sizeof buf, "%s/data", CAE_SOURCE_DIR);
    return buf;
}

static void need_file(const char *sub)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", data_dir(), sub);
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0,
                  "%s is missing: this test needs the fetched data. Run scripts/fetch-data.sh "
                  "(or set CAE_DATA_DIR to where it put the data).", p);
}

/* MNIST test digits (first 10 000) as a dataset. */
static cae_dataset *mnist_digits(void)
{
    need_file("mnist/t10k-images-idx3-ubyte");
    char a[700], b[700];
    cae_error err;
    snprintf(a, sizeof a, "%s/mnist/t10k-images-idx3-ubyte", data_dir());
    snprintf(b, sizeof b, "%s/mnist/t10k-labels-idx1-ubyte", data_dir());
    cae_dataset *d = NULL;
    ck_assert_msg(cae_dataset_load(a, b, &d, &err) == CAE_OK, "%s", err.msg);
    return d;
}

static cae_photos *real_photos(void)
{
    need_file("images/MANIFEST.tsv");
    char p[700];
    cae_error err;
    snprintf(p, sizeof p, "%s/images", data_dir());
    cae_photos *ph = NULL;
    ck_assert_msg(cae_photos_load(p, &ph, &err) == CAE_OK, "%s", err.msg);
    return ph;
}

/* n x n noise photos: photo 0 in [0, 0.45], photo 1 in [0.55, 1]. */
static cae_photos *split_photos(void)
{
    enum { S = 64 };
    static float p0[S * S], p1[S * S];
    cae_rng r;
    cae_rng_seed(&r, 5, 0);
    for (int i = 0; i < S * S; i++) {
        p0[i] = (float)(0.45 * cae_rng_uniform(&r));
        p1[i] = (float)(0.55 + 0.45 * cae_rng_uniform(&r));
    }
    int w[2] = {S, S}, h[2] = {S, S};
    const float *pix[2] = {p0, p1};
    cae_photos *ph = NULL;
    cae_error err;
    ck_assert_msg(cae_photos_from_pixels(2, w, h, pix, &ph, &err) == CAE_OK, "%s", err.msg);
    return ph;
}

static uint8_t *gen(cae_variation v, const cae_dataset *d, const cae_photos *ph, uint64_t seed,
                    uint64_t stream, int64_t n, uint8_t **lab)
{
    uint8_t *img = malloc((size_t)n * NPIX);
    *lab = malloc((size_t)n);
    ck_assert(img && *lab);
    cae_error err;
    cae_status rc = cae_variation_generate(v, d, ph, seed, stream, n, img, *lab, &err);
    ck_assert_msg(rc == CAE_OK, "%s: %s", cae_variation_name(v), err.msg);
    return img;
}

/* ------------------------------------------------------------- tables */

START_TEST(sizes_match_the_paper)
{
    static const int64_t want[CAE_VAR_COUNT][3] = {
        {10000, 2000, 50000}, {10000, 2000, 50000}, {10000, 2000, 50000}, {10000, 2000, 50000},
        {10000, 2000, 50000}, {1000, 200, 50000},   {10000, 2000, 50000}, {6000, 2000, 50000}};
    for (int v = 0; v < CAE_VAR_COUNT; v++) {
        int64_t s[3], t[3];
        cae_variation_sizes(v, 0, s);
        cae_variation_sizes(v, 1, t);
        for (int k = 0; k < 3; k++) {
            ck_assert_msg(s[k] == want[v][k], "%s split %d: %lld, paper %lld", cae_variation_name(v), k,
                          (long long)s[k], (long long)want[v][k]);
            ck_assert_msg(t[k] == want[v][k] / 50 && t[k] > 0, "%s small split %d", cae_variation_name(v), k);
        }
        ck_assert_int_eq(cae_variation_from_name(cae_variation_name(v)), v);
    }
    ck_assert_int_eq(cae_variation_from_name("mnist-rot"), -1);
    ck_assert_int_eq(cae_variation_from_name(NULL), -1);
    ck_assert(cae_variation_uses_digits(CAE_VAR_BG_IMG_ROT) && cae_variation_uses_photos(CAE_VAR_BG_IMG_ROT));
    ck_assert(!cae_variation_uses_digits(CAE_VAR_RECT_IMG) && cae_variation_uses_photos(CAE_VAR_RECT_IMG));
    ck_assert(!cae_variation_uses_digits(CAE_VAR_CONVEX) && !cae_variation_uses_photos(CAE_VAR_CONVEX));
}
END_TEST

START_TEST(bad_arguments)
{
    uint8_t img[NPIX], lab[1];
    cae_error err;
    ck_assert_int_eq(cae_variation_generate(CAE_VAR_BASIC, NULL, NULL, 1, 0, 1, img, lab, &err),
                     CAE_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "needs MNIST digits"), "%s", err.msg);
    ck_assert_int_eq(cae_variation_generate(CAE_VAR_RECT_IMG, NULL, NULL, 1, 0, 1, img, lab, &err),
                     CAE_ERR_ARG);
    ck_assert_msg(strstr(err.msg, "photographs"), "%s", err.msg);
    ck_assert_int_eq(cae_variation_generate(CAE_VAR_COUNT, NULL, NULL, 1, 0, 1, img, lab, NULL),
                     CAE_ERR_ARG);
}
END_TEST

/* ------------------------------------------------------- determinism */

START_TEST(same_seed_same_bytes_shapes)
{
    cae_photos *ph = split_photos();
    const cae_variation vs[3] = {CAE_VAR_RECT, CAE_VAR_RECT_IMG, CAE_VAR_CONVEX};
    for (int i = 0; i < 3; i++) {
        uint8_t *l1, *l2, *l3;
        uint8_t *a = gen(vs[i], NULL, ph, 42, 3, 200, &l1);
        uint8_t *b = gen(vs[i], NULL, ph, 42, 3, 200, &l2);
        uint8_t *c = gen(vs[i], NULL, ph, 43, 3, 200, &l3);
        ck_assert_msg(memcmp(a, b, 200 * NPIX) == 0 && memcmp(l1, l2, 200) == 0, "%s: same seed differs",
                      cae_variation_name(vs[i]));
        ck_assert_msg(memcmp(a, c, 200 * NPIX) != 0, "%s: another seed gives the same images",
                      cae_variation_name(vs[i]));
        free(a), free(b), free(c), free(l1), free(l2), free(l3);
    }
    cae_photos_free(ph);
}
END_TEST

START_TEST(same_seed_same_bytes_digits)
{
    cae_dataset *d = mnist_digits();
    cae_photos *ph = real_photos();
    for (int v = 0; v < CAE_VAR_COUNT; v++) {
        if (!cae_variation_uses_digits(v)) continue;
        uint8_t *l1, *l2, *l3;
        uint8_t *a = gen(v, d, ph, 9, 1, 300, &l1);
        uint8_t *b = gen(v, d, ph, 9, 1, 300, &l2);
        uint8_t *c = gen(v, d, ph, 9, 2, 300, &l3);
        ck_assert_msg(memcmp(a, b, 300 * NPIX) == 0, "%s: same seed differs", cae_variation_name(v));
        if (v != CAE_VAR_BASIC)
            ck_assert_msg(memcmp(a, c, 300 * NPIX) != 0, "%s: another stream gives the same images",
                          cae_variation_name(v));
        for (int i = 0; i < 300; i++)
            ck_assert_msg(l1[i] == d->y[i], "%s: example %d label %d, digit %d", cae_variation_name(v), i, l1[i],
                          d->y[i]);
        free(a), free(b), free(c), free(l1), free(l2), free(l3);
    }
    cae_photos_free(ph);
    cae_dataset_free(d);
}
END_TEST

/* ------------------------------------------------------------- shapes */

START_TEST(rect_labels_match_aspect)
{
    uint8_t *lab;
    uint8_t *img = gen(CAE_VAR_RECT, NULL, NULL, 1, 0, 1000, &lab);
    int tall = 0;
    for (int i = 0; i < 1000; i++) {
        const uint8_t *o = img + i * NPIX;
        int x0 = 28, x1 = -1, y0 = 28, y1 = -1;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
                if (o[y * 28 + x]) {
                    ck_assert_int_eq(o[y * 28 + x], 255);
                    x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                    y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                }
        ck_assert_msg(x1 >= 0, "example %d is empty", i);
        int h = y1 - y0 + 1, w = x1 - x0 + 1;
        ck_assert_msg(lab[i] == (h > w), "example %d: %d x %d (h x w) labelled %d", i, h, w, lab[i]);
        ck_assert_msg(abs(h - w) >= 3, "example %d: near-square %d x %d", i, h, w);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                int edge = y == y0 || y == y1 || x == x0 || x == x1;
                ck_assert_msg((o[y * 28 + x] != 0) == edge, "example %d: not a 1-px outline at (%d,%d)", i, x, y);
            }
        tall += lab[i];
    }
    ck_assert_msg(tall > 400 && tall < 600, "unbalanced rect labels: %d tall of 1000", tall);
    free(img);
    free(lab);
}
END_TEST

/* Is the set {v > 127} (or its complement) a filled rectangle of aspect
 * `label` with rect-img's geometry (sides >= 10, |h - w| >= 5, 196..588
 * pixels: a quarter to three quarters of the image)? Its sides in *h, *w. */
static int class_is_rect(const uint8_t *o, int want_hi, int label, int *h, int *w)
{
    int x0 = 28, x1 = -1, y0 = 28, y1 = -1, n = 0;
    for (int p = 0; p < NPIX; p++)
        if ((o[p] > 127) == want_hi) {
            int x = p % 28, y = p / 28;
            x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
            y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
            n++;
        }
    if (x1 < 0) return 0;
    *h = y1 - y0 + 1, *w = x1 - x0 + 1;
    return n == *h * *w && (*h > *w) == label && abs(*h - *w) >= 5 && *h >= 10 && *w >= 10 &&
           n >= NPIX / 4 && n <= 3 * NPIX / 4;
}

START_TEST(rect_img_inside_and_outside_differ)
{
    cae_photos *ph = split_photos();
    uint8_t *lab;
    uint8_t *img = gen(CAE_VAR_RECT_IMG, NULL, ph, 2, 0, 500, &lab);
    int tall = 0, side_lo = 28, gap_lo = 28, area_lo = NPIX, area_hi = 0;
    for (int i = 0; i < 500; i++) {
        const uint8_t *o = img + i * NPIX;
        int h, w;
        ck_assert_msg(class_is_rect(o, 1, lab[i], &h, &w) || class_is_rect(o, 0, lab[i], &h, &w),
                      "example %d: no patch forms a rectangle of rect-img's size and the labelled "
                      "aspect (label %d)", i, lab[i]);
        const int side = h < w ? h : w;
        if (side < side_lo) side_lo = side;
        gap_lo = abs(h - w) < gap_lo ? abs(h - w) : gap_lo;
        area_lo = h * w < area_lo ? h * w : area_lo;
        area_hi = h * w > area_hi ? h * w : area_hi;
        tall += lab[i];
    }
    ck_assert_msg(tall > 200 && tall < 300, "unbalanced rect-img labels: %d tall of 500", tall);
    /* the whole range is drawn: a rectangle that spans the image one way
     * and is too thin the other would pass above by its complement */
    ck_assert_msg(side_lo == 10 && gap_lo == 5 && area_lo <= 210 && area_hi >= 570,
                  "rect-img's range: smallest side %d, gap %d, areas %d..%d", side_lo, gap_lo, area_lo,
                  area_hi);
    free(img);
    free(lab);
    cae_photos_free(ph);
}
END_TEST

START_TEST(convexity_check_on_known_shapes)
{
    uint8_t m[NPIX];
    memset(m, 0, NPIX);
    ck_assert(cae_image_is_convex(m)); /* empty */
    m[5 * 28 + 7] = 255;
    ck_assert(cae_image_is_convex(m)); /* one pixel */
    m[5 * 28 + 9] = 255;
    ck_assert(!cae_image_is_convex(m)); /* two pixels with a gap */
    m[5 * 28 + 8] = 255;
    ck_assert(cae_image_is_convex(m)); /* a segment */
    memset(m, 0, NPIX);
    for (int i = 0; i < 20; i++) m[(i + 3) * 28 + i + 4] = 255;
    ck_assert(cae_image_is_convex(m)); /* a digital diagonal */
    memset(m, 0, NPIX);
    for (int y = 4; y < 20; y++)
        for (int x = 6; x < 18; x++) m[y * 28 + x] = 255;
    ck_assert(cae_image_is_convex(m)); /* filled box */
    m[10 * 28 + 10] = 0;
    ck_assert(!cae_image_is_convex(m)); /* with a hole */
    m[10 * 28 + 10] = 255;
    for (int y = 4; y < 12; y++)
        for (int x = 12; x < 18; x++) m[y * 28 + x] = 0;
    ck_assert(!cae_image_is_convex(m)); /* an L */
    memset(m, 0, NPIX);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            if ((x - 13.5) * (x - 13.5) + (y - 13.5) * (y - 13.5) <= 100) m[y * 28 + x] = 255;
    ck_assert(cae_image_is_convex(m)); /* a disc */
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            if ((x - 13.5) * (x - 13.5) + (y - 13.5) * (y - 13.5) <= 16) m[y * 28 + x] = 0;
    ck_assert(!cae_image_is_convex(m)); /* a ring */
    m[0] = 255;
    ck_assert(!cae_image_is_convex(m));
    ck_assert(!cae_image_is_convex(NULL));
}
END_TEST

START_TEST(convex_set_labels_and_balance)
{
    enum { N = 1000 };
    uint8_t *lab;
    uint8_t *img = gen(CAE_VAR_CONVEX, NULL, NULL, 11, 0, N, &lab);
    int nlab[2] = {0, 0};
    double area[2] = {0, 0};
    int hist[2][10] = {{0}};
    for (int i = 0; i < N; i++) {
        const uint8_t *o = img + i * NPIX;
        int c = 0;
        for (int p = 0; p < NPIX; p++) {
            ck_assert(o[p] == 0 || o[p] == 255);
            c += o[p] != 0;
        }
        int conv = cae_image_is_convex(o);
        ck_assert_msg(conv == lab[i], "example %d labelled %s but the check says %s", i,
                      lab[i] ? "convex" : "non-convex", conv ? "convex" : "non-convex");
        ck_assert_msg(c >= 40 && c < 440, "example %d: %d white pixels", i, c);
        nlab[lab[i]]++;
        area[lab[i]] += c;
        hist[lab[i]][(c - 40) / 40]++;
    }
    ck_assert_msg(nlab[1] > 0.4 * N && nlab[1] < 0.6 * N, "unbalanced labels: %d convex of %d", nlab[1], N);
    double m0 = area[0] / nlab[0], m1 = area[1] / nlab[1];
    ck_assert_msg(fabs(m0 - m1) < 0.1 * (m0 + m1) / 2, "mean white pixels: non-convex %.1f, convex %.1f", m0, m1);
    for (int b = 0; b < 10; b++)
        for (int l = 0; l < 2; l++) {
            double frac = (double)hist[l][b] / nlab[l];
            ck_assert_msg(frac > 0.05 && frac < 0.15, "class %d, white-count bin %d holds %.3f of the class", l,
                          b, frac);
        }
    free(img);
    free(lab);
}
END_TEST

/* ------------------------------------------------------- backgrounds */

START_TEST(digit_sets_and_backgrounds)
{
    enum { N = 400 };
    cae_dataset *d = mnist_digits();
    cae_photos *ph = real_photos();
    uint8_t *lb, *lr, *lg, *li, *lir;
    uint8_t *basic = gen(CAE_VAR_BASIC, d, ph, 4, 0, N, &lb);
    uint8_t *rot = gen(CAE_VAR_ROT, d, ph, 4, 0, N, &lr);
    uint8_t *rnd = gen(CAE_VAR_BG_RAND, d, ph, 4, 0, N, &lg);
    uint8_t *bgi = gen(CAE_VAR_BG_IMG, d, ph, 4, 0, N, &li);
    uint8_t *bgir = gen(CAE_VAR_BG_IMG_ROT, d, ph, 4, 0, N, &lir);
    double bg_sum = 0, bg_n = 0, bg_min = 1, bg_max = 0, mass_ratio = 0;
    int flat = 0;
    for (int i = 0; i < N; i++) {
        const cae_real *x = cae_dataset_reals(d) + (int64_t)i * NPIX;
        double sd = 0, srot = 0, s = 0, s2 = 0, n = 0;
        for (int p = 0; p < NPIX; p++) {
            int want = (int)lrint(x[p] * 255.0);
            ck_assert_msg(basic[i * NPIX + p] == want, "basic %d pixel %d: %d, digit %d", i, p, basic[i * NPIX + p], want);
            ck_assert_msg(rnd[i * NPIX + p] >= want && bgi[i * NPIX + p] >= want, "background hides the digit");
            sd += basic[i * NPIX + p];
            srot += rot[i * NPIX + p];
            if (want == 0) {
                double v = rnd[i * NPIX + p] / 255.0, u = bgi[i * NPIX + p] / 255.0;
                bg_sum += v;
                bg_n++;
                bg_min = v < bg_min ? v : bg_min;
                bg_max = v > bg_max ? v : bg_max;
                s += u;
                s2 += u * u;
                n++;
            }
        }
        mass_ratio += srot / sd;
        double var = s2 / n - (s / n) * (s / n);
        flat += var < 0.05 * 0.05;
    }
    double mean = bg_sum / bg_n;
    ck_assert_msg(fabs(mean - 0.5) < 0.01 && bg_min < 0.005 && bg_max > 0.995,
                  "bg-rand background: mean %.4f min %.4f max %.4f, expected U[0,1]", mean, bg_min, bg_max);
    ck_assert_msg(flat <= N / 50, "bg-img: %d of %d backgrounds are nearly flat", flat, N);
    mass_ratio /= N;
    ck_assert_msg(fabs(mass_ratio - 1.0) < 0.05, "rotation changes ink mass by a factor %.3f", mass_ratio);
    ck_assert_msg(memcmp(basic, rot, N * NPIX) != 0 && memcmp(bgi, bgir, N * NPIX) != 0, "rotation did nothing");
    free(basic), free(rot), free(rnd), free(bgi), free(bgir);
    free(lb), free(lr), free(lg), free(li), free(lir);
    cae_photos_free(ph);
    cae_dataset_free(d);
}
END_TEST

/* ------------------------------------------------- the written benchmark */

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    ck_assert(b && fread(b, 1, (size_t)len, f) == (size_t)len);
    b[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return b;
}

START_TEST(written_benchmark_is_reproducible)
{
    need_file("mnist/train-images-idx3-ubyte");
    need_file("images/MANIFEST.tsv");
    char *tmp = tu_tmpdir();
    ck_assert(tmp);
    char a[600], b[600];
    cae_error err;
    snprintf(a, sizeof a, "%s/a/variations", tmp);
    snprintf(b, sizeof b, "%s/b/variations", tmp);
    ck_assert_msg(cae_variations_write(data_dir(), a, 5, 1, 0, &err) == CAE_OK, "%s", err.msg);
    ck_assert_msg(cae_variations_write(data_dir(), b, 5, 1, 0, &err) == CAE_OK, "%s", err.msg);
    char pa[900], pb[900];
    snprintf(pa, sizeof pa, "%s/MANIFEST.txt", a);
    snprintf(pb, sizeof pb, "%s/MANIFEST.txt", b);
    size_t na, nb;
    char *ma = slurp(pa, &na), *mb = slurp(pb, &nb);
    ck_assert_msg(na == nb && memcmp(ma, mb, na) == 0, "manifests differ for the same seed");
    ck_assert_msg(strstr(ma, "seed 5\n") && strstr(ma, "small 1\n"), "%s", ma);
    /* every file listed is there, byte-identical in both runs */
    int files = 0;
    for (char *line = strtok(ma, "\n"); line; line = strtok(NULL, "\n")) {
        char set[32], split[16], file[128];
        long long n, bytes;
        unsigned long crc;
        if (sscanf(line, "%31s %15s %127s %lld %lld %lx", set, split, file, &n, &bytes, &crc) != 6) continue;
        snprintf(pa, sizeof pa, "%s/%s", a, file);
        snprintf(pb, sizeof pb, "%s/%s", b, file);
        size_t la, lb;
        char *fa = slurp(pa, &la), *fb = slurp(pb, &lb);
        ck_assert_msg((long long)la == bytes && la == lb && memcmp(fa, fb, la) == 0, "%s differs", file);
        free(fa);
        free(fb);
        files++;
    }
    ck_assert_int_eq(files, CAE_VAR_COUNT * 6);
    /* and loads back as splits of the small sizes */
    char root[600];
    snprintf(root, sizeof root, "%s/a", tmp);
    for (int v = 0; v < CAE_VAR_COUNT; v++) {
        cae_splits *s = NULL;
        ck_assert_msg(cae_splits_load(root, cae_variation_name(v), &s, &err) == CAE_OK, "%s", err.msg);
        int64_t sz[3];
        cae_variation_sizes(v, 1, sz);
        ck_assert(s->train->n == sz[0] && s->valid->n == sz[1] && s->test->n == sz[2]);
        const cae_real *tx = cae_dataset_reals(s->test);
        ck_assert(tx != NULL);
        for (int64_t i = 0; i < s->test->n * s->test->dim; i++) ck_assert(tx[i] >= 0 && tx[i] <= 1);
        cae_splits_free(s);
    }
    free(ma);
    free(mb);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    ck_assert(system(cmd) == 0);
    free(tmp);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("variations");
    TCase *t = tcase_create("generator");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, sizes_match_the_paper);
    tcase_add_test(t, bad_arguments);
    tcase_add_test(t, same_seed_same_bytes_shapes);
    tcase_add_test(t, rect_labels_match_aspect);
    tcase_add_test(t, rect_img_inside_and_outside_differ);
    tcase_add_test(t, convexity_check_on_known_shapes);
    tcase_add_test(t, convex_set_labels_and_balance);
    suite_add_tcase(s, t);

    t = tcase_create("with-mnist");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, same_seed_same_bytes_digits);
    tcase_add_test(t, digit_sets_and_backgrounds);
    tcase_add_test(t, written_benchmark_is_reproducible);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
