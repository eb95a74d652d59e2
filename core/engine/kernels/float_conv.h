#pragma once
// The float engine's Conv2D (and Dense on few rows) as a direct convolution: register tiles of
// output pixels x output channels that read each pixel's patch in place from the (padded) input
// and the weights in place (only a partial last panel is packed), with the bias, an optional
// per-channel affine and the clamp applied to the tile in registers before it is stored. It
// replaces im2col + Eigen's GEMM, which copied every patch, repacked the weights for every sample
// and passed over the output two more times (bias, then batch norm): together about 40% of
// fmnist_cnn's float time (perf, bench_int8 --profile-float).
// Compiled once per ISA (baseline SSE2, AVX2 + FMA, AVX-512 + FMA) from float_conv.inc, picked
// at run time like the other kernels. The sums' order differs from Eigen's in the last bits;
// the float engine is the yardstick of accuracy, not a bit-exact reference.
#include <cstdint>

#include "base/cpu_isa.h"

namespace qs::kernels {

// One sample. Output pixel (oy, ox)'s patch starts at in + oy * row_step + ox * pixel_step; its
// K = runs * run_len values are run j's run_len consecutive floats at offset run_off[j], in the
// order of the kernel's rows (ky, kx, c).
struct FloatConvJob {
    const float* in;
    int64_t row_step, pixel_step;
    int64_t OH, OW;
    const int64_t* run_off;
    int64_t runs, run_len;
    // The weights, (K, OC) row-major with w_stride floats from one k to the next: panel q of nr
    // output channels is read in place at w + q * nr. When OC is not a multiple of nr, the last
    // panel is read from `tail` instead: its columns packed by floatConvPackTail (stride nr).
    const float* w;
    int64_t w_stride;
    const float* tail;
    int64_t OC;
    // out = min(max(acc * mul + add, lo), hi) per output channel (mul 1 without an affine). Both
    // hold a whole number of panels.
    const float* mul;
    const float* add;
    float lo, hi;
    float* out;  // (OH * OW) x OC, row-major
};

// The panel width (output channels per packed panel) the ISA's kernel takes for OC channels.
int64_t floatConvPanel(Isa isa, int64_t OC);
// The last, partial panel of a (K, OC) row-major kernel, zero-padded to nr columns (K x nr
// floats into `tail`); returns false, writing nothing, when OC is a multiple of nr.
bool floatConvPackTail(const float* w, int64_t K, int64_t OC, int64_t nr, float* tail);
// Runs the job with `isa`'s kernel; `tail` must be packed with floatConvPanel(isa, OC).
void floatConv(Isa isa, const FloatConvJob& job);

void floatConvBaseline(const FloatConvJob& job);
void floatConvAvx2(const FloatConvJob& job);
void floatConvAvx512(const FloatConvJob& job);
int64_t floatConvPanelBaseline(int64_t OC);
int64_t floatConvPanelAvx2(int64_t OC);
int64_t floatConvPanelAvx512(int64_t OC);

}  // namespace qs::kernels
