/* Loads nats.c with dlopen() on first use; see natsdl.h. */
#define NATSDL_NO_MACROS
#include "nats/natsdl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define NATSDL_STR2(x) #x
#define NATSDL_STR(x) NATSDL_STR2(x)

/* The SONAME of the nats.c release whose headers roj was built with
 * (libnats.so.3.4 for 3.4.1), then the development link as a fallback.
 * ROJ_NATS_LIB in the environment names another file instead. */
#define NATSDL_SONAME                                                       \
    "libnats.so." NATSDL_STR(NATS_VERSION_MAJOR) "." NATSDL_STR(          \
        NATS_VERSION_MINOR)

natsdl_table natsdl_fn;

static pthread_once_t natsdl_once = PTHREAD_ONCE_INIT;
static atomic_bool natsdl_ok;
static char natsdl_why[512];

static void natsdl_open(void)
{
    const char *path = getenv("ROJ_NATS_LIB");
    void *lib;
    if (path && *path) {
        lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    } else {
        path = NATSDL_SONAME;
        lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib)
            lib = dlopen("libnats.so", RTLD_NOW | RTLD_LOCAL);
    }
    if (!lib) {
        const char *err = dlerror();
        snprintf(natsdl_why, sizeof natsdl_why,
                 "cannot load the NATS client library %s (%s); NATS "
                 "swarms need it: apt-get install libnats%d.%d, or set "
                 "ROJ_NATS_LIB to the path of a nats.c %d.%d build",
                 path, err ? err : "not found", NATS_VERSION_MAJOR,
                 NATS_VERSION_MINOR, NATS_VERSION_MAJOR, NATS_VERSION_MINOR);
        return;
    }
    natsdl_table t;
    const char *missing = NULL;
#define NATSDL_LOOKUP(name)                                                 \
    if (!missing) {                                                         \
        void *sym = dlsym(lib, #name);                                      \
        if (!sym)                                                           \
            missing = #name;                                                \
        else                                                                \
            memcpy(&t.name, &sym, sizeof sym);                              \
    }
    NATSDL_FUNCS(NATSDL_LOOKUP)
#undef NATSDL_LOOKUP
    if (missing) {
        /* The library stays open: it is harmless, and unloading a library
         * whose constructors ran is not. */
        snprintf(natsdl_why, sizeof natsdl_why,
                 "the NATS client library %s lacks the function %s; roj "
                 "needs nats.c %s or a compatible release",
                 path, missing, NATS_VERSION_STRING);
        return;
    }
    natsdl_fn = t;
    atomic_store_explicit(&natsdl_ok, true, memory_order_release);
}

roj_status natsdl_load(void)
{
    pthread_once(&natsdl_once, natsdl_open);
    if (atomic_load_explicit(&natsdl_ok, memory_order_acquire))
        return ROJ_OK;
    return roj_error(ROJ_ERR_UNSUPPORTED, "%s", natsdl_why);
}

bool natsdl_loaded(void)
{
    return atomic_load_explicit(&natsdl_ok, memory_order_acquire);
}
