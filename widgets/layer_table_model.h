#pragma once
// Table model over a loaded qs::Model: one row per layer with name, class, output shape,
// parameters, weight tensor shapes and float32 size. Display only; takes an immutable snapshot.
#include <QAbstractTableModel>

#include <memory>

#include "model.h"

class LayerTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Class, OutputShape, Params, Float32Size, Weights, ColumnCount };

    explicit LayerTableModel(QObject* parent = nullptr);

    void setModel(std::shared_ptr<const qs::Model> model);
    const qs::Model* model() const { return model_.get(); }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

    static QString formatBytes(qint64 bytes);

private:
    std::shared_ptr<const qs::Model> model_;
};
