#include "plot_export.h"

#include <QApplication>
#include <QClipboard>
#include <QFileDialog>
#include <QMenu>
#include <QSaveFile>
#include <QSvgGenerator>
#include <qcustomplot.h>

bool savePlot(QCustomPlot* plot, const QString& path) {
    const QString lower = path.toLower();
    const int w = plot->width(), h = plot->height();
    if (lower.endsWith(".pdf")) return plot->savePdf(path, w, h);
    if (lower.endsWith(".svg")) {
        // QCustomPlot has no SVG writer; draw it through QSvgGenerator.
        QSvgGenerator svg;
        svg.setFileName(path);
        svg.setSize(QSize(w, h));
        svg.setViewBox(QRect(0, 0, w, h));
        QCPPainter painter;
        if (!painter.begin(&svg)) return false;
        plot->toPainter(&painter, w, h);
        return painter.end();
    }
    return plot->savePng(path, w, h, 2.0);
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
