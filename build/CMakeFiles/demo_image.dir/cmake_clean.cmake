file(REMOVE_RECURSE
  "CMakeFiles/demo_image"
  "demo/demo.tif"
)

# Per-language clean rules from dependency scanning.
foreach(lang )
  include(CMakeFiles/demo_image.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
