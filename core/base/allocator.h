#pragma once
// glibc's allocator, tuned for batches of activations: by default it maps every block over
// 128 KiB with mmap and returns it on free, and trims the heap top past 2x that, so each batch
// of a few hundred KB pays fresh page faults (on a VM here: the float MLP ran 37 us per image at
// batch 256 against 3.5 us tuned). Called first thing in every program's main(); the tests get
// the same through GLIBC_TUNABLES (tests/CMakeLists.txt).
#include <cstddef>
#include <new>
#include <vector>

namespace qs {

// Blocks up to 32 MiB come from the heap and up to 128 MiB of freed heap is kept for reuse;
// larger blocks (whole weight tensors) are still mapped and returned. No-op without glibc.
void tuneAllocator();

// Asks the kernel to back [p, p + bytes) with 2 MiB pages where it can (madvise MADV_HUGEPAGE;
// transparent huge pages in "madvise" mode, Debian's default), for a large buffer allocated but
// not yet written. On a VM here a first write to a fresh 4 KiB page costs about 16 us, so filling
// 553 MB of weights spent 2.2 s in page faults against 0.3 s for the copy itself. Only the
// 2 MiB-aligned interior is advised; buffers under 4 MiB are left alone. No-op elsewhere.
void adviseHugePages(void* p, size_t bytes);

// Resizes an empty vector to n value-initialised elements, its new buffer advised for huge pages
// between the allocation and the first write (what the weight readers do with every tensor).
template <class T>
void resizeOnHugePages(std::vector<T>& v, size_t n) {
    v.reserve(n);
    adviseHugePages(v.data(), n * sizeof(T));
    v.resize(n);
}

// Storage on 64-byte (cache line) boundaries: AMX tile rows that straddle two lines load about
// three times slower (a Xeon here: 21 against 6.6 ns per 16-row product).
template <class T>
struct CacheLineAllocator {
    using value_type = T;
    CacheLineAllocator() = default;
    template <class U>
    CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
    void deallocate(T* p, size_t) noexcept { ::operator delete(p, std::align_val_t{64}); }
    template <class U>
    bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
};
template <class T>
using CacheAlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace qs
