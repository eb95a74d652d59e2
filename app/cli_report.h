#pragma once
// `quantscope-cli report MODEL --data PATH --config a.json [--config b.json ...] --out DIR`:
// evaluates each config, then draws the comparison charts offscreen (Qt, QCustomPlot) and
// writes them as PNG and SVG with report.html and report.json into DIR. Usage errors throw
// std::invalid_argument; `progress` reports on stderr and carries Ctrl-C.
#include <string>
#include <vector>

#include "base/progress.h"

int reportCommand(const std::vector<std::string>& args, const qs::Progress& progress);
