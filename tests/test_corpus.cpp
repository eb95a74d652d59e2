// Acceptance against real third-party Keras files in ../shared/corpus (never copied into the
// project). For every file the manifest lists: the layers (names and classes, in order), every
// weight tensor (name, shape as stored, dtype) and the total parameter count must equal the
// manifest's, through the core API and through `quantscope-cli inspect --json`. Negative
// samples must be refused with a message naming the file.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "formats/model_loader.h"
#include "model/model_summary.h"

using nlohmann::json;
namespace fs = std::filesystem;

class CorpusTest : public QObject {
    Q_OBJECT

    fs::path corpus_;
    json manifest_;
    QTemporaryDir tmp_;

    const json& entry(const QString& file) const {
        for (const json& e : manifest_["files"])
            if (e["file"] == file.toStdString()) return e;
        qFatal("no manifest entry");
    }

    // Weights-only files whose architecture was transcribed from the training script into the
    // manifest (no sidecar in the corpus): hand it to the loader as --arch, from a temp file.
    std::string archFor(const json& e) const {
        if (!e.contains("architecture") || e["architecture"].is_null() || !e["sidecars"].empty()) return {};
        const std::string p = (fs::path(tmp_.path().toStdString()) / (e["file"].get<std::string>() + ".arch.json")).string();
        std::ofstream(p) << e["architecture"].dump();
        return p;
    }

    void addRows() {
        QTest::addColumn<QString>("file");
        for (const json& e : manifest_["files"]) {
            const QString f = QString::fromStdString(e["file"].get<std::string>());
            QTest::newRow(f.toUtf8().constData()) << f;
        }
    }

private slots:
    void initTestCase() {
        corpus_ = fs::path(QUANTSCOPE_SHARED_DIR) / "corpus";
        if (!fs::exists(corpus_ / "manifest.json")) QSKIP("../shared/corpus is absent");
        std::ifstream in(corpus_ / "manifest.json");
        manifest_ = json::parse(in);
        QVERIFY(manifest_["files"].size() >= 20);
    }

    void loadsLikeManifest_data() { addRows(); }
    void loadsLikeManifest() {
        QFETCH(QString, file);
        const json& e = entry(file);
        const std::string path = (corpus_ / file.toStdString()).string();
        qs::LoadOptions opt;
        opt.arch_path = archFor(e);
        if (e["container"] == "invalid") {
            try {
                qs::loadModel(path, opt);
                QFAIL("an invalid file loaded");
            } catch (const qs::Error& err) {
                QVERIFY2(std::string(err.what()).find(file.toStdString()) != std::string::npos, err.what());
            }
            return;
        }
        const qs::Model m = qs::loadModel(path, opt);
        QVERIFY(m.has_architecture);
        QCOMPARE(m.paramCount(), e["total_params"].get<int64_t>());
        QCOMPARE(m.layers.size(), e["layers"].size());
        for (size_t i = 0; i < m.layers.size(); ++i) {
            QCOMPARE(m.layers[i].name, e["layers"][i]["name"].get<std::string>());
            QCOMPARE(m.layers[i].class_name.value_or("?"), e["layers"][i]["class_name"].get<std::string>());
        }
        // Every weight tensor, in order, bound to the right layer.
        std::vector<std::pair<std::string, const qs::Tensor*>> ours;
        for (const qs::Layer& l : m.layers)
            for (const qs::Tensor& t : l.weights) ours.emplace_back(l.name, &t);
        QCOMPARE(ours.size(), e["weights"].size());
        for (size_t i = 0; i < ours.size(); ++i) {
            const json& w = e["weights"][i];
            QCOMPARE(ours[i].first, w["layer"].get<std::string>());
            QCOMPARE(ours[i].second->name, w["name"].get<std::string>());
            QCOMPARE(ours[i].second->stored_shape, w["shape"].get<std::vector<int64_t>>());
            QCOMPARE(std::string(qs::dtypeName(ours[i].second->stored_dtype)), w["dtype"].get<std::string>());
        }
        if (e["keras_version"].is_string()) QCOMPARE(m.keras_version, e["keras_version"].get<std::string>());
        // Without values (inspect): the same summary (layers, shapes, dtypes, counts, output
        // shapes), and not one float read.
        opt.values = false;
        const qs::Model shapes = qs::loadModel(path, opt);
        QCOMPARE(qs::modelSummaryJson(shapes).dump(), qs::modelSummaryJson(m).dump());
        for (const qs::Layer& l : shapes.layers)
            for (const qs::Tensor& t : l.weights) QVERIFY2(t.data.empty(), t.h5_path.c_str());
    }

