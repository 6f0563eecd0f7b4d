# Runs at install time (see CMakeLists.txt): fills the templates with the paths of the prefix
# being installed to, and installs them. file(INSTALL) honours DESTDIR, as CPack uses it.
include(GNUInstallDirs)

set(TESSERA_BINARY "${CMAKE_INSTALL_FULL_BINDIR}/tessera")
set(TESSERA_CONF "${CMAKE_INSTALL_FULL_SYSCONFDIR}/tessera/tessera.conf")
set(TESSERA_IMAGES "${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/tessera/images")
set(TESSERA_DEMO "${CMAKE_INSTALL_FULL_DATADIR}/tessera/demo.tif")
set(TESSERA_WEB "${CMAKE_INSTALL_FULL_DATADIR}/tessera/web")
set(TESSERA_DOC "${CMAKE_INSTALL_FULL_DOCDIR}")
# systemd's LogsDirectory= is always below /var/log, whatever the prefix.
set(TESSERA_LOGS "/var/log/tessera")
if(IS_ABSOLUTE "${TESSERA_SYSTEMD_UNIT_DIR}")
  set(unit_dir "${TESSERA_SYSTEMD_UNIT_DIR}")
else()
  set(unit_dir "${CMAKE_INSTALL_PREFIX}/${TESSERA_SYSTEMD_UNIT_DIR}")
endif()
set(TESSERA_UNIT "${unit_dir}/tessera.service")

# One staging folder per destination, so that installations to two places (cpack's, and
# cmake --install's) may run at once from one build tree.
string(MD5 destination "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
set(TESSERA_STAGE_DIR "${TESSERA_STAGE_DIR}/${destination}")
file(REMOVE_RECURSE "${TESSERA_STAGE_DIR}")
foreach(t tessera.service tessera.conf tessera.1)
  configure_file("${TESSERA_PACKAGING_DIR}/${t}.in" "${TESSERA_STAGE_DIR}/${t}" @ONLY)
endforeach()
# Debian compresses manual pages (policy 12.1); man reads both forms. -n: no name or time in the
# header, so the package's bytes depend on the text alone.
find_program(GZIP_EXECUTABLE gzip)
set(man "${TESSERA_STAGE_DIR}/tessera.1")
if(GZIP_EXECUTABLE)
  execute_process(COMMAND "${GZIP_EXECUTABLE}" -9n "${man}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip ${man} failed")
  endif()
  set(man "${man}.gz")
endif()
file(MAKE_DIRECTORY "${TESSERA_STAGE_DIR}/images")

file(INSTALL "${TESSERA_STAGE_DIR}/tessera.service" DESTINATION "${unit_dir}"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# An installation over an earlier one keeps the administrator's configuration (dpkg does the
# same for its conffile, asking first).
if(EXISTS "$ENV{DESTDIR}${TESSERA_CONF}")
  message(STATUS "Keeping the existing ${TESSERA_CONF}")
else()
  file(INSTALL "${TESSERA_STAGE_DIR}/tessera.conf"
       DESTINATION "${CMAKE_INSTALL_FULL_SYSCONFDIR}/tessera"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
file(INSTALL "${man}" DESTINATION "${CMAKE_INSTALL_FULL_MANDIR}/man1"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# An empty image root, so that the service starts as installed (serving the demo).
file(INSTALL "${TESSERA_STAGE_DIR}/images" DESTINATION "${CMAKE_INSTALL_FULL_LOCALSTATEDIR}/lib/tessera"
     DIR_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
     WORLD_EXECUTE)
