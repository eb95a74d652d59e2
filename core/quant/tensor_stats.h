#pragma once
// The first pass over a tensor: its range, the count of NaN/Inf values (reported, and kept out
// of every statistic), and the same per output channel. Channels are the trailing axes the
// Keras layer type makes "output channels" (see channelCount), so element i is in channel
// i % channels.
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace qs {

struct RangeStats {
    double min = 0, max = 0, max_abs = 0;
    int64_t finite = 0, nan = 0, inf = 0, zeros = 0;
    double sum = 0, sum_sq = 0;
};

struct TensorStats {
    RangeStats all;
    std::vector<RangeStats> per_channel;  // empty when channels == 1
    int64_t channels = 1;
};

TensorStats computeTensorStats(const float* data, int64_t n, int64_t channels, int threads = 0);

// Output channels of a weight tensor for per-channel quantization: the last axis of
// Dense/Conv kernels; the last two (in * multiplier) of DepthwiseConv2D kernels, whose output
// channel is c * multiplier + m. 1-D tensors (biases, BN vectors) and unknown layers: 1.
int64_t channelCount(const Layer& layer, const Tensor& tensor);

}  // namespace qs
