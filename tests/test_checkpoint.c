/* Checkpoints: exact round trips (every tensor bit for bit, every field of
 * the description, optimizer tensors), the bytes against the document
 * (ckpt_testutil.h's independent encoder), f32 <-> f64 conversion both
 * ways, saves that fail without touching the previous file or leaving temp
 * files, and the .npy export read back by a small reader. The rejections
 * of broken files are in test_checkpoint_reject.c. */
#include "ckpt_testutil.h" /* first: it sets _GNU_SOURCE */

#include <signal.h>
#include <sys/resource.h>

/* --------------------------------------------------------------- tests */

START_TEST(round_trip_stack_is_exact)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "stack.ckpt");
    cae_model_info in, back;
    cae_params *p, *opt, *p2, *opt2;
    make_stack(&in, &p, &opt);
    cae_error err;
    ck_assert_msg(!cae_checkpoint_save(path, &in, p, opt, &err), "%s", err.msg);
    ck_assert_int_eq(temp_files(dir), 0);
    ck_assert_msg(!cae_checkpoint_load(path, &back, &p2, &opt2, &err), "%s", err.msg);
    const char *d = info_diff(&in, &back);
    ck_assert_msg(!d, "field %s differs after the round trip", d);
    assert_stores_equal(p, p2);
    ck_assert(opt2 != NULL);
    assert_stores_equal(opt, opt2);
    /* Saving what was loaded gives the same bytes. */
    char *again = path_in(dir, "again.ckpt");
    ck_assert_msg(!cae_checkpoint_save(again, &back, p2, opt2, &err), "%s", err.msg);
    size_t n1, n2;
    unsigned char *b1 = read_all(path, &n1), *b2 = read_all(again, &n2);
    ck_assert(n1 == n2 && !memcmp(b1, b2, n1));
    /* Without out_opt the optimizer tensors are skipped. */
    cae_params *p3;
    ck_assert(!cae_checkpoint_load(path, &back, &p3, NULL, &err));
    assert_stores_equal(p, p3);
    free(b1);
    free(b2);
    cae_params_free(p);
    cae_params_free(opt);
    cae_params_free(p2);
    cae_params_free(opt2);
    cae_params_free(p3);
    free(again);
    free(path);
    rm_tree(dir);
}
END_TEST

START_TEST(round_trip_classifier_is_exact)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "mlp.ckpt");
    cae_model_info in, back, peek;
    cae_params *p, *p2, *opt2;
    make_classifier(&in, &p);
    cae_error err;
    ck_assert_msg(!cae_checkpoint_save(path, &in, p, NULL, &err), "%s", err.msg);
    ck_assert_msg(!cae_checkpoint_load(path, &back, &p2, &opt2, &err), "%s", err.msg);
    ck_assert_msg(!info_diff(&in, &back), "%s", info_diff(&in, &back));
    assert_stores_equal(p, p2);
    ck_assert(opt2 == NULL); /* none saved */
    ck_assert(cae_params_get(p2, "out.V")->shape[0] == 4 &&
              cae_params_get(p2, "out.V")->shape[1] == 3);
    /* Validate-only load: info, no store. */
    ck_assert(!cae_checkpoint_load(path, &peek, NULL, NULL, &err));
    ck_assert(!info_diff(&in, &peek));
    cae_mlp_config m;
    cae_model_info_mlp(&back, &m);
    ck_assert_int_eq(m.n_layers, 2);
    ck_assert(m.sizes[0] == 7 && m.sizes[1] == 5 && m.sizes[2] == 4);
    ck_assert(m.act[0] == CAE_ACT_SIGMOID && m.act[1] == CAE_ACT_RELU);
    ck_assert_int_eq(m.n_classes, 3);
    ck_assert(m.wd == 1e-4);
    ck_assert_int_eq(temp_files(dir), 0);
    cae_params_free(p);
    cae_params_free(p2);
    free(path);
    rm_tree(dir);
}
END_TEST

