#pragma once
// The inner loop of candidate evaluation: quantize, dequantize and accumulate error statistics
// for a run of elements whose per-element scale and zero point are given (expanded from the
// per-tensor or per-channel parameters). Three instances, chosen at run time: portable
// (quant_error_kernel.inc, plain C++), AVX2 and AVX-512 (intrinsics). All three give
// bit-identical results: sums go into 16 fixed double lanes (element i of a 16-block always
// feeds lane i), FP contraction is off, division and the rounding are exact IEEE operations.
// Helpers the instances share are defined out of line (quant_error_dispatch.cpp, baseline
// x86-64): an inline function compiled into an AVX-512 file could be the copy the linker keeps.
#include <cstdint>

#include "base/cpu_isa.h"

namespace qs::kernels {

constexpr int kLanes = 16;
constexpr float kTMax = 1073741824.0f;  // 2^30: x / s is clamped to +-kTMax before rounding
constexpr float kHalfDown = 0.5f - 0x1p-25f;  // the float just below 0.5 (0.49999997)

// The vector loops work in two phases per chunk: compute (loads) and count (no loads). The
// hardware prefetcher follows demand loads, so it stalls while counting and the next chunk
// then arrives late; the loops prefetch kPrefetchAhead floats (8 KB, one period of
// quant_analysis.cpp) ahead, one cache line per 16 values. Measured on one 8-bit candidate
// over 100M values (AVX-512, 2 threads, best of 8): 0.061 s -> 0.046 s. Every candidate of a
// period issues them, though only the first reads from memory: the later ones hit L1 and
// measured no slower (twelve candidates 0.689 vs 0.684 s), so the kernels need not know which
// candidate they run for. Prefetching past the
// end of the array is harmless (prefetches never fault); the address is formed as an integer
// so no out-of-range pointer exists. static: each ISA's file keeps its own copy (see above).
// tensor_stats.cpp uses the helper too, with its own distance.
constexpr uintptr_t kPrefetchAhead = 2048;
static inline void prefetchFloats(const float* p, uintptr_t ahead) {
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + ahead * sizeof(float)));
}

// Per-candidate sums. The sum of x^2, the finite count and the count of zeros are the same for
// every candidate and come from the first pass (TensorStats), not from here.
struct ErrorAccum {
    double sum_e2[kLanes] = {}, sum_e[kLanes] = {};
    float max_e[kLanes] = {};
    // at_zero: finite values that quantize to the zero point; "below precision" is at_zero less
    // the values that were 0 to begin with (those always quantize to the zero point). Only
    // needed where channels have different zero points (CandidateLanes::uniform_range false):
    // otherwise the caller reads it from the zero point's level count and kernels may skip it.
    int64_t at_zero[kLanes] = {}, beyond[kLanes] = {};
};

// One candidate's parameters for each element of a period (expanded from per-tensor or
// per-channel parameters, see quant_analysis.cpp), in the form the kernel wants: with
// r = round_half_away(x / s), the stored level is q = clamp(r, lo, hi) + zero point, where
// lo = qmin - zp and hi = qmax - zp, so the dequantized value is clamp(r, lo, hi) * s and the
// level's bin is clamp(r, lo, hi) + level_offset (level_offset = zp - qmin).
struct CandidateLanes {
    const float *scale = nullptr, *lo = nullptr, *hi = nullptr, *level_offset = nullptr;
    // Arrays that hold one value for every element (per-tensor, or a per-channel symmetric
    // candidate's range) have length 1 and their flag set: the kernels keep them in registers.
    bool uniform_scale = false, uniform_range = false;  // range: lo, hi and level_offset
    int32_t sink = 0;      // level bin for non-finite values (qmax - qmin + 1, never reported)
};

// The counters the kernels increment: 32 bits, half the cache footprint of 64 (the joint table
// below is 105 KB at 8 bits, mostly in L1). Callers fold them into 64-bit totals before any
// could reach 2^32 (quant_analysis.cpp).
using Count = uint32_t;

// Folds a joint table (rows x cols counters, row-major) into 64-bit row and column totals and
// clears it: the level x error-bin tables and the weight histograms' linear x log2 table.
void foldJointCounts(Count* table, int64_t rows, int64_t cols, int64_t* row_totals, int64_t* col_totals);

