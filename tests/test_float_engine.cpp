// The float reference engine against accuracies measured by independent implementations:
// every corpus model whose manifest gives a reference accuracy (numpy float64 forward pass,
// cross-checked with PyTorch) must match it within 0.05 point with the manifest's
// preprocessing; models with layers the engine does not run must say which layer. Our own
// sample models must match the accuracy PyTorch measured when it trained them. The float
// GEMM and the direct convolution of every ISA against float64 loops. IDX errors.
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <fstream>
#include <random>

#include "base/error.h"
#include "data/idx_dataset.h"
#include "engine/float_engine.h"
#include "engine/float_ops.h"
#include "engine/kernels/float_gemm.h"
#include "eval/quantized_evaluation.h"
#include "formats/model_loader.h"
#include "quant/kernels/quant_error_kernel.h"

using nlohmann::json;
namespace fs = std::filesystem;

class FloatEngineTest : public QObject {
    Q_OBJECT
    fs::path corpus_ = fs::path(QUANTSCOPE_SHARED_DIR) / "corpus";
    json manifest_;
    QTemporaryDir tmp_;

    // The sanitizer run (QUANTSCOPE_TEST_SUBSET=N) runs the same forward passes on the first N
    // images to check memory safety; accuracy is asserted on the full set in the normal build.
    static int64_t subset() { return qEnvironmentVariableIntValue("QUANTSCOPE_TEST_SUBSET"); }
    static qs::ImageDataset cut(qs::ImageDataset d) {
        if (subset() > 0 && subset() < d.n) {
            d.n = subset();
            d.pixels.resize(static_cast<size_t>(d.n * d.rows * d.cols));
            d.labels.resize(static_cast<size_t>(d.n));
        }
        return d;
    }
    static qs::ImageDataset dataset(const std::string& which, const fs::path& corpus) {
        if (which == "mnist") return cut(qs::readIdxFolder((corpus / "mnist").string()));
        return cut(qs::readIdxFolder("/usr/share/datasets/fashion-mnist"));
    }

    // Every third-party model the float engine runs also quantizes to int8 (per-channel,
    // 500 calibration images spread over the test set: the corpus has no training split) and
    // runs in integers: on the first 2000 images its top-1 stays within 1 point of float and
    // it agrees with the fake-quant simulation on >= 99% of them (>= 99.5% on all 10,000:
    // 99.76% for the weakest, tfk2_8_mnist_cnn_bn_gap; 2000 images leave more noise).
    static void quantizedAlsoRuns(const qs::Model& m, qs::ImageDataset d, const qs::Preprocessing& pre) {
        const qs::RowMatrix calib = qs::preprocessSpread(d, pre, 500);
        d.n = std::min<int64_t>(d.n, 2000);
        qs::CompareOptions opt;
        opt.sqnr_samples = 16;
        const qs::Comparison c = qs::compareQuantized(m, qs::QuantConfig{}, d, calib, pre, opt);
        qInfo("float %.4f int8 %.4f agreement %.4f with simulation %.4f", c.float_result.top1, c.quantized.top1, c.agreement_float,
              c.agreement_fake_quant);
        QVERIFY(c.agreement_fake_quant >= 0.99);
        QVERIFY(std::fabs(c.quantized.top1 - c.float_result.top1) <= 0.01);
    }

private slots:
    void initTestCase() {
        if (!fs::exists(corpus_ / "manifest.json")) QSKIP("../shared/corpus is absent");
        std::ifstream in(corpus_ / "manifest.json");
        manifest_ = json::parse(in);
    }

