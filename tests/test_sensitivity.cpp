// Sensitivity analysis and the mixed-precision search (core/eval/sensitivity.h,
// mixed_precision.h): a hand-made model whose sensitivities are worked out below, the reuse of
// the baseline's activations against full runs, the front, the split, shards against one run.
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "data/array_dataset.h"
#include "data/preprocessing.h"
#include "engine/quantized_engine.h"
#include "eval/mixed_precision.h"
#include "formats/model_loader.h"
#include "quant/gptq.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

qs::Tensor tensor(qs::Shape shape, std::vector<float> data) {
    qs::Tensor t;
    t.shape = std::move(shape);
    t.data = std::move(data);
    return t;
}

// Input(2) -> Dense(2, linear) with kernel [[1 0] [0 0.3]] (in x out), no bias: y = (x0, 0.3 x1).
qs::Model handModel() {
    qs::Model m;
    m.has_architecture = true;
    m.source_path = "hand.h5";
    qs::Layer in, dense;
    in.name = in.kind = "InputLayer";
    in.output_shape = qs::Shape{-1, 2};
    dense.name = "d";
    dense.kind = "Dense";
    dense.inbound = {{"InputLayer"}};
    dense.weights = {tensor({2, 2}, {1, 0, 0, 0.3f}), tensor({2}, {0, 0})};
    m.layers = {in, dense};
    return m;
}

double softmaxKl(double a0, double a1, double b0, double b1) {
    const double pa0 = 1 / (1 + std::exp(a1 - a0)), pa1 = 1 - pa0;
    const double pb0 = 1 / (1 + std::exp(b1 - b0)), pb1 = 1 - pb0;
    return pa0 * std::log(pa0 / pb0) + pa1 * std::log(pa1 / pb1);
}

fs::path samples() { return fs::path(QUANTSCOPE_SOURCE_DIR) / "sample_models"; }
const char* kFashion = "/usr/share/datasets/fashion-mnist";

// The sanitizer run (QUANTSCOPE_TEST_SUBSET set) takes fewer images: it checks memory safety;
// the numbers are asserted on the larger sets in the plain build.
bool sanitizerRun() { return qEnvironmentVariableIsSet("QUANTSCOPE_TEST_SUBSET"); }

QByteArray runCli(const QStringList& args, int* status = nullptr) {
    QProcess p;
    p.start(QUANTSCOPE_CLI, args);
    p.waitForFinished(600000);
    if (status) *status = p.exitCode();
    return p.readAllStandardOutput();
}

}  // namespace

