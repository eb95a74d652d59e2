#pragma once
// The candidate scales of one tensor: a table of their statistics and their error
// distributions overlaid in one plot. Clicking a candidate asks for it to become the layer's
// choice (candidateClicked); the chosen one is shown in bold.
#include <QWidget>

#include <memory>

#include "quant/quant_analysis.h"

class QCustomPlot;
class QTableWidget;

class CandidatePanel : public QWidget {
    Q_OBJECT
public:
    explicit CandidatePanel(QWidget* parent = nullptr);
    // Shows `analysis` with candidate `chosen` marked (the layer's choice); null clears.
    void setAnalysis(std::shared_ptr<const qs::TensorAnalysis> analysis, int chosen);
    QTableWidget* table() const { return table_; }
    QCustomPlot* plot() const { return plot_; }

signals:
    void candidateClicked(const QString& method);

private:
    QTableWidget* table_ = nullptr;
    QCustomPlot* plot_ = nullptr;
    std::shared_ptr<const qs::TensorAnalysis> analysis_;
    int chosen_ = 0;
};
