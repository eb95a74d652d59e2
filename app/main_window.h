#pragma once
// The main window: opens a model (File > Open, drag and drop, command line) off the GUI thread
// with a progress bar and Cancel, and shows the layer table. A failed open leaves the previous
// model in place and tells why in a (non-blocking) message box.
#include <QFutureWatcher>
#include <QMainWindow>

#include <memory>

#include "jobs.h"

class LayerTableModel;
class QLabel;
class QProgressBar;
class QPushButton;
class QTableView;
class QMenu;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    // Starts loading `path`; a load still running is cancelled first.
    void openModel(const QString& path, const qs::LoadOptions& options = {});

    const qs::Model* model() const;
    LayerTableModel* layerTable() const { return table_model_; }
    QTableView* tableView() const { return table_view_; }
    bool isLoading() const { return load_watcher_.isRunning(); }

signals:
    void modelLoaded();
    void loadFailed(const QString& message);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;
    void closeEvent(QCloseEvent* event) override;

private:
    void buildMenus();
    void chooseAndOpen();
    void onLoadFinished();
    void updateSummary();
    void updateRecentMenu();
    void setBusy(bool busy, const QString& what = {});

    LayerTableModel* table_model_ = nullptr;
    QTableView* table_view_ = nullptr;
    QLabel* summary_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QPushButton* cancel_ = nullptr;
    QMenu* recent_menu_ = nullptr;
    QFutureWatcher<LoadResult> load_watcher_;
    std::shared_ptr<const qs::Model> model_;
};
