// Configs and exports (issue 8): config files round-trip byte for byte; each bad field is
// named; a save that fails midway (file size limit hit while writing) leaves the old file
// intact; the quantized-weights HDF5 reloads to exactly the dequantized values, each within
// half a step of the original; the AIMET encodings validate against the 0.5.0 schema (by
// Debian's python3-jsonschema, not by us) and carry our scales in AIMET's offset convention;
// the C header compiles with gcc -Wall -Wextra -Werror and a program built on it prints the
// values the quantized model holds.
#include <H5Cpp.h>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"
#include "data/idx_dataset.h"
#include "engine/quantized_model.h"
#include "eval/evaluation.h"
#include "export/exports.h"
#include "formats/model_loader.h"
#include "quant/quant_config.h"
#include "quant/quant_params.h"
#include "quant/tensor_stats.h"

namespace fs = std::filesystem;

namespace {

const fs::path kSamples = fs::path(QUANTSCOPE_SOURCE_DIR) / "sample_models";
const fs::path kSchema = fs::path(QUANTSCOPE_SOURCE_DIR) / "resources/schemas/aimet_encodings_0.5.0.schema.json";
const char* kFashion = "/usr/share/datasets/fashion-mnist";

std::string readAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void writeAll(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// The mixed config of the README example: conv2d int2, dense int4 per-tensor, dense_1 int16 pow2.
qs::QuantConfig mixedConfig() {
    qs::QuantConfig c;
    c.layers["conv2d"] = qs::parseLayerSpec("2", c.defaults);
    c.layers["dense"] = qs::parseLayerSpec("4:per-tensor", c.defaults);
    c.layers["dense_1"] = qs::parseLayerSpec("16:pow2", c.defaults);
    return c;
}

// Runs `f` in a child process; returns its exit status (or 128 + signal).
template <class F>
int inChild(F f) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(f());
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

class ExportsTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string path(const char* name) const { return tmp_.filePath(name).toStdString(); }

private slots:
    void initTestCase() { QVERIFY(tmp_.isValid()); }

    void layerSpecs() {
        const qs::LayerQuant base;
        const qs::LayerQuant a = qs::parseLayerSpec("8:per-tensor:pow2", base);
        QCOMPARE(a.precision, qs::Precision::Int8);
        QCOMPARE(a.granularity, qs::Granularity::PerTensor);
        QCOMPARE(a.weight_method, std::string("pow2"));
        QCOMPARE(qs::parseLayerSpec("float32", base).precision, qs::Precision::Float32);
        QCOMPARE(qs::parseLayerSpec("4", base).granularity, qs::Granularity::PerChannel);
        for (const char* bad : {"3", "8:per-row", "8:per-tensor:pow2:x", "", "int9"}) {
            bool threw = false;
            try {
                qs::parseLayerSpec(bad, base);
            } catch (const qs::Error& e) {
                threw = std::string(e.what()).find("--layer") == 0;
            }
            QVERIFY2(threw, bad);
        }
    }

    void configRoundTripIsByteIdentical() {
        const qs::Model m = qs::loadModel((kSamples / "fmnist_cnn.h5").string());
        qs::QuantConfig c = mixedConfig();
        c.calibration_dataset = kFashion;
        qs::recordScales(c, m);
        QCOMPARE(c.scales.size(), size_t(4));                 // two Conv2D, two Dense
        QCOMPARE(c.scales["dense"].scales.size(), size_t(1));  // per-tensor
        QCOMPARE(c.scales["conv2d_1"].scales.size(), size_t(64));
        // pow2: every scale a power of two.
        for (double s : c.scales["dense_1"].scales) QCOMPARE(std::exp2(std::round(std::log2(s))), s);
        qs::saveQuantConfig(path("a.json"), c);
        const qs::QuantConfig back = qs::loadQuantConfig(path("a.json"));
        qs::checkConfigAgainstModel(back, m, path("a.json"));
        for (const qs::Layer& l : m.layers) QVERIFY(back.forLayer(l.name) == c.forLayer(l.name));
        QVERIFY(back.scales == c.scales);
        QCOMPARE(back.calibration_dataset, std::string(kFashion));
        qs::saveQuantConfig(path("b.json"), back);
        QCOMPARE(readAll(path("b.json")), readAll(path("a.json")));
        // The CLI writes the same file for the same choices.
        QProcess cli;
        cli.start(QUANTSCOPE_CLI, {"config", QString::fromStdString((kSamples / "fmnist_cnn.h5").string()), "--layer", "conv2d=2", "--layer",
                                   "dense=4:per-tensor", "--layer", "dense_1=16:pow2", "--data", kFashion, "--out",
                                   QString::fromStdString(path("cli.json"))});
        QVERIFY(cli.waitForFinished(60000));
        QCOMPARE(cli.exitCode(), 0);
        QCOMPARE(readAll(path("cli.json")), readAll(path("a.json")));
    }

    // Each field wrong in turn: the layer entries, then the rest of the file.
    void badFieldsAreNamed_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("field");
        QTest::addColumn<QString>("says");
        const QString head = R"({"format": "quantscope-config", "version": 1, )";
        auto layers = [&](const QString& entries) { return head + R"("layers": )" + entries + "}"; };
        QTest::newRow("unknown layer") << layers(R"({"densse": {"precision": "int4"}})") << "layers.densse" << "no layer named 'densse'";
        QTest::newRow("bits 3") << layers(R"({"dense": {"precision": "int3"}})") << "layers.dense.precision" << "'int3' is not one of";
        QTest::newRow("negative scale") << layers(R"({"dense": {"scales": [-0.5]}})") << "layers.dense.scales[0]" << "finite positive scale";
        QTest::newRow("scale count") << layers(R"({"conv2d": {"scales": [0.1, 0.2]}})") << "layers.conv2d.scales" << "2 scales for 32 output channels";
        QTest::newRow("zero points") << layers(R"({"dense": {"scales": [0.1], "zero_points": [0, 1]}})") << "layers.dense.zero_points" << "2 entries for 1 scales";
        QTest::newRow("no weights") << layers(R"({"flatten": {"precision": "int8"}})") << "layers.flatten" << "has no weights";
        QTest::newRow("unknown field") << layers(R"({"dense": {"bits": "4"}})") << "layers.dense.bits" << "unknown field";
        QTest::newRow("granularity") << layers(R"({"dense": {"granularity": "per_row"}})") << "layers.dense.granularity" << "not per_channel or per_tensor";
        QTest::newRow("not JSON") << "{\"format\": " << "" << "malformed JSON";
        QTest::newRow("not an object") << "[1, 2]" << "" << "must be a JSON object";
        QTest::newRow("format") << R"({"format": "aimet", "version": 1})" << "format" << "must be \"quantscope-config\"";
        QTest::newRow("version") << R"({"format": "quantscope-config", "version": 2})" << "version" << "reads version 1";
        QTest::newRow("mode") << head + R"("mode": "fast"})" << "mode" << "must be \"integer\", \"hybrid\" or \"float16\"";
        QTest::newRow("calibration_samples") << head + R"("calibration_samples": -5})" << "calibration_samples" << "integer from 1 to 1000000";
        QTest::newRow("calibration_dataset") << head + R"("calibration_dataset": 7})" << "calibration_dataset" << "must be a string";
        QTest::newRow("defaults.precision") << head + R"("defaults": {"precision": "int5"}})" << "defaults.precision" << "'int5' is not one of";
        QTest::newRow("weight_method") << head + R"("defaults": {"weight_method": "magic"}})" << "defaults.weight_method" << "'magic' is not one of max_abs";
        QTest::newRow("activation_method") << head + R"("layers": {"dense": {"activation_method": "max_abs"}}})" << "layers.dense.activation_method" << "'max_abs' is not one of min_max";
        QTest::newRow("layers") << head + R"("layers": [1]})" << "layers" << "must be an object keyed by layer name";
        QTest::newRow("scales type") << head + R"("layers": {"dense": {"scales": "big"}}})" << "layers.dense.scales" << "non-empty array of numbers";
        QTest::newRow("unknown top field") << head + R"("colour": "red"})" << "colour" << "unknown field";
    }
    void badFieldsAreNamed() {
        QFETCH(QString, text);
        QFETCH(QString, field);
        QFETCH(QString, says);
        const qs::Model m = qs::loadModel((kSamples / "fmnist_cnn.h5").string());
        const std::string file = path("bad.json");
        writeAll(file, text.toStdString());
        try {
            const qs::QuantConfig c = qs::loadQuantConfig(file);
            qs::checkConfigAgainstModel(c, m, file);
            QFAIL("accepted");
        } catch (const qs::Error& e) {
            QCOMPARE(QString::fromStdString(e.file()), QString::fromStdString(file));
            if (!field.isEmpty()) QCOMPARE(QString::fromStdString(e.objectPath()), field);
            QVERIFY2(QString::fromStdString(e.message()).contains(says), e.what());
        }
    }

