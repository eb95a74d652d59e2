// Comparison of configs (issue 8): the Pareto front on hand-worked points (dominated, tied
// and equal-accuracy cases), per-layer series with a missing layer, the precision summary,
// HTML escaping; the charts widget draws exactly the runs' numbers in the runs' colours; and
// `quantscope-cli report` on fmnist_cnn with three configs (all-8, all-4, mixed) writes PNG,
// SVG, report.html and report.json whose numbers equal `quantscope-cli eval` on each config,
// while a bad config stops it before any evaluation and writes nothing.
#include <QDir>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <qcustomplot.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "comparison_charts.h"
#include "eval/config_comparison.h"
#include "plot_export.h"

namespace fs = std::filesystem;

namespace {

const fs::path kSamples = fs::path(QUANTSCOPE_SOURCE_DIR) / "sample_models";
const QString kFashion = "/usr/share/datasets/fashion-mnist";

qs::OpReport op(const std::string& name, const std::string& precision, double sqnr, int64_t bytes) {
    qs::OpReport r;
    r.name = r.layer = name;
    r.precision = precision;
    r.domain = "integer";
    r.sqnr_db = sqnr;
    r.weight_bytes = bytes;
    r.weight_bits = bytes > 0 ? 8 : 0;  // ops without weights have 0 bits
    return r;
}

qs::ConfigRun run(const std::string& name, double top1, int64_t bytes, std::vector<qs::OpReport> ops) {
    qs::ConfigRun r;
    r.name = name;
    r.result.quantized.top1 = top1;
    r.result.quantized_bytes = bytes;
    r.result.float_result.top1 = 0.92;
    r.result.float_bytes = 4000;
    r.result.ops = std::move(ops);
    return r;
}

QJsonObject runCli(const QStringList& args, int* exit_code, QString* err = nullptr) {
    QProcess p;
    p.start(QUANTSCOPE_CLI, args);
    if (!p.waitForFinished(900000)) return {};
    *exit_code = p.exitCode();
    if (err) *err = QString::fromUtf8(p.readAllStandardError());
    return QJsonDocument::fromJson(p.readAllStandardOutput()).object();
}

}  // namespace

class ComparisonTest : public QObject {
    Q_OBJECT
    QTemporaryDir tmp_;

private slots:
    void paretoFrontByHand() {
        //            A     B     C     D     E     F
        // size      100    50    60    25    50   200
        // accuracy  .90   .88   .87   .80   .88   .90
        // C is beaten by B (smaller and better), F by A (same accuracy, smaller); B and E tie
        // and both stay; D is the smallest. Front by size: D, B, E, A.
        const std::vector<size_t> front = qs::paretoFront({100, 50, 60, 25, 50, 200}, {.90, .88, .87, .80, .88, .90});
        QCOMPARE(front, (std::vector<size_t>{3, 1, 4, 0}));
        QCOMPARE(qs::paretoFront({}, {}), std::vector<size_t>{});
        QCOMPARE(qs::paretoFront({7}, {0.5}), std::vector<size_t>{0});
        // The most accurate and the smallest are always on it.
        QCOMPARE(qs::paretoFront({10, 20, 30}, {0.9, 0.8, 0.95}), (std::vector<size_t>{0, 2}));
    }

