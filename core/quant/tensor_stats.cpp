#include "quant/tensor_stats.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/parallel.h"
#include "quant/kernels/quant_error_kernel.h"

namespace qs {

namespace {

void merge(RangeStats& a, const RangeStats& b) {
    if (b.finite) {
        if (a.finite == 0) a.min = b.min, a.max = b.max;
        a.min = std::min(a.min, b.min);
        a.max = std::max(a.max, b.max);
    }
    a.finite += b.finite;
    a.nan += b.nan;
    a.inf += b.inf;
    a.zeros += b.zeros;
    a.sum += b.sum;
    a.sum_sq += b.sum_sq;
    a.max_abs = std::max(std::fabs(a.min), std::fabs(a.max));
    if (a.finite == 0) a.max_abs = 0;
}

}  // namespace

namespace {

// One contiguous run, rows of `channels` values starting at channel 0. Branch-free so GCC
// vectorises along the channel axis; target_clones builds an AVX2 and a default version and
// picks one at run time. Every version adds in the same order (per channel, row by row), so
// results do not depend on the CPU.
__attribute__((target_clones("avx2", "default")))
void rowsStats(const float* x, int64_t rows, int64_t channels, float* mn, float* mx, double* sum, double* sq,
               int64_t* finite, int64_t* zeros, int64_t* nan) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = x + r * channels;
        for (int64_t c = 0; c < channels; ++c) {
            const float v = row[c];
            const bool fin = v - v == 0.0f;
            const float f = fin ? v : 0.0f;
            mn[c] = fin && v < mn[c] ? v : mn[c];
            mx[c] = fin && v > mx[c] ? v : mx[c];
            sum[c] += static_cast<double>(f);
            sq[c] += static_cast<double>(f) * static_cast<double>(f);
            finite[c] += fin;
            zeros[c] += fin && v == 0.0f;
            nan[c] += v != v;
        }
    }
}

// The same, eight lanes at a time with the accumulators in registers, over blocks of rows that
// stay in L1 (the version above loads and stores seven accumulators per value). Each lane still
// takes its values in row order with the same operations (no FMA: AVX2 only), so the bits are
// those of rowsStats. channels must be a multiple of 8.
__attribute__((target("avx2")))
void rowsStatsAvx2(const float* x, int64_t rows, int64_t channels, float* mn, float* mx, double* sum, double* sq,
                   int64_t* finite, int64_t* zeros, int64_t* nan) {
    const int64_t block_rows = std::max<int64_t>(1, 4096 / channels);  // 16 KB of values
    const __m256 zero = _mm256_setzero_ps(), pinf = _mm256_set1_ps(INFINITY), minf = _mm256_set1_ps(-INFINITY);
    for (int64_t r0 = 0; r0 < rows; r0 += block_rows) {
        const int64_t nr = std::min(block_rows, rows - r0);
        // The walk below goes down columns (stride `channels`), which the hardware prefetcher
        // does not follow: it prefetches the next block itself, one line (16 values) every other
        // step, as a block has twice as many 8-value steps as lines. 100M values, per tensor:
        // 0.066 s -> 0.034 s, the time of a plain sum (256 channels: 0.078 s -> 0.043 s).
        const float* next = x + (r0 + nr) * channels;
        int64_t step = 0;
        for (int64_t c = 0; c < channels; c += 8) {
            __m256 vmn = _mm256_loadu_ps(mn + c), vmx = _mm256_loadu_ps(mx + c);
            __m256d s0 = _mm256_loadu_pd(sum + c), s1 = _mm256_loadu_pd(sum + c + 4);
            __m256d q0 = _mm256_loadu_pd(sq + c), q1 = _mm256_loadu_pd(sq + c + 4);
            __m256i nf = _mm256_setzero_si256(), nz = nf, nn = nf;  // int32: at most 4096 rows a block
            const float* p = x + r0 * channels + c;
            for (int64_t r = 0; r < nr; ++r, p += channels, ++step) {
                if ((step & 1) == 0) kernels::prefetchFloats(next, static_cast<uintptr_t>(step) * 8);
                const __m256 v = _mm256_loadu_ps(p);
                const __m256 fin = _mm256_cmp_ps(_mm256_sub_ps(v, v), zero, _CMP_EQ_OQ);
                const __m256 f = _mm256_and_ps(v, fin);
                // min(a, b) is a < b ? a : b: with +-Inf in place of non-finite values, exactly
                // "fin && v < mn ? v : mn", one operation on the loop-carried chain.
                vmn = _mm256_min_ps(_mm256_blendv_ps(pinf, v, fin), vmn);
                vmx = _mm256_max_ps(_mm256_blendv_ps(minf, v, fin), vmx);
                const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
                s0 = _mm256_add_pd(s0, lo);
                s1 = _mm256_add_pd(s1, hi);
                q0 = _mm256_add_pd(q0, _mm256_mul_pd(lo, lo));
                q1 = _mm256_add_pd(q1, _mm256_mul_pd(hi, hi));
                nf = _mm256_sub_epi32(nf, _mm256_castps_si256(fin));
                nz = _mm256_sub_epi32(nz, _mm256_castps_si256(_mm256_and_ps(fin, _mm256_cmp_ps(v, zero, _CMP_EQ_OQ))));
                nn = _mm256_sub_epi32(nn, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
            }
            _mm256_storeu_ps(mn + c, vmn);
            _mm256_storeu_ps(mx + c, vmx);
            _mm256_storeu_pd(sum + c, s0);
            _mm256_storeu_pd(sum + c + 4, s1);
            _mm256_storeu_pd(sq + c, q0);
            _mm256_storeu_pd(sq + c + 4, q1);
            alignas(32) int32_t a[8], b[8], d[8];
            _mm256_store_si256(reinterpret_cast<__m256i*>(a), nf);
            _mm256_store_si256(reinterpret_cast<__m256i*>(b), nz);
            _mm256_store_si256(reinterpret_cast<__m256i*>(d), nn);
            for (int k = 0; k < 8; ++k) finite[c + k] += a[k], zeros[c + k] += b[k], nan[c + k] += d[k];
        }
    }
}

struct ChannelAcc {
    std::vector<float> mn, mx;
    std::vector<double> sum, sq;
    std::vector<int64_t> finite, zeros, nan;
    explicit ChannelAcc(size_t c)
        : mn(c, std::numeric_limits<float>::infinity()), mx(c, -std::numeric_limits<float>::infinity()), sum(c, 0), sq(c, 0),
          finite(c, 0), zeros(c, 0), nan(c, 0) {}
};

// Per-tensor statistics use 64 "channels" so the inner loop is long enough to vectorise.
constexpr int64_t kTensorLanes = 64;

// The lanes a pass accumulates in: a multiple of 8 (the AVX2 loop's width) and of the channel
// count, so lane j always holds channel j % channels. Channel counts that are not a multiple
// of 8 (10 classes, 100, 1001) then take the vector loop too: with one lane per channel they
// took the scalar one, 7-9x the time of a plain sum. Up to 2^16 lanes (seven accumulators
// each, per thread); beyond, one lane per channel.
int64_t statsLanes(int64_t channels) {
    if (channels == 1) return kTensorLanes;
    const int64_t lanes = channels / std::gcd(channels, int64_t{8}) * 8;
    return lanes <= (int64_t{1} << 16) ? lanes : channels;
}

}  // namespace

