/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sched_nvml.c: GPU discovery through NVML, loaded at run time with dlopen so that ocra builds
 * and runs without NVIDIA's headers or driver. The few NVML types used are declared here
 * (nvml.h: nvmlReturn_t is an enum whose success is 0; nvmlDevice_t an opaque pointer;
 * nvmlMemory_t three unsigned long longs). The library is loaded, read and unloaded in one
 * call: discovery happens at start-up, not per decision. $OCRA_NVML_LIB names another library
 * (the unit test's fake one).
 */
#include "sched/sched_int.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVML_DEFAULT_LIB "libnvidia-ml.so.1"
#define NVML_NAME_LEN 96   /* NVML_DEVICE_NAME_V2_BUFFER_SIZE */
#define NVML_DRIVER_LEN 80 /* NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE */

struct nvml_device; /* nvmlDevice_t points to it */

struct nvml_memory {
    unsigned long long total, free, used;
};

typedef int nvml_void_fn(void);
typedef int nvml_count_fn(unsigned *count);
typedef int nvml_handle_fn(unsigned index, struct nvml_device **dev);
typedef int nvml_name_fn(struct nvml_device *dev, char *name, unsigned len);
typedef int nvml_mem_fn(struct nvml_device *dev, struct nvml_memory *mem);
typedef int nvml_driver_fn(char *version, unsigned len);
typedef int nvml_cc_fn(struct nvml_device *dev, int *major, int *minor);
typedef const char *nvml_errstr_fn(int ret);

struct nvml {
    void *lib;
    nvml_void_fn *init, *shutdown;
    nvml_count_fn *count;
    nvml_handle_fn *handle;
    nvml_name_fn *name;
    nvml_mem_fn *mem;
    nvml_driver_fn *driver;
    nvml_cc_fn *cc;
    nvml_errstr_fn *errstr; /* optional */
};

/* dlsym into a function pointer without the object-to-function cast ISO C forbids. */
static bool
sym(void *lib, const char *name, void *fnp, size_t size)
{
    void *p = dlsym(lib, name);

    memcpy(fnp, &p, size);
    return p != NULL;
}

#define SYM(n, field, name) sym((n)->lib, name, &(n)->field, sizeof((n)->field))

/* NVML's text for ret, or "error N" in buf. */
static const char *
errstr(const struct nvml *n, int ret, char *buf, size_t cap)
{
    const char *s = n->errstr ? n->errstr(ret) : NULL;

    if (s)
        return s;
    (void)snprintf(buf, cap, "error %d", ret);
    return buf;
}

static bool
nvml_load(struct nvml *n, const char *lib, struct ocra_sched_nvml *out)
{
    n->lib = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!n->lib) {
        (void)snprintf(out->why, sizeof(out->why), "%s not found (no NVIDIA driver)", lib);
        return false;
    }
    if (!SYM(n, init, "nvmlInit_v2") || !SYM(n, shutdown, "nvmlShutdown") ||
        !SYM(n, count, "nvmlDeviceGetCount_v2") ||
        !SYM(n, handle, "nvmlDeviceGetHandleByIndex_v2") || !SYM(n, name, "nvmlDeviceGetName") ||
        !SYM(n, mem, "nvmlDeviceGetMemoryInfo") || !SYM(n, driver, "nvmlSystemGetDriverVersion") ||
        !SYM(n, cc, "nvmlDeviceGetCudaComputeCapability")) {
        (void)snprintf(out->why, sizeof(out->why), "%s lacks an NVML function", lib);
        return false;
    }
    (void)SYM(n, errstr, "nvmlErrorString");
    return true;
}

/* "NVIDIA A100-SXM4-40GB" -> "A100-SXM4-40GB"; spaces become '-'. */
static void
model_name(const char *raw, char *out, size_t cap)
{
    static const char *const prefixes[] = {"NVIDIA ", "Tesla "};
    size_t i = 0;

    for (size_t p = 0; p < OCRA_ARRAY_LEN(prefixes); p++)
        if (strncmp(raw, prefixes[p], strlen(prefixes[p])) == 0)
            raw += strlen(prefixes[p]);
    for (; raw[i] && i + 1 < cap; i++)
        out[i] = raw[i] == ' ' ? '-' : (raw[i] > ' ' && raw[i] < 0x7f ? raw[i] : '_');
    out[i] = '\0';
}