struct ErrorHistogramSpec {
    int bins = 0;               // 0: no error histogram
    float range_lsb = 1;        // bins cover [-range_lsb, range_lsb], in units of one quantization step (LSB)
    Count* counts = nullptr;    // bins + 1 counters (the last a sink for non-finite values); null with
                                // bins > 0: counted jointly with the levels (see ErrorKernel)
    bool joint() const { return bins > 0 && !counts; }
};

// How every instance bins an error v (in steps): floor(v * per_step + offset), held to
// [0, last] as a float; and the joint table's layout: rows of `row` cells, a non-finite value
// (level sink, error sink) at joint_sink. One definition, so that the three compute the same.
struct ErrorBinning {
    float per_step, offset, last;
    float row;                    // bins + 1
    int32_t sink, joint_sink;     // error sink bin (bins); level_sink * row + bins
};
ErrorBinning errorBinning(const ErrorHistogramSpec& hist, int32_t level_sink);

// The last, partial 16-block of a vector kernel's run (elements full .. count - 1), padded: the
// values with NaN (not finite: they go to the sinks and add nothing, as the portable kernel
// treats them), the parameters with the first element's; `lanes` reads the padded copies.
struct TailBlock {
    alignas(64) float x[kLanes], scale[kLanes], lo[kLanes], hi[kLanes], level_offset[kLanes];
    CandidateLanes lanes;
    TailBlock(const float* src, int64_t full, int64_t count, const CandidateLanes& p);
    TailBlock(const TailBlock&) = delete;  // lanes points into this object
    TailBlock& operator=(const TailBlock&) = delete;
};

// x: `count` elements (count a multiple of kLanes except on the last call); element base + k
// of a 16-block feeds lane k. all_finite: the caller knows x holds no NaN/Inf (TensorStats), so
// the kernel may skip the masks. level_counts is indexed by the level q - qmin, with the sink
// bin after the last level. With level_stride > 0 there are four such histograms, stride
// apart, and lane k counts into histogram k % 4: neighbouring values often fall in the same
// bin, and separate counters keep the increments from waiting on each other. The error
// histogram bins the error in steps, clamp(r, lo, hi) - x / s (see ErrorBinning). Joint
// counting (hist.joint(), for up to 8 bits): level_counts is a table of sink + 1 rows of
// hist.bins + 1, and a value counts once, at (q - qmin) * (bins + 1) + its error bin (the sink
// row and column for non-finite values); the caller sums rows for the level counts and columns
// for the error histogram. One increment instead of two: the increments, not the arithmetic,
// are what a run with an error histogram spends most of its time on. level_stride is then 0,
// and the table must have fewer than 2^24 entries: the kernels compute the index in float.
using ErrorKernel = void (*)(const float* x, int64_t count, const CandidateLanes& p, bool all_finite, ErrorAccum& acc,
                             Count* level_counts, int64_t level_stride, const ErrorHistogramSpec& hist);

void errorKernelPortable(const float*, int64_t, const CandidateLanes&, bool, ErrorAccum&, Count*, int64_t,
                         const ErrorHistogramSpec&);
void errorKernelAvx2(const float*, int64_t, const CandidateLanes&, bool, ErrorAccum&, Count*, int64_t,
                     const ErrorHistogramSpec&);
void errorKernelAvx512(const float*, int64_t, const CandidateLanes&, bool, ErrorAccum&, Count*, int64_t,
                       const ErrorHistogramSpec&);

ErrorKernel errorKernel(Isa isa);

}  // namespace qs::kernels

namespace qs::kernels {

// float16 ("reduced float") candidate: round to IEEE half (nearest even) and back; values past
// half's range saturate at +-65504 and count as beyond range; non-zero values that become 0
// count as below precision.
using Float16Kernel = void (*)(const float* x, int64_t count, bool all_finite, ErrorAccum& acc);
void float16KernelPortable(const float*, int64_t, bool, ErrorAccum&);
void float16KernelAvx2(const float*, int64_t, bool, ErrorAccum&);
void float16KernelAvx512(const float*, int64_t, bool, ErrorAccum&);
Float16Kernel float16Kernel(Isa isa);

}  // namespace qs::kernels
