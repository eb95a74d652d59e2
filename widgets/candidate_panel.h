#pragma once
// The candidate scales of one tensor, as small multiples: one compact plot per candidate of
// its error distribution (a density: fraction of weights per step), all on shared axes, with the chosen one highlighted, and below them a
// sortable table of every statistic the analysis JSON has. The shared x range comes from the
// well-behaved candidates (at most 1% of the values clipped), so a saturating candidate does
// not flatten the others into spikes: its mass beyond the range is an overflow bar at the edge
// labelled with its percentage. Toggles: quantization steps or weight units, log y. Clicking a
// candidate's plot or row asks for it to become the layer's choice (candidateClicked).
#include <QWidget>

#include <memory>
#include <vector>

#include "quant/quant_analysis.h"

class QCheckBox;
class QCPAxisRect;
class QCustomPlot;
class QLabel;
class QTableWidget;

class CandidatePanel : public QWidget {
    Q_OBJECT
public:
    explicit CandidatePanel(QWidget* parent = nullptr);
    // Shows `analysis` with candidate `chosen` marked (the layer's choice); null shows
    // `empty_text` (what to do to see something) instead.
    void setAnalysis(std::shared_ptr<const qs::TensorAnalysis> analysis, int chosen, const QString& empty_text = {});
    void setWeightUnits(bool on);
    void setLogY(bool on);

    // Half-width of the x range the plots share, in steps or in weight units: the widest
    // central 99% of the errors among the well-behaved candidates (those clipping at most 1%;
    // all of them when none is), at least half a step, plus 10%. Drawing rule, public for tests.
    static double sharedHalfRange(const qs::TensorAnalysis& a, bool weight_units);

    QTableWidget* table() const { return table_; }
    QCustomPlot* plot() const { return plot_; }
    double halfRange() const { return half_range_; }
    // The plot of candidate `index` (index into the analysis' candidates); null when not plotted.
    QCPAxisRect* plotOf(int index) const;
    // Fraction of candidate `index`'s values beyond the shared range (its overflow bars).
    double overflowOf(int index) const;

signals:
    void candidateClicked(const QString& method);

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;
    void showEvent(QShowEvent* event) override;

private:
    void redraw();
    void fillTable();
    void relayout();  // redraws when the plot's width asks for another number of columns
    int columnsFor(int plots) const;

    QLabel* caption_ = nullptr;
    QCheckBox* units_ = nullptr;
    QCheckBox* log_y_ = nullptr;
    QTableWidget* table_ = nullptr;
    QCustomPlot* plot_ = nullptr;
    std::shared_ptr<const qs::TensorAnalysis> analysis_;
    int chosen_ = 0;
    QString empty_text_;
    double half_range_ = 0;
    int columns_ = 0;
    bool stale_ = false;  // set while hidden: the plots are drawn when the panel is shown
    std::vector<std::pair<int, QCPAxisRect*>> rects_;  // candidate index, its plot
    std::vector<double> overflow_;                     // per candidate
};
