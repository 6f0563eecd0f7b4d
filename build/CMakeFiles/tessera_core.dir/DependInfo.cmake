
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/cache/lru.c" "CMakeFiles/tessera_core.dir/src/cache/lru.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/cache/lru.c.o.d"
  "/work/main/src/config.c" "CMakeFiles/tessera_core.dir/src/config.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/config.c.o.d"
  "/work/main/src/encode/encode.c" "CMakeFiles/tessera_core.dir/src/encode/encode.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/encode/encode.c.o.d"
  "/work/main/src/encode/jpeg.c" "CMakeFiles/tessera_core.dir/src/encode/jpeg.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/encode/jpeg.c.o.d"
  "/work/main/src/encode/png.c" "CMakeFiles/tessera_core.dir/src/encode/png.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/encode/png.c.o.d"
  "/work/main/src/encode/webp.c" "CMakeFiles/tessera_core.dir/src/encode/webp.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/encode/webp.c.o.d"
  "/work/main/src/image/image.c" "CMakeFiles/tessera_core.dir/src/image/image.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/image/image.c.o.d"
  "/work/main/src/image/jpeg.c" "CMakeFiles/tessera_core.dir/src/image/jpeg.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/image/jpeg.c.o.d"
  "/work/main/src/image/png.c" "CMakeFiles/tessera_core.dir/src/image/png.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/image/png.c.o.d"
  "/work/main/src/image/reader.c" "CMakeFiles/tessera_core.dir/src/image/reader.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/image/reader.c.o.d"
  "/work/main/src/image/source.c" "CMakeFiles/tessera_core.dir/src/image/source.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/image/source.c.o.d"
  "/work/main/src/image/tiff.c" "CMakeFiles/tessera_core.dir/src/image/tiff.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/image/tiff.c.o.d"
  "/work/main/src/protocol/compat.c" "CMakeFiles/tessera_core.dir/src/protocol/compat.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/protocol/compat.c.o.d"
  "/work/main/src/protocol/iiif.c" "CMakeFiles/tessera_core.dir/src/protocol/iiif.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/protocol/iiif.c.o.d"
  "/work/main/src/protocol/iiif_info.c" "CMakeFiles/tessera_core.dir/src/protocol/iiif_info.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/protocol/iiif_info.c.o.d"
  "/work/main/src/protocol/iiif_parse.c" "CMakeFiles/tessera_core.dir/src/protocol/iiif_parse.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/protocol/iiif_parse.c.o.d"
  "/work/main/src/protocol/iiif_plan.c" "CMakeFiles/tessera_core.dir/src/protocol/iiif_plan.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/protocol/iiif_plan.c.o.d"
  "/work/main/src/render/render.c" "CMakeFiles/tessera_core.dir/src/render/render.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/render/render.c.o.d"
  "/work/main/src/render/resample.c" "CMakeFiles/tessera_core.dir/src/render/resample.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/render/resample.c.o.d"
  "/work/main/src/render/transform.c" "CMakeFiles/tessera_core.dir/src/render/transform.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/render/transform.c.o.d"
  "/work/main/src/server/admission.c" "CMakeFiles/tessera_core.dir/src/server/admission.c.o" "gcc" "CMakeFiles/tessera_core.dir/src/server/admission.c.o.d"
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
