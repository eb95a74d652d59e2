#include "quant/magnitude_overview.h"

#include <algorithm>
#include <cmath>

namespace qs {

namespace {

// The statistics keep percentages of the finite values; back to counts (they were counts).
int64_t countOf(double pct, int64_t finite) { return std::llround(pct * static_cast<double>(finite) / 100.0); }

}  // namespace

MagnitudeOverview magnitudeOverview(const TensorAnalysis& a, const Candidate& c) {
    MagnitudeOverview o;
    const Log2Histogram& h = a.log2_hist;
    o.zeros = h.zeros;
    int64_t nonzero = 0;
    for (size_t i = 0; i < h.counts.size(); ++i) {
        o.bins.push_back({h.min_exponent + static_cast<int>(i), 0, h.counts[i], 0});
        nonzero += h.counts[i];
    }
    o.below = std::min(countOf(c.stats.pct_below_precision, c.stats.count), nonzero);
    o.beyond = std::min(countOf(c.stats.pct_beyond_range, c.stats.count), nonzero - o.below);
    // Below precision from the smallest magnitudes up, beyond range from the largest down.
    int64_t left = o.below;
    for (auto it = o.bins.begin(); it != o.bins.end() && left > 0; ++it) {
        const int64_t take = std::min(left, it->in_range);
        it->below = take;
        it->in_range -= take;
        left -= take;
    }
    left = o.beyond;
    for (auto it = o.bins.rbegin(); it != o.bins.rend() && left > 0; ++it) {
        const int64_t take = std::min(left, it->in_range);
        it->beyond = take;
        it->in_range -= take;
        left -= take;
    }
    return o;
}

}  // namespace qs
