#pragma once
// The weight histogram of one tensor with what quantization does to it drawn over it: the
// grid of representable values (every level when there are few, every k-th otherwise), the
// clipping thresholds, the "below precision" band (|x| < scale / 2 rounds to 0) and the
// "beyond range" regions (saturated). A toggle shows the log2-magnitude histogram instead;
// per-channel analyses add a plot of each channel's [min, max] against its clip.
#include <QWidget>

#include <memory>

#include "quant/quant_analysis.h"

class QCustomPlot;
class QCheckBox;
class QLabel;

class HistogramPlot : public QWidget {
    Q_OBJECT
public:
    explicit HistogramPlot(QWidget* parent = nullptr);

    // Shows `analysis` with candidate `chosen` (the layer's choice) drawn over it; null clears
    // the plot and shows `title` as the reason (what to do to see a histogram).
    void setAnalysis(std::shared_ptr<const qs::TensorAnalysis> analysis, const QString& title, int chosen);
    void setLogView(bool log2);

    QCustomPlot* plot() const { return plot_; }
    QCustomPlot* channelPlot() const { return channels_; }
    // What is drawn, for tests: bar heights and the grid lines' x positions.
    QVector<double> barCounts() const;
    QVector<double> gridLines() const { return grid_; }

private:
    void redraw();
    QCustomPlot* plot_ = nullptr;
    QCustomPlot* channels_ = nullptr;
    QCheckBox* log_ = nullptr;
    QLabel* caption_ = nullptr;
    std::shared_ptr<const qs::TensorAnalysis> analysis_;
    QString title_;
    int chosen_ = 0;
    QVector<double> grid_;
};