    void seriesAndSummary() {
        const std::vector<qs::ConfigRun> runs = {
            run("a", 0.9, 1000, {op("conv", "int8", 30.5, 400), op("pool", "int8", 31, 0), op("dense", "int8", 25, 600)}),
            run("b", 0.85, 500, {op("conv", "int8", 30.4, 400), op("dense", "int4", 12.5, 100)}),
            run("c", 0.7, 300, {op("dense", "int2", std::numeric_limits<double>::infinity(), 50)}),
        };
        const qs::LayerSeries s = qs::layerSeries(runs);
        QCOMPARE(s.layers, (std::vector<std::string>{"conv", "dense"}));  // ops with weights, first run's order
        QCOMPARE(s.sqnr_db[1][1], 12.5);
        QCOMPARE(s.bytes[1][0], 400.0);
        QVERIFY(std::isnan(s.sqnr_db[2][0]) && std::isnan(s.bytes[2][0]));  // "c" has no conv
        QCOMPARE(s.precision[2][1], std::string("int2"));
        QCOMPARE(qs::precisionSummary(runs[0].result), std::string("int8"));
        QCOMPARE(qs::precisionSummary(runs[1].result), std::string("mixed: 1x int4, 1x int8"));

        const nlohmann::json j = qs::comparisonReportJson(runs, {"m.h5", "data", 10, {}});
        QCOMPARE(j["pareto_front"], nlohmann::json({"c", "b", "a"}));
        QCOMPARE(j["configs"][1]["layers"][1]["sqnr_db"].get<double>(), 12.5);
        QVERIFY(j["configs"][2]["layers"][1]["sqnr_db"].is_null());  // exact: +inf has no JSON number
        QCOMPARE(j["float"]["size_bytes"].get<int64_t>(), int64_t(4000));
    }

    void htmlEscapesNames() {
        std::vector<qs::ConfigRun> runs = {run("<b>8 & \"4\"</b>", 0.9, 1000, {op("dense", "int8", 30, 600)})};
        const std::string html = qs::comparisonReportHtml(runs, {"<m>.h5", "d", 1, {"x.svg"}});
        QVERIFY(html.find("&lt;b&gt;8 &amp; &quot;4&quot;&lt;/b&gt;") != std::string::npos);
        QVERIFY(html.find("<b>8") == std::string::npos);
        QVERIFY(html.find("&lt;m&gt;.h5") != std::string::npos);
        QVERIFY(html.find("<img src=\"x.svg\"") != std::string::npos);
        QVERIFY(html.find("<td>90.00</td>") != std::string::npos);  // top-1 in percent
        QVERIFY(html.find("<td>-2.00</td>") != std::string::npos);  // 0.90 vs float 0.92
        QVERIFY(html.find("<td>4.0&times;</td>") != std::string::npos);  // 4000 / 1000 bytes
    }

    void chartsDrawTheRuns() {
        const std::vector<qs::ConfigRun> runs = {
            run("all-8", 0.91, 1000, {op("conv", "int8", 30, 400), op("dense", "int8", 25, 600)}),
            run("all-4", 0.85, 500, {op("conv", "int4", 14, 200), op("dense", "int4", 11, 300)}),
            run("big", 0.80, 2000, {op("conv", "int16", 60, 800), op("dense", "int16", 55, 1200)}),  // dominated
        };
        ComparisonCharts charts;
        charts.resize(1200, 400);
        charts.setRuns(runs);
        QCustomPlot* acc = charts.accuracyPlot();
        // float32, three runs, the front (all-4 -> all-8).
        QCOMPARE(acc->graphCount(), 5);
        QCOMPARE(acc->graph(0)->name(), QString("float32"));
        QCOMPARE(acc->graph(0)->data()->at(0)->key, 4.0);     // kB
        QCOMPARE(acc->graph(0)->data()->at(0)->value, 92.0);  // %
        for (int i = 0; i < 3; ++i) {
            QCPGraph* g = acc->graph(i + 1);
            QCOMPARE(g->name(), QString::fromStdString(runs[size_t(i)].name));
            QCOMPARE(g->data()->at(0)->key, runs[size_t(i)].result.quantized_bytes / 1e3);
            QCOMPARE(g->data()->at(0)->value, runs[size_t(i)].result.quantized.top1 * 100);
            QCOMPARE(g->scatterStyle().brush().color(), ComparisonCharts::runColor(size_t(i)));
        }
        QCPGraph* front = acc->graph(4);
        QCOMPARE(front->dataCount(), 2);
        QCOMPARE(front->data()->at(0)->key, 0.5);
        QCOMPARE(front->data()->at(1)->key, 1.0);
        // Bars: one QCPBars per run, one bar per weighted layer, in the run's colour.
        for (QCustomPlot* p : {charts.sqnrPlot(), charts.sizePlot()}) QCOMPARE(p->plottableCount(), 3);
        auto* sqnr = qobject_cast<QCPBars*>(charts.sqnrPlot()->plottable(1));
        QCOMPARE(sqnr->name(), QString("all-4"));
        QCOMPARE(sqnr->data()->at(1)->value, 11.0);
        QCOMPARE(sqnr->brush().color(), ComparisonCharts::runColor(1));
        auto* size = qobject_cast<QCPBars*>(charts.sizePlot()->plottable(2));
        QCOMPARE(size->data()->at(1)->value + size->baseValue(), 1.2);  // kB, on a log axis from its base
        QCOMPARE(size->baseValue(), 0.1);  // the power of ten below the smallest (0.2 kB)
        // Redrawing with fewer runs leaves nothing of the old ones.
        charts.setRuns({runs[0]});
        QCOMPARE(acc->graphCount(), 2);
        QCOMPARE(charts.sqnrPlot()->plottableCount(), 1);
        // A run of size 0 (no weights) on the log axis: drawn, no endless tick loop.
        qs::ConfigRun empty = run("empty", 0.5, 0, {});
        empty.result.float_bytes = 0;
        charts.setRuns({empty});
        QCOMPARE(acc->graphCount(), 2);
        QVERIFY(acc->xAxis->range().lower > 0);
        charts.setRuns({runs[0]});
        // Saved as PNG (twice the size) and SVG.
        const QString png = tmp_.filePath("acc.png"), svg = tmp_.filePath("acc.svg");
        QVERIFY(savePlot(acc, png, QSize(400, 300)));
        QVERIFY(savePlot(acc, svg, QSize(400, 300)));
        QCOMPARE(QImage(png).size(), QSize(800, 600));
        QFile f(svg);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(f.readAll().contains("<svg"));
    }

