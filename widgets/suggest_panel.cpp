#include "suggest_panel.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include <cmath>
#include <initializer_list>

namespace {

const char* kEmpty = "Choose a budget and press Suggest: every layer's sensitivity is measured, then configs are searched and "
                     "evaluated for real on the first half of the test set; the second half (held out) scores the front.";

// The front's columns.
enum Col { Config, Bytes, BitsPerWeight, Search, HeldOut, Agreement, ColCount };

}  // namespace

SuggestPanel::SuggestPanel(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    auto* row = new QHBoxLayout;
    kind_ = new QComboBox(this);
    kind_->addItems({tr("Largest top-1 drop (points)"), tr("Bits per weight"), tr("Model size (bytes)")});
    value_ = new QDoubleSpinBox(this);
    value_->setObjectName("budgetValue");
    run_ = new QPushButton(tr("Suggest"), this);
    run_->setObjectName("suggestButton");
    cancel_ = new QPushButton(tr("Cancel"), this);
    apply_ = new QPushButton(tr("Apply selected"), this);
    apply_->setEnabled(false);
    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1000);
    progress_->setMaximumWidth(200);
    row->addWidget(new QLabel(tr("Budget:"), this));
    row->addWidget(kind_);
    row->addWidget(value_);
    row->addWidget(run_);
    row->addWidget(cancel_);
    row->addWidget(progress_);
    row->addStretch(1);
    row->addWidget(apply_);
    layout->addLayout(row);
    message_ = new QLabel(tr(kEmpty), this);
    message_->setWordWrap(true);
    layout->addWidget(message_);

    auto* split = new QSplitter(Qt::Horizontal, this);
    chart_ = new QCustomPlot(split);
    chart_->setMinimumSize(240, 200);
    chart_->xAxis->setLabel(tr("model size (KiB, log)"));
    chart_->yAxis->setLabel(tr("top-1 on the search images (%)"));
    chart_->xAxis->setScaleType(QCPAxis::stLogarithmic);
    chart_->xAxis->setTicker(QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText));  // 1-2-5 ticks, set in drawChart
    chart_->setInteractions(QCP::iSelectPlottables);
    table_ = new QTableWidget(0, ColCount, split);
    // Two-line headers: the table fits beside the chart in a dock half a 1280 px window wide.
    table_->setHorizontalHeaderLabels({tr("Config"), tr("Bytes"), tr("Bits/\nweight"), tr("Search\ntop-1"), tr("Held-out\ntop-1"), tr("Agree-\nment")});
    table_->verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 8);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->verticalHeader()->setVisible(false);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    split->addWidget(chart_);
    split->addWidget(table_);
    split->setStretchFactor(0, 2);
    split->setStretchFactor(1, 3);
    split->setSizes({400, 600});
    layout->addWidget(split, 1);

    connect(kind_, &QComboBox::currentIndexChanged, this, [this](int k) {
        // Sensible ranges and defaults per budget kind.
        if (k == qs::SearchBudget::MaxDrop) value_->setRange(0, 100), value_->setDecimals(2), value_->setSingleStep(0.5), value_->setValue(1.0);
        if (k == qs::SearchBudget::BitsPerWeight) value_->setRange(2, 32), value_->setDecimals(2), value_->setSingleStep(0.5), value_->setValue(4.5);
        if (k == qs::SearchBudget::MaxBytes) value_->setRange(1, 1e12), value_->setDecimals(0), value_->setSingleStep(1024), value_->setValue(1e6);
    });
    kind_->setCurrentIndex(1);
    connect(run_, &QPushButton::clicked, this, [this] { emit suggestRequested(budget()); });
    connect(cancel_, &QPushButton::clicked, this, &SuggestPanel::cancelRequested);
    connect(apply_, &QPushButton::clicked, this, [this] {
        if (selected_ >= 0) emit pointActivated(selected_);
    });
    connect(table_, &QTableWidget::itemSelectionChanged, this, [this] {
        const QList<QTableWidgetItem*> items = table_->selectedItems();
        if (!items.isEmpty()) selectPoint(items.first()->data(Qt::UserRole).toInt());
    });
    connect(table_, &QTableWidget::cellDoubleClicked, this, [this](int row, int) {
        emit pointActivated(table_->item(row, Config)->data(Qt::UserRole).toInt());
    });
    connect(chart_, &QCustomPlot::plottableClick, this, [this](QCPAbstractPlottable* p, int data_index, QMouseEvent*) {
        const QVariant points = p->property("points");
        if (!points.isValid()) return;
        const QList<QVariant> list = points.toList();
        if (data_index >= 0 && data_index < list.size()) selectPoint(list[data_index].toInt());
    });
    setRunning(false);
}

