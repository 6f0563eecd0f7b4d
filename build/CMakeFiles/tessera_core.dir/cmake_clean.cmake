file(REMOVE_RECURSE
  "CMakeFiles/tessera_core.dir/src/cache/lru.c.o"
  "CMakeFiles/tessera_core.dir/src/cache/lru.c.o.d"
  "CMakeFiles/tessera_core.dir/src/config.c.o"
  "CMakeFiles/tessera_core.dir/src/config.c.o.d"
  "CMakeFiles/tessera_core.dir/src/image/image.c.o"
  "CMakeFiles/tessera_core.dir/src/image/image.c.o.d"
  "CMakeFiles/tessera_core.dir/src/image/source.c.o"
  "CMakeFiles/tessera_core.dir/src/image/source.c.o.d"
  "CMakeFiles/tessera_core.dir/src/protocol/compat.c.o"
  "CMakeFiles/tessera_core.dir/src/protocol/compat.c.o.d"
  "CMakeFiles/tessera_core.dir/src/protocol/iiif.c.o"
  "CMakeFiles/tessera_core.dir/src/protocol/iiif.c.o.d"
  "CMakeFiles/tessera_core.dir/src/server/engine.c.o"
  "CMakeFiles/tessera_core.dir/src/server/engine.c.o.d"
  "CMakeFiles/tessera_core.dir/src/server/http.c.o"
  "CMakeFiles/tessera_core.dir/src/server/http.c.o.d"
  "CMakeFiles/tessera_core.dir/src/server/httpdate.c.o"
  "CMakeFiles/tessera_core.dir/src/server/httpdate.c.o.d"
  "CMakeFiles/tessera_core.dir/src/server/response.c.o"
  "CMakeFiles/tessera_core.dir/src/server/response.c.o.d"
  "CMakeFiles/tessera_core.dir/src/server/router.c.o"
  "CMakeFiles/tessera_core.dir/src/server/router.c.o.d"
  "CMakeFiles/tessera_core.dir/src/util/buf.c.o"
  "CMakeFiles/tessera_core.dir/src/util/buf.c.o.d"
  "CMakeFiles/tessera_core.dir/src/util/status.c.o"
  "CMakeFiles/tessera_core.dir/src/util/status.c.o.d"
  "CMakeFiles/tessera_core.dir/src/web/web.c.o"
  "CMakeFiles/tessera_core.dir/src/web/web.c.o.d"
  "libtessera_core.a"
  "libtessera_core.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/tessera_core.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
