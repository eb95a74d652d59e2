#include "candidate_panel.h"

#include <QCheckBox>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

#include "plot_export.h"
#include "quant/histogram.h"

namespace {

struct ColumnInfo {
    const char* title;
    const char* tip;
};

// Every statistic analyze's JSON has per candidate (core/quant/analysis_report.cpp).
const ColumnInfo kColumns[] = {
    {"method", "How the scale was chosen"},
    {"scale", "Step between representable values (per-channel: the largest channel's)"},
    {"SQNR\ndB", "Signal-to-quantization-noise ratio: 10 log10(sum w^2 / sum (w - q(w))^2); higher is better"},
    {"MSE", "Mean square of the quantization error"},
    {"RMSE", "Root mean square of the quantization error"},
    {"max\n|err|", "Largest absolute error of any weight"},
    {"bias", "Mean error: a systematic shift the quantization adds"},
    {"%\nbelow", "Non-zero weights that quantize to 0 (below precision)"},
    {"%\nbeyond", "Weights clipped at the largest level (beyond range)"},
    {"levels", "Distinct quantized values actually used"},
    {"bits/\nweight", "Entropy of the quantized values: what an ideal entropy coder needs per weight"},
    {"coded\nbytes", "Bytes an ideal entropy coder reaches (Deep Compression's Huffman stage)"},
    {"bytes", "Packed weights + scales + zero points"},
};

// Sorts by the number behind the text (Qt::UserRole), not by the text.
class NumberItem : public QTableWidgetItem {
public:
    NumberItem(const QString& text, double value) : QTableWidgetItem(text) {
        setData(Qt::UserRole, value);
        setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    }
    bool operator<(const QTableWidgetItem& other) const override {
        return data(Qt::UserRole).toDouble() < other.data(Qt::UserRole).toDouble();
    }
};

constexpr int kIndexRole = Qt::UserRole + 1;  // the candidate's index, on every row's first item
constexpr double kWellBehavedPctBeyond = 1.0;

bool plotted(const qs::Candidate& c) { return !c.float16 && !c.stats.error_hist.counts.empty() && !c.params.empty(); }

double stepOf(const qs::Candidate& c) {
    double s = 0;
    for (const qs::QuantParams& p : c.params) s = std::max(s, p.scale);
    return s;
}

const QColor kChosenBackground(255, 246, 214);
const QColor kLine(40, 90, 160), kChosenLine(200, 90, 0), kOverflow(210, 40, 40);

}  // namespace

CandidatePanel::CandidatePanel(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* top = new QHBoxLayout;
    caption_ = new QLabel(this);
    caption_->setWordWrap(true);
    units_ = new QCheckBox(tr("weight units"), this);
    units_->setToolTip(tr("Errors in the weights' own units instead of quantization steps (per channel: in the widest channel's step)"));
    log_y_ = new QCheckBox(tr("log y"), this);
    log_y_->setToolTip(tr("Logarithmic fraction axis: shows the rare large errors"));
    top->addWidget(caption_, 1);
    top->addWidget(units_);
    top->addWidget(log_y_);
    auto* split = new QSplitter(Qt::Vertical, this);
    plot_ = new QCustomPlot(split);
    plot_->setMinimumHeight(200);
    plot_->setToolTip(tr("Click a candidate's plot to make it this layer's choice"));
    installPlotExportMenu(plot_, "candidate_errors");
    table_ = new QTableWidget(split);
    table_->setColumnCount(static_cast<int>(std::size(kColumns)));
    for (int c = 0; c < table_->columnCount(); ++c) {
        auto* h = new QTableWidgetItem(QString::fromLatin1(kColumns[c].title));
        h->setToolTip(tr(kColumns[c].tip));
        table_->setHorizontalHeaderItem(c, h);
    }
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->verticalHeader()->setVisible(false);
    table_->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 6);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    // A point smaller and two-line headers: all 13 columns fit beside the Evaluation dock at 1280 px.
    QFont small = table_->font();
    small.setPointSizeF(std::max(7.0, small.pointSizeF() - 1));
    table_->setFont(small);
    table_->horizontalHeader()->setFont(small);
    table_->horizontalHeader()->setMinimumSectionSize(24);
    table_->setToolTip(tr("Click a candidate to make it this layer's choice; click a header to sort"));
    split->addWidget(plot_);
    split->addWidget(table_);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 1);
    split->setSizes({650, 350});
    plot_->installEventFilter(this);
    layout->addLayout(top);
    layout->addWidget(split, 1);
    connect(table_, &QTableWidget::cellClicked, this, [this](int row, int) {
        const QTableWidgetItem* item = table_->item(row, 0);
        if (!analysis_ || !item) return;
        const int i = item->data(kIndexRole).toInt();
        if (i >= 0 && i < static_cast<int>(analysis_->candidates.size()))
            emit candidateClicked(QString::fromStdString(analysis_->candidates[static_cast<size_t>(i)].method));
    });
    connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (!analysis_ || e->button() != Qt::LeftButton) return;
        QCPAxisRect* r = plot_->axisRectAt(e->position());
        for (const auto& [i, rect] : rects_)
            if (rect == r) emit candidateClicked(QString::fromStdString(analysis_->candidates[static_cast<size_t>(i)].method));
    });
    connect(units_, &QCheckBox::toggled, this, [this] { redraw(); });
    connect(log_y_, &QCheckBox::toggled, this, [this] { redraw(); });
    setAnalysis(nullptr, 0);
}

