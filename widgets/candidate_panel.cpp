#include "candidate_panel.h"

#include <QHeaderView>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "plot_export.h"

namespace {

struct ColumnInfo {
    const char* title;
    const char* tip;
};

const ColumnInfo kColumns[] = {
    {"method", "How the scale was chosen"},
    {"scale", "Step between representable values (per-channel: the largest channel's)"},
    {"SQNR dB", "Signal-to-quantization-noise ratio: 10 log10(sum w^2 / sum (w - q(w))^2); higher is better"},
    {"RMSE", "Root mean square of the quantization error"},
    {"max |err|", "Largest absolute error of any weight"},
    {"bias", "Mean error: a systematic shift the quantization adds"},
    {"% below", "Non-zero weights that quantize to 0 (below precision)"},
    {"% beyond", "Weights clipped at the largest level (beyond range)"},
    {"levels", "Distinct quantized values actually used"},
    {"bits/w", "Entropy of the quantized values: what an ideal entropy coder needs per weight"},
    {"bytes", "Packed weights + scales + zero points"},
};

}  // namespace

CandidatePanel::CandidatePanel(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* split = new QSplitter(Qt::Vertical, this);
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
    table_->setToolTip(tr("Click a candidate to make it this layer's choice"));
    plot_ = new QCustomPlot(split);
    plot_->setMinimumHeight(150);
    plot_->legend->setVisible(true);
    plot_->legend->setFont(QFont(font().family(), 7));
    plot_->xAxis->setLabel(tr("error (quantization steps)"));
    plot_->yAxis->setLabel(tr("fraction of weights"));
    installPlotExportMenu(plot_, "candidate_errors");
    split->addWidget(table_);
    split->addWidget(plot_);
    layout->addWidget(split);
    connect(table_, &QTableWidget::cellClicked, this, [this](int row, int) {
        if (analysis_ && row >= 0 && row < static_cast<int>(analysis_->candidates.size()))
            emit candidateClicked(QString::fromStdString(analysis_->candidates[static_cast<size_t>(row)].method));
    });
}

void CandidatePanel::setAnalysis(std::shared_ptr<const qs::TensorAnalysis> analysis, int chosen) {
    analysis_ = std::move(analysis);
    chosen_ = chosen;
    table_->setRowCount(0);
    plot_->clearGraphs();
    if (!analysis_) {
        plot_->replot();
        return;
    }
    const auto& cs = analysis_->candidates;
    table_->setRowCount(static_cast<int>(cs.size()));
    static const QColor palette[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                                     QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127),
                                     QColor(188, 189, 34), QColor(23, 190, 207), QColor(0, 0, 0), QColor(90, 90, 200)};
    for (size_t i = 0; i < cs.size(); ++i) {
        const qs::Candidate& c = cs[i];
        const qs::CandidateStats& s = c.stats;
        double scale = 0;
        for (const qs::QuantParams& p : c.params) scale = std::max(scale, p.scale);
        const QStringList cells = {QString::fromStdString(c.method),
                                   c.float16 ? QStringLiteral("-") : QString::number(scale, 'g', 4),
                                   QString::number(s.sqnr_db, 'f', 2),
                                   QString::number(s.rmse, 'g', 3),
                                   QString::number(s.max_abs_error, 'g', 3),
                                   QString::number(s.mean_error, 'g', 2),
                                   QString::number(s.pct_below_precision, 'f', 2),
                                   QString::number(s.pct_beyond_range, 'f', 3),
                                   s.levels_used < 0 ? QStringLiteral("-") : QString::number(s.levels_used),
                                   QString::number(s.entropy_bits_per_weight, 'f', 2),
                                   QString::number(s.packed_bytes)};
        for (int col = 0; col < cells.size(); ++col) {
            auto* item = new QTableWidgetItem(cells[col]);
            if (col > 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            if (static_cast<int>(i) == chosen_) {
                QFont f = item->font();
                f.setBold(true);
                item->setFont(f);
            }
            table_->setItem(static_cast<int>(i), col, item);
        }
        // Error distribution in units of its own step: comparable across candidates.
        const qs::Histogram& h = s.error_hist;
        if (h.counts.empty() || c.float16) continue;
        const double total = std::max<double>(1.0, static_cast<double>(h.total()));
        QCPGraph* g = plot_->addGraph();
        g->setName(QString::fromStdString(c.method));
        QPen pen(palette[i % std::size(palette)], static_cast<int>(i) == chosen_ ? 2.5 : 1.0);
        g->setPen(pen);
        g->setLineStyle(QCPGraph::lsStepCenter);
        for (size_t b = 0; b < h.counts.size(); ++b)
            g->addData(h.lo + (static_cast<double>(b) + 0.5) * h.binWidth(), static_cast<double>(h.counts[b]) / total);
    }
    table_->resizeColumnsToContents();
    plot_->rescaleAxes();
    plot_->replot();
}
