#include "overview_delegate.h"

#include <QApplication>
#include <QPainter>

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "layer_table_model.h"

OverviewDelegate::OverviewDelegate(const LayerTableModel* model, QObject* parent) : QStyledItemDelegate(parent), model_(model) {}

namespace {
// Below precision, in range, beyond range: the histogram plot's band colours, opaque.
const QColor kPartColors[3] = {QColor(235, 150, 20), QColor(70, 110, 170), QColor(210, 40, 40)};
}  // namespace

QSize OverviewDelegate::sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const {
    const QSize s = QStyledItemDelegate::sizeHint(option, index);
    return {std::max(s.width(), 4 * LayerTableModel::kOverviewBins + 8), s.height()};
}

void OverviewDelegate::paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const {
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    const QWidget* w = option.widget;
    QStyle* style = w ? w->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &opt, painter, w);  // background, selection, focus
    const auto o = model_->overview(index.row());
    const auto [first, last] = model_->overviewExponents();
    if (!o || first > last) return;
    const QRectF area = QRectF(option.rect).adjusted(3, 3, -3, -2);
    const int nbins = last - first + 1;
    const double bw = area.width() / nbins;
    painter->save();
    painter->setPen(Qt::NoPen);
    painter->setRenderHint(QPainter::Antialiasing, false);
    // Faint baseline so empty rows of the shared axis read as "no weights here".
    painter->fillRect(QRectF(area.left(), area.bottom() - 1, area.width(), 1), QColor(160, 160, 160, 120));
    // Bins below the shared axis fold into its first bin.
    std::vector<std::array<int64_t, 3>> cells(static_cast<size_t>(nbins), {0, 0, 0});
    for (const qs::MagnitudeBin& b : o->bins) {
        const int i = std::clamp(b.exponent - first, 0, nbins - 1);
        cells[static_cast<size_t>(i)][0] += b.below;
        cells[static_cast<size_t>(i)][1] += b.in_range;
        cells[static_cast<size_t>(i)][2] += b.beyond;
    }
    int64_t peak = 1;  // of the cells drawn: a first cell holding folded bins may be the tallest
    for (const auto& k : cells) peak = std::max(peak, k[0] + k[1] + k[2]);
    const double top = std::log1p(static_cast<double>(peak));
    for (int i = 0; i < nbins; ++i) {
        const auto& k = cells[static_cast<size_t>(i)];
        const int64_t total = k[0] + k[1] + k[2];
        if (total == 0) continue;
        // The bar's height is log-scaled; its parts split it in proportion to their counts, and a
        // part that exists is at least one pixel tall so a single clipped weight is visible.
        const double h = std::max(2.0, area.height() * std::log1p(static_cast<double>(total)) / top);
        double y = area.bottom();
        const double x = area.left() + i * bw;
        for (int part = 0; part < 3; ++part) {
            if (k[part] == 0) continue;
            const double ph = std::max(1.0, h * static_cast<double>(k[part]) / static_cast<double>(total));
            painter->fillRect(QRectF(x, y - ph, std::max(1.0, bw - 1), ph), kPartColors[part]);
            y -= ph;
        }
    }
    painter->restore();
}
