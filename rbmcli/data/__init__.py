"""Images in: the datasets and their on-disk formats, the built-in colored digits, image files, and the map from pixels to visible values."""
