// Bad input never crashes and always yields one line naming the file and the problem:
// `quantscope-cli inspect` exits non-zero with that line on stderr. Each case is a regression
// test with the message it must contain.
#include <QElapsedTimer>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <fstream>
#include <random>

#include <sys/stat.h>

#include "keras_h5_writer.h"

namespace fs = std::filesystem;
using qs::testing::LayerSpec;
using qs::testing::WriteOptions;

namespace {

const char* kDenseConfig =
    R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4]}},
      {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "relu"}}]}})";

std::vector<LayerSpec> denseLayers(hsize_t in, hsize_t units) {
    return {LayerSpec{"dense", {{"kernel:0", {in, units}, {}}, {"bias:0", {units}, {}}}}};
}

}  // namespace

class BadInputTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;

    QString path(const char* name) const { return tmp_.filePath(name); }

    // Runs inspect; returns stderr after checking the exit status and the single line.
    QString inspectFails(const QString& file) {
        QProcess p;
        p.start(QUANTSCOPE_CLI, {"inspect", file});
        if (!p.waitForFinished(30000)) {
            p.kill();
            return "HANG";
        }
        const QString err = QString::fromUtf8(p.readAllStandardError()).trimmed();
        if (p.exitStatus() != QProcess::NormalExit) return "CRASH: " + err;
        if (p.exitCode() == 0) return "EXIT 0";
        if (err.contains('\n')) return "MORE THAN ONE LINE: " + err;
        return err;
    }

