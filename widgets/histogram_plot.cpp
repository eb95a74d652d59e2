#include "histogram_plot.h"

#include <QCheckBox>
#include <QLabel>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

#include "plot_export.h"

HistogramPlot::HistogramPlot(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* top = new QHBoxLayout;
    caption_ = new QLabel(this);
    caption_->setWordWrap(true);
    log_ = new QCheckBox(tr("log2 magnitude"), this);
    log_->setToolTip(tr("Histogram of log2 |w|: one bin per power of two, as MATLAB's dynamic-range view"));
    top->addWidget(caption_, 1);
    top->addWidget(log_);
    plot_ = new QCustomPlot(this);
    plot_->setMinimumHeight(180);
    channels_ = new QCustomPlot(this);
    channels_->setMinimumHeight(110);
    channels_->setVisible(false);
    layout->addLayout(top);
    layout->addWidget(plot_, 3);
    layout->addWidget(channels_, 2);
    installPlotExportMenu(plot_, "histogram");
    installPlotExportMenu(channels_, "channel_ranges");
    connect(log_, &QCheckBox::toggled, this, [this] { redraw(); });
}

void HistogramPlot::setAnalysis(std::shared_ptr<const qs::TensorAnalysis> analysis, const QString& title, int chosen) {
    analysis_ = std::move(analysis);
    chosen_ = chosen;
    title_ = title;
    redraw();
}

void HistogramPlot::setLogView(bool log2) { log_->setChecked(log2); }

QVector<double> HistogramPlot::barCounts() const {
    QVector<double> out;
    if (plot_->plottableCount() == 0) return out;
    auto* bars = qobject_cast<QCPBars*>(plot_->plottable(0));
    if (!bars) return out;
    for (auto it = bars->data()->constBegin(); it != bars->data()->constEnd(); ++it) out << it->value;
    return out;
}

