#pragma once
// Writes a comparison report into a folder: the three comparison charts as PNG and SVG,
// report.html and report.json (core/eval/config_comparison.h), every file atomically. Shared by
// `quantscope-cli report` and the GUI's Compare panel (Save report). Needs a QApplication.
#include <QString>

#include <vector>

#include "eval/config_comparison.h"

// Throws qs::Error naming the folder or file that could not be written. Returns the path of
// report.html.
QString writeComparisonReport(const QString& dir, const std::vector<qs::ConfigRun>& runs, qs::ReportInfo info);
