/* The variations benchmark (Larochelle et al. 2007), generated.
 *
 * Every set is 28x28 in [0,1], stored as bytes 0..255. One cae_rng stream per
 * (seed, stream) drives a whole split, examples in order, so the bytes are a
 * pure function of the inputs. Choices the paper leaves open, fixed here:
 *  - rot: angle uniform in [0, 2pi), rotation about the image centre (13.5,
 *    13.5), bilinear interpolation, zero outside the source.
 *  - backgrounds: pixel = max(digit, background).
 *  - bg-img patches: 28x28 windows of a random photo; a window whose pixel
 *    standard deviation is below PATCH_MIN_STD is rejected (after
 *    PATCH_TRIES rejections the most varied window seen is used).
 *  - rect: 1-px white outline, height h and width w uniform in [RECT_MIN, 28]
 *    with |h - w| >= RECT_GAP; label 1 = tall (h > w), 0 = wide.
 *  - rect-img: sides uniform in [RECT_IMG_MIN, 28] with |h - w| >=
 *    RECT_IMG_GAP and an area of 25% to 75% of the image (196..588 pixels),
 *    redrawn until all three hold, as Larochelle et al. (2007) describe the
 *    set (recipe 2; recipe 1 had smallest side 7, gap 3 and any area);
 *    inside the rectangle one photo patch, outside a patch of a different
 *    photo.
 *  - convex: label 1 = convex, 0 = non-convex. A convex region is the
 *    intersection of 3..8 random half-planes around a random centre; a
 *    non-convex one is the union of 2..4 smaller such regions, kept only if
 *    at least NONCONVEX_MIN_HOLES lattice points of its convex hull are off.
 *    For balance in white-pixel count, each example first draws a target bin
 *    of the count (CONVEX_BINS bins over [CONVEX_LO, CONVEX_HI)) and shapes of
 *    its class are drawn until one falls in that bin. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cae/rng.h"
#include "data/data_internal.h"

#define SIDE 28
#define NPIX (SIDE * SIDE)
#define PATCH_MIN_STD 0.1
#define PATCH_TRIES 100
#define RECT_MIN 3
#define RECT_GAP 3
#define RECT_IMG_MIN 10
#define RECT_IMG_GAP 5
#define RECT_IMG_AREA_LO (NPIX / 4)
#define RECT_IMG_AREA_HI (3 * NPIX / 4)
#define CONVEX_BINS 10
#define CONVEX_LO 40
#define CONVEX_HI 440
#define CONVEX_TRIES 2000
#define NONCONVEX_MIN_HOLES 4

static const char *const names[CAE_VAR_COUNT] = {"basic",      "rot",  "bg-rand",  "bg-img",
                                                 "bg-img-rot", "rect", "rect-img", "convex"};

const char *cae_variation_name(cae_variation v)
{
    return (v >= 0 && v < CAE_VAR_COUNT) ? names[v] : "?";
}

int cae_variation_from_name(const char *name)
{
    if (!name) return -1;
    for (int v = 0; v < CAE_VAR_COUNT; v++)
        if (!strcmp(name, names[v])) return v;
    return -1;
}

void cae_variation_sizes(cae_variation v, int small, int64_t sizes[3])
{
    int64_t tr = 10000, va = 2000, te = 50000;
    if (v == CAE_VAR_RECT) {
        tr = 1000;
        va = 200;
    } else if (v == CAE_VAR_CONVEX) {
        tr = 6000;
        va = 2000;
    }
    int64_t div = small ? 50 : 1;
    sizes[0] = tr / div;
    sizes[1] = va / div;
    sizes[2] = te / div;
}

int cae_variation_uses_digits(cae_variation v)
{
    return v == CAE_VAR_BASIC || v == CAE_VAR_ROT || v == CAE_VAR_BG_RAND || v == CAE_VAR_BG_IMG ||
           v == CAE_VAR_BG_IMG_ROT;
}

int cae_variation_uses_photos(cae_variation v)
{
    return v == CAE_VAR_BG_IMG || v == CAE_VAR_BG_IMG_ROT || v == CAE_VAR_RECT_IMG;
}

int cae_variation_recipe(cae_variation v)
{
    return v == CAE_VAR_RECT_IMG ? 2 : 1; /* rect-img 2: its rectangles' sizes (top of file) */
}

