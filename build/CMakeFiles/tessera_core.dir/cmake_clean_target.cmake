file(REMOVE_RECURSE
  "libtessera_core.a"
)