class SensitivityTest : public QObject {
    Q_OBJECT

private slots:
    void handModelSensitivities() {
        // Samples and their float outputs y = (x0, 0.3 x1); labels are the float predictions.
        //   (1, 2)    -> (1, 0.6)    class 0
        //   (0.5, 3)  -> (0.5, 0.9)  class 1
        //   (-1, 1)   -> (-1, 0.3)   class 1
        //   (0.2, 0.5)-> (0.2, 0.15) class 0
        // Weights at 2 bits symmetric have levels {-1, 0, 1} x scale. Per tensor the lowest-MSE
        // scale is max |w| = 1 (0.3 rounds to 0: MSE 0.09 / 4; a scale of 0.3 would clip 1 to
        // 0.3: 0.49 / 4), so y = (x0, 0): sample 2 flips to class 0, top-1 = agreement = 3/4.
        // Per channel each column has its own scale (1 and 0.3): exact, top-1 1.
        const qs::Model m = handModel();
        qs::RowMatrix x(4, 2);
        x << 1, 2, 0.5f, 3, -1, 1, 0.2f, 0.5f;
        const qs::ReferenceOutputs ref = qs::referenceOutputs(m, x, {0, 1, 1, 0});
        const qs::GraphCalibration cal = qs::calibrateModel(m, x);
        const qs::SensitivityTable t = qs::measureSensitivity(m, cal, ref, {});
        QCOMPARE(t.layers, std::vector<std::string>{"d"});
        QCOMPARE(t.layer_weights, std::vector<int64_t>{4});
        QCOMPARE(t.float_top1, 1.0);
        QCOMPARE(t.cells.size(), qs::sensitivityGrid({}).size());
        const qs::SensitivityCell* pt = t.find("d", "w2/pt/a8");
        const qs::SensitivityCell* pc = t.find("d", "w2/pc/a8");
        QVERIFY(pt && pc);
        QCOMPARE(pt->quant.weight_method, std::string("max_abs"));
        QCOMPARE(pt->score.top1, 0.75);
        QCOMPARE(pt->score.agreement, 0.75);
        QCOMPARE(pc->score.top1, 1.0);
        // SQNR of (x0, 0) against (x0, 0.3 x1): sum y^2 = 3.5725, sum err^2 = (0.3 x1)^2 summed
        // = 1.2825, 10 log10(3.5725 / 1.2825) = 4.449 dB; int8 output rounding (scale 2/255)
        // moves it by well under 0.1 dB.
        QVERIFY2(std::fabs(pt->score.sqnr_db - 4.449) < 0.1, qPrintable(QString::number(pt->score.sqnr_db)));
        // KL of the softmaxes of the float and the 2-bit outputs, averaged over the samples.
        const double kl = (softmaxKl(1, 0.6, 1, 0) + softmaxKl(0.5, 0.9, 0.5, 0) + softmaxKl(-1, 0.3, -1, 0) +
                           softmaxKl(0.2, 0.15, 0.2, 0)) / 4;
        QVERIFY2(std::fabs(pt->score.kl - kl) < 3e-3, qPrintable(QString("%1 vs %2").arg(pt->score.kl).arg(kl)));
        // Bytes, as eval counts them: the Input op's output scale and zero point (8); the Dense
        // layer's 4 weights at 2 bits (1 byte), one float32 scale per tensor (4) or channel (8),
        // two int32 biases (8) and its output scale and zero point (8).
        QCOMPARE(pt->model_bytes, int64_t(8 + 1 + 4 + 8 + 8));
        QCOMPARE(pc->model_bytes, int64_t(8 + 1 + 8 + 8 + 8));
        // int16 activations: biases as int64 (4 weights at 4 bits: 2 bytes).
        QCOMPARE(t.find("d", "w4/pc/a16")->model_bytes, int64_t(8 + 2 + 8 + 16 + 8));
        // Bias correction at 2 bits per tensor: the rounding error of the kernel is
        // [[0 0] [0 -0.3]], the calibration inputs' means are (0.175, 1.625), so the second
        // output's mean moves by -0.3 x 1.625 = -0.4875 and its bias becomes +0.4875.
        const qs::SensitivityCell* bc = t.find("d", "w2/pt/a8/bc");
        QVERIFY(bc && bc->quant.bias_correction);
        qs::QuantConfig with_bc;
        with_bc.layers["d"] = bc->quant;
        const qs::QuantizedModel qm = qs::quantizeCalibrated(m, cal, with_bc);
        const qs::QuantizedOp& dense_op = qm.ops.at(1);
        QVERIFY2(std::fabs(dense_op.sim.bias.at(1) - 0.4875f) < 0.005f, qPrintable(QString::number(dense_op.sim.bias.at(1))));
        QVERIFY(std::fabs(dense_op.sim.bias.at(0)) < 0.005f);  // the first column is exact
        // The bits per weight of a config: here one layer of 4 weights.
        qs::QuantConfig c = qs::baselineConfig(t);
        c.layers["d"] = pt->quant;
        QCOMPARE(qs::bitsPerWeight(t, c), 2.0);
    }

    void gptqByHand() {
        // Two inputs that are always equal (x0 = x1 = x) and weights (0.3, 0.3) for one output,
        // levels {-1, 0, 1} at scale 1. Rounding to nearest gives (0, 0): output error 0.6 x.
        // GPTQ rounds w0 to 0 and moves its error (0.3) onto w1 through H^-1 (H = [[1 1] [1 1]]
        // plus 1% damping: nearly all of it), so w1 ~ 0.6 rounds to 1: output x, error 0.4 x.
        const float w[] = {0.3f, 0.3f};
        Eigen::MatrixXd h(2, 2);
        h << 1, 1, 1, 1;
        const qs::QuantParams unit = qs::symmetricParams(1.0, 2);
        QCOMPARE(unit.scale, 1.0);
        const std::vector<int32_t> q = qs::gptqLevels(w, 2, 1, {unit}, h);
        QCOMPARE(q, (std::vector<int32_t>{0, 1}));
        // Independent inputs (H = I): nothing to compensate, nearest rounding.
        const std::vector<int32_t> q_id = qs::gptqLevels(w, 2, 1, {unit}, Eigen::MatrixXd::Identity(2, 2));
        QCOMPARE(q_id, (std::vector<int32_t>{0, 0}));
    }

