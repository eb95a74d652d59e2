// Hostile structure (issue 9): files built to hurt a reader, each a regression test with the
// message it must give. Every case runs `quantscope-cli` in a child process, so a crash, a
// hang (30 s) or a second line shows up as a failure; the sanitizer build runs them too.
// Cases: dimensions past 2^63 and past the machine's memory (refused before allocating, with
// the size); a 100 MB model_config (read) and one nested 10,000 deep (refused); a cycle and a
// missing inbound layer in a Functional graph; layer names with '/' and non-ASCII letters;
// external and soft links (never followed); .keras archives with '../' members, a declared
// 4 GiB member and a 100 MB-of-zeros bzip2 bomb; labels past the model's classes; images
// that are truncated, not images, 10^8 pixels (header only), or of another size; and the
// user's model file byte-identical with its mtime after every command that reads it.
#include <hdf5.h>
#include <QCryptographicHash>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <fstream>

#include "keras_h5_writer.h"

namespace fs = std::filesystem;
using qs::testing::LayerSpec;
using qs::testing::WriteOptions;

namespace {

const fs::path kSamples = fs::path(QUANTSCOPE_SOURCE_DIR) / "sample_models";

const char* kDenseConfig =
    R"({"class_name": "Sequential", "config": {"name": "s", "layers": [
      {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4]}},
      {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "relu"}}]}})";

std::vector<LayerSpec> denseLayers(const std::string& name = "dense") {
    return {LayerSpec{name, {{"kernel:0", {4, 3}, {}}, {"bias:0", {3}, {}}}}};
}

// A Functional model: in -> a -> b, with `a` taking its input from `a_input`.
std::string functionalConfig(const std::string& a_input) {
    return R"({"class_name": "Functional", "config": {"name": "f",
      "layers": [
        {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_input_shape": [null, 4]}, "inbound_nodes": []},
        {"class_name": "Dense", "name": "a", "config": {"name": "a", "units": 4}, "inbound_nodes": [[[")" +
           a_input + R"(", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "b", "config": {"name": "b", "units": 4}, "inbound_nodes": [[["a", 0, 0, {}]]]}],
      "input_layers": [["in", 0, 0]], "output_layers": [["b", 0, 0]]}})";
}

std::vector<LayerSpec> functionalLayers() {
    return {LayerSpec{"a", {{"kernel:0", {4, 4}, {}}, {"bias:0", {4}, {}}}}, LayerSpec{"b", {{"kernel:0", {4, 4}, {}}, {"bias:0", {4}, {}}}}};
}

// Replaces the dense kernel with an empty chunked dataset of `dims` (HDF5 stores nothing until
// written, so the file stays tiny whatever the dimensions claim).
void replaceKernel(const std::string& path, std::vector<hsize_t> dims) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const char* name = "/model_weights/dense/dense/kernel:0";
    H5Ldelete(f, name, H5P_DEFAULT);
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    std::vector<hsize_t> chunk(dims.size(), 1);
    H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
    const hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    QVERIFY(ds >= 0);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(f);
}

// Runs the CLI; returns stderr, or a marker for a crash, a hang, success or a second line.
QString cliFails(const QStringList& args, int timeout_ms = 30000) {
    QProcess p;
    p.start(QUANTSCOPE_CLI, args);
    if (!p.waitForFinished(timeout_ms)) {
        p.kill();
        p.waitForFinished();
        return "HANG";
    }
    const QString err = QString::fromUtf8(p.readAllStandardError()).trimmed();
    if (p.exitStatus() != QProcess::NormalExit) return "CRASH: " + err;
    if (p.exitCode() == 0) return "EXIT 0";
    const QStringList lines = err.split('\n', Qt::SkipEmptyParts);
    if (lines.size() != 1 && !err.startsWith("preprocessing")) return "MORE THAN ONE LINE: " + err;
    return lines.last();
}

bool python(const QString& dir, const QString& script) {
    QProcess p;
    p.setWorkingDirectory(dir);
    p.start("python3", {"-c", script});
    return p.waitForFinished(120000) && p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
}

}  // namespace

class HostileInputTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;

    std::string path(const char* name) const { return tmp_.filePath(name).toStdString(); }
    QString qpath(const char* name) const { return tmp_.filePath(name); }

    void writeDense(const char* name, const std::string& config = kDenseConfig) {
        WriteOptions o;
        o.model_config = config;
        qs::testing::writeKerasH5(path(name), denseLayers(), o);
    }

private slots:
    void initTestCase() {
        QVERIFY(tmp_.isValid());
        H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    }

    void dimensionsPast2To63() {
        writeDense("huge.h5");
        replaceKernel(path("huge.h5"), {hsize_t(1) << 40, hsize_t(1) << 40});
        QCOMPARE(QFileInfo(qpath("huge.h5")).size() < 100000, true);
        const QString err = cliFails({"inspect", qpath("huge.h5")});
        QVERIFY2(err.contains("huge.h5") && err.contains("kernel:0") && err.contains("multiply past 2^63"), qPrintable(err));
    }

    void dimensionsPastMemory() {
        writeDense("big.h5");
        replaceKernel(path("big.h5"), {hsize_t(1) << 20, hsize_t(1) << 20});  // 2^40 floats: 4 TiB
        const QString err = cliFails({"inspect", qpath("big.h5")});
        QVERIFY2(err.contains("big.h5") && err.contains("1099511627776 floats") && err.contains("4194304 MiB") &&
                     err.contains("more than this machine's memory"),
                 qPrintable(err));
    }

    void modelConfigOf100MB() {
        // Valid JSON, 100 MB of it in a field Keras would ignore: refused by its size, at once
        // (parsing that much into a DOM would take 20 s); a 10 MB one is read.
        for (const size_t mb : {size_t(100), size_t(10)}) {
            std::string config = kDenseConfig;
            std::string pad = R"(, "padding": [)";
            pad.reserve(mb << 20);
            while (pad.size() < (mb << 20)) pad += "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,";
            pad += "0]}";
            config.replace(config.size() - 1, 1, pad);
            WriteOptions o;
            o.model_config = config;
            o.latest_format = true;  // attributes over 64 KiB need HDF5's dense attribute storage
            const std::string file = path("big_config.h5");
            qs::testing::writeKerasH5(file, denseLayers(), o);
            QElapsedTimer t;
            t.start();
            QProcess p;
            p.start(QUANTSCOPE_CLI, {"inspect", QString::fromStdString(file)});
            QVERIFY(p.waitForFinished(60000));
            QCOMPARE(p.exitStatus(), QProcess::NormalExit);
            const QString err = QString::fromUtf8(p.readAllStandardError());
            if (mb == 100) {
                QCOMPARE(p.exitCode(), 1);
                QVERIFY2(err.contains("big_config.h5") && err.contains("model_config") && err.contains("JSON is 100 MiB, over the 32 MiB limit"),
                         qPrintable(err));
            } else {
                QVERIFY2(p.exitCode() == 0, qPrintable(err));
                QVERIFY(p.readAllStandardOutput().contains("dense"));
            }
            qInfo("%zu MB model_config: %s in %lld ms", mb, p.exitCode() ? "refused" : "read", t.elapsed());
        }
    }

    void modelConfigNested10000Deep() {
        std::string config = R"({"class_name": "Sequential", "config": {"layers": [], "deep": )";
        config += std::string(10000, '[') + std::string(10000, ']') + "}}";
        writeDense("deep.h5", config);
        const QString err = cliFails({"inspect", qpath("deep.h5")});
        QVERIFY2(err.contains("deep.h5") && err.contains("model_config") && err.contains("nested 10002 deep, over the limit of 512"),
                 qPrintable(err));
    }

    void functionalCycle() {
        WriteOptions o;
        o.model_config = functionalConfig("b");  // a <- b <- a
        qs::testing::writeKerasH5(path("cycle.h5"), functionalLayers(), o);
        const QString err = cliFails({"inspect", qpath("cycle.h5")});
        QVERIFY2(err.contains("cycle.h5") && err.contains("cycle"), qPrintable(err));
    }

    void functionalMissingInbound() {
        WriteOptions o;
        o.model_config = functionalConfig("nowhere");
        qs::testing::writeKerasH5(path("missing.h5"), functionalLayers(), o);
        const QString err = cliFails({"inspect", qpath("missing.h5")});
        QVERIFY2(err.contains("missing.h5") && err.contains("layer a takes its input from unknown layer 'nowhere'"), qPrintable(err));
    }

    void layerNameWithSlash() {
        // h5py turns '/' in a layer name into nested groups; the weights are found there, and
        // the name is kept as Keras wrote it.
        std::string config = kDenseConfig;
        config.replace(config.find(R"("name": "dense")"), 15, R"("name": "blk/dense")");
        WriteOptions o;
        o.model_config = config;
        qs::testing::writeKerasH5(path("slash.h5"), denseLayers("blk/dense"), o);
        QProcess p;
        p.start(QUANTSCOPE_CLI, {"inspect", qpath("slash.h5"), "--json"});
        QVERIFY(p.waitForFinished(30000));
        const QString err = QString::fromUtf8(p.readAllStandardError());
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QVERIFY2(p.exitCode() == 0, qPrintable(err));
        const QString out = QString::fromUtf8(p.readAllStandardOutput());
        QVERIFY2(out.contains("\"blk/dense\"") && out.contains("\"params\": 15"), qPrintable(out.left(2000)));
    }

    void layerNameNonAscii() {
        const std::string name = "d\xC3\xA9nse_\xC3\xBC\xE5\xB1\x82";  // "dénse_ü层" in UTF-8
        std::string config = kDenseConfig;
        config.replace(config.find(R"("name": "dense")"), 15, "\"name\": \"" + name + "\"");
        WriteOptions o;
        o.model_config = config;
        qs::testing::writeKerasH5(path("utf8.h5"), denseLayers(name), o);
        QProcess p;
        p.start(QUANTSCOPE_CLI, {"inspect", qpath("utf8.h5"), "--json"});
        QVERIFY(p.waitForFinished(30000));
        QCOMPARE(p.exitCode(), 0);
        QVERIFY(p.readAllStandardOutput().contains(QByteArray::fromStdString("\"" + name + "\"")));
    }

    void externalLinkNotFollowed() {
        writeDense("target.h5");
        writeDense("external.h5");
        const hid_t f = H5Fopen(path("external.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        H5Ldelete(f, "/model_weights/dense/dense/kernel:0", H5P_DEFAULT);
        QVERIFY(H5Lcreate_external(path("target.h5").c_str(), "/model_weights/dense/dense/kernel:0", f, "/model_weights/dense/dense/kernel:0",
                                   H5P_DEFAULT, H5P_DEFAULT) >= 0);
        H5Fclose(f);
        const QString err = cliFails({"inspect", qpath("external.h5")});
        QVERIFY2(err.contains("external.h5") && err.contains("kernel:0") && err.contains("external link") && err.contains("not followed"),
                 qPrintable(err));
    }

    void softLinkNotFollowed() {
        writeDense("soft.h5");
        const hid_t f = H5Fopen(path("soft.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        H5Ldelete(f, "/model_weights/dense/dense/kernel:0", H5P_DEFAULT);
        QVERIFY(H5Lcreate_soft("/model_weights/dense/dense/bias:0", f, "/model_weights/dense/dense/kernel:0", H5P_DEFAULT, H5P_DEFAULT) >= 0);
        H5Fclose(f);
        const QString err = cliFails({"inspect", qpath("soft.h5")});
        QVERIFY2(err.contains("soft.h5") && err.contains("kernel:0") && err.contains("soft link") && err.contains("not followed"), qPrintable(err));
    }

    void kerasZipWithDotDotMember() {
        if (!python(tmp_.path(), "import zipfile\n"
                                 "z = zipfile.ZipFile('dotdot.keras', 'w')\n"
                                 "z.writestr('config.json', '{}')\n"
                                 "z.writestr('metadata.json', '{}')\n"
                                 "z.writestr('../model.weights.h5', b'x' * 100)\n"
                                 "z.close()\n"))
            QSKIP("python3 is not available to build the zip");
        const QString err = cliFails({"inspect", qpath("dotdot.keras")});
        QVERIFY2(err.contains("dotdot.keras") && err.contains("../model.weights.h5") && err.contains("escapes the archive"), qPrintable(err));
        QVERIFY(!QFileInfo::exists(QFileInfo(tmp_.path()).dir().filePath("model.weights.h5")));
    }

    void kerasZipDeclaringFourGiB() {
        // A small member whose size fields were edited to claim 4 GiB - 16: refused from the
        // directory entry (a ratio no real file has), before anything is inflated.
        if (!python(tmp_.path(), "import zipfile, struct\n"
                                 "z = zipfile.ZipFile('liar.keras', 'w', zipfile.ZIP_DEFLATED)\n"
                                 "z.writestr('config.json', '{}')\n"
                                 "z.writestr('model.weights.h5', b'\\0' * 1000)\n"
                                 "z.close()\n"
                                 "b = bytearray(open('liar.keras', 'rb').read())\n"
                                 "c = b.rfind(b'PK\\x01\\x02')\n"  // central entry of model.weights.h5
                                 "b[c + 24:c + 28] = struct.pack('<I', 0xFFFFFFF0)\n"
                                 "l = b.rfind(b'PK\\x03\\x04')\n"  // and its local header, so both agree
                                 "b[l + 22:l + 26] = struct.pack('<I', 0xFFFFFFF0)\n"
                                 "open('liar.keras', 'wb').write(b)\n"))
            QSKIP("python3 is not available to build the zip");
        const QString err = cliFails({"inspect", qpath("liar.keras")});
        QVERIFY2(err.contains("liar.keras") && err.contains("model.weights.h5") && err.contains("compression ratio over 2000:1") &&
                     err.contains("zip bomb"),
                 qPrintable(err));
    }

    void kerasZipBomb() {
        // 100 MB of zeros in bzip2: about 100 bytes in the archive, a ratio near 10^6.
        if (!python(tmp_.path(), "import zipfile\n"
                                 "z = zipfile.ZipFile('bomb.keras', 'w', zipfile.ZIP_BZIP2)\n"
                                 "z.writestr('config.json', b' ' * (100 << 20) + b'{}')\n"
                                 "z.writestr('model.weights.h5', b'')\n"
                                 "z.close()\n"))
            QSKIP("python3 is not available to build the zip");
        QVERIFY(QFileInfo(qpath("bomb.keras")).size() < 10000);
        const QString err = cliFails({"inspect", qpath("bomb.keras")});
        QVERIFY2(err.contains("bomb.keras") && err.contains("config.json") && err.contains("compression ratio over 2000:1"), qPrintable(err));
    }

    void labelsPastTheModelsClasses() {
        // 20 images, labels 0..19, for a 10-class model: refused at the first label past 9.
        // .npy written by hand (format 1.0: magic, header length, a dict padded to 64 bytes).
        if (!python(tmp_.path(), "import zipfile, struct\n"
                                 "def npy(descr, shape, data):\n"
                                 "    h = \"{'descr': '%s', 'fortran_order': False, 'shape': %s, }\" % (descr, shape)\n"
                                 "    h += ' ' * (63 - (len(h) + 10) % 64) + '\\n'\n"
                                 "    return b'\\x93NUMPY\\x01\\x00' + struct.pack('<H', len(h)) + h.encode() + data\n"
                                 "z = zipfile.ZipFile('labels.npz', 'w')\n"
                                 "z.writestr('x_test.npy', npy('|u1', (20, 28, 28), bytes(20 * 28 * 28)))\n"
                                 "z.writestr('y_test.npy', npy('<i8', (20,), b''.join(struct.pack('<q', i) for i in range(20))))\n"
                                 "z.close()\n"))
            QSKIP("python3 is not available to build the npz");
        const QString err = cliFails({"eval", QString::fromStdString((kSamples / "fmnist_mlp.h5").string()), "--data", qpath("labels.npz")});
        QVERIFY2(err.contains("labels.npz") && err.contains("label 10 of image 10 is past the model's 10 classes"), qPrintable(err));
    }

    void imagesThatFailToDecode() {
        // Image-folder test sets (class sub-folders): every broken image is refused by its name
        // before any evaluation. PNGs are written by hand (zlib + struct), no imaging library.
        const QString script = "import zlib, struct, os, sys\n"
                               "def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)\n"
                               "def png(w, h, body=None):\n"
                               "    raw = body if body is not None else zlib.compress(b''.join(b'\\0' + bytes(w) for _ in range(h)))\n"
                               "    return b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0)) + chunk(b'IDAT', raw) + chunk(b'IEND', b'')\n"
                               "def folder(name, files):\n"
                               "    for rel, data in files.items():\n"
                               "        os.makedirs(os.path.dirname(os.path.join(name, rel)), exist_ok=True)\n"
                               "        open(os.path.join(name, rel), 'wb').write(data)\n"
                               "good = png(28, 28)\n"
                               "folder('trunc', {'a/1.png': good, 'b/2.png': good[:len(good) // 2]})\n"
                               "folder('text', {'a/1.png': good, 'b/readme.png': b'this is not a picture'})\n"
                               "folder('giant', {'a/1.png': png(10000, 10000, zlib.compress(b''))})\n"
                               "folder('sizes', {'a/1.png': good, 'b/2.png': png(32, 28)})\n"
                               "folder('empty', {'a/notes.txt': b'no images here', 'b/x.csv': b'1,2'})\n";
        if (!python(tmp_.path(), script)) QSKIP("python3 is not available to write the images");
        const QString mlp = QString::fromStdString((kSamples / "fmnist_mlp.h5").string());
        struct Case {
            const char* folder;
            QStringList says;
        };
        const Case cases[] = {
            {"trunc", {"trunc/b/2.png", "cannot decode image"}},
            {"text", {"text/b/readme.png", "cannot decode image"}},
            {"giant", {"giant/a/1.png", "10000 x 10000 pixels, over the limit of 67108864 pixels"}},
            {"sizes", {"sizes/b/2.png", "image is 32 x 28 but the first one (28 x 28) is not"}},
            {"empty", {"empty", "hold no .png, .jpg, .jpeg, .bmp or .gif files"}},
        };
        for (const Case& c : cases) {
            const QString err = cliFails({"eval", mlp, "--data", tmp_.filePath(c.folder)});
            for (const QString& want : c.says) QVERIFY2(err.contains(want), qPrintable(QString(c.folder) + ": " + err));
        }
    }

    void modelFileNeverWritten() {
        // Every command that reads a model leaves it byte-identical with its mtime.
        const QString model = qpath("mine.h5");
        QVERIFY(QFile::copy(QString::fromStdString((kSamples / "fmnist_mlp.h5").string()), model));
        auto digest = [&] {
            QFile f(model);
            f.open(QIODevice::ReadOnly);
            return QCryptographicHash::hash(f.readAll(), QCryptographicHash::Sha256);
        };
        const QByteArray before = digest();
        const QDateTime mtime = QFileInfo(model).lastModified();
        QTest::qWait(1100);  // a write would move the mtime past this second
        const QString fashion = "/usr/share/datasets/fashion-mnist";
        const bool have_data = QFileInfo::exists(fashion);
        QList<QStringList> commands = {{"inspect", model}, {"analyze", model, "--json"}, {"config", model, "--out", qpath("mine_cfg.json")}};
        if (have_data)
            commands += QList<QStringList>{{"eval", model, "--data", fashion, "--limit", "200"},
                                           {"export", model, "--config", qpath("mine_cfg.json"), "--format", "hdf5", "--out", qpath("mine_q.h5")},
                                           {"report", model, "--data", fashion, "--limit", "200", "--config", qpath("mine_cfg.json"), "--out", qpath("mine_report")}};
        for (const QStringList& c : commands) {
            QProcess p;
            p.start(QUANTSCOPE_CLI, c);
            QVERIFY(p.waitForFinished(300000));
            QVERIFY2(p.exitCode() == 0, qPrintable(c.join(' ') + ": " + p.readAllStandardError()));
        }
        QCOMPARE(digest(), before);
        QCOMPARE(QFileInfo(model).lastModified(), mtime);
        // Nothing but what was asked for appeared beside it (no temporary files left).
        QStringList expected = {"mine.h5", "mine_cfg.json"};
        if (have_data) expected << "mine_q.h5";
        QStringList present = QDir(tmp_.path()).entryList({"mine*"}, QDir::Files);
        present.sort();
        expected.sort();
        QCOMPARE(present, expected);
    }
};

QTEST_MAIN(HostileInputTest)
#include "test_hostile_input.moc"