/* The independent encoder writes the bytes the library writes. */
START_TEST(format_matches_the_document)
{
    char *dir = tu_tmpdir(), *a = path_in(dir, "lib.ckpt"), *b = path_in(dir, "doc.ckpt");
    cae_model_info in;
    cae_params *p, *opt;
    make_stack(&in, &p, &opt);
    cae_error err;
    for (int bytes = 4; bytes <= 8; bytes += 4) {
        ck_assert_msg(
            !cae_checkpoint_save_as(a, &in, p, opt, (cae_ckpt_real)bytes, &err), "%s",
            err.msg);
        e_checkpoint(b, &in, p, opt, (uint32_t)bytes);
        size_t na, nb;
        unsigned char *ba = read_all(a, &na), *bb = read_all(b, &nb);
        ck_assert_msg(na == nb, "f%d: library wrote %zu bytes, the document says %zu", 8 * bytes,
                      na, nb);
        for (size_t i = 0; i < na; i++)
            ck_assert_msg(ba[i] == bb[i], "f%d: byte %zu is %02x, the document says %02x",
                          8 * bytes, i, ba[i], bb[i]);
        /* The worked example of the document (file offsets). */
        ck_assert_int_eq(ba[32], CAE_MODEL_CAE);     /* layer 1's kind */
        ck_assert_int_eq(ba[96 + 20], CAE_ACT_TANH); /* layer 2's activation */
        ck_assert(!memcmp(ba + 24 + 152, "mnist-rot", 9));
        ck_assert_int_eq(ba[24 + 233], bytes);
        ck_assert_int_eq(ba[24 + 237], 14); /* 7 model + 7 optimizer tensors */
        ck_assert(!memcmp(ba + 265 + 8, "L1.W", 4));
        ck_assert(ba[265 + 12] == 2 && ba[265 + 16] == 7 && ba[265 + 24] == 5);
        const double w0 = (double)cae_params_get(p, "L1.W")->data[0];
        if (bytes == 4) {
            float f = (float)w0;
            ck_assert(!memcmp(ba + 297, &f, 4)); /* little-endian host */
        } else {
            ck_assert(!memcmp(ba + 297, &w0, 8));
        }
        free(ba);
        free(bb);
    }
    cae_params_free(p);
    cae_params_free(opt);
    free(a);
    free(b);
    rm_tree(dir);
}
END_TEST

/* Both real types load in this build: the native one exactly, the other
 * converted (float -> double exactly; double -> float rounded). */
