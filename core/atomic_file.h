#pragma once
// Saves that never leave a half-written file: the bytes go to a temporary file beside the
// target (same directory, so the rename stays on one filesystem), are flushed with fsync, and
// only then replace the target with rename(2), which POSIX makes atomic. On any failure the
// temporary file is removed, the old target is untouched and qs::Error names the target and
// the reason (errno text).
#include <string>
#include <string_view>

namespace qs {

void writeFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace qs