    void gptqDepthwiseByHand() {
        // gptqByHand's two cases as the two input channels of one depthwise kernel (2 taps, M = 1,
        // layout (taps, C, M)): channel 0's taps always equal (H = [[1 1] [1 1]]), channel 1's
        // independent (H = I), every weight 0.3. Channel 0 moves its first tap's error onto its
        // second (levels 0, 1); channel 1 keeps nearest rounding (0, 0); neither sees the other.
        const float w[] = {0.3f, 0.3f, 0.3f, 0.3f};  // (t0 c0, t0 c1, t1 c0, t1 c1)
        Eigen::MatrixXd h(2, 4);
        h << 1, 1, 1, 0,
             1, 1, 0, 1;
        const qs::QuantParams unit = qs::symmetricParams(1.0, 2);
        QCOMPARE(qs::depthwiseGptqLevels(w, 2, 2, 1, {unit, unit}, h), (std::vector<int32_t>{0, 0, 1, 0}));
        QCOMPARE(qs::depthwiseGptqLevels(w, 2, 2, 1, {unit}, h), (std::vector<int32_t>{0, 0, 1, 0}));
        // Hessians that do not fit the kernel: nothing (the caller rounds to nearest).
        QVERIFY(qs::depthwiseGptqLevels(w, 2, 2, 1, {unit}, Eigen::MatrixXd::Identity(2, 2)).empty());
    }

    void bitsPerWeightAveragesOverWeights() {
        qs::SensitivityTable t;
        t.layers = {"a", "b"};
        t.layer_weights = {100, 300};
        qs::QuantConfig c;
        c.layers["a"].precision = qs::Precision::Int4;
        c.layers["b"].precision = qs::Precision::Int8;
        QCOMPARE(qs::bitsPerWeight(t, c), (100 * 4 + 300 * 8) / 400.0);
        c.layers["a"].precision = qs::Precision::Float16;
        QCOMPARE(qs::bitsPerWeight(t, c), (100 * 16 + 300 * 8) / 400.0);
    }

    void lossEstimateFromKl() {
        // The search ranks cells by their KL increase, in points of top-1 per nat fitted on the
        // cells that lose 0-20 points: here (drop 2, +0.05 nat) and (drop 1, +0.04 nat), so
        // (2 * 0.05 + 1 * 0.04) / (0.05^2 + 0.04^2) = 0.14 / 0.0041 points per nat. Left out of
        // the fit: a cell whose top-1 rose (noise), one that loses 40 points, one whose KL fell.
        qs::SensitivityTable t;
        t.baseline_score.top1 = 0.90, t.baseline_score.kl = 0.01;
        const auto cell = [](double top1, double kl) {
            qs::SensitivityCell c;
            c.score.top1 = top1, c.score.kl = kl;
            return c;
        };
        QCOMPARE(qs::pointsPerNat(t), 30.0);  // nothing to fit: the default
        t.cells = {cell(0.88, 0.06), cell(0.89, 0.05), cell(0.905, 0.03), cell(0.50, 2.0), cell(0.88, 0.005)};
        const double per_nat = qs::pointsPerNat(t);
        QVERIFY(std::abs(per_nat - 0.14 / 0.0041) < 1e-9);
        // The cell whose top-1 rose by 0.5 points still costs: its outputs moved 0.02 nat.
        QVERIFY(std::abs(qs::estimatedLoss(t, t.cells[2], per_nat) - 0.02 * 0.14 / 0.0041) < 1e-9);
        QVERIFY(qs::estimatedLoss(t, t.cells[4], per_nat) < 0);
    }

