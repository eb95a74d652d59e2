#pragma once
// The comparison charts of several configs of one model, one colour per config: top-1
// accuracy vs model size with the float model and the Pareto front, per-layer SQNR bars and
// per-layer size bars (grouped by layer). The GUI's Compare panel shows them and
// `quantscope-cli report` saves them; both hand over the runs, the Pareto front and the
// per-layer series come from core (config_comparison.h).
#include <QWidget>

#include <vector>

#include "eval/config_comparison.h"

class QCustomPlot;

class ComparisonCharts : public QWidget {
    Q_OBJECT
public:
    explicit ComparisonCharts(QWidget* parent = nullptr);

    void setRuns(const std::vector<qs::ConfigRun>& runs);

    QCustomPlot* accuracyPlot() const { return accuracy_; }
    QCustomPlot* sqnrPlot() const { return sqnr_; }
    QCustomPlot* sizePlot() const { return size_; }
    // The three plots with the file names (no extension) a report gives them.
    std::vector<std::pair<QCustomPlot*, QString>> plots() const;

    // The colour of the i-th config in every chart.
    static QColor runColor(size_t i);

private:
    void drawAccuracy(const std::vector<qs::ConfigRun>& runs);
    void drawLayerBars(QCustomPlot* plot, const qs::LayerSeries& s, const std::vector<std::vector<double>>& values,
                       const std::vector<qs::ConfigRun>& runs, const QString& label, double scale, bool log);

    QCustomPlot* accuracy_ = nullptr;
    QCustomPlot* sqnr_ = nullptr;
    QCustomPlot* size_ = nullptr;
};
