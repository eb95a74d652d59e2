#pragma once
// Table model over a loaded qs::Model and its per-layer quantization settings: one row per
// layer (name, class, output shape, parameters, bits, granularity, method, scale, float and
// quantized size, SQNR, % below precision, % beyond range, sensitivity, weight shapes) and a
// totals row.
// Bits, granularity and method are editable; an edit is not applied here but announced with
// editRequested, so the app can apply it to several rows at once through its undo stack.
#include <QAbstractTableModel>

#include <memory>
#include <vector>

#include "model/model.h"
#include "quant/quant_analysis.h"
#include "quant/quant_config.h"

class LayerTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        Name, Class, OutputShape, Params, Bits, Granularity, Method, Scale, Float32Size, QuantSize, Sqnr, PctBelow, PctBeyond,
        Sensitivity, Weights, ColumnCount
    };
    static constexpr int ChoicesRole = Qt::UserRole + 1;  // QStringList of values an editable cell takes
    static constexpr int SortRole = Qt::UserRole;         // raw numbers (parameters, bytes, dB)

    explicit LayerTableModel(QObject* parent = nullptr);

    void setModel(std::shared_ptr<const qs::Model> model);
    const qs::Model* model() const { return model_.get(); }


    const qs::LayerQuant& layerQuant(int row) const { return quant_.at(static_cast<size_t>(row)); }
    void setLayerQuant(int row, const qs::LayerQuant& q);
    std::shared_ptr<const qs::TensorAnalysis> analysis(int row) const { return analysis_.at(static_cast<size_t>(row)); }
    void setAnalysis(int row, std::shared_ptr<const qs::TensorAnalysis> a);
    bool quantizable(int row) const;
    // The candidate the row's settings pick from its analysis (null: none / pending / float32).
    const qs::Candidate* chosen(int row) const;
    int layerCount() const { return model_ ? static_cast<int>(model_->layers.size()) : 0; }
    int totalsRow() const { return layerCount(); }

    // The Sensitivity column: points of top-1 the layer loses at its best 4-bit setting (sort
    // key and text), with the whole grid in the tooltip; from the last sensitivity measurement.
    void setSensitivity(int row, double drop_at_4_bits, const QString& detail);
    void clearSensitivity();

    // Bytes before and after quantization (weights as stored), over every layer.
    qint64 totalFloatBytes() const;
    qint64 totalQuantizedBytes() const;
    qint64 quantizedBytes(int row) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role) const override;

    static QString formatBytes(qint64 bytes);

signals:
    void editRequested(int row, int column, const QString& value);

private:
    void rowChanged(int row);
    std::pair<double, QString> sensitivityAt(int row) const;
    std::shared_ptr<const qs::Model> model_;
    std::vector<qs::LayerQuant> quant_;
    std::vector<std::shared_ptr<const qs::TensorAnalysis>> analysis_;
    std::vector<std::pair<double, QString>> sensitivity_;  // per row; NaN: not measured
};
