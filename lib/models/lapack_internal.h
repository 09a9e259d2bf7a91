/* Private to lib/models: LAPACKE, loaded with dlopen only when a function
 * needs it (see CMakeLists.txt: linking it would start OpenBLAS's threads in
 * every program) and released after. The real type's routines by name. */
#ifndef CAE_LAPACK_INTERNAL_H
#define CAE_LAPACK_INTERNAL_H

#include <dlfcn.h>
#include <lapacke.h>
#include <omp.h>
#include <stdlib.h>

#include "cae/graph.h"

#ifdef CAE_REAL_DOUBLE
#define CAE_LAPACKE(name) "LAPACKE_d" name
#else
#define CAE_LAPACKE(name) "LAPACKE_s" name
#endif

typedef lapack_int (*cae_gesdd_fn)(int layout, char jobz, lapack_int m, lapack_int n, cae_real *a,
                                   lapack_int lda, cae_real *s, cae_real *u, lapack_int ldu,
                                   cae_real *vt, lapack_int ldvt);
typedef lapack_int (*cae_syev_fn)(int layout, char jobz, char uplo, lapack_int n, cae_real *a,
                                  lapack_int lda, cae_real *w);

/* The library's handle with *fn = its routine `sym` (CAE_LAPACKE("syev")),
 * or NULL with err set ("WHO: ..."); release with dlclose. Its routines
 * run on `threads` threads when it is OpenBLAS's (0: OpenMP's count). */
static inline void *cae_lapack_open(const char *who, const char *sym, int threads, void **fn,
                                    cae_error *err)
{
    static const char *const names[] = {"liblapacke.so.3", "liblapacke.so"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        cae_error_set(err, CAE_ERR_IO, "%s: cannot load LAPACKE (liblapacke.so.3: %s); install liblapacke",
                      who, dlerror());
        return NULL;
    }
    /* OpenBLAS runs on as many threads as the cores unless told: have it
     * use the caller's (0: OpenMP's count, unless OPENBLAS_NUM_THREADS says).
     * Its OpenMP build sets OpenMP's count too: the caller's is put back. */
    void (*set_threads)(int);
    *(void **)&set_threads = dlsym(h, "openblas_set_num_threads");
    if (set_threads && (threads > 0 || !getenv("OPENBLAS_NUM_THREADS"))) {
        const int omp = omp_get_max_threads();
        set_threads(threads > 0 ? threads : omp);
        omp_set_num_threads(omp);
    }
    *fn = dlsym(h, sym);
    if (!*fn) {
        cae_error_set(err, CAE_ERR_ARG, "%s: liblapacke.so.3 has no %s", who, sym);
        dlclose(h);
        return NULL;
    }
    return h;
}

#endif
