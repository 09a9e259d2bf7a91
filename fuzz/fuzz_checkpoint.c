/* libFuzzer target: cae_checkpoint_load.
 *
 * Input: one mode byte, then the file. A random file almost never carries
 * its own payload length (header bytes 12..19) and CRC-32 (bytes 20..23), so
 * the mode byte lets the fuzzer reach past those checks: bit 0 rewrites the
 * length to match, bit 1 rewrites the CRC. The seeds (fuzz/corpus/checkpoint)
 * are real checkpoints behind a mode byte of 0.
 *
 * Besides the sanitizers it checks what the API promises: a failure leaves
 * no store and writes a message; a success passes cae_checkpoint_check (load
 * accepts nothing save would refuse), and saving what was loaded and loading
 * it again gives the same description and bit-identical tensors. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cae/checkpoint.h"
#include "fuzz_common.h"

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_checkpoint: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static fuzz_file ckpt;
static char rt_dir[64], rt_path[96];

static void cleanup(void)
{
    remove(rt_path);
    rmdir(rt_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_open(&ckpt, "cae-fuzz-ckpt");
    /* Saving needs a directory (PATH.tmp.PID, then rename): one per process. */
    snprintf(rt_dir, sizeof rt_dir, "/dev/shm/cae-fuzz-%ld", (long)getpid());
    if (mkdir(rt_dir, 0700) != 0) {
        snprintf(rt_dir, sizeof rt_dir, "/tmp/cae-fuzz-%ld", (long)getpid());
        if (mkdir(rt_dir, 0700) != 0) {
            perror(rt_dir);
            abort();
        }
    }
    snprintf(rt_path, sizeof rt_path, "%s/rt.ckpt", rt_dir);
    atexit(cleanup);
    return 0;
}

static void put_le(uint8_t *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static int same_store(const cae_params *a, const cae_params *b)
{
    if (!a || !b) return a == b;
    if (cae_params_count(a) != cae_params_count(b)) return 0;
    for (int i = 0; i < cae_params_count(a); i++) {
        const cae_tensor *s = cae_params_at(a, i), *t = cae_params_at(b, i);
        if (strcmp(s->name, t->name) || s->rank != t->rank || s->size != t->size) return 0;
        for (int k = 0; k < s->rank; k++)
            if (s->shape[k] != t->shape[k]) return 0;
        if (memcmp(s->data, t->data, sizeof(cae_real) * (size_t)s->size)) return 0;
    }
    return 1;
}

static void round_trip(const cae_model_info *info, const cae_params *p, const cae_params *opt)
{
    cae_error err;
    cae_status rc = cae_checkpoint_save(rt_path, info, p, opt, &err);
    CHECK(rc == CAE_OK, "saving a loaded checkpoint: %s (%s)", err.msg, cae_status_name(rc));
    cae_model_info info2;
    cae_params *p2 = NULL, *opt2 = NULL;
    rc = cae_checkpoint_load(rt_path, &info2, &p2, &opt2, &err);
    CHECK(rc == CAE_OK, "reloading: %s (%s)", err.msg, cae_status_name(rc));
    CHECK(info->kind == info2.kind && info->n_layers == info2.n_layers &&
              info->n_classes == info2.n_classes && info->epochs_done == info2.epochs_done &&
              info->seed == info2.seed && info->batch == info2.batch && !strcmp(info->data, info2.data),
          "the description changed in a save/load round trip");
    CHECK(same_store(p, p2), "the model tensors changed in a save/load round trip");
    CHECK(same_store(opt, opt2), "the optimizer tensors changed in a save/load round trip");
    cae_params_free(p2);
    cae_params_free(opt2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20)) return 0;
    const uint8_t mode = data[0];
    size--;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) abort();
    memcpy(buf, data + 1, size);
    if (size >= 24 && (mode & 1)) put_le(buf + 12, size - 24, 8);
    if (size >= 24 && (mode & 2)) put_le(buf + 20, crc32(crc32(0, Z_NULL, 0), buf + 24, (uInt)(size - 24)), 4);
    fuzz_file_set(&ckpt, buf, size);
    free(buf);

    cae_error err;
    cae_model_info info;
    cae_params *p = (cae_params *)&info, *opt = (cae_params *)&info; /* must be overwritten */
    cae_status rc = cae_checkpoint_load(ckpt.path, &info, &p, &opt, &err);
    if (rc != CAE_OK) {
        CHECK(p == NULL && opt == NULL, "status %s but a store", cae_status_name(rc));
        CHECK(err.msg[0] != '\0', "status %s without a message", cae_status_name(rc));
        CHECK(strlen(err.msg) < sizeof err.msg, "unterminated message");
        return 0;
    }
    CHECK(p != NULL, "ok without a store");
    rc = cae_checkpoint_check(NULL, &info, p, &err);
    CHECK(rc == CAE_OK, "loaded, but cae_checkpoint_check says: %s (%s)", err.msg, cae_status_name(rc));
    /* The description alone: same verdict. */
    cae_model_info info_only;
    rc = cae_checkpoint_load(ckpt.path, &info_only, NULL, NULL, &err);
    CHECK(rc == CAE_OK, "loads with a store but not without: %s", err.msg);
    if (info.n_classes > 0) {
        cae_mlp_config m;
        cae_model_info_mlp(&info, &m);
        CHECK(m.n_classes == info.n_classes && m.n_layers == info.n_layers, "mlp config");
    }
    round_trip(&info, p, opt);
    cae_params_free(p);
    cae_params_free(opt);
    return 0;
}
