#pragma once
// Histograms over float data: linear bins over [lo, hi), and log2-magnitude bins (one per
// power of two, as MATLAB's dynamic-range histograms show). Non-finite values are skipped
// (TensorStats counts them).
#include <cstdint>
#include <vector>

namespace qs {

struct Histogram {
    double lo = 0, hi = 1;
    std::vector<int64_t> counts;
    int64_t below = 0, above = 0;  // values outside [lo, hi]
    double binWidth() const { return counts.empty() ? 0 : (hi - lo) / static_cast<double>(counts.size()); }
    int64_t total() const;
};

// The three single-purpose passes below are the straightforward references the fused
// weightHistograms() is tested against; analysis uses the fused pass.
// Bin i holds [lo + i*w, lo + (i+1)*w); the value hi itself goes into the last bin.
Histogram linearHistogram(const float* data, int64_t n, double lo, double hi, int bins, int threads = 0);

// Histogram of |x| over [0, max_abs], the input of percentile, MSE and KL calibration.
Histogram absHistogram(const float* data, int64_t n, double max_abs, int bins, int threads = 0);

struct Log2Histogram {
    int min_exponent = 0;             // counts[i] holds |x| in [2^(min_exponent+i), 2^(min_exponent+i+1))
    std::vector<int64_t> counts;
    int64_t zeros = 0;
};
Log2Histogram log2MagnitudeHistogram(const float* data, int64_t n, int threads = 0);

// The three weight histograms in one pass over the data: linear over [lo, hi], |x| over
// [0, max_abs], and log2 magnitude.
struct WeightHistograms {
    Histogram linear, abs;
    Log2Histogram log2;
};
WeightHistograms weightHistograms(const float* data, int64_t n, double lo, double hi, int linear_bins, double max_abs,
                                  int abs_bins, int threads = 0);

// Value below which `fraction` (0..1) of the histogram's mass lies, interpolated within a bin.
double histogramQuantile(const Histogram& h, double fraction);

}  // namespace qs
