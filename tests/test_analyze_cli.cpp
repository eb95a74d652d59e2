// `quantscope-cli analyze` on a real third-party model: the JSON has the documented fields,
// every candidate per kernel, per-channel scales per output channel (DepthwiseConv2D:
// in * depth_multiplier), and marks the requested method as chosen.
#include <H5Cpp.h>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>

#include <nlohmann/json.hpp>

using nlohmann::json;
namespace fs = std::filesystem;

class AnalyzeCliTest : public QObject {
    Q_OBJECT

    static json run(const QStringList& args, int* exit_code = nullptr, QString* err = nullptr) {
        QProcess p;
        p.start(QUANTSCOPE_CLI, args);
        p.waitForFinished(120000);
        if (exit_code) *exit_code = p.exitCode();
        if (err) *err = QString::fromUtf8(p.readAllStandardError());
        const QByteArray out = p.readAllStandardOutput();
        return out.startsWith('{') ? json::parse(out.toStdString()) : json();
    }

private slots:
    void jsonSchemaOnDepthwiseModel() {
        const fs::path f = fs::path(QUANTSCOPE_SHARED_DIR) / "corpus" / "tfk2_8_mnist_dwconv_bn.h5";
        if (!fs::exists(f)) QSKIP("../shared/corpus is absent");
        int code = -1;
        const json j = run({"analyze", QString::fromStdString(f.string()), "--json", "--method", "mse", "--bits", "4"}, &code);
        QCOMPARE(code, 0);
        QCOMPARE(j["bits"].get<int>(), 4);
        // Kernels of ftr0a, ftr0b, ftr1a, ftr1b, fc1 (rank >= 2).
        QCOMPARE(j["layers"].size(), size_t(5));
        for (const json& l : j["layers"])
            for (const json& t : l["tensors"]) {
                QCOMPARE(t["candidates"].size(), size_t(12));
                QCOMPARE(t["chosen"].get<std::string>(), std::string("mse"));
                for (const json& c : t["candidates"]) {
                    for (const char* k : {"method", "bits", "granularity", "scale", "zero_point", "mse", "rmse", "sqnr_db",
                                          "max_abs_error", "mean_error", "pct_below_precision", "pct_beyond_range",
                                          "levels_used", "entropy_bits_per_weight", "packed_bytes"})
                        QVERIFY2(c.contains(k), k);
                    QVERIFY(c["pct_below_precision"].get<double>() >= 0 && c["pct_below_precision"].get<double>() <= 100);
                    if (c["method"] != "float16" && c["granularity"] == "per-channel")
                        QCOMPARE(c["scale"].size(), static_cast<size_t>(t["channels"].get<int>()));
                    // 4 bits: symmetric [-7, 7] has 15 levels, asymmetric [-8, 7] 16.
                    if (c["method"] != "float16")
                        QVERIFY(c["levels_used"].get<int>() <= (c["scheme"] == "asymmetric" ? 16 : 15));
                }
            }
        // ftr1b: DepthwiseConv2D (3, 3, 16, 2): 32 output channels.
        QCOMPARE(j["layers"][3]["name"].get<std::string>(), std::string("ftr1b"));
        QCOMPARE(j["layers"][3]["tensors"][0]["channels"].get<int>(), 32);
    }

    void perTensorAndCsv() {
        const fs::path f = fs::path(QUANTSCOPE_SHARED_DIR) / "corpus" / "tfk2_14_mnist_cnn.h5";
        if (!fs::exists(f)) QSKIP("../shared/corpus is absent");
        const json j = run({"analyze", QString::fromStdString(f.string()), "--json", "--per-tensor"});
        QVERIFY(j["layers"][0]["tensors"][0]["candidates"][0]["scale"].is_number());
        QProcess p;
        p.start(QUANTSCOPE_CLI, {"analyze", QString::fromStdString(f.string()), "--csv"});
        QVERIFY(p.waitForFinished(60000));
        const QStringList lines = QString::fromUtf8(p.readAllStandardOutput()).trimmed().split('\n');
        QCOMPARE(lines.size(), 1 + 2 * 12);  // header + conv2d and dense kernels x 12 candidates
        QVERIFY(lines[0].startsWith("layer,tensor,method,chosen"));
    }

