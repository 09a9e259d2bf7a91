/* Grey photographs for the bg-img / rect-img backgrounds, decoded by
 * stb_image (Debian's libstb-dev). The implementation is compiled into this
 * file with STB_IMAGE_STATIC, so the library exports none of stb's symbols
 * and needs no extra link flag. Photos are box-downscaled by an integer
 * factor until the shorter side is at most 256 px, so a 28x28 patch shows
 * texture rather than a smooth blur of a few megapixel-scale features. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

/* stb declares a few static functions it never defines: that warning is
 * reported at the end of the file, so it stays off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS (1 << 14)
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#define PHOTO_MAX_SIDE 256
#define PHOTO_MAX_COUNT 1024

struct cae_photos {
    int n;
    int *w, *h;
    float **pix; /* n images, h x w row-major */
};

void cae_photos_free(cae_photos *p)
{
    if (!p) return;
    if (p->pix)
        for (int i = 0; i < p->n; i++) free(p->pix[i]);
    free(p->pix);
    free(p->w);
    free(p->h);
    free(p);
}

int cae_photos_count(const cae_photos *p)
{
    return p ? p->n : 0;
}

int cae_photos_size(const cae_photos *p, int i, int *w, int *h)
{
    if (!p || i < 0 || i >= p->n) return 0;
    *w = p->w[i];
    *h = p->h[i];
    return 1;
}

const float *cae_photos_pixels(const cae_photos *p, int i)
{
    return (p && i >= 0 && i < p->n) ? p->pix[i] : NULL;
}

static cae_photos *photos_alloc(int n)
{
    cae_photos *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->w = calloc((size_t)n, sizeof *p->w);
    p->h = calloc((size_t)n, sizeof *p->h);
    p->pix = calloc((size_t)n, sizeof *p->pix);
    if (!p->w || !p->h || !p->pix) {
        cae_photos_free(p);
        return NULL;
    }
    return p;
}

cae_status cae_photos_from_pixels(int n, const int *w, const int *h,
                                       const float *const *pix, cae_photos **out,
                                       cae_error *err)
{
    if (out) *out = NULL;
    if (!out || !w || !h || !pix || n < 1 || n > PHOTO_MAX_COUNT)
        return cae_error_set(err, CAE_ERR_ARG, "cae_photos_from_pixels: bad arguments");
    cae_photos *p = photos_alloc(n);
    if (!p) return cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (w[i] < 28 || h[i] < 28 || w[i] > STBI_MAX_DIMENSIONS || h[i] > STBI_MAX_DIMENSIONS || !pix[i]) {
            cae_photos_free(p);
            return cae_error_set(err, CAE_ERR_ARG,
                                 "photo %d: size %d x %d not in 28..%d", i, w[i], h[i], STBI_MAX_DIMENSIONS);
        }
        size_t np = (size_t)w[i] * (size_t)h[i];
        p->pix[i] = malloc(np * sizeof(float));
        if (!p->pix[i]) {
            cae_photos_free(p);
            return cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
        }
        for (size_t k = 0; k < np; k++) {
            float v = pix[i][k];
            p->pix[i][k] = v < 0.f ? 0.f : v > 1.f ? 1.f : v;
        }
        p->w[i] = w[i];
        p->h[i] = h[i];
        p->n = i + 1;
    }
    *out = p;
    return CAE_OK;
}

/* Decode one file into grey floats, box-downscaled. */
static cae_status photo_decode(const char *path, float **pix, int *pw, int *ph, cae_error *err)
{
    int w = 0, h = 0, c = 0;
    unsigned char *raw = stbi_load(path, &w, &h, &c, 1);
    if (!raw)
        return cae_error_set(err, CAE_ERR_IMAGE, "%s: cannot decode image: %s", path,
                             stbi_failure_reason() ? stbi_failure_reason() : "unknown reason");
    int shorter = w < h ? w : h;
    int f = (shorter + PHOTO_MAX_SIDE - 1) / PHOTO_MAX_SIDE;
    if (f < 1) f = 1;
    int ow = w / f, oh = h / f;
    if (ow < 28 || oh < 28) {
        stbi_image_free(raw);
        return cae_error_set(err, CAE_ERR_IMAGE,
                             "%s: image %d x %d is smaller than one 28 x 28 patch", path, w, h);
    }
    float *o = malloc((size_t)ow * (size_t)oh * sizeof *o);
    if (!o) {
        stbi_image_free(raw);
        return cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory", path);
    }
    float scale = 1.0f / (255.0f * (float)(f * f));
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            unsigned sum = 0;
            for (int dy = 0; dy < f; dy++)
                for (int dx = 0; dx < f; dx++) sum += raw[(size_t)(y * f + dy) * (size_t)w + (size_t)(x * f + dx)];
            o[(size_t)y * (size_t)ow + (size_t)x] = (float)sum * scale;
        }
    stbi_image_free(raw);
    *pix = o;
    *pw = ow;
    *ph = oh;
    return CAE_OK;
}

cae_status cae_photos_load(const char *dir, cae_photos **out, cae_error *err)
{
    if (out) *out = NULL;
    if (!dir || !out) return cae_error_set(err, CAE_ERR_ARG, "cae_photos_load: NULL argument");
    size_t dl = strlen(dir);
    char *mpath = malloc(dl + 16);
    if (!mpath) return cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
    snprintf(mpath, dl + 16, "%s/MANIFEST.tsv", dir);
    FILE *f = fopen(mpath, "r");
    if (!f) {
        cae_status rc = cae_error_set(err, CAE_ERR_IO,
                                           "%s: cannot open: %s (run scripts/fetch-data.sh)", mpath,
                                           strerror(errno));
        free(mpath);
        return rc;
    }
    cae_photos *p = photos_alloc(PHOTO_MAX_COUNT);
    cae_status rc = p ? CAE_OK : cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
    char line[1024];
    int lineno = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n' || line[0] == '\0') continue;
        line[strcspn(line, "\t\r\n")] = '\0';
        if (!line[0] || strchr(line, '/')) {
            rc = cae_error_set(err, CAE_ERR_ARG, "%s: line %d: expected a file name, found '%s'",
                               mpath, lineno, line);
            break;
        }
        if (p->n >= PHOTO_MAX_COUNT) {
            rc = cae_error_set(err, CAE_ERR_ARG, "%s: more than %d photos", mpath, PHOTO_MAX_COUNT);
            break;
        }
        size_t pl = dl + strlen(line) + 2;
        char *path = malloc(pl);
        if (!path) {
            rc = cae_error_set(err, CAE_ERR_NOMEM, "out of memory");
            break;
        }
        snprintf(path, pl, "%s/%s", dir, line);
        rc = photo_decode(path, &p->pix[p->n], &p->w[p->n], &p->h[p->n], err);
        free(path);
        if (!rc) p->n++;
    }
    fclose(f);
    if (!rc && p->n == 0)
        rc = cae_error_set(err, CAE_ERR_ARG, "%s: lists no photographs", mpath);
    free(mpath);
    if (rc) {
        cae_photos_free(p);
        return rc;
    }
    *out = p;
    return CAE_OK;
}
