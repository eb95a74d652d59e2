#include "calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "quant_params.h"

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
        const double merged = static_cast<double>(i) / levels;
        for (int j = 0; j < levels; ++j) {
            const size_t start = static_cast<size_t>(std::floor(j * merged));
            const size_t end = j == levels - 1 ? static_cast<size_t>(i) : static_cast<size_t>(std::floor((j + 1) * merged));
            const int nz = nonzero[end] - nonzero[start];
            if (nz == 0) continue;
            const double total = mass[end] - mass[start];
            plogq += (total + (j == levels - 1 ? last_fold : 0.0)) * std::log(total / nz);
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

std::vector<double> mseClipFinalists(const Histogram& h, int bits, int finalists) {
    const double qmax = quantRange(bits, Scheme::Symmetric).qmax;
    const double w = h.binWidth();
    std::vector<std::pair<double, double>> scored;  // (estimated mse, clip)
    const int steps = 128;
    for (int s = 1; s <= steps; ++s) {
        const double clip = h.hi * s / steps;
        const double step = clip / qmax;
        double err = 0;
        for (size_t i = 0; i < h.counts.size(); ++i) {
            if (!h.counts[i]) continue;
            const double v = h.lo + w * (static_cast<double>(i) + 0.5);
            const double e2 = v > clip ? (v - clip) * (v - clip) : step * step / 12.0;
            err += e2 * static_cast<double>(h.counts[i]);
        }
        scored.emplace_back(err, clip);
    }
    std::sort(scored.begin(), scored.end());
    std::vector<double> out;
    for (int i = 0; i < finalists && i < static_cast<int>(scored.size()); ++i) out.push_back(scored[static_cast<size_t>(i)].second);
    return out;
}

}  // namespace qs
