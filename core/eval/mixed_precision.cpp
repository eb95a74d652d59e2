#include "eval/mixed_precision.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <limits>

#include "base/error.h"
#include "base/parallel.h"
#include "data/array_dataset.h"

namespace qs {

using nlohmann::json;

namespace {

// A cell's estimated loss comes from the KL divergence of its outputs, not its top-1. Top-1 on a
// few thousand images moves by about 0.3 points between two equally good configs (only the
// images whose answer flips count), so single-layer top-1 drops below a point are mostly noise:
// on fmnist_dwsep the table had 4-bit depthwise and pointwise cells "gaining" 0.15-0.35 points
// while their agreement with float fell 1-3 points, and a descent that starts from each layer's
// apparently best cell summed those into configs 1.2 points below int8 at 6.6 bits per weight.
// KL is smooth (every image counts) and adds up over layers for small, independent errors (it
// is quadratic in the output perturbation), so the estimate is points-per-nat x the sum of the
// layers' KL increases, the factor fitted on the table's own cells that lose between 0 and 20
// points (least squares through the origin). Only the scale depends on the fit: the descent and
// the knapsack rank by KL either way.
constexpr double kDefaultPointsPerNat = 30.0;  // the tables of fmnist_dwsep and fmnist_cnn fit 30.7 and 40.0

// A layer's choices: grid cells with their estimated loss against the baseline.
struct Option {
    const SensitivityCell* cell;
    double loss;    // points, estimated from the KL increase
    int64_t bytes;  // the cell's model bytes (differences between options are the layer's)
};

std::vector<std::vector<Option>> layerOptions(const SensitivityTable& t) {
    std::vector<std::vector<Option>> out(t.layers.size());
    const double per_nat = pointsPerNat(t);
    for (const SensitivityCell& c : t.cells) {
        const size_t li = static_cast<size_t>(std::find(t.layers.begin(), t.layers.end(), c.layer) - t.layers.begin());
        out[li].push_back({&c, estimatedLoss(t, c, per_nat), c.model_bytes});
    }
    for (size_t li = 0; li < out.size(); ++li)
        if (out[li].empty()) throw Error(t.model, "layer " + t.layers[li], "the sensitivity table has no cells for this layer (a missing shard?)");
    return out;
}

QuantConfig configOf(const SensitivityTable& t, const std::vector<std::vector<Option>>& opts, const std::vector<size_t>& pick) {
    QuantConfig c = baselineConfig(t);
    for (size_t li = 0; li < t.layers.size(); ++li) c.layers[t.layers[li]] = opts[li][pick[li]].cell->quant;
    return c;
}

// A layer's options on the lower convex hull of (bytes, loss), largest first: the options a
// marginal-analysis descent passes through (one on the hull's far side of another is never the
// cheapest way to save those bytes).
std::vector<size_t> hull(const std::vector<Option>& o) {
    std::vector<size_t> idx(o.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return o[a].bytes != o[b].bytes ? o[a].bytes > o[b].bytes : o[a].loss < o[b].loss; });
    // Start at the most accurate option (ties: the smallest); larger, less accurate ones never pay.
    size_t start = 0;
    for (size_t i = 1; i < idx.size(); ++i)
        if (o[idx[i]].loss <= o[idx[start]].loss) start = i;
    std::vector<size_t> h{idx[start]};
    for (size_t i = start + 1; i < idx.size(); ++i) {
        const Option& c = o[idx[i]];
        if (c.bytes == o[h.back()].bytes) continue;
        // Drop hull points that the new one makes non-convex (loss per byte must rise along the hull).
        while (h.size() >= 2) {
            const Option &a = o[h[h.size() - 2]], &b = o[h.back()];
            const double ab = (b.loss - a.loss) / static_cast<double>(a.bytes - b.bytes);
            const double ac = (c.loss - a.loss) / static_cast<double>(a.bytes - c.bytes);
            if (ac <= ab) h.pop_back();
            else break;
        }
        h.push_back(idx[i]);
    }
    return h;
}

// The greedy descent: every layer from its most accurate option down its hull, one step at a
// time, the step losing least per byte saved first. Each step's picks.
std::vector<std::vector<size_t>> greedyPath(const std::vector<std::vector<Option>>& opts) {
    std::vector<std::vector<size_t>> hulls;
    for (const auto& o : opts) hulls.push_back(hull(o));
    std::vector<size_t> at(opts.size(), 0), pick(opts.size());
    for (size_t li = 0; li < opts.size(); ++li) pick[li] = hulls[li][0];
    std::vector<std::vector<size_t>> path{pick};
    for (;;) {
        double best = std::numeric_limits<double>::infinity();
        size_t best_layer = 0;
        for (size_t li = 0; li < opts.size(); ++li) {
            if (at[li] + 1 >= hulls[li].size()) continue;
            const Option &cur = opts[li][hulls[li][at[li]]], &next = opts[li][hulls[li][at[li] + 1]];
            const double ratio = (next.loss - cur.loss) / static_cast<double>(cur.bytes - next.bytes);
            if (ratio < best) best = ratio, best_layer = li;
        }
        if (!std::isfinite(best)) break;
        pick[best_layer] = hulls[best_layer][++at[best_layer]];
        path.push_back(pick);
    }
    return path;
}

// The exact programme over the measured losses (HAWQ-V3 solves the same with an integer linear
// programme): per layer one option, total cost within `capacity`, least total loss; a dynamic
// programme over the cost in `buckets` steps, each option's cost rounded up so the result
// always fits. Empty when nothing fits.
std::vector<size_t> knapsack(const std::vector<std::vector<Option>>& opts, const std::function<double(size_t, size_t)>& cost,
                             double capacity, int buckets = 4000) {
    if (capacity < 0) return {};
    const double unit = std::max(capacity / buckets, 1e-12);
    const size_t B = static_cast<size_t>(buckets);
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> dp(B + 1, inf), next(B + 1);
    dp[0] = 0;
    std::vector<std::vector<int32_t>> choice(opts.size(), std::vector<int32_t>(B + 1, -1));
    for (size_t li = 0; li < opts.size(); ++li) {
        std::fill(next.begin(), next.end(), inf);
        for (size_t k = 0; k < opts[li].size(); ++k) {
            const double units = std::ceil(cost(li, k) / unit - 1e-9);
            if (units > static_cast<double>(B)) continue;
            const size_t c = static_cast<size_t>(std::max(0.0, units));
            for (size_t b = 0; b + c <= B; ++b) {
                if (dp[b] == inf) continue;
                const double v = dp[b] + opts[li][k].loss;
                if (v < next[b + c]) next[b + c] = v, choice[li][b + c] = static_cast<int32_t>(k);
            }
        }
        dp.swap(next);
    }
    size_t end = static_cast<size_t>(std::min_element(dp.begin(), dp.end()) - dp.begin());
    if (dp[end] == inf) return {};
    std::vector<size_t> pick(opts.size());
    for (size_t li = opts.size(); li-- > 0;) {
        const size_t k = static_cast<size_t>(choice[li][end]);
        pick[li] = k;
        end -= static_cast<size_t>(std::max(0.0, std::ceil(cost(li, k) / unit - 1e-9)));  // the bucket before this layer
    }
    return pick;
}

// Which path steps to evaluate: all of them, or `cap` spread evenly (first and last included).
std::vector<size_t> thinned(size_t n, int cap) {
    std::vector<size_t> out;
    if (n <= static_cast<size_t>(cap)) {
        for (size_t i = 0; i < n; ++i) out.push_back(i);
        return out;
    }
    for (int k = 0; k < cap; ++k) out.push_back(static_cast<size_t>(std::llround(static_cast<double>(k) * static_cast<double>(n - 1) / (cap - 1))));
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

constexpr int kRefineEvaluations = 24;

// A layer's settings worth trying instead of option `cur` in the refinement, most accurate (by
// the table) first: more accurate ones, or with `shrink` (a drop budget) smaller ones.
std::vector<size_t> alternatives(const std::vector<Option>& o, size_t cur, bool shrink) {
    std::vector<size_t> out;
    for (size_t k = 0; k < o.size(); ++k)
        if (k != cur && (shrink ? o[k].bytes < o[cur].bytes : o[k].loss < o[cur].loss)) out.push_back(k);
    std::sort(out.begin(), out.end(), [&](size_t x, size_t y) { return o[x].loss < o[y].loss; });
    return out;
}

bool meets(const SearchBudget& b, const SearchPoint& p, double float_top1);

// The front on the search images (sorted by size, each point more accurate than every smaller
// one) and the budget's pick: for a drop, the smallest within it; for a size, the most
// accurate within it.
void choose(SearchResult& r, const SearchBudget& budget) {
    std::vector<size_t> order(r.points.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const SearchPoint &pa = r.points[a], &pb = r.points[b];
        return pa.bytes != pb.bytes ? pa.bytes < pb.bytes : pa.search.top1 > pb.search.top1;
    });
    r.front.clear();
    double best = -1;
    for (size_t i : order)
        if (r.points[i].search.top1 > best) best = r.points[i].search.top1, r.front.push_back(i);
    r.chosen = -1;
    for (size_t i : r.front) {
        if (!meets(budget, r.points[i], r.float_search_top1)) continue;
        r.chosen = static_cast<int>(i);
        if (budget.kind == SearchBudget::MaxDrop) break;  // else the front rises with size: the last that fits is the most accurate
    }
}

bool meets(const SearchBudget& b, const SearchPoint& p, double float_top1) {
    switch (b.kind) {
        case SearchBudget::MaxDrop: return 100 * (float_top1 - p.search.top1) <= b.value + 1e-9;
        case SearchBudget::BitsPerWeight: return p.bits_per_weight <= b.value + 1e-9;
        case SearchBudget::MaxBytes: return static_cast<double>(p.bytes) <= b.value;
    }
    return false;
}

json pointJson(const SearchPoint& p, const SensitivityTable& t) {
    json settings = json::object();
    for (size_t li = 0; li < t.layers.size() && li < p.settings.size(); ++li) settings[t.layers[li]] = p.settings[li];
    auto score = [](const OutputScore& s) -> json {
        if (s.n == 0) return nullptr;
        return {{"n", s.n}, {"top1", s.top1}, {"agreement", s.agreement}, {"sqnr_db", std::isfinite(s.sqnr_db) ? json(s.sqnr_db) : json(nullptr)},
                {"kl", s.kl}};
    };
    return {{"origin", p.origin}, {"bytes", p.bytes}, {"bits_per_weight", p.bits_per_weight}, {"estimated_drop", p.estimated_drop},
            {"search", score(p.search)}, {"heldout", score(p.heldout)}, {"settings", settings}};
}

}  // namespace

