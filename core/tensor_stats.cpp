#include "tensor_stats.h"

#include <cmath>
#include <limits>

#include "parallel.h"

namespace qs {

namespace {

void add(RangeStats& s, double x) {
    if (std::isnan(x)) {
        ++s.nan;
        return;
    }
    if (std::isinf(x)) {
        ++s.inf;
        return;
    }
    if (s.finite == 0) s.min = s.max = x;
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
    ++s.finite;
    if (x == 0) ++s.zeros;
    s.sum += x;
    s.sum_sq += x * x;
}

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

TensorStats computeTensorStats(const float* data, int64_t n, int64_t channels, int threads) {
    if (threads <= 0) threads = defaultThreadCount();
    if (channels < 1) channels = 1;
    TensorStats out;
    out.channels = channels;
    std::vector<std::vector<RangeStats>> part(static_cast<size_t>(threads), std::vector<RangeStats>(static_cast<size_t>(channels)));
    parallelRanges(n, threads, channels, [&](int64_t b, int64_t e, int t) {
        std::vector<RangeStats>& p = part[static_cast<size_t>(t)];
        int64_t c = b % channels;
        for (int64_t i = b; i < e; ++i) {
            add(p[static_cast<size_t>(c)], data[i]);
            if (++c == channels) c = 0;
        }
    });
    std::vector<RangeStats> per(static_cast<size_t>(channels));
    for (const auto& p : part)
        for (size_t c = 0; c < per.size(); ++c) merge(per[c], p[c]);
    for (RangeStats& s : per) {
        merge(out.all, s);
        s.max_abs = s.finite ? std::max(std::fabs(s.min), std::fabs(s.max)) : 0;
    }
    if (channels > 1) out.per_channel = std::move(per);
    return out;
}

int64_t channelCount(const Layer& layer, const Tensor& t) {
    if (t.shape.size() < 2) return 1;
    const std::string& k = layer.kind;
    const bool is_kernel = &t == &layer.weights.front();
    if (!is_kernel && k != "SeparableConv2D") return 1;
    if (k == "DepthwiseConv2D" || (k == "SeparableConv2D" && &t == &layer.weights.front()))
        return t.shape[t.shape.size() - 1] * t.shape[t.shape.size() - 2];
    return t.shape.back();  // Dense, Conv1D/2D, SeparableConv2D pointwise, unknown layers' kernels
}

}  // namespace qs