void HistogramPlot::redraw() {
    plot_->clearPlottables();
    plot_->clearItems();
    channels_->clearPlottables();
    channels_->clearItems();
    grid_.clear();
    if (!analysis_) {
        caption_->setText(title_.isEmpty() ? tr("Select a layer with weights to see its histogram.") : title_.toHtmlEscaped());
        channels_->setVisible(false);
        plot_->replot();
        return;
    }
    const qs::TensorAnalysis& a = *analysis_;
    const qs::Candidate& c = a.candidates.at(static_cast<size_t>(chosen_));
    auto* bars = new QCPBars(plot_->xAxis, plot_->yAxis);
    bars->setPen(Qt::NoPen);
    bars->setBrush(QColor(70, 110, 170));
    if (log_->isChecked()) {
        const qs::Log2Histogram& h = a.log2_hist;
        for (size_t i = 0; i < h.counts.size(); ++i) bars->addData(h.min_exponent + static_cast<int>(i) + 0.5, static_cast<double>(h.counts[i]));
        bars->setWidth(0.9);
        plot_->xAxis->setLabel(tr("log2 |w|"));
        if (!c.float16 && !c.params.empty()) {
            // The smallest and largest magnitudes the grid represents (per-tensor, or the widest channel).
            double s = 0;
            for (const qs::QuantParams& p : c.params) s = std::max(s, p.scale);
            for (double x : {std::log2(s / 2), std::log2(s * c.params[0].qmax)}) {
                auto* line = new QCPItemStraightLine(plot_);
                line->point1->setCoords(x, 0);
                line->point2->setCoords(x, 1);
                line->setPen(QPen(QColor(200, 60, 60), 1.5, Qt::DashLine));
            }
        }
    } else {
        const qs::Histogram& h = a.weight_hist;
        const double w = h.binWidth();
        for (size_t i = 0; i < h.counts.size(); ++i) bars->addData(h.lo + (static_cast<double>(i) + 0.5) * w, static_cast<double>(h.counts[i]));
        bars->setWidth(w);
        plot_->xAxis->setLabel(tr("weight value"));
        if (!c.float16 && !c.params.empty()) {
            // Per-tensor: the grid itself; per-channel: the widest channel's (the others are finer).
            const qs::QuantParams* widest = &c.params[0];
            for (const qs::QuantParams& p : c.params)
                if (p.scale > widest->scale) widest = &p;
            const qs::QuantParams& p = *widest;
            const double lo = p.scale * (p.qmin - p.zero_point), hi = p.scale * (p.qmax - p.zero_point);
            const int levels = p.qmax - p.qmin + 1;
            const int step = levels <= 64 ? 1 : (levels + 31) / 32;
            for (int q = p.qmin; q <= p.qmax; q += step) grid_ << p.scale * (q - p.zero_point);
            for (double x : grid_) {
                auto* line = new QCPItemStraightLine(plot_);
                line->point1->setCoords(x, 0);
                line->point2->setCoords(x, 1);
                line->setPen(QPen(QColor(120, 120, 120, 90), 0));
            }
            auto shade = [&](double x0, double x1, QColor col) {
                auto* r = new QCPItemRect(plot_);
                r->topLeft->setTypeY(QCPItemPosition::ptAxisRectRatio);
                r->bottomRight->setTypeY(QCPItemPosition::ptAxisRectRatio);
                r->topLeft->setCoords(x0, 0);
                r->bottomRight->setCoords(x1, 1);
                r->setPen(Qt::NoPen);
                r->setBrush(col);
            };
            const double xmin = std::min(h.lo, lo) - w, xmax = std::max(h.hi, hi) + w;
            shade(-p.scale / 2, p.scale / 2, QColor(240, 170, 40, 70));          // rounds to 0
            if (h.lo < lo) shade(xmin, lo - p.scale / 2, QColor(220, 50, 50, 60));  // saturates
            if (h.hi > hi) shade(hi + p.scale / 2, xmax, QColor(220, 50, 50, 60));
            for (double x : {lo, hi}) {
                auto* clip = new QCPItemStraightLine(plot_);
                clip->point1->setCoords(x, 0);
                clip->point2->setCoords(x, 1);
                clip->setPen(QPen(QColor(200, 60, 60), 1.5, Qt::DashLine));
            }
        }
    }
    plot_->rescaleAxes();
    plot_->yAxis->setRangeLower(0);
    plot_->yAxis->setLabel(tr("count"));
    caption_->setText(tr("<b>%1</b> &nbsp; %2 bits %3, %4: SQNR %5 dB, %6% below precision, %7% beyond range")
                          .arg(title_.toHtmlEscaped())
                          .arg(c.float16 ? 16 : c.bits)
                          .arg(c.float16 ? tr("float16") : QString::fromLatin1(qs::granularityName(c.granularity)))
                          .arg(QString::fromStdString(c.method))
                          .arg(c.stats.sqnr_db, 0, 'f', 1)
                          .arg(c.stats.pct_below_precision, 0, 'f', 2)
                          .arg(c.stats.pct_beyond_range, 0, 'f', 3));
    plot_->replot();

    // Per-channel ranges against each channel's clip.
    const bool per_channel = a.stats.per_channel.size() > 1 && c.params.size() == a.stats.per_channel.size();
    channels_->setVisible(per_channel);
    if (per_channel) {
        auto* range = new QCPBars(channels_->xAxis, channels_->yAxis);
        auto* neg = new QCPBars(channels_->xAxis, channels_->yAxis);
        auto* clip = new QCPGraph(channels_->xAxis, channels_->yAxis);
        range->setBrush(QColor(70, 110, 170));
        neg->setBrush(QColor(70, 110, 170));
        range->setPen(Qt::NoPen);
        neg->setPen(Qt::NoPen);
        clip->setLineStyle(QCPGraph::lsNone);
        clip->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssPlus, QColor(200, 60, 60), 6));
        for (size_t ch = 0; ch < a.stats.per_channel.size(); ++ch) {
            range->addData(static_cast<double>(ch), a.stats.per_channel[ch].max);
            neg->addData(static_cast<double>(ch), a.stats.per_channel[ch].min);
            clip->addData(static_cast<double>(ch), c.params[ch].scale * c.params[ch].qmax);
        }
        channels_->xAxis->setLabel(tr("output channel: [min, max] and clip"));
        channels_->rescaleAxes();
        channels_->replot();
    }
}
