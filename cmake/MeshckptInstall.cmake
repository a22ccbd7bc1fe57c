# Install rules, the CMake package, the pkg-config file and the .deb.
#
# Headers install to <prefix>/include/meshckpt/<folder>/<file>.h and are
# included as "meshckpt/<folder>/<file>.h", the way abseil ("absl/...") and
# TensorStore ("tensorstore/...") name theirs: one directory named after the
# project, so folder names like base/ or io/ never collide with a
# consumer's, and the same include lines work in the tree and installed.
include(CMakePackageConfigHelpers)

# The public headers: the umbrella and everything it includes, no more. The
# downstream test compiles each alone against the installed tree.
set(MESHCKPT_PUBLIC_HEADERS
  meshckpt.h
  base/dtype.h base/scalar_value.h base/status_macros.h base/version.h
  checkpoint/engine/checkpoint_handle.h checkpoint/engine/checkpoint_index.h
  checkpoint/engine/shard_io.h checkpoint/engine/async_save.h
  checkpoint/manager/checkpoint_manager.h checkpoint/manager/preemption.h
  checkpoint/object/dtensor_checkpoint.h checkpoint/object/dvariable.h
  checkpoint/object/load_status.h checkpoint/object/trackable.h
  checkpoint/object/tracked_value.h
  checkpoint/reader/checkpoint_reader.h
  checkpoint/saver/saver.h
  checkpoint/state/checkpoint_state.h checkpoint/state/retention.h
  comm/communicator.h comm/mpi_communicator.h
  io/format/index.h io/fs/directory_lock.h
  io/transfer/chunk_source.h io/transfer/direct_file.h io/transfer/io_options.h
  layout/box.h layout/index_interval.h layout/layout.h layout/shard_map.h
  mesh/mesh.h)
foreach(h IN LISTS MESHCKPT_PUBLIC_HEADERS)
  get_filename_component(dir ${h} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${h}
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/meshckpt/${dir} COMPONENT dev)
endforeach()

install(TARGETS meshckpt_lib EXPORT meshckptTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET meshckpt_cli)
  # A shared build's tool finds libmeshckpt.so beside it in any prefix.
  if(BUILD_SHARED_LIBS)
    set_target_properties(meshckpt_cli PROPERTIES
      INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
  endif()
  install(TARGETS meshckpt_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT dev)
endif()

set(MESHCKPT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/meshckpt)
install(EXPORT meshckptTargets NAMESPACE meshckpt:: DESTINATION ${MESHCKPT_CMAKE_DIR}
        COMPONENT dev)
# Whether the installed library is static, so that the package finds the
# private dependencies a static library still has to link.
if(BUILD_SHARED_LIBS)
  set(MESHCKPT_STATIC OFF)
else()
  set(MESHCKPT_STATIC ON)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/meshckptConfig.cmake.in
  ${PROJECT_BINARY_DIR}/meshckptConfig.cmake INSTALL_DESTINATION ${MESHCKPT_CMAKE_DIR})
# 0.x: minor versions may break the API, so only the same minor matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/meshckptConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/meshckptConfig.cmake
              ${PROJECT_BINARY_DIR}/meshckptConfigVersion.cmake
        DESTINATION ${MESHCKPT_CMAKE_DIR} COMPONENT dev)

# pkg-config: abseil is public (in the headers); the rest is needed only to
# link the static library (Requires.private, Libs.private).
if(BUILD_SHARED_LIBS)
  set(MESHCKPT_PC_LIBS_PRIVATE "")
else()
  # LevelDB ships no pkg-config file.
  set(MESHCKPT_PC_LIBS_PRIVATE "-lleveldb -lpthread")
endif()
# The prefix relative to the .pc file, so that an unpacked or relocated
# tree works as well as an installed one.
set(MESHCKPT_PC_PREFIX "\${pcfiledir}")
string(REPLACE "/" ";" parts "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
foreach(part IN LISTS parts)
  string(APPEND MESHCKPT_PC_PREFIX "/..")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/meshckpt.pc.in ${PROJECT_BINARY_DIR}/meshckpt.pc
               @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/meshckpt.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/meshckpt COMPONENT dev)

# cpack -G DEB: one package with the library, headers, CMake and pkg-config
# files, the tool and the Python module. Depends: the -dev packages a
# consumer compiles and links against (abseil in the headers; the rest to
# link the static library), plus what dpkg-shlibdeps finds the tool and the
# Python extension need at run time.
set(CPACK_PACKAGE_NAME meshckpt)
set(CPACK_PACKAGE_VENDOR "meshckpt developers")
set(CPACK_PACKAGE_CONTACT "meshckpt developers <meshckpt@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "libabsl-dev, libprotobuf-dev, libhdf5-openmpi-dev, libopenmpi-dev, libxxhash-dev, libleveldb-dev, libsnappy-dev, pkg-config")
# The Python module (python/CMakeLists.txt installs it into Debian's
# dist-packages) is built for one python3 minor version and imports numpy;
# its collective side needs mpi4py, its read side does not.
if(MESHCKPT_PYTHON_FOUND)
  math(EXPR next_minor "${Python_VERSION_MINOR} + 1")
  string(APPEND CPACK_DEBIAN_PACKAGE_DEPENDS
    ", python3 (>= ${Python_VERSION_MAJOR}.${Python_VERSION_MINOR}),"
    " python3 (<< ${Python_VERSION_MAJOR}.${next_minor}), python3-numpy")
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3-mpi4py")
endif()
include(CPack)
