#pragma once
// Saves that never leave a half-written file: the content goes to a temporary file beside the
// target (same directory, so the rename stays on one filesystem), is flushed with fsync, and
// only then replaces the target with rename(2), which POSIX makes atomic. On any failure the
// temporary file is removed, the old target is untouched and qs::Error names the target and
// the reason (errno text).
#include <functional>
#include <string>
#include <string_view>

namespace qs {

void writeFileAtomically(const std::string& path, std::string_view bytes);

// For writers that need a path of their own (HDF5): `write` fills the temporary file at the
// path it is given; anything it throws propagates after the temporary file is removed.
void replaceFileAtomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

}  // namespace qs
