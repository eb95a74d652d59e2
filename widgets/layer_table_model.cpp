#include "layer_table_model.h"

#include <QBrush>
#include <QColor>
#include <QFont>
#include <QLocale>

#include <cmath>
#include <filesystem>
#include <limits>

#include "model/shape_inference.h"

namespace {

QStringList precisionChoices() { return {"int16", "int8", "int4", "int2", "float16", "float32"}; }

QStringList methodChoices() {
    QStringList out;
    for (const std::string& m : qs::weightMethods()) out << QString::fromStdString(m);
    return out;
}

}  // namespace

LayerTableModel::LayerTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerTableModel::setModel(std::shared_ptr<const qs::Model> model) {
    beginResetModel();
    model_ = std::move(model);
    quant_.assign(model_ ? model_->layers.size() : 0, qs::LayerQuant{});
    analysis_.assign(quant_.size(), nullptr);
    sensitivity_.clear();
    endResetModel();
}

void LayerTableModel::restore(State s) {
    beginResetModel();
    model_ = std::move(s.model);
    quant_ = std::move(s.quant);
    analysis_ = std::move(s.analysis);
    sensitivity_ = std::move(s.sensitivity);
    endResetModel();
}

bool LayerTableModel::quantizable(int row) const {
    return model_ && row >= 0 && row < layerCount() && qs::layerKernel(model_->layers[static_cast<size_t>(row)]) != nullptr;
}

int LayerTableModel::firstQuantizable() const {
    for (int row = 0; row < layerCount(); ++row)
        if (quantizable(row)) return row;
    return 0;
}

void LayerTableModel::setLayerQuant(int row, const qs::LayerQuant& q) {
    quant_.at(static_cast<size_t>(row)) = q;
    rowChanged(row);
}

void LayerTableModel::setAnalysis(int row, std::shared_ptr<const qs::TensorAnalysis> a) {
    analysis_.at(static_cast<size_t>(row)) = std::move(a);
    rowChanged(row);
}

void LayerTableModel::rowChanged(int row) {
    emit dataChanged(index(row, 0), index(row, ColumnCount - 1));
    emit dataChanged(index(totalsRow(), 0), index(totalsRow(), ColumnCount - 1));
}

const qs::Candidate* LayerTableModel::chosen(int row) const {
    const auto& a = analysis_.at(static_cast<size_t>(row));
    const qs::LayerQuant& q = quant_.at(static_cast<size_t>(row));
    if (!a || q.precision == qs::Precision::Float32) return nullptr;
    const std::string method = q.precision == qs::Precision::Float16 ? "float16" : q.weight_method;
    for (const qs::Candidate& c : a->candidates)
        if (c.method == method) return &c;
    return nullptr;
}

std::optional<qs::MagnitudeOverview> LayerTableModel::overview(int row) const {
    if (row < 0 || row >= layerCount()) return std::nullopt;
    const qs::Candidate* c = chosen(row);
    if (!c) return std::nullopt;
    return qs::magnitudeOverview(*analysis_[static_cast<size_t>(row)], *c);
}

std::pair<int, int> LayerTableModel::overviewExponents() const {
    int lo = std::numeric_limits<int>::max(), hi = std::numeric_limits<int>::min();
    for (const auto& a : analysis_) {
        if (!a || a->log2_hist.counts.empty()) continue;
        lo = std::min(lo, a->log2_hist.min_exponent);
        hi = std::max(hi, a->log2_hist.min_exponent + static_cast<int>(a->log2_hist.counts.size()) - 1);
    }
    if (lo > hi) return {1, 0};  // no analysis yet
    return {std::max(lo, hi - kOverviewBins + 1), hi};
}

