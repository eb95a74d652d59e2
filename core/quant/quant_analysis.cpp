#include "quant/quant_analysis.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

#include "base/parallel.h"
#include "quant/calibration.h"
#include "quant/kernels/quant_error_kernel.h"

namespace qs {

namespace kern = qs::kernels;

const char* granularityName(Granularity g) {
    return g == Granularity::PerTensor ? "per-tensor" : "per-channel";
}

const std::vector<std::string>& candidateMethods() {
    static const std::vector<std::string> m = {"max_abs",  "min_max",          "pow2",              "pow2_m1",
                                               "pow2_p1",  "pow2_m2",          "pow2_p2",           "percentile_99.9",
                                               "percentile_99.99", "mse",      "kl",                "float16"};
    return m;
}

int64_t packedBytes(int64_t n, const Candidate& c) {
    if (c.float16) return 2 * n;
    const int64_t weights = (n * c.bits + 7) / 8;
    const int64_t k = static_cast<int64_t>(c.params.size());
    const int64_t scales = c.fraction_lengths.empty() ? 4 * k : k;  // float32, or a 1-byte exponent
    const int64_t zero_points = c.scheme == Scheme::Asymmetric ? 4 * k : 0;
    return weights + scales + zero_points;
}

namespace {

int64_t gcd64(int64_t a, int64_t b) { return b == 0 ? a : gcd64(b, a % b); }

// Length of the repeating parameter pattern: a multiple of both the channel count and the
// kernel's 16 lanes, at least 2048 elements, so chunks stay in L1 while all candidates run.
int64_t periodFor(int64_t channels) {
    const int64_t l = channels / gcd64(channels, kern::kLanes) * kern::kLanes;
    return l * std::max<int64_t>(1, (2048 + l - 1) / l);
}

// Every channel of the candidate has the same zero point and range (always per tensor, and
// for symmetric candidates per channel).
bool uniformRange(const Candidate& c) {
    return std::all_of(c.params.begin(), c.params.end(), [&](const QuantParams& p) {
        return p.zero_point == c.params[0].zero_point && p.qmin == c.params[0].qmin && p.qmax == c.params[0].qmax;
    });
}

struct Expanded {
    std::vector<float> scale, lo, hi, level_offset;
    float qmin = 0, qmax = 0;

