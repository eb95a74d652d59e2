#pragma once
// Timing for the benchmarks: the best of `reps` runs (least disturbed by the rest of the
// machine), in seconds.
#include <algorithm>
#include <chrono>

namespace qs::bench {

inline double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <class Fn>
double best(int reps, Fn fn) {
    double b = 1e30;
    for (int r = 0; r < reps; ++r) {
        const double t0 = now();
        fn();
        b = std::min(b, now() - t0);
    }
    return b;
}

}  // namespace qs::bench
