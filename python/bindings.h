// The parts of the extension meshckpt._meshckpt, each binding one API.
#ifndef MESHCKPT_PYTHON_BINDINGS_H_
#define MESHCKPT_PYTHON_BINDINGS_H_

#include <pybind11/pybind11.h>

namespace meshckpt::python {

void BindReader(pybind11::module_& m);      // reader_binding.cc
void BindCollective(pybind11::module_& m);  // collective_binding.cc
void BindManager(pybind11::module_& m);     // manager_binding.cc

}  // namespace meshckpt::python

#endif  // MESHCKPT_PYTHON_BINDINGS_H_
