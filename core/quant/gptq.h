#pragma once
// GPTQ rounding (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers", 2023, after Optimal Brain Quantization): the weights of a Dense or
// Conv2D kernel are quantized one input row at a time, each row's rounding error pushed onto the
// rows not yet quantized in proportion to the inverse Hessian of the layer's squared output
// error, H = X^T X over the calibration inputs (im2col patches for a convolution). The scales
// stay those of the weight method; only which level each weight takes changes, so the result
// is an ordinary quantized kernel (zero point 0), just with a smaller output error than
// rounding to nearest.
#include <Eigen/Dense>
#include <cstdint>
#include <vector>

#include "quant/quant_params.h"

namespace qs {

// `w`: the kernel as a row-major (K x N) matrix (row = input, column = output channel);
// `params`: one per output channel, or one; `hessian`: K x K, sum of x x^T over the inputs.
// Returns the K x N integer levels. Dampens H by 1% of its mean diagonal (GPTQ's default);
// inputs never seen (zero diagonal) keep nearest rounding.
std::vector<int32_t> gptqLevels(const float* w, int64_t K, int64_t N, const std::vector<QuantParams>& params, Eigen::MatrixXd hessian);

// The same for a DepthwiseConv2D kernel, `w` (taps, C, M) row-major (taps = KH * KW; Keras'
// (kh, kw, c, m)): output channel c * M + m sees only input channel c, so each input channel's
// M outputs are rounded as a taps x M kernel against that channel's own taps x taps Hessian.
// `hessians`: taps x (taps * C), channel c's block at columns c * taps; `params` one per output
// channel (C * M), or one. Empty when the Hessians do not fit the kernel.
std::vector<int32_t> depthwiseGptqLevels(const float* w, int64_t taps, int64_t C, int64_t M, const std::vector<QuantParams>& params,
                                         const Eigen::MatrixXd& hessians);

}  // namespace qs
