#pragma once
// The Compare panel: named snapshots of configs with their evaluation results (kept when the
// user asks, after a run), a checkable and renamable list of them, and the comparison charts
// of the checked ones. "Restore" asks the window to put a snapshot's config back in the table.
#include <QWidget>

#include <vector>

#include "eval/config_comparison.h"

class ComparisonCharts;
class QLabel;
class QListWidget;
class QListWidgetItem;
class QPushButton;
class QStackedWidget;

class ComparisonPanel : public QWidget {
    Q_OBJECT
public:
    explicit ComparisonPanel(QWidget* parent = nullptr);

    // Appends a snapshot (checked, so it shows in the charts).
    void addSnapshot(qs::ConfigRun run);
    void clear();
    const std::vector<qs::ConfigRun>& snapshots() const { return snapshots_; }
    // The checked snapshots, in list order: what the charts show.
    std::vector<qs::ConfigRun> shownRuns() const;
    // Whether "Keep" has a result to keep.
    void setCanKeep(bool can);

    ComparisonCharts* charts() const { return charts_; }
    QListWidget* list() const { return list_; }
    QPushButton* keepButton() const { return keep_; }

signals:
    void keepRequested();
    void saveReportRequested();  // the ticked snapshots as a report folder
    void restoreRequested(const qs::QuantConfig& config, const QString& name);

private:
    void redraw();
    void onItemChanged(QListWidgetItem* item);
    void removeSelected();

    std::vector<qs::ConfigRun> snapshots_;
    QListWidget* list_ = nullptr;
    QPushButton* keep_ = nullptr;
    QPushButton* restore_ = nullptr;
    QPushButton* remove_ = nullptr;
    QPushButton* report_ = nullptr;
    ComparisonCharts* charts_ = nullptr;
    QLabel* hint_ = nullptr;  // instead of empty charts while no snapshot is shown
    QStackedWidget* stack_ = nullptr;
};
