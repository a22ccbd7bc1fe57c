// The extension module meshckpt._meshckpt; meshckpt/__init__.py is its face.
#include <pybind11/pybind11.h>

#include "meshckpt/base/version.h"
#include "meshckpt/python/bindings.h"
#include "meshckpt/python/errors.h"

PYBIND11_MODULE(_meshckpt, m) {
  m.doc() = "The C++ side of the meshckpt package; use `import meshckpt`.";
  meshckpt::python::RegisterErrors(m);
  meshckpt::python::BindReader(m);
  meshckpt::python::BindCollective(m);
  meshckpt::python::BindManager(m);
  m.attr("library_version") = meshckpt::kLibraryVersion;
}
