// How the extension turns an absl::Status into a Python exception, and the
// one lock that serializes its I/O.
//
// Bindings throw StatusError; the translator registered by RegisterErrors
// raises the matching class of meshckpt/_errors.py with the status code's
// name and the message: NotFound -> NotFoundError (a FileNotFoundError) or,
// for a missing key, KeyNotFoundError (a KeyError); InvalidArgument ->
// InvalidArgumentError (a ValueError); DataLoss -> DataLossError; anything
// else -> Error. All derive from meshckpt.Error.
#ifndef MESHCKPT_PYTHON_ERRORS_H_
#define MESHCKPT_PYTHON_ERRORS_H_

#include <pybind11/pybind11.h>

#include <exception>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace meshckpt::python {

class StatusError : public std::exception {
 public:
  StatusError(absl::Status status, bool missing_key)
      : status_(std::move(status)), missing_key_(missing_key) {}
  const char* what() const noexcept override { return "meshckpt status error"; }
  const absl::Status& status() const { return status_; }
  bool missing_key() const { return missing_key_; }

 private:
  absl::Status status_;
  bool missing_key_;
};

// Throws StatusError unless `s` is OK. `missing_key`: a NotFound means a
// key, not a file, is missing.
inline void Check(const absl::Status& s, bool missing_key = false) {
  if (!s.ok()) throw StatusError(s, missing_key);
}
template <typename T>
T Unwrap(absl::StatusOr<T> v, bool missing_key = false) {
  Check(v.status(), missing_key);
  return *std::move(v);
}

// HDF5 as this project links it is not thread-safe, and a CheckpointReader
// is for one thread at a time: every call that does I/O holds this lock,
// taken after the GIL is released, so Python threads never enter the
// library together.
std::mutex& IoMutex();

// Releases the GIL, then takes IoMutex() for the scope.
class IoScope {
 public:
  IoScope() : release_(), lock_(IoMutex()) {}

 private:
  pybind11::gil_scoped_release release_;
  std::lock_guard<std::mutex> lock_;
};

// Shares an object that does I/O (a reader, a manager) so that whichever
// thread drops the last reference (close(), the garbage collector, or a
// call still in flight on another thread) destroys it holding IoMutex()
// and without the GIL. A call takes its own reference while it holds the
// GIL, before its IoScope, so the object outlives the call even if
// another thread closes it meanwhile.
template <typename T>
std::shared_ptr<T> IoShared(std::unique_ptr<T> p) {
  return std::shared_ptr<T>(p.release(), [](T* x) {
    auto destroy = [x] {
      std::lock_guard<std::mutex> lock(IoMutex());
      delete x;
    };
    if (PyGILState_Check()) {
      pybind11::gil_scoped_release release;
      destroy();
    } else {
      destroy();
    }
  });
}

void RegisterErrors(pybind11::module_& m);

}  // namespace meshckpt::python

#endif  // MESHCKPT_PYTHON_ERRORS_H_
