#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "quant/kernels/quant_error_kernel.h"

namespace qs::kernels {

void foldJointCounts(Count* table, int64_t rows, int64_t cols, int64_t* row_totals, int64_t* col_totals) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
            Count& v = table[r * cols + c];
            row_totals[r] += v;
            col_totals[c] += v;
            v = 0;
        }
}

ErrorBinning errorBinning(const ErrorHistogramSpec& hist, int32_t level_sink) {
    const float per_step = static_cast<float>(hist.bins) / (2.0f * hist.range_lsb);
    return {per_step, hist.range_lsb * per_step, static_cast<float>(hist.bins - 1), static_cast<float>(hist.bins + 1),
            hist.bins, level_sink * (hist.bins + 1) + hist.bins};
}

TailBlock::TailBlock(const float* src, int64_t full, int64_t count, const CandidateLanes& p) : lanes(p) {
    const int64_t sstep = p.uniform_scale ? 0 : 1, rstep = p.uniform_range ? 0 : 1;
    for (int k = 0; k < kLanes; ++k) {
        const bool in = full + k < count;
        const int64_t js = in ? (full + k) * sstep : 0, j = in ? (full + k) * rstep : 0;
        x[k] = in ? src[full + k] : std::nanf("");
        scale[k] = p.scale[js], lo[k] = p.lo[j], hi[k] = p.hi[j], level_offset[k] = p.level_offset[j];
    }
    lanes.scale = scale, lanes.lo = lo, lanes.hi = hi, lanes.level_offset = level_offset;
    lanes.uniform_scale = lanes.uniform_range = false;
}

ErrorKernel errorKernel(Isa isa) {
    switch (isa) {
        case Isa::Avx512: return errorKernelAvx512;
        case Isa::Avx2: return errorKernelAvx2;
        case Isa::Portable: break;
    }
    return errorKernelPortable;
}

Float16Kernel float16Kernel(Isa isa) {
    switch (isa) {
        case Isa::Avx512: return float16KernelAvx512;
        case Isa::Avx2: return float16KernelAvx2;
        case Isa::Portable: break;
    }
    return float16KernelPortable;
}

}  // namespace qs::kernels