    // A quantization-aware-trained tf.keras 2.13 file (tests/fixtures/make_qat_fixture.py): the
    // integer and boolean tensors are listed with their dtype and left out of the analysis; the
    // trained bit widths come from the QKeras configs and HGQ's bits/integers tensors.
    void qatFileInspectAndAnalyze() {
        const QString file = QUANTSCOPE_SOURCE_DIR "/tests/fixtures/qat_hgq_qkeras.h5";
        int code = -1;
        const json inspect = run({"inspect", file, "--json"}, &code);
        QCOMPARE(code, 0);
        const json& fpq = inspect["layers"][1];
        QCOMPARE(fpq["class_name"].get<std::string>(), std::string("FixedPointQuantizer"));
        QCOMPARE(fpq["weights"].size(), size_t(0));
        QCOMPARE(fpq["other_tensors"].size(), size_t(3));
        QCOMPARE(fpq["other_tensors"][0]["dtype"].get<std::string>(), std::string("bool"));
        QCOMPARE(fpq["other_tensors"][1]["dtype"].get<std::string>(), std::string("int32"));
        QCOMPARE(fpq["other_tensors"][1]["shape"], json::array({8}));
        QCOMPARE(fpq["trained_quantization"]["bits"].get<int>(), 6);
        QCOMPARE(fpq["trained_quantization"]["integer_bits"].get<int>(), 2);
        QCOMPARE(fpq["trained_quantization"]["keep_negative"].get<bool>(), true);
        QCOMPARE(fpq["output_shape"], json::array({-1, 8}));  // an element-wise quantizer
        QCOMPARE(inspect["layers"][2]["trained_quantization"]["bits"].get<int>(), 4);   // quantized_bits(4,0,1)
        QCOMPARE(inspect["layers"][3]["trained_quantization"]["bits"].get<int>(), 6);   // quantized_relu(6,2)
        QCOMPARE(inspect["layers"][3]["trained_quantization"]["keep_negative"].get<bool>(), false);
        QVERIFY(inspect["layers"][4]["trained_quantization"].is_null());  // a plain Dense
        QCOMPARE(inspect["total_params"].get<int>(), 8 * 4 + 4 + 4 * 3 + 3);  // float weights only

        const json analysis = run({"analyze", file, "--json"}, &code);
        QCOMPARE(code, 0);
        std::vector<std::string> tensors;
        for (const json& l : analysis["layers"])
            for (const json& t : l["tensors"]) tensors.push_back(t["name"].get<std::string>());
        QCOMPARE(tensors, (std::vector<std::string>{"q_dense/kernel:0", "dense/kernel:0"}));

        // Evaluation refuses the one layer the engines cannot run, by name.
        QProcess p;
        p.start(QUANTSCOPE_CLI, {"eval", file, "--data", "/usr/share/datasets/fashion-mnist", "--limit", "10"});
        QVERIFY(p.waitForFinished(60000));
        QVERIFY(p.exitCode() != 0);
        const QString err = QString::fromUtf8(p.readAllStandardError());
        if (!err.contains("no such file")) QVERIFY2(err.contains("fixed_point_quantizer") && err.contains("FixedPointQuantizer"), qPrintable(err));
    }

    // An HDF5 file without a Keras architecture whose tensors are all 1-D: analysed anyway
    // (there is no kernel to pick out), not an empty list; its integer dataset is listed with
    // its dtype and shape, not analysed.
    void plainHdf5IsAnalysed() {
        QTemporaryDir tmp;
        const std::string path = tmp.filePath("plain.h5").toStdString();
        {
            H5::H5File f(path, H5F_ACC_TRUNC);
            const hsize_t n = 64;
            H5::DataSpace space(1, &n);
            std::vector<float> v(n);
            for (hsize_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) / 8.0f - 4.0f;
            H5::Group block = f.createGroup("block");
            block.createDataSet("gamma", H5::PredType::IEEE_F32LE, space).write(v.data(), H5::PredType::NATIVE_FLOAT);
            // Integer state beside it (a step counter, as optimizers and QAT layers keep).
            const hsize_t three = 3;
            const int32_t steps[3] = {1, 2, 3};
            block.createDataSet("steps", H5::PredType::STD_I32LE, H5::DataSpace(1, &three)).write(steps, H5::PredType::NATIVE_INT32);
        }
        int code = -1;
        const json analysis = run({"analyze", QString::fromStdString(path), "--json"}, &code);
        QCOMPARE(code, 0);
        QCOMPARE(analysis["layers"].size(), size_t(1));
        QCOMPARE(analysis["layers"][0]["name"].get<std::string>(), std::string("block"));
        QCOMPARE(analysis["layers"][0]["tensors"].size(), size_t(1));  // the integer tensor is not analysed
        QCOMPARE(analysis["layers"][0]["tensors"][0]["shape"], json::array({64}));
        // ... but inspect lists it with its dtype and shape.
        const json inspect = run({"inspect", QString::fromStdString(path), "--json"}, &code);
        QCOMPARE(code, 0);
        const json& layer = inspect["layers"][0];
        QCOMPARE(layer["weights"].size(), size_t(1));
        QCOMPARE(layer["other_tensors"].size(), size_t(1));
        QCOMPARE(layer["other_tensors"][0]["dtype"].get<std::string>(), std::string("int32"));
        QCOMPARE(layer["other_tensors"][0]["shape"], json::array({3}));
        QCOMPARE(inspect["total_params"].get<int>(), 64);  // float values only
    }

    void badArguments() {
        int code = 0;
        QString err;
        run({"analyze", "x.h5", "--bits", "3"}, &code, &err);
        QCOMPARE(code, 2);
        QVERIFY(err.contains("--bits must be 2, 4, 8 or 16"));
        run({"analyze", "x.h5", "--method", "magic"}, &code, &err);
        QCOMPARE(code, 2);
        QVERIFY(err.contains("unknown method 'magic'"));
    }
};

QTEST_GUILESS_MAIN(AnalyzeCliTest)
#include "test_analyze_cli.moc"
