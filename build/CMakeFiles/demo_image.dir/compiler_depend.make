# Empty custom commands generated dependencies file for demo_image.
# This may be replaced when dependencies are built.