    void corpusReferenceAccuracy_data() {
        QTest::addColumn<QString>("file");
        for (const json& e : manifest_["files"])
            if (e["reference_accuracy"].is_object() && e["preprocessing"].is_object())
                QTest::newRow(e["file"].get<std::string>().c_str()) << QString::fromStdString(e["file"].get<std::string>());
    }
    void corpusReferenceAccuracy() {
        QFETCH(QString, file);
        json e;
        for (const json& f : manifest_["files"])
            if (f["file"] == file.toStdString()) e = f;
        if (e["dataset"] == "fashion_mnist" && !fs::exists("/usr/share/datasets/fashion-mnist")) QSKIP("dataset-fashion-mnist missing");
        qs::LoadOptions opt;
        if (e.contains("architecture") && !e["architecture"].is_null() && e["sidecars"].empty()) {
            opt.arch_path = tmp_.filePath(file + ".arch.json").toStdString();
            std::ofstream(opt.arch_path) << e["architecture"].dump();
        }
        const qs::Model m = qs::loadModel((corpus_ / file.toStdString()).string(), opt);
        const qs::ImageDataset d = dataset(e["dataset"], corpus_);
        QCOMPARE(d.n, subset() > 0 ? subset() : int64_t(10000));
        const json& p = e["preprocessing"];
        const qs::Preprocessing pre{p["scale"].get<double>(), p["mean"].get<double>(), p["std"].get<double>()};
        try {
            const qs::FloatEngine engine(m, {d.rows, d.cols, d.channels});
            const qs::EvalResult r = qs::evaluateFloat(engine, d, pre);
            quantizedAlsoRuns(m, d, pre);
            if (subset() > 0) return;
            const double ref = e["reference_accuracy"]["top1"].get<double>();
            QVERIFY2(std::fabs(r.top1 - ref) <= 0.0005, qPrintable(QString("ours %1, reference %2").arg(r.top1).arg(ref)));
        } catch (const qs::Error& err) {
            // Only layers outside the engine's set may refuse, and they must be named.
            QVERIFY2(!e["basic_layers_only"].get<bool>(), err.what());
            QVERIFY2(std::string(err.what()).find("unsupported layer") != std::string::npos, err.what());
        }
    }

    void sampleModelsMatchPyTorch_data() {
        QTest::addColumn<QString>("name");
        for (const char* n : {"fmnist_mlp", "fmnist_cnn", "fmnist_dwsep", "fmnist_resnet"}) QTest::newRow(n) << n;
    }
    void sampleModelsMatchPyTorch() {
        QFETCH(QString, name);
        if (!fs::exists("/usr/share/datasets/fashion-mnist")) QSKIP("dataset-fashion-mnist missing");
        const fs::path dir = fs::path(QUANTSCOPE_SOURCE_DIR) / "sample_models";
        std::ifstream in(dir / "samples.json");
        const json info = json::parse(in);
        const qs::Model m = qs::loadModel((dir / (name.toStdString() + ".h5")).string());
        const qs::ImageDataset d = cut(qs::readIdxFolder("/usr/share/datasets/fashion-mnist"));
        const qs::FloatEngine engine(m);
        const qs::EvalResult r = qs::evaluateFloat(engine, d, qs::Preprocessing{});
        if (subset() > 0) return;
        const double ref = info["models"][name.toStdString()]["float_top1_pytorch"].get<double>();
        QVERIFY2(std::fabs(r.top1 - ref) <= 0.0005, qPrintable(QString("ours %1, PyTorch %2").arg(r.top1).arg(ref)));
    }

