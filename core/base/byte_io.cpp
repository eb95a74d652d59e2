#include "base/byte_io.h"

#include <unistd.h>

#include <cerrno>

namespace qs {

bool preadAll(int fd, void* out, size_t n, uint64_t at) {
    size_t got = 0;
    while (got < n) {
        const ssize_t r = pread(fd, static_cast<char*>(out) + got, n - got, static_cast<off_t>(at + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        got += static_cast<size_t>(r);
    }
    return true;
}

}  // namespace qs
