#include "comparison_charts.h"

#include <QGridLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "plot_export.h"

namespace {

// Tableau 10: distinct on screen and in print, and for the common colour-vision deficiencies.
const QColor kPalette[] = {QColor(78, 121, 167), QColor(242, 142, 43), QColor(225, 87, 89), QColor(118, 183, 178), QColor(89, 161, 79),
                           QColor(237, 201, 72), QColor(176, 122, 161), QColor(255, 157, 167), QColor(156, 117, 95), QColor(186, 176, 172)};

QCustomPlot* newPlot(QWidget* parent, const QString& export_name) {
    auto* plot = new QCustomPlot(parent);
    plot->setMinimumSize(180, 150);
    // The legend in a row of its own above the axes, so it never hides a bar or a point.
    plot->legend->setVisible(true);
    plot->legend->setFont(QFont(plot->font().family(), 8));
    plot->legend->setBorderPen(Qt::NoPen);
    plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
    plot->axisRect()->insetLayout()->take(plot->legend);
    plot->plotLayout()->insertRow(0);
    plot->plotLayout()->addElement(0, 0, plot->legend);
    plot->plotLayout()->setRowStretchFactor(0, 0.001);
    plot->plotLayout()->setRowSpacing(0);
    installPlotExportMenu(plot, export_name);
    return plot;
}

// Ticks 1, 2, 5 x 10^k inside [lo, hi], for a log axis whose range may hold no power of ten.
QSharedPointer<QCPAxisTickerText> logTicks(double lo, double hi) {
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    if (!(lo > 0) || !(hi >= lo) || !std::isfinite(hi)) return ticker;  // nothing sensible to mark (and no endless loop)
    for (double decade = std::pow(10.0, std::floor(std::log10(lo))); decade <= hi; decade *= 10)
        for (double m : {1.0, 2.0, 5.0})
            if (m * decade >= lo && m * decade <= hi) ticker->addTick(m * decade, QString::number(m * decade, 'g', 6));
    ticker->setSubTickCount(0);
    return ticker;
}

void clearPlot(QCustomPlot* plot) {
    plot->clearPlottables();
    plot->clearItems();
}

}  // namespace

ComparisonCharts::ComparisonCharts(QWidget* parent) : QWidget(parent) {
    // Accuracy against size on the left at full height (the chart a comparison is about), the
    // per-layer SQNR and sizes stacked beside it: fits a dock half of a 1280 px window.
    auto* layout = new QGridLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    accuracy_ = newPlot(this, "accuracy_vs_size");
    sqnr_ = newPlot(this, "layer_sqnr");
    size_ = newPlot(this, "layer_size");
    layout->addWidget(accuracy_, 0, 0, 2, 1);
    layout->addWidget(sqnr_, 0, 1);
    layout->addWidget(size_, 1, 1);
    layout->setColumnStretch(0, 1);
    layout->setColumnStretch(1, 1);
}

QColor ComparisonCharts::runColor(size_t i) { return kPalette[i % std::size(kPalette)]; }

std::vector<std::pair<QCustomPlot*, QString>> ComparisonCharts::plots() const {
    return {{accuracy_, "accuracy_vs_size"}, {sqnr_, "layer_sqnr"}, {size_, "layer_size"}};
}

void ComparisonCharts::setRuns(const std::vector<qs::ConfigRun>& runs) {
    drawAccuracy(runs);
    const qs::LayerSeries s = qs::layerSeries(runs);
    drawLayerBars(sqnr_, s, s.sqnr_db, runs, tr("SQNR dB vs float"), 1.0, false);
    // Layer sizes span three or more decades (a first conv of 0.5 kB, a dense of 400 kB).
    drawLayerBars(size_, s, s.bytes, runs, tr("size kB (log)"), 1e-3, true);
}