    void floatGemmMatchesDoubleLoop() {
        // Every build of the float GEMM (baseline; AVX2 + FMA and AVX-512 where the CPU has them)
        // against a float64 loop, row-major, on shapes with remainders in every direction:
        // each entry within 1e-5 of the sum of |a| |b| over its products (float rounding).
        std::mt19937 rng(5);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        using Gemm = void (*)(const float*, int64_t, int64_t, const float*, int64_t, float*);
        std::vector<std::pair<const char*, Gemm>> paths = {{"baseline", qs::kernels::floatGemmBaseline}};
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) paths.push_back({"avx2", qs::kernels::floatGemmAvx2});
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
            paths.push_back({"avx512", qs::kernels::floatGemmAvx512});
        paths.push_back({"dispatch", qs::kernels::floatGemm});
        for (auto [M, K, N] : {std::tuple{1, 1, 1}, std::tuple{7, 33, 17}, std::tuple{37, 300, 29}, std::tuple{256, 784, 10}}) {
            std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N));
            for (float& v : A) v = u(rng);
            for (float& v : B) v = u(rng);
            for (auto [name, gemm] : paths) {
                std::vector<float> C(static_cast<size_t>(M * N), NAN);
                gemm(A.data(), M, K, B.data(), N, C.data());
                for (int m = 0; m < M; ++m)
                    for (int n = 0; n < N; ++n) {
                        double ref = 0, mag = 0;
                        for (int k = 0; k < K; ++k) {
                            const double p = double(A[static_cast<size_t>(m * K + k)]) * B[static_cast<size_t>(k * N + n)];
                            ref += p, mag += std::fabs(p);
                        }
                        const double got = C[static_cast<size_t>(m * N + n)];
                        QVERIFY2(std::fabs(got - ref) <= 1e-5 * mag + 1e-30,
                                 qPrintable(QString("%1 %2x%3x%4 at (%5, %6): %7 vs %8").arg(name).arg(M).arg(K).arg(N).arg(m).arg(n).arg(got).arg(ref)));
                    }
            }
        }
    }

    // The ISAs this CPU runs, each forced in turn (clearForcedIsa afterwards).
    static std::vector<qs::kernels::Isa> runnableIsas() {
        std::vector<qs::kernels::Isa> isas;
        for (auto isa : {qs::kernels::Isa::Portable, qs::kernels::Isa::Avx2, qs::kernels::Isa::Avx512})
            if (qs::kernels::isaSupported(isa)) isas.push_back(isa);
        return isas;
    }

    void directConvMatchesDoubleLoop() {
        // Conv2D (direct kernel: patches read in place, tails of pixels and of channels, the fused
        // batch-norm affine and ReLU clamp) against a float64 loop with TensorFlow's padding rule
        // written out here: 'same' pads max((out - 1) * s + (k - 1) * d + 1 - in, 0), the smaller
        // half first; each value within 1e-5 of the sum of |x| |w| over its products.
        struct Case {
            int H, W, C, KH, KW, OC, sh, sw, dh, dw;
            bool same, affine;
        };
        const Case cases[] = {
            {28, 28, 1, 3, 3, 32, 1, 1, 1, 1, true, false},   // fmnist_cnn's first layer
            {14, 14, 32, 3, 3, 64, 1, 1, 1, 1, true, true},   // its second, batch norm + ReLU fused
            {9, 11, 3, 3, 2, 37, 2, 3, 1, 1, false, true},    // strides, a partial channel panel
            {10, 10, 5, 3, 3, 17, 1, 1, 2, 2, true, false},   // dilation: one run per kernel cell
            {7, 7, 4, 5, 5, 8, 2, 2, 1, 2, true, true},
            {4, 5, 16, 1, 1, 300, 1, 1, 1, 1, false, false},  // 1 x 1: a GEMM over the pixels
            {3, 3, 7, 3, 3, 300, 1, 1, 1, 1, false, true},    // one output pixel: the one-pixel pass
        };
        std::mt19937 rng(11);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (const Case& t : cases) {
            const int n = 2;
            const auto outSize = [&](int in, int k, int s, int d, int* pad) {
                const int ek = (k - 1) * d + 1, out = t.same ? (in + s - 1) / s : (in - ek) / s + 1;
                *pad = t.same ? std::max((out - 1) * s + ek - in, 0) / 2 : 0;
                return out;
            };
            int pt = 0, pl = 0;
            const int OH = outSize(t.H, t.KH, t.sh, t.dh, &pt), OW = outSize(t.W, t.KW, t.sw, t.dw, &pl);
            qs::Act x;
            x.shape = {t.H, t.W, t.C};
            x.x.resize(n, t.H * t.W * t.C);
            for (Eigen::Index i = 0; i < x.x.size(); ++i) x.x.data()[i] = u(rng);
            qs::Tensor kernel, bias;
            kernel.shape = {t.KH, t.KW, t.C, t.OC};
            kernel.data.resize(static_cast<size_t>(t.KH * t.KW * t.C * t.OC));
            for (float& v : kernel.data) v = u(rng);
            bias.shape = {t.OC};
            bias.data.resize(static_cast<size_t>(t.OC));
            for (float& v : bias.data) v = u(rng);
            qs::ChannelAffine affine;
            for (int o = 0; o < t.OC; ++o) affine.mul.push_back(0.5 + u(rng)), affine.add.push_back(u(rng));
            qs::ConvPost post;
            if (t.affine) post = {&affine, 0.0f, 6.0f};
            const json config = {{"strides", {t.sh, t.sw}}, {"dilation_rate", {t.dh, t.dw}}, {"padding", t.same ? "same" : "valid"}};
            for (auto isa : runnableIsas()) {
                qs::kernels::forceIsa(isa);
                const qs::Act y = qs::conv2d(x, kernel, &bias, config, post);
                qs::kernels::clearForcedIsa();
                QCOMPARE(y.shape, (qs::Shape{OH, OW, t.OC}));
                for (int s = 0; s < n; ++s)
                    for (int oy = 0; oy < OH; ++oy)
                        for (int ox = 0; ox < OW; ++ox)
                            for (int o = 0; o < t.OC; ++o) {
                                double ref = bias.data[static_cast<size_t>(o)], mag = std::fabs(ref);
                                for (int ky = 0; ky < t.KH; ++ky)
                                    for (int kx = 0; kx < t.KW; ++kx) {
                                        const int iy = oy * t.sh - pt + ky * t.dh, ix = ox * t.sw - pl + kx * t.dw;
                                        if (iy < 0 || iy >= t.H || ix < 0 || ix >= t.W) continue;
                                        for (int c = 0; c < t.C; ++c) {
                                            const double p = double(x.x(s, (iy * t.W + ix) * t.C + c)) *
                                                             kernel.data[static_cast<size_t>(((ky * t.KW + kx) * t.C + c) * t.OC + o)];
                                            ref += p, mag += std::fabs(p);
                                        }
                                    }
                                if (t.affine) {
                                    ref = std::clamp(ref * affine.mul[static_cast<size_t>(o)] + affine.add[static_cast<size_t>(o)], 0.0, 6.0);
                                    mag *= 2;
                                }
                                const double got = y.x(s, (oy * OW + ox) * t.OC + o);
                                QVERIFY2(std::fabs(got - ref) <= 1e-5 * mag + 1e-6,
                                         qPrintable(QString("%1 case %2x%3x%4 k%5x%6 oc %7 at (%8, %9, %10, %11): %12 vs %13")
                                                        .arg(qs::kernels::isaName(isa)).arg(t.H).arg(t.W).arg(t.C).arg(t.KH).arg(t.KW)
                                                        .arg(t.OC).arg(s).arg(oy).arg(ox).arg(o).arg(got).arg(ref)));
                            }
            }
        }
    }

    void denseMatchesDoubleLoop() {
        // Dense through the direct kernel (up to 64 rows: one row, partial tiles) and through
        // Eigen (more rows), widths with and without a partial panel, against float64.
        std::mt19937 rng(12);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (auto [rows, K, N] : {std::tuple{1, 50, 300}, std::tuple{1, 784, 256}, std::tuple{5, 3136 / 16, 128}, std::tuple{3, 20, 10},
                                  std::tuple{64, 33, 17}, std::tuple{65, 33, 17}}) {
            qs::Act x;
            x.shape = {K};
            x.x.resize(rows, K);
            for (Eigen::Index i = 0; i < x.x.size(); ++i) x.x.data()[i] = u(rng);
            qs::Tensor kernel, bias;
            kernel.shape = {K, N};
            kernel.data.resize(static_cast<size_t>(K * N));
            for (float& v : kernel.data) v = u(rng);
            bias.shape = {N};
            bias.data.resize(static_cast<size_t>(N));
            for (float& v : bias.data) v = u(rng);
            for (auto isa : runnableIsas()) {
                qs::kernels::forceIsa(isa);
                const qs::Act y = qs::dense(x, kernel, &bias);
                qs::kernels::clearForcedIsa();
                QCOMPARE(y.shape, (qs::Shape{N}));
                for (int r = 0; r < rows; ++r)
                    for (int o = 0; o < N; ++o) {
                        double ref = bias.data[static_cast<size_t>(o)], mag = std::fabs(ref);
                        for (int k = 0; k < K; ++k) {
                            const double p = double(x.x(r, k)) * kernel.data[static_cast<size_t>(k * N + o)];
                            ref += p, mag += std::fabs(p);
                        }
                        QVERIFY2(std::fabs(y.x(r, o) - ref) <= 1e-5 * mag + 1e-6,
                                 qPrintable(QString("%1 %2x%3x%4 at (%5, %6): %7 vs %8").arg(qs::kernels::isaName(isa)).arg(rows).arg(K).arg(N)
                                                .arg(r).arg(o).arg(y.x(r, o)).arg(ref)));
                    }
            }
        }
    }

    void idxErrors() {
        auto write = [&](const char* name, std::vector<uint8_t> bytes) {
            const std::string p = tmp_.filePath(name).toStdString();
            std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
            return p;
        };
        const std::string good_labels = write("l-labels-idx1-ubyte", {0, 0, 8, 1, 0, 0, 0, 2, 3, 4});
        const std::string bad_magic = write("a-images-idx3-ubyte", {1, 2, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 5, 6});
        const std::string too_many = write("b-images-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3});
        const std::string three = write("c-images-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3});
        auto fails = [](const std::string& img, const std::string& lab, const char* want) {
            try {
                qs::readIdxPair(img, lab);
            } catch (const qs::Error& e) {
                return std::string(e.what()).find(want) != std::string::npos;
            }
            return false;
        };
        QVERIFY(fails(bad_magic, good_labels, "bad magic number"));
        QVERIFY(fails(too_many, good_labels, "promises 7056 values but the file holds 3"));
        QVERIFY(fails(three, good_labels, "2 labels for 3 images"));
        const qs::ImageDataset ok = qs::readIdxPair(write("d-images-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 7, 9}), good_labels);
        QCOMPARE(ok.pixels, (std::vector<uint8_t>{7, 9}));
        QCOMPARE(ok.labels, (std::vector<int32_t>{3, 4}));
    }
};

QTEST_GUILESS_MAIN(FloatEngineTest)
#include "test_float_engine.moc"