/* ------------------------------------------------------------- pieces */

static void rotate(const float *src, float *dst, double theta)
{
    const double c = 0.5 * (SIDE - 1), ct = cos(theta), st = sin(theta);
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            double dx = x - c, dy = y - c;
            double sx = c + ct * dx + st * dy, sy = c - st * dx + ct * dy;
            double fx = floor(sx), fy = floor(sy);
            int x0 = (int)fx, y0 = (int)fy;
            double ax = sx - fx, ay = sy - fy, v = 0.0;
            for (int k = 0; k < 4; k++) {
                int xi = x0 + (k & 1), yi = y0 + (k >> 1);
                if (xi < 0 || yi < 0 || xi >= SIDE || yi >= SIDE) continue;
                double wgt = ((k & 1) ? ax : 1 - ax) * ((k >> 1) ? ay : 1 - ay);
                v += wgt * src[yi * SIDE + xi];
            }
            dst[y * SIDE + x] = (float)v;
        }
}

static double patch_std(const float *p)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < NPIX; i++) {
        s += p[i];
        s2 += (double)p[i] * p[i];
    }
    double m = s / NPIX, var = s2 / NPIX - m * m;
    return var > 0 ? sqrt(var) : 0.0;
}

/* A 28x28 window of a random photo (other than `avoid`, if there is a
 * choice), low-variance windows rejected. Returns the photo index used. */
static int photo_patch(cae_rng *r, const cae_photos *ph, int avoid, float *out)
{
    float cand[NPIX];
    double best = -1;
    int best_k = 0;
    int n = cae_photos_count(ph);
    for (int t = 0; t < PATCH_TRIES; t++) {
        int k = (int)cae_rng_below(r, (uint64_t)n);
        if (k == avoid && n > 1) k = (k + 1 + (int)cae_rng_below(r, (uint64_t)(n - 1))) % n;
        int w = 0, h = 0;
        cae_photos_size(ph, k, &w, &h);
        const float *pix = cae_photos_pixels(ph, k);
        int x0 = (int)cae_rng_below(r, (uint64_t)(w - SIDE + 1));
        int y0 = (int)cae_rng_below(r, (uint64_t)(h - SIDE + 1));
        for (int y = 0; y < SIDE; y++)
            memcpy(cand + y * SIDE, pix + (size_t)(y0 + y) * (size_t)w + (size_t)x0, SIDE * sizeof(float));
        double sd = patch_std(cand);
        if (sd > best) {
            best = sd;
            best_k = k;
            memcpy(out, cand, sizeof cand);
        }
        if (sd >= PATCH_MIN_STD) break;
    }
    return best_k;
}

/* h, w of a tall (label 1) or wide (label 0) rectangle of rect (img 0) or
 * rect-img (img 1): the constants above. */
static void rect_dims(cae_rng *r, int img, int label, int *h, int *w)
{
    const int lo = img ? RECT_IMG_MIN : RECT_MIN, gap = img ? RECT_IMG_GAP : RECT_GAP;
    for (;;) {
        int a = lo + (int)cae_rng_below(r, (uint64_t)(SIDE - lo + 1));
        int b = lo + (int)cae_rng_below(r, (uint64_t)(SIDE - lo + 1));
        if (abs(a - b) < gap) continue;
        if (img && (a * b < RECT_IMG_AREA_LO || a * b > RECT_IMG_AREA_HI)) continue;
        int hi_ = a > b ? a : b, lo_ = a > b ? b : a;
        *h = label ? hi_ : lo_;
        *w = label ? lo_ : hi_;
        return;
    }
}

/* Rasterise the intersection of k half-planes around (cx, cy): pixel
 * centres p with (p - c) . n_j <= d_j. ORs into mask. */
static void convex_region(cae_rng *r, double cx, double cy, double dmin, double dmax, uint8_t *mask)
{
    int k = 3 + (int)cae_rng_below(r, 6);
    double nx[8], ny[8], d[8];
    for (int j = 0; j < k; j++) {
        double phi = 2.0 * M_PI * cae_rng_uniform(r);
        nx[j] = cos(phi);
        ny[j] = sin(phi);
        d[j] = dmin + (dmax - dmin) * cae_rng_uniform(r);
    }
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int in = 1;
            for (int j = 0; j < k && in; j++) in = (x - cx) * nx[j] + (y - cy) * ny[j] <= d[j];
            if (in) mask[y * SIDE + x] = 255;
        }
}

