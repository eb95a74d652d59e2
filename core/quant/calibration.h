#pragma once
// Calibration methods: each picks a clipping threshold (or a range) for a tensor from its
// statistics or its |x| histogram. Independent of where the values came from, so the same
// functions calibrate weights and (later) activations.
#include <vector>

#include "quant/histogram.h"

namespace qs {

// Percentile of |x| (pct in 0..100), interpolated inside the histogram's bins.
double percentileClip(const Histogram& abs_hist, double pct);

// TensorRT's entropy calibration: the threshold whose 2^(bits-1)-level quantization of the
// |x| distribution has the smallest KL divergence from the clipped reference distribution.
// Histogram of 2048 bins in TensorRT; returns the upper edge of the chosen bin range.
double klClip(const Histogram& abs_hist, int bits);

// Clip values whose histogram-estimated quantization MSE is smallest (uniform rounding noise
// step^2/12 inside the range, squared excess beyond it), best first. The exact errors of these
// finalists (and of max-abs) decide the "mse" candidate.
std::vector<double> mseClipFinalists(const Histogram& abs_hist, int bits, int finalists);

}  // namespace qs