START_TEST(real_types_convert)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "conv.ckpt");
    cae_model_info in, back;
    cae_params *p, *opt, *p2, *opt2;
    make_stack(&in, &p, &opt);
    cae_error err;
    for (int bytes = 4; bytes <= 8; bytes += 4) {
        for (int hand = 0; hand < 2; hand++) { /* library save, then hand-made file */
            if (hand)
                e_checkpoint(path, &in, p, opt, (uint32_t)bytes);
            else
                ck_assert_msg(!cae_checkpoint_save_as(path, &in, p, opt, (cae_ckpt_real)bytes, &err),
                              "%s", err.msg);
            ck_assert_msg(!cae_checkpoint_load(path, &back, &p2, &opt2, &err), "%s",
                          err.msg);
            ck_assert(!info_diff(&in, &back));
            for (int s = 0; s < 2; s++) {
                const cae_params *x = s ? opt : p, *y = s ? opt2 : p2;
                ck_assert_int_eq(cae_params_count(x), cae_params_count(y));
                for (int i = 0; i < cae_params_count(x); i++) {
                    const cae_tensor *tx = cae_params_at(x, i), *ty = cae_params_at(y, i);
                    ck_assert_str_eq(tx->name, ty->name);
                    for (int64_t j = 0; j < tx->size; j++) {
                        /* What a float file holds: the value rounded to float. */
                        cae_real want = bytes == 4 ? (cae_real)(float)tx->data[j] : tx->data[j];
                        ck_assert_msg(!memcmp(&want, &ty->data[j], sizeof want) ||
                                          (isnan((double)want) && isnan((double)ty->data[j])),
                                      "f%d file, hand %d: '%s'[%lld] = %.17g, expected %.17g",
                                      8 * bytes, hand, tx->name, (long long)j, (double)ty->data[j],
                                      (double)want);
                    }
                }
            }
            cae_params_free(p2);
            cae_params_free(opt2);
        }
    }
    /* A file size that says which type was written. */
    ck_assert(!cae_checkpoint_save_as(path, &in, p, NULL, CAE_CKPT_F32, &err));
    size_t n4, n8;
    free(read_all(path, &n4));
    ck_assert(!cae_checkpoint_save_as(path, &in, p, NULL, CAE_CKPT_F64, &err));
    free(read_all(path, &n8));
    size_t total = 0;
    for (int i = 0; i < cae_params_count(p); i++) total += (size_t)cae_params_at(p, i)->size;
    ck_assert_uint_eq(n8 - n4, 4 * total);
    /* A double too large for float: the float build refuses it. */
    cae_tensor *W = cae_params_get(p, "L1.W");
    const cae_real keep = W->data[3];
    enc e = {0};
    e_head(&e, &in, 8, (uint32_t)cae_params_count(p));
    for (int i = 0; i < cae_params_count(p); i++) {
        const cae_tensor *t = cae_params_at(p, i);
        uint64_t dims[4] = {(uint64_t)t->shape[0], (uint64_t)t->shape[1]};
        if (t == W) {
            double big[35];
            for (int j = 0; j < 35; j++) big[j] = j == 3 ? 1e300 : 0.5;
            e_u32(&e, 0);
            e_u32(&e, 4);
            e_put(&e, "L1.W", 4);
            e_u32(&e, 2);
            e_u64(&e, 7);
            e_u64(&e, 5);
            for (int j = 0; j < 35; j++) e_f64(&e, big[j]);
        } else {
            e_tensor(&e, 0, t->name, (uint32_t)t->rank, dims, t->data, t->size, 8);
        }
    }
    e_write(path, &e, 1);
    free(e.b);
    if (sizeof(cae_real) == 4) {
        expect_load_fails(path, CAE_ERR_FORMAT, "'L1.W' element 3 = 1e+300 does not fit");
    } else { /* loads; but a value too large for float cannot be saved as f32 */
        ck_assert(!cae_checkpoint_load(path, &back, &p2, NULL, &err));
        ck_assert(cae_params_get(p2, "L1.W")->data[3] == 1e300);
        cae_params_free(p2);
        W->data[3] = (cae_real)1e300;
        ck_assert_int_eq(cae_checkpoint_save_as(path, &in, p, NULL, CAE_CKPT_F32, &err),
                         CAE_ERR_FORMAT);
        ck_assert_msg(strstr(err.msg, "does not fit in float"), "%s", err.msg);
        W->data[3] = keep;
    }
    ck_assert_int_eq(temp_files(dir), 0);
    cae_params_free(p);
    cae_params_free(opt);
    free(path);
    rm_tree(dir);
}
END_TEST

static void assert_file_is(const char *path, const unsigned char *b, size_t n)
{
    size_t m;
    unsigned char *c = read_all(path, &m);
    ck_assert_msg(m == n && !memcmp(b, c, n), "%s changed (%zu bytes, was %zu)", path, m, n);
    free(c);
}

