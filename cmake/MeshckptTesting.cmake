# Test registration helpers.
#
# meshckpt_add_unit_test(NAME SOURCES... LIBS ... [ENVIRONMENT VAR=value])
#   A gtest executable whose tests are labelled `unit`.
#
# meshckpt_add_mpi_test(NAME SOURCES ... LIBS ... RANKS 1 2 3 4 [TIMEOUT s] [ARGS ...])
#   A gtest executable linked with the shared MPI test main, registered once
#   per rank count as NAME_npN, run as
#     mpiexec -n N --oversubscribe --mca mpi_yield_when_idle 1 --timeout T exe
#   and labelled `mpi`. mpiexec's own --timeout kills a hung job; ctest's
#   TIMEOUT (a little longer) is the backstop. Running as root is allowed
#   through the environment, as OpenMPI demands.
include(GoogleTest)

set(MESHCKPT_MPI_TIMEOUT 300 CACHE STRING "Default seconds before an MPI test is killed")
set(MESHCKPT_MPIEXEC_ENV
  "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_btl_vader_single_copy_mechanism=none;OMPI_MCA_rmaps_base_oversubscribe=1")

function(meshckpt_add_unit_test name)
  cmake_parse_arguments(ARG "" "ENVIRONMENT" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest_main GTest::gmock)
  set(env)
  if(ARG_ENVIRONMENT)
    set(env ENVIRONMENT "${ARG_ENVIRONMENT}")
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS unit ${env} DISCOVERY_TIMEOUT 60)
endfunction()

# meshckpt_add_mpi_test_target(TARGET RANKS ... [TIMEOUT s] [ARGS ...])
#   The same registration for an executable defined elsewhere (no gtest).
function(meshckpt_add_mpi_test_target target)
  cmake_parse_arguments(ARG "" "TIMEOUT" "RANKS;ARGS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT ${MESHCKPT_MPI_TIMEOUT})
  endif()
  math(EXPR backstop "${ARG_TIMEOUT} + 30")
  foreach(n IN LISTS ARG_RANKS)
    add_test(NAME ${target}_np${n}
      COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${n}
              --oversubscribe --mca mpi_yield_when_idle 1 --timeout ${ARG_TIMEOUT}
              ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${target}> ${MPIEXEC_POSTFLAGS} ${ARG_ARGS})
    set_tests_properties(${target}_np${n} PROPERTIES
      LABELS mpi TIMEOUT ${backstop} PROCESSORS ${n}
      ENVIRONMENT "${MESHCKPT_MPIEXEC_ENV}")
  endforeach()
endfunction()

function(meshckpt_add_mpi_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;RANKS;ARGS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} meshckpt_mpi_test_main)
  set(timeout_arg)
  if(ARG_TIMEOUT)
    set(timeout_arg TIMEOUT ${ARG_TIMEOUT})
  endif()
  meshckpt_add_mpi_test_target(${name} RANKS ${ARG_RANKS} ${timeout_arg} ARGS ${ARG_ARGS})
endfunction()

# meshckpt_add_multinode_test(SCENARIO TIMEOUT s)
#   scripts/multinode/run_test.sh SCENARIO: jobs across simulated hosts on
#   this machine (docs/multinode.md), registered as multinode_SCENARIO with
#   label `multinode`, its work directory in this build directory. The
#   script brings its hosts up and tears them down itself; every mpirun in
#   it has its own --timeout, shorter than TIMEOUT, so a hang fails the test
#   through the script's teardown rather than ctest's kill.
function(meshckpt_add_multinode_test scenario)
  cmake_parse_arguments(ARG "" "TIMEOUT" "" ${ARGN})
  add_test(NAME multinode_${scenario}
    COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/multinode/run_test.sh ${scenario}
            ${PROJECT_BINARY_DIR} ${CMAKE_CURRENT_BINARY_DIR}/multinode_${scenario}_work)
  set_tests_properties(multinode_${scenario} PROPERTIES
    LABELS multinode TIMEOUT ${ARG_TIMEOUT} PROCESSORS 4)
endfunction()