qint64 LayerTableModel::quantizedBytes(int row) const {
    const qs::Layer& l = model_->layers[static_cast<size_t>(row)];
    const qs::LayerQuant& q = quant_[static_cast<size_t>(row)];
    const qs::Tensor* k = qs::layerKernel(l);
    const qint64 params = l.paramCount();
    if (!k || q.precision == qs::Precision::Float32) return params * 4;
    if (q.precision == qs::Precision::Float16) return params * 2;
    const qs::Candidate* c = chosen(row);
    // Until the analysis arrives: packed weights at the bit width, one float32 scale per weight column.
    const qint64 kernel = c ? c->stats.packed_bytes : (k->size() * qs::weightBits(q.precision) + 7) / 8 + 4 * k->shape.back();
    return kernel + (params - k->size()) * 4;  // biases as int32 (BatchNormalization vectors fold away in deployment)
}

void LayerTableModel::addLayers(qs::QuantConfig& c) const {
    for (int row = 0; row < layerCount(); ++row) {
        if (!quantizable(row)) continue;
        qs::LayerQuant q = quant_[static_cast<size_t>(row)];
        q.activation_method = c.defaults.activation_method;
        if (!(q == c.defaults)) c.layers[model_->layers[static_cast<size_t>(row)].name] = q;
    }
}

void LayerTableModel::addScales(qs::QuantConfig& c) const {
    for (int row = 0; row < layerCount(); ++row) {
        const qs::LayerQuant& q = quant_[static_cast<size_t>(row)];
        if (!quantizable(row) || !qs::isInteger(q.precision)) continue;
        const qs::Layer& layer = model_->layers[static_cast<size_t>(row)];
        const qs::Candidate* shown = chosen(row);
        const qs::Tensor& kernel = *qs::layerKernel(layer);
        const std::vector<qs::QuantParams> params = shown ? shown->params : qs::weightCandidate(kernel, qs::channelCount(layer, kernel), q).params;
        qs::LayerScales s;
        for (const qs::QuantParams& p : params) s.scales.push_back(p.scale);
        c.scales[layer.name] = std::move(s);
    }
}

qint64 LayerTableModel::totalFloatBytes() const {
    qint64 n = 0;
    for (int r = 0; r < layerCount(); ++r) n += model_->layers[static_cast<size_t>(r)].paramCount() * 4;
    return n;
}

qint64 LayerTableModel::totalQuantizedBytes() const {
    qint64 n = 0;
    for (int r = 0; r < layerCount(); ++r) n += quantizedBytes(r);
    return n;
}

std::pair<double, QString> LayerTableModel::sensitivityAt(int row) const {
    if (row < 0 || static_cast<size_t>(row) >= sensitivity_.size()) return {std::numeric_limits<double>::quiet_NaN(), QString()};
    return sensitivity_[static_cast<size_t>(row)];
}

void LayerTableModel::setSensitivity(int row, double drop_at_4_bits, const QString& detail) {
    if (row < 0 || row >= layerCount()) return;
    sensitivity_.resize(static_cast<size_t>(layerCount()), {std::numeric_limits<double>::quiet_NaN(), QString()});
    sensitivity_[static_cast<size_t>(row)] = {drop_at_4_bits, detail};
    emit dataChanged(index(row, Sensitivity), index(row, Sensitivity));
}

void LayerTableModel::clearSensitivity() {
    sensitivity_.clear();
    if (layerCount() > 0) emit dataChanged(index(0, Sensitivity), index(layerCount() - 1, Sensitivity));
}

int LayerTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !model_ ? 0 : layerCount() + 1;
}

int LayerTableModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QString LayerTableModel::formatBytes(qint64 bytes) {
    return QLocale::system().formattedDataSize(bytes, 1, QLocale::DataSizeTraditionalFormat);
}

