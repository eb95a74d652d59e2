#include "quant/analysis_report.h"

#include <cmath>
#include <cstdio>

#include "quant/tensor_stats.h"

namespace qs {

using nlohmann::json;

std::vector<LayerAnalysis> analyzeModel(const Model& model, const AnalysisOptions& options, bool all_tensors,
                                        const Progress& progress) {
    return analyzeModelWidths(model, options, {options.bits}, all_tensors, progress).front();
}

std::vector<std::vector<LayerAnalysis>> analyzeModelWidths(const Model& model, const AnalysisOptions& options,
                                                           const std::vector<int>& widths, bool all_tensors,
                                                           const Progress& progress) {
    int64_t total = 0, done = 0;
    for (const Layer& l : model.layers)
        for (const Tensor& t : l.weights)
            if (all_tensors || t.shape.size() >= 2) total += t.size();
    std::vector<std::vector<LayerAnalysis>> out(widths.size());
    for (const Layer& l : model.layers) {
        std::vector<LayerAnalysis> la(widths.size(), LayerAnalysis{l.name, {}});
        for (const Tensor& t : l.weights) {
            if (!all_tensors && t.shape.size() < 2) continue;
            progress.checkCancelled();
            std::vector<TensorAnalysis> per_width = analyzeTensorWidths(t, channelCount(l, t), options, widths, progress);
            for (size_t w = 0; w < widths.size(); ++w) la[w].tensors.push_back(std::move(per_width[w]));
            done += t.size();
            progress.report(done, total);
        }
        for (size_t w = 0; w < widths.size(); ++w)
            if (!la[w].tensors.empty()) out[w].push_back(std::move(la[w]));
    }
    return out;
}

namespace {

json finiteOrNull(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json candidateJson(const Candidate& c) {
    json scale, zp;
    if (c.float16) {
        scale = nullptr;
        zp = nullptr;
    } else if (c.params.size() == 1) {
        scale = c.params[0].scale;
        zp = c.params[0].zero_point;
    } else {
        scale = json::array();
        zp = json::array();
        for (const QuantParams& p : c.params) {
            scale.push_back(p.scale);
            zp.push_back(p.zero_point);
        }
    }
    const CandidateStats& s = c.stats;
    json j = {{"method", c.method},
              {"bits", c.bits},
              {"granularity", granularityName(c.granularity)},
              {"scheme", c.float16 ? "float16" : c.scheme == Scheme::Symmetric ? "symmetric" : "asymmetric"},
              {"scale", scale},
              {"zero_point", zp},
              {"mse", s.mse},
              {"rmse", s.rmse},
              {"sqnr_db", finiteOrNull(s.sqnr_db)},
              {"max_abs_error", s.max_abs_error},
              {"mean_error", s.mean_error},
              {"pct_below_precision", s.pct_below_precision},
              {"pct_beyond_range", s.pct_beyond_range},
              {"levels_used", s.levels_used < 0 ? json(nullptr) : json(s.levels_used)},
              {"entropy_bits_per_weight", s.entropy_bits_per_weight},
              {"entropy_coded_bytes", s.entropy_coded_bytes},
              {"packed_bytes", s.packed_bytes}};
    if (!c.fraction_lengths.empty())
        j["fraction_length"] = c.fraction_lengths.size() == 1 ? json(c.fraction_lengths[0]) : json(c.fraction_lengths);
    return j;
}

}  // namespace

json analysisJson(const std::vector<LayerAnalysis>& layers, const AnalysisOptions& o) {
    json jl = json::array();
    for (const LayerAnalysis& la : layers) {
        json tensors = json::array();
        for (const TensorAnalysis& t : la.tensors) {
            json cands = json::array();
            for (const Candidate& c : t.candidates) cands.push_back(candidateJson(c));
            tensors.push_back({{"name", t.name},
                               {"shape", t.shape},
                               {"channels", t.channels},
                               {"min", t.stats.all.min},
                               {"max", t.stats.all.max},
                               {"nan_count", t.stats.all.nan},
                               {"inf_count", t.stats.all.inf},
                               {"float32_bytes", 4 * (t.stats.all.finite + t.stats.all.nan + t.stats.all.inf)},
                               {"candidates", cands},
                               {"chosen", t.candidates[static_cast<size_t>(t.chosen)].method},
                               {"warnings", t.warnings}});
        }
        jl.push_back({{"name", la.layer}, {"tensors", tensors}});
    }
    return {{"bits", o.bits}, {"granularity", granularityName(o.granularity)}, {"method", o.method}, {"layers", jl}};
}

std::string analysisCsv(const std::vector<LayerAnalysis>& layers) {
    std::string out =
        "layer,tensor,method,chosen,bits,granularity,scale,zero_point,mse,rmse,sqnr_db,max_abs_error,mean_error,"
        "pct_below_precision,pct_beyond_range,levels_used,entropy_bits_per_weight,packed_bytes\n";
    char line[1024];
    for (const LayerAnalysis& la : layers)
        for (const TensorAnalysis& t : la.tensors)
            for (size_t i = 0; i < t.candidates.size(); ++i) {
                const Candidate& c = t.candidates[i];
                const CandidateStats& s = c.stats;
                // Per-channel scales do not fit a cell: the CSV gives the largest.
                double scale = 0;
                int zp = 0;
                for (const QuantParams& p : c.params) scale = std::max(scale, p.scale);
                if (c.params.size() == 1) zp = c.params[0].zero_point;
                std::snprintf(line, sizeof line, "\"%s\",\"%s\",%s,%d,%d,%s,%.9g,%d,%.9g,%.9g,%.6g,%.9g,%.9g,%.6g,%.6g,%lld,%.6g,%lld\n",
                              la.layer.c_str(), t.name.c_str(), c.method.c_str(), static_cast<int>(i) == t.chosen, c.bits,
                              granularityName(c.granularity), scale, zp, s.mse, s.rmse, s.sqnr_db, s.max_abs_error, s.mean_error,
                              s.pct_below_precision, s.pct_beyond_range, static_cast<long long>(s.levels_used),
                              s.entropy_bits_per_weight, static_cast<long long>(s.packed_bytes));
                out += line;
            }
    return out;
}

std::string analysisText(const std::vector<LayerAnalysis>& layers, bool only_chosen) {
    std::string out;
    char line[1024];
    for (const LayerAnalysis& la : layers)
        for (const TensorAnalysis& t : la.tensors) {
            std::snprintf(line, sizeof line, "\n%s  %s  [%s]  range [%.6g, %.6g]%s\n", la.layer.c_str(), t.name.c_str(),
                          t.channels > 1 ? ("per-channel x" + std::to_string(t.channels)).c_str() : "per-tensor", t.stats.all.min,
                          t.stats.all.max, t.stats.all.nan || t.stats.all.inf ? "  (has NaN/Inf)" : "");
            out += line;
            out += "    method             scale        MSE          SQNR dB  max err      %below  %beyond  levels  H bits  bytes\n";
            for (size_t i = 0; i < t.candidates.size(); ++i) {
                if (only_chosen && static_cast<int>(i) != t.chosen) continue;
                const Candidate& c = t.candidates[i];
                const CandidateStats& s = c.stats;
                double scale = 0;
                for (const QuantParams& p : c.params) scale = std::max(scale, p.scale);
                std::snprintf(line, sizeof line, "  %c %-17s  %-11.5g  %-11.5g  %7.2f  %-11.5g  %6.2f  %7.3f  %6lld  %6.3f  %lld\n",
                              static_cast<int>(i) == t.chosen ? '*' : ' ', c.method.c_str(), c.float16 ? 0.0 : scale, s.mse,
                              std::isfinite(s.sqnr_db) ? s.sqnr_db : 999.99, s.max_abs_error, s.pct_below_precision,
                              s.pct_beyond_range, static_cast<long long>(s.levels_used), s.entropy_bits_per_weight,
                              static_cast<long long>(s.packed_bytes));
                out += line;
            }
        }
    return out;
}

}  // namespace qs
