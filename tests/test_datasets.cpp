// Test sets as NumPy .npz/.npy and HDF5 arrays: written here byte by byte (the .npy format is
// simple and documented: numpy.lib.format), read back and compared; every malformed case gives
// an error naming the file and the problem; the same 1000 Fashion-MNIST images give the same
// float accuracy from IDX, .npz and HDF5; `eval` on an .npz and Ctrl-C on a running `eval`.
#include <H5Cpp.h>
#include <QDir>
#include <QImage>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <zip.h>

#include <csignal>
#include <cstring>
#include <fstream>

#include "base/error.h"
#include "data/array_dataset.h"
#include "data/idx_dataset.h"
#include "engine/float_engine.h"
#include "eval/evaluation.h"
#include "formats/model_loader.h"

namespace {

// A version-1 .npy image of `data` with NumPy type `descr` and `shape`.
template <class T>
std::string npy(const std::string& descr, const std::vector<int64_t>& shape, const std::vector<T>& data, bool fortran = false) {
    std::string dims;
    for (int64_t d : shape) dims += std::to_string(d) + ", ";
    std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (" + dims + "), }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::string out = "\x93NUMPY";
    out += '\x01';
    out += '\x00';
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    out += header;
    out.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(T));
    return out;
}

void writeNpz(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members) {
    int err = 0;
    zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
    QVERIFY(z);
    std::vector<std::string> keep;
    keep.reserve(members.size());
    for (const auto& [name, bytes] : members) {
        keep.push_back(bytes);
        zip_source_t* src = zip_source_buffer(z, keep.back().data(), keep.back().size(), 0);
        QVERIFY(zip_file_add(z, (name + ".npy").c_str(), src, ZIP_FL_OVERWRITE) >= 0);
    }
    QCOMPARE(zip_close(z), 0);
}

std::string errorOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const qs::Error& e) {
        return e.what();
    }
    return "";
}

const char* kFashion = "/usr/share/datasets/fashion-mnist";

}  // namespace

class DatasetsTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;
    std::string path(const char* name) const { return tmp_.filePath(name).toStdString(); }