private slots:
    void initTestCase() { QVERIFY(tmp_.isValid()); }

    void missingPath() {
        const QString err = inspectFails(path("nope.h5"));
        QVERIFY2(err.contains("nope.h5") && err.contains("no such file"), qPrintable(err));
    }

    void directory() {
        const QString err = inspectFails(tmp_.path());
        QVERIFY2(err.contains(tmp_.path()) && err.contains("directory"), qPrintable(err));
    }

    // A FIFO with no writer: opening it for reading blocks, so neither the load nor the preflight's
    // helper may open it before seeing what it is (the helper once waited out its 1.5 s limit).
    void fifo() {
        const std::string fifo = path("pipe.h5").toStdString();
        QCOMPARE(mkfifo(fifo.c_str(), 0600), 0);
        QElapsedTimer t;
        t.start();
        const QString err = inspectFails(path("pipe.h5"));
        QVERIFY2(err.contains("pipe.h5") && err.contains("not a regular file"), qPrintable(err));
        QVERIFY2(t.elapsed() < 1000, qPrintable(QString::number(t.elapsed()) + " ms"));
    }

    void emptyFile() {
        QFile(path("empty.h5")).open(QIODevice::WriteOnly);
        const QString err = inspectFails(path("empty.h5"));
        QVERIFY2(err.contains("empty.h5") && err.contains("empty"), qPrintable(err));
    }

    void randomBytes() {
        std::mt19937 rng(42);
        std::ofstream out(path("random.h5").toStdString(), std::ios::binary);
        for (int i = 0; i < 100000; ++i) out.put(static_cast<char>(rng()));
        out.close();
        const QString err = inspectFails(path("random.h5"));
        QVERIFY2(err.contains("random.h5") && err.contains("not an HDF5 file"), qPrintable(err));
    }

    void malformedModelConfig() {
        WriteOptions o;
        o.model_config = R"({"class_name": "Sequential", "config": {"layers": [ {"class_name": )";
        qs::testing::writeKerasH5(path("badjson.h5").toStdString(), denseLayers(4, 3), o);
        const QString err = inspectFails(path("badjson.h5"));
        QVERIFY2(err.contains("badjson.h5") && err.contains("model_config") && err.contains("malformed JSON"), qPrintable(err));
    }

    void weightsDisagreeWithConfig() {
        WriteOptions o;
        o.model_config = kDenseConfig;  // Dense(3) on 4 inputs needs kernel (4, 3)
        qs::testing::writeKerasH5(path("shape.h5").toStdString(), denseLayers(4, 5), o);
        const QString err = inspectFails(path("shape.h5"));
        QVERIFY2(err.contains("shape.h5") && err.contains("layer dense") && err.contains("(4, 5)") && err.contains("(4, 3)"),
                 qPrintable(err));
    }

    void weightsForUnknownLayer() {
        WriteOptions o;
        o.model_config = kDenseConfig;
        auto layers = denseLayers(4, 3);
        layers.push_back(LayerSpec{"ghost", {{"kernel:0", {2, 2}, {}}}});
        qs::testing::writeKerasH5(path("ghost.h5").toStdString(), layers, o);
        const QString err = inspectFails(path("ghost.h5"));
        QVERIFY2(err.contains("ghost.h5") && err.contains("ghost"), qPrintable(err));
    }

    // A global heap object claiming more bytes than its collection holds (libhdf5 1.10 would copy
    // them past its buffer): refused by the heap check, naming the file, the attribute and the
    // collection; with the preflight helper off too.
    void damagedGlobalHeap() {
        WriteOptions o;
        o.model_config = kDenseConfig;
        const std::string file = path("heap.h5").toStdString();
        qs::testing::writeKerasH5(file, denseLayers(4, 3), o);
        std::string bytes;
        {
            std::ifstream in(file, std::ios::binary);
            bytes.assign((std::istreambuf_iterator<char>(in)), {});
        }
        const size_t gcol = bytes.find("GCOL");
        QVERIFY(gcol != std::string::npos);
        bytes[gcol + 16 + 8 + 1] = '\x7f';  // object 1's size (III.E) grows by 32,512 bytes
        std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
        for (const char* preflight : {"1", "0"}) {
            qputenv("QUANTSCOPE_PREFLIGHT", preflight);
            const QString err = inspectFails(path("heap.h5"));
            QVERIFY2(err.contains("heap.h5") && err.contains("@") &&
                         err.contains("the file is damaged: global heap collection at " + QString::number(gcol) + ": object 1 claims"),
                     qPrintable(err));
        }
        qunsetenv("QUANTSCOPE_PREFLIGHT");
    }

    // A copy of a real corpus file cut at several places; each must fail with the file's name
    // (the robustness issue sweeps many more offsets).
    void truncatedCorpusFile_data() {
        QTest::addColumn<double>("fraction");
        for (double f : {0.001, 0.01, 0.1, 0.5, 0.9, 0.999}) QTest::newRow(QByteArray::number(f).constData()) << f;
    }
    void truncatedCorpusFile() {
        QFETCH(double, fraction);
        const fs::path src = fs::path(QUANTSCOPE_SHARED_DIR) / "corpus" / "k2_1_fmnist_cnn_bn.h5";
        if (!fs::exists(src)) QSKIP("../shared/corpus is absent");
        const auto size = fs::file_size(src);
        std::ifstream in(src, std::ios::binary);
        std::string bytes(static_cast<size_t>(size * fraction), '\0');
        in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        const QString dst = path("truncated.h5");
        std::ofstream(dst.toStdString(), std::ios::binary | std::ios::trunc) << bytes;
        const QString err = inspectFails(dst);
        QVERIFY2(err.contains("truncated.h5") && !err.startsWith("CRASH") && err != "HANG" && err != "EXIT 0", qPrintable(err));
    }

    void keras3ArchiveMissingWeights() {
        // A zip that is not a Keras archive: no model.weights.h5 member.
        const QString zip = path("notkeras.keras");
        QProcess p;
        std::ofstream(path("config.json").toStdString()) << "{}";
        p.setWorkingDirectory(tmp_.path());
        p.start("python3", {"-c", "import zipfile; z=zipfile.ZipFile('notkeras.keras','w'); z.write('config.json'); z.close()"});
        QVERIFY(p.waitForFinished(10000));
        if (p.exitCode() != 0) QSKIP("python3 is not available to build the zip");
        const QString err = inspectFails(zip);
        QVERIFY2(err.contains("notkeras.keras") && err.contains("model.weights.h5"), qPrintable(err));
    }
};

QTEST_GUILESS_MAIN(BadInputTest)
#include "test_bad_input.moc"
