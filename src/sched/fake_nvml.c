/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_nvml.c: a stand-in for libnvidia-ml.so.1 built only for sched_alloc_test, so that the
 * dlopen path of sched_nvml.c runs on a machine without an NVIDIA GPU. It exports the NVML
 * functions ocra resolves, with NVML's signatures. $FAKE_NVML_MODE picks its behaviour: unset
 * or "ok" two A100s; "init_fail" nvmlInit_v2 fails as without a loaded driver; "mixed" the
 * second GPU is another model; "none" a driver without GPUs. Never linked into ocra.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nvml_device;

struct nvml_memory {
    unsigned long long total, free, used;
};

int nvmlInit_v2(void);
int nvmlShutdown(void);
int nvmlDeviceGetCount_v2(unsigned *count);
int nvmlDeviceGetHandleByIndex_v2(unsigned index, struct nvml_device **dev);
int nvmlDeviceGetName(struct nvml_device *dev, char *name, unsigned len);
int nvmlDeviceGetMemoryInfo(struct nvml_device *dev, struct nvml_memory *mem);
int nvmlSystemGetDriverVersion(char *version, unsigned len);
int nvmlDeviceGetCudaComputeCapability(struct nvml_device *dev, int *major, int *minor);
const char *nvmlErrorString(int ret);

static struct nvml_device *devices[2] = {(struct nvml_device *)&devices[0],
                                         (struct nvml_device *)&devices[1]};

static bool
mode(const char *m)
{
    const char *v = getenv("FAKE_NVML_MODE");

    return v && strcmp(v, m) == 0;
}

int
nvmlInit_v2(void)
{
    return mode("init_fail") ? 9 : 0; /* NVML_ERROR_DRIVER_NOT_LOADED */
}

int
nvmlShutdown(void)
{
    return 0;
}

int
nvmlDeviceGetCount_v2(unsigned *count)
{
    *count = mode("none") ? 0 : 2;
    return 0;
}

int
nvmlDeviceGetHandleByIndex_v2(unsigned index, struct nvml_device **dev)
{
    if (index >= 2)
        return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *dev = devices[index];
    return 0;
}

int
nvmlDeviceGetName(struct nvml_device *dev, char *name, unsigned len)
{
    const char *n = dev == devices[1] && mode("mixed") ? "Tesla T4" : "NVIDIA A100-SXM4-40GB";

    (void)snprintf(name, len, "%s", n);
    return 0;
}

int
nvmlDeviceGetMemoryInfo(struct nvml_device *dev, struct nvml_memory *mem)
{
    (void)dev;
    mem->total = 40960ull << 20;
    mem->free = mem->total;
    mem->used = 0;
    return 0;
}

int
nvmlSystemGetDriverVersion(char *version, unsigned len)
{
    (void)snprintf(version, len, "535.104.05");
    return 0;
}

int
nvmlDeviceGetCudaComputeCapability(struct nvml_device *dev, int *major, int *minor)
{
    (void)dev;
    *major = 8;
    *minor = 0;
    return 0;
}

const char *
nvmlErrorString(int ret)
{
    return ret == 9 ? "Driver Not Loaded" : "Unknown Error";
}
