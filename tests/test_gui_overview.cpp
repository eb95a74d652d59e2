// The whole model at a glance and readable candidates (issue 21), in the real main window,
// offscreen: the Overview column's colours agree with the analysis; the candidates' small
// multiples share an x range that ignores a candidate clipping half the values (its mass is an
// overflow bar instead); clicking a candidate's plot applies it as one undo step and Ctrl+Z
// restores it; Ctrl+4 sets every selected layer to 4 bits; no column is cut off at 1280 px;
// each panel without data says what to do; screenshots at 1280x800 and 1920x1080
// (QUANTSCOPE_SCREENSHOT_DIR, else a temporary folder) of the overview, the candidates of a
// 4-bit layer and the Compare tab with two snapshots.
#include <QDockWidget>
#include <QElapsedTimer>
#include <QHeaderView>
#include <QLabel>
#include <QTabWidget>
#include <QTableWidget>
#include <QTimer>
#include <QUndoStack>
#include <QtTest>
#include <qcustomplot.h>

#include <filesystem>

#include <unistd.h>

#include "analysis_scheduler.h"
#include "candidate_panel.h"
#include "comparison_panel.h"
#include "evaluation_panel.h"
#include "formats/h5_preflight.h"
#include "histogram_plot.h"
#include "keras_h5_writer.h"
#include "layer_table_model.h"
#include "layer_table_view.h"
#include "gui_test_support.h"
#include "main_window.h"
#include "quant/magnitude_overview.h"
#include "vgg16_shaped.h"

namespace fs = std::filesystem;

namespace {

const fs::path kSamples = fs::path(QUANTSCOPE_SOURCE_DIR) / "sample_models";
const QString kFashion = "/usr/share/datasets/fashion-mnist";

using qs::testing::openAndSettle;

bool settle(MainWindow& w) {
    for (int i = 0; i < 3000 && w.isAnalyzing(); ++i) QTest::qWait(10);
    return !w.isAnalyzing();
}

// A window of exactly `size` (not maximized: the offscreen screen is smaller than 1920x1080).
void showAt(MainWindow& w, QSize size) {
    w.setWindowState(Qt::WindowNoState);
    w.resize(size);
    w.show();
    QTest::qWait(20);
}

int rowOf(const LayerTableModel& t, const char* cls) {
    for (int r = 0; r < t.layerCount(); ++r)
        if (t.quantizable(r) && t.model()->layers[static_cast<size_t>(r)].class_name == std::string(cls)) return r;
    return -1;
}

QDockWidget* dockNamed(MainWindow& w, const char* name) { return w.findChild<QDockWidget*>(name); }

QString shotDir(const QTemporaryDir& tmp) {
    return qEnvironmentVariableIsSet("QUANTSCOPE_SCREENSHOT_DIR") ? qEnvironmentVariable("QUANTSCOPE_SCREENSHOT_DIR") : tmp.path();
}

// A hand-made analysis: candidate "good" has every error within half a step, "saturating"
// clips half of its values, piled 30 steps out.
qs::TensorAnalysis saturatingAnalysis() {
    qs::TensorAnalysis a;
    a.name = "hand";
    for (const auto& [name, beyond] : {std::pair{"good", 0.0}, std::pair{"saturating", 50.0}}) {
        qs::Candidate c;
        c.method = name;
        c.bits = 4;
        c.params = {qs::QuantParams{0.1, 0, -7, 7}};
        c.stats.pct_beyond_range = beyond;
        qs::Histogram& h = c.stats.error_hist;
        h.lo = beyond > 0 ? -40 : -0.5;
        h.hi = -h.lo;
        h.counts.assign(80, 0);
        if (beyond > 0) {
            h.counts[40] = 500;  // near 0
            h.counts[9] = 500;   // [-31, -30): the clipped half
        } else {
            for (size_t i = 0; i < 80; ++i) h.counts[i] = 10;
        }
        a.candidates.push_back(c);
    }
    return a;
}

}  // namespace

class GuiOverviewTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;

private slots:
    void initTestCase() {
        qs::testing::startGuiTests();
        QVERIFY(tmp_.isValid());
    }

    void overviewColoursAgreeWithAnalysis() {
        MainWindow w;
        showAt(w, {1280, 800});
        QVERIFY(openAndSettle(w, kSamples / "fmnist_cnn.h5"));
        LayerTableModel& t = *w.layerTable();
        // At int2 per-tensor some layer loses weights below precision; at int8 per-channel the
        // first Conv2D has none. Either way the bins carry exactly the analysis' counts.
        const int conv = rowOf(t, "Conv2D");
        qs::LayerQuant q = t.layerQuant(conv);
        q.precision = qs::Precision::Int2;
        q.granularity = qs::Granularity::PerTensor;
        const int last = t.layerCount() - 1;  // dense_1: float16 rounds none of its weights to zero
        qs::LayerQuant h = t.layerQuant(last);
        h.precision = qs::Precision::Float16;
        w.changeLayers({conv, last}, {q, h}, "int2 and float16");
        QVERIFY(settle(w));
        int with_below = 0, without_below = 0;
        for (int row = 0; row < t.layerCount(); ++row) {
            if (!t.quantizable(row)) {
                QVERIFY(!t.overview(row));
                continue;
            }
            const auto o = t.overview(row);
            QVERIFY2(o, qPrintable(QString("row %1 %2 analysis %3").arg(row).arg(qs::precisionName(t.layerQuant(row).precision)).arg(t.analysis(row) != nullptr)));
            const qs::Candidate& c = *t.chosen(row);
            int64_t below = 0, beyond = 0, all = o->zeros;
            for (const qs::MagnitudeBin& b : o->bins) below += b.below, beyond += b.beyond, all += b.total();
            QCOMPARE(all, c.stats.count);
            QCOMPARE(below, std::llround(c.stats.pct_below_precision * c.stats.count / 100));
            QCOMPARE(beyond, std::llround(c.stats.pct_beyond_range * c.stats.count / 100));
            if (c.stats.pct_below_precision == 0) {
                QCOMPARE(below, int64_t(0));  // no below-precision bin at all
                ++without_below;
            } else {
                ++with_below;
            }
        }
        QVERIFY(with_below >= 1);     // the int2 layer
        QVERIFY(without_below >= 1);  // int8 layers with nothing rounded to zero
        // The column is on screen, with room for its bins.
        LayerTableView& v = *w.tableView();
        QVERIFY(!v.isColumnHidden(LayerTableModel::Overview));
        QVERIFY(v.columnWidth(LayerTableModel::Overview) >= 2 * LayerTableModel::kOverviewBins);
        // Only layers with parameters show by default (the whole model fits at 1280x800).
        auto shown = [&] {
            int n = 0;
            for (int r = 0; r < t.layerCount(); ++r) n += !v.isRowHidden(r);
            return n;
        };
        QCOMPARE(shown(), 6);  // 2 Conv2D, 2 BatchNormalization, 2 Dense
        v.setShowParameterless(true);
        QCOMPARE(shown(), 13);
        v.setShowParameterless(false);
    }

    void noColumnCutOffAt1280() {
        {
            EvaluationPanel e;
            ComparisonPanel c;
            CandidatePanel k;
            HistogramPlot h;
            qInfo("minimum widths: evaluation %d, compare %d, candidates %d, histogram %d", e.minimumSizeHint().width(),
                  c.minimumSizeHint().width(), k.minimumSizeHint().width(), h.minimumSizeHint().width());
        }
        for (const char* file : {"fmnist_cnn.h5", "fmnist_mlp.h5"}) {
            MainWindow w;
            showAt(w, {1280, 800});
            QVERIFY(openAndSettle(w, kSamples / file));
            LayerTableView& v = *w.tableView();
            QTest::qWait(20);
            QVERIFY2(v.usedWidth() <= v.viewport()->width(),
                     qPrintable(QString("%1: columns %2 px in a %3 px viewport").arg(file).arg(v.usedWidth()).arg(v.viewport()->width())));
            for (int c = 0; c < LayerTableModel::ColumnCount; ++c) {
                if (v.isColumnHidden(c)) continue;
                // Every visible header fits its section (its title is not cut either).
                const QString title = t(v, c);
                QVERIFY2(v.horizontalHeader()->sectionSize(c) >= v.fontMetrics().horizontalAdvance(title),
                         qPrintable(QString("%1: column %2 narrower than its title").arg(file, title)));
            }
            // The table is as tall as its rows need, and the plots get at least half the window.
            QVERIFY(v.height() >= std::min(v.fittedHeight(), 180) - 30);
            const QWidget* plots = w.findChild<QTabWidget*>("layerTabs");
            QVERIFY2(plots->height() >= w.height() / 2 - 80 || v.height() >= v.fittedHeight(),
                     qPrintable(QString("plots %1 px, table %2 of %3 px").arg(plots->height()).arg(v.height()).arg(v.fittedHeight())));
            QVERIFY2(plots->width() >= w.width() / 2 - 20, qPrintable(QString("plots %1 px wide").arg(plots->width())));
            QVERIFY(w.frameGeometry().width() <= 1280 + 20);
        }
    }

    void smallMultiplesIgnoreSaturatingCandidate() {
        CandidatePanel p;
        p.resize(800, 500);
        p.show();
        auto a = std::make_shared<const qs::TensorAnalysis>(saturatingAnalysis());
        p.setAnalysis(a, 0);
        // The range is the good candidate's (its errors end at 0.5 steps), not 31 steps.
        QVERIFY(p.halfRange() < 1.0);
        QVERIFY(p.halfRange() >= 0.5);
        QCOMPARE(p.plotOf(0)->axis(QCPAxis::atBottom)->range().upper, p.halfRange());
        QCOMPARE(p.plotOf(1)->axis(QCPAxis::atBottom)->range().upper, p.halfRange());
        // The saturating candidate's clipped half is its overflow bar: 50%.
        QVERIFY(std::fabs(p.overflowOf(1) - 0.5) < 1e-9);
        QCOMPARE(p.overflowOf(0), 0.0);
        // Weight units: the same plots scaled by the step (0.1).
        p.setWeightUnits(true);
        QVERIFY(std::fabs(p.halfRange() - 0.1 * CandidatePanel::sharedHalfRange(*a, false)) < 1e-12);
        p.setLogY(true);
        QCOMPARE(p.plotOf(0)->axis(QCPAxis::atLeft)->scaleType(), QCPAxis::stLogarithmic);
        // The table is sortable by number: SQNR, ascending.
        QCOMPARE(p.table()->rowCount(), 2);
        QVERIFY(p.table()->isSortingEnabled());
    }

    void clickingCandidateAppliesAndUndoes() {
        MainWindow w;
        showAt(w, {1280, 800});
        QVERIFY(openAndSettle(w, kSamples / "fmnist_cnn.h5"));
        LayerTableModel& t = *w.layerTable();
        const int row = rowOf(t, "Conv2D");
        w.selectLayer(row);
        w.findChild<QTabWidget*>("layerTabs")->setCurrentWidget(w.candidates());
        QTest::qWait(20);
        const auto a = t.analysis(row);
        int target = -1;
        for (size_t i = 0; i < a->candidates.size(); ++i)
            if (a->candidates[i].method == "mse") target = static_cast<int>(i);
        QVERIFY(target >= 0);
        QCPAxisRect* rect = w.candidates()->plotOf(target);
        QVERIFY(rect);
        const int steps = w.undoStack()->count();
        QTest::mouseClick(w.candidates()->plot(), Qt::LeftButton, {}, rect->rect().center());
        QCOMPARE(t.layerQuant(row).weight_method, std::string("mse"));
        QCOMPARE(w.undoStack()->count(), steps + 1);
        QCOMPARE(t.chosen(row)->method, std::string("mse"));
        // The highlight follows: the plot of the chosen candidate is tinted.
        QVERIFY(w.candidates()->plotOf(target)->backgroundBrush() != QBrush());
        w.activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(&w));
        QTest::keyClick(w.tableView(), Qt::Key_Z, Qt::ControlModifier);
        QCOMPARE(t.layerQuant(row).weight_method, std::string("max_abs"));
    }

    void keyboardBitsForSelectedRows() {
        MainWindow w;
        showAt(w, {1280, 800});
        QVERIFY(openAndSettle(w, kSamples / "fmnist_cnn.h5"));
        LayerTableModel& t = *w.layerTable();
        w.activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(&w));
        // Down moves the selection and the plots follow.
        const int first = rowOf(t, "Conv2D");
        w.selectLayer(first);
        w.tableView()->setFocus();
        QTest::keyClick(w.tableView(), Qt::Key_Down);
        QCOMPARE(w.tableView()->currentIndex().row(), first + 1);
        // Select every quantizable row, Ctrl+4: all int4 in one undo step.
        std::vector<int> rows;
        QItemSelection sel;
        for (int r = 0; r < t.layerCount(); ++r)
            if (t.quantizable(r)) {
                rows.push_back(r);
                sel.select(t.index(r, 0), t.index(r, LayerTableModel::ColumnCount - 1));
            }
        w.tableView()->selectionModel()->select(sel, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        const int steps = w.undoStack()->count();
        QTest::keyClick(w.tableView(), Qt::Key_4, Qt::ControlModifier);
        for (int r : rows) QCOMPARE(t.layerQuant(r).precision, qs::Precision::Int4);
        QCOMPARE(w.undoStack()->count(), steps + 1);
        QTest::keyClick(w.tableView(), Qt::Key_Z, Qt::ControlModifier);
        for (int r : rows) QCOMPARE(t.layerQuant(r).precision, qs::Precision::Int8);
    }

    void emptyPanelsSayWhatToDo() {
        MainWindow w;
        showAt(w, {1280, 800});
        QVERIFY(w.evaluation()->findChild<QLabel*>("emptyHint")->isVisible());
        QVERIFY(w.evaluation()->findChild<QLabel*>("emptyHint")->text().contains("Run"));
        dockNamed(w, "compareDock")->raise();
        QTest::qWait(20);
        const QLabel* hint = w.comparisonPanel()->findChild<QLabel*>("emptyHint");
        QVERIFY(hint && hint->isVisible());
        QVERIFY(hint->text().contains("snapshot"));
        QVERIFY(w.candidates()->findChild<QLabel*>()->text().contains("Open a model") ||
                w.candidates()->findChild<QLabel*>()->text().contains("Select a layer"));
    }

    // Issue 21: the event loop keeps turning (no gap over 100 ms) while the VGG16-shaped model
    // (138M weights, bench_open's file) opens and every layer's overview is computed.
    void eventLoopTurnsWhileBigModelOverviewComputes() {
#ifdef QUANTSCOPE_SANITIZED
        QSKIP("553 MB of weights under AddressSanitizer: the normal build runs this test");
#endif
        // Its own CTest entry sets this and runs alone (RUN_SERIAL): a test beside it on a
        // 2-core machine would take the GUI thread's core and fail it for the wrong reason.
        if (!qEnvironmentVariableIsSet("QUANTSCOPE_BIG_MODEL_TEST")) QSKIP("run by the test_gui_overview_big_model entry");
        const std::string path = tmp_.filePath("vgg16_shaped.h5").toStdString();
        if (fs::space(tmp_.path().toStdString()).available < (2ull << 30)) QSKIP("under 2 GB free for the 553 MB model");
        qs::testing::writeVgg16Shaped(path);
        ::sync();  // the kernel writes the 553 MB back now, not in the middle of the measurement
        MainWindow w;
        showAt(w, {1280, 800});
        // A session to keep: fmnist_cnn with its first Conv2D at int4.
        QVERIFY(openAndSettle(w, kSamples / "fmnist_cnn.h5"));
        LayerTableModel& t = *w.layerTable();
        const int conv = rowOf(t, "Conv2D");
        qs::LayerQuant q = t.layerQuant(conv);
        q.precision = qs::Precision::Int4;
        w.changeLayers({conv}, {q}, "int4");
        QVERIFY(settle(w));
        const auto int4 = t.analysis(conv);

        // The table shows the big file's layers long before its 553 MB of values are read...
        auto structureShown = [&] {
            QElapsedTimer clock;
            clock.start();
            while (t.layerCount() != 23 && clock.elapsed() < 30000) QTest::qWait(2);
            return clock.elapsed();
        };
        w.openModel(QString::fromStdString(path));
        const qint64 first = structureShown();
        QCOMPARE(t.layerCount(), 23);
        QVERIFY(w.isLoading());
        QVERIFY(!t.analysis(1));  // weight columns wait for the values
        if (qEnvironmentVariableIsSet("QUANTSCOPE_SCREENSHOT_DIR")) QVERIFY(w.grab().save(shotDir(tmp_) + "/structure_preview.png"));
        // ... nothing can be changed meanwhile, and a cancel puts the session back.
        w.changeLayers({1}, {q}, "int4 on the preview");
        QCOMPARE(w.undoStack()->count(), 1);
        w.cancelLoading();
        for (int i = 0; i < 3000 && w.isLoading(); ++i) QTest::qWait(5);
        QTest::qWait(20);
        QCOMPARE(t.model(), w.model());
        QCOMPARE(t.model()->source_path, (kSamples / "fmnist_cnn.h5").string());
        QCOMPARE(t.layerQuant(conv).precision, qs::Precision::Int4);
        QCOMPARE(t.analysis(conv), int4);
        QCOMPARE(w.undoStack()->count(), 1);

        // Then the whole file: structure first again, every overview once the values are in.
        QSignalSpy loaded(&w, &MainWindow::modelLoaded), settled(&w, &MainWindow::analysesSettled);
        qs::testing::EventLoopGaps gaps;
        gaps.start();
        QElapsedTimer open_clock;
        open_clock.start();
        w.openModel(QString::fromStdString(path));
        const qint64 structure_ms = structureShown();
        while (loaded.isEmpty() && open_clock.elapsed() < 60000) QTest::qWait(5);
        const qint64 loaded_ms = open_clock.elapsed();
        settled.clear();
        QVERIFY(settled.wait(60000) || !w.isAnalyzing());
        gaps.stop();
        qInfo("VGG16-shaped file: layer table after %lld ms (first open %lld ms), values loaded after %lld ms", structure_ms, first, loaded_ms);
        QVERIFY2(structure_ms * 4 < loaded_ms, "the structure should show well before the values");
        int rows = 0;
        for (int r = 0; r < t.layerCount(); ++r)
            if (t.quantizable(r)) rows += t.overview(r).has_value();
        qInfo("opened and analysed in %lld ms, %lld ticks, longest gap %lld ms, %d overviews", gaps.elapsed(), gaps.ticks(), gaps.longest(), rows);
        QCOMPARE(rows, 16);  // 13 Conv2D + 3 Dense
        QVERIFY2(gaps.longest() < 100, qPrintable(QString("event loop stalled for %1 ms").arg(gaps.longest())));
    }

    // Issue 23: on a 4.2M-weight layer, changing the bits or the granularity or coming back to
    // the layer shows the new plots within 100 ms: the likely next analyses are computed in the
    // background once the window is idle, so the change is a cache hit and a redraw.
    void plotsFollowWithin100msOnBigLayer() {
        const std::string path = tmp_.filePath("dense2048.h5").toStdString();
        qs::testing::WriteOptions o;
        o.model_config = R"({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 2048]}},
            {"class_name": "Dense", "config": {"name": "big", "units": 2048, "activation": "relu"}},
            {"class_name": "Dense", "config": {"name": "out", "units": 10}}]}})";
        auto fill = [](float* p, uint64_t offset, uint64_t n) {  // a bell shape from a sum of two uniforms
            for (uint64_t i = 0; i < n; ++i) {
                const uint64_t a = (offset + i) * 6364136223846793005ull + 1442695040888963407ull, b = a * 6364136223846793005ull + 1;
                p[i] = static_cast<float>(((a >> 40) + (b >> 40)) / 16777216.0 - 1.0) * 0.05f;
            }
        };
        qs::testing::writeKerasH5(path,
                                  {qs::testing::LayerSpec{"in", {}},
                                   qs::testing::LayerSpec{"big", {{"kernel:0", {2048, 2048}, fill}, {"bias:0", {2048}, fill}}},
                                   qs::testing::LayerSpec{"out", {{"kernel:0", {2048, 10}, fill}, {"bias:0", {10}, fill}}}},
                                  o);
        MainWindow w;
        showAt(w, {1280, 800});
        QVERIFY(openAndSettle(w, path));
        LayerTableModel& t = *w.layerTable();
        const int big = 1;
        QCOMPARE(qs::layerKernel(t.model()->layers[big])->size(), int64_t(2048 * 2048));
        w.selectLayer(big);
        w.findChild<QTabWidget*>("layerTabs")->setCurrentWidget(w.candidates());
        // Wait for the background analyses of what is likely next.
        AnalysisScheduler& a = *w.analyses();
        auto ready = [&] {
            return a.cached(big, 4, qs::Granularity::PerChannel) && a.cached(big, 2, qs::Granularity::PerChannel) &&
                   a.cached(big, 16, qs::Granularity::PerChannel) && a.cached(big, 8, qs::Granularity::PerTensor);
        };
        QElapsedTimer wait;
        wait.start();
        while (!ready() && wait.elapsed() < 30000) QTest::qWait(10);
        QVERIFY(ready());
        qInfo("likely next analyses ready %lld ms after settling", wait.elapsed());
