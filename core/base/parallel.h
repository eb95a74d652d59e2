#pragma once
// Splits [0, n) into contiguous ranges, one per thread (both cores by default), and runs
// fn(begin, end, thread_index). Ranges are aligned to `align` elements so that kernels which
// cycle through per-channel parameters start each range at the same phase.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "base/progress.h"

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

// Hands out batches of [0, n) to `threads` workers (fn(thread, begin, count)) until all are
// done. Thread 0 reports progress as offset + done of `total` and stops everyone on cancel.
// The first exception a worker throws is rethrown here, after every thread has joined;
// cancellation throws qs::Cancelled.
template <class Fn>
void parallelBatches(int64_t n, int64_t batch, int threads, const Progress& progress, int64_t offset, int64_t total, Fn&& fn) {
    std::atomic<int64_t> next{0}, done{0};
    std::atomic<bool> stop{false};
    std::exception_ptr failure;
    std::mutex failure_mutex;
    auto work = [&](int t) {
        try {
            for (;;) {
                const int64_t b0 = next.fetch_add(batch);
                if (b0 >= n || stop) return;
                const int64_t bn = std::min(batch, n - b0);
                fn(t, b0, bn);
                const int64_t d = done.fetch_add(bn) + bn;
                if (t == 0) {
                    progress.report(offset + d, total);
                    if (progress.cancelled()) stop = true;
                }
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(failure_mutex);
            if (!failure) failure = std::current_exception();
            stop = true;
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (std::thread& th : pool) th.join();
    if (failure) std::rethrow_exception(failure);
    if (stop) throw Cancelled();
}

}  // namespace qs
