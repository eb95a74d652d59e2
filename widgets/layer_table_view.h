#pragma once
// The layer table as the main window shows it: LayerTableModel with its editors (bits,
// granularity, method) and the Overview column's sparklines, whole rows selected (several at
// once for group edits). Columns fit their contents and the Overview sparkline takes the width
// left, so no column is cut off; the less used columns (output shape, scale, float32 size,
// weight shapes) start hidden, and the header's context menu shows or hides any of them
// (saveColumns/restoreColumns keep the choice), and the layers without parameters. The At-4-bits column shows itself once a
// sensitivity is measured.
#include <QTableView>

class LayerTableModel;

class LayerTableView : public QTableView {
    Q_OBJECT
public:
    explicit LayerTableView(LayerTableModel* model, QWidget* parent = nullptr);

    // Columns to their contents (names capped, elided, full text in the tooltip), then the
    // Overview column gets what is left of the viewport (at least its minimum).
    void fitColumns();
    // Height that shows the header and every row (the caller bounds it).
    int fittedHeight() const;
    // Sum of the visible columns' widths: at most the viewport's width when none is cut off.
    int usedWidth() const;

    // Layers without parameters (input, activations, pooling, reshapes) are hidden unless
    // asked for (the header's context menu): the table is then the model's weights at a glance.
    void setShowParameterless(bool on);
    bool showsParameterless() const { return show_parameterless_; }

    QByteArray saveColumns() const;
    void restoreColumns(const QByteArray& state);

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void fitOverview();  // the Overview column takes the viewport's width the others leave
    void showHeaderMenu(const QPoint& pos);
    void applyRowFilter();
    LayerTableModel* model_;
    bool show_parameterless_ = false;
};