    void failedSaveKeepsOldFile() {
        const std::string file = path("keep.json");
        qs::QuantConfig small;
        qs::saveQuantConfig(file, small);
        const std::string before = readAll(file);
        // A config far past the file-size limit set below: write(2) fails with EFBIG midway.
        qs::QuantConfig big;
        for (int i = 0; i < 2000; ++i) big.layers["layer_" + std::to_string(i)] = qs::LayerQuant{};
        const int status = inChild([&] {
            std::signal(SIGXFSZ, SIG_IGN);
            const rlimit lim{4096, 4096};
            ::setrlimit(RLIMIT_FSIZE, &lim);
            try {
                qs::saveQuantConfig(file, big);
            } catch (const qs::Error& e) {
                return std::string(e.what()).find("previous file is unchanged") != std::string::npos ? 0 : 2;
            }
            return 1;  // the save claimed success
        });
        QCOMPARE(status, 0);
        QCOMPARE(readAll(file), before);
        for (const auto& e : fs::directory_iterator(tmp_.path().toStdString()))
            QVERIFY2(e.path().filename().string().find(".tmp-") == std::string::npos, e.path().c_str());
        // And a save into a missing folder names the file.
        try {
            qs::saveQuantConfig(path("no/such/dir/c.json"), small);
            QFAIL("saved into a missing folder");
        } catch (const qs::Error& e) {
            QVERIFY(std::string(e.what()).find("no/such/dir/c.json") != std::string::npos);
        }
    }

