#include "quant/magnitude_overview.h"

#include <algorithm>

namespace qs {

MagnitudeOverview magnitudeOverview(const TensorAnalysis& a, const Candidate& c) {
    MagnitudeOverview o;
    const Log2Histogram& h = a.log2_hist;
    o.zeros = h.zeros;
    int64_t nonzero = 0;
    for (size_t i = 0; i < h.counts.size(); ++i) {
        o.bins.push_back({h.min_exponent + static_cast<int>(i), 0, h.counts[i], 0});
        nonzero += h.counts[i];
    }
    o.below = std::min(c.stats.below_precision, nonzero);
    o.beyond = std::min(c.stats.beyond_range, nonzero - o.below);
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
