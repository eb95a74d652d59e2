#include "quant/histogram.h"

#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "base/parallel.h"
#include "quant/kernels/quant_error_kernel.h"
#include "quant/kernels/weight_histogram_kernel.h"

namespace qs {

int64_t Histogram::total() const {
    int64_t t = below + above;
    for (int64_t c : counts) t += c;
    return t;
}

namespace {

template <class Value>
Histogram binned(const float* data, int64_t n, double lo, double hi, int bins, int threads, Value value) {
    Histogram h;
    h.lo = lo;
    h.hi = hi;
    h.counts.assign(static_cast<size_t>(std::max(1, bins)), 0);
    if (threads <= 0) threads = defaultThreadCount();
    std::vector<Histogram> part(static_cast<size_t>(threads), h);
    const double inv = hi > lo ? static_cast<double>(h.counts.size()) / (hi - lo) : 0.0;
    const int64_t last = static_cast<int64_t>(h.counts.size()) - 1;
    parallelRanges(n, threads, 1, [&](int64_t b, int64_t e, int t) {
        Histogram& p = part[static_cast<size_t>(t)];
        for (int64_t i = b; i < e; ++i) {
            const double v = value(data[i]);
            if (!std::isfinite(v)) continue;
            if (v < lo) ++p.below;
            else if (v > hi) ++p.above;
            else p.counts[static_cast<size_t>(std::min(last, static_cast<int64_t>((v - lo) * inv)))]++;
        }
    });
    for (const Histogram& p : part) {
        h.below += p.below;
        h.above += p.above;
        for (size_t i = 0; i < h.counts.size(); ++i) h.counts[i] += p.counts[i];
    }
    return h;
}

}  // namespace

Histogram linearHistogram(const float* data, int64_t n, double lo, double hi, int bins, int threads) {
    return binned(data, n, lo, hi, bins, threads, [](float x) { return static_cast<double>(x); });
}

Histogram absHistogram(const float* data, int64_t n, double max_abs, int bins, int threads) {
    return binned(data, n, 0.0, max_abs > 0 ? max_abs : 1.0, bins, threads, [](float x) { return std::fabs(static_cast<double>(x)); });
}

namespace {

using kernels::kLog2Bins;
using kernels::kLog2Min;
using kernels::kLog2Row;

// Exponent e with |x| in [2^e, 2^(e+1)) for finite non-zero x, from the float's bits.
inline int log2Floor(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    const int field = static_cast<int>((b >> 23) & 0xff);
    if (field != 0) return field - 127;
    int exp = 0;  // subnormal
    std::frexp(x, &exp);
    return exp - 1;
}

Log2Histogram trimLog2(const std::vector<int64_t>& all) {
    Log2Histogram h;
    h.zeros = all[kLog2Bins];
    int first = kLog2Bins, last = -1;
    for (int i = 0; i < kLog2Bins; ++i)
        if (all[static_cast<size_t>(i)]) {
            first = std::min(first, i);
            last = i;
        }
    if (last < 0) return h;
    h.min_exponent = first + kLog2Min;
    h.counts.assign(all.begin() + first, all.begin() + last + 1);
    return h;
}

}  // namespace

Log2Histogram log2MagnitudeHistogram(const float* data, int64_t n, int threads) {
    // Exponents of float32 span [-149, 127]: 277 bins cover every finite non-zero value.
    constexpr int kMin = kLog2Min, kBins = kLog2Bins;
    if (threads <= 0) threads = defaultThreadCount();
    std::vector<std::vector<int64_t>> part(static_cast<size_t>(threads), std::vector<int64_t>(kBins + 1, 0));
    parallelRanges(n, threads, 1, [&](int64_t b, int64_t e, int t) {
        std::vector<int64_t>& c = part[static_cast<size_t>(t)];
        for (int64_t i = b; i < e; ++i) {
            const float x = data[i];
            if (!std::isfinite(x)) continue;
            if (x == 0.0f) {
                ++c[kBins];
                continue;
            }
            int exp = 0;
            std::frexp(x, &exp);  // |x| in [2^(exp-1), 2^exp)
            ++c[static_cast<size_t>(exp - 1 - kMin)];
        }
    });
    std::vector<int64_t> all(kBins + 1, 0);
    for (const auto& p : part)
        for (size_t i = 0; i < all.size(); ++i) all[i] += p[i];
    return trimLog2(all);
}

constexpr int kHistBlock = 256;

// Bin indices of one block for the three histograms, branch-free so GCC vectorises it;
// out-of-range and non-finite values go to sink bins past the real ones.
__attribute__((target_clones("avx2", "default")))
void histogramIndices(const float* x, int m, const kernels::WeightBins& w, int32_t* li, int32_t* ai, int32_t* gi) {
    const float lo = w.lo, hi = w.hi, lin_inv = w.lin_inv, max_abs = w.max_abs, abs_inv = w.abs_inv;
    const int lin_bins = w.lin_bins, abs_bins = w.abs_bins;
    for (int k = 0; k < m; ++k) {
        const float v = x[k];
        const bool fin = v - v == 0.0f;
        const float f = fin ? v : 0.0f;
        const float a = std::fabs(f);
        const float lf = std::min(static_cast<float>(lin_bins - 1), (f - lo) * lin_inv);
        int32_t l = static_cast<int32_t>(lf > 0.0f ? lf : 0.0f);
        l = f < lo ? lin_bins : (f > hi ? lin_bins + 1 : l);
        li[k] = fin ? l : lin_bins + 2;
        const int32_t ab = static_cast<int32_t>(std::min(static_cast<float>(abs_bins - 1), a * abs_inv));
        ai[k] = !fin ? abs_bins + 1 : (a > max_abs ? abs_bins : ab);
        uint32_t bits;
        std::memcpy(&bits, &a, 4);
        const int32_t field = static_cast<int32_t>(bits >> 23);  // sign cleared by fabs
        // Normal: field - 127; subnormal (field 0): placed from its top set bit, below.
        gi[k] = !fin ? kLog2Bins + 1 : (a == 0.0f ? kLog2Bins : field - 127 - kLog2Min);
    }
    for (int k = 0; k < m; ++k)  // subnormals are rare: fix them up exactly
        if (gi[k] == -127 - kLog2Min) {
            const float a = std::fabs(x[k]);
            if (a != 0.0f) gi[k] = log2Floor(a) - kLog2Min;
        }
}

// The same three bins, eight values at a time in AVX2: the operations and their order are
// those of histogramIndices, so the counts are identical. Counts as the AVX-512 kernel does
// (weight_histogram_kernel.h): joint[lin * kLog2Row + log2], abs[abs bin]. m: a multiple of 8.
__attribute__((target("avx2")))
void countHistogramsAvx2(const float* x, int64_t m, const kernels::WeightBins& w, kernels::Count* joint, kernels::Count* abs) {
    const __m256 zero = _mm256_setzero_ps(), absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 vlo = _mm256_set1_ps(w.lo), vhi = _mm256_set1_ps(w.hi), vlin_inv = _mm256_set1_ps(w.lin_inv);
    const __m256 vlin_last = _mm256_set1_ps(static_cast<float>(w.lin_bins - 1));
    const __m256 vmax_abs = _mm256_set1_ps(w.max_abs), vabs_inv = _mm256_set1_ps(w.abs_inv);
    const __m256 vabs_last = _mm256_set1_ps(static_cast<float>(w.abs_bins - 1));
    const __m256i lin_below = _mm256_set1_epi32(w.lin_bins), lin_above = _mm256_set1_epi32(w.lin_bins + 1),
                  lin_sink = _mm256_set1_epi32(w.lin_bins + 2), abs_above = _mm256_set1_epi32(w.abs_bins),
                  abs_sink = _mm256_set1_epi32(w.abs_bins + 1), log_zero = _mm256_set1_epi32(kLog2Bins),
                  log_sink = _mm256_set1_epi32(kLog2Bins + 1), log_off = _mm256_set1_epi32(127 + kLog2Min);
    alignas(32) int32_t li[8], ai[8], gi[8];
    for (int64_t i = 0; i < m; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 fin = _mm256_cmp_ps(_mm256_sub_ps(v, v), zero, _CMP_EQ_OQ);
        const __m256i nfin = _mm256_castps_si256(_mm256_cmp_ps(_mm256_sub_ps(v, v), zero, _CMP_NEQ_UQ));
        const __m256 f = _mm256_and_ps(v, fin), a = _mm256_and_ps(f, absmask);
        // std::min(A, B) is B < A ? B : A, i.e. _mm256_min_ps(B, A); "x > 0 ? x : 0" is max(x, 0).
        const __m256 lf = _mm256_min_ps(_mm256_mul_ps(_mm256_sub_ps(f, vlo), vlin_inv), vlin_last);
        __m256i l = _mm256_cvttps_epi32(_mm256_max_ps(lf, zero));
        l = _mm256_blendv_epi8(l, lin_above, _mm256_castps_si256(_mm256_cmp_ps(f, vhi, _CMP_GT_OQ)));
        l = _mm256_blendv_epi8(l, lin_below, _mm256_castps_si256(_mm256_cmp_ps(f, vlo, _CMP_LT_OQ)));
        l = _mm256_blendv_epi8(l, lin_sink, nfin);
        __m256i ab = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_mul_ps(a, vabs_inv), vabs_last));
        ab = _mm256_blendv_epi8(ab, abs_above, _mm256_castps_si256(_mm256_cmp_ps(a, vmax_abs, _CMP_GT_OQ)));
        ab = _mm256_blendv_epi8(ab, abs_sink, nfin);
        __m256i g = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_castps_si256(a), 23), log_off);
        g = _mm256_blendv_epi8(g, log_zero, _mm256_castps_si256(_mm256_cmp_ps(a, zero, _CMP_EQ_OQ)));
        g = _mm256_blendv_epi8(g, log_sink, nfin);
        _mm256_store_si256(reinterpret_cast<__m256i*>(li), l);
        _mm256_store_si256(reinterpret_cast<__m256i*>(ai), ab);
        _mm256_store_si256(reinterpret_cast<__m256i*>(gi), g);
        __asm__("" : "+m"(li), "+m"(ai), "+m"(gi));  // read back as plain loads (see quant_error_kernel_avx2.cpp)
        // Subnormals (exponent field 0, not zero) are rare: placed from their top set bit.
        const __m256 sub = _mm256_andnot_ps(_mm256_cmp_ps(a, zero, _CMP_EQ_OQ),
                                            _mm256_cmp_ps(a, _mm256_set1_ps(std::numeric_limits<float>::min()), _CMP_LT_OQ));
        if (!_mm256_testz_ps(sub, sub))
            for (int k = 0; k < 8; ++k)
                if (gi[k] == -127 - kLog2Min) {
                    const float y = std::fabs(x[i + k]);
                    if (y != 0.0f) gi[k] = log2Floor(y) - kLog2Min;
                }
        for (int k = 0; k < 8; ++k) ++joint[li[k] * kLog2Row + gi[k]], ++abs[ai[k]];
    }
}

