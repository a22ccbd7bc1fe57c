# Finds what the Python module (python/) needs and sets
# MESHCKPT_PYTHON_FOUND: Debian's python3 by default (MESHCKPT_PYTHON), not
# whatever `python3` comes first on PATH (a pyenv or conda shim would build
# a module Debian's python3 cannot import), its headers, pybind11 and numpy.
# MESHCKPT_BUILD_PYTHON=ON makes a missing piece an error; AUTO only says so.
set(MESHCKPT_PYTHON /usr/bin/python3 CACHE FILEPATH
    "The Python interpreter the meshckpt module is built for")
# Where `cmake --install` and the .deb put the package, under the prefix:
# Debian's directory for python3 modules, on sys.path of /usr/bin/python3.
set(MESHCKPT_PYTHON_INSTALL_DIR lib/python3/dist-packages CACHE STRING
    "Install directory of the meshckpt Python package, relative to the prefix")
set(MESHCKPT_PYTHON_FOUND OFF)
set(MESHCKPT_PYTHON_TEST_DEPS_FOUND OFF)
set(why "")
if((MESHCKPT_SANITIZE OR MESHCKPT_TSAN OR MESHCKPT_FUZZ) AND
   MESHCKPT_PYTHON_MODE STREQUAL "AUTO")
  # A sanitized extension cannot be loaded into an unsanitized python3.
  set(why "a sanitizer or fuzzing build")
elseif(EXISTS "${MESHCKPT_PYTHON}")
  set(Python_EXECUTABLE "${MESHCKPT_PYTHON}")
  find_package(Python 3.7 QUIET COMPONENTS Interpreter Development.Module)
endif()
if(why)
elseif(NOT Python_FOUND)
  set(why "no Python ${MESHCKPT_PYTHON} with its headers (python3-dev)")
else()
  set(PYBIND11_FINDPYTHON ON)
  find_package(pybind11 2.6 CONFIG QUIET)
  execute_process(COMMAND "${Python_EXECUTABLE}" -c "import numpy"
                  RESULT_VARIABLE numpy_rc OUTPUT_QUIET ERROR_QUIET)
  # The tests need mpi4py and pytest besides (python/tests/).
  execute_process(COMMAND "${Python_EXECUTABLE}" -c "import mpi4py, pytest"
                  RESULT_VARIABLE test_deps_rc OUTPUT_QUIET ERROR_QUIET)
  if(test_deps_rc EQUAL 0)
    set(MESHCKPT_PYTHON_TEST_DEPS_FOUND ON)
  endif()
  if(NOT pybind11_FOUND)
    set(why "no pybind11 (pybind11-dev)")
  elseif(NOT numpy_rc EQUAL 0)
    set(why "no numpy for ${Python_EXECUTABLE} (python3-numpy)")
  else()
    set(MESHCKPT_PYTHON_FOUND ON)
  endif()
endif()
if(MESHCKPT_PYTHON_FOUND)
  message(STATUS "meshckpt: building the Python module for ${Python_EXECUTABLE} "
                 "(${Python_VERSION}, pybind11 ${pybind11_VERSION})")
elseif(MESHCKPT_PYTHON_MODE STREQUAL "ON")
  message(FATAL_ERROR "meshckpt: MESHCKPT_BUILD_PYTHON=ON but ${why}. On Debian: "
                      "apt-get install python3-dev pybind11-dev python3-numpy "
                      "python3-mpi4py (scripts/setup.sh does this).")
else()
  message(STATUS "meshckpt: not building the Python module: ${why}")
endif()
unset(why)
