#pragma once
// The Suggest panel: a budget (largest top-1 drop, bits per weight or bytes) and a Suggest
// button; then the Pareto chart of the mixed-precision search (core/eval/mixed_precision.h) —
// a point per real evaluation, accuracy on the search images against model size, the front
// joined, float and the all-int8 baseline marked, the budget's pick ringed — and the front as a
// table with the held-out accuracy. Clicking a point or a row selects it; Apply (or a double
// click) asks for its config to be applied with pointActivated.
#include <QWidget>

#include <memory>

#include "eval/mixed_precision.h"

class QComboBox;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QTableWidget;

class SuggestPanel : public QWidget {
    Q_OBJECT
public:
    explicit SuggestPanel(QWidget* parent = nullptr);

    qs::SearchBudget budget() const;
    void setBudget(const qs::SearchBudget& b);
    void setRunning(bool running);
    void setProgress(int permille);
    void setMessage(const QString& text);
    void setResult(std::shared_ptr<const qs::SensitivityTable> table, std::shared_ptr<const qs::SearchResult> result);
    void clear();

    const qs::SearchResult* result() const { return result_.get(); }
    // The point (index into result()->points) the table and chart have selected; -1: none.
    int selectedPoint() const { return selected_; }
    void selectPoint(int index);
    QCustomPlot* chart() const { return chart_; }
    QTableWidget* table() const { return table_; }

signals:
    void suggestRequested(const qs::SearchBudget& budget);
    void cancelRequested();
    void pointActivated(int index);

private:
    void drawChart();
    void fillTable();

    QComboBox* kind_ = nullptr;
    QDoubleSpinBox* value_ = nullptr;
    QPushButton* run_ = nullptr;
    QPushButton* cancel_ = nullptr;
    QPushButton* apply_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QLabel* message_ = nullptr;
    QCustomPlot* chart_ = nullptr;
    QTableWidget* table_ = nullptr;
    std::shared_ptr<const qs::SensitivityTable> sensitivity_;
    std::shared_ptr<const qs::SearchResult> result_;
    int selected_ = -1;
};
