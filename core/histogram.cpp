#include "histogram.h"

#include <cmath>

#include "parallel.h"

namespace qs {

int64_t Histogram::total() const {
    int64_t t = below + above;
    for (int64_t c : counts) t += c;
    return t;
}

namespace {

template <class Value>
Histogram binned(const float* data, int64_t n, double lo, double hi, int bins, int threads, Value value) {
    Histogram h;
    h.lo = lo;
    h.hi = hi;
    h.counts.assign(static_cast<size_t>(std::max(1, bins)), 0);
    if (threads <= 0) threads = defaultThreadCount();
    std::vector<Histogram> part(static_cast<size_t>(threads), h);
    const double inv = hi > lo ? static_cast<double>(h.counts.size()) / (hi - lo) : 0.0;
    const int64_t last = static_cast<int64_t>(h.counts.size()) - 1;
    parallelRanges(n, threads, 1, [&](int64_t b, int64_t e, int t) {
        Histogram& p = part[static_cast<size_t>(t)];
        for (int64_t i = b; i < e; ++i) {
            const double v = value(data[i]);
            if (!std::isfinite(v)) continue;
            if (v < lo) ++p.below;
            else if (v > hi) ++p.above;
            else p.counts[static_cast<size_t>(std::min(last, static_cast<int64_t>((v - lo) * inv)))]++;
        }
    });
    for (const Histogram& p : part) {
        h.below += p.below;
        h.above += p.above;
        for (size_t i = 0; i < h.counts.size(); ++i) h.counts[i] += p.counts[i];
    }
    return h;
}

}  // namespace

Histogram linearHistogram(const float* data, int64_t n, double lo, double hi, int bins, int threads) {
    return binned(data, n, lo, hi, bins, threads, [](float x) { return static_cast<double>(x); });
}

Histogram absHistogram(const float* data, int64_t n, double max_abs, int bins, int threads) {
    return binned(data, n, 0.0, max_abs > 0 ? max_abs : 1.0, bins, threads, [](float x) { return std::fabs(static_cast<double>(x)); });
}

Log2Histogram log2MagnitudeHistogram(const float* data, int64_t n, int threads) {
    // Exponents of float32 span [-149, 127]: 277 bins cover every finite non-zero value.
    constexpr int kMin = -149, kBins = 128 + 149 + 1;
    if (threads <= 0) threads = defaultThreadCount();
    std::vector<std::vector<int64_t>> part(static_cast<size_t>(threads), std::vector<int64_t>(kBins + 1, 0));
    parallelRanges(n, threads, 1, [&](int64_t b, int64_t e, int t) {
        std::vector<int64_t>& c = part[static_cast<size_t>(t)];
        for (int64_t i = b; i < e; ++i) {
            const float x = data[i];
            if (!std::isfinite(x)) continue;
            if (x == 0.0f) {
                ++c[kBins];
                continue;
            }
            int exp = 0;
            std::frexp(x, &exp);  // |x| in [2^(exp-1), 2^exp)
            ++c[static_cast<size_t>(exp - 1 - kMin)];
        }
    });
    Log2Histogram h;
    std::vector<int64_t> all(kBins + 1, 0);
    for (const auto& p : part)
        for (size_t i = 0; i < all.size(); ++i) all[i] += p[i];
    h.zeros = all[kBins];
    int first = kBins, last = -1;
    for (int i = 0; i < kBins; ++i)
        if (all[static_cast<size_t>(i)]) {
            first = std::min(first, i);
            last = i;
        }
    if (last < 0) return h;
    h.min_exponent = first + kMin;
    h.counts.assign(all.begin() + first, all.begin() + last + 1);
    return h;
}

double histogramQuantile(const Histogram& h, double fraction) {
    const int64_t total = h.total();
    if (total == 0) return h.lo;
    const double target = fraction * static_cast<double>(total);
    double acc = static_cast<double>(h.below);
    if (acc >= target) return h.lo;
    const double w = h.binWidth();
    for (size_t i = 0; i < h.counts.size(); ++i) {
        const double c = static_cast<double>(h.counts[i]);
        if (acc + c >= target && c > 0) return h.lo + w * (static_cast<double>(i) + (target - acc) / c);
        acc += c;
    }
    return h.hi;
}

}  // namespace qs
