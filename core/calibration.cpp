#include "calibration.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "quant_params.h"

namespace qs {

double percentileClip(const Histogram& abs_hist, double pct) {
    return histogramQuantile(abs_hist, std::clamp(pct, 0.0, 100.0) / 100.0);
}

double klClip(const Histogram& h, int bits) {
    const int nbins = static_cast<int>(h.counts.size());
    const int levels = 1 << (bits - 1);  // TensorRT: 128 for int8
    const double w = h.binWidth();
    if (levels >= nbins || nbins == 0) return h.hi;
    double best_kl = std::numeric_limits<double>::infinity();
    int best_i = nbins;
    std::vector<double> p, q;
    std::vector<double> suffix(static_cast<size_t>(nbins) + 1, static_cast<double>(h.above));  // mass from bin i on
    for (int i = nbins - 1; i >= 0; --i) suffix[static_cast<size_t>(i)] = suffix[static_cast<size_t>(i) + 1] + static_cast<double>(h.counts[static_cast<size_t>(i)]);
    for (int i = levels; i <= nbins; ++i) {
        // Reference: the first i bins, with everything beyond folded into the last one.
        p.assign(h.counts.begin(), h.counts.begin() + i);
        p[static_cast<size_t>(i - 1)] += suffix[static_cast<size_t>(i)];
        // Candidate: the same i bins merged into `levels` groups, each group's mass spread
        // evenly over its non-empty bins.
        q.assign(static_cast<size_t>(i), 0.0);
        const double merged = static_cast<double>(i) / levels;
        for (int j = 0; j < levels; ++j) {
            const int start = static_cast<int>(std::floor(j * merged));
            const int end = j == levels - 1 ? i : static_cast<int>(std::floor((j + 1) * merged));
            double total = 0;
            int nonzero = 0;
            for (int k = start; k < end; ++k) {
                total += static_cast<double>(h.counts[static_cast<size_t>(k)]);
                nonzero += h.counts[static_cast<size_t>(k)] != 0;
            }
            for (int k = start; k < end; ++k)
                if (h.counts[static_cast<size_t>(k)] != 0) q[static_cast<size_t>(k)] = total / nonzero;
        }
        const double ps = std::accumulate(p.begin(), p.end(), 0.0), qs_ = std::accumulate(q.begin(), q.end(), 0.0);
        if (ps <= 0 || qs_ <= 0) continue;
        double kl = 0;
        for (size_t k = 0; k < p.size(); ++k) {
            if (p[k] <= 0) continue;
            const double pk = p[k] / ps;
            const double qk = q[k] > 0 ? q[k] / qs_ : 1e-12;  // TensorRT smooths empty q bins
            kl += pk * std::log(pk / qk);
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
