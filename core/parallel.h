#pragma once
// Splits [0, n) into contiguous ranges, one per thread (both cores by default), and runs
// fn(begin, end, thread_index). Ranges are aligned to `align` elements so that kernels which
// cycle through per-channel parameters start each range at the same phase.
#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace qs {

inline int defaultThreadCount() {
    const unsigned hw = std::thread::hardware_concurrency();
    return static_cast<int>(std::clamp(hw == 0 ? 2u : hw, 1u, 64u));
}

template <class Fn>
void parallelRanges(int64_t n, int threads, int64_t align, Fn&& fn) {
    if (threads <= 1 || n < (int64_t(1) << 16)) {
        fn(int64_t(0), n, 0);
        return;
    }
    const int64_t per = ((n + threads - 1) / threads + align - 1) / align * align;
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) {
        const int64_t b = std::min(n, per * t), e = std::min(n, per * (t + 1));
        if (b < e) pool.emplace_back([&fn, b, e, t] { fn(b, e, t); });
    }
    fn(int64_t(0), std::min(n, per), 0);
    for (std::thread& th : pool) th.join();
}

}  // namespace qs
