#pragma once
// The fused weight-histogram pass's counting (histogram.cpp): per value, a linear bin over
// [lo, hi], a |x| bin over [0, max_abs] and a log2-magnitude bin. The linear and log2 bins are
// counted together, one increment per value in a joint table (a linear bin holds values of one
// or two powers of two, except the bin around zero, so the table's used cells are few and stay
// in L1); weightHistograms() sums its rows and columns. Three instances with the same bins:
// portable and AVX2 in histogram.cpp, AVX-512 in weight_histogram_avx512.cpp.
#include <cstdint>

#include "quant/kernels/quant_error_kernel.h"

namespace qs::kernels {

// log2 bins: exponents of float32 span [-149, 127], so 277 bins cover every finite non-zero
// value; then one for zeros and a sink for NaN/Inf.
constexpr int kLog2Min = -149, kLog2Bins = 128 + 149 + 1;
constexpr int kLog2Row = kLog2Bins + 2;  // a joint table row: log2 bins, zeros, sink

// Linear bins: lin_bins, then below lo, above hi, and NaN/Inf; |x| bins: abs_bins, then above
// max_abs, and NaN/Inf. The joint table has (lin_bins + 3) rows of kLog2Row.
struct WeightBins {
    float lo, hi, lin_inv, max_abs, abs_inv;
    int32_t lin_bins, abs_bins;
};

// m: a multiple of 16. Counts value i at joint[lin * kLog2Row + log2] and abs[abs bin].
void weightHistogramKernelAvx512(const float* x, int64_t m, const WeightBins& w, Count* joint, Count* abs);

}  // namespace qs::kernels
