#pragma once
// Paints the layer table's Overview column: a sparkline of each row's weights by power of two
// (LayerTableModel::overview), every bin stacked as below precision / in range / beyond range
// in the colours of the histogram plot, on the exponent axis every row shares. Heights are
// log-scaled so a handful of outliers still shows as a bar.
#include <QStyledItemDelegate>

class LayerTableModel;

class OverviewDelegate : public QStyledItemDelegate {
    Q_OBJECT
public:
    OverviewDelegate(const LayerTableModel* model, QObject* parent = nullptr);
    void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override;
    QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override;

private:
    const LayerTableModel* model_;
};
