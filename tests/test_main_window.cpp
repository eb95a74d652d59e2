// The main window, offscreen: opening a real model fills the layer table from core's Model;
// a failed open reports the file and the problem without blocking and keeps the previous
// model; a second open replaces the first; the window renders to a non-blank PNG.
#include <QMessageBox>
#include <QTableView>
#include <QtTest>

#include <filesystem>

#include "formats/h5_preflight.h"
#include "formats/model_loader.h"
#include "layer_table_model.h"
#include "layer_table_view.h"
#include "main_window.h"

namespace fs = std::filesystem;

class MainWindowTest : public QObject {
    Q_OBJECT
    fs::path corpus_ = fs::path(QUANTSCOPE_SHARED_DIR) / "corpus";

    static bool waitLoaded(MainWindow& w) {
        QSignalSpy ok(&w, &MainWindow::modelLoaded), bad(&w, &MainWindow::loadFailed);
        for (int i = 0; i < 300 && ok.isEmpty() && bad.isEmpty(); ++i) QTest::qWait(20);
        return !ok.isEmpty();
    }

private slots:
    void initTestCase() {
        qs::h5::startPreflightHelper();  // before Qt starts threads (h5_preflight.h)
        QCoreApplication::setOrganizationName("QuantscopeTest");  // keep the user's settings untouched
        if (!fs::exists(corpus_ / "manifest.json")) QSKIP("../shared/corpus is absent");
    }

    void opensModelIntoTable() {
        MainWindow w;
        w.show();
        const std::string path = (corpus_ / "k2_1_fmnist_cnn_bn.h5").string();
        w.openModel(QString::fromStdString(path));
        QVERIFY(waitLoaded(w));
        const qs::Model direct = qs::loadModel(path);
        LayerTableModel* t = w.layerTable();
        QCOMPARE(t->layerCount(), static_cast<int>(direct.layers.size()));
        for (int r = 0; r < t->layerCount(); ++r) {
            const qs::Layer& l = direct.layers[static_cast<size_t>(r)];
            QCOMPARE(t->index(r, LayerTableModel::Name).data().toString().toStdString(), l.name);
            QCOMPARE(t->index(r, LayerTableModel::Params).data(Qt::UserRole).toLongLong(), l.paramCount());
        }
        // conv2d_1: 3x3, padding "valid", stride 1 on 28x28 -> 26x26 (its config in the file).
        QCOMPARE(t->index(0, LayerTableModel::OutputShape).data().toString(), QString("(None, 26, 26, 32)"));
        QCOMPARE(t->index(0, LayerTableModel::Class).data().toString(), QString("Conv2D"));
    }

    void failedOpenKeepsPreviousModel() {
        MainWindow w;
        w.show();
        w.openModel(QString::fromStdString((corpus_ / "tfk2_14_mnist_cnn.h5").string()));
        QVERIFY(waitLoaded(w));
        const int rows = w.layerTable()->layerCount();
        QSignalSpy bad(&w, &MainWindow::loadFailed);
        w.openModel(QString::fromStdString((corpus_ / "bad_utf8_mangled.h5").string()));
        QTRY_COMPARE_WITH_TIMEOUT(bad.size(), 1, 10000);
        QVERIFY(bad.first().first().toString().contains("bad_utf8_mangled.h5"));
        auto* box = w.findChild<QMessageBox*>("loadErrorBox");
        QVERIFY(box);
        QVERIFY(box->text().contains("not an HDF5 file"));
        box->close();
        QCOMPARE(w.layerTable()->layerCount(), rows);  // previous model intact
        QCOMPARE(w.model()->source_path, (corpus_ / "tfk2_14_mnist_cnn.h5").string());
        // ... and usable: a new open still works.
        w.openModel(QString::fromStdString((corpus_ / "k3_11_mnist_resnet_add.keras").string()));
        QVERIFY(waitLoaded(w));
        QCOMPARE(w.layerTable()->layerCount(), 17);
    }

    // A quantization-aware-trained file (tests/fixtures/make_qat_fixture.py) opens: custom
    // classes as the file names them with the width they were trained for, integer tensors
    // listed with their dtype, only the float kernels quantizable.
    void opensQuantizationAwareTrainedFile() {
        MainWindow w;
        w.show();
        w.openModel(QUANTSCOPE_SOURCE_DIR "/tests/fixtures/qat_hgq_qkeras.h5");
        QVERIFY(waitLoaded(w));
        LayerTableModel* t = w.layerTable();
        QCOMPARE(t->layerCount(), 5);
        QCOMPARE(t->index(1, LayerTableModel::Class).data().toString(), QString("FixedPointQuantizer (trained 6-bit)"));
        QCOMPARE(t->index(1, LayerTableModel::Weights).data().toString(), QString("(8,) bool  (8,) int32  (8,) int32"));
        QVERIFY(t->index(1, LayerTableModel::Weights).data(Qt::ToolTipRole).toString().contains("bits:0  (8,)  int32 (not analysed)"));
        QCOMPARE(t->index(2, LayerTableModel::Class).data().toString(), QString("QDense (trained 4-bit)"));
        QVERIFY(!t->quantizable(1));
        QVERIFY(t->quantizable(2));
        QVERIFY(t->quantizable(4));
    }

    void newerOpenReplacesOlder() {
        MainWindow w;
        w.openModel(QString::fromStdString((corpus_ / "k2_1_mnist_mlp_weights.h5").string()));
        w.openModel(QString::fromStdString((corpus_ / "tfk2_8_mnist_dwconv_bn.h5").string()));
        QVERIFY(waitLoaded(w));
        QTest::qWait(50);
        QCOMPARE(w.model()->source_path, (corpus_ / "tfk2_8_mnist_dwconv_bn.h5").string());
    }

    void rendersNonBlank() {
        MainWindow w;
        w.resize(1100, 600);
        w.show();
        w.openModel(QString::fromStdString((corpus_ / "k3_11_mnist_resnet_add.keras").string()));
        QVERIFY(waitLoaded(w));
        w.tableView()->selectRow(1);
        const QImage img = w.grab().toImage();
        const QString out = QDir::temp().filePath("quantscope_main_window.png");
        QVERIFY(img.save(out));
        // Not blank: many distinct colours (text, grid, selection), not one flat fill.
        QSet<QRgb> colours;
        for (int y = 0; y < img.height(); y += 3)
            for (int x = 0; x < img.width(); x += 3) colours.insert(img.pixel(x, y));
        QVERIFY2(colours.size() > 20, qPrintable(QString("only %1 colours in %2").arg(colours.size()).arg(out)));
    }
};

QTEST_MAIN(MainWindowTest)
#include "test_main_window.moc"