qs::SearchBudget SuggestPanel::budget() const {
    return {static_cast<qs::SearchBudget::Kind>(kind_->currentIndex()), value_->value()};
}

void SuggestPanel::setBudget(const qs::SearchBudget& b) {
    kind_->setCurrentIndex(static_cast<int>(b.kind));
    value_->setValue(b.value);
}

void SuggestPanel::setRunning(bool running) {
    run_->setEnabled(!running);
    cancel_->setVisible(running);
    progress_->setVisible(running);
    progress_->setValue(0);
}

void SuggestPanel::setProgress(int permille) { progress_->setValue(permille); }

void SuggestPanel::setMessage(const QString& text) { message_->setText(text); }

void SuggestPanel::clear() {
    sensitivity_.reset();
    result_.reset();
    selected_ = -1;
    table_->setRowCount(0);
    chart_->clearGraphs();
    chart_->replot();
    apply_->setEnabled(false);
    message_->setText(tr(kEmpty));
}

void SuggestPanel::setResult(std::shared_ptr<const qs::SensitivityTable> table, std::shared_ptr<const qs::SearchResult> result) {
    sensitivity_ = std::move(table);
    result_ = std::move(result);
    selected_ = -1;
    fillTable();
    drawChart();
    if (result_->chosen >= 0) selectPoint(result_->chosen);
    const QString pick = result_->chosen >= 0 ? tr("Pick: %1.").arg(QString::fromStdString(result_->note))
                                              : tr("Nothing meets the budget: %1.").arg(QString::fromStdString(result_->note));
    message_->setText(tr("%1 configs evaluated, %2 on the front. %3 Select a point and Apply to put it in the table (one undo step).")
                          .arg(result_->points.size())
                          .arg(result_->front.size())
                          .arg(pick));
}

void SuggestPanel::selectPoint(int index) {
    if (!result_ || index < 0 || index >= static_cast<int>(result_->points.size()) || index == selected_) return;
    selected_ = index;
    apply_->setEnabled(true);
    for (int r = 0; r < table_->rowCount(); ++r)
        if (table_->item(r, Config)->data(Qt::UserRole).toInt() == index && !table_->item(r, Config)->isSelected()) table_->selectRow(r);
    drawChart();
}

void SuggestPanel::fillTable() {
    table_->setRowCount(0);
    if (!result_) return;
    const QLocale loc = QLocale::system();
    for (auto it = result_->front.rbegin(); it != result_->front.rend(); ++it) {  // largest (most accurate) first
        const qs::SearchPoint& p = result_->points[*it];
        const int r = table_->rowCount();
        table_->insertRow(r);
        auto put = [&](int col, const QString& text) {
            auto* item = new QTableWidgetItem(text);
            item->setData(Qt::UserRole, static_cast<int>(*it));
            if (col != Config) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            if (static_cast<int>(*it) == result_->chosen) {
                QFont f = item->font();
                f.setBold(true);
                item->setFont(f);
            }
            table_->setItem(r, col, item);
        };
        put(Config, QString::fromStdString(p.origin) + (static_cast<int>(*it) == result_->chosen ? tr("  (pick)") : QString()));
        put(Bytes, loc.toString(static_cast<qlonglong>(p.bytes)));
        put(BitsPerWeight, QString::number(p.bits_per_weight, 'f', 2));
        put(Search, QString::number(100 * p.search.top1, 'f', 2));
        put(HeldOut, p.heldout.n ? QString::number(100 * p.heldout.top1, 'f', 2) : QString());
        put(Agreement, p.heldout.n ? QString::number(100 * p.heldout.agreement, 'f', 2) : QString());
    }
}

namespace {
// Ticks at 1, 2 and 5 times the powers of ten in [lo, hi] (a log axis over less than a decade
// got crowded labels from QCPAxisTickerLog: "200250 300"); 1-3 and 5 in between when that leaves
// fewer than three.
void setLogTicks(QCPAxis& axis, double lo, double hi) {
    auto ticker = axis.ticker().dynamicCast<QCPAxisTickerText>();
    if (!ticker || !(lo > 0) || !(hi > lo)) return;
    const auto ticksAt = [&](std::initializer_list<double> mantissas) {
        QVector<double> at;
        for (double decade = std::pow(10.0, std::floor(std::log10(lo))); decade <= hi; decade *= 10)
            for (double m : mantissas)
                if (m * decade >= lo && m * decade <= hi) at << m * decade;
        return at;
    };
    QVector<double> at = ticksAt({1, 2, 5});
    if (at.size() < 3) at = ticksAt({1, 1.5, 2, 3, 5, 7});
    ticker->clear();
    for (double v : at) ticker->addTick(v, QLocale().toString(v, 'g', 4));
}
}  // namespace