TestSplit splitForSearch(int64_t n, int64_t search_images) {
    TestSplit s;
    if (n < 2) throw Error("", "", "a search needs at least 2 labelled images (search and held-out)");
    s.search_count = search_images > 0 ? std::min(search_images, n - 1) : n / 2;
    s.heldout_begin = s.search_count;
    s.heldout_count = n - s.search_count;
    return s;
}

SearchSetup prepareSearch(const Model& model, const std::string& data_path, const ImageDataset& test, const Preprocessing& pre,
                          int64_t calibration_samples, int64_t search_images, const Progress& progress) {
    if (static_cast<int64_t>(test.labels.size()) != test.n) throw Error(test.source, "", "the test set has no labels");
    SearchSetup s;
    s.split = splitForSearch(test.n, search_images);
    const Shape shape{test.rows, test.cols, test.channels};
    const RowMatrix calib = calibrationRows(data_path, test, pre, calibration_samples, &s.calibration_source);
    s.calibration = calibrateModel(model, calib, shape, progress);
    auto reference = [&](int64_t begin, int64_t count) {
        std::vector<int32_t> labels(test.labels.begin() + begin, test.labels.begin() + begin + count);
        return referenceOutputs(model, preprocessRows(test, pre, begin, count), std::move(labels), shape);
    };
    s.search = reference(s.split.search_begin, s.split.search_count);
    s.heldout = reference(s.split.heldout_begin, s.split.heldout_count);
    return s;
}

