#pragma once
// Opening models for the window, off the GUI thread and in two steps: the structure first
// (layers and shapes, no values: a tenth of a second even for a 553 MB file), so the table can
// show at once, then every value. A newer open cancels an older one. What opens goes to the
// recent files (QSettings) and the Open Recent menu this controller fills.
#include <QFutureWatcher>
#include <QObject>

#include <memory>

#include "jobs.h"

class QMenu;

class LoadController : public QObject {
    Q_OBJECT
public:
    LoadController(QMenu* recent_menu, QObject* parent);
    ~LoadController() override;

    void open(const QString& path, const qs::LoadOptions& options = {});
    void cancel() { watcher_.cancel(); }
    bool isRunning() const { return watcher_.isRunning(); }

signals:
    void started(const QString& path);
    void progress(int permille);
    void structureRead(std::shared_ptr<const qs::Model> shapes_only);  // values still to come
    void loaded(std::shared_ptr<const qs::Model> model, const QString& path);
    void failed(const QString& message);  // one line naming the file and the problem
    void cancelled();

private:
    void onResult(int index);
    void onFinished();
    void updateRecentMenu();

    QMenu* recent_menu_;
    QFutureWatcher<LoadResult> watcher_;
};
