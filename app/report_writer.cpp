#include "report_writer.h"

#include <QDir>

#include "base/atomic_file.h"
#include "base/error.h"
#include "comparison_charts.h"
#include "plot_export.h"

QString writeComparisonReport(const QString& dir_path, const std::vector<qs::ConfigRun>& runs, qs::ReportInfo info) {
    if (!QDir().mkpath(dir_path)) throw qs::Error(dir_path.toStdString(), "", "cannot create the folder");
    const QDir dir(dir_path);
    ComparisonCharts charts;  // never shown: drawn at a fixed size for the files
    charts.setRuns(runs);
    info.chart_files.clear();
    for (const auto& [plot, name] : charts.plots()) {
        for (const char* ext : {".png", ".svg"}) {
            const QString path = dir.filePath(name + ext);
            if (!savePlot(plot, path, QSize(760, 520))) throw qs::Error(path.toStdString(), "", "cannot write the chart");
        }
        info.chart_files.push_back((name + ".svg").toStdString());
    }
    qs::writeFileAtomically(dir.filePath("report.html").toStdString(), qs::comparisonReportHtml(runs, info));
    qs::writeFileAtomically(dir.filePath("report.json").toStdString(), qs::comparisonReportJson(runs, info).dump(2) + "\n");
    return dir.filePath("report.html");
}
