"""The two renditions of an asset, by libvips where it reads the format and Pillow elsewhere."""
