#pragma once
// `quantscope-cli sensitivity` and `quantscope-cli suggest` (usage in cli_main.cpp). Usage errors
// throw std::invalid_argument; `progress` reports on stderr and carries Ctrl-C.
#include <string>
#include <vector>

#include "base/progress.h"

int sensitivityCommand(const std::vector<std::string>& args, const qs::Progress& progress);
int suggestCommand(const std::vector<std::string>& args, const qs::Progress& progress);