    void traceRestartEqualsFullRun() {
        // Restarting the integer engine at a changed layer from the baseline's activations gives
        // exactly the outputs of running the changed model from its input.
        const qs::Model m = qs::loadModel((samples() / "fmnist_cnn.h5").string());
        const qs::ImageDataset data = qs::readDataset(kFashion);
        const qs::Preprocessing pre = qs::inferPreprocessing(data);
        const qs::RowMatrix calib = qs::preprocessSpread(data, pre, 200);
        const qs::RowMatrix x = qs::preprocessRows(data, pre, 0, 64);
        const qs::GraphCalibration cal = qs::calibrateModel(m, calib);
        const qs::QuantizedModel base = qs::quantizeCalibrated(m, cal, {});
        const qs::QuantizedTrace trace = qs::traceQuantized(base, x);
        QCOMPARE(qs::runQuantizedFrom(base, trace, base.graph.ops.size()), qs::runQuantizedOutput(base, qs::QuantizedRun::Integer, x));
        for (const char* spec : {"4:per-tensor", "2:a16", "16", "float16"}) {
            qs::QuantConfig c;
            c.layers["conv2d_1"] = qs::parseLayerSpec(spec, c.defaults);
            const qs::QuantizedModel changed = qs::quantizeCalibrated(m, cal, c);
            size_t first = 0;
            while (changed.graph.ops[first].layer != "conv2d_1") ++first;
            QVERIFY(first > 0);
            QVERIFY2(qs::runQuantizedFrom(changed, trace, first) == qs::runQuantizedOutput(changed, qs::QuantizedRun::Integer, x), spec);
            // Copying the unchanged ops from the baseline (as sensitivity does) changes nothing.
            const qs::QuantizedModel reused = qs::quantizeCalibrated(m, cal, c, &base);
            QVERIFY2(qs::runQuantizedOutput(reused, qs::QuantizedRun::Integer, x) == qs::runQuantizedOutput(changed, qs::QuantizedRun::Integer, x), spec);
            QCOMPARE(reused.quantized_weight_bytes, changed.quantized_weight_bytes);
        }
        // One calibration for many configs equals calibrating each (mse clipping needs the histograms).
        qs::QuantConfig c;
        c.defaults.activation_method = "mse";
        c.layers["dense"] = qs::parseLayerSpec("4:a16", c.defaults);
        const qs::QuantizedModel once = qs::quantizeCalibrated(m, cal, c), each = qs::quantizeModel(m, c, calib);
        QVERIFY(qs::runQuantizedOutput(once, qs::QuantizedRun::Integer, x) == qs::runQuantizedOutput(each, qs::QuantizedRun::Integer, x));
        QCOMPARE(once.quantized_weight_bytes, each.quantized_weight_bytes);
        // Again from the calibration's cached clips, and from a model with min_max clipping
        // (no op may be copied from it: their ranges differ).
        const qs::QuantizedModel again = qs::quantizeCalibrated(m, cal, c), from_base = qs::quantizeCalibrated(m, cal, c, &base);
        QVERIFY(qs::runQuantizedOutput(again, qs::QuantizedRun::Integer, x) == qs::runQuantizedOutput(each, qs::QuantizedRun::Integer, x));
        QVERIFY(qs::runQuantizedOutput(from_base, qs::QuantizedRun::Integer, x) == qs::runQuantizedOutput(each, qs::QuantizedRun::Integer, x));
        // One layer clipped differently: the ops after it keep their own settings but not their
        // input scales, so they must be quantized again, not copied.
        qs::QuantConfig kl;
        kl.layers["conv2d"] = kl.defaults;
        kl.layers["conv2d"].activation_method = "kl";
        const qs::QuantizedModel kl_fresh = qs::quantizeCalibrated(m, cal, kl), kl_reused = qs::quantizeCalibrated(m, cal, kl, &base);
        QVERIFY(qs::runQuantizedOutput(kl_fresh, qs::QuantizedRun::Integer, x) != qs::runQuantizedOutput(base, qs::QuantizedRun::Integer, x));
        QVERIFY(qs::runQuantizedOutput(kl_reused, qs::QuantizedRun::Integer, x) == qs::runQuantizedOutput(kl_fresh, qs::QuantizedRun::Integer, x));
    }

