/* The library's version and its real-type marker (cae/abi.h, cae/version.h). */
#include "cae/graph.h"
#include "cae/version.h"

/* The one marker of this build's real type: programs compiled for the other
 * one reference the other marker and fail to link (cae/abi.h). */
#ifdef CAE_REAL_DOUBLE
const char cae_abi_real_double = 8;
#else
const char cae_abi_real_float = 4;
#endif

const char *cae_version(void) { return CAE_VERSION_STRING; }

const char *cae_version_real(void) { return sizeof(cae_real) == 8 ? "double" : "float"; }
