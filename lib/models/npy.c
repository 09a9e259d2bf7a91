/* NumPy export: one .npy file (format 1.0) per tensor of a store, each
 * written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/ckpt_internal.h"

/* ---------------------------------------------------------------- .npy */

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char *s = strdup(dir);
    if (!s) return ENOMEM;
    int e = 0;
    for (char *q = s + 1; !e; q++) {
        const int end = *q == 0;
        if (*q != '/' && !end) continue;
        *q = 0;
        struct stat sb;
        if (mkdir(s, 0755) && errno != EEXIST)
            e = errno;
        else if (stat(s, &sb) || !S_ISDIR(sb.st_mode))
            e = ENOTDIR;
        if (end) break;
        *q = '/';
    }
    free(s);
    return e;
}

/* Header of a NumPy 1.0 file: magic, version, u16 length, the dict padded
 * with spaces and a final newline to a multiple of 64 bytes in all. */
static size_t npy_header(const cae_tensor *t, uint8_t *h, size_t cap)
{
    char shape[160] = "(";
    size_t m = 1;
    for (int i = 0; i < t->rank; i++)
        m += (size_t)snprintf(shape + m, sizeof shape - m, i ? ", %lld" : "%lld",
                              (long long)t->shape[i]);
    snprintf(shape + m, sizeof shape - m, t->rank == 1 ? ",)" : ")");
    char dict[256];
    const int dn =
        snprintf(dict, sizeof dict, "{'descr': '<f%d', 'fortran_order': False, 'shape': %s, }",
                 (int)sizeof(cae_real), shape);
    if (dn < 0 || (size_t)dn >= sizeof dict) return 0;
    size_t total = 10 + (size_t)dn + 1;
    total += (64 - total % 64) % 64;
    if (total > cap) return 0;
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (uint8_t)((total - 10) & 0xff);
    h[9] = (uint8_t)((total - 10) >> 8);
    memcpy(h + 10, dict, (size_t)dn);
    memset(h + 10 + dn, ' ', total - 10 - (size_t)dn - 1);
    h[total - 1] = '\n';
    return total;
}

cae_status cae_export_npy(const cae_params *p, const char *dir, cae_error *err)
{
    if (!p || !dir || !*dir) return cae_error_set(err, CAE_ERR_ARG, "export: no store or no directory");
    for (int i = 0; i < cae_params_count(p); i++) { /* every name first: all or nothing */
        const cae_tensor *t = cae_params_at(p, i);
        const char *why = cae_ckpt_name_problem(t->name, strlen(t->name));
        if (why)
            return cae_error_set(err, CAE_ERR_FORMAT,
                                 "%s: tensor '%.80s' cannot be a file name: the name %s", dir,
                                 t->name, why);
    }
    int e = make_dirs(dir);
    if (e) return cae_error_set(err, CAE_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(e));
    for (int i = 0; i < cae_params_count(p); i++) {
        const cae_tensor *t = cae_params_at(p, i);
        const size_t plen = strlen(dir) + strlen(t->name) + 8;
        char *path = malloc(plen), *tmp = NULL;
        if (!path) return cae_error_set(err, CAE_ERR_NOMEM, "%s: out of memory", dir);
        snprintf(path, plen, "%s/%s.npy", dir, t->name);
        uint8_t head[512];
        const size_t hn = npy_header(t, head, sizeof head);
        FILE *f = hn ? cae_ckpt_atomic_open(path, &tmp) : NULL;
        if (!f) {
            cae_error_set(err, CAE_ERR_IO, "%s: cannot create %s: %s", path,
                          tmp ? tmp : "the file", hn ? strerror(errno) : "header too long");
            free(tmp);
            free(path);
            return CAE_ERR_IO;
        }
        ckpt_writer w = {f, 0, 0, 0};
        cae_ckpt_w_bytes(&w, head, hn);
        cae_ckpt_w_reals(&w, t->data, t->size, (int)sizeof(cae_real));
        if (w.err) {
            cae_ckpt_atomic_abort(f, tmp);
            e = w.err;
        } else {
            e = cae_ckpt_atomic_commit(f, tmp, path);
        }
        if (e) cae_error_set(err, CAE_ERR_IO, "%s: cannot write: %s", path, strerror(e));
        free(tmp);
        free(path);
        if (e) return CAE_ERR_IO;
    }
    return CAE_OK;
}
