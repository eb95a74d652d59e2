#pragma once
// A benchmark's main(): the usage line on -h / --help or an option the benchmark does not know
// (an argument starting with '-' outside `options`: bench_open once took "--bogus" for the name
// of the 553 MB file to generate), and a failure as one line and exit status 1 rather than
// std::terminate.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <string>

namespace qs::bench {

template <class Run>
int benchMain(int argc, char** argv, const char* usage, std::initializer_list<const char*> options, Run run) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool known = std::any_of(options.begin(), options.end(), [&](const char* o) { return a == o; });
        if (a.size() > 1 && a[0] == '-' && !known) {
            std::fprintf(stderr, "usage: %s\n", usage);
            return a == "-h" || a == "--help" ? 0 : 2;
        }
    }
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
}

}  // namespace qs::bench
