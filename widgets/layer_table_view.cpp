#include "layer_table_view.h"

#include <QHeaderView>
#include <QMenu>
#include <QScrollBar>

#include <algorithm>

#include "choice_delegate.h"
#include "layer_table_model.h"
#include "overview_delegate.h"

namespace {

constexpr int kMaxNameWidth = 220;
constexpr int kMinOverviewWidth = 4 * LayerTableModel::kOverviewBins + 8;
constexpr int kMaxOverviewWidth = 20 * LayerTableModel::kOverviewBins;

}  // namespace

LayerTableView::LayerTableView(LayerTableModel* model, QWidget* parent) : QTableView(parent), model_(model) {
    setObjectName("layerTable");
    setModel(model);
    setItemDelegate(new ChoiceDelegate(this));
    setItemDelegateForColumn(LayerTableModel::Overview, new OverviewDelegate(model, this));
    setSelectionBehavior(QAbstractItemView::SelectRows);
    setSelectionMode(QAbstractItemView::ExtendedSelection);
    setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed | QAbstractItemView::SelectedClicked);
    setAlternatingRowColors(true);
    setWordWrap(false);
    setTextElideMode(Qt::ElideMiddle);
    verticalHeader()->setVisible(false);
    verticalHeader()->setDefaultSectionSize(fontMetrics().height() + 10);
    horizontalHeader()->setStretchLastSection(false);
    horizontalHeader()->setHighlightSections(false);
    horizontalHeader()->setContextMenuPolicy(Qt::CustomContextMenu);
    horizontalHeader()->setToolTip(tr("Right-click to show or hide columns"));
    for (int c : {LayerTableModel::OutputShape, LayerTableModel::Scale, LayerTableModel::Float32Size, LayerTableModel::Weights,
                  LayerTableModel::Sensitivity})
        setColumnHidden(c, true);
    connect(horizontalHeader(), &QWidget::customContextMenuRequested, this, &LayerTableView::showHeaderMenu);
    connect(model, &QAbstractItemModel::modelReset, this, &LayerTableView::applyRowFilter);
    connect(model, &QAbstractItemModel::dataChanged, this, [this](const QModelIndex& a, const QModelIndex& b) {
        // The At-4-bits column appears with the first measured sensitivity.
        if (a.column() <= LayerTableModel::Sensitivity && b.column() >= LayerTableModel::Sensitivity &&
            isColumnHidden(LayerTableModel::Sensitivity) && b.row() < model_->layerCount() &&
            !model_->data(model_->index(b.row(), LayerTableModel::Sensitivity), Qt::DisplayRole).toString().isEmpty()) {
            setColumnHidden(LayerTableModel::Sensitivity, false);
            fitColumns();
        }
    });
}

void LayerTableView::fitColumns() {
    resizeColumnsToContents();
    if (columnWidth(LayerTableModel::Name) > kMaxNameWidth) setColumnWidth(LayerTableModel::Name, kMaxNameWidth);
    if (columnWidth(LayerTableModel::Class) > kMaxNameWidth) setColumnWidth(LayerTableModel::Class, kMaxNameWidth);
    if (columnWidth(LayerTableModel::Weights) > kMaxNameWidth) setColumnWidth(LayerTableModel::Weights, kMaxNameWidth);
    fitOverview();
}

void LayerTableView::fitOverview() {
    int others = 0;
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c)
        if (c != LayerTableModel::Overview && !isColumnHidden(c)) others += columnWidth(c);
    const int spare = viewport()->width() - others - 1;
    setColumnWidth(LayerTableModel::Overview, std::clamp(spare, kMinOverviewWidth, kMaxOverviewWidth));
}

int LayerTableView::usedWidth() const {
    int w = 0;
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c)
        if (!isColumnHidden(c)) w += columnWidth(c);
    return w;
}

void LayerTableView::setShowParameterless(bool on) {
    show_parameterless_ = on;
    applyRowFilter();
}

void LayerTableView::applyRowFilter() {
    const qs::Model* m = model_->model();
    for (int row = 0; row < model_->layerCount(); ++row)
        setRowHidden(row, !show_parameterless_ && m->layers[static_cast<size_t>(row)].paramCount() == 0);
}

int LayerTableView::fittedHeight() const {
    int rows = 0;
    for (int row = 0; row < model_->rowCount(); ++row) rows += !isRowHidden(row);
    const int scroll = horizontalScrollBar()->isVisible() ? horizontalScrollBar()->height() : 0;
    return horizontalHeader()->height() + rows * verticalHeader()->defaultSectionSize() + 2 * frameWidth() + scroll + 2;
}

QByteArray LayerTableView::saveColumns() const {
    QByteArray out;
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c) out += isColumnHidden(c) ? '0' : '1';
    return out + (show_parameterless_ ? '1' : '0');
}

void LayerTableView::restoreColumns(const QByteArray& state) {
    if (state.size() != LayerTableModel::ColumnCount + 1) return;  // another version's columns: keep the defaults
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c) setColumnHidden(c, state[c] == '0');
    setShowParameterless(state[LayerTableModel::ColumnCount] == '1');
}

void LayerTableView::resizeEvent(QResizeEvent* event) {
    QTableView::resizeEvent(event);
    fitOverview();  // the other columns keep their widths: measuring every cell again is not needed
}

void LayerTableView::showHeaderMenu(const QPoint& pos) {
    QMenu menu(this);
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c) {
        if (c == LayerTableModel::Name) continue;  // the row's identity stays
        QAction* a = menu.addAction(model_->headerData(c, Qt::Horizontal, Qt::DisplayRole).toString());
        a->setCheckable(true);
        a->setChecked(!isColumnHidden(c));
        connect(a, &QAction::toggled, this, [this, c](bool on) {
            setColumnHidden(c, !on);
            fitColumns();
        });
    }
    menu.addSeparator();
    QAction* all = menu.addAction(tr("Layers without parameters"));
    all->setCheckable(true);
    all->setChecked(show_parameterless_);
    connect(all, &QAction::toggled, this, &LayerTableView::setShowParameterless);
    menu.exec(horizontalHeader()->mapToGlobal(pos));
}