void SuggestPanel::drawChart() {
    chart_->clearGraphs();
    chart_->clearItems();
    if (!result_) {
        chart_->replot();
        return;
    }
    const auto& pts = result_->points;
    auto graph = [&](const std::vector<size_t>& idx, QCPScatterStyle style, QPen line, const QString& name) {
        QCPGraph* g = chart_->addGraph();
        g->setName(name);
        g->setPen(line);
        g->setLineStyle(line.style() == Qt::NoPen ? QCPGraph::lsNone : QCPGraph::lsLine);
        g->setScatterStyle(style);
        QList<QVariant> ids;
        for (size_t i : idx) {
            g->addData(static_cast<double>(pts[i].bytes) / 1024.0, 100 * pts[i].search.top1);
            ids << static_cast<int>(i);
        }
        g->setProperty("points", ids);  // data index -> point, for clicks (data kept in key order: added sorted)
        return g;
    };
    std::vector<size_t> all(pts.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    std::sort(all.begin(), all.end(), [&](size_t a, size_t b) { return pts[a].bytes < pts[b].bytes; });
    graph(all, QCPScatterStyle(QCPScatterStyle::ssCircle, QColor(150, 150, 150), QColor(210, 210, 210), 6), QPen(Qt::NoPen), tr("evaluated"));
    graph(result_->front, QCPScatterStyle(QCPScatterStyle::ssCircle, QColor(30, 90, 180), QColor(30, 90, 180), 7), QPen(QColor(30, 90, 180), 1.5),
          tr("Pareto front"));
    for (size_t i = 0; i < pts.size(); ++i)
        if (pts[i].origin.find("baseline") != std::string::npos)
            graph({i}, QCPScatterStyle(QCPScatterStyle::ssDiamond, QColor(220, 120, 0), QColor(220, 120, 0), 11), QPen(Qt::NoPen),
                  QString::fromStdString(pts[i].origin));
    if (result_->chosen >= 0)
        graph({static_cast<size_t>(result_->chosen)}, QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(QColor(200, 30, 30), 2), Qt::NoBrush, 16),
              QPen(Qt::NoPen), tr("pick"));
    if (selected_ >= 0 && selected_ != result_->chosen)
        graph({static_cast<size_t>(selected_)}, QCPScatterStyle(QCPScatterStyle::ssSquare, QPen(QColor(20, 20, 20), 1.5), Qt::NoBrush, 14),
              QPen(Qt::NoPen), tr("selected"));
    double lo = 1e300, hi = 0, ylo = 100, yhi = 0;
    for (const qs::SearchPoint& p : pts) {
        lo = std::min(lo, p.bytes / 1024.0), hi = std::max(hi, p.bytes / 1024.0);
        ylo = std::min(ylo, 100 * p.search.top1), yhi = std::max(yhi, 100 * p.search.top1);
    }
    // The float model's accuracy as a dashed line across the chart, named in the legend (a label
    // on the line sat on the points near float, where the pick usually is).
    const double fl = 100 * result_->float_search_top1;
    QCPGraph* float_line = chart_->addGraph();
    float_line->setName(tr("float %1%").arg(fl, 0, 'f', 2));
    float_line->setPen(QPen(QColor(0, 140, 60), 1.2, Qt::DashLine));
    float_line->addData(lo / 1.3, fl);
    float_line->addData(hi * 1.3, fl);
    float_line->setSelectable(QCP::stNone);
    yhi = std::max(yhi, fl);
    chart_->xAxis->setRange(lo / 1.3, hi * 1.3);
    setLogTicks(*chart_->xAxis, lo / 1.3, hi * 1.3);
    chart_->yAxis->setRange(std::max(0.0, ylo - 1), std::min(100.0, yhi + 1));
    chart_->legend->setVisible(true);
    chart_->legend->setFont(QFont(font().family(), 8));
    chart_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignRight | Qt::AlignBottom);
    chart_->replot();
}
