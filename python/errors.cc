// Translation of StatusError into the exception classes of meshckpt._errors.
#include "meshckpt/python/errors.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace meshckpt::python {

namespace py = pybind11;

std::mutex& IoMutex() {
  static std::mutex* mu = new std::mutex();
  return *mu;
}

void RegisterErrors(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      const absl::Status& s = e.status();
      const std::string code = absl::StatusCodeToString(s.code());
      try {
        py::object cls =
            py::module_::import("meshckpt._errors")
                .attr("exception_class")(static_cast<int>(s.code()), e.missing_key());
        py::object exc = cls(code, std::string(s.message()));
        PyErr_SetObject(cls.ptr(), exc.ptr());
      } catch (py::error_already_set& inner) {
        // The classes could not be made: still raise, with the code.
        PyErr_SetString(
            PyExc_RuntimeError,
            absl::StrCat(code, ": ", s.message(), " (and ", inner.what(), ")").c_str());
      }
    }
  });
}

}  // namespace meshckpt::python
