"""An image's tag is a content hash of what goes into it: the Docker image store is the cache, and a changed package
list can never reuse a stale image."""

from __future__ import annotations

from opsproof.containers.images import ImageSpec


def test_the_tag_follows_the_recipe_not_the_order_of_packages() -> None:
    base = ImageSpec(packages=("postgresql-15", "redis-server"))
    assert base.reference == ImageSpec(packages=("redis-server", "postgresql-15")).reference
    assert base.reference.startswith("opsproof/debian:bookworm-")
    others = {ImageSpec(packages=("postgresql-15",)), ImageSpec(packages=base.packages, suite="trixie"),
              ImageSpec(packages=base.packages, mirror="http://mirror.example/debian")}
    assert base.reference not in {o.reference for o in others}
    assert len({o.reference for o in others}) == 3
