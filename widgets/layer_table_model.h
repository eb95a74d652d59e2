#pragma once
// Table model over a loaded qs::Model and its per-layer quantization settings: one row per
// layer (name, class, parameters, bits, granularity, method, the weights' log2-magnitude
// overview, quantized size, SQNR, % below precision, % beyond range, sensitivity, output shape,
// scale, float size, weight shapes) and a totals row.
// Bits, granularity and method are editable; an edit is not applied here but announced with
// editRequested, so the app can apply it to several rows at once through its undo stack.
#include <QAbstractTableModel>

#include <memory>
#include <optional>
#include <vector>

#include "model/model.h"
#include "quant/magnitude_overview.h"
#include "quant/quant_analysis.h"
#include "quant/quant_config.h"

class LayerTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column {
        Name, Class, Params, Bits, Granularity, Method, Overview, QuantSize, Sqnr, PctBelow, PctBeyond, Sensitivity, OutputShape,
        Scale, Float32Size, Weights, ColumnCount
    };
    static constexpr int ChoicesRole = Qt::UserRole + 1;  // QStringList of values an editable cell takes
    static constexpr int SortRole = Qt::UserRole;         // raw numbers (parameters, bytes, dB)

    explicit LayerTableModel(QObject* parent = nullptr);

    void setModel(std::shared_ptr<const qs::Model> model);
    // Everything the table holds (model, settings, analyses, sensitivities): taken before it
    // previews another file's structure, put back if that file does not open after all.
    struct State {
        std::shared_ptr<const qs::Model> model;
        std::vector<qs::LayerQuant> quant;
        std::vector<std::shared_ptr<const qs::TensorAnalysis>> analysis;
        std::vector<std::pair<double, QString>> sensitivity;
    };
    State state() const { return {model_, quant_, analysis_, sensitivity_}; }
    void restore(State s);
    const qs::Model* model() const { return model_.get(); }


    const qs::LayerQuant& layerQuant(int row) const { return quant_.at(static_cast<size_t>(row)); }
    void setLayerQuant(int row, const qs::LayerQuant& q);
    std::shared_ptr<const qs::TensorAnalysis> analysis(int row) const { return analysis_.at(static_cast<size_t>(row)); }
    void setAnalysis(int row, std::shared_ptr<const qs::TensorAnalysis> a);
    bool quantizable(int row) const;
    // The candidate the row's settings pick from its analysis (null: none / pending / float32).
    const qs::Candidate* chosen(int row) const;
    // The Overview column: what the row's chosen candidate does to each power of two of its
    // weights (null: no analysis yet, float32 or no weights), and the exponent range every
    // row's sparkline shares (at most kOverviewBins powers of two, ending at the largest).
    std::optional<qs::MagnitudeOverview> overview(int row) const;
    static constexpr int kOverviewBins = 32;
    std::pair<int, int> overviewExponents() const;  // [first, last]; first > last: none
    int firstQuantizable() const;  // the first row with weights to quantize (0 when none has)
    int layerCount() const { return model_ ? static_cast<int>(model_->layers.size()) : 0; }
    int totalsRow() const { return layerCount(); }

    // The Sensitivity column: points of top-1 the layer loses at its best 4-bit setting (sort
    // key and text), with the whole grid in the tooltip; from the last sensitivity measurement.
    void setSensitivity(int row, double drop_at_4_bits, const QString& detail);
    void clearSensitivity();

    // Into `c`: every quantizable row's settings that differ from c.defaults (the activation
    // method is c.defaults' for every layer: the evaluation panel sets it for the whole model).
    void addLayers(qs::QuantConfig& c) const;
    // Into `c`: the weight scales every integer row shows (from its analysis; a row whose
    // analysis is still pending gets its scales computed here, that row only).
    void addScales(qs::QuantConfig& c) const;

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
    // One paragraph about the loaded model: file, format, Keras version, class, layers,
    // parameters, float32 size, and the loader's warnings (HTML).
    QString summaryHtml() const;

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
