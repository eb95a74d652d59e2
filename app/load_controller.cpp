#include "load_controller.h"

#include <QFileInfo>
#include <QMenu>
#include <QSettings>

namespace {
constexpr int kMaxRecent = 8;
}

LoadController::LoadController(QMenu* recent_menu, QObject* parent) : QObject(parent), recent_menu_(recent_menu) {
    connect(&watcher_, &QFutureWatcher<LoadResult>::progressValueChanged, this, &LoadController::progress);
    connect(&watcher_, &QFutureWatcher<LoadResult>::resultReadyAt, this, &LoadController::onResult);
    connect(&watcher_, &QFutureWatcher<LoadResult>::finished, this, &LoadController::onFinished);
    updateRecentMenu();
}

LoadController::~LoadController() {
    watcher_.disconnect(this);
    cancelAndWait(watcher_);
}

void LoadController::open(const QString& path, const qs::LoadOptions& options) {
    cancelAndWait(watcher_);  // a newer request replaces an older one
    emit started(path);
    watcher_.setFuture(startLoadModel(path, options));
}

void LoadController::onResult(int index) {
    const LoadResult r = watcher_.resultAt(index);
    if (r.structure_only && r.model) emit structureRead(r.model);
}

void LoadController::onFinished() {
    const int n = watcher_.future().resultCount();
    const LoadResult r = n > 0 ? watcher_.resultAt(n - 1) : LoadResult{};
    if (watcher_.isCanceled() || n == 0 || r.cancelled || r.structure_only) {
        emit cancelled();
        return;
    }
    if (!r.model) {
        emit failed(r.error);
        return;
    }
    QSettings settings;
    settings.setValue("paths/lastModelDir", QFileInfo(r.path).absolutePath());
    QStringList recent = settings.value("recentFiles").toStringList();
    recent.removeAll(r.path);
    recent.prepend(r.path);
    settings.setValue("recentFiles", recent.mid(0, kMaxRecent));
    updateRecentMenu();
    emit loaded(r.model, r.path);
}

void LoadController::updateRecentMenu() {
    recent_menu_->clear();
    const QStringList recent = QSettings().value("recentFiles").toStringList();
    for (const QString& path : recent) recent_menu_->addAction(path, this, [this, path] { open(path); });
    recent_menu_->setEnabled(!recent.isEmpty());
}