    // The same through the command line, as scripts will use it.
    void cliInspectJson_data() { addRows(); }
    void cliInspectJson() {
        QFETCH(QString, file);
        const json& e = entry(file);
        QStringList args{"inspect", QString::fromStdString((corpus_ / file.toStdString()).string()), "--json"};
        const std::string arch = archFor(e);
        if (!arch.empty()) args << "--arch" << QString::fromStdString(arch);
        QProcess p;
        p.start(QUANTSCOPE_CLI, args);
        QVERIFY(p.waitForFinished(60000));
        const QString err = QString::fromUtf8(p.readAllStandardError());
        if (e["container"] == "invalid") {
            QVERIFY(p.exitCode() != 0);
            QCOMPARE(err.trimmed().count('\n'), 0);  // one line
            QVERIFY2(err.contains(file), qPrintable(err));
            return;
        }
        QVERIFY2(p.exitCode() == 0, qPrintable(err));
        const json out = json::parse(p.readAllStandardOutput().toStdString());
        QCOMPARE(out["total_params"].get<int64_t>(), e["total_params"].get<int64_t>());
        QCOMPARE(out["float32_bytes"].get<int64_t>(), 4 * e["total_params"].get<int64_t>());
        QCOMPARE(out["layers"].size(), e["layers"].size());
        for (size_t i = 0; i < e["layers"].size(); ++i) {
            QCOMPARE(out["layers"][i]["name"], e["layers"][i]["name"]);
            QCOMPARE(out["layers"][i]["class_name"], e["layers"][i]["class_name"]);
        }
        QVERIFY(out["format"].is_string());
    }

    // Output shapes Keras itself reports for these models (from their model summaries).
    void outputShapes() {
        const qs::Model m = qs::loadModel((corpus_ / "k2_0_mnist_dense_on_3d.h5").string());
        QCOMPARE(*m.layers[0].output_shape, (qs::Shape{-1, 28, 15}));  // Dense on the last axis
        QCOMPARE(*m.layers[1].output_shape, (qs::Shape{-1, 420}));
        const qs::Model c = qs::loadModel((corpus_ / "k2_0_mnist_cnn_chfirst_weights.h5").string());
        QCOMPARE(*c.layers[2].output_shape, (qs::Shape{-1, 32, 12, 12}));  // channels_first pooling
        const qs::Model d = qs::loadModel((corpus_ / "tfk2_8_mnist_dwconv_bn.h5").string());
        // ftr1b: DepthwiseConv2D with depth_multiplier 2 on 16 channels; fc1 kernel is (32, 10).
        QCOMPARE(*d.findLayer("GAP")->output_shape, (qs::Shape{-1, 32}));
    }

    // Weights-only file without any architecture: layers from layer_names, classes unknown.
    void weightsOnlyWithoutArchitecture() {
        const qs::Model m = qs::loadModel((corpus_ / "k1_mnist_cnn_weights.h5").string());
        QVERIFY(!m.has_architecture);
        QCOMPARE(m.layers.size(), size_t(12));
        QVERIFY(!m.layers[0].class_name.has_value());
        QCOMPARE(m.paramCount(), int64_t(600810));
    }

    // Keras 0.3 Theano kernels: stored (out, in, kh, kw) and flipped; we keep (kh, kw, in, out)
    // un-flipped so every engine computes correlation. Check one element by hand.
    void theanoKernelsConverted() {
        const qs::Model m = qs::loadModel((corpus_ / "k0_mnist_cnn_theano_weights.h5").string());
        const qs::Tensor& k = m.layers[0].weights[0];
        QCOMPARE(k.stored_shape, (std::vector<int64_t>{32, 1, 3, 3}));
        QCOMPARE(k.shape, (std::vector<int64_t>{3, 3, 1, 32}));
        const qs::Model raw = qs::loadModel((corpus_ / "k0_mnist_cnn_theano_weights.h5").string(),
                                            qs::LoadOptions{"", false});  // no architecture: as stored
        const qs::Tensor& s = raw.layers[0].weights[0];
        // ours[h=0][w=1][i=0][o=5] == stored[o=5][i=0][2-0][2-1]
        QCOMPARE(k.data[(0 * 3 + 1) * 32 + 5], s.data[((5 * 1 + 0) * 3 + 2) * 3 + 1]);
    }
};

QTEST_GUILESS_MAIN(CorpusTest)
#include "test_corpus.moc"