    void quantizedHdf5ReloadsWithinHalfAStep() {
        const qs::Model m = qs::loadModel((kSamples / "fmnist_cnn.h5").string());
        const qs::QuantConfig c = mixedConfig();
        qs::exportQuantizedWeightsH5(m, c, path("q.h5"));
        const qs::Model back = qs::loadModel(path("q.h5"));
        QCOMPARE(back.layers.size(), m.layers.size());
        int quantized = 0;
        for (size_t li = 0; li < m.layers.size(); ++li) {
            const qs::Layer& a = m.layers[li];
            const qs::Layer& b = back.layers[li];
            QCOMPARE(b.name, a.name);
            QCOMPARE(b.weights.size(), a.weights.size());
            const qs::Tensor* kernel = qs::layerKernel(a);
            for (size_t ti = 0; ti < a.weights.size(); ++ti) {
                const qs::Tensor& ta = a.weights[ti];
                const qs::Tensor& tb = b.weights[ti];
                QCOMPARE(tb.shape, ta.shape);
                if (&ta != kernel) {
                    QCOMPARE(tb.data, ta.data);  // biases and BN vectors as they were
                    continue;
                }
                const qs::Candidate cand = qs::weightCandidate(ta, qs::channelCount(a, ta), c.forLayer(a.name));
                const size_t ch = static_cast<size_t>(qs::channelCount(a, ta));
                for (size_t i = 0; i < ta.data.size(); ++i) {
                    const qs::QuantParams& p = cand.params[cand.params.size() == 1 ? 0 : i % ch];
                    const float expect = static_cast<float>(p.scale * qs::quantize(ta.data[i], p));
                    QCOMPARE(tb.data[i], expect);
                    QVERIFY(std::fabs(tb.data[i] - ta.data[i]) <= p.scale / 2 * (1 + 1e-6));
                }
                ++quantized;
            }
        }
        QCOMPARE(quantized, 4);
        // A tampered scale count is refused naming the dataset.
        {
            H5::H5File f(path("q.h5"), H5F_ACC_RDWR);
            H5::DataSet ds = f.openDataSet("conv2d/conv2d/kernel:0");
            ds.removeAttr("quantscope_scale");
            const hsize_t n = 3;
            const double s[3] = {0.1, 0.2, 0.3};
            ds.createAttribute("quantscope_scale", H5::PredType::IEEE_F64LE, H5::DataSpace(1, &n)).write(H5::PredType::NATIVE_DOUBLE, s);
        }
        try {
            qs::loadModel(path("q.h5"));
            QFAIL("tampered file loaded");
        } catch (const qs::Error& e) {
            QVERIFY2(std::string(e.what()).find("conv2d/kernel:0") != std::string::npos, e.what());
            QVERIFY2(std::string(e.what()).find("scale and zero point counts differ") != std::string::npos, e.what());
        }
    }