static int count_on(const uint8_t *m)
{
    int c = 0;
    for (int i = 0; i < NPIX; i++) c += m[i] > 127;
    return c;
}

static int64_t cross(int ox, int oy, int ax, int ay, int bx, int by)
{
    return (int64_t)(ax - ox) * (by - oy) - (int64_t)(ay - oy) * (bx - ox);
}

/* Lattice points inside the convex hull of the on pixels that are off. */
static int convex_holes(const uint8_t *img)
{
    int px[NPIX], py[NPIX], n = 0;
    /* Row-major scan gives points sorted by (y, x): monotone chain on y. */
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
            if (img[y * SIDE + x] > 127) {
                px[n] = x;
                py[n] = y;
                n++;
            }
    if (n == 0) return 0;
    int hx[2 * NPIX + 2], hy[2 * NPIX + 2], m = 0;
    for (int i = 0; i < n; i++) { /* lower chain */
        while (m >= 2 && cross(hx[m - 2], hy[m - 2], hx[m - 1], hy[m - 1], px[i], py[i]) <= 0) m--;
        hx[m] = px[i];
        hy[m] = py[i];
        m++;
    }
    for (int i = n - 2, t = m + 1; i >= 0; i--) { /* upper chain */
        while (m >= t && cross(hx[m - 2], hy[m - 2], hx[m - 1], hy[m - 1], px[i], py[i]) <= 0) m--;
        hx[m] = px[i];
        hy[m] = py[i];
        m++;
    }
    if (m > 1) m--; /* last point repeats the first */
    int x0 = SIDE, x1 = -1, y0 = py[0], y1 = py[n - 1];
    for (int i = 0; i < n; i++) {
        if (px[i] < x0) x0 = px[i];
        if (px[i] > x1) x1 = px[i];
    }
    int holes = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            if (img[y * SIDE + x] > 127) continue;
            int inside = 1;
            for (int i = 0; i < m && inside; i++) {
                int j = (i + 1) % m;
                /* The chain keeps left turns only (counter-clockwise), so
                 * the interior is on the non-negative side of each edge. */
                inside = cross(hx[i], hy[i], hx[j], hy[j], x, y) >= 0;
            }
            holes += inside;
        }
    return holes;
}

int cae_image_is_convex(const uint8_t *img)
{
    return img ? convex_holes(img) == 0 : 0;
}

/* One convex (label 1) or non-convex (label 0) shape. */
static void convex_shape(cae_rng *r, int label, uint8_t *m)
{
    memset(m, 0, NPIX);
    double cx = 6 + 15 * cae_rng_uniform(r), cy = 6 + 15 * cae_rng_uniform(r);
    if (label) {
        convex_region(r, cx, cy, 2.0, 16.0, m);
        return;
    }
    int parts = 2 + (int)cae_rng_below(r, 3);
    for (int p = 0; p < parts; p++) {
        double ox = cx + 16 * (cae_rng_uniform(r) - 0.5), oy = cy + 16 * (cae_rng_uniform(r) - 0.5);
        convex_region(r, ox, oy, 1.5, 8.0, m);
    }
}

static void convex_example(cae_rng *r, uint8_t *img, uint8_t *lab)
{
    int label = (int)cae_rng_below(r, 2);
    for (;;) {
        int bin = (int)cae_rng_below(r, CONVEX_BINS);
        int lo = CONVEX_LO + bin * (CONVEX_HI - CONVEX_LO) / CONVEX_BINS;
        int hi = CONVEX_LO + (bin + 1) * (CONVEX_HI - CONVEX_LO) / CONVEX_BINS;
        for (int t = 0; t < CONVEX_TRIES; t++) {
            convex_shape(r, label, img);
            int c = count_on(img);
            if (c < lo || c >= hi) continue;
            int holes = convex_holes(img);
            if (label ? holes != 0 : holes < NONCONVEX_MIN_HOLES) continue;
            *lab = (uint8_t)label;
            return;
        }
    }
}

