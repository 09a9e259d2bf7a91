# Install rules, included by the top-level CMakeLists.txt:
#   lib/lib${CAE_NAME}.so.* and .a   (CAE_NAME: cae, or cae-double)
#   include/cae/*.h                  (shared by both builds; version.h generated)
#   lib/pkgconfig/${CAE_NAME}.pc     (relocatable: prefix from ${pcfiledir})
#   lib/cmake/${CAE_NAME}/           (find_package(${CAE_NAME}): cae::cae, cae::cae_static)
#   bin/${CAE_NAME}                  (the command)
include(CMakePackageConfigHelpers)

set_target_properties(cae_shared PROPERTIES EXPORT_NAME cae CAE_REAL ${CAE_REAL}
  EXPORT_PROPERTIES CAE_REAL)
set_target_properties(cae_static PROPERTIES EXPORT_NAME cae_static CAE_REAL ${CAE_REAL}
  EXPORT_PROPERTIES CAE_REAL)
install(TARGETS cae_static cae_shared EXPORT cae_targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# cae/mpi.h (with libcae_mpi.a) only from a build with MPI.
if(CAE_WITH_MPI)
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/cae DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.h")
else()
  install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/cae DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.h" PATTERN "mpi.h" EXCLUDE)
endif()
install(FILES ${CMAKE_BINARY_DIR}/include/cae/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cae)

# ------------------------------------------------------------ pkg-config
# ${prefix} from the .pc file's directory: one "../" per component of
# LIBDIR/pkgconfig. An absolute LIBDIR or INCLUDEDIR is used as it is.
set(CAE_PC_UP "..")
string(REPLACE "/" ";" _cae_parts "${CMAKE_INSTALL_LIBDIR}")
foreach(_p ${_cae_parts})
  string(APPEND CAE_PC_UP "/..")
endforeach()
foreach(_d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_d}}")
    set(CAE_PC_${_d} "${CMAKE_INSTALL_${_d}}")
  else()
    set(CAE_PC_${_d} "\${prefix}/${CMAKE_INSTALL_${_d}}")
  endif()
endforeach()
set(CAE_PC_CFLAGS "")
if(CAE_DOUBLE)
  set(CAE_PC_CFLAGS " -DCAE_REAL_DOUBLE")
endif()
# Static linking: libxsmm's order, its no-BLAS stub after it, then the rest.
get_filename_component(_cae_xsmm_dir ${XSMM_LIB} DIRECTORY)
set(CAE_PC_LIBS_PRIVATE "-L${_cae_xsmm_dir}")
if(XSMMEXT_LIB)
  string(APPEND CAE_PC_LIBS_PRIVATE " -lxsmmext")
endif()
string(APPEND CAE_PC_LIBS_PRIVATE " -lxsmm -lxsmmnoblas -lz -fopenmp -lpthread -lrt -ldl -lm")
configure_file(${CMAKE_SOURCE_DIR}/cmake/cae.pc.in ${CMAKE_BINARY_DIR}/${CAE_NAME}.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/${CAE_NAME}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --------------------------------------------------------- CMake package
set(_cae_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/${CAE_NAME})
if(CAE_DOUBLE)
  set(CAE_REAL_DEFINE_DOC "-DCAE_REAL_DOUBLE")
else()
  set(CAE_REAL_DEFINE_DOC "no define (float)")
endif()
install(EXPORT cae_targets NAMESPACE cae:: FILE ${CAE_NAME}Targets.cmake
  DESTINATION ${_cae_cmakedir})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/caeConfig.cmake.in
  ${CMAKE_BINARY_DIR}/${CAE_NAME}Config.cmake INSTALL_DESTINATION ${_cae_cmakedir})
# 0.x: minor versions may break the API.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/${CAE_NAME}ConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/${CAE_NAME}Config.cmake
              ${CMAKE_BINARY_DIR}/${CAE_NAME}ConfigVersion.cmake
  DESTINATION ${_cae_cmakedir})