START_TEST(failed_saves_leave_the_old_file)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "keep.ckpt");
    cae_model_info in, cls;
    cae_params *p, *opt, *pc;
    make_stack(&in, &p, &opt);
    make_classifier(&cls, &pc);
    cae_error err;
    ck_assert(!cae_checkpoint_save(path, &in, p, opt, &err));
    size_t n;
    unsigned char *b = read_all(path, &n);

    /* Into a directory that does not exist. */
    char *nodir = path_in(dir, "missing/x.ckpt");
    ck_assert_int_eq(cae_checkpoint_save(nodir, &in, p, NULL, &err), CAE_ERR_IO);
    ck_assert_msg(strstr(err.msg, nodir) == err.msg && strstr(err.msg, "cannot create") &&
                      strstr(err.msg, "No such file or directory"),
                  "%s", err.msg);
    /* Onto a path that is a directory: rename fails, the directory stays. */
    char *sub = path_in(dir, "sub");
    ck_assert(!mkdir(sub, 0755));
    ck_assert_int_eq(cae_checkpoint_save(sub, &in, p, NULL, &err), CAE_ERR_IO);
    ck_assert_msg(strstr(err.msg, "cannot save"), "%s", err.msg);
    struct stat sb;
    ck_assert(!stat(sub, &sb) && S_ISDIR(sb.st_mode));
    ck_assert_int_eq(temp_files(dir), 0);
    /* The temp file cannot be created (its name is taken by a directory). */
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    ck_assert(!mkdir(tmpname, 0755));
    ck_assert_int_eq(cae_checkpoint_save(path, &cls, pc, NULL, &err), CAE_ERR_IO);
    ck_assert_msg(strstr(err.msg, "cannot create") && strstr(err.msg, "Is a directory"), "%s", err.msg);
    assert_file_is(path, b, n);
    ck_assert(!rmdir(tmpname));
    /* A write that fails half way (file size limit): the temp file goes. */
    struct rlimit old, lim;
    ck_assert(!getrlimit(RLIMIT_FSIZE, &old));
    lim = old;
    lim.rlim_cur = 300;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert(!setrlimit(RLIMIT_FSIZE, &lim));
    cae_status st = cae_checkpoint_save(path, &cls, pc, NULL, &err);
    ck_assert(!setrlimit(RLIMIT_FSIZE, &old));
    signal(SIGXFSZ, prev);
    ck_assert_int_eq(st, CAE_ERR_IO);
    ck_assert_msg(strstr(err.msg, "cannot write") && strstr(err.msg, "File too large"), "%s", err.msg);
    assert_file_is(path, b, n);
    ck_assert_int_eq(temp_files(dir), 0);
    /* A description the store does not match, or a bad one: nothing written. */
    ck_assert_int_eq(cae_checkpoint_save(path, &cls, p, NULL, &err),
                     CAE_ERR_MISMATCH);
    ck_assert_msg(strstr(err.msg, "tensor 'L2.W' is 5x3, the description says 5x4"), "%s", err.msg);
    ck_assert_int_eq(cae_checkpoint_check(NULL, &cls, p, &err), CAE_ERR_MISMATCH);
    ck_assert_int_eq(cae_checkpoint_check(NULL, &cls, pc, &err), CAE_OK);
    cae_model_info broken = in;
    broken.layer[1].n_in = 4;
    ck_assert_int_eq(cae_checkpoint_save(path, &broken, p, NULL, &err),
                     CAE_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "layer 2 has 4 inputs, expected 5"), "%s", err.msg);
    cae_params *slash = cae_params_new();
    for (int i = 0; i < cae_params_count(p); i++) {
        cae_tensor *t = cae_params_at(p, i);
        cae_params_add(slash, t->name, t->rank, t->shape);
    }
    cae_params_add(slash, "a/b", 0, NULL);
    ck_assert_int_eq(cae_checkpoint_save(path, &in, slash, NULL, &err),
                     CAE_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "model tensor 'a/b': the name has a byte"), "%s", err.msg);
    ck_assert_int_eq(cae_checkpoint_save(path, &in, p, slash, &err),
                     CAE_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "optimizer tensor 'a/b'"), "%s", err.msg);
    assert_file_is(path, b, n);
    ck_assert_int_eq(temp_files(dir), 0);
    /* And a good save still replaces it. */
    ck_assert(!cae_checkpoint_save(path, &cls, pc, NULL, &err));
    cae_model_info back;
    ck_assert(!cae_checkpoint_load(path, &back, NULL, NULL, &err));
    ck_assert_int_eq(back.kind, CAE_MODEL_MLP);
    ck_assert_int_eq(temp_files(dir), 0);
    cae_params_free(slash);
    free(b);
    free(sub);
    free(nodir);
    cae_params_free(p);
    cae_params_free(opt);
    cae_params_free(pc);
    free(path);
    rm_tree(dir);
}
END_TEST

/* A minimal .npy reader: magic, version 1.0, header length and padding,
 * the dict text, then the values. */
