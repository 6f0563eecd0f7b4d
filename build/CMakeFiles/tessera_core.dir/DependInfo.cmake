
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/cache/lru.c" "CMakeFiles/tessera_core.dir/src/cache/lru.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/cache/lru.c.o.d"
  "/work/main/src/config.c" "CMakeFiles/tessera_core.dir/src/config.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/config.c.o.d"
  "/work/main/src/image/image.c" "CMakeFiles/tessera_core.dir/src/image/image.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/image/image.c.o.d"
  "/work/main/src/image/source.c" "CMakeFiles/tessera_core.dir/src/image/source.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/image/source.c.o.d"
  "/work/main/src/protocol/compat.c" "CMakeFiles/tessera_core.dir/src/protocol/compat.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/protocol/compat.c.o.d"
  "/work/main/src/protocol/iiif.c" "CMakeFiles/tessera_core.dir/src/protocol/iiif.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/protocol/iiif.c.o.d"
  "/work/main/src/server/engine.c" "CMakeFiles/tessera_core.dir/src/server/engine.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/server/engine.c.o.d"
  "/work/main/src/server/http.c" "CMakeFiles/tessera_core.dir/src/server/http.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/server/http.c.o.d"
  "/work/main/src/server/httpdate.c" "CMakeFiles/tessera_core.dir/src/server/httpdate.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/server/httpdate.c.o.d"
  "/work/main/src/server/response.c" "CMakeFiles/tessera_core.dir/src/server/response.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/server/response.c.o.d"
  "/work/main/src/server/router.c" "CMakeFiles/tessera_core.dir/src/server/router.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/server/router.c.o.d"
  "/work/main/src/util/buf.c" "CMakeFiles/tessera_core.dir/src/util/buf.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/util/buf.c.o.d"
  "/work/main/src/util/status.c" "CMakeFiles/tessera_core.dir/src/util/status.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/util/status.c.o.d"
  "/work/main/src/web/web.c" "CMakeFiles/tessera_core.dir/src/web/web.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/web/web.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
