#include "comparison_panel.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QStackedWidget>
#include <QVBoxLayout>

#include <algorithm>

#include "comparison_charts.h"

ComparisonPanel::ComparisonPanel(QWidget* parent) : QWidget(parent) {
    auto* layout = new QHBoxLayout(this);
    auto* side = new QVBoxLayout;
    list_ = new QListWidget(this);
    list_->setObjectName("snapshotList");
    list_->setToolTip(tr("Snapshots: tick to show in the charts, double-click to rename"));
    list_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    keep_ = new QPushButton(tr("Keep snapshot..."), this);
    keep_->setToolTip(tr("Keep the last evaluation with its config under a name, to compare with others"));
    restore_ = new QPushButton(tr("Restore config"), this);
    restore_->setToolTip(tr("Put the selected snapshot's settings back in the layer table (undoable)"));
    remove_ = new QPushButton(tr("Remove"), this);
    report_ = new QPushButton(tr("Save report..."), this);
    report_->setToolTip(tr("Write the ticked snapshots' charts (PNG, SVG), report.html and report.json into a folder"));
    side->addWidget(list_, 1);
    side->addWidget(keep_);
    side->addWidget(restore_);
    side->addWidget(remove_);
    side->addWidget(report_);
    charts_ = new ComparisonCharts(this);
    hint_ = new QLabel(this);
    hint_->setObjectName("emptyHint");
    hint_->setAlignment(Qt::AlignCenter);
    hint_->setWordWrap(true);
    hint_->setStyleSheet("color: #666;");
    stack_ = new QStackedWidget(this);
    stack_->addWidget(hint_);
    stack_->addWidget(charts_);
    layout->addLayout(side);
    layout->addWidget(stack_, 1);
    list_->setMaximumWidth(180);
    setCanKeep(false);

    connect(keep_, &QPushButton::clicked, this, &ComparisonPanel::keepRequested);
    connect(remove_, &QPushButton::clicked, this, &ComparisonPanel::removeSelected);
    connect(report_, &QPushButton::clicked, this, &ComparisonPanel::saveReportRequested);
    connect(restore_, &QPushButton::clicked, this, [this] {
        const int row = list_->currentRow();
        if (row < 0 || row >= static_cast<int>(snapshots_.size())) return;
        const qs::ConfigRun& run = snapshots_[static_cast<size_t>(row)];
        emit restoreRequested(run.config, QString::fromStdString(run.name));
    });
    connect(list_, &QListWidget::itemChanged, this, &ComparisonPanel::onItemChanged);
    connect(list_, &QListWidget::currentRowChanged, this, [this](int row) {
        restore_->setEnabled(row >= 0);
        remove_->setEnabled(row >= 0);
    });
    restore_->setEnabled(false);
    remove_->setEnabled(false);
    redraw();
}

void ComparisonPanel::setCanKeep(bool can) { keep_->setEnabled(can); }

void ComparisonPanel::addSnapshot(qs::ConfigRun run) {
    auto* item = new QListWidgetItem(QString::fromStdString(run.name));
    item->setFlags(item->flags() | Qt::ItemIsUserCheckable | Qt::ItemIsEditable);
    item->setCheckState(Qt::Checked);
    item->setToolTip(QString::fromStdString(qs::precisionSummary(run.result)));
    snapshots_.push_back(std::move(run));
    const QSignalBlocker block(list_);
    list_->addItem(item);
    list_->setCurrentItem(item);
    restore_->setEnabled(true);
    remove_->setEnabled(true);
    redraw();
}

void ComparisonPanel::clear() {
    snapshots_.clear();
    const QSignalBlocker block(list_);
    list_->clear();
    restore_->setEnabled(false);
    remove_->setEnabled(false);
    redraw();
}

std::vector<qs::ConfigRun> ComparisonPanel::shownRuns() const {
    std::vector<qs::ConfigRun> shown;
    for (int row = 0; row < list_->count(); ++row)
        if (list_->item(row)->checkState() == Qt::Checked) shown.push_back(snapshots_[static_cast<size_t>(row)]);
    return shown;
}

void ComparisonPanel::onItemChanged(QListWidgetItem* item) {
    const int row = list_->row(item);
    if (row < 0) return;
    const std::string name = item->text().trimmed().toStdString();
    if (!name.empty()) snapshots_[static_cast<size_t>(row)].name = name;
    redraw();
}

void ComparisonPanel::removeSelected() {
    std::vector<int> rows;
    for (QListWidgetItem* item : list_->selectedItems()) rows.push_back(list_->row(item));
    std::sort(rows.rbegin(), rows.rend());
    const QSignalBlocker block(list_);
    for (int row : rows) {
        delete list_->takeItem(row);
        snapshots_.erase(snapshots_.begin() + row);
    }
    redraw();
}

void ComparisonPanel::redraw() {
    // The charts colour the shown runs in order; the list names take the same colours, and
    // unticked ones grey, so a name and its points always match.
    const QSignalBlocker block(list_);
    size_t shown = 0;
    for (int row = 0; row < list_->count(); ++row) {
        QListWidgetItem* item = list_->item(row);
        item->setForeground(item->checkState() == Qt::Checked ? ComparisonCharts::runColor(shown++).darker(120) : QColor(150, 150, 150));
    }
    const std::vector<qs::ConfigRun> runs = shownRuns();
    report_->setEnabled(!runs.empty());
    charts_->setRuns(runs);
    if (snapshots_.empty()) hint_->setText(tr("Keep a snapshot to compare configs: run an evaluation (F5), then Keep snapshot "
                                              "(Ctrl+K); change some layers' bits, run and keep again. Accuracy against size, "
                                              "per-layer SQNR and the Pareto front appear here."));
    else if (runs.empty()) hint_->setText(tr("Tick a snapshot in the list to show it."));
    stack_->setCurrentWidget(runs.empty() ? static_cast<QWidget*>(hint_) : charts_);
}
