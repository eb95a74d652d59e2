#pragma once
// Reading bytes of a file format ourselves: a whole pread (retried on EINTR and short reads) and
// little-endian fields of any width (the byte order of HDF5's and zip's on-disk structures).
#include <cstddef>
#include <cstdint>

namespace qs {

// Reads exactly n bytes at offset `at` of `fd`; false on an error or the end of the file.
bool preadAll(int fd, void* out, size_t n, uint64_t at);

// The unsigned little-endian field of `width` bytes (at most 8) at p.
inline uint64_t littleEndian(const unsigned char* p, unsigned width) {
    uint64_t v = 0;
    for (unsigned i = 0; i < width; ++i) v |= uint64_t{p[i]} << (8 * i);
    return v;
}

}  // namespace qs
