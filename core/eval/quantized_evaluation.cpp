#include "eval/quantized_evaluation.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "engine/float_engine.h"
#include "engine/quantized_engine.h"

namespace qs {

namespace {

double secondsSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

nlohmann::json resultJson(const EvalResult& r) {
    return {{"top1", r.top1}, {"top5", r.top5}, {"correct", r.top1_correct}, {"n", r.n}, {"classes", r.classes}, {"confusion", r.confusion}};
}

nlohmann::json finiteOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

std::vector<double> perOpSqnr(const QuantizedModel& qm, QuantizedRun how, const RowMatrix& samples) {
    const size_t n_ops = qm.graph.ops.size();
    std::vector<double> signal(n_ops, 0), noise(n_ops, 0);
    for (Eigen::Index b0 = 0; b0 < samples.rows(); b0 += 32) {
        const RowMatrix x = samples.middleRows(b0, std::min<Eigen::Index>(32, samples.rows() - b0));
        const std::vector<Act> ref = runFloatGraph(qm.graph, x, true);
        const std::vector<RowMatrix> q = runQuantized(qm, how, x, true);
        for (size_t i = 0; i < n_ops; ++i) {
            const RowMatrix& r = ref[i].x;
            for (Eigen::Index k = 0; k < r.size() && k < q[i].size(); ++k) {
                const double v = r.data()[k], e = v - q[i].data()[k];
                signal[i] += v * v;
                noise[i] += e * e;
            }
        }
    }
    std::vector<double> out(n_ops);
    for (size_t i = 0; i < n_ops; ++i)
        out[i] = noise[i] == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(signal[i] / noise[i]);
    return out;
}

Comparison compareQuantized(const Model& model, const QuantConfig& config, const ImageDataset& test, const RowMatrix& calibration,
                            const Preprocessing& pre, const CompareOptions& options, const Progress& progress) {
    Comparison c;
    const Shape fallback = {test.rows, test.cols, test.channels};
    auto t0 = std::chrono::steady_clock::now();
    const QuantizedModel qm = quantizeModel(model, config, calibration, fallback, progress.stage(0, 100), options.threads);
    c.seconds_calibration = secondsSince(t0);
    t0 = std::chrono::steady_clock::now();
    if (options.float_result) {
        c.float_result = *options.float_result;
        c.seconds_float = options.float_seconds;
    } else {
        const FloatEngine fe(model, fallback);
        c.float_result = evaluateFloat(fe, test, pre, progress.stage(100, 250), options.threads);
        c.seconds_float = secondsSince(t0);
    }
    const int64_t in_size = prod(qm.graph.input_shape);
    t0 = std::chrono::steady_clock::now();
    c.quantized = evaluate([&qm](const RowMatrix& x) { return runQuantizedOutput(qm, QuantizedRun::Integer, x); }, in_size, test, pre,
                           progress.stage(350, 250), options.threads);
    c.seconds_quantized = secondsSince(t0);
    if (options.fake_quant) {
        t0 = std::chrono::steady_clock::now();
        c.fake_quant = evaluate([&qm](const RowMatrix& x) { return runQuantizedOutput(qm, QuantizedRun::FakeQuant, x); }, in_size, test,
                                pre, progress.stage(600, 350), options.threads);
        c.seconds_fake_quant = secondsSince(t0);
        c.agreement_fake_quant = agreement(c.quantized, c.fake_quant);
    }
    c.agreement_float = agreement(c.quantized, c.float_result);
    const RowMatrix sq = preprocessSpread(test, pre, options.sqnr_samples);
    c.sqnr_samples = sq.rows();
    const std::vector<double> sqnr = perOpSqnr(qm, QuantizedRun::Integer, sq);
    progress.report(1000, 1000);
    for (size_t i = 0; i < qm.graph.ops.size(); ++i) {
        const Op& op = qm.graph.ops[i];
        const QuantizedOp& o = qm.ops[i];
        OpReport r;
        r.name = op.name;
        r.layer = op.layer;
        r.kind = opKindName(op.kind);
        r.domain = o.hybrid ? "hybrid" : domainName(o.domain);
        r.precision = precisionName(o.precision);
        r.weight_bits = op.hasWeights() ? o.weight_bits : 0;
        r.sqnr_db = sqnr[i];
        r.weight_bytes = o.weight_bytes;
        r.range_lo = o.range_lo, r.range_hi = o.range_hi;
        r.scale = o.domain == Domain::Float ? 0 : o.out.scale;
        r.zero_point = o.out.zero_point;
        c.ops.push_back(r);
    }
    c.float_bytes = qm.float_weight_bytes;
    c.quantized_bytes = qm.quantized_weight_bytes;
    c.float_peak_activation_bytes = qm.float_peak_activation_bytes;
    c.quantized_peak_activation_bytes = qm.quantized_peak_activation_bytes;
    c.calibration_samples = qm.calibration_samples;
    c.notes = qm.notes;
    return c;
}

nlohmann::json comparisonJson(const Comparison& c) {
    nlohmann::json ops = nlohmann::json::array();
    for (const OpReport& r : c.ops)
        ops.push_back({{"name", r.name}, {"layer", r.layer}, {"op", r.kind}, {"domain", r.domain}, {"precision", r.precision},
                       {"weight_bits", r.weight_bits}, {"sqnr_db", finiteOrNull(r.sqnr_db)}, {"size_bytes", r.weight_bytes},
                       {"range", {r.range_lo, r.range_hi}}, {"scale", r.scale}, {"zero_point", r.zero_point}});
    nlohmann::json q = resultJson(c.quantized);
    q["size_bytes"] = c.quantized_bytes;
    q["peak_activation_bytes"] = c.quantized_peak_activation_bytes;
    q["seconds"] = c.seconds_quantized;
    nlohmann::json f = resultJson(c.float_result);
    f["size_bytes"] = c.float_bytes;
    f["peak_activation_bytes"] = c.float_peak_activation_bytes;
    f["seconds"] = c.seconds_float;
    nlohmann::json j = {{"float", f}, {"quantized", q}, {"agreement", c.agreement_float}, {"calibration_samples", c.calibration_samples},
                        {"sqnr_samples", c.sqnr_samples}, {"layers", ops}, {"notes", c.notes}};
    if (!c.fake_quant.predictions.empty()) {
        j["fake_quant"] = resultJson(c.fake_quant);
        j["fake_quant"]["seconds"] = c.seconds_fake_quant;
        j["agreement_fake_quant"] = c.agreement_fake_quant;
    }
    return j;
}

}  // namespace qs