    void packing() {
        const std::vector<int32_t> v4 = {-7, 7, 0, -1, 3};
        const std::vector<uint8_t> p4 = qs::packLowBits(v4, 4);
        QCOMPARE(p4, (std::vector<uint8_t>{0x79, 0xF0, 0x03}));  // -7 = 0x9, 7 = 0x7; 0, -1 = 0xF; 3
        for (size_t i = 0; i < v4.size(); ++i) QCOMPARE(qs::unpackLowBits(p4.data(), static_cast<int64_t>(i), 4), v4[i]);
        const std::vector<int32_t> v2 = {-1, 1, 0, -1, 1};
        const std::vector<uint8_t> p2 = qs::packLowBits(v2, 2);
        QCOMPARE(p2, (std::vector<uint8_t>{0xC7, 0x01}));  // 11, 01, 00, 11 from the low bits up
        for (size_t i = 0; i < v2.size(); ++i) QCOMPARE(qs::unpackLowBits(p2.data(), static_cast<int64_t>(i), 2), v2[i]);
    }

    void aimetEncodingsValidate() {
        if (!fs::exists(kFashion)) QSKIP("dataset-fashion-mnist missing");
        const qs::Model m = qs::loadModel((kSamples / "fmnist_cnn.h5").string());
        const qs::QuantizedModel qm = quantizedCnn(m);
        const std::vector<std::string> notes = qs::exportAimetEncodings(qm, path("enc.json"));
        QCOMPARE(notes.size(), size_t(1));  // conv2d's 2-bit weights
        QVERIFY(notes[0].find("below AIMET's minimum bitwidth") != std::string::npos);
        QProcess py;
        py.start("/usr/bin/python3", {"-c",
                                      "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))); print('ok')",
                                      tmp_.filePath("enc.json"), QString::fromStdString(kSchema.string())});
        QVERIFY(py.waitForFinished(60000));
        if (py.exitCode() != 0 && py.readAllStandardError().contains("No module named 'jsonschema'")) QSKIP("python3-jsonschema missing");
        QCOMPARE(py.readAllStandardOutput().trimmed(), QByteArray("ok"));
        // A schema violation is caught by the same check (the validator is not a no-op).
        writeAll(path("enc_bad.json"), R"({"version": "0.5.0", "activation_encodings": {}, "param_encodings": {"w": [{"dtype": "int", "bitwidth": 2, "is_symmetric": "True", "max": 1, "min": -2, "offset": -2, "scale": 1}]}})");
        py.start("/usr/bin/python3", {"-c", "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
                                      tmp_.filePath("enc_bad.json"), QString::fromStdString(kSchema.string())});
        QVERIFY(py.waitForFinished(60000));
        QVERIFY(py.exitCode() != 0);
        // Values: conv2d_1's int8 per-channel weights (BN folded) in AIMET's offset convention.
        const nlohmann::json j = nlohmann::json::parse(readAll(path("enc.json")));
        size_t op = 0;
        while (qm.graph.ops[op].name != "conv2d_1") ++op;
        const nlohmann::json& w = j["param_encodings"]["conv2d_1/kernel:0"];
        QCOMPARE(w.size(), qm.ops[op].w_params.size());
        QCOMPARE(w.size(), size_t(64));
        for (size_t c = 0; c < w.size(); ++c) {
            const double s = qm.ops[op].w_params[c].scale;
            QCOMPARE(w[c]["scale"].get<double>(), s);
            QCOMPARE(w[c]["offset"].get<int>(), -128);
            QCOMPARE(w[c]["min"].get<double>(), -128 * s);
            QCOMPARE(w[c]["max"].get<double>(), 127 * s);
            QCOMPARE(w[c]["is_symmetric"].get<std::string>(), std::string("True"));
        }
        // Its output (after the fused ReLU): real = scale * (q - zp) = scale * (q' + offset).
        const nlohmann::json& a = j["activation_encodings"]["conv2d_1:0"][0];
        QCOMPARE(a["offset"].get<int>(), -128 - qm.ops[op].out.zero_point);
        QCOMPARE(a["scale"].get<double>(), qm.ops[op].out.scale);
        QVERIFY(j["param_encodings"].contains("dense/kernel:0"));
        QCOMPARE(j["param_encodings"]["dense/kernel:0"][0]["bitwidth"].get<int>(), 4);
        QVERIFY(!j["param_encodings"].contains("conv2d/kernel:0"));
    }

