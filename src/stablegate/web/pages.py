"""Headers, templates and static files of every HTML page the gateway serves (the cashier, the
dashboard, the API reference).

The pages load nothing from elsewhere and run no inline code: the policy allows only the
gateway's own scripts, styles and images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def content_security_policy(image_origin: str | None = None) -> str:
    """The policy, allowing images from one more https origin (a merchant's logo) if given."""
    if image_origin is None:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace(
        "img-src 'self' data:", f"img-src 'self' data: {image_origin}"
    )


def page_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        **(extra or {}),
    }


def page_templates(package: str, *fallbacks: str) -> Environment:
    """A package's ``templates/`` folder (then each fallback package's, for a name it does not
    have), autoescaped (every field a merchant or customer controls is escaped), failing on an
    undefined name instead of rendering it empty."""
    loaders = [PackageLoader(name, "templates") for name in (package, *fallbacks)]
    return Environment(
        loader=loaders[0] if not fallbacks else ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_MEDIA_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}


@dataclass(frozen=True)
class StaticFile:
    content: bytes
    media_type: str
    version: str  # a hash of the content: URLs carry it, so the file can be cached for good


def load_static(package: str, names: Iterable[str]) -> dict[str, StaticFile]:
    """The named CSS and script files of a package's ``static/`` folder, by name."""
    folder = resources.files(package).joinpath("static")
    files = {}
    for name in names:
        content = folder.joinpath(name).read_bytes()
        media_type = _MEDIA_TYPES[name.rsplit(".", 1)[1]]
        files[name] = StaticFile(content, media_type, hashlib.sha256(content).hexdigest()[:12])
    return files