    void reportOfThreeConfigs() {
        if (!QFileInfo::exists(kFashion)) QSKIP("dataset-fashion-mnist missing");
        const QString model = QString::fromStdString((kSamples / "fmnist_cnn.h5").string());
        // Three configs written by the CLI itself. The sanitizer run scores fewer images.
        const QString limit = QString::number(qEnvironmentVariableIsSet("QUANTSCOPE_TEST_SUBSET") ? 300 : 2000);
        const QDir dir(tmp_.path());
        const QStringList names = {"all-8", "all-4", "mixed"};
        const QList<QStringList> specs = {{"--bits", "8"}, {"--bits", "4"}, {"--bits", "8", "--layer", "dense=4"}};
        for (int i = 0; i < 3; ++i) {
            int code = -1;
            runCli(QStringList{"config", model, "--out", dir.filePath(names[i] + ".json")} + specs[i], &code);
            QCOMPARE(code, 0);
        }
        const QString out = dir.filePath("report");
        int code = -1;
        QString err;
        runCli({"report", model, "--data", kFashion, "--config", dir.filePath("all-8.json"), "--config", dir.filePath("all-4.json"), "--config",
                dir.filePath("mixed.json"), "--limit", limit, "--out", out},
               &code, &err);
        QVERIFY2(code == 0, qPrintable(err));
        for (const QString chart : {"accuracy_vs_size", "layer_sqnr", "layer_size"}) {
            const QImage png(out + "/" + chart + ".png");
            QCOMPARE(png.size(), QSize(1520, 1040));
            QFile svg(out + "/" + chart + ".svg");
            QVERIFY(svg.open(QIODevice::ReadOnly));
            QVERIFY(svg.readAll().contains("<svg"));
        }
        QFile jf(out + "/report.json");
        QVERIFY(jf.open(QIODevice::ReadOnly));
        const QJsonObject report = QJsonDocument::fromJson(jf.readAll()).object();
        const QJsonArray configs = report["configs"].toArray();
        QCOMPARE(configs.size(), 3);
        QCOMPARE(report["images"].toInteger(), limit.toLongLong());
        // Each config's numbers are what `eval --config` gives on its own.
        std::vector<double> top1, bytes;
        for (int i = 0; i < 3; ++i) {
            const QJsonObject c = configs[i].toObject();
            QCOMPARE(c["name"].toString(), names[i]);
            int ecode = -1;
            const QJsonObject e = runCli({"eval", model, "--data", kFashion, "--config", dir.filePath(names[i] + ".json"), "--limit", limit, "--json"}, &ecode);
            QCOMPARE(ecode, 0);
            QCOMPARE(c["top1"].toDouble(), e["quantized"].toObject()["top1"].toDouble());
            QCOMPARE(c["agreement"].toDouble(), e["agreement"].toDouble());
            QCOMPARE(c["size_bytes"].toInteger(), e["quantized"].toObject()["size_bytes"].toInteger());
            QCOMPARE(report["float"].toObject()["top1"].toDouble(), e["float"].toObject()["top1"].toDouble());
            top1.push_back(c["top1"].toDouble());
            bytes.push_back(c["size_bytes"].toDouble());
        }
        // all-4 < mixed < all-8 in size; mixed (only dense at 4 bits) is 8-bit elsewhere.
        QVERIFY(bytes[1] < bytes[2] && bytes[2] < bytes[0]);
        QCOMPARE(configs[2].toObject()["precision"].toString(), QString("mixed: 1x int4, 3x int8"));
        // The front recomputed from the three points agrees with the report's.
        QJsonArray expected;
        for (size_t i : qs::paretoFront(bytes, top1)) expected.append(names[int(i)]);
        QCOMPARE(report["pareto_front"].toArray(), expected);
        QFile hf(out + "/report.html");
        QVERIFY(hf.open(QIODevice::ReadOnly));
        const QString html = QString::fromUtf8(hf.readAll());
        for (int i = 0; i < 3; ++i) {
            QVERIFY(html.contains("<td>" + names[i] + "</td>"));
            QVERIFY(html.contains("<td>" + QString::number(100 * top1[size_t(i)], 'f', 2) + "</td>"));
        }
        QVERIFY(html.contains("<img src=\"accuracy_vs_size.svg\""));
        // Keep the charts when asked (README's picture).
        if (qEnvironmentVariableIsSet("QUANTSCOPE_REPORT_COPY")) {
            const QString to = qEnvironmentVariable("QUANTSCOPE_REPORT_COPY");
            QDir().mkpath(to);
            for (const QString& f : QDir(out).entryList(QDir::Files)) {
                QFile::remove(to + "/" + f);
                QFile::copy(out + "/" + f, to + "/" + f);
            }
        }
    }

