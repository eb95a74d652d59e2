#include "base/allocator.h"

#include <cstdlib>  // defines __GLIBC__ (through <features.h>) where glibc is the C library

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qs {

void tuneAllocator() {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest dynamic threshold (DEFAULT_MMAP_THRESHOLD_MAX)
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

}  // namespace qs