QString LayerTableModel::summaryHtml() const {
    if (!model_) return {};
    const qs::Model& m = *model_;
    QString text = tr("<b>%1</b> &nbsp; format: %2 &nbsp; Keras: %3 &nbsp; %4 &nbsp; %5 layers, %6 parameters, %7 as float32")
                       .arg(QString::fromStdString(std::filesystem::path(m.source_path).filename().string()).toHtmlEscaped(),
                            QString::fromLatin1(qs::formatName(m.format)),
                            m.keras_version.empty() ? tr("not recorded") : QString::fromStdString(m.keras_version).toHtmlEscaped(),
                            m.model_class.empty() ? tr("no architecture") : QString::fromStdString(m.model_class))
                       .arg(m.layers.size())
                       .arg(QLocale::system().toString(static_cast<qlonglong>(m.paramCount())))
                       .arg(formatBytes(m.paramCount() * 4));
    for (const std::string& w : m.warnings) text += "<br><i>" + QString::fromStdString(w).toHtmlEscaped() + "</i>";
    return text;
}

Qt::ItemFlags LayerTableModel::flags(const QModelIndex& index) const {
    Qt::ItemFlags f = QAbstractTableModel::flags(index);
    if (index.row() < layerCount() && quantizable(index.row()) &&
        (index.column() == Bits || index.column() == Granularity || index.column() == Method))
        f |= Qt::ItemIsEditable;
    return f;
}