    void reportRefusesABadConfigBeforeEvaluating() {
        if (!QFileInfo::exists(kFashion)) QSKIP("dataset-fashion-mnist missing");
        const QString model = QString::fromStdString((kSamples / "fmnist_cnn.h5").string());
        const QString good = tmp_.filePath("good.json"), bad = tmp_.filePath("bad.json");
        int code = -1;
        runCli({"config", model, "--out", good}, &code);
        QCOMPARE(code, 0);
        {
            std::ofstream f(bad.toStdString());
            f << R"({"format": "quantscope-config", "version": 1, "layers": {"no_such_layer": {"precision": "int8"}}})";
        }
        const QString out = tmp_.filePath("bad_report");
        QString err;
        QElapsedTimer t;
        t.start();
        runCli({"report", model, "--data", kFashion, "--config", good, "--config", bad, "--out", out}, &code, &err);
        QCOMPARE(code, 1);
        QVERIFY2(err.contains("bad.json") && err.contains("no_such_layer"), qPrintable(err));
        QVERIFY(!QFileInfo::exists(out));
        QVERIFY2(t.elapsed() < 20000, "checked before evaluating");
        // Usage errors: exit status 2.
        runCli({"report", model, "--data", kFashion, "--out", out}, &code, &err);
        QCOMPARE(code, 2);
        QVERIFY(err.contains("--config"));
    }
};

QTEST_MAIN(ComparisonTest)
#include "test_comparison.moc"