static void check_npy(const char *path, const cae_tensor *t)
{
    size_t n;
    unsigned char *b = read_all(path, &n);
    ck_assert_msg(n >= 10 && !memcmp(b, "\x93NUMPY", 6), "%s: no magic", path);
    ck_assert_msg(b[6] == 1 && b[7] == 0, "%s: version %d.%d", path, b[6], b[7]);
    const size_t hl = (size_t)b[8] | (size_t)b[9] << 8;
    ck_assert_msg((10 + hl) % 64 == 0, "%s: header ends at %zu", path, 10 + hl);
    ck_assert(10 + hl <= n && b[10 + hl - 1] == '\n');
    char shape[128] = "(";
    for (int i = 0; i < t->rank; i++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), i ? ", %lld" : "%lld",
                 (long long)t->shape[i]);
    strcat(shape, t->rank == 1 ? ",)" : ")");
    char dict[256];
    int dn = snprintf(dict, sizeof dict, "{'descr': '<f%d', 'fortran_order': False, 'shape': %s, }",
                      (int)sizeof(cae_real), shape);
    ck_assert_msg(!memcmp(b + 10, dict, (size_t)dn), "%s: header %.*s, expected %s", path, (int)hl,
                  (char *)b + 10, dict);
    for (size_t i = 10 + (size_t)dn; i < 10 + hl - 1; i++) ck_assert(b[i] == ' ');
    ck_assert_uint_eq(n - 10 - hl, (size_t)t->size * sizeof(cae_real));
    for (int64_t i = 0; i < t->size; i++) { /* little-endian values */
        unsigned char le[8];
        uint64_t u;
        if (sizeof(cae_real) == 4) {
            float f = (float)t->data[i];
            uint32_t u32;
            memcpy(&u32, &f, 4);
            u = u32;
        } else {
            double d = (double)t->data[i];
            memcpy(&u, &d, 8);
        }
        for (size_t k = 0; k < sizeof(cae_real); k++) le[k] = (unsigned char)(u >> (8 * k));
        ck_assert_msg(!memcmp(b + 10 + hl + i * (int64_t)sizeof(cae_real), le, sizeof(cae_real)),
                      "%s: value %lld", path, (long long)i);
    }
    free(b);
}

START_TEST(npy_export_reads_back)
{
    char *dir = tu_tmpdir(), *out = path_in(dir, "npy/nested");
    cae_params *p = cae_params_new();
    cae_params_add(p, "L1.W", 2, (int64_t[]){7, 5});
    cae_params_add(p, "L1.b", 1, (int64_t[]){5});
    cae_params_add(p, "s", 0, NULL);
    cae_params_add(p, "cube", 3, (int64_t[]){2, 3, 4});
    fill_tensors(p, 9);
    cae_error err;
    for (int round = 0; round < 2; round++) { /* creates, then replaces */
        ck_assert_msg(!cae_export_npy(p, out, &err), "%s", err.msg);
        for (int i = 0; i < cae_params_count(p); i++) {
            const cae_tensor *t = cae_params_at(p, i);
            char name[80];
            snprintf(name, sizeof name, "%s.npy", t->name);
            char *f = path_in(out, name);
            check_npy(f, t);
            free(f);
        }
        ck_assert_int_eq(temp_files(out), 0);
        tu_fill_uniform(cae_params_at(p, 0)->data, 35, 0, 1, 77);
    }
    /* A directory that cannot be made; a name that cannot be a file name
     * (then nothing at all is written). */
    char *file = path_in(dir, "plain");
    write_all(file, "x", 1);
    char *under = path_in(file, "d");
    ck_assert_int_eq(cae_export_npy(p, under, &err), CAE_ERR_IO);
    ck_assert_msg(strstr(err.msg, under) == err.msg && strstr(err.msg, "cannot create the directory"), "%s",
                  err.msg);
    cae_params_add(p, "a/b", 1, (int64_t[]){2});
    char *fresh = path_in(dir, "fresh");
    ck_assert_int_eq(cae_export_npy(p, fresh, &err), CAE_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "'a/b' cannot be a file name"), "%s", err.msg);
    struct stat sb;
    ck_assert(stat(fresh, &sb) && errno == ENOENT);
    ck_assert_int_eq(cae_export_npy(p, fresh, NULL), CAE_ERR_FORMAT); /* err may be NULL */
    free(fresh);
    free(under);
    free(file);
    cae_params_free(p);
    free(out);
    rm_tree(dir);
}
END_TEST

START_TEST(status_strings)
{
    for (int s = CAE_OK; s < CAE_ERR_COUNT; s++) {
        const char *m = cae_status_name((cae_status)s);
        ck_assert(m && *m && strcmp(m, "unknown status"));
    }
    ck_assert_str_eq(cae_status_name((cae_status)99), "unknown status");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *t = tcase_create("checkpoint");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, round_trip_stack_is_exact);
    tcase_add_test(t, round_trip_classifier_is_exact);
    tcase_add_test(t, format_matches_the_document);
    tcase_add_test(t, real_types_convert);
    tcase_add_test(t, failed_saves_leave_the_old_file);
    tcase_add_test(t, npy_export_reads_back);
    tcase_add_test(t, status_strings);
    suite_add_tcase(s, t);
    return tu_run(s);
}
