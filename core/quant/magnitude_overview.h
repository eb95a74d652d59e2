#pragma once
// What a candidate does to each power of two of a tensor's weights: the log2-magnitude
// histogram (one bin per power of two, as MATLAB's dynamic-range view) with every bin split
// into values below precision (rounded to zero), in range, and beyond range (clipped).
//
// The split comes from the candidate's exact counts, not from a second pass over the data:
// the values below precision are the smallest non-zero magnitudes and the clipped ones the
// largest, so they fill the bins from the bottom and the top. Per tensor that placement is
// exact (one threshold for every value); per channel the counts are exact and their placement
// is by magnitude over the whole tensor (a channel's threshold differs from its neighbour's).
#include <cstdint>
#include <vector>

#include "quant/quant_analysis.h"

namespace qs {

struct MagnitudeBin {
    int exponent = 0;  // the bin holds |x| in [2^exponent, 2^(exponent+1))
    int64_t below = 0, in_range = 0, beyond = 0;
    int64_t total() const { return below + in_range + beyond; }
};

struct MagnitudeOverview {
    std::vector<MagnitudeBin> bins;  // every power of two from the smallest to the largest
    int64_t zeros = 0;               // exact zeros: not in any bin, always representable
    int64_t below = 0, beyond = 0;   // the candidate's counts the bins were split by
};

// `c` is one of `a`'s candidates (its statistics give the counts).
MagnitudeOverview magnitudeOverview(const TensorAnalysis& a, const Candidate& c);

}  // namespace qs
