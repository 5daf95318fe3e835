"""Image data: files and folders, and the embedded default images that need no download."""

from compzoo.data.images import EMBEDDED, embedded_images, image_set, list_images, load_image, save_image

__all__ = ["EMBEDDED", "embedded_images", "image_set", "list_images", "load_image", "save_image"]