    void wideProductsExact() {
        // int16-activation layers multiply on the int8 GEMM split into bytes (weights of 8 bits or
        // fewer: "8:a16", "4:a16") or as a double GEMM (16-bit weights); the int64 loop is the
        // reference. Every ISA, since the int8 GEMM's paths differ per ISA.
        const qs::Model m = qs::loadModel((samples() / "fmnist_cnn.h5").string());
        const qs::ImageDataset data = qs::readDataset(kFashion);
        const qs::Preprocessing pre = qs::inferPreprocessing(data);
        const qs::RowMatrix x = qs::preprocessRows(data, pre, 0, 16);
        for (const char* spec : {"16", "8:a16", "4:a16"}) {
            qs::QuantConfig c;
            c.defaults = qs::parseLayerSpec(spec, c.defaults);
            qs::QuantizedModel qm = qs::quantizeModel(m, c, qs::preprocessSpread(data, pre, 100));
            std::vector<qs::RowMatrix> fast;
            for (qs::kernels::Isa isa : {qs::kernels::Isa::Portable, qs::kernels::Isa::Avx2, qs::kernels::Isa::Avx512}) {
                if (!qs::kernels::isaSupported(isa)) continue;
                qs::kernels::forceIsa(isa);
                fast.push_back(qs::runQuantizedOutput(qm, qs::QuantizedRun::Integer, x));
            }
            qs::kernels::clearForcedIsa();
            int wide = 0, split = 0;
            for (qs::QuantizedOp& o : qm.ops) {
                wide += !o.w_wide.empty(), split += o.gemm.K > 0 && o.domain == qs::Domain::Int16;
                if (o.domain == qs::Domain::Int16) o.w_wide.clear(), o.gemm = {};  // the int64 loop reads wq only
            }
            // The byte split where the weights fit int8 (and no double copy of them), else doubles.
            QCOMPARE(wide + split, 4);  // fmnist_cnn's two Conv2D and two Dense layers
            QCOMPARE(split, std::string(spec) == "16" ? 0 : 4);
            const qs::RowMatrix loop = qs::runQuantizedOutput(qm, qs::QuantizedRun::Integer, x);
            for (const qs::RowMatrix& f : fast) QVERIFY2(f == loop, spec);
        }
    }

    void maxDropBudget() {
        // fmnist_mlp as trained: all-int8 per-channel is within 1 point of float, so the search
        // under --max-drop 1 never returns anything larger than it.
        qs::Model m = qs::loadModel((samples() / "fmnist_mlp.h5").string());
        const qs::ImageDataset data = qs::readDataset(kFashion);
        const qs::Preprocessing pre = qs::inferPreprocessing(data);
        const qs::RowMatrix calib = qs::preprocessSpread(data, pre, 200);
        auto refOf = [&](const qs::Model& model, int64_t b, int64_t c) {
            return qs::referenceOutputs(model, qs::preprocessRows(data, pre, b, c),
                                        std::vector<int32_t>(data.labels.begin() + b, data.labels.begin() + b + c));
        };
        const qs::SearchBudget one_point{qs::SearchBudget::MaxDrop, 1.0};
        const int64_t half = sanitizerRun() ? 300 : 1500;
        if (!sanitizerRun()) {  // the sanitizer run checks the second case only (memory safety, same code)
            const qs::GraphCalibration cal = qs::calibrateModel(m, calib);
            const qs::ReferenceOutputs search = refOf(m, 0, half), heldout = refOf(m, half, half);
            const qs::SensitivityTable t = qs::measureSensitivity(m, cal, search, {});
            const qs::SearchResult r = qs::searchMixedPrecision(m, cal, t, search, heldout, one_point);
            QVERIFY(100 * (r.float_search_top1 - t.baseline_score.top1) <= 1.0 + 1e-9);
            QVERIFY(r.chosen >= 0);
            QVERIFY(r.points[static_cast<size_t>(r.chosen)].bytes <= t.baseline_bytes);
        }
        // The same function with logits of a huge range: 1000 added to every class's bias.
        // Softmax does not change when one constant is added to all its inputs, so the float
        // model predicts the same; but int8 logits must now span [0, ~1010] (the range holds
        // zero), a step of about 4 where the top classes differ by a few units, so all-int8
        // loses more than a point. The search must find a config within a point at no more
        // than 1.25x the int8 size (int16 activations on the last layer, say).
        qs::Layer& d2 = *m.findLayer("dense_2");
        for (float& b : d2.weights[1].data) b += 1000;
        const qs::GraphCalibration cal = qs::calibrateModel(m, calib);
        const qs::ReferenceOutputs search = refOf(m, 0, half), heldout = refOf(m, half, half);
        const qs::SensitivityTable t = qs::measureSensitivity(m, cal, search, {});
        QVERIFY2(100 * (t.float_top1 - t.baseline_score.top1) > 1.0, qPrintable(QString::number(t.baseline_score.top1)));
        const qs::SearchResult r = qs::searchMixedPrecision(m, cal, t, search, heldout, one_point);
        QVERIFY(r.chosen >= 0);
        const qs::SearchPoint& c = r.points[static_cast<size_t>(r.chosen)];
        qInfo("outlier model: float %.4f, int8 %.4f; chosen %lld bytes (int8 %lld), search %.4f, held-out %.4f (float %.4f)",
              r.float_search_top1, t.baseline_score.top1, static_cast<long long>(c.bytes), static_cast<long long>(t.baseline_bytes),
              c.search.top1, c.heldout.top1, r.float_heldout_top1);
        QVERIFY(100 * (r.float_search_top1 - c.search.top1) <= 1.0 + 1e-9);  // exactly 1 point counts as within (3 of 300 images)
        QVERIFY(static_cast<double>(c.bytes) <= 1.25 * static_cast<double>(t.baseline_bytes));
    }