double pointsPerNat(const SensitivityTable& t) {
    double num = 0, den = 0;
    for (const SensitivityCell& c : t.cells) {
        const double dk = c.score.kl - t.baseline_score.kl, drop = 100 * (t.baseline_score.top1 - c.score.top1);
        if (dk > 0 && drop > 0 && drop < 20) num += drop * dk, den += dk * dk;
    }
    return den > 0 && num > 0 ? num / den : kDefaultPointsPerNat;
}

double estimatedLoss(const SensitivityTable& t, const SensitivityCell& c, double points_per_nat) {
    return points_per_nat * (c.score.kl - t.baseline_score.kl);
}

double bitsPerWeight(const SensitivityTable& t, const QuantConfig& config) {
    double bits = 0, weights = 0;
    for (size_t li = 0; li < t.layers.size(); ++li) {
        const double w = static_cast<double>(t.layer_weights[li]);
        bits += w * weightBits(config.forLayer(t.layers[li]).precision);
        weights += w;
    }
    return weights > 0 ? bits / weights : 0;
}

SearchResult searchMixedPrecision(const Model& model, const GraphCalibration& calibration, const SensitivityTable& table,
                                  const ReferenceOutputs& search, const ReferenceOutputs& heldout, const SearchBudget& budget,
                                  const SearchOptions& options, const Progress& progress) {
    if (table.shards != 1) throw Error(table.model, "", "the sensitivity table is one shard of several: merge the shards first");
    SearchResult r;
    r.float_search_top1 = scoreOutputs(search.float_out, search).top1;
    r.float_heldout_top1 = heldout.rows.rows() > 0 ? scoreOutputs(heldout.float_out, heldout).top1 : 0;
    const std::vector<std::vector<Option>> opts = layerOptions(table);
    const std::vector<std::vector<size_t>> path = greedyPath(opts);
    const double base_drop = 100 * (table.float_top1 - table.baseline_score.top1);  // both on the table's images

    // The configs to evaluate: the all-int8 baseline (the default eval config); the exact
    // programme's picks for the budget and for a ladder of sizes between the smallest and the
    // largest model; then the greedy path, thinned, up to max_evaluations.
    std::vector<SearchPoint> todo;
    std::vector<std::vector<size_t>> picks;  // per point, each layer's option (empty for the baseline)
    {
        SearchPoint p;
        p.origin = table.baseline == SensitivityBaseline::Float ? "float32 baseline" : "int8 baseline";
        p.config = baselineConfig(table);
        p.settings.assign(table.layers.size(), table.baseline == SensitivityBaseline::Float ? "float32" : "baseline");
        p.estimated_drop = base_drop;
        p.bits_per_weight = bitsPerWeight(table, p.config);
        todo.push_back(std::move(p));
        picks.emplace_back();
    }
    const auto pointFor = [&](const std::vector<size_t>& pick, const std::string& origin) {
        SearchPoint p;
        p.origin = origin;
        p.config = configOf(table, opts, pick);
        p.estimated_drop = base_drop;
        for (size_t li = 0; li < opts.size(); ++li) {
            const Option& o = opts[li][pick[li]];
            p.settings.push_back(o.cell->setting);
            p.estimated_drop += o.loss;
        }
        p.bits_per_weight = bitsPerWeight(table, p.config);
        return p;
    };
    std::set<std::vector<size_t>> seen;
    auto add = [&](const std::vector<size_t>& pick, const std::string& origin) {
        if (pick.empty() || !seen.insert(pick).second) return;
        todo.push_back(pointFor(pick, origin));
        picks.push_back(pick);
    };
    int64_t min_total = table.baseline_bytes, max_total = table.baseline_bytes;
    std::vector<int64_t> min_bytes(opts.size());
    for (size_t li = 0; li < opts.size(); ++li) {
        int64_t lo = opts[li][0].bytes, hi = lo;
        for (const Option& o : opts[li]) lo = std::min(lo, o.bytes), hi = std::max(hi, o.bytes);
        min_bytes[li] = lo;
        min_total += lo - table.baseline_bytes, max_total += hi - table.baseline_bytes;
    }
    const auto byte_cost = [&](size_t li, size_t k) { return static_cast<double>(opts[li][k].bytes - min_bytes[li]); };
    double all_weights = 0;
    for (int64_t w : table.layer_weights) all_weights += static_cast<double>(w);
    const auto bit_cost = [&](size_t li, size_t k) {
        return static_cast<double>(table.layer_weights[li]) * weightBits(opts[li][k].cell->quant.precision) / std::max(1.0, all_weights);
    };
    if (budget.kind == SearchBudget::BitsPerWeight) add(knapsack(opts, bit_cost, budget.value), "exact at the budget");
    if (budget.kind == SearchBudget::MaxBytes) add(knapsack(opts, byte_cost, budget.value - static_cast<double>(min_total)), "exact at the budget");
    constexpr int kLadder = 16;
    for (int k = 0; k < kLadder; ++k) {
        const double size = static_cast<double>(min_total) * std::pow(static_cast<double>(max_total) / static_cast<double>(min_total), k / (kLadder - 1.0));
        add(knapsack(opts, byte_cost, size - static_cast<double>(min_total)), "exact " + std::to_string(static_cast<long long>(size)) + " B");
    }
    const int room = std::max(2, options.max_evaluations - static_cast<int>(todo.size()));
    for (size_t step : thinned(path.size(), room)) add(path[step], "path " + std::to_string(step));
    const int64_t total = static_cast<int64_t>(todo.size()) + 8 + kRefineEvaluations;
    int64_t done = 0;
    auto evaluate = [&](SearchPoint& p) {
        progress.checkCancelled();
        p.search = scoreConfig(model, calibration, p.config, search, options.threads, &p.bytes);
        progress.report(++done, total);
    };
    for (SearchPoint& p : todo) evaluate(p);
    r.points = std::move(todo);
    choose(r, budget);

    // Refinement on real evaluations: sums of sensitivities miss how layers interact, so from
    // the pick, change one layer at a time to another setting that the table says is better
    // (for a size budget: more accurate and still within it; for a drop: smaller), keeping a
    // change only when the real search top-1 confirms it.
    int refine_left = kRefineEvaluations;
    const bool shrink = budget.kind == SearchBudget::MaxDrop;
    for (int round = 0; round < 3 && r.chosen >= 0 && refine_left > 0; ++round) {
        std::vector<size_t> cur = picks[static_cast<size_t>(r.chosen)];
        if (cur.empty()) break;  // the baseline has no table options to move between
        bool improved = false;
        for (size_t li = 0; li < opts.size() && refine_left > 0; ++li) {
            int tried = 0;
            for (size_t k : alternatives(opts[li], cur[li], shrink)) {
                if (tried == 2 || refine_left == 0) break;
                std::vector<size_t> pick = cur;
                pick[li] = k;
                if (!seen.insert(pick).second) continue;
                SearchPoint p = pointFor(pick, "refined " + std::to_string(kRefineEvaluations - refine_left));
                if (budget.kind == SearchBudget::BitsPerWeight && p.bits_per_weight > budget.value + 1e-9) continue;
                ++tried, --refine_left;
                evaluate(p);
                const SearchPoint& best_now = r.points[static_cast<size_t>(r.chosen)];
                const bool better = meets(budget, p, r.float_search_top1) &&
                                    (shrink ? p.bytes < best_now.bytes : p.search.top1 > best_now.search.top1);
                r.points.push_back(std::move(p));
                picks.push_back(pick);
                if (better) {
                    cur = pick;
                    r.chosen = static_cast<int>(r.points.size() - 1);
                    improved = true;
                }
            }
        }
        choose(r, budget);
        if (!improved) break;
    }
    if (r.chosen < 0) {
        r.note = budget.kind == SearchBudget::MaxDrop ? "no evaluated config is within the drop on the search images"
                                                      : "no evaluated config fits the budget";
    } else {
        const SearchPoint& c = r.points[static_cast<size_t>(r.chosen)];
        char buf[200];
        std::snprintf(buf, sizeof buf, "%s: %lld bytes, %.2f bits per weight, search top-1 %.4f (float %.4f)", c.origin.c_str(),
                      static_cast<long long>(c.bytes), c.bits_per_weight, c.search.top1, r.float_search_top1);
        r.note = buf;
    }
    // The held-out images score the front and the pick.
    if (heldout.rows.rows() > 0)
        for (size_t i : r.front) {
            progress.checkCancelled();
            r.points[i].heldout = scoreConfig(model, calibration, r.points[i].config, heldout, options.threads);
        }
    progress.report(total, total);
    return r;
}

json searchJson(const SearchResult& r, const SensitivityTable& t) {
    json points = json::array();
    for (const SearchPoint& p : r.points) points.push_back(pointJson(p, t));
    return {{"format", "quantscope-pareto"},
            {"version", 1},
            {"model", t.model},
            {"float", {{"search_top1", r.float_search_top1}, {"heldout_top1", r.float_heldout_top1}, {"bytes", t.float_bytes}}},
            {"points", points},
            {"front", r.front},
            {"chosen", r.chosen < 0 ? json(nullptr) : json(r.chosen)},
            {"note", r.note}};
}

}  // namespace qs
