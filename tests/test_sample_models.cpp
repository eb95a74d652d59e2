// The bundled sample models: each opens, has the layer sequence the sample-models spec gives,
// and the parameter count PyTorch counted when it trained them (sample_models/samples.json:
// parameters plus BatchNorm running statistics), which is independent of our loader.
#include <QtTest>

#include <filesystem>
#include <fstream>

#include "formats/model_loader.h"

using nlohmann::json;
namespace fs = std::filesystem;

class SampleModelsTest : public QObject {
    Q_OBJECT
    fs::path dir_ = fs::path(QUANTSCOPE_SOURCE_DIR) / "sample_models";
    json info_;

    static std::vector<std::string> classes(const qs::Model& m) {
        std::vector<std::string> c;
        for (const qs::Layer& l : m.layers) c.push_back(l.class_name.value_or("?"));
        return c;
    }

private slots:
    void initTestCase() {
        std::ifstream in(dir_ / "samples.json");
        QVERIFY2(in, "sample_models/samples.json is missing");
        info_ = json::parse(in);
    }

    void layersAndParams_data() {
        QTest::addColumn<QString>("name");
        for (const char* n : {"fmnist_mlp", "fmnist_cnn", "fmnist_dwsep", "fmnist_resnet"}) QTest::newRow(n) << n;
    }
    void layersAndParams() {
        QFETCH(QString, name);
        const std::string n = name.toStdString();
        const qs::Model m = qs::loadModel((dir_ / (n + ".h5")).string());
        QCOMPARE(std::string(qs::formatName(m.format)), std::string("keras-h5-full"));
        QCOMPARE(m.paramCount(), info_["models"][n]["params"].get<int64_t>());
        QVERIFY(fs::file_size(dir_ / (n + ".h5")) < 3u * 1024 * 1024);
        const std::vector<std::string> c = classes(m);
        if (n == "fmnist_mlp") {
            QCOMPARE(c, (std::vector<std::string>{"InputLayer", "Flatten", "Dense", "Dense", "Dense"}));
            QCOMPARE(m.layers[2].config["units"].get<int>(), 256);
            QCOMPARE(m.layers[3].config["units"].get<int>(), 128);
        } else if (n == "fmnist_cnn") {
            QCOMPARE(c, (std::vector<std::string>{"InputLayer", "Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D", "Conv2D",
                                                  "BatchNormalization", "ReLU", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"}));
            QCOMPARE(*m.layers[9].output_shape, (qs::Shape{-1, 7 * 7 * 64}));
        } else if (n == "fmnist_dwsep") {
            std::vector<std::string> want{"InputLayer", "Conv2D", "BatchNormalization", "ReLU"};
            for (int b = 0; b < 5; ++b)
                for (const char* k : {"DepthwiseConv2D", "BatchNormalization", "ReLU", "Conv2D", "BatchNormalization", "ReLU"})
                    want.push_back(k);
            want.push_back("GlobalAveragePooling2D");
            want.push_back("Dense");
            QCOMPARE(c, want);
            QCOMPARE(m.findLayer("dw1_relu6")->config["max_value"].get<double>(), 6.0);
        } else {
            QCOMPARE(m.model_class, std::string("Functional"));
            QCOMPARE(std::count(c.begin(), c.end(), "Add"), 2L);
            QCOMPARE(std::count(c.begin(), c.end(), "Concatenate"), 1L);
            QCOMPARE(m.findLayer("concat")->inbound.size(), size_t(2));
            QCOMPARE(*m.findLayer("concat")->output_shape, (qs::Shape{-1, 14, 14, 32}));
        }
        // Recorded accuracy meets the floor the sample-models spec sets.
        const double floor = n == "fmnist_mlp" ? 0.87 : n == "fmnist_cnn" ? 0.90 : n == "fmnist_dwsep" ? 0.85 : 0.89;
        QVERIFY(info_["models"][n]["float_top1_pytorch"].get<double>() >= floor);
        QCOMPARE(info_["models"][n]["numpy_pytorch_agreement"].get<double>(), 1.0);
    }
};

QTEST_GUILESS_MAIN(SampleModelsTest)
#include "test_sample_models.moc"
