#pragma once
// QtConcurrent glue: long core operations run off the GUI thread in promise mode, map
// qs::Progress onto the promise's progress and cancellation, and return a value that holds
// either the result or the error text (no exception crosses threads).
#include <QFuture>
#include <QString>

#include <memory>

#include "model.h"
#include "model_loader.h"

struct LoadResult {
    QString path;
    std::shared_ptr<const qs::Model> model;  // null on failure or cancel
    QString error;                            // one line naming the file and the problem
    bool cancelled = false;
};

QFuture<LoadResult> startLoadModel(const QString& path, const qs::LoadOptions& options);
