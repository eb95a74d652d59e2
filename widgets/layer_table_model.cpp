#include "layer_table_model.h"

#include <QLocale>

#include "shape_inference.h"

LayerTableModel::LayerTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerTableModel::setModel(std::shared_ptr<const qs::Model> model) {
    beginResetModel();
    model_ = std::move(model);
    endResetModel();
}

int LayerTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() || !model_ ? 0 : static_cast<int>(model_->layers.size());
}

int LayerTableModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : ColumnCount;
}

QString LayerTableModel::formatBytes(qint64 bytes) {
    return QLocale::system().formattedDataSize(bytes, 1, QLocale::DataSizeTraditionalFormat);
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const {
    if (!model_ || !index.isValid() || index.row() >= rowCount()) return {};
    const qs::Layer& l = model_->layers[static_cast<size_t>(index.row())];
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
            case Name: return QString::fromStdString(l.name);
            case Class: return l.class_name ? QString::fromStdString(*l.class_name) : QStringLiteral("?");
            case OutputShape: return l.output_shape ? QString::fromStdString(qs::shapeToString(*l.output_shape)) : QString();
            case Params: return QLocale::system().toString(static_cast<qlonglong>(l.paramCount()));
            case Weights: {
                QStringList parts;
                for (const qs::Tensor& t : l.weights) parts << QString::fromStdString(qs::shapeToString(t.shape));
                return parts.join(QStringLiteral("  "));
            }
            case Float32Size: return l.paramCount() ? formatBytes(l.paramCount() * 4) : QString();
        }
    } else if (role == Qt::TextAlignmentRole) {
        if (index.column() == Params || index.column() == Float32Size) return int(Qt::AlignRight | Qt::AlignVCenter);
    } else if (role == Qt::ToolTipRole) {
        QStringList lines;
        for (const qs::Tensor& t : l.weights)
            lines << QStringLiteral("%1  %2  %3").arg(QString::fromStdString(t.name), QString::fromStdString(qs::shapeToString(t.shape)),
                                                      QString::fromLatin1(qs::dtypeName(t.stored_dtype)));
        return lines.isEmpty() ? QVariant() : QVariant(lines.join('\n'));
    } else if (role == Qt::UserRole) {  // raw parameter count, for sorting and tests
        return static_cast<qlonglong>(l.paramCount());
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
            case Weights: return tr("Weights");
            case Float32Size: return tr("Float32 size");
        }
    } else if (role == Qt::ToolTipRole) {
        switch (section) {
            case Name: return tr("Layer name as the file stores it");
            case Class: return tr("Keras class as the file says; '?' for weights-only files without an architecture");
            case OutputShape: return tr("Output shape inferred from the architecture (None = batch)");
            case Params: return tr("Number of weight values, including BatchNormalization statistics");
            case Weights: return tr("Shapes of the layer's weight tensors (Keras channels_last layout)");
            case Float32Size: return tr("Bytes the weights take as float32");
        }
    }
    return {};
}