TensorStats computeTensorStats(const float* data, int64_t n, int64_t channels, int threads) {
    if (threads <= 0) threads = defaultThreadCount();
    if (channels < 1) channels = 1;
    const int64_t lanes = statsLanes(channels);
    TensorStats out;
    out.channels = channels;
    std::vector<ChannelAcc> part(static_cast<size_t>(threads), ChannelAcc(static_cast<size_t>(lanes)));
    const bool avx2 = lanes % 8 == 0 && kernels::activeIsa() != kernels::Isa::Portable;
    parallelRanges(n, threads, lanes, [&](int64_t b, int64_t e, int t) {
        ChannelAcc& a = part[static_cast<size_t>(t)];
        const int64_t rows = (e - b) / lanes;
        (avx2 ? rowsStatsAvx2 : rowsStats)(data + b, rows, lanes, a.mn.data(), a.mx.data(), a.sum.data(), a.sq.data(), a.finite.data(), a.zeros.data(),
                  a.nan.data());
        for (int64_t i = b + rows * lanes; i < e; ++i)  // a last partial row
            rowsStats(data + i, 1, 1, &a.mn[static_cast<size_t>((i - b) % lanes)], &a.mx[static_cast<size_t>((i - b) % lanes)],
                      &a.sum[static_cast<size_t>((i - b) % lanes)], &a.sq[static_cast<size_t>((i - b) % lanes)],
                      &a.finite[static_cast<size_t>((i - b) % lanes)], &a.zeros[static_cast<size_t>((i - b) % lanes)],
                      &a.nan[static_cast<size_t>((i - b) % lanes)]);
    });
    std::vector<RangeStats> per(static_cast<size_t>(lanes));
    for (size_t c = 0; c < per.size(); ++c) {
        RangeStats& s = per[c];
        for (const ChannelAcc& a : part) {
            RangeStats p;
            p.finite = a.finite[c];
            p.min = a.mn[c];
            p.max = a.mx[c];
            p.sum = a.sum[c];
            p.sum_sq = a.sq[c];
            p.zeros = a.zeros[c];
            p.nan = a.nan[c];
            merge(s, p);
        }
    }
    // Infinities: counted from what is neither finite nor NaN (per lane, then in total).
    // (n_in_lane - finite - nan), done after merging since lanes see known element counts.
    for (size_t c = 0; c < per.size(); ++c) {
        const int64_t in_lane = n / lanes + (static_cast<int64_t>(c) < n % lanes ? 1 : 0);
        per[c].inf = in_lane - per[c].finite - per[c].nan;
    }
    if (channels > 1 && lanes > channels) {  // lane j holds channel j % channels: fold, in lane order
        std::vector<RangeStats> folded(static_cast<size_t>(channels));
        for (size_t j = 0; j < per.size(); ++j) merge(folded[j % static_cast<size_t>(channels)], per[j]);
        per = std::move(folded);
    }
    for (RangeStats& s : per) {
        merge(out.all, s);
        s.max_abs = s.finite ? std::max(std::fabs(s.min), std::fabs(s.max)) : 0;
    }
    if (channels > 1) out.per_channel = std::move(per);
    return out;
}

int64_t channelCount(const Layer& layer, const Tensor& t) {
    if (t.shape.size() < 2) return 1;  // biases, BatchNormalization vectors
    const size_t r = t.shape.size();
    // DepthwiseConv2D kernels, and SeparableConv2D's depthwise (first) kernel: (kh, kw, in, mult),
    // output channel c * mult + m, i.e. the last two axes together.
    const bool depthwise = layer.kind == "DepthwiseConv2D" || (layer.kind == "SeparableConv2D" && &t == &layer.weights.front());
    if (depthwise && r >= 2) return t.shape[r - 1] * t.shape[r - 2];
    return t.shape.back();  // Dense, Conv1D/2D, pointwise, recurrent and unknown kernels: last axis
}

}  // namespace qs
