/* cae_comm over MPI (cae/mpi.h): non-blocking collectives polled against a
 * deadline, MPI errors returned as statuses. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cae/mpi.h"

typedef struct mpi_ctx {
    cae_comm comm; /* first: the cae_comm * handed out is the context's */
    MPI_Comm mc;
    double timeout;
    int broken;
    double seconds;
    int64_t calls;
} mpi_ctx;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static cae_status mpi_fail(mpi_ctx *m, int code, const char *what, cae_error *err)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "error %d", code);
    m->broken = 1;
    return cae_error_set(err, CAE_ERR_COMM, "rank %d: %s failed: %s", m->comm.rank, what, s);
}

/* Wait for q: MPI_Test until it completes or the deadline passes. Spin
 * first (a step's sum normally lands within microseconds to milliseconds),
 * then sleep between tests, longer and longer up to 1 ms, so a rank waiting
 * for rank 0's evaluation leaves its core to others. */
static cae_status wait_for(mpi_ctx *m, MPI_Request *q, const char *what, cae_error *err)
{
    const double start = now(), deadline = start + m->timeout;
    long sleep_ns = 0;
    for (long k = 0;; k++) {
        int done = 0;
        const int rc = MPI_Test(q, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(m, rc, what, err);
        if (done) return CAE_OK;
        if ((k & 63) != 63) continue;
        const double t = now();
        if (t > deadline) {
            m->broken = 1;
            return cae_error_set(err, CAE_ERR_COMM, "rank %d: %s: no answer within %g s: a rank "
                                 "has died or hangs", m->comm.rank, what, m->timeout);
        }
        if (t - start > 2e-3) {
            sleep_ns = sleep_ns ? (sleep_ns * 2 > 1000000 ? 1000000 : sleep_ns * 2) : 20000;
            struct timespec ts = {0, sleep_ns};
            nanosleep(&ts, NULL);
        }
    }
}

enum { CHUNK = 1 << 28 }; /* elements per call: within MPI's int counts */

static cae_status m_allreduce(void *buf, int64_t n, cae_comm_type type, void *ctx, cae_error *err)
{
    mpi_ctx *m = ctx;
    if (m->broken) return cae_error_set(err, CAE_ERR_COMM, "the communicator failed before");
    const double t0 = now();
    const MPI_Datatype dt = type == CAE_COMM_DOUBLE ? MPI_DOUBLE
                            : sizeof(cae_real) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT;
    const size_t es = type == CAE_COMM_DOUBLE ? sizeof(double) : sizeof(cae_real);
    char what[96];
    snprintf(what, sizeof what, "the sum of %lld %s (MPI_%sallreduce)", (long long)n,
             type == CAE_COMM_DOUBLE ? "doubles" : sizeof(cae_real) == 4 ? "floats" : "doubles",
             m->timeout > 0 ? "I" : "");
    cae_status st = CAE_OK;
    for (int64_t off = 0; off < n && !st; off += CHUNK) {
        const int cnt = (int)(n - off < CHUNK ? n - off : CHUNK);
        void *p = (char *)buf + (size_t)off * es;
        int rc;
        if (m->timeout > 0) {
            MPI_Request q;
            rc = MPI_Iallreduce(MPI_IN_PLACE, p, cnt, dt, MPI_SUM, m->mc, &q);
            st = rc != MPI_SUCCESS ? mpi_fail(m, rc, what, err) : wait_for(m, &q, what, err);
        } else {
            rc = MPI_Allreduce(MPI_IN_PLACE, p, cnt, dt, MPI_SUM, m->mc);
            if (rc != MPI_SUCCESS) st = mpi_fail(m, rc, what, err);
        }
    }
    m->seconds += now() - t0;
    m->calls++;
    return st;
}

static cae_status m_broadcast(void *buf, size_t bytes, int root, void *ctx, cae_error *err)
{
    mpi_ctx *m = ctx;
    if (m->broken) return cae_error_set(err, CAE_ERR_COMM, "the communicator failed before");
    const double t0 = now();
    char what[96];
    snprintf(what, sizeof what, "a broadcast of %zu bytes from rank %d (MPI_%sbcast)", bytes, root,
             m->timeout > 0 ? "I" : "");
    cae_status st = CAE_OK;
    for (size_t off = 0; off < bytes && !st; off += CHUNK) {
        const int cnt = (int)(bytes - off < CHUNK ? bytes - off : CHUNK);
        int rc;
        if (m->timeout > 0) {
            MPI_Request q;
            rc = MPI_Ibcast((char *)buf + off, cnt, MPI_BYTE, root, m->mc, &q);
            st = rc != MPI_SUCCESS ? mpi_fail(m, rc, what, err) : wait_for(m, &q, what, err);
        } else {
            rc = MPI_Bcast((char *)buf + off, cnt, MPI_BYTE, root, m->mc);
            if (rc != MPI_SUCCESS) st = mpi_fail(m, rc, what, err);
        }
    }
    m->seconds += now() - t0;
    m->calls++;
    return st;
}

cae_comm *cae_mpi_comm_new(MPI_Comm comm, double timeout, cae_error *err)
{
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
        cae_error_set(err, CAE_ERR_ARG, "mpi: MPI is not initialised (MPI_Init first)");
        return NULL;
    }
    if (!(timeout >= 0)) {
        cae_error_set(err, CAE_ERR_ARG, "mpi: a timeout of %g s", timeout);
        return NULL;
    }
    mpi_ctx *m = calloc(1, sizeof *m);
    if (!m) {
        cae_error_set(err, CAE_ERR_NOMEM, "mpi: out of memory");
        return NULL;
    }
    int rc = MPI_Comm_dup(comm, &m->mc);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(m->mc, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(m->mc, &m->comm.rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(m->mc, &m->comm.size);
    if (rc != MPI_SUCCESS) {
        mpi_fail(m, rc, "setting up the communicator", err);
        free(m);
        return NULL;
    }
    m->timeout = timeout;
    m->comm.allreduce = m_allreduce;
    m->comm.broadcast = m_broadcast;
    m->comm.ctx = m;
    return &m->comm;
}

void cae_mpi_comm_free(cae_comm *c)
{
    if (!c) return;
    mpi_ctx *m = c->ctx;
    if (!m->broken) MPI_Comm_free(&m->mc);
    free(m);
}

void cae_mpi_comm_set_timeout(cae_comm *c, double timeout)
{
    ((mpi_ctx *)c->ctx)->timeout = timeout > 0 ? timeout : 0;
}

int cae_mpi_comm_broken(const cae_comm *c) { return c && ((const mpi_ctx *)c->ctx)->broken; }

double cae_mpi_comm_seconds(const cae_comm *c, int64_t *calls)
{
    const mpi_ctx *m = c->ctx;
    if (calls) *calls = m->calls;
    return m->seconds;
}

void cae_mpi_comm_reset_time(cae_comm *c)
{
    mpi_ctx *m = c->ctx;
    m->seconds = 0;
    m->calls = 0;
}