WeightHistograms weightHistograms(const float* data, int64_t n, double lo, double hi, int linear_bins, double max_abs,
                                  int abs_bins, int threads) {
    if (threads <= 0) threads = defaultThreadCount();
    if (!(hi > lo)) hi = lo + 1;
    if (!(max_abs > 0)) max_abs = 1;
    // Per thread: the 64-bit totals (bins + 1 / + 2 / + 3 are the sinks for values outside the
    // range and for NaN/Inf); the SIMD kernels count into 32-bit tables (the joint linear x log2
    // one and |x|, weight_histogram_kernel.h), folded into the totals after every kFold values
    // and at the end. A thread with fewer values than the joint table has cells counts straight
    // into the totals (clearing and folding the table would cost more than it saves).
    constexpr int64_t kFold = int64_t{1} << 30;
    const size_t lin_rows = static_cast<size_t>(linear_bins) + 3, abs_len = static_cast<size_t>(abs_bins) + 2;
    const int64_t joint_cells = static_cast<int64_t>(lin_rows) * kLog2Row;
    struct Part {
        std::vector<kernels::Count> joint, abs;
        std::vector<int64_t> lin_total, abs_total, log2_total;
    };
    std::vector<Part> parts(static_cast<size_t>(threads));
    const kernels::WeightBins wb{static_cast<float>(lo),        static_cast<float>(hi), static_cast<float>(linear_bins / (hi - lo)),
                                 static_cast<float>(max_abs),   static_cast<float>(abs_bins / max_abs), linear_bins, abs_bins};
    const kernels::Isa isa = kernels::activeIsa();
    parallelRanges(n, threads, 1, [&](int64_t b, int64_t e, int t) {
        Part& p = parts[static_cast<size_t>(t)];
        p.lin_total.assign(lin_rows, 0);
        p.abs_total.assign(abs_len, 0);
        p.log2_total.assign(kLog2Row, 0);
        const bool simd = isa != kernels::Isa::Portable && e - b >= joint_cells;
        if (simd) {
            p.joint.assign(lin_rows * kLog2Row, 0);
            p.abs.assign(abs_len, 0);
        }
        auto fold = [&p, lin_rows, abs_len] {
            kernels::foldJointCounts(p.joint.data(), static_cast<int64_t>(lin_rows), kLog2Row, p.lin_total.data(), p.log2_total.data());
            for (size_t i = 0; i < abs_len; ++i) p.abs_total[i] += p.abs[i];
            std::fill(p.abs.begin(), p.abs.end(), 0);
        };
        int64_t i = b;
        if (simd) {
            const int64_t m = (e - b) / 16 * 16;
            for (int64_t c0 = b; c0 < b + m; c0 += kFold) {
                const int64_t len = std::min(kFold, b + m - c0);
                if (isa == kernels::Isa::Avx512) kernels::weightHistogramKernelAvx512(data + c0, len, wb, p.joint.data(), p.abs.data());
                else countHistogramsAvx2(data + c0, len, wb, p.joint.data(), p.abs.data());
                fold();
            }
            i += m;
        }
        int32_t li[kHistBlock], ai[kHistBlock], gi[kHistBlock];
        for (; i < e; i += kHistBlock) {
            const int m = static_cast<int>(std::min<int64_t>(kHistBlock, e - i));
            histogramIndices(data + i, m, wb, li, ai, gi);
            for (int k = 0; k < m; ++k) {
                ++p.lin_total[static_cast<size_t>(li[k])];
                ++p.abs_total[static_cast<size_t>(ai[k])];
                ++p.log2_total[static_cast<size_t>(gi[k])];
            }
        }
    });
    WeightHistograms w;
    w.linear.lo = lo, w.linear.hi = hi, w.linear.counts.assign(static_cast<size_t>(linear_bins), 0);
    w.abs.lo = 0, w.abs.hi = max_abs, w.abs.counts.assign(static_cast<size_t>(abs_bins), 0);
    std::vector<int64_t> log2(kLog2Bins + 1, 0);
    for (const Part& p : parts) {
        if (p.lin_total.empty()) continue;  // a thread without values
        for (size_t i = 0; i < w.linear.counts.size(); ++i) w.linear.counts[i] += p.lin_total[i];
        for (size_t i = 0; i < w.abs.counts.size(); ++i) w.abs.counts[i] += p.abs_total[i];
        for (size_t i = 0; i < log2.size(); ++i) log2[i] += p.log2_total[i];
        w.linear.below += p.lin_total[static_cast<size_t>(linear_bins)];
        w.linear.above += p.lin_total[static_cast<size_t>(linear_bins) + 1];
        w.abs.above += p.abs_total[static_cast<size_t>(abs_bins)];
    }
    w.log2 = trimLog2(log2);
    return w;
}

double histogramQuantile(const Histogram& h, double fraction) {
    const int64_t total = h.total();
    if (total == 0) return h.lo;
    const double target = fraction * static_cast<double>(total);
    double acc = static_cast<double>(h.below);
    if (acc >= target) return h.lo;
    const double w = h.binWidth();
    for (size_t i = 0; i < h.counts.size(); ++i) {
        const double c = static_cast<double>(h.counts[i]);
        if (acc + c >= target && c > 0) return h.lo + w * (static_cast<double>(i) + (target - acc) / c);
        acc += c;
    }
    return h.hi;
}

}  // namespace qs