    kern::CandidateLanes lanes() const {
        kern::CandidateLanes l;
        l.scale = scale.data(), l.lo = lo.data(), l.hi = hi.data(), l.level_offset = level_offset.data();
        l.uniform_scale = scale.size() == 1;
        l.uniform_range = lo.size() == 1;
        l.sink = static_cast<int32_t>(qmax - qmin) + 1;
        return l;
    }
};

// Per-tensor parameters stay one element (the kernels keep them in registers); per-channel ones
// are laid out for a whole period, except a range (lo, hi, level offset) that every channel
// shares, as symmetric candidates' do.
Expanded expand(const Candidate& c, int64_t channels, int64_t period) {
    Expanded e;
    if (c.params.empty()) return e;
    const QuantParams& p0 = c.params[0];
    const bool same_range = uniformRange(c);
    const int64_t len = c.params.size() == 1 ? 1 : period;
    for (int64_t i = 0; i < len; ++i) {
        const QuantParams& p = c.params.size() == 1 ? p0 : c.params[static_cast<size_t>(i % channels)];
        // A scale below float's range would divide by 0; the smallest float keeps 0 at level zp.
        e.scale.push_back(std::max(static_cast<float>(p.scale), std::numeric_limits<float>::denorm_min()));
        if (same_range && i > 0) continue;
        e.lo.push_back(static_cast<float>(p.qmin - p.zero_point));
        e.hi.push_back(static_cast<float>(p.qmax - p.zero_point));
        e.level_offset.push_back(static_cast<float>(p.zero_point - p.qmin));
    }
    e.qmin = static_cast<float>(p0.qmin);
    e.qmax = static_cast<float>(p0.qmax);
    return e;
}

// Largest error a candidate can make, in steps: 0.5 inside the range, more where it clips.
double errorRangeLsb(const Candidate& c, const TensorStats* st) {
    double r = 0.5;
    if (!st) return r;
    for (size_t i = 0; i < c.params.size(); ++i) {
        const RangeStats& s = c.params.size() == 1 ? st->all : st->per_channel[i];
        const QuantParams& p = c.params[i];
        const double lo = p.scale * (p.qmin - p.zero_point), hi = p.scale * (p.qmax - p.zero_point);
        r = std::max({r, (s.max - hi) / p.scale, (lo - s.min) / p.scale});
    }
    return std::min(r * 1.001, 64.0);
}

void finalize(CandidateStats& s, const kern::ErrorAccum& a, const Candidate& c, int64_t n, const RangeStats& range) {
    double e2 = 0, e1 = 0;
    const double x2 = range.sum_sq;
    const int64_t finite = range.finite;
    float max_e = 0;
    int64_t below = -range.zeros, beyond = 0;  // zeros always land on the zero point
    for (int k = 0; k < kern::kLanes; ++k) {  // fixed order: identical on every ISA
        e2 += a.sum_e2[k];
        e1 += a.sum_e[k];
        max_e = std::max(max_e, a.max_e[k]);
        below += a.at_zero[k];
        beyond += a.beyond[k];
    }
    // With one zero point for every channel the values at it are that level's count (the kernels
    // need not count them, see quant_error_kernel.h).
    if (!c.float16 && uniformRange(c)) below = s.level_counts[static_cast<size_t>(c.params[0].zero_point - c.params[0].qmin)] - range.zeros;
    s.count = finite;
    const double cnt = finite > 0 ? static_cast<double>(finite) : 1.0;
    s.mse = e2 / cnt;
    s.rmse = std::sqrt(s.mse);
    s.sqnr_db = e2 > 0 ? 10.0 * std::log10(x2 / e2) : std::numeric_limits<double>::infinity();
    if (x2 == 0 && e2 == 0) s.sqnr_db = std::numeric_limits<double>::infinity();
    s.max_abs_error = max_e;
    s.mean_error = e1 / cnt;
    s.below_precision = below;
    s.beyond_range = beyond;
    s.pct_below_precision = 100.0 * static_cast<double>(below) / cnt;
    s.pct_beyond_range = 100.0 * static_cast<double>(beyond) / cnt;
    s.packed_bytes = packedBytes(n, c);
    if (c.float16) {
        s.levels_used = -1;
        s.entropy_bits_per_weight = 16;
        s.entropy_coded_bytes = 2 * finite;
        return;
    }
    s.levels_used = 0;
    double h = 0;
    for (int64_t k : s.level_counts) {
        if (!k) continue;
        ++s.levels_used;
        const double p = static_cast<double>(k) / cnt;
        h -= p * std::log2(p);
    }
    s.entropy_bits_per_weight = h;
    s.entropy_coded_bytes = static_cast<int64_t>(std::ceil(h * static_cast<double>(finite) / 8.0));
}

// The kernels would treat both alike: float16 both, or the same scheme and, channel by channel,
// the same scale, zero point and range (the error histogram's range follows from these).
bool sameQuantizer(const Candidate& a, const Candidate& b) {
    if (a.float16 || b.float16) return a.float16 && b.float16;
    return a.scheme == b.scheme && a.params == b.params;
}

// One thread's level and error-bin counts for one candidate: the kernels' 32-bit counters
// (quant_error_kernel.h) and the 64-bit totals they are folded into.
struct Counters {
    int64_t levels = 0, err_bins = 0;  // both with their sink bin
    int64_t copies = 1;                // level histogram copies, up to 8 bits (see ErrorKernel)
    bool joint = false;                // levels x error bins in one table
    std::vector<kern::Count> level, err;
    std::vector<int64_t> level_total, err_total;