    void splitIsDisjoint() {
        for (auto [n, want] : {std::pair<int64_t, int64_t>{10000, 0}, {10000, 2000}, {7, 0}, {5, 100}}) {
            const qs::TestSplit s = qs::splitForSearch(n, want);
            QCOMPARE(s.search_begin, int64_t(0));
            QCOMPARE(s.heldout_begin, s.search_begin + s.search_count);  // no image in both
            QCOMPARE(s.heldout_begin + s.heldout_count, n);              // every image in one
            QVERIFY(s.search_count >= 1 && s.heldout_count >= 1);
            if (want == 0) QCOMPARE(s.search_count, n / 2);
        }
        QVERIFY_THROWS_EXCEPTION(qs::Error, qs::splitForSearch(1));
    }

    void gptqCellsOnlyWhereGptqRuns() {
        // fmnist_cnn's first Dense layer is 3136 deep, past GPTQ's 1024 (no Hessian): no GPTQ cells
        // there (they would measure nearest rounding again under a GPTQ label); its 288-deep second
        // convolution has all four (4 and 2 bits, per channel and per tensor).
        int status = -1;
        const json t = json::parse(runCli({"sensitivity", QString::fromStdString((samples() / "fmnist_cnn.h5").string()), "--data", kFashion,
                                           "--limit", sanitizerRun() ? "40" : "200", "--calib", "20", "--json"},
                                          &status)
                                       .toStdString());
        QCOMPARE(status, 0);
        std::map<std::string, int> gptq, all;
        for (const json& c : t["cells"]) {
            ++all[c["layer"].get<std::string>()];
            if (c["setting"].get<std::string>().find("gptq") != std::string::npos) ++gptq[c["layer"].get<std::string>()];
        }
        QCOMPARE(gptq["dense"], 0);
        QCOMPARE(gptq["conv2d_1"], 4);
        QCOMPARE(all["dense"], all["conv2d_1"] - 4);
    }