#ifdef QUANTSCOPE_SANITIZED
        // AddressSanitizer slows the drawing 3-5x and CI's machine varies by as much again (436 ms
        // once against a 400 ms limit). The 100 ms promise is the normal build's to assert; here
        // the bar only catches the analysis running on the GUI thread (seconds under ASan).
        constexpr qint64 kLimitMs = 1500;
#else
        constexpr qint64 kLimitMs = 100;
#endif
        auto timed = [&](const char* what, auto change, int bits, qs::Granularity g) {
            QElapsedTimer clock;
            clock.start();
            change();
            QCoreApplication::processEvents();
            const qint64 ms = clock.elapsed();
            qInfo("%s: %lld ms", what, ms);
            const auto shown = t.analysis(big);
            return shown && shown->candidates[0].bits == bits && shown->candidates[0].granularity == g && ms < kLimitMs;
        };
        qs::LayerQuant q = t.layerQuant(big);
        q.precision = qs::Precision::Int4;
        QVERIFY(timed("bits 8 -> 4", [&] { w.changeLayers({big}, {q}, "int4"); }, 4, qs::Granularity::PerChannel));
        QCOMPARE(w.candidates()->plotOf(0) != nullptr, true);
        q.precision = qs::Precision::Int2;
        QVERIFY(timed("bits 4 -> 2", [&] { w.changeLayers({big}, {q}, "int2"); }, 2, qs::Granularity::PerChannel));
        QVERIFY(timed("undo to 4 bits", [&] { w.undoStack()->undo(); }, 4, qs::Granularity::PerChannel));
        QVERIFY(timed("undo to 8 bits", [&] { w.undoStack()->undo(); }, 8, qs::Granularity::PerChannel));
        q.precision = qs::Precision::Int8;
        q.granularity = qs::Granularity::PerTensor;
        QVERIFY(timed("per channel -> per tensor", [&] { w.changeLayers({big}, {q}, "per tensor"); }, 8, qs::Granularity::PerTensor));
        w.selectLayer(2);
        QVERIFY(timed("select the layer again", [&] { w.selectLayer(big); }, 8, qs::Granularity::PerTensor));
        // With the Histogram tab in front the candidates wait until they are shown.
        w.findChild<QTabWidget*>("layerTabs")->setCurrentWidget(w.histogram());
        q.granularity = qs::Granularity::PerChannel;
        QVERIFY(timed("per tensor -> per channel, histogram in front", [&] { w.changeLayers({big}, {q}, "per channel"); }, 8,
                      qs::Granularity::PerChannel));
        w.findChild<QTabWidget*>("layerTabs")->setCurrentWidget(w.candidates());
        QCOMPARE(w.candidates()->plotOf(0)->axis(QCPAxis::atBottom)->range().upper, w.candidates()->halfRange());
        QCOMPARE(w.candidates()->table()->rowCount(), static_cast<int>(t.analysis(big)->candidates.size()));
    }

    void screenshots_data() {
        QTest::addColumn<QSize>("size");
        QTest::newRow("1280x800") << QSize(1280, 800);
#ifndef QUANTSCOPE_SANITIZED
        QTest::newRow("1920x1080") << QSize(1920, 1080);
#endif
    }

    void screenshots() {
        QFETCH(QSize, size);
        const QString dir = shotDir(tmp_);
        const QString tag = QStringLiteral("%1x%2").arg(size.width()).arg(size.height());
        MainWindow w;
        showAt(w, size);
        QVERIFY(openAndSettle(w, kSamples / "fmnist_cnn.h5"));
        LayerTableModel& t = *w.layerTable();
        int conv = rowOf(t, "Conv2D");  // the second Conv2D: 18,496 weights, smoother histograms than the first's 288
        for (int r = conv + 1; r < t.layerCount(); ++r)
            if (t.quantizable(r) && t.model()->layers[static_cast<size_t>(r)].class_name == std::string("Conv2D")) conv = r;
        w.selectLayer(conv);
        QTest::qWait(50);
        QVERIFY(w.grab().save(dir + "/overview_" + tag + ".png"));

        // A 4-bit layer's candidates.
        w.setSelectedPrecision(qs::Precision::Int4);
        QVERIFY(settle(w));
        w.findChild<QTabWidget*>("layerTabs")->setCurrentWidget(w.candidates());
        QTest::qWait(50);
        QCOMPARE(t.layerQuant(conv).precision, qs::Precision::Int4);
        QVERIFY(w.grab().save(dir + "/candidates_" + tag + ".png"));

#ifndef QUANTSCOPE_SANITIZED
        if (!QFileInfo::exists(kFashion)) QSKIP("dataset-fashion-mnist missing: no Compare screenshot");
        w.setDataPath(kFashion);
        QSignalSpy finished(&w, &MainWindow::evaluationFinished);
        auto evaluate = [&] {
            finished.clear();
            w.runEvaluation();
            return finished.wait(300000) && finished.first().first().toBool();
        };
        QVERIFY(evaluate());
        QVERIFY(w.keepSnapshot("conv1 int4"));
        w.undoStack()->undo();  // back to all int8
        QVERIFY(evaluate());
        QVERIFY(w.keepSnapshot("all int8"));
        dockNamed(w, "compareDock")->raise();
        QTest::qWait(50);
        QVERIFY(w.grab().save(dir + "/compare_" + tag + ".png"));
#endif
    }

private:
    static QString t(const LayerTableView& v, int c) { return v.model()->headerData(c, Qt::Horizontal, Qt::DisplayRole).toString(); }
};

QTEST_MAIN(GuiOverviewTest)
#include "test_gui_overview.moc"