    Counters() = default;
    // values: how many this thread may count. Joint when the table has at most 2^17 entries
    // (512 KB; 8 bits with 101 bins take 26 K; the kernels compute the index in float, exact
    // below 2^24) and no more than the values to count: clearing and folding a table is worth
    // it only when the increments it saves outnumber its cells.
    Counters(int64_t level_bins, int hist_bins, int64_t values) : levels(level_bins), err_bins(hist_bins > 0 ? hist_bins + 1 : 0) {
        const int64_t cells = levels * err_bins;
        joint = err_bins > 0 && cells <= (int64_t{1} << 17) && cells <= values;
        copies = !joint && levels <= 258 ? 4 : 1;
        level.assign(static_cast<size_t>(joint ? levels * err_bins : levels * copies), 0);
        if (!joint) err.assign(static_cast<size_t>(err_bins), 0);
        level_total.assign(static_cast<size_t>(levels), 0);
        err_total.assign(static_cast<size_t>(err_bins), 0);
    }

    void fold() {
        if (joint) {
            kern::foldJointCounts(level.data(), levels, err_bins, level_total.data(), err_total.data());
            return;
        }
        for (size_t i = 0; i < level.size(); ++i) level_total[i % static_cast<size_t>(levels)] += level[i];
        for (size_t b = 0; b < err.size(); ++b) err_total[b] += err[b];
        std::fill(level.begin(), level.end(), 0);
        std::fill(err.begin(), err.end(), 0);
    }
};

// Values per thread between folds: a 32-bit counter takes at most one increment per value.
std::atomic<int64_t> fold_interval{std::numeric_limits<kern::Count>::max()};

}  // namespace

void setCounterFoldInterval(int64_t values) {
    fold_interval.store(values > 0 ? values : std::numeric_limits<kern::Count>::max());
}

void evaluateCandidates(const float* data, int64_t n, int64_t channels, std::vector<Candidate>& cands, bool error_histograms,
                        int error_hist_bins, int threads, const TensorStats* stats) {
    if (threads <= 0) threads = defaultThreadCount();
    TensorStats own;
    if (!stats) {
        own = computeTensorStats(data, n, channels, threads);
        stats = &own;
    }
    const int64_t period = periodFor(channels);
    const kern::Isa isa = kern::activeIsa();
    const kern::ErrorKernel kernel = kern::errorKernel(isa);
    const kern::Float16Kernel f16 = kern::float16Kernel(isa);
    const size_t K = cands.size();
    std::vector<Expanded> ex(K);
    std::vector<kern::CandidateLanes> lanes(K);
    std::vector<double> ranges(K, 0.5);
    for (size_t k = 0; k < K; ++k) {
        if (cands[k].float16) continue;
        ex[k] = expand(cands[k], channels, period);
        lanes[k] = ex[k].lanes();
        ranges[k] = errorRangeLsb(cands[k], stats);
    }
    const bool all_finite = stats->all.nan == 0 && stats->all.inf == 0;
    // A candidate that quantizes exactly as an earlier one takes that one's sums instead of a
    // pass of its own: at 16 bits KL's clip is the maximum (its histogram has fewer bins than
    // levels), so kl repeats max_abs, and the best MSE clip often does too.
    std::vector<size_t> source(K);
    for (size_t k = 0; k < K; ++k) {
        source[k] = k;
        for (size_t j = 0; j < k; ++j)
            if (source[j] == j && sameQuantizer(cands[j], cands[k])) {
                source[k] = j;
                break;
            }
    }
    struct Part {
        std::vector<kern::ErrorAccum> acc;
        std::vector<Counters> counters;
        int64_t since_fold = 0;  // values counted since the last fold
    };
    std::vector<Part> parts(static_cast<size_t>(threads));
    for (Part& p : parts) {
        p.acc.resize(K);
        p.counters.resize(K);
        for (size_t k = 0; k < K; ++k)
            if (!cands[k].float16 && source[k] == k)
                p.counters[k] = Counters(static_cast<int64_t>(ex[k].qmax - ex[k].qmin) + 2, error_histograms ? error_hist_bins : 0,
                                         (n + threads - 1) / threads);
    }
    const int64_t fold_every = fold_interval.load();
    // Every candidate runs over a chunk while it is in cache. A chunk is one period where the
    // counters are small; where one candidate's counters take 256 KB (16 bits: 65,537 levels),
    // twelve of them cycling through every 8 KB period pushed each other out of L2 and most
    // increments went to L3, so each candidate then takes 64 K values (256 KB, read again from
    // L2 by the next) with its own table warm. The same elements in the same order for every
    // candidate's sums, so the same bits.
    int64_t widest = 0;
    for (const Part& p : parts)
        for (const Counters& c : p.counters) widest = std::max(widest, c.levels);
    const int64_t chunk = widest > 4096 && fold_every >= 65536 ? std::max<int64_t>(1, 65536 / period) * period : period;
    parallelRanges(n, threads, period, [&](int64_t b, int64_t e, int t) {
        Part& p = parts[static_cast<size_t>(t)];
        for (int64_t start = b; start < e; start += chunk) {
            const int64_t len = std::min(chunk, e - start);
            if (p.since_fold + len > fold_every) {
                for (Counters& c : p.counters) c.fold();
                p.since_fold = 0;
            }
            p.since_fold += len;
            for (size_t k = 0; k < K; ++k) {
                if (source[k] != k) continue;
                Counters& c = p.counters[k];
                kern::ErrorHistogramSpec hs;
                if (error_histograms && !cands[k].float16) {
                    hs.bins = error_hist_bins;
                    hs.range_lsb = static_cast<float>(ranges[k]);
                    hs.counts = c.joint ? nullptr : c.err.data();
                }
                for (int64_t s = start; s < start + len; s += period) {  // periods keep the parameters' alignment
                    const int64_t l = std::min(period, start + len - s);
                    if (cands[k].float16) f16(data + s, l, all_finite, p.acc[k]);
                    else kernel(data + s, l, lanes[k], all_finite, p.acc[k], c.level.data(), c.copies > 1 ? c.levels : 0, hs);
                }
            }
        }
        for (Counters& c : p.counters) c.fold();
    });
    for (size_t k = 0; k < K; ++k) {
        const size_t src = source[k];
        kern::ErrorAccum total;
        CandidateStats& s = cands[k].stats;
        s = CandidateStats{};
        if (!cands[k].float16) s.level_counts.assign(static_cast<size_t>(ex[k].qmax - ex[k].qmin + 1), 0);
        if (error_histograms && !cands[k].float16) {
            s.error_hist.lo = -ranges[k];
            s.error_hist.hi = ranges[k];
            s.error_hist.counts.assign(static_cast<size_t>(error_hist_bins), 0);
        }
        // Threads' lanes add in thread order: the split is fixed by n and the thread count.
        for (const Part& p : parts) {
            const kern::ErrorAccum& acc = p.acc[src];
            for (int l = 0; l < kern::kLanes; ++l) {
                total.sum_e2[l] += acc.sum_e2[l];
                total.sum_e[l] += acc.sum_e[l];
                total.max_e[l] = std::max(total.max_e[l], acc.max_e[l]);
                total.at_zero[l] += acc.at_zero[l];
                total.beyond[l] += acc.beyond[l];
            }
            const Counters& c = p.counters[src];  // the sinks (last entries) dropped
            for (size_t i = 0; i < s.level_counts.size(); ++i) s.level_counts[i] += c.level_total[i];
            for (size_t i = 0; i < s.error_hist.counts.size(); ++i) s.error_hist.counts[i] += c.err_total[i];
        }
        finalize(s, total, cands[k], n, stats->all);
    }
}

void evaluateCandidates(const float* data, int64_t n, int64_t channels, std::vector<Candidate>& candidates,
                        bool error_histograms, int error_hist_bins, int threads) {
    evaluateCandidates(data, n, channels, candidates, error_histograms, error_hist_bins, threads, nullptr);
}

CandidateStats referenceStats(const float* data, int64_t n, int64_t channels, const Candidate& c) {
    CandidateStats s;
    if (!c.float16) s.level_counts.assign(static_cast<size_t>(c.params[0].qmax - c.params[0].qmin + 1), 0);
    long double e2 = 0, e1 = 0, x2 = 0;
    int64_t below = 0, beyond = 0, finite = 0;
    double max_e = 0;
    for (int64_t i = 0; i < n; ++i) {
        const float x = data[i];
        if (!std::isfinite(x)) continue;
        ++finite;
        double deq;
        if (c.float16) {
            const float clipped = std::clamp(x, -65504.0f, 65504.0f);
            deq = roundToFloat16(clipped);
            beyond += clipped != x;
            below += x != 0 && deq == 0;
        } else {
            const QuantParams& p = c.params.size() == 1 ? c.params[0] : c.params[static_cast<size_t>(i % channels)];
            const double unclamped = roundHalfAway(static_cast<double>(x / static_cast<float>(p.scale))) + p.zero_point;
            const int32_t q = quantize(x, p);
            deq = dequantize(q, p);
            beyond += unclamped < p.qmin || unclamped > p.qmax;
            below += x != 0 && q == p.zero_point;
            ++s.level_counts[static_cast<size_t>(q - p.qmin)];
        }
        const double e = static_cast<double>(static_cast<float>(deq) - x);
        e2 += e * e;
        e1 += e;
        x2 += static_cast<double>(x) * x;
        max_e = std::max(max_e, std::fabs(e));
    }
    s.count = finite;
    const double cnt = finite ? static_cast<double>(finite) : 1.0;
    s.mse = static_cast<double>(e2) / cnt;
    s.rmse = std::sqrt(s.mse);
    s.sqnr_db = e2 > 0 ? 10.0 * std::log10(static_cast<double>(x2 / e2)) : std::numeric_limits<double>::infinity();
    s.max_abs_error = max_e;
    s.mean_error = static_cast<double>(e1) / cnt;
    s.below_precision = below;
    s.beyond_range = beyond;
    s.pct_below_precision = 100.0 * static_cast<double>(below) / cnt;
    s.pct_beyond_range = 100.0 * static_cast<double>(beyond) / cnt;
    s.packed_bytes = packedBytes(n, c);
    if (c.float16) {
        s.levels_used = -1;
        return s;
    }
    double h = 0;
    for (int64_t k : s.level_counts)
        if (k) {
            ++s.levels_used;
            h -= static_cast<double>(k) / cnt * std::log2(static_cast<double>(k) / cnt);
        }
    s.entropy_bits_per_weight = h;
    s.entropy_coded_bytes = static_cast<int64_t>(std::ceil(h * static_cast<double>(finite) / 8.0));
    return s;
}

namespace {

// Flat bin index (channel * (bins + 1) + bin, the last bin of each channel a sink for NaN/Inf)
// of one row's values; branch-free so GCC vectorises it (the same double arithmetic everywhere).
__attribute__((target_clones("avx2", "default")))
void absBinsRow(const float* x, int64_t C, const double* inv, int bins, int32_t* out) {
    for (int64_t c = 0; c < C; ++c) {
        const float v = x[c];
        const bool fin = v - v == 0.0f;
        const double b = static_cast<double>(std::fabs(fin ? v : 0.0f)) * inv[c];  // <= bins: |v| <= the channel's max
        const int32_t k = std::min(bins - 1, static_cast<int32_t>(b));
        out[c] = static_cast<int32_t>(c) * (bins + 1) + (fin ? k : bins);
    }
}

// |x| histograms, one per channel (bins each), in one pass on both cores.
std::vector<Histogram> perChannelAbsHistograms(const float* data, int64_t n, const TensorStats& st, int bins, int threads) {
    const int64_t C = st.channels;
    std::vector<Histogram> h(static_cast<size_t>(C));
    std::vector<double> inv(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
        Histogram& hc = h[static_cast<size_t>(c)];
        hc.lo = 0;
        hc.hi = st.per_channel[static_cast<size_t>(c)].max_abs > 0 ? st.per_channel[static_cast<size_t>(c)].max_abs : 1.0;
        hc.counts.assign(static_cast<size_t>(bins), 0);
        inv[static_cast<size_t>(c)] = bins / hc.hi;
    }
    if (threads <= 0) threads = defaultThreadCount();
    const size_t flat = static_cast<size_t>(C) * static_cast<size_t>(bins + 1);
    const size_t row = static_cast<size_t>(bins) + 1;
    // Each thread counts into its own table of every channel's bins: 32-bit counters (a counter
    // takes at most one value per row), half the cache footprint of 64-bit ones (2,048 channels:
    // 2.1 MB per thread), unless a thread could see 2^32 rows.
    auto countAs = [&](auto zero) {
        using Counter = decltype(zero);
        std::vector<std::vector<Counter>> part(static_cast<size_t>(threads));
        parallelRanges(n, threads, C, [&](int64_t b, int64_t e, int t) {  // ranges start at channel 0
            std::vector<Counter>& counts = part[static_cast<size_t>(t)];
            counts.assign(flat, 0);
            std::vector<int32_t> idx(static_cast<size_t>(C));
            for (int64_t i = b; i < e; i += C) {
                const int64_t m = std::min(C, e - i);  // a last partial row
                absBinsRow(data + i, m, inv.data(), bins, idx.data());
                for (int64_t c = 0; c < m; ++c) ++counts[static_cast<size_t>(idx[static_cast<size_t>(c)])];
            }
        });
        // Channel by channel, the sink dropped (a division per counter here cost more than counting).
        for (const std::vector<Counter>& counts : part) {
            if (counts.empty()) continue;  // a thread without values
            for (size_t c = 0; c < static_cast<size_t>(C); ++c) {
                std::vector<int64_t>& hc = h[c].counts;
                for (size_t k = 0; k < static_cast<size_t>(bins); ++k) hc[k] += static_cast<int64_t>(counts[c * row + k]);
            }
        }
    };
    if (n / C < int64_t{std::numeric_limits<uint32_t>::max()}) countAs(uint32_t{0});
    else countAs(int64_t{0});
    return h;
}

Candidate symmetricCandidate(const std::string& method, int bits, Granularity g, const std::vector<double>& clips) {
    Candidate c;
    c.method = method;
    c.bits = bits;
    c.granularity = g;
    for (double clip : clips) c.params.push_back(symmetricParams(clip, bits));
    return c;
}

}  // namespace

AnalysisPrep prepareAnalysis(const Tensor& t, int64_t channels, Granularity granularity, int threads, const Progress& progress) {
    AnalysisPrep p;
    const float* data = t.data.data();
    const int64_t n = static_cast<int64_t>(t.data.size());
    p.granularity = granularity;
    p.channels = granularity == Granularity::PerChannel && channels > 1 ? channels : 1;
    p.size = n;
    p.stats = computeTensorStats(data, n, p.channels, threads);
    const RangeStats& all = p.stats.all;
    progress.checkCancelled();
    WeightHistograms wh = weightHistograms(data, n, all.min, all.max > all.min ? all.max : all.min + 1, 101, all.max_abs, 2048, threads);
    p.weight_hist = std::move(wh.linear);
    p.log2_hist = std::move(wh.log2);
    p.abs_hists = p.channels > 1 ? perChannelAbsHistograms(data, n, p.stats, 256, threads) : std::vector<Histogram>{std::move(wh.abs)};
    progress.checkCancelled();
    return p;
}

namespace {
void checkBits(int bits) {
    if (bits < 2 || bits > 16) throw std::invalid_argument("bits must be 2..16");
}
}  // namespace

TensorAnalysis analyzeTensor(const Tensor& t, int64_t channels, const AnalysisOptions& o, const Progress& progress) {
    checkBits(o.bits);  // before the preparation's passes over the weights
    return analyzeTensor(t, prepareAnalysis(t, channels, o.granularity, o.threads, progress), o, progress);
}

std::vector<TensorAnalysis> analyzeTensorWidths(const Tensor& t, int64_t channels, const AnalysisOptions& o,
                                                const std::vector<int>& widths, const Progress& progress) {
    for (int b : widths) checkBits(b);
    const AnalysisPrep prep = prepareAnalysis(t, channels, o.granularity, o.threads, progress);
    std::vector<TensorAnalysis> out;
    for (int b : widths) {
        AnalysisOptions ob = o;
        ob.bits = b;
        out.push_back(analyzeTensor(t, prep, ob, progress));
    }
    return out;
}

TensorAnalysis analyzeTensor(const Tensor& t, const AnalysisPrep& prep, const AnalysisOptions& o, const Progress& progress) {
    checkBits(o.bits);
    const float* data = t.data.data();
    const int64_t n = static_cast<int64_t>(t.data.size());
    if (n != prep.size || o.granularity != prep.granularity)
        throw std::invalid_argument("analysis of " + t.name + ": the preparation is for another tensor or granularity");
    TensorAnalysis a;
    a.name = t.name;
    a.shape = t.shape;
    a.channels = prep.channels;
    const bool per_channel = prep.channels > 1;
    a.stats = prep.stats;
    const RangeStats& all = a.stats.all;
    if (all.nan || all.inf)
        a.warnings.push_back(std::to_string(all.nan) + " NaN and " + std::to_string(all.inf) +
                             " Inf values; they are left out of every statistic");
    a.weight_hist = prep.weight_hist;
    a.log2_hist = prep.log2_hist;
    // Per-channel view of the range statistics (a per-tensor analysis is one "channel").
    const std::vector<RangeStats> ranges = per_channel ? a.stats.per_channel : std::vector<RangeStats>{all};
    const std::vector<Histogram>& abs_hists = prep.abs_hists;
    const Granularity g = per_channel ? Granularity::PerChannel : Granularity::PerTensor;
    auto clipsBy = [&](auto fn) {
        std::vector<double> v;
        for (size_t c = 0; c < ranges.size(); ++c) v.push_back(fn(c));
        return v;
    };
    auto& cs = a.candidates;
    cs.push_back(symmetricCandidate("max_abs", o.bits, g, clipsBy([&](size_t c) { return ranges[c].max_abs; })));
    {
        Candidate mm;
        mm.method = "min_max";
        mm.bits = o.bits;
        mm.granularity = g;
        mm.scheme = Scheme::Asymmetric;
        for (const RangeStats& r : ranges) mm.params.push_back(asymmetricParams(r.min, r.max, quantRange(o.bits, Scheme::Asymmetric)));
        cs.push_back(mm);
    }
    const std::pair<const char*, int> pow2s[] = {{"pow2", 0}, {"pow2_m1", -1}, {"pow2_p1", 1}, {"pow2_m2", -2}, {"pow2_p2", 2}};
    for (const auto& [name, delta] : pow2s) {
        Candidate c;
        c.method = name;
        c.bits = o.bits;
        c.granularity = g;
        for (const RangeStats& r : ranges) {
            const int f = bestPrecisionFractionLength(r.max_abs, o.bits) + delta;
            c.fraction_lengths.push_back(f);
            c.params.push_back(powerOfTwoParams(f, o.bits));
        }
        cs.push_back(c);
    }
    cs.push_back(symmetricCandidate("percentile_99.9", o.bits, g, clipsBy([&](size_t c) { return percentileClip(abs_hists[c], 99.9); })));
    cs.push_back(symmetricCandidate("percentile_99.99", o.bits, g, clipsBy([&](size_t c) { return percentileClip(abs_hists[c], 99.99); })));
    // MSE: the histogram's best two clips are evaluated exactly next to max_abs; the best wins.
    // The histogram searches (MSE and KL) per channel, both cores taking half the channels each.
    std::vector<std::vector<double>> finalists(ranges.size());
    std::vector<double> kl_clips(ranges.size());
    auto searchChannels = [&](size_t b, size_t e) {
        for (size_t c = b; c < e; ++c) {
            finalists[c] = mseClipFinalists(abs_hists[c], o.bits, 2);
            kl_clips[c] = klClip(abs_hists[c], o.bits);
        }
    };
    const size_t split = ranges.size() / 2;
    if (split > 0 && (o.threads <= 0 ? defaultThreadCount() : o.threads) > 1) {
        std::thread other([&] { searchChannels(split, ranges.size()); });
        searchChannels(0, split);
        other.join();
    } else {
        searchChannels(0, ranges.size());
    }
    cs.push_back(symmetricCandidate("mse#1", o.bits, g, clipsBy([&](size_t c) { return finalists[c].at(0); })));
    cs.push_back(symmetricCandidate("mse#2", o.bits, g, clipsBy([&](size_t c) { return finalists[c].size() > 1 ? finalists[c][1] : finalists[c][0]; })));
    cs.push_back(symmetricCandidate("kl", o.bits, g, clipsBy([&](size_t c) { return kl_clips[c]; })));
    {
        Candidate f;
        f.method = "float16";
        f.bits = 16;
        f.float16 = true;
        f.granularity = Granularity::PerTensor;
        cs.push_back(f);
    }
    progress.checkCancelled();
    const std::vector<std::string>& known = candidateMethods();
    if (std::find(known.begin(), known.end(), o.method) == known.end()) throw std::invalid_argument("unknown method '" + o.method + "'");
    if (o.only_chosen) {  // the statistics pass per candidate is the cost: skip the ones not asked for
        const bool mse = o.method == "mse";
        std::erase_if(cs, [&](const Candidate& c) {
            return c.method != o.method && !(mse && (c.method == "mse#1" || c.method == "mse#2" || c.method == "max_abs"));
        });
    }
    evaluateCandidates(data, n, a.channels, cs, o.error_histograms, o.error_hist_bins, o.threads, &a.stats);
    // Past 8 bits the per-level counts have served (levels used, entropy) and are dropped: at 16
    // bits they are 65,536 per candidate, 90 MB for the analyses of a VGG16-sized model.
    for (Candidate& c : cs)
        if (c.stats.level_counts.size() > kKeptLevelCounts) std::vector<int64_t>().swap(c.stats.level_counts);
    auto find = [&](const std::string& m) {
        return static_cast<size_t>(std::find_if(cs.begin(), cs.end(), [&](const Candidate& c) { return c.method == m; }) - cs.begin());
    };
    // Resolve "mse": the smallest exact MSE of {mse#1, mse#2, max_abs}, so never worse than max_abs.
    if (find("mse#1") < cs.size()) {
        Candidate best = cs[find("max_abs")];
        for (const char* m : {"mse#1", "mse#2"})
            if (cs[find(m)].stats.mse < best.stats.mse) best = cs[find(m)];
        best.method = "mse";
        cs[find("mse#1")] = best;
        cs.erase(cs.begin() + static_cast<long>(find("mse#2")));
    }
    const size_t chosen = find(o.method);
    a.chosen = static_cast<int>(chosen);
    return a;
}

}  // namespace qs