static uint8_t to_byte(double v)
{
    if (!(v > 0.0)) return 0;
    if (v >= 1.0) return 255;
    return (uint8_t)lrint(v * 255.0);
}

/* ------------------------------------------------------------- driver */

cae_status cae_variation_generate(cae_variation v, const cae_dataset *digits,
                                       const cae_photos *photos, uint64_t seed,
                                       uint64_t stream, int64_t n, uint8_t *img,
                                       uint8_t *lab, cae_error *err)
{
    if (v < 0 || v >= CAE_VAR_COUNT || n < 0 || (n > 0 && (!img || !lab)))
        return cae_error_set(err, CAE_ERR_ARG, "cae_variation_generate: bad arguments");
    if (cae_variation_uses_digits(v)) {
        if (!digits)
            return cae_error_set(err, CAE_ERR_ARG, "%s: needs MNIST digits", names[v]);
        if (digits->rows != SIDE || digits->cols != SIDE)
            return cae_error_set(err, CAE_ERR_DIMS, "%s: expected 28 x 28 digits, found %d x %d",
                                 names[v], digits->rows, digits->cols);
        if (digits->n < n)
            return cae_error_set(err, CAE_ERR_ARG, "%s: expected at least %lld digits, found %lld",
                                 names[v], (long long)n, (long long)digits->n);
    }
    if (cae_variation_uses_photos(v) && cae_photos_count(photos) < 1)
        return cae_error_set(err, CAE_ERR_ARG, "%s: needs background photographs", names[v]);

    cae_rng r;
    cae_rng_seed(&r, seed, stream);
    float a[NPIX], b[NPIX], bg[NPIX];
    cae_real row[NPIX]; /* digit i as reals, from bytes or reals alike */
    for (int64_t i = 0; i < n; i++) {
        uint8_t *o = img + i * NPIX;
        if (cae_variation_uses_digits(v)) {
            cae_dataset_copy_rows(digits, i, 1, row);
            for (int p = 0; p < NPIX; p++) a[p] = (float)row[p];
            lab[i] = (uint8_t)digits->y[i];
            const float *dig = a;
            if (v == CAE_VAR_ROT || v == CAE_VAR_BG_IMG_ROT) {
                rotate(a, b, 2.0 * M_PI * cae_rng_uniform(&r));
                dig = b;
            }
            if (v == CAE_VAR_BG_RAND)
                for (int p = 0; p < NPIX; p++) bg[p] = (float)cae_rng_uniform(&r);
            else if (v == CAE_VAR_BG_IMG || v == CAE_VAR_BG_IMG_ROT)
                photo_patch(&r, photos, -1, bg);
            else
                memset(bg, 0, sizeof bg);
            for (int p = 0; p < NPIX; p++) o[p] = to_byte(dig[p] > bg[p] ? dig[p] : bg[p]);
        } else if (v == CAE_VAR_RECT || v == CAE_VAR_RECT_IMG) {
            int label = (int)cae_rng_below(&r, 2), h, w;
            rect_dims(&r, v == CAE_VAR_RECT_IMG, label, &h, &w);
            int y0 = (int)cae_rng_below(&r, (uint64_t)(SIDE - h + 1));
            int x0 = (int)cae_rng_below(&r, (uint64_t)(SIDE - w + 1));
            lab[i] = (uint8_t)label;
            if (v == CAE_VAR_RECT) {
                memset(o, 0, NPIX);
                for (int y = y0; y < y0 + h; y++)
                    for (int x = x0; x < x0 + w; x++)
                        if (y == y0 || y == y0 + h - 1 || x == x0 || x == x0 + w - 1) o[y * SIDE + x] = 255;
            } else {
                int k = photo_patch(&r, photos, -1, a);
                photo_patch(&r, photos, k, bg);
                for (int y = 0; y < SIDE; y++)
                    for (int x = 0; x < SIDE; x++) {
                        int in = y >= y0 && y < y0 + h && x >= x0 && x < x0 + w;
                        o[y * SIDE + x] = to_byte(in ? a[y * SIDE + x] : bg[y * SIDE + x]);
                    }
            }
        } else {
            convex_example(&r, o, &lab[i]);
        }
    }
    return CAE_OK;
}