void CandidatePanel::setWeightUnits(bool on) { units_->setChecked(on); }
void CandidatePanel::setLogY(bool on) { log_y_->setChecked(on); }

QCPAxisRect* CandidatePanel::plotOf(int index) const {
    for (const auto& [i, rect] : rects_)
        if (i == index) return rect;
    return nullptr;
}

double CandidatePanel::overflowOf(int index) const {
    return index >= 0 && static_cast<size_t>(index) < overflow_.size() ? overflow_[static_cast<size_t>(index)] : 0.0;
}

double CandidatePanel::sharedHalfRange(const qs::TensorAnalysis& a, bool weight_units) {
    bool any_good = false;
    for (const qs::Candidate& c : a.candidates) any_good |= plotted(c) && c.stats.pct_beyond_range <= kWellBehavedPctBeyond;
    double half = 0, min_step = 0;
    for (const qs::Candidate& c : a.candidates) {
        if (!plotted(c) || (any_good && c.stats.pct_beyond_range > kWellBehavedPctBeyond)) continue;
        const qs::Histogram& h = c.stats.error_hist;
        const double unit = weight_units ? stepOf(c) : 1.0;
        // The central 99% of the errors: a candidate that clips a fraction of a percent would
        // otherwise stretch the axis to its largest clipped error, dozens of steps out.
        const double q = std::max(std::fabs(qs::histogramQuantile(h, 0.005)), std::fabs(qs::histogramQuantile(h, 0.995)));
        half = std::max(half, q * unit);
        min_step = min_step == 0 ? unit : std::min(min_step, unit);
    }
    return std::max(half, 0.5 * min_step) * 1.1;  // a margin so the edge bins are not on the frame
}

void CandidatePanel::setAnalysis(std::shared_ptr<const qs::TensorAnalysis> analysis, int chosen, const QString& empty_text) {
    analysis_ = std::move(analysis);
    chosen_ = chosen;
    empty_text_ = empty_text.isEmpty() ? tr("Select a layer with weights to compare its candidate scales.") : empty_text;
    fillTable();
    // Hidden (the Histogram tab is in front): draw when shown, not on every selection.
    stale_ = !isVisible();
    if (stale_) caption_->setText(analysis_ ? QString::fromStdString(analysis_->name) : empty_text_);
    else redraw();
}

void CandidatePanel::showEvent(QShowEvent* event) {
    QWidget::showEvent(event);
    if (stale_) redraw();
}

void CandidatePanel::fillTable() {
    table_->setSortingEnabled(false);
    table_->setRowCount(0);
    if (!analysis_) return;
    const auto& cs = analysis_->candidates;
    table_->setRowCount(static_cast<int>(cs.size()));
    for (size_t i = 0; i < cs.size(); ++i) {
        const qs::Candidate& c = cs[i];
        const qs::CandidateStats& s = c.stats;
        const double scale = stepOf(c);
        auto* name = new QTableWidgetItem(QString::fromStdString(c.method));
        name->setData(kIndexRole, static_cast<int>(i));
        std::vector<QTableWidgetItem*> items{
            name,
            new NumberItem(c.float16 ? QStringLiteral("-") : QString::number(scale, 'g', 4), scale),
            new NumberItem(QString::number(s.sqnr_db, 'f', 2), s.sqnr_db),
            new NumberItem(QString::number(s.mse, 'g', 3), s.mse),
            new NumberItem(QString::number(s.rmse, 'g', 3), s.rmse),
            new NumberItem(QString::number(s.max_abs_error, 'g', 3), s.max_abs_error),
            new NumberItem(QString::number(s.mean_error, 'g', 2), s.mean_error),
            new NumberItem(QString::number(s.pct_below_precision, 'f', 2), s.pct_below_precision),
            new NumberItem(QString::number(s.pct_beyond_range, 'f', 3), s.pct_beyond_range),
            new NumberItem(s.levels_used < 0 ? QStringLiteral("-") : QString::number(s.levels_used), static_cast<double>(s.levels_used)),
            new NumberItem(QString::number(s.entropy_bits_per_weight, 'f', 2), s.entropy_bits_per_weight),
            new NumberItem(QString::number(s.entropy_coded_bytes), static_cast<double>(s.entropy_coded_bytes)),
            new NumberItem(QString::number(s.packed_bytes), static_cast<double>(s.packed_bytes))};
        for (size_t col = 0; col < items.size(); ++col) {
            if (static_cast<int>(i) == chosen_) {
                QFont f = items[col]->font();
                f.setBold(true);
                items[col]->setFont(f);
                items[col]->setBackground(kChosenBackground);
            }
            table_->setItem(static_cast<int>(i), static_cast<int>(col), items[col]);
        }
    }
    table_->setSortingEnabled(true);
}

