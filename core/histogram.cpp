#include "histogram.h"

#include <cmath>
#include <cstring>

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

namespace {

constexpr int kLog2Min = -149, kLog2Bins = 128 + 149 + 1;

// Exponent e with |x| in [2^e, 2^(e+1)) for finite non-zero x, from the float's bits.
inline int log2Floor(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    const int field = static_cast<int>((b >> 23) & 0xff);
    if (field != 0) return field - 127;
    int exp = 0;  // subnormal
    std::frexp(x, &exp);
    return exp - 1;
}

Log2Histogram trimLog2(const std::vector<int64_t>& all) {
    Log2Histogram h;
    h.zeros = all[kLog2Bins];
    int first = kLog2Bins, last = -1;
    for (int i = 0; i < kLog2Bins; ++i)
        if (all[static_cast<size_t>(i)]) {
            first = std::min(first, i);
            last = i;
        }
    if (last < 0) return h;
    h.min_exponent = first + kLog2Min;
    h.counts.assign(all.begin() + first, all.begin() + last + 1);
    return h;
}

}  // namespace

Log2Histogram log2MagnitudeHistogram(const float* data, int64_t n, int threads) {
    // Exponents of float32 span [-149, 127]: 277 bins cover every finite non-zero value.
    constexpr int kMin = kLog2Min, kBins = kLog2Bins;
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
    std::vector<int64_t> all(kBins + 1, 0);
    for (const auto& p : part)
        for (size_t i = 0; i < all.size(); ++i) all[i] += p[i];
    return trimLog2(all);
}

constexpr int kHistBlock = 256;

// Bin indices of one block for the three histograms, branch-free so GCC vectorises it;
// out-of-range and non-finite values go to sink bins past the real ones.
__attribute__((target_clones("avx2", "default")))
void histogramIndices(const float* x, int m, float lo, float hi, float lin_inv, int lin_bins, float max_abs, float abs_inv,
                      int abs_bins, int32_t* li, int32_t* ai, int32_t* gi) {
    for (int k = 0; k < m; ++k) {
        const float v = x[k];
        const bool fin = v - v == 0.0f;
        const float f = fin ? v : 0.0f;
        const float a = std::fabs(f);
        const float lf = std::min(static_cast<float>(lin_bins - 1), (f - lo) * lin_inv);
        int32_t l = static_cast<int32_t>(lf > 0.0f ? lf : 0.0f);
        l = f < lo ? lin_bins : (f > hi ? lin_bins + 1 : l);
        li[k] = fin ? l : lin_bins + 2;
        const int32_t ab = static_cast<int32_t>(std::min(static_cast<float>(abs_bins - 1), a * abs_inv));
        ai[k] = !fin ? abs_bins + 1 : (a > max_abs ? abs_bins : ab);
        uint32_t bits;
        std::memcpy(&bits, &a, 4);
        const int32_t field = static_cast<int32_t>(bits >> 23);  // sign cleared by fabs
        // Normal: field - 127; subnormal (field 0): placed from its top set bit, below.
        gi[k] = !fin ? kLog2Bins + 1 : (a == 0.0f ? kLog2Bins : field - 127 - kLog2Min);
    }
    for (int k = 0; k < m; ++k)  // subnormals are rare: fix them up exactly
        if (gi[k] == -127 - kLog2Min) {
            const float a = std::fabs(x[k]);
            if (a != 0.0f) gi[k] = log2Floor(a) - kLog2Min;
        }
}

WeightHistograms weightHistograms(const float* data, int64_t n, double lo, double hi, int linear_bins, double max_abs,
                                  int abs_bins, int threads) {
    if (threads <= 0) threads = defaultThreadCount();
    if (!(hi > lo)) hi = lo + 1;
    if (!(max_abs > 0)) max_abs = 1;
    struct Part {
        std::vector<int64_t> lin, abs, log2;
        int64_t below = 0, above = 0, abs_above = 0;
    };
    std::vector<Part> parts(static_cast<size_t>(threads));
    const float flo = static_cast<float>(lo), fhi = static_cast<float>(hi), fmax = static_cast<float>(max_abs);
    const float lin_inv = static_cast<float>(linear_bins / (hi - lo)), abs_inv = static_cast<float>(abs_bins / max_abs);
    parallelRanges(n, threads, 1, [&](int64_t b, int64_t e, int t) {
        Part& p = parts[static_cast<size_t>(t)];
        // Bins +1 / +2: sinks for values outside the range (below, above) and for NaN/Inf.
        p.lin.assign(static_cast<size_t>(linear_bins) + 3, 0);
        p.abs.assign(static_cast<size_t>(abs_bins) + 2, 0);
        p.log2.assign(kLog2Bins + 2, 0);
        int32_t li[kHistBlock], ai[kHistBlock], gi[kHistBlock];
        for (int64_t i = b; i < e; i += kHistBlock) {
            const int m = static_cast<int>(std::min<int64_t>(kHistBlock, e - i));
            histogramIndices(data + i, m, flo, fhi, lin_inv, linear_bins, fmax, abs_inv, abs_bins, li, ai, gi);
            for (int k = 0; k < m; ++k) {
                ++p.lin[static_cast<size_t>(li[k])];
                ++p.abs[static_cast<size_t>(ai[k])];
                ++p.log2[static_cast<size_t>(gi[k])];
            }
        }
        p.below = p.lin[static_cast<size_t>(linear_bins)];
        p.above = p.lin[static_cast<size_t>(linear_bins) + 1];
        p.abs_above = p.abs[static_cast<size_t>(abs_bins)];
        p.lin.resize(static_cast<size_t>(linear_bins));
        p.abs.resize(static_cast<size_t>(abs_bins));
        p.log2.resize(kLog2Bins + 1);
    });
    WeightHistograms w;
    w.linear.lo = lo, w.linear.hi = hi, w.linear.counts.assign(static_cast<size_t>(linear_bins), 0);
    w.abs.lo = 0, w.abs.hi = max_abs, w.abs.counts.assign(static_cast<size_t>(abs_bins), 0);
    std::vector<int64_t> log2(kLog2Bins + 1, 0);
    for (const Part& p : parts) {
        if (p.lin.empty()) continue;
        for (size_t i = 0; i < p.lin.size(); ++i) w.linear.counts[i] += p.lin[i];
        for (size_t i = 0; i < p.abs.size(); ++i) w.abs.counts[i] += p.abs[i];
        for (size_t i = 0; i < log2.size(); ++i) log2[i] += p.log2[i];
        w.linear.below += p.below;
        w.linear.above += p.above;
        w.abs.above += p.abs_above;
    }
    w.log2 = trimLog2(log2);
    return w;
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
