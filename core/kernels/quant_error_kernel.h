#pragma once
// The inner loop of candidate evaluation: quantize, dequantize and accumulate error statistics
// for a run of elements whose per-element scale and zero point are given (expanded from the
// per-tensor or per-channel parameters). Compiled three times (portable, AVX2, AVX-512) from
// quant_error_kernel.inc and chosen at run time. All three give bit-identical results: sums
// go into 16 fixed double lanes (element i of a 16-block always feeds lane i), FP contraction
// is off, division and the rounding are exact IEEE operations.
#include <cstdint>

namespace qs::kernels {

constexpr int kLanes = 16;

// Per-candidate sums. The sum of x^2 and the finite count are the same for every candidate and
// come from the first pass (TensorStats), not from here.
struct ErrorAccum {
    double sum_e2[kLanes] = {}, sum_e[kLanes] = {};
    float max_e[kLanes] = {};
    int64_t below[kLanes] = {}, beyond[kLanes] = {};
};

struct ErrorHistogramSpec {
    int64_t* counts = nullptr;  // bins + 1 (the last a sink for non-finite values), in units of one
                                // quantization step (LSB); null: none
    int bins = 0;
    float range_lsb = 1;        // bins cover [-range_lsb, range_lsb]
};

// x, scale, zero_point: `count` elements (count a multiple of kLanes except on the last call).
// level_counts is indexed by q - qmin, with one more "sink" bin at qmax - qmin + 1 that
// non-finite values may hit. With level_stride > 0 there are four such histograms, stride
// apart, and lane k counts into histogram k % 4: neighbouring values often fall in the same
// bin, and separate counters keep the increments from waiting on each other.
using ErrorKernel = void (*)(const float* x, const float* scale, const float* zero_point, int64_t count, float qmin,
                             float qmax, ErrorAccum& acc, int64_t* level_counts, int64_t level_stride,
                             const ErrorHistogramSpec& hist);

void errorKernelPortable(const float*, const float*, const float*, int64_t, float, float, ErrorAccum&, int64_t*, int64_t,
                         const ErrorHistogramSpec&);
void errorKernelAvx2(const float*, const float*, const float*, int64_t, float, float, ErrorAccum&, int64_t*, int64_t,
                     const ErrorHistogramSpec&);
void errorKernelAvx512(const float*, const float*, const float*, int64_t, float, float, ErrorAccum&, int64_t*, int64_t,
                       const ErrorHistogramSpec&);

enum class Isa { Portable, Avx2, Avx512 };
const char* isaName(Isa isa);
bool isaSupported(Isa isa);
// The best ISA this CPU runs, unless QUANTSCOPE_SIMD=portable|avx2|avx512 says otherwise.
Isa selectedIsa();
ErrorKernel errorKernel(Isa isa);
// The ISA evaluation uses now: selectedIsa(), or the one forced by forceIsa (tests, benchmarks).
Isa activeIsa();
void forceIsa(Isa isa);
void clearForcedIsa();

}  // namespace qs::kernels

namespace qs::kernels {

// float16 ("reduced float") candidate: round to IEEE half (nearest even) and back; values past
// half's range saturate at +-65504 and count as beyond range; non-zero values that become 0
// count as below precision.
using Float16Kernel = void (*)(const float* x, int64_t count, ErrorAccum& acc);
void float16KernelPortable(const float*, int64_t, ErrorAccum&);
void float16KernelAvx2(const float*, int64_t, ErrorAccum&);
void float16KernelAvx512(const float*, int64_t, ErrorAccum&);
Float16Kernel float16Kernel(Isa isa);

}  // namespace qs::kernels
