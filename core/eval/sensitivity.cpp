#include "eval/sensitivity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include "base/error.h"
#include "base/parallel.h"
#include "engine/float_engine.h"
#include "engine/quantized_engine.h"
#include "quant/quant_analysis.h"

namespace qs {

using nlohmann::json;

const char* baselineName(SensitivityBaseline b) { return b == SensitivityBaseline::Float ? "float" : "int8"; }

namespace {

// Raw sums behind an OutputScore, so batches on several threads add up.
struct ScoreSums {
    int64_t n = 0, correct = 0, agree = 0;
    double signal = 0, noise = 0, kl = 0;

    void add(const ScoreSums& o) {
        n += o.n, correct += o.correct, agree += o.agree;
        signal += o.signal, noise += o.noise, kl += o.kl;
    }
    OutputScore score() const {
        OutputScore s;
        s.n = n;
        if (n == 0) return s;
        s.top1 = static_cast<double>(correct) / static_cast<double>(n);
        s.agreement = static_cast<double>(agree) / static_cast<double>(n);
        s.sqnr_db = noise == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(signal / noise);
        s.kl = kl / static_cast<double>(n);
        return s;
    }
};

Eigen::Index argmax(const RowMatrix& m, Eigen::Index r) {
    Eigen::Index best = 0;
    m.row(r).maxCoeff(&best);
    return best;
}

// Rows of outputs as probability distributions: as they are when the model ends in a softmax
// (non-negative, summing to 1), else through a softmax.
std::vector<double> distribution(const float* row, Eigen::Index k, bool probabilities) {
    std::vector<double> p(static_cast<size_t>(k));
    if (probabilities) {
        for (Eigen::Index i = 0; i < k; ++i) p[static_cast<size_t>(i)] = std::max(0.0, static_cast<double>(row[i]));
    } else {
        const double top = *std::max_element(row, row + k);
        for (Eigen::Index i = 0; i < k; ++i) p[static_cast<size_t>(i)] = std::exp(static_cast<double>(row[i]) - top);
    }
    double sum = 0;
    for (double v : p) sum += v;
    for (double& v : p) v = sum > 0 ? v / sum : 1.0 / static_cast<double>(k);
    return p;
}

bool looksLikeProbabilities(const RowMatrix& out) {
    for (Eigen::Index r = 0; r < out.rows(); ++r) {
        if (out.row(r).minCoeff() < -1e-6f) return false;
        if (std::fabs(out.row(r).sum() - 1.0f) > 1e-3f) return false;
    }
    return out.rows() > 0;
}

// Adds the outputs of rows [first, first + out.rows()) of the reference.
void accumulate(const RowMatrix& out, const ReferenceOutputs& ref, Eigen::Index first, ScoreSums& s) {
    const Eigen::Index k = out.cols();
    for (Eigen::Index r = 0; r < out.rows(); ++r) {
        const Eigen::Index g = first + r;
        const Eigen::Index pred = argmax(out, r), fpred = argmax(ref.float_out, g);
        s.correct += pred == ref.labels[static_cast<size_t>(g)];
        s.agree += pred == fpred;
        for (Eigen::Index c = 0; c < k; ++c) {
            const double v = ref.float_out(g, c), e = v - out(r, c);
            s.signal += v * v;
            s.noise += e * e;
        }
        const std::vector<double> p = distribution(ref.float_out.row(g).data(), k, ref.probabilities);
        const std::vector<double> q = distribution(out.row(r).data(), k, ref.probabilities);
        for (size_t c = 0; c < p.size(); ++c)
            if (p[c] > 0) s.kl += p[c] * std::log(p[c] / std::max(q[c], 1e-12));
        ++s.n;
    }
}

bool isWeightedKind(OpKind k) { return k == OpKind::Dense || k == OpKind::Conv2D || k == OpKind::Depthwise; }

size_t firstOpOf(const OpGraph& g, const std::string& layer) {
    for (size_t i = 0; i < g.ops.size(); ++i)
        if (g.ops[i].layer == layer) return i;
    return g.ops.size();
}

const Op* firstWeightedOp(const OpGraph& g, const std::string& layer) {
    for (const Op& op : g.ops)
        if (op.layer == layer && isWeightedKind(op.kind)) return &op;
    return nullptr;
}

int64_t kernelElements(const Layer& l) {
    int64_t n = 0;
    for (const Tensor& t : l.weights)
        if (t.shape.size() >= 2) n += t.size();
    return n;
}

std::string grainLabel(Granularity g) { return g == Granularity::PerChannel ? "pc" : "pt"; }

json scoreJson(const OutputScore& s) {
    return {{"n", s.n}, {"top1", s.top1}, {"agreement", s.agreement},
            {"sqnr_db", std::isfinite(s.sqnr_db) ? json(s.sqnr_db) : json(nullptr)}, {"kl", s.kl}};
}

OutputScore scoreFromJson(const json& j, const std::string& source, const std::string& where) {
    if (!j.is_object()) throw Error(source, where, "must be an object");
    OutputScore s;
    try {
        s.n = j.at("n").get<int64_t>();
        s.top1 = j.at("top1").get<double>();
        s.agreement = j.at("agreement").get<double>();
        s.sqnr_db = j.at("sqnr_db").is_null() ? std::numeric_limits<double>::infinity() : j.at("sqnr_db").get<double>();
        s.kl = j.at("kl").get<double>();
    } catch (const json::exception& e) {
        throw Error(source, where, std::string("bad score: ") + e.what());
    }
    return s;
}

}  // namespace

ReferenceOutputs referenceOutputs(const Model& model, RowMatrix rows, std::vector<int32_t> labels, const Shape& fallback_input,
                                  int threads) {
    if (threads <= 0) threads = defaultThreadCount();
    ReferenceOutputs ref;
    const FloatEngine engine(model, fallback_input);
    std::vector<RowMatrix> parts(static_cast<size_t>((rows.rows() + 255) / 256));
    parallelBatches(rows.rows(), 256, threads, Progress::none(), 0, rows.rows(), [&](int, int64_t b0, int64_t bn) {
        parts[static_cast<size_t>(b0 / 256)] = engine.forward(rows.middleRows(b0, bn));
    });
    const Eigen::Index k = parts.empty() ? 0 : parts[0].cols();
    ref.float_out.resize(rows.rows(), k);
    for (size_t i = 0; i < parts.size(); ++i) ref.float_out.middleRows(static_cast<Eigen::Index>(i * 256), parts[i].rows()) = parts[i];
    ref.rows = std::move(rows);
    ref.labels = std::move(labels);
    ref.probabilities = looksLikeProbabilities(ref.float_out);
    return ref;
}

OutputScore scoreOutputs(const RowMatrix& out, const ReferenceOutputs& ref) {
    ScoreSums s;
    accumulate(out, ref, 0, s);
    return s.score();
}

namespace {

// The integer engine's score of a quantized model on the reference images, on all threads.
OutputScore scoreModel(const QuantizedModel& qm, const ReferenceOutputs& ref, int threads, const Progress& progress) {
    if (threads <= 0) threads = defaultThreadCount();
    std::vector<ScoreSums> part(static_cast<size_t>(threads));
    const int64_t n = ref.rows.rows();
    parallelBatches(n, 128, threads, progress, 0, n, [&](int th, int64_t b0, int64_t bn) {
        accumulate(runQuantizedOutput(qm, QuantizedRun::Integer, ref.rows.middleRows(b0, bn)), ref, b0, part[static_cast<size_t>(th)]);
    });
    ScoreSums all;
    for (const ScoreSums& p : part) all.add(p);
    return all.score();
}

}  // namespace

OutputScore scoreConfig(const Model& model, const GraphCalibration& calibration, const QuantConfig& config, const ReferenceOutputs& ref,
                        int threads, int64_t* bytes, const Progress& progress) {
    const QuantizedModel qm = quantizeCalibrated(model, calibration, config);
    if (bytes) *bytes = qm.quantized_weight_bytes;
    return scoreModel(qm, ref, threads, progress);
}

std::vector<GridSetting> sensitivityGrid(const LayerQuant& base) {
    // Per weight width, the variants worth measuring: int16 activations where 8- or 4-bit
    // weights leave the activations the larger error; bias correction where the weight rounding
    // shifts the outputs' means, and GPTQ rounding with it (4 and 2 bits); at 2 bits int16
    // activations never pay.
    struct Variant {
        int bits;
        Precision precision;
        int act;
        bool bc, gptq;
    };
    // int16 activations and 16-bit weights per channel only: the activation width, not the
    // weight granularity, is what they change.
    const Variant variants[] = {{8, Precision::Int8, 8, false, false},   {8, Precision::Int8, 16, false, false},
                                {4, Precision::Int4, 8, false, false},   {4, Precision::Int4, 16, false, false},
                                {4, Precision::Int4, 8, true, false},    {4, Precision::Int4, 8, true, true},
                                {2, Precision::Int2, 8, false, false},   {2, Precision::Int2, 8, true, false},
                                {2, Precision::Int2, 8, true, true},     {16, Precision::Int16, 16, false, false}};
    std::vector<GridSetting> grid;
    for (const Variant& v : variants)
        for (Granularity g : {Granularity::PerChannel, Granularity::PerTensor}) {
            if (v.act == 16 && g == Granularity::PerTensor) continue;
            GridSetting s;
            s.quant = base;
            s.quant.precision = v.precision;
            s.quant.granularity = g;
            s.quant.activation_bits = v.bits == 16 ? 0 : v.act;
            s.quant.bias_correction = v.bc;
            s.quant.gptq = v.gptq;
            s.label = "w" + std::to_string(v.bits) + "/" + grainLabel(g) + "/a" + std::to_string(v.act) + (v.bc ? "/bc" : "") + (v.gptq ? "/gptq" : "");
            grid.push_back(std::move(s));
        }
    // The float fall-back: float16 weights, float activations. float32 is not measured: it keeps
    // the accuracy of float16 to within noise at twice the size, so no search would choose it.
    GridSetting f;
    f.quant = base;
    f.quant.precision = Precision::Float16;
    f.quant.activation_bits = 0;
    f.label = "float16";
    grid.push_back(std::move(f));
    return grid;
}

std::string bestWeightMethod(const Tensor& kernel, int64_t channels, int bits, Granularity granularity) {
    AnalysisOptions o;
    o.bits = bits;
    o.granularity = granularity;
    o.error_histograms = false;
    o.threads = 1;
    const TensorAnalysis a = analyzeTensor(kernel, channels, o);
    const std::vector<std::string>& allowed = weightMethods();
    std::string best = "max_abs";
    double best_mse = std::numeric_limits<double>::infinity();
    for (const Candidate& c : a.candidates) {
        if (c.float16 || std::find(allowed.begin(), allowed.end(), c.method) == allowed.end()) continue;
        if (c.stats.mse < best_mse) best_mse = c.stats.mse, best = c.method;
    }
    return best;
}

std::vector<std::string> quantizableLayers(const Model& model, const OpGraph& graph) {
    std::vector<std::string> out;
    for (const Layer& l : model.layers)
        if (layerKernel(l) && firstWeightedOp(graph, l.name)) out.push_back(l.name);
    return out;
}

const SensitivityCell* SensitivityTable::find(const std::string& layer, const std::string& setting) const {
    for (const SensitivityCell& c : cells)
        if (c.layer == layer && c.setting == setting) return &c;
    return nullptr;
}

double bestDropAt(const SensitivityTable& t, const std::string& layer, int bits) {
    double best = std::numeric_limits<double>::quiet_NaN();
    for (const SensitivityCell& c : t.cells)
        if (c.layer == layer && isInteger(c.quant.precision) && weightBits(c.quant.precision) == bits) {
            const double drop = 100 * (t.baseline_score.top1 - c.score.top1);
            if (!(drop >= best)) best = drop;
        }
    return best;
}

QuantConfig baselineConfig(const SensitivityTable& t) {
    QuantConfig c;
    c.defaults = t.defaults;
    if (t.baseline == SensitivityBaseline::Float) c.defaults.precision = Precision::Float32;
    c.calibration_samples = static_cast<int>(t.calibration_samples);
    return c;
}

ReferenceOutputs firstImages(const ReferenceOutputs& ref, int64_t n) {
    n = std::min<int64_t>(n, ref.rows.rows());
    ReferenceOutputs r;
    r.rows = ref.rows.topRows(n);
    r.float_out = ref.float_out.topRows(n);
    r.labels.assign(ref.labels.begin(), ref.labels.begin() + n);
    r.probabilities = ref.probabilities;
    return r;
}

SensitivityTable measureSensitivity(const Model& model, const GraphCalibration& calibration, const ReferenceOutputs& all_search,
                                    const SensitivityOptions& options, const Progress& progress) {
    const bool subset = options.max_images > 0 && options.max_images < all_search.rows.rows();
    const ReferenceOutputs head = subset ? firstImages(all_search, options.max_images) : ReferenceOutputs{};
    const ReferenceOutputs& search = subset ? head : all_search;
    if (options.shards < 1 || options.shard < 0 || options.shard >= options.shards)
        throw Error(model.source_path, "--shard", "shard " + std::to_string(options.shard) + " of " + std::to_string(options.shards));
    const int threads = options.threads > 0 ? options.threads : defaultThreadCount();
    SensitivityTable t;
    t.model = model.source_path;
    t.baseline = options.baseline;
    t.defaults = options.defaults;
    t.samples = search.rows.rows();
    t.calibration_samples = calibration.samples;
    t.shard = options.shard, t.shards = options.shards;
    t.layers = quantizableLayers(model, calibration.graph);
    for (const std::string& name : t.layers) t.layer_weights.push_back(kernelElements(*model.findLayer(name)));
    if (t.layers.empty()) throw Error(model.source_path, "", "no layer with a kernel to quantize (Dense, Conv2D, DepthwiseConv2D, SeparableConv2D)");
    if (search.rows.rows() == 0) throw Error(model.source_path, "", "sensitivity needs at least one search image");

    const QuantConfig base_cfg = baselineConfig(t);
    const QuantizedModel baseline = quantizeCalibrated(model, calibration, base_cfg);
    t.baseline_bytes = baseline.quantized_weight_bytes;
    t.float_bytes = baseline.float_weight_bytes;
    t.float_top1 = scoreOutputs(search.float_out, search).top1;
    t.baseline_score = scoreModel(baseline, search, threads, Progress::none());

    const int64_t n = search.rows.rows();
    const int64_t batches = (n + options.batch - 1) / options.batch;
    std::vector<size_t> mine;
    for (size_t li = 0; li < t.layers.size(); ++li)
        if (static_cast<int>(li % static_cast<size_t>(options.shards)) == options.shard) mine.push_back(li);
    const int64_t total = static_cast<int64_t>(mine.size()) * batches;
    int64_t done_layers = 0;
    for (size_t li : mine) {
        const std::string& layer = t.layers[li];
        const Op* wop = firstWeightedOp(calibration.graph, layer);
        const size_t first = firstOpOf(calibration.graph, layer);
        std::vector<GridSetting> grid = sensitivityGrid(options.defaults);
        // Where GPTQ cannot run (a GEMM deeper than 1024: no Hessian), its cells would measure the
        // bias-corrected nearest rounding a second time under a GPTQ label: left out.
        if (!gptqApplies(*wop))
            grid.erase(std::remove_if(grid.begin(), grid.end(), [](const GridSetting& s) { return s.quant.gptq; }), grid.end());
        std::vector<QuantizedModel> models;
        std::map<std::pair<int, Granularity>, std::string> methods;  // one analysis per width and granularity
        for (GridSetting& s : grid) {
            progress.checkCancelled();
            if (isInteger(s.quant.precision)) {
                const std::pair<int, Granularity> key{weightBits(s.quant.precision), s.quant.granularity};
                if (!methods.count(key)) methods[key] = bestWeightMethod(wop->kernel, wop->outChannels(), key.first, key.second);
                s.quant.weight_method = methods[key];
            }
            QuantConfig cfg = base_cfg;
            cfg.layers[layer] = s.quant;
            models.push_back(quantizeCalibrated(model, calibration, cfg, &baseline));
        }
        std::vector<std::vector<ScoreSums>> sums(static_cast<size_t>(threads), std::vector<ScoreSums>(grid.size()));
        const Progress inner = progress.stage(done_layers * batches, batches, total);
        parallelBatches(n, options.batch, threads, inner, 0, n, [&](int th, int64_t b0, int64_t bn) {
            const RowMatrix x = search.rows.middleRows(b0, bn);
            const QuantizedTrace trace = traceQuantized(baseline, x);
            for (size_t s = 0; s < grid.size(); ++s)
                accumulate(runQuantizedFrom(models[s], trace, first), search, b0, sums[static_cast<size_t>(th)][s]);
        });
        for (size_t s = 0; s < grid.size(); ++s) {
            ScoreSums all;
            for (int th = 0; th < threads; ++th) all.add(sums[static_cast<size_t>(th)][s]);
            SensitivityCell c;
            c.layer = layer;
            c.setting = grid[s].label;
            c.quant = grid[s].quant;
            c.score = all.score();
            c.model_bytes = models[s].quantized_weight_bytes;
            t.cells.push_back(std::move(c));
        }
        ++done_layers;
    }
    return t;
}

// ---- JSON, merge, text ---------------------------------------------------------------------------

json sensitivityJson(const SensitivityTable& t) {
    json cells = json::array();
    for (const SensitivityCell& c : t.cells)
        cells.push_back({{"layer", c.layer}, {"setting", c.setting}, {"quant", layerQuantToJson(c.quant)}, {"score", scoreJson(c.score)},
                         {"model_bytes", c.model_bytes}});
    return {{"format", "quantscope-sensitivity"},
            {"version", 1},
            {"model", t.model},
            {"baseline", baselineName(t.baseline)},
            {"defaults", layerQuantToJson(t.defaults)},
            {"samples", t.samples},
            {"calibration_samples", t.calibration_samples},
            {"float_top1", t.float_top1},
            {"baseline_score", scoreJson(t.baseline_score)},
            {"baseline_bytes", t.baseline_bytes},
            {"float_bytes", t.float_bytes},
            {"layers", t.layers},
            {"layer_weights", t.layer_weights},
            {"shard", t.shard},
            {"shards", t.shards},
            {"cells", cells}};
}

SensitivityTable sensitivityFromJson(const json& j, const std::string& source) {
    if (!j.is_object() || j.value("format", "") != "quantscope-sensitivity")
        throw Error(source, "format", "not a sensitivity table (\"format\": \"quantscope-sensitivity\")");
    if (j.value("version", 0) != 1) throw Error(source, "version", "this Quantscope reads version 1");
    SensitivityTable t;
    try {
        t.model = j.at("model").get<std::string>();
        const std::string b = j.at("baseline").get<std::string>();
        if (b != "int8" && b != "float") throw Error(source, "baseline", "'" + b + "' is not int8 or float");
        t.baseline = b == "float" ? SensitivityBaseline::Float : SensitivityBaseline::Int8;
        t.defaults = layerQuantFromJson(j.at("defaults"), LayerQuant{}, source, "defaults");
        t.samples = j.at("samples").get<int64_t>();
        t.calibration_samples = j.at("calibration_samples").get<int64_t>();
        t.float_top1 = j.at("float_top1").get<double>();
        t.baseline_score = scoreFromJson(j.at("baseline_score"), source, "baseline_score");
        t.baseline_bytes = j.at("baseline_bytes").get<int64_t>();
        t.float_bytes = j.at("float_bytes").get<int64_t>();
        t.layers = j.at("layers").get<std::vector<std::string>>();
        t.layer_weights = j.at("layer_weights").get<std::vector<int64_t>>();
        t.shard = j.at("shard").get<int>();
        t.shards = j.at("shards").get<int>();
        const json& cells = j.at("cells");
        if (!cells.is_array()) throw Error(source, "cells", "must be an array");
        for (size_t i = 0; i < cells.size(); ++i) {
            const std::string where = "cells[" + std::to_string(i) + "]";
            SensitivityCell c;
            c.layer = cells[i].at("layer").get<std::string>();
            c.setting = cells[i].at("setting").get<std::string>();
            c.quant = layerQuantFromJson(cells[i].at("quant"), LayerQuant{}, source, where + ".quant");
            c.score = scoreFromJson(cells[i].at("score"), source, where + ".score");
            c.model_bytes = cells[i].at("model_bytes").get<int64_t>();
            if (std::find(t.layers.begin(), t.layers.end(), c.layer) == t.layers.end())
                throw Error(source, where + ".layer", "'" + c.layer + "' is not in \"layers\"");
            t.cells.push_back(std::move(c));
        }
    } catch (const json::exception& e) {
        throw Error(source, "", std::string("bad sensitivity table: ") + e.what());
    }
    if (t.layer_weights.size() != t.layers.size()) throw Error(source, "layer_weights", "needs one entry per layer");
    return t;
}

SensitivityTable mergeSensitivity(const std::vector<SensitivityTable>& parts, const std::string& source) {
    if (parts.empty()) throw Error(source, "", "nothing to merge");
    SensitivityTable t = parts[0];
    t.cells.clear();
    std::vector<bool> shard_seen(static_cast<size_t>(std::max(1, t.shards)), false);
    for (const SensitivityTable& p : parts) {
        if (p.model != t.model || p.baseline != t.baseline || p.samples != t.samples || p.layers != t.layers || p.shards != t.shards ||
            !(p.defaults == t.defaults))
            throw Error(source, "", "shard " + std::to_string(p.shard) + " is from another run (model, baseline, images, layers or shard count differ)");
        if (shard_seen[static_cast<size_t>(p.shard)]) throw Error(source, "", "shard " + std::to_string(p.shard) + " given twice");
        shard_seen[static_cast<size_t>(p.shard)] = true;
        if (p.baseline_score.n > 0) t.baseline_score = p.baseline_score;
        t.cells.insert(t.cells.end(), p.cells.begin(), p.cells.end());
    }
    for (size_t s = 0; s < shard_seen.size(); ++s)
        if (!shard_seen[s]) throw Error(source, "", "shard " + std::to_string(s) + " of " + std::to_string(t.shards) + " is missing");
    // Layer-major in model order, grid order within a layer: the same table one run gives.
    std::stable_sort(t.cells.begin(), t.cells.end(), [&](const SensitivityCell& a, const SensitivityCell& b) {
        const auto ia = std::find(t.layers.begin(), t.layers.end(), a.layer) - t.layers.begin();
        const auto ib = std::find(t.layers.begin(), t.layers.end(), b.layer) - t.layers.begin();
        return ia < ib;
    });
    t.shard = 0, t.shards = 1;
    return t;
}

std::string sensitivityCsv(const SensitivityTable& t) {
    std::ostringstream out;
    out << "layer,setting,precision,granularity,weight_method,activation_bits,top1,agreement,sqnr_db,kl,model_bytes\n";
    char buf[256];
    for (const SensitivityCell& c : t.cells) {
        std::snprintf(buf, sizeof buf, "%s,%s,%s,%s,%s,%d,%.6f,%.6f,%.3f,%.6g,%lld\n", c.layer.c_str(), c.setting.c_str(),
                      precisionName(c.quant.precision), granularityName(c.quant.granularity), c.quant.weight_method.c_str(),
                      isInteger(c.quant.precision) ? activationBits(c.quant) : 32, c.score.top1, c.score.agreement, c.score.sqnr_db,
                      c.score.kl, static_cast<long long>(c.model_bytes));
        out << buf;
    }
    return out.str();
}

std::string sensitivityText(const SensitivityTable& t) {
    std::ostringstream out;
    char buf[256];
    std::snprintf(buf, sizeof buf, "baseline: every other layer %s; %lld search images; float top-1 %.4f, baseline top-1 %.4f (%lld bytes)\n",
                  t.baseline == SensitivityBaseline::Float ? "float32" : "int8", static_cast<long long>(t.samples), t.float_top1,
                  t.baseline_score.top1, static_cast<long long>(t.baseline_bytes));
    out << buf;
    std::snprintf(buf, sizeof buf, "\n%-24s %-12s %-16s %8s %8s %8s %9s %11s\n", "layer", "setting", "weight method", "top-1", "agree", "SQNR dB",
                  "KL", "bytes");
    out << buf;
    for (const SensitivityCell& c : t.cells) {
        std::snprintf(buf, sizeof buf, "%-24s %-12s %-16s %8.4f %8.4f %8.2f %9.2e %11lld\n", c.layer.c_str(), c.setting.c_str(),
                      isInteger(c.quant.precision) ? c.quant.weight_method.c_str() : "-", c.score.top1, c.score.agreement, c.score.sqnr_db,
                      c.score.kl, static_cast<long long>(c.model_bytes));
        out << buf;
    }
    return out.str();
}

}  // namespace qs
