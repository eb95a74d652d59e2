#pragma once
// Quantizing a row of floats into int8 / int16 (quant_params.h: quantize, TFLite's quantize op)
// sixteen values at a time on AVX-512, with the scalar definition's steps in the same order, so
// the integers are the same: GCC vectorises the scalar loop 8 wide at most (it prefers 256-bit
// vectors even for AVX-512 targets), and on fmnist_mlp that loop was a quarter of the int8
// forward pass (784 inputs per image against a 784 x 256 product on VNNI).
#include <cstdint>

namespace qs::kernels {

// out[i] = quantize(x[i]) for scale, zero point and [qmin, qmax] (qmin <= qmax within the
// output type). Only where the CPU has AVX-512 F.
void quantizeRowAvx512(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax, int8_t* out);
void quantizeRowAvx512(const float* x, int64_t n, float scale, int32_t zero_point, int32_t qmin, int32_t qmax, int16_t* out);

}  // namespace qs::kernels
