"""Containers: images built from Debian's packages, and the Docker daemon they run on."""

from opsproof.containers.images import ImageError, ImageSpec, docker_client, ensure_image

__all__ = ["ImageError", "ImageSpec", "docker_client", "ensure_image"]
