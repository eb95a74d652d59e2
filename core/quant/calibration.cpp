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
    // A group is a run of floor(i / levels) or one more bins, so across all thresholds the runs
    // [start, end) are few: each run's term total * log(total / nz) is computed once, on first
    // use, rather than once per threshold (per-channel analysis, 256-bin histograms at 8 bits,
    // spent 70% of its time in these logs). Same expression, so the same bits. Kept only where
    // the table is small; with few levels the thresholds take few logs anyway.
    const size_t row = nb / static_cast<size_t>(levels) + 2;  // run lengths 0 .. row - 1
    std::vector<double> run_terms(nb * row <= (size_t{1} << 16) ? nb * row : 0, std::numeric_limits<double>::quiet_NaN());
    auto runTerm = [&](size_t start, size_t end, int nz) {
        const double total = mass[end] - mass[start];
        if (run_terms.empty()) return total * std::log(total / nz);
        double& t = run_terms[start * row + (end - start)];
        if (std::isnan(t)) t = total * std::log(total / nz);
        return t;
    };
    double best_kl = std::numeric_limits<double>::infinity();
    int best_i = nbins;
    for (int i = levels; i <= nbins; ++i) {
        const size_t last = static_cast<size_t>(i - 1);
        const double fold = suffix[static_cast<size_t>(i)], c_last = static_cast<double>(h.counts[last]);
        const double ps = mass[static_cast<size_t>(i)] + fold, qs = mass[static_cast<size_t>(i)];
        if (ps <= 0 || qs <= 0) continue;
        const double last_fold = c_last > 0 ? fold : 0.0;  // the fold lands in A only if bin i - 1 is non-empty
        double plogp = clogc[last] + (c_last > 0 ? (c_last + fold) * std::log(c_last + fold) : 0.0);
        double plogq = 0;
        // Group j covers bins [floor(j * i / levels), floor((j + 1) * i / levels)); levels is a
        // power of two, so the integer shift gives exactly TensorRT's floor(j * (i / levels)).
        size_t start = 0;
        for (int j = 0; j < levels - 1; ++j) {
            const size_t end = (static_cast<size_t>(j + 1) * static_cast<size_t>(i)) >> (bits - 1);
            const int nz = nonzero[end] - nonzero[start];
            if (nz > 0) plogq += runTerm(start, end, nz);
            start = end;
        }
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
    }
    return h.lo + w * best_i;
}

namespace {

constexpr int kMseSteps = 128;  // clips h.hi * s / 128, s = 1..128

// One bin's squared error at every clip, added into err: the steps are the inner loop so it
// vectorises (each err[s] still takes the bins in order, so the sums are those of a loop over
// bins per clip). Per-channel analysis ran this 128 x 256 times per channel, one clip at a time.
__attribute__((target_clones("avx2", "default")))
void addBinErrors(double v, double count, const double* clip, const double* noise, double* err) {
    for (int s = 0; s < kMseSteps; ++s) {
        const double d = v - clip[s];
        err[s] += (v > clip[s] ? d * d : noise[s]) * count;
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