    void shardsMergeToOneRun() {
        const QString model = QString::fromStdString((samples() / "fmnist_mlp.h5").string());
        const QStringList common = {"--data", kFashion, "--limit", sanitizerRun() ? "200" : "600", "--calib", "100", "--json"};
        int status = -1;
        const json whole = json::parse(runCli(QStringList{"sensitivity", model} + common, &status).toStdString());
        QCOMPARE(status, 0);
        QTemporaryDir dir;
        QStringList merge = {"sensitivity", "--merge", "--json"};
        for (int k = 0; k < 2; ++k) {
            const QByteArray part = runCli(QStringList{"sensitivity", model, "--shard", QString("%1/2").arg(k)} + common, &status);
            QCOMPARE(status, 0);
            const QString path = dir.filePath(QString("part%1.json").arg(k));
            QFile f(path);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(part);
            f.close();
            merge << path;
        }
        const json merged = json::parse(runCli(merge, &status).toStdString());
        QCOMPARE(status, 0);
        QCOMPARE(merged["cells"].size(), whole["cells"].size());
        QVERIFY(whole["cells"].size() >= 2 * qs::sensitivityGrid({}).size());
        for (size_t i = 0; i < whole["cells"].size(); ++i) {
            const json &a = whole["cells"][i], &b = merged["cells"][i];
            QCOMPARE(a["layer"], b["layer"]);
            QCOMPARE(a["setting"], b["setting"]);
            QCOMPARE(a["quant"], b["quant"]);
            QCOMPARE(a["model_bytes"], b["model_bytes"]);
            QCOMPARE(a["score"]["top1"], b["score"]["top1"]);
            QCOMPARE(a["score"]["agreement"], b["score"]["agreement"]);
            // Sums over batches on two threads: the order of additions may differ.
            QVERIFY(std::fabs(a["score"]["kl"].get<double>() - b["score"]["kl"].get<double>()) <= 1e-9 * (1 + a["score"]["kl"].get<double>()));
        }
        // A shard missing is refused.
        merge.removeLast();
        runCli(merge, &status);
        QCOMPARE(status, 1);
    }

    void suggestFrontAndBudget() {
        const QString model = QString::fromStdString((samples() / "fmnist_mlp.h5").string());
        QTemporaryDir dir;
        const QString cfg = dir.filePath("cfg.json"), pareto = dir.filePath("pareto.json");
        int status = -1;
        const int limit = sanitizerRun() ? 600 : 2000;
        runCli({"suggest", model, "--data", kFashion, "--limit", QString::number(limit), "--calib", "200", "--bits-per-weight", "4.5", "--out",
                cfg, "--pareto", pareto},
               &status);
        QCOMPARE(status, 0);
        std::ifstream in(pareto.toStdString());
        const json p = json::parse(in);
        const json& points = p["points"];
        // The front: sorted by size, each point more accurate on the search images than every
        // smaller one (bigger is never less accurate), and no evaluated point dominates it.
        const json& front = p["front"];
        QVERIFY(front.size() >= 2);
        for (size_t k = 1; k < front.size(); ++k) {
            const json &a = points[front[k - 1].get<size_t>()], &b = points[front[k].get<size_t>()];
            QVERIFY(a["bytes"].get<int64_t>() <= b["bytes"].get<int64_t>());
            QVERIFY(a["search"]["top1"].get<double>() < b["search"]["top1"].get<double>());
        }
        for (const json& q : points) QVERIFY(q["bits_per_weight"].get<double>() >= 2.0);  // every point's width counted, the baseline's too
        for (const json& q : points)
            for (const json& f : front) {
                const json& fp = points[f.get<size_t>()];
                QVERIFY(!(q["bytes"].get<int64_t>() < fp["bytes"].get<int64_t>() && q["search"]["top1"].get<double>() > fp["search"]["top1"].get<double>()));
            }
        const json& chosen = points[p["chosen"].get<size_t>()];
        QVERIFY(chosen["bits_per_weight"].get<double>() <= 4.5);
        QVERIFY(!chosen["heldout"].is_null());
        QCOMPARE(chosen["heldout"]["n"].get<int64_t>(), int64_t(limit / 2));
        // The written config is an ordinary config: eval takes it, and its size is the point's.
        const json ev = json::parse(runCli({"eval", model, "--data", kFashion, "--limit", "200", "--config", cfg, "--json"}, &status).toStdString());
        QCOMPARE(status, 0);
        QCOMPARE(ev["quantized"]["size_bytes"].get<int64_t>(), chosen["bytes"].get<int64_t>());
    }
};

QTEST_GUILESS_MAIN(SensitivityTest)
#include "test_sensitivity.moc"
