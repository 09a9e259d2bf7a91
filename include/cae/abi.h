/*
 * cae/abi.h — the real type of a program and of its library must agree, and
 * the linker checks it.
 *
 * The library is built with float (libcae, cae.pc) or double (libcae-double,
 * cae-double.pc, -DCAE_REAL_DOUBLE) as cae_real; the headers are the same
 * for both and follow CAE_REAL_DOUBLE. A program compiled for one real type
 * and linked with the other library would pass float buffers to code that
 * reads doubles: wrong numbers, no error. So each library defines one marker
 * object, cae_abi_real_float or cae_abi_real_double, and every translation
 * unit that includes a cae header (this one is included by cae/graph.h)
 * keeps a pointer to the marker of its own real type. A mismatch is an
 * undefined reference at link time, naming the marker:
 *
 *   undefined reference to `cae_abi_real_double'
 *     -> this code was compiled with -DCAE_REAL_DOUBLE: link -lcae-double
 *        (pkg-config cae-double, find_package(cae-double)), or drop the define.
 *
 * The pointer is `used` (kept even when nothing reads it, also under LTO)
 * and, where the compiler has it, `retain` (kept by --gc-sections, which
 * would otherwise drop it together with the reference). It costs one
 * pointer per translation unit and nothing at run time.
 */
#ifndef CAE_ABI_H
#define CAE_ABI_H

#ifdef __cplusplus
extern "C" {
#endif

#ifdef CAE_REAL_DOUBLE
extern const char cae_abi_real_double; /* defined only by libcae-double */
#define CAE_ABI_REAL_MARKER cae_abi_real_double
#else
extern const char cae_abi_real_float; /* defined only by libcae */
#define CAE_ABI_REAL_MARKER cae_abi_real_float
#endif

#ifdef __cplusplus
}
#endif

#if defined(__has_attribute)
#if __has_attribute(retain)
#define CAE_ABI_RETAIN_ __attribute__((retain))
#endif
#endif
#ifndef CAE_ABI_RETAIN_
#define CAE_ABI_RETAIN_
#endif

static const char *const cae_abi_real_check_ __attribute__((used, unused)) CAE_ABI_RETAIN_ =
    &CAE_ABI_REAL_MARKER;

#endif
