#include "eval/mixed_precision.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "base/parallel.h"

namespace qs {

using nlohmann::json;

namespace {

constexpr double kKlWeight = 10.0;  // points of top-1 per nat of mean KL: only breaks ties

// A layer's choices: grid cells with their estimated loss against the baseline.
struct Option {
    const SensitivityCell* cell;
    double loss;    // points
    int64_t bytes;  // the cell's model bytes (differences between options are the layer's)
};

std::vector<std::vector<Option>> layerOptions(const SensitivityTable& t) {
    std::vector<std::vector<Option>> out(t.layers.size());
    for (const SensitivityCell& c : t.cells) {
        const size_t li = static_cast<size_t>(std::find(t.layers.begin(), t.layers.end(), c.layer) - t.layers.begin());
        const double loss = 100 * (t.baseline_score.top1 - c.score.top1) + kKlWeight * (c.score.kl - t.baseline_score.kl);
        out[li].push_back({&c, loss, c.model_bytes});
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

// The greedy descent: from every layer's most accurate option to every layer's smallest, one
// change at a time, cheapest loss per byte first. Each step's picks.
std::vector<std::vector<size_t>> greedyPath(const std::vector<std::vector<Option>>& opts) {
    std::vector<size_t> pick(opts.size());
    for (size_t li = 0; li < opts.size(); ++li) {
        const auto& o = opts[li];
        pick[li] = static_cast<size_t>(std::min_element(o.begin(), o.end(), [](const Option& a, const Option& b) {
                                           return a.loss != b.loss ? a.loss < b.loss : a.bytes < b.bytes;
                                       }) - o.begin());
    }
    std::vector<std::vector<size_t>> path{pick};
    for (;;) {
        double best = std::numeric_limits<double>::infinity();
        size_t best_layer = 0, best_option = 0;
        for (size_t li = 0; li < opts.size(); ++li) {
            const Option& cur = opts[li][pick[li]];
            for (size_t k = 0; k < opts[li].size(); ++k) {
                const Option& o = opts[li][k];
                if (o.bytes >= cur.bytes) continue;
                const double ratio = (o.loss - cur.loss) / static_cast<double>(cur.bytes - o.bytes);
                if (ratio < best) best = ratio, best_layer = li, best_option = k;
            }
        }
        if (!std::isfinite(best)) break;
        pick[best_layer] = best_option;
        path.push_back(pick);
    }
    return path;
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
    const double base_drop = 100 * (r.float_search_top1 - table.baseline_score.top1);

    // The configs to evaluate: the all-int8 baseline (the default eval config) and the path.
    std::vector<SearchPoint> todo;
    {
        SearchPoint p;
        p.origin = table.baseline == SensitivityBaseline::Float ? "float32 baseline" : "int8 baseline";
        p.config = baselineConfig(table);
        p.settings.assign(table.layers.size(), table.baseline == SensitivityBaseline::Float ? "float32" : "baseline");
        p.estimated_drop = base_drop;
        todo.push_back(std::move(p));
    }
    for (size_t step : thinned(path.size(), std::max(2, options.max_evaluations - 1))) {
        SearchPoint p;
        p.origin = "path " + std::to_string(step);
        p.config = configOf(table, opts, path[step]);
        p.estimated_drop = base_drop;
        for (size_t li = 0; li < opts.size(); ++li) {
            const Option& o = opts[li][path[step][li]];
            p.settings.push_back(o.cell->setting);
            p.estimated_drop += o.loss;
        }
        todo.push_back(std::move(p));
    }
    const int64_t total = static_cast<int64_t>(todo.size()) + 8;
    int64_t done = 0;
    for (SearchPoint& p : todo) {
        progress.checkCancelled();
        p.search = scoreConfig(model, calibration, p.config, search, options.threads, &p.bytes);
        p.bits_per_weight = bitsPerWeight(table, p.config);
        progress.report(++done, total);
    }
    r.points = std::move(todo);

    // The front on the search images: sorted by size, each point more accurate than every
    // smaller one.
    std::vector<size_t> order(r.points.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const SearchPoint &pa = r.points[a], &pb = r.points[b];
        return pa.bytes != pb.bytes ? pa.bytes < pb.bytes : pa.search.top1 > pb.search.top1;
    });
    double best = -1;
    for (size_t i : order)
        if (r.points[i].search.top1 > best) best = r.points[i].search.top1, r.front.push_back(i);

    // The budget's pick: for a drop, the smallest within it; for a size, the most accurate within it.
    for (size_t i : r.front) {
        if (!meets(budget, r.points[i], r.float_search_top1)) continue;
        if (budget.kind == SearchBudget::MaxDrop) {
            r.chosen = static_cast<int>(i);
            break;
        }
        r.chosen = static_cast<int>(i);  // the front rises with size: the last that fits is the most accurate
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
