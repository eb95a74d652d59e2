#include "plot_export.h"

#include <QApplication>
#include <QBuffer>
#include <QPdfWriter>
#include <QClipboard>
#include <QFileDialog>
#include <QMenu>
#include <QSaveFile>
#include <QSvgGenerator>
#include <qcustomplot.h>

namespace {

// The plot drawn into `device` at w x h: SVG through QSvgGenerator (QCustomPlot has no SVG
// writer), PDF through QPdfWriter at 72 dpi so one pixel is one point.
bool paintVector(QCustomPlot* plot, QPaintDevice* device, int w, int h) {
    QCPPainter painter;
    if (!painter.begin(device)) return false;
    plot->toPainter(&painter, w, h);
    return painter.end();
}

QByteArray renderPlot(QCustomPlot* plot, const QString& lower, int w, int h, bool* ok) {
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    if (lower.endsWith(".svg")) {
        QSvgGenerator svg;
        svg.setOutputDevice(&buffer);
        svg.setSize(QSize(w, h));
        svg.setViewBox(QRect(0, 0, w, h));
        *ok = paintVector(plot, &svg, w, h);
    } else if (lower.endsWith(".pdf")) {
        QPdfWriter pdf(&buffer);
        pdf.setResolution(72);
        pdf.setPageSize(QPageSize(QSizeF(w, h), QPageSize::Point));
        pdf.setPageMargins(QMarginsF(0, 0, 0, 0));
        *ok = paintVector(plot, &pdf, w, h);
    } else {
        *ok = plot->toPixmap(w, h, 2.0).save(&buffer, "PNG");
    }
    return bytes;
}

}  // namespace

bool savePlot(QCustomPlot* plot, const QString& path, QSize size) {
    const int w = size.isValid() ? size.width() : plot->width(), h = size.isValid() ? size.height() : plot->height();
    bool ok = false;
    const QByteArray bytes = renderPlot(plot, path.toLower(), w, h, &ok);
    if (!ok) return false;
    // Written to a temporary file beside the target and renamed into place: a failure leaves
    // an existing file as it was.
    QSaveFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(bytes) == bytes.size() && file.commit();
}

void installPlotExportMenu(QCustomPlot* plot, const QString& name) {
    plot->setContextMenuPolicy(Qt::CustomContextMenu);
    QObject::connect(plot, &QWidget::customContextMenuRequested, plot, [plot, name](const QPoint& pos) {
        QMenu menu(plot);
        menu.addAction(QObject::tr("Save as PNG, SVG or PDF..."), plot, [plot, name] {
            const QString path = QFileDialog::getSaveFileName(plot, QObject::tr("Save plot"), name + ".png",
                                                              QObject::tr("PNG (*.png);;SVG (*.svg);;PDF (*.pdf)"));
            if (!path.isEmpty()) savePlot(plot, path);
        });
        menu.addAction(QObject::tr("Copy"), plot, [plot] { QApplication::clipboard()->setPixmap(plot->toPixmap(0, 0, 2.0)); });
        menu.exec(plot->mapToGlobal(pos));
    });
}