bool LayerTableModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (role != Qt::EditRole || !(flags(index) & Qt::ItemIsEditable)) return false;
    emit editRequested(index.row(), index.column(), value.toString());
    return true;
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const {
    if (!model_ || !index.isValid() || index.row() >= rowCount()) return {};
    const int row = index.row(), col = index.column();
    const QLocale loc = QLocale::system();
    if (row == totalsRow()) {
        const qint64 f = totalFloatBytes(), q = totalQuantizedBytes();
        if (role == Qt::DisplayRole) {
            switch (col) {
                case Name: return tr("Total");
                case Params: return loc.toString(static_cast<qlonglong>(model_->paramCount()));
                case Float32Size: return formatBytes(f);
                case QuantSize: return tr("%1 (-%2%)").arg(formatBytes(q)).arg(f ? 100.0 * (1.0 - double(q) / double(f)) : 0.0, 0, 'f', 1);
            }
        } else if (role == Qt::FontRole) {
            QFont font;
            font.setBold(true);
            return font;
        } else if (role == SortRole) {
            if (col == Float32Size) return f;
            if (col == QuantSize) return q;
        } else if (role == Qt::TextAlignmentRole && col != Name) {
            return int(Qt::AlignRight | Qt::AlignVCenter);
        }
        return {};
    }
    const qs::Layer& l = model_->layers[static_cast<size_t>(row)];
    const qs::LayerQuant& q = quant_[static_cast<size_t>(row)];
    const bool quant = quantizable(row);
    const qs::Candidate* c = quant ? chosen(row) : nullptr;
    if (role == Qt::DisplayRole || role == Qt::EditRole) {
        switch (col) {
            case Name: return QString::fromStdString(l.name);
            case Class: {
                const QString cls = l.class_name ? QString::fromStdString(*l.class_name) : QStringLiteral("?");
                // The width a quantization-aware-trained layer was trained for (QKeras, HGQ).
                return l.trained ? cls + tr(" (trained %1-bit)").arg(l.trained->bits) : cls;
            }
            case OutputShape: return l.output_shape ? QString::fromStdString(qs::shapeToString(*l.output_shape)) : QString();
            case Params: return loc.toString(static_cast<qlonglong>(l.paramCount()));
            case Bits: {
                if (!quant) return QString();
                QString text = QString::fromLatin1(qs::precisionName(q.precision));
                if (role == Qt::DisplayRole && qs::isInteger(q.precision) && q.precision != qs::Precision::Int16 && qs::activationBits(q) == 16)
                    text += tr(" a16");  // int16 activations (16x8)
                if (role == Qt::DisplayRole && q.bias_correction && qs::isInteger(q.precision)) text += tr(" bc");
                return text;
            }
            case Granularity: return quant ? QString::fromLatin1(qs::granularityName(q.granularity)) : QString();
            case Method: return quant ? QString::fromStdString(q.weight_method) : QString();
            case Scale: {
                if (!c || c->float16) return QString();
                double lo = c->params[0].scale, hi = lo;
                for (const qs::QuantParams& p : c->params) lo = std::min(lo, p.scale), hi = std::max(hi, p.scale);
                return c->params.size() == 1 ? QString::number(hi, 'g', 4) : QStringLiteral("%1 .. %2").arg(lo, 0, 'g', 3).arg(hi, 0, 'g', 3);
            }
            case Float32Size: return l.paramCount() ? formatBytes(l.paramCount() * 4) : QString();
            case QuantSize: return l.paramCount() ? formatBytes(quantizedBytes(row)) : QString();
            case Sqnr: return c ? QString::number(c->stats.sqnr_db, 'f', 1) : (quant && q.precision != qs::Precision::Float32 ? QStringLiteral("...") : QString());
            case PctBelow: return c ? QString::number(c->stats.pct_below_precision, 'f', 2) : QString();
            case PctBeyond: return c ? QString::number(c->stats.pct_beyond_range, 'f', 3) : QString();
            case Sensitivity: {
                const double d = sensitivityAt(row).first;
                return std::isnan(d) ? QString() : QString::asprintf("%+.2f pts", -d);  // negative: top-1 lost
            }
            case Weights: {
                QStringList parts;
                for (const qs::Tensor& t : l.weights) parts << QString::fromStdString(qs::shapeToString(t.shape));
                // Integer and boolean tensors (QAT state) are listed with their dtype, not analysed.
                for (const qs::Tensor& t : l.other_tensors)
                    parts << QString::fromStdString(qs::shapeToString(t.shape)) + ' ' + QString::fromLatin1(qs::dtypeName(t.stored_dtype));
                return parts.join(QStringLiteral("  "));
            }
        }
    } else if (role == ChoicesRole) {
        if (col == Bits) return precisionChoices();
        if (col == Granularity) return QStringList{qs::granularityName(qs::Granularity::PerChannel), qs::granularityName(qs::Granularity::PerTensor)};
        if (col == Method) return methodChoices();
    } else if (role == Qt::TextAlignmentRole) {
        if (col == Params || col == Float32Size || col == QuantSize || col == Sqnr || col == PctBelow || col == PctBeyond || col == Scale ||
            col == Sensitivity)
            return int(Qt::AlignRight | Qt::AlignVCenter);
    } else if (role == Qt::BackgroundRole) {
        // Severity of the weight error: red under 15 dB SQNR, amber under 25 dB.
        if (c && c->stats.sqnr_db < 15) return QBrush(QColor(250, 200, 200));
        if (c && c->stats.sqnr_db < 25) return QBrush(QColor(252, 232, 190));
    } else if (role == Qt::ToolTipRole) {
        if (col == Weights || col == Name) {
            QStringList lines;
            for (const qs::Tensor& t : l.weights)
                lines << QStringLiteral("%1  %2  %3").arg(QString::fromStdString(t.name), QString::fromStdString(qs::shapeToString(t.shape)),
                                                          QString::fromLatin1(qs::dtypeName(t.stored_dtype)));
            for (const qs::Tensor& t : l.other_tensors)
                lines << tr("%1  %2  %3 (not analysed)").arg(QString::fromStdString(t.name), QString::fromStdString(qs::shapeToString(t.shape)),
                                                            QString::fromLatin1(qs::dtypeName(t.stored_dtype)));
            return lines.isEmpty() ? QVariant() : QVariant(lines.join('\n'));
        }
        if (col == Sensitivity && !sensitivityAt(row).second.isEmpty()) return sensitivityAt(row).second;
        if (col == Overview) {
            const auto o = overview(row);
            if (!o) return headerData(col, Qt::Horizontal, Qt::ToolTipRole);
            QStringList lines{tr("%1: %2 below precision, %3 beyond range, %4 exact zeros of %5 weights")
                                  .arg(QString::fromStdString(c->method))
                                  .arg(loc.toString(static_cast<qlonglong>(o->below)))
                                  .arg(loc.toString(static_cast<qlonglong>(o->beyond)))
                                  .arg(loc.toString(static_cast<qlonglong>(o->zeros)))
                                  .arg(loc.toString(static_cast<qlonglong>(c->stats.count)))};
            for (const qs::MagnitudeBin& b : o->bins)
                if (b.total() > 0)
                    lines << tr("|w| in [2^%1, 2^%2): %3 in range%4%5")
                                 .arg(b.exponent)
                                 .arg(b.exponent + 1)
                                 .arg(loc.toString(static_cast<qlonglong>(b.in_range)))
                                 .arg(b.below ? tr(", %1 below precision").arg(loc.toString(static_cast<qlonglong>(b.below))) : QString())
                                 .arg(b.beyond ? tr(", %1 beyond range").arg(loc.toString(static_cast<qlonglong>(b.beyond))) : QString());
            return lines.join('\n');
        }
        if (col == Class && l.trained) return tr("Trained for %1").arg(QString::fromStdString(qs::describeTrained(*l.trained)));
        return headerData(col, Qt::Horizontal, Qt::ToolTipRole);
    } else if (role == SortRole) {
        switch (col) {
            case Params: return static_cast<qlonglong>(l.paramCount());
            case QuantSize: return quantizedBytes(row);
            case Sqnr: return c ? c->stats.sqnr_db : QVariant();
            case Sensitivity: return std::isnan(sensitivityAt(row).first) ? QVariant() : QVariant(sensitivityAt(row).first);
        }
    }
    return {};
}

