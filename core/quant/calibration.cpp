#include "quant/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "quant/quant_params.h"

namespace qs {

double percentileClip(const Histogram& abs_hist, double pct) {
    return histogramQuantile(abs_hist, std::clamp(pct, 0.0, 100.0) / 100.0);
}

// TensorRT's entropy calibration: for each threshold i (in bins) from `levels` to nbins, the
// reference P is the first i bins with everything beyond folded into bin i - 1, the candidate Q
// merges those i bins into `levels` groups and spreads each group's mass evenly over its
// non-empty bins; the threshold with the smallest KL(P || Q) wins. Empty Q bins where P has
// mass (only bin i - 1, through the fold) count with q = 1e-12, as TensorRT smooths them.
//
// Written per group rather than per bin: inside group j every non-empty bin has the same q
// (total_j / nonzero_j), so with prefix sums of the counts, of the non-empty bins and of
// c log c, one threshold costs O(levels) and one log per group instead of O(i) logs:
//   KL = (1/ps) [sum_A p log p - sum_A p log q] + (P_A / ps) (log qs - log ps)
// over A, the non-empty bins below i (exactly those with p > 0 and q > 0).
double klClip(const Histogram& h, int bits) {
    const int nbins = static_cast<int>(h.counts.size());
    const int levels = 1 << (bits - 1);  // TensorRT: 128 for int8
    const double w = h.binWidth();
    if (levels >= nbins || nbins == 0) return h.hi;
    const size_t nb = static_cast<size_t>(nbins);
    std::vector<double> mass(nb + 1, 0.0), clogc(nb + 1, 0.0), suffix(nb + 1, static_cast<double>(h.above));
    std::vector<int> nonzero(nb + 1, 0);
    for (size_t k = 0; k < nb; ++k) {
        const double c = static_cast<double>(h.counts[k]);
        mass[k + 1] = mass[k] + c;
        clogc[k + 1] = clogc[k] + (c > 0 ? c * std::log(c) : 0.0);
        nonzero[k + 1] = nonzero[k] + (c > 0);
    }
    for (size_t k = nb; k-- > 0;) suffix[k] = suffix[k + 1] + static_cast<double>(h.counts[k]);
    // Group j of threshold i covers bins [floor(j * i / levels), floor((j + 1) * i / levels));
    // levels is a power of two, so the integer shift gives exactly TensorRT's floor(j * (i / levels)).
    const int shift = bits - 1;
    auto groupEnd = [shift](int j, int i) { return (static_cast<size_t>(j + 1) * static_cast<size_t>(i)) >> shift; };
    // A group is a run of floor(i / levels) or one more bins, so across all thresholds the runs
    // [start, end) are few: each run's term total * log(total / nz) is computed once rather than
    // once per threshold (per-channel analysis, 256-bin histograms at 8 bits, spent 70% of its
    // time in these logs). Same expression, so the same bits. With many levels (8 bits) every
    // run of up to ceil(nbins / levels) bins is tabulated up front (an empty run's term is 0, as
    // a skipped one adds nothing), so the group sums need no test; with few levels the
    // thresholds take few logs, and runs are computed on first use where the table is small.
    const size_t max_run = (nb + static_cast<size_t>(levels) - 1) / static_cast<size_t>(levels);
    const size_t row = max_run + 1;  // run lengths 0 .. max_run
    const bool eager = levels >= 64 && nb * row <= (size_t{1} << 16);
    const bool lazy = !eager && nb * row <= (size_t{1} << 16);
    auto term = [&](size_t start, size_t end) {
        const int nz = nonzero[end] - nonzero[start];
        const double total = mass[end] - mass[start];
        return nz > 0 ? total * std::log(total / nz) : 0.0;
    };
    std::vector<double> run_terms(eager || lazy ? nb * row : 0, eager ? 0.0 : std::numeric_limits<double>::quiet_NaN());
    if (eager)
        for (size_t start = 0; start < nb; ++start)
            for (size_t len = 1; len <= max_run && start + len <= nb; ++len) run_terms[start * row + len] = term(start, start + len);
    auto runTerm = [&](size_t start, size_t end) {
        if (run_terms.empty()) return term(start, end);
        double& t = run_terms[start * row + (end - start)];
        if (std::isnan(t)) t = term(start, end);
        return t;
    };
    double best_kl = std::numeric_limits<double>::infinity();
    int best_i = nbins;
    // KL for threshold i, given its first levels - 1 groups' sum of run terms (in group order)
    // and where its last group starts.
    auto consider = [&](int i, double plogq, size_t start) {
        const size_t last = static_cast<size_t>(i - 1);
        const double fold = suffix[static_cast<size_t>(i)], c_last = static_cast<double>(h.counts[last]);
        const double ps = mass[static_cast<size_t>(i)] + fold, qs = mass[static_cast<size_t>(i)];
        if (ps <= 0 || qs <= 0) return;
        const double last_fold = c_last > 0 ? fold : 0.0;  // the fold lands in A only if bin i - 1 is non-empty
        const double plogp = clogc[last] + (c_last > 0 ? (c_last + fold) * std::log(c_last + fold) : 0.0);
        const int nz = nonzero[static_cast<size_t>(i)] - nonzero[start];  // the last group takes the fold
        if (nz > 0) {
            const double total = mass[static_cast<size_t>(i)] - mass[start];
            plogq += (total + last_fold) * std::log(total / nz);
        }
        const double pa = qs + last_fold;
        double kl = (plogp - plogq) / ps + pa / ps * (std::log(qs) - std::log(ps));
        if (c_last == 0 && fold > 0) {
            const double pk = fold / ps;
            kl += pk * std::log(pk / 1e-12);
        }
        if (kl < best_kl) {
            best_kl = kl;
            best_i = i;
        }
    };
    if (eager) {
        // Four thresholds at a time: each keeps its own sum, adding its groups in order (the same
        // bits as one at a time), and the four chains of additions overlap instead of waiting
        // on each other (one threshold's 127 dependent additions were its time).
        constexpr int kWays = 4;
        for (int i0 = levels; i0 <= nbins; i0 += kWays) {
            int is[kWays];
            for (int u = 0; u < kWays; ++u) is[u] = std::min(i0 + u, nbins);  // past the end: a repeat, not used
            double sum[kWays] = {};
            size_t start[kWays] = {};
            for (int j = 0; j < levels - 1; ++j)
                for (int u = 0; u < kWays; ++u) {
                    const size_t end = groupEnd(j, is[u]);
                    sum[u] += run_terms[start[u] * row + (end - start[u])];
                    start[u] = end;
                }
            for (int u = 0; u < kWays && i0 + u <= nbins; ++u) consider(i0 + u, sum[u], start[u]);
        }
    } else {
        for (int i = levels; i <= nbins; ++i) {
            double plogq = 0;
            size_t start = 0;
            for (int j = 0; j < levels - 1; ++j) {
                const size_t end = groupEnd(j, i);
                if (nonzero[end] - nonzero[start] > 0) plogq += runTerm(start, end);
                start = end;
            }
            consider(i, plogq, start);
        }
    }
    return h.lo + w * best_i;
}

namespace {

constexpr int kMseSteps = 128;  // clips h.hi * s / 128, s = 1..128

// One bin's squared error at every clip, added into err: the steps are the inner loop so it
// vectorises (each err[s] still takes the bins in order, so the sums are those of a loop over
// bins per clip). Per-channel analysis ran this 128 x 256 times per channel, one clip at a time.
// Both sides of the choice are computed and one is selected, so GCC vectorises it (at -O3, see
// core/CMakeLists.txt; the branchy form stayed scalar and was 20% of a per-channel analysis).
__attribute__((target_clones("avx2", "default")))
void addBinErrors(double v, double count, const double* __restrict clip, const double* __restrict noise, double* __restrict err) {
    for (int s = 0; s < kMseSteps; ++s) {
        const double d = v - clip[s];
        const double excess = d * d, inside = noise[s];
        err[s] += (v > clip[s] ? excess : inside) * count;
    }
}

}  // namespace

std::vector<double> mseClipFinalists(const Histogram& h, int bits, int finalists) {
    const double qmax = quantRange(bits, Scheme::Symmetric).qmax;
    const double w = h.binWidth();
    double clip[kMseSteps], noise[kMseSteps], err[kMseSteps] = {};
    for (int s = 1; s <= kMseSteps; ++s) {
        clip[s - 1] = h.hi * s / kMseSteps;
        const double step = clip[s - 1] / qmax;
        noise[s - 1] = step * step / 12.0;  // uniform rounding noise inside the range
    }
    for (size_t i = 0; i < h.counts.size(); ++i)
        if (h.counts[i]) addBinErrors(h.lo + w * (static_cast<double>(i) + 0.5), static_cast<double>(h.counts[i]), clip, noise, err);
    std::vector<std::pair<double, double>> scored;  // (estimated mse, clip)
    for (int s = 0; s < kMseSteps; ++s) scored.emplace_back(err[s], clip[s]);
    std::sort(scored.begin(), scored.end());
    std::vector<double> out;
    for (int i = 0; i < finalists && i < static_cast<int>(scored.size()); ++i) out.push_back(scored[static_cast<size_t>(i)].second);
    return out;
}

}  // namespace qs