    void cHeaderCompilesAndHoldsTheValues() {
        if (!fs::exists(kFashion)) QSKIP("dataset-fashion-mnist missing");
        const qs::Model m = qs::loadModel((kSamples / "fmnist_cnn.h5").string());
        const qs::QuantizedModel qm = quantizedCnn(m);
        qs::exportCHeader(qm, path("model.h"));
        writeAll(path("main.c"), R"(#include <stdio.h>
#include "model.h"
int main(void) {
    /* unpack the first int2 weight of conv2d and the second int4 weight of dense */
    int c0 = qs_conv2d_weights[0] & 3; c0 = c0 >= 2 ? c0 - 4 : c0;
    int d1 = (qs_dense_weights[0] >> 4) & 15; d1 = d1 >= 8 ? d1 - 16 : d1;
    printf("%d %d %d %d %ld %d %d %.9g %d %d\n", qs_conv2d_1_weights[5], c0, d1, qs_dense_1_weights[3],
           (long)qs_conv2d_1_bias[7], qs_conv2d_1_multiplier[7], qs_conv2d_1_shift[7], qs_conv2d_1_weight_scales[7],
           qs_conv2d_1_output_zero_point, qs_conv2d_1_shape[2]);
    return 0;
}
)");
        QProcess gcc;
        gcc.start("gcc", {"-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", tmp_.filePath("prog"), tmp_.filePath("main.c")});
        QVERIFY(gcc.waitForFinished(120000));
        QVERIFY2(gcc.exitCode() == 0, gcc.readAllStandardError().constData());
        QProcess prog;
        prog.start(tmp_.filePath("prog"), {});
        QVERIFY(prog.waitForFinished(10000));
        auto opIndex = [&](const char* name) {
            size_t i = 0;
            while (qm.graph.ops[i].name != name) ++i;
            return i;
        };
        const qs::QuantizedOp& c1 = qm.ops[opIndex("conv2d_1")];
        const qs::QuantizedOp& c0 = qm.ops[opIndex("conv2d")];
        const qs::QuantizedOp& d = qm.ops[opIndex("dense")];
        const qs::QuantizedOp& d1 = qm.ops[opIndex("dense_1")];
        char expect[512];
        std::snprintf(expect, sizeof expect, "%d %d %d %d %ld %d %d %.9g %d %d", c1.wq[5], c0.wq[0], d.wq[1], d1.wq[3], static_cast<long>(c1.bias_q[7]),
                      c1.mult[7].multiplier, c1.mult[7].shift, static_cast<double>(static_cast<float>(c1.w_params[7].scale)), c1.out.zero_point, 32);
        QCOMPARE(QString(prog.readAllStandardOutput()).trimmed(), QString(expect));
        QCOMPARE(d1.weight_bits, 16);
    }

private:
    qs::QuantizedModel quantizedCnn(const qs::Model& m) const {
        const qs::ImageDataset test = qs::readIdxPair(std::string(kFashion) + "/t10k-images-idx3-ubyte.gz",
                                                      std::string(kFashion) + "/t10k-labels-idx1-ubyte.gz");
        const qs::Preprocessing pre{255.0, 0.0, 1.0};
        return qs::quantizeModel(m, mixedConfig(), qs::preprocessSpread(test, pre, 100));
    }
};

QTEST_MAIN(ExportsTest)
#include "test_exports.moc"