private slots:
    void npzUint8AndIntegerLabels() {
        std::vector<uint8_t> x(5 * 4 * 4);
        for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint8_t>(i * 3);
        const std::vector<int64_t> y = {3, 0, 7, 1, 3};
        writeNpz(path("a.npz"), {{"x_train", npy<uint8_t>("|u1", {1, 4, 4}, std::vector<uint8_t>(16))},
                                 {"x_test", npy("|u1", {5, 4, 4}, x)}, {"y_test", npy("<i8", {5}, y)},
                                 {"y_train", npy<int64_t>("<i8", {1}, {0})}});
        const qs::ImageDataset d = qs::readDataset(path("a.npz"));
        QCOMPARE(d.n, int64_t(5));
        QCOMPARE(d.rows, int64_t(4));
        QCOMPARE(d.cols, int64_t(4));
        QCOMPARE(d.channels, int64_t(1));
        QVERIFY(d.pixels == x);
        QVERIFY(d.values.empty());
        QCOMPARE(d.labels, (std::vector<int32_t>{3, 0, 7, 1, 3}));
        QCOMPARE(d.num_classes, 8);
        QVERIFY(d.source.find("x_test") != std::string::npos);
        QCOMPARE(qs::inferPreprocessing(d).scale, 255.0);
    }

    void npzFloatImagesOneHotLabels() {
        const std::vector<float> x = {0.0f, 0.5f, 1.0f, 0.25f, 0.75f, 0.125f};  // (2, 3) flat features
        const std::vector<float> y = {0, 0, 1, 0, 1, 0};                        // one-hot over 3 classes
        writeNpz(path("b.npz"), {{"images", npy("<f4", {2, 3}, x)}, {"labels", npy("<f4", {2, 3}, y)}});
        const qs::ImageDataset d = qs::readDataset(path("b.npz"));
        QCOMPARE(d.n, int64_t(2));
        QCOMPARE(d.rows * d.cols, int64_t(3));
        QVERIFY(d.values == x);
        QCOMPARE(d.labels, (std::vector<int32_t>{2, 1}));
        QCOMPARE(d.num_classes, 3);
        QCOMPARE(qs::inferPreprocessing(d).scale, 1.0);  // already in [0, 1]
        const qs::RowMatrix r = qs::preprocessRows(d, {1.0, 0.5, 0.5}, 1, 1);  // (v - 0.5) / 0.5
        QCOMPARE(r(0, 0), -0.5f);  // (0.25 - 0.5) / 0.5
    }

    void malformedArraysAreRefusedByName() {
        const std::vector<uint8_t> x(2 * 2 * 2, 1);
        auto npzError = [&](const char* file, std::vector<std::pair<std::string, std::string>> members) {
            writeNpz(path(file), members);
            return errorOf([&] { qs::readDataset(path(file)); });
        };
        std::string e = npzError("pickle.npz", {{"x", npy("|u1", {2, 2, 2}, x)}, {"y", npy<int64_t>("|O", {2}, {0, 0})}});
        QVERIFY2(e.find("pickle") != std::string::npos && e.find("pickle.npz") != std::string::npos, e.c_str());
        e = npzError("fortran.npz", {{"x", npy("|u1", {2, 2, 2}, x, true)}, {"y", npy<int64_t>("<i8", {2}, {0, 1})}});
        QVERIFY2(e.find("Fortran") != std::string::npos, e.c_str());
        std::string cut = npy("|u1", {2, 2, 2}, x);
        cut.resize(cut.size() - 3);
        e = npzError("cut.npz", {{"x", cut}, {"y", npy<int64_t>("<i8", {2}, {0, 1})}});
        QVERIFY2(e.find("truncated") != std::string::npos, e.c_str());
        e = npzError("count.npz", {{"x", npy("|u1", {2, 2, 2}, x)}, {"y", npy<int64_t>("<i8", {3}, {0, 1, 2})}});
        QVERIFY2(e.find("3 labels for 2 images") != std::string::npos, e.c_str());
        e = npzError("negative.npz", {{"x", npy("|u1", {2, 2, 2}, x)}, {"y", npy<int64_t>("<i8", {2}, {0, -4})}});
        QVERIFY2(e.find("not a class index") != std::string::npos, e.c_str());
        e = npzError("names.npz", {{"foo", npy("|u1", {2, 2, 2}, x)}, {"bar", npy<int64_t>("<i8", {2}, {0, 1})}});
        QVERIFY2(e.find("cannot tell images from labels") != std::string::npos && e.find("foo") != std::string::npos, e.c_str());
        e = npzError("nan.npz", {{"x", npy<float>("<f4", {1, 2}, {1.0f, NAN})}, {"y", npy<int64_t>("<i8", {1}, {0})}});
        QVERIFY2(e.find("NaN") != std::string::npos, e.c_str());
        // A dimension of 20 digits (past int64: std::stoll would throw out_of_range) and one of 2^41.
        for (const char* dim : {"99999999999999999999", "2199023255552"}) {
            std::string huge = npy("|u1", {2, 2, 2}, x);
            huge.replace(huge.find("(2, 2, 2, )"), 11, std::string("(") + dim + ", 2, 2, )");
            e = npzError("huge.npz", {{"x", huge}, {"y", npy<int64_t>("<i8", {2}, {0, 1})}});
            QVERIFY2(e.find("implausible shape") != std::string::npos && e.find("huge.npz") != std::string::npos, e.c_str());
        }
        {
            std::ofstream f(path("junk.bin"), std::ios::binary);
            f << "definitely not data";
        }
        e = errorOf([&] { qs::readDataset(path("junk.bin")); });
        QVERIFY2(e.find("junk.bin") != std::string::npos, e.c_str());
        // Names given that are not there.
        writeNpz(path("named.npz"), {{"x", npy("|u1", {2, 2, 2}, x)}, {"y", npy<int64_t>("<i8", {2}, {0, 1})}});
        e = errorOf([&] { qs::readDataset(path("named.npz"), {"pixels", "y"}); });
        QVERIFY2(e.find("pixels") != std::string::npos, e.c_str());
        QCOMPARE(qs::readDataset(path("named.npz"), {"x", "y"}).n, int64_t(2));
    }

    void hdf5Datasets() {
        {
            H5::H5File f(path("d.h5"), H5F_ACC_TRUNC);
            const hsize_t xd[3] = {3, 2, 2}, yd[1] = {3};
            const std::vector<uint8_t> x = {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110};
            const std::vector<int32_t> y = {1, 0, 1};
            f.createDataSet("my_x", H5::PredType::NATIVE_UINT8, H5::DataSpace(3, xd)).write(x.data(), H5::PredType::NATIVE_UINT8);
            f.createDataSet("my_y", H5::PredType::NATIVE_INT32, H5::DataSpace(1, yd)).write(y.data(), H5::PredType::NATIVE_INT32);
        }
        const std::string e = errorOf([&] { qs::readDataset(path("d.h5")); });
        QVERIFY2(e.find("my_x") != std::string::npos, e.c_str());  // lists what is there
        const qs::ImageDataset d = qs::readDataset(path("d.h5"), {"my_x", "my_y"});
        QCOMPARE(d.n, int64_t(3));
        QCOMPARE(d.pixels[5], uint8_t(50));
        QCOMPARE(d.labels, (std::vector<int32_t>{1, 0, 1}));
    }

    void sameAccuracyFromIdxNpzAndHdf5() {
        if (!QFile::exists(kFashion)) QSKIP("dataset-fashion-mnist missing");
        qs::ImageDataset idx = qs::readIdxFolder(kFashion);
        const int64_t n = 1000;
        idx.n = n;
        idx.pixels.resize(static_cast<size_t>(n * 784));
        idx.labels.resize(static_cast<size_t>(n));
        std::vector<uint8_t> labels8(idx.labels.begin(), idx.labels.end());
        writeNpz(path("fm.npz"), {{"x_test", npy("|u1", {n, 28, 28}, idx.pixels)}, {"y_test", npy("|u1", {n}, labels8)}});
        {
            H5::H5File f(path("fm.h5"), H5F_ACC_TRUNC);
            const hsize_t xd[3] = {static_cast<hsize_t>(n), 28, 28}, yd[1] = {static_cast<hsize_t>(n)};
            std::vector<float> xf(idx.pixels.begin(), idx.pixels.end());  // floats 0..255: scale inferred as 255
            f.createDataSet("x", H5::PredType::NATIVE_FLOAT, H5::DataSpace(3, xd)).write(xf.data(), H5::PredType::NATIVE_FLOAT);
            f.createDataSet("y", H5::PredType::NATIVE_UINT8, H5::DataSpace(1, yd)).write(labels8.data(), H5::PredType::NATIVE_UINT8);
        }
        const qs::Model m = qs::loadModel(std::string(QUANTSCOPE_SOURCE_DIR) + "/sample_models/fmnist_mlp.h5");
        const qs::FloatEngine engine(m);
        const qs::EvalResult a = qs::evaluateFloat(engine, idx, {});
        const qs::ImageDataset npz = qs::readDataset(path("fm.npz")), h5 = qs::readDataset(path("fm.h5"));
        const qs::EvalResult b = qs::evaluateFloat(engine, npz, qs::inferPreprocessing(npz));
        const qs::EvalResult c = qs::evaluateFloat(engine, h5, qs::inferPreprocessing(h5));
        QCOMPARE(b.predictions, a.predictions);
        QCOMPARE(c.predictions, a.predictions);
        QVERIFY(a.top1 > 0.8);
    }

    void imageFolderEqualsIdx() {
        if (!QFile::exists(kFashion)) QSKIP("dataset-fashion-mnist missing");
        // 300 Fashion-MNIST test images as grey PNG (even) and BMP (odd) files in class
        // folders "0".."9": the same pixels, labels and predictions as from the IDX files.
        const qs::ImageDataset idx = qs::readIdxFolder(kFashion);
        const int n = 300;
        const QString root = QString::fromStdString(path("folder"));
        std::vector<int> order;  // folder order: by class folder, then by file name
        for (int label = 0; label < 10; ++label) {
            QDir().mkpath(root + "/" + QString::number(label));
            for (int i = 0; i < n; ++i)
                if (idx.labels[size_t(i)] == label) order.push_back(i);
        }
        for (int i = 0; i < n; ++i) {
            QImage img(28, 28, QImage::Format_Grayscale8);
            for (int y = 0; y < 28; ++y) std::memcpy(img.scanLine(y), &idx.pixels[size_t(i) * 784 + size_t(y) * 28], 28);
            const QString file = QString("%1/%2/%3.%4").arg(root).arg(idx.labels[size_t(i)]).arg(i, 5, 10, QChar('0')).arg(i % 2 ? "bmp" : "png");
            QVERIFY(img.save(file));
        }
        std::ofstream(path("folder/3/notes.txt")) << "not an image: skipped";
        const qs::ImageDataset f = qs::readDataset(root.toStdString());
        QCOMPARE(f.n, int64_t(n));
        QCOMPARE(f.num_classes, 10);
        QCOMPARE(f.rows, int64_t(28));
        QCOMPARE(f.channels, int64_t(1));
        for (int k = 0; k < n; ++k) {
            const int i = order[size_t(k)];
            QCOMPARE(f.labels[size_t(k)], idx.labels[size_t(i)]);
            QVERIFY(std::equal(f.pixels.begin() + k * 784, f.pixels.begin() + (k + 1) * 784, idx.pixels.begin() + i * 784));
        }
        const qs::Model m = qs::loadModel(std::string(QUANTSCOPE_SOURCE_DIR) + "/sample_models/fmnist_mlp.h5");
        const qs::FloatEngine engine(m);
        qs::ImageDataset first = idx;
        qs::keepFirstImages(first, n);
        const qs::EvalResult a = qs::evaluateFloat(engine, first, {}), b = qs::evaluateFloat(engine, f, qs::inferPreprocessing(f));
        for (int k = 0; k < n; ++k) QCOMPARE(b.predictions[size_t(k)], a.predictions[size_t(order[size_t(k)])]);
        QCOMPARE(b.top1_correct, a.top1_correct);
    }

    void imageFolderClassOrderAndColour() {
        // Classes in alphanumeric order of the folder names (Keras' rule); RGBA loses alpha.
        const QString root = QString::fromStdString(path("colour"));
        const QStringList names = {"zebra", "Ant", "bee"};  // sorted: Ant, bee, zebra
        for (int c = 0; c < 3; ++c) {
            QDir().mkpath(root + "/" + names[c]);
            QImage img(4, 2, QImage::Format_RGBA8888);
            img.fill(QColor(10 * c, 100, 200, 7));
            QVERIFY(img.save(root + "/" + names[c] + "/a.png"));
        }
        const qs::ImageDataset d = qs::readDataset(root.toStdString());
        QCOMPARE(d.n, int64_t(3));
        QCOMPARE(d.channels, int64_t(3));
        QCOMPARE(d.labels, (std::vector<int32_t>{0, 1, 2}));
        // Ant (c = 1) first, then bee (c = 2), then zebra (c = 0): red = 10, 20, 0.
        QCOMPARE(int(d.pixels[0]), 10);
        QCOMPARE(int(d.pixels[size_t(8 * 3)]), 20);
        QCOMPARE(int(d.pixels[size_t(16 * 3)]), 0);
        QCOMPARE(int(d.pixels[1]), 100);
        QCOMPARE(int(d.pixels[2]), 200);
    }

    void evalCliOnNpzAndCtrlC() {
        if (!QFile::exists(kFashion)) QSKIP("dataset-fashion-mnist missing");
        if (!QFile::exists(QString::fromStdString(path("fm.npz")))) QSKIP("needs the .npz of the previous test");
        const QString model = QString(QUANTSCOPE_SOURCE_DIR) + "/sample_models/fmnist_mlp.h5";
        QProcess p;
        p.start(QUANTSCOPE_CLI, {"eval", model, "--data", QString::fromStdString(path("fm.npz")), "--calib", "100", "--json"});
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 0);
        const nlohmann::json j = nlohmann::json::parse(p.readAllStandardOutput().toStdString());
        QCOMPARE(j["n"].get<int>(), 1000);
        QCOMPARE(j["preprocessing"]["scale"].get<double>(), 255.0);
        QVERIFY(j["float"]["top1"].get<double>() > 0.8);
        QVERIFY(std::fabs(j["quantized"]["top1"].get<double>() - j["float"]["top1"].get<double>()) < 0.02);
        QCOMPARE(j["calibration_samples"].get<int>(), 100);
        QVERIFY(j["quantized"]["size_bytes"].get<int64_t>() * 3 < j["float"]["size_bytes"].get<int64_t>());
        QCOMPARE(j["float"]["confusion"].size(), size_t(100));
        // Ctrl-C: SIGINT while the CNN evaluates stops it with status 130 and a message.
        QProcess q;
        q.start(QUANTSCOPE_CLI, {"eval", QString(QUANTSCOPE_SOURCE_DIR) + "/sample_models/fmnist_cnn.h5", "--data", kFashion});
        QVERIFY(q.waitForStarted());
        QTest::qWait(1500);
        QCOMPARE(::kill(static_cast<pid_t>(q.processId()), SIGINT), 0);
        QVERIFY(q.waitForFinished(60000));
        QCOMPARE(q.exitCode(), 130);
        QVERIFY(q.readAllStandardError().contains("cancelled"));
    }
};

QTEST_GUILESS_MAIN(DatasetsTest)
#include "test_datasets.moc"
