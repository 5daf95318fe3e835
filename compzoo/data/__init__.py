"""Image data: files and folders, label maps, and the embedded default images that need no download."""

from compzoo.data.images import (CAMVID_CLASSES, CAMVID_VOID, EMBEDDED, check_png_path, embedded_images, image_set, label_map_set, list_images,
                                 load_image, load_label_map, png_bytes, save_image, write_atomically)

__all__ = ["CAMVID_CLASSES", "CAMVID_VOID", "EMBEDDED", "check_png_path", "embedded_images", "image_set", "label_map_set", "list_images",
           "load_image", "load_label_map", "png_bytes", "save_image", "write_atomically"]