QVariant LayerTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal) return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
            case Name: return tr("Layer");
            case Class: return tr("Class");
            case OutputShape: return tr("Output shape");
            case Params: return tr("Params");
            case Bits: return tr("Bits");
            case Granularity: return tr("Granularity");
            case Method: return tr("Method");
            case Scale: return tr("Scale");
            case Float32Size: return tr("Float32 size");
            case QuantSize: return tr("Quantized size");
            case Sqnr: return tr("SQNR dB");
            case PctBelow: return tr("% below");
            case PctBeyond: return tr("% beyond");
            case Sensitivity: return tr("At 4 bits");
            case Weights: return tr("Weights");
            case Overview: return tr("log2 |w|");
        }
    } else if (role == Qt::ToolTipRole) {
        switch (section) {
            case Name: return tr("Layer name as the file stores it");
            case Class: return tr("Keras class as the file says; '?' for weights-only files without an architecture");
            case OutputShape: return tr("Output shape inferred from the architecture (None = batch)");
            case Params: return tr("Number of weight values, including BatchNormalization statistics");
            case Bits: return tr("Precision of the layer's weights (and activations in the integer engine); double-click to change");
            case Granularity: return tr("One scale for the whole kernel, or one per output channel");
            case Method: return tr("How the weight scale is chosen: max |w|, a power of two, a percentile, least MSE or least KL divergence");
            case Scale: return tr("Step between representable weight values (range over channels when per-channel)");
            case Float32Size: return tr("Bytes the weights take as float32");
            case QuantSize: return tr("Packed weights at the chosen bits + scales + biases as int32");
            case Sqnr: return tr("Weight signal-to-quantization-noise ratio in dB: higher is better; red under 15, amber under 25");
            case PctBelow: return tr("Non-zero weights that quantize to 0");
            case PctBeyond: return tr("Weights clipped at the largest representable value");
            case Sensitivity: return tr("Top-1 points this layer alone loses at its best 4-bit setting, the other layers at int8 (Suggest "
                                        "measures it); hover a cell for every setting");
            case Weights: return tr("Shapes of the layer's weight tensors (Keras channels_last layout)");
            case Overview: return tr("The kernel's weights by power of two (log2 |w|, the same axis on every row; bar height on a log "
                                     "scale): blue in range, orange below precision (rounds to 0), red beyond range (clipped) for the "
                                     "row's bits and method; hover for the counts");
        }
    }
    return {};
}