/* Reads device i; false (with why) when NVML fails, or when it is not device 0's model. */
static bool
read_device(const struct nvml *n, unsigned i, struct ocra_sched_nvml *out)
{
    char raw[NVML_NAME_LEN] = "", model[OCRA_SCHED_MODEL_MAX], ebuf[32];
    struct nvml_device *dev = NULL;
    struct nvml_memory mem = {0, 0, 0};
    int ret, major = 0, minor = 0;
    int64_t mib;

    if ((ret = n->handle(i, &dev)) != 0 || (ret = n->name(dev, raw, sizeof(raw))) != 0 ||
        (ret = n->mem(dev, &mem)) != 0 || (ret = n->cc(dev, &major, &minor)) != 0) {
        (void)snprintf(out->why, sizeof(out->why), "NVML: device %u: %s", i,
                       errstr(n, ret, ebuf, sizeof(ebuf)));
        return false;
    }
    raw[sizeof(raw) - 1] = '\0';
    model_name(raw, model, sizeof(model));
    if (i > 0 && strcmp(model, out->model) != 0) {
        (void)snprintf(out->why, sizeof(out->why), "GPU %u is a %s, not a %s: left out", i, model,
                       out->model);
        return false;
    }
    memcpy(out->model, model, sizeof(model));
    mib = (int64_t)(mem.total >> 20);
    if (i == 0 || mib < out->mem_mib)
        out->mem_mib = mib;
    if (major >= 0 && minor >= 0 && major < 100 && minor < 10 &&
        (i == 0 || major * 10 + minor < out->compute_cap))
        out->compute_cap = major * 10 + minor;
    return true;
}

static void
read_devices(const struct nvml *n, struct ocra_sched_nvml *out)
{
    char version[NVML_DRIVER_LEN] = "", ebuf[32];
    unsigned count = 0;
    int ret;

    if ((ret = n->count(&count)) != 0) {
        (void)snprintf(out->why, sizeof(out->why), "NVML: device count: %s",
                       errstr(n, ret, ebuf, sizeof(ebuf)));
        return;
    }
    if (n->driver(version, sizeof(version)) == 0) {
        version[sizeof(version) - 1] = '\0';
        (void)snprintf(out->driver_text, sizeof(out->driver_text), "%.31s", version);
        if (ocra_sched_driver_parse(version, &out->driver, NULL) < 0)
            out->driver = 0;
    }
    if (count == 0)
        (void)snprintf(out->why, sizeof(out->why), "NVML (driver %s) sees no GPU",
                       out->driver_text[0] ? out->driver_text : "?");
    if (count > OCRA_SCHED_MAX_GPUS) {
        (void)snprintf(out->why, sizeof(out->why), "%u GPUs: only the first %d are used", count,
                       OCRA_SCHED_MAX_GPUS);
        count = OCRA_SCHED_MAX_GPUS;
    }
    for (unsigned i = 0; i < count && read_device(n, i, out); i++)
        out->count++;
}

void
ocra_sched_nvml_probe(const char *lib, struct ocra_sched_nvml *out)
{
    struct nvml n;
    char ebuf[32];
    int ret;

    memset(out, 0, sizeof(*out));
    memset(&n, 0, sizeof(n));
    if (!lib)
        lib = getenv("OCRA_NVML_LIB");
    if (!lib || !*lib)
        lib = NVML_DEFAULT_LIB;
    if (!nvml_load(&n, lib, out))
        goto out;
    if ((ret = n.init()) != 0) {
        (void)snprintf(out->why, sizeof(out->why), "nvmlInit_v2: %s",
                       errstr(&n, ret, ebuf, sizeof(ebuf)));
        goto out;
    }
    read_devices(&n, out);
    (void)n.shutdown();
out:
    if (n.lib)
        dlclose(n.lib);
}
