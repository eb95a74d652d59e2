#pragma once
// The one exception type core throws for fatal problems. It always names the file and, where
// it applies, the object inside it (an HDF5 path, a JSON field, a zip member), so that the
// app and the CLI can show one line that tells the user what is wrong and where.
#include <stdexcept>
#include <string>

namespace qs {

class Error : public std::runtime_error {
public:
    Error(std::string file, std::string object_path, std::string message)
        : std::runtime_error(compose(file, object_path, message)),
          file_(std::move(file)), object_path_(std::move(object_path)), message_(std::move(message)) {}

    const std::string& file() const { return file_; }
    const std::string& objectPath() const { return object_path_; }
    const std::string& message() const { return message_; }

private:
    static std::string compose(const std::string& file, const std::string& object, const std::string& msg) {
        std::string s = file.empty() ? std::string("<no file>") : file;
        if (!object.empty()) s += " [" + object + "]";
        return s + ": " + msg;
    }
    std::string file_, object_path_, message_;
};

// Thrown when a Progress says the user cancelled; never shown as an error.
class Cancelled : public std::exception {
public:
    const char* what() const noexcept override { return "cancelled"; }
};

}  // namespace qs
