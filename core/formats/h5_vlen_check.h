#pragma once
// libhdf5 1.10 trusts a global heap collection's object sizes and indices: reading a
// variable-length string whose heap object claims more bytes than the string's length copies
// past its buffer (H5HG_read), and a reference to an index past the collection's table reads past
// the table. Whether that crashes at once or silently corrupts the heap depends on what lies
// beyond the buffer, so the metadata preflight's helper (h5_preflight.h) can survive a read that
// then corrupts the caller's heap: its "the same bytes behave the same way twice" holds for
// deterministic faults only. sweep_corruption found this on an Intel Xeon (13 of 20,000 damaged
// corpus files crashed the caller, all in a global heap collection).
//
// So before libhdf5 reads a variable-length string attribute, its references are checked
// against the file's bytes, with our own bounds-checked reading of the structures involved
// (HDF5 File Format Specification 3.0: version 1 and 2 object headers, the attribute, datatype and
// dataspace messages, global heap collections): every referenced object must exist in its
// collection, lie inside it, and hold no more bytes than the string's length. Pure C++ and
// pread: nothing here can crash on any input.
#include <hdf5.h>

#include <string>
#include <vector>

namespace qs::h5 {

enum class HeapCheck {
    Consistent,  // every reference checked and sound (or the attribute is not a vlen string)
    Damaged,     // a reference libhdf5 would follow out of bounds: never hand it to libhdf5
    Unchecked,   // a layout this check does not read (dense attribute storage, shared messages,
                 // a file driver other than sec2/core): left to libhdf5 and the preflight, as before
};

struct VlenHeapCheck {
    HeapCheck result = HeapCheck::Unchecked;
    std::string why;  // for Damaged: what is wrong, naming the collection's address
};

// Checks the attribute `name` of the object `obj` (a file, group or dataset id).
VlenHeapCheck checkVlenStringHeap(hid_t obj, const std::string& name);

// Starts this thread's checks afresh on `file`, which hdf5_util.cpp has just opened from `path`
// (the sec2 driver) or from `image` (the core driver; null for a path), so that the check need not
// ask libhdf5's property lists for the driver.
void startHeapChecks(hid_t file, const std::string& path, const char* image, size_t image_size);

}  // namespace qs::h5
