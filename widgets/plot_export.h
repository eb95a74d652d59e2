#pragma once
// Right-click menu for every plot: save as PNG, SVG or PDF, or copy to the clipboard.
#include <QSize>

class QCustomPlot;
class QString;

// Adds the context menu to `plot`; `name` is the suggested file name (without extension).
void installPlotExportMenu(QCustomPlot* plot, const QString& name);

// Writes the plot to `path`, the format from its extension (.png at twice the resolution,
// .svg, .pdf), at `size` (default: the plot's own), atomically; false on error.
bool savePlot(QCustomPlot* plot, const QString& path, QSize size = {});