void ComparisonCharts::drawAccuracy(const std::vector<qs::ConfigRun>& runs) {
    QCustomPlot* p = accuracy_;
    clearPlot(p);
    if (runs.empty()) {
        p->replot();
        return;
    }
    auto point = [p](double kb, double top1, const QString& name, const QColor& colour, QCPScatterStyle::ScatterShape shape) {
        QCPGraph* g = p->addGraph();
        g->setName(name);
        g->setLineStyle(QCPGraph::lsNone);
        g->setScatterStyle(QCPScatterStyle(shape, colour, colour, 10));
        g->addData(kb, top1);
        g->removeFromLegend();  // each point carries its name beside it
        auto* label = new QCPItemText(p);
        label->position->setCoords(kb, top1);
        label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        label->setPadding(QMargins(7, 0, 0, 5));
        label->setText(name);
        label->setColor(colour.darker(130));
    };
    const qs::Comparison& first = runs.front().result;
    double lo = first.float_result.top1 * 100, hi = lo, kb_lo = first.float_bytes / 1e3, kb_hi = kb_lo;
    point(first.float_bytes / 1e3, first.float_result.top1 * 100, tr("float32"), QColor(110, 110, 110), QCPScatterStyle::ssDiamond);
    for (size_t i = 0; i < runs.size(); ++i) {
        const double kb = runs[i].result.quantized_bytes / 1e3, top1 = runs[i].result.quantized.top1 * 100;
        point(kb, top1, QString::fromStdString(runs[i].name), runColor(i), QCPScatterStyle::ssDisc);
        lo = std::min(lo, top1), hi = std::max(hi, top1), kb_lo = std::min(kb_lo, kb), kb_hi = std::max(kb_hi, kb);
    }
    const std::vector<size_t> front = qs::paretoFront(runs);
    if (front.size() > 1) {
        QCPGraph* g = p->addGraph();
        g->setName(tr("Pareto front"));
        g->setPen(QPen(QColor(40, 40, 40), 1.2, Qt::DashLine));
        for (size_t i : front) g->addData(runs[i].result.quantized_bytes / 1e3, runs[i].result.quantized.top1 * 100);
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(QColor(40, 40, 40), 1.2), Qt::NoBrush, 14));
    }
    // Size spans a factor of up to 16 (float32 to int2): a log axis keeps the small configs apart.
    p->xAxis->setScaleType(QCPAxis::stLogarithmic);
    p->xAxis->setLabel(tr("size kB (log)"));
    p->yAxis->setLabel(tr("top-1 %"));
    kb_lo = std::max(kb_lo, 1e-3);  // a log axis needs a positive start (a model without weights)
    kb_hi = std::max(kb_hi, kb_lo);
    p->xAxis->setRange(kb_lo / 1.5, kb_hi * 3);  // room on the right for the labels
    p->xAxis->setTicker(logTicks(kb_lo / 1.5, kb_hi * 3));
    const double pad = std::max(0.5, (hi - lo) * 0.15);
    p->yAxis->setRange(lo - pad, hi + pad);
    p->replot();
}

void ComparisonCharts::drawLayerBars(QCustomPlot* p, const qs::LayerSeries& s, const std::vector<std::vector<double>>& values,
                                     const std::vector<qs::ConfigRun>& runs, const QString& label, double scale, bool log) {
    clearPlot(p);
    // One group per plot, kept: the plot owns it, clearPlottables() does not remove it.
    auto* group = p->findChild<QCPBarsGroup*>();
    if (!group) {
        group = new QCPBarsGroup(p);
        group->setSpacingType(QCPBarsGroup::stAbsolute);
        group->setSpacing(1);
    }
    group->clear();
    const double width = 0.8 / static_cast<double>(std::max<size_t>(runs.size(), 1));
    double top = 0, bottom = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < runs.size(); ++i)
        for (double v : values[i])
            if (std::isfinite(v) && v > 0) top = std::max(top, v * scale), bottom = std::min(bottom, v * scale);
    // On a log axis bars start at the power of ten below the smallest value (log 0 is -inf).
    const double base = log && std::isfinite(bottom) ? std::pow(10.0, std::floor(std::log10(bottom))) : 0.0;
    for (size_t i = 0; i < runs.size(); ++i) {
        auto* bars = new QCPBars(p->xAxis, p->yAxis);
        bars->setName(QString::fromStdString(runs[i].name));
        bars->setBrush(runColor(i));
        bars->setPen(Qt::NoPen);
        bars->setWidth(width);
        bars->setBarsGroup(group);
        bars->setBaseValue(base);
        for (size_t k = 0; k < s.layers.size(); ++k) {
            const double v = values[i][k] * scale;
            if (!std::isfinite(v)) continue;  // an exact layer (SQNR +inf) or a layer the run lacks
            bars->addData(static_cast<double>(k), log ? v - base : v);  // QCPBars stacks on its base
        }
    }
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    for (size_t k = 0; k < s.layers.size(); ++k) ticker->addTick(static_cast<double>(k), QString::fromStdString(s.layers[k]));
    p->xAxis->setTicker(ticker);
    p->xAxis->setTickLabelRotation(s.layers.size() > 2 ? 45 : 0);  // names overlap in a half-width dock
    p->xAxis->setRange(-0.6, static_cast<double>(s.layers.size()) - 0.4);
    p->xAxis->grid()->setVisible(false);
    p->yAxis->setLabel(label);
    if (log && top > 0) {
        p->yAxis->setScaleType(QCPAxis::stLogarithmic);
        p->yAxis->setRange(base, top * 2);
        p->yAxis->setTicker(logTicks(base, top * 2));
    } else {
        p->yAxis->setScaleType(QCPAxis::stLinear);
        p->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
        p->yAxis->setRange(0, top > 0 ? top * 1.08 : 1);
    }
    p->replot();
}