int CandidatePanel::columnsFor(int plots) const {
    // About 170 px per plot across; never more columns than plots.
    return std::clamp(plot_->width() / 170, 1, std::max(1, plots));
}

bool CandidatePanel::eventFilter(QObject* watched, QEvent* event) {
    // The plot's own width decides the columns (the panel's resize comes before its layout's).
    if (watched == plot_ && event->type() == QEvent::Resize) relayout();
    return QWidget::eventFilter(watched, event);
}

void CandidatePanel::relayout() {
    int n = 0;
    if (analysis_)
        for (const qs::Candidate& c : analysis_->candidates) n += plotted(c);
    if (n == 0 || columnsFor(n) == columns_) return;
    if (isVisible()) redraw();
    else stale_ = true;  // drawn when shown
}

void CandidatePanel::redraw() {
    stale_ = false;
    plot_->clearPlottables();
    plot_->clearItems();
    plot_->plotLayout()->clear();
    rects_.clear();
    overflow_.clear();
    half_range_ = 0;
    columns_ = 0;
    if (!analysis_) {
        caption_->setText(empty_text_);
        plot_->replot();
        return;
    }
    const qs::TensorAnalysis& a = *analysis_;
    const bool weight_units = units_->isChecked(), log_y = log_y_->isChecked();
    half_range_ = sharedHalfRange(a, weight_units);
    overflow_.assign(a.candidates.size(), 0.0);
    std::vector<int> shown;
    for (size_t i = 0; i < a.candidates.size(); ++i)
        if (plotted(a.candidates[i])) shown.push_back(static_cast<int>(i));
    caption_->setText(tr("<b>%1</b> &nbsp; %2 candidates, %3 bits %4. Error in %5 (shared x); y: fraction of weights per unit of x; "
                         "red: mass beyond the range")
                          .arg(QString::fromStdString(a.name).toHtmlEscaped())
                          .arg(a.candidates.size())
                          .arg(a.candidates.empty() ? 0 : a.candidates[0].bits)
                          .arg(a.candidates.empty() ? QString() : QString::fromLatin1(qs::granularityName(a.candidates[0].granularity)))
                          .arg(weight_units ? tr("weight units") : tr("quantization steps")));
    if (shown.empty()) {
        plot_->replot();
        return;
    }
    columns_ = columnsFor(static_cast<int>(shown.size()));
    QFont tick_font = font();
    tick_font.setPointSizeF(std::max(6.0, tick_font.pointSizeF() - 2));
    const int tick_h = QFontMetrics(tick_font).height() + 4, title_h = fontMetrics().height() + 2;
    double y_max = 0, y_min = 1;
    std::vector<QCPGraph*> graphs;
    std::vector<QCPBars*> bars;
    const double edge_w = half_range_ * 0.08;  // overflow bars' width, inside the frame
    for (size_t k = 0; k < shown.size(); ++k) {
        const int i = shown[k];
        const qs::Candidate& c = a.candidates[static_cast<size_t>(i)];
        const qs::Histogram& h = c.stats.error_hist;
        const double unit = weight_units ? stepOf(c) : 1.0;
        const double total = std::max<double>(1.0, static_cast<double>(h.total()));
        auto* rect = new QCPAxisRect(plot_);
        plot_->plotLayout()->addElement(static_cast<int>(k) / columns_, static_cast<int>(k) % columns_, rect);
        // The same fixed margins for every plot, so all have the same size (shared axes read
        // alike); room above for the title, tick labels on every plot in a small font.
        rect->setAutoMargins(QCP::msNone);
        rect->setMargins(QMargins(34, title_h, 6, tick_h));
        rect->setupFullAxesBox(true);
        for (QCPAxis* axis : rect->axes()) {
            axis->setTickLabelFont(tick_font);
            axis->setTickLabelPadding(1);
            axis->setTickLengthIn(3);
            axis->setSubTicks(false);
        }
        rect->axis(QCPAxis::atLeft)->ticker()->setTickCount(3);
        rect->axis(QCPAxis::atBottom)->ticker()->setTickCount(4);
        if (log_y) {
            rect->axis(QCPAxis::atLeft)->setScaleType(QCPAxis::stLogarithmic);
            rect->axis(QCPAxis::atLeft)->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
        }
        if (i == chosen_) rect->setBackground(kChosenBackground);
        QCPGraph* g = plot_->addGraph(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
        g->setLineStyle(QCPGraph::lsStepCenter);
        g->setPen(QPen(i == chosen_ ? kChosenLine : kLine, i == chosen_ ? 2.0 : 1.2));
        g->setBrush(QColor(i == chosen_ ? kChosenLine : kLine).lighter(190));
        double left = static_cast<double>(h.below), right = static_cast<double>(h.above);
        for (size_t b = 0; b < h.counts.size(); ++b) {
            const double x = (h.lo + (static_cast<double>(b) + 0.5) * h.binWidth()) * unit;
            // Density (fraction of weights per step or per weight unit): candidates' histograms
            // have different bin widths, so per-bin fractions would not compare.
            const double f = static_cast<double>(h.counts[b]) / total / (h.binWidth() * unit);
            if (x < -half_range_) {
                left += static_cast<double>(h.counts[b]);
            } else if (x > half_range_) {
                right += static_cast<double>(h.counts[b]);
            } else {
                g->addData(x, log_y ? std::max(f, 0.1 / total) : f);  // log: an empty bin sits below the axis
                y_max = std::max(y_max, f);
                if (f > 0) y_min = std::min(y_min, f);
            }
        }
        graphs.push_back(g);
        overflow_[static_cast<size_t>(i)] = (left + right) / total;
        // Overflow: the mass beyond the shared range, as a bar inside each edge with its share.
        auto* over = new QCPBars(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
        over->setPen(Qt::NoPen);
        over->setBrush(kOverflow);
        over->setWidth(edge_w);
        for (const auto& [mass, side] : {std::pair{left, -1.0}, std::pair{right, 1.0}}) {
            if (mass <= 0) continue;
            const double f = mass / total;
            // As tall as its mass spread over the bar's width would be: may reach past the top, its label says how much.
            over->addData(side * (half_range_ - edge_w / 2), f / edge_w);
            y_min = std::min(y_min, f / edge_w);
            auto* label = new QCPItemText(plot_);
            label->setClipAxisRect(rect);
            label->position->setAxes(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
            label->position->setAxisRect(rect);
            label->position->setTypeX(QCPItemPosition::ptPlotCoords);
            label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
            label->position->setCoords(side * (half_range_ - edge_w * 1.2), 0.22);
            label->setPositionAlignment((side < 0 ? Qt::AlignLeft : Qt::AlignRight) | Qt::AlignTop);
            label->setText(QStringLiteral("%1%").arg(100 * f, 0, 'f', f < 0.01 ? 2 : 1));
            label->setColor(kOverflow);
            label->setFont(tick_font);
        }
        bars.push_back(over);
        auto* title = new QCPItemText(plot_);
        title->setClipToAxisRect(false);  // drawn in the margin above the plot
        title->position->setAxisRect(rect);
        title->position->setType(QCPItemPosition::ptAxisRectRatio);
        title->position->setCoords(0, 0);
        title->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        QFont tf = font();
        tf.setBold(i == chosen_);
        title->setFont(tf);
        title->setText(QStringLiteral("%1%2  %3 dB").arg(i == chosen_ ? QStringLiteral("\u25B6 ") : QString(),
                                                          QString::fromStdString(c.method)).arg(c.stats.sqnr_db, 0, 'f', 1));
        rects_.emplace_back(i, rect);
    }
    for (const auto& [i, rect] : rects_) {
        (void)i;
        rect->axis(QCPAxis::atBottom)->setRange(-half_range_, half_range_);
        if (log_y)
            rect->axis(QCPAxis::atLeft)->setRange(std::max(1e-7, y_min / 2), 1.5);
        else
            rect->axis(QCPAxis::atLeft)->setRange(0, y_max * 1.25);  // room for the title
    }
    plot_->replot();
}
