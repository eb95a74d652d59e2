#pragma once
// Right-click menu for every plot: save as PNG, SVG or PDF, or copy to the clipboard.
class QCustomPlot;
class QString;

// Adds the context menu to `plot`; `name` is the suggested file name (without extension).
void installPlotExportMenu(QCustomPlot* plot, const QString& name);

// Writes the plot to `path`, the format from its extension (.png, .svg, .pdf); false on error.
bool savePlot(QCustomPlot* plot, const QString& path);
