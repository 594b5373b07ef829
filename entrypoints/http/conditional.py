"""Conditional requests (RFC 9110 §13): ETags from versions, If-Match, If-None-Match.

An entity's ETag is its version, quoted: the same version always has the same
representation, so the tag is strong.
"""

import re
from typing import Annotated, Final

from fastapi import Header, Response

_ENTITY_TAG: Final = re.compile(r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"')

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="Change only if the entity's ETag is one of these; else 412.",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="Answer 304 without a body if the entity's ETag is one of these.",
    ),
]


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> list[tuple[bool, str]]:
    """(weak, opaque tag) for each entity tag in a list; junk is skipped."""
    return [(bool(weak), tag) for weak, tag in _ENTITY_TAG.findall(header)]


def expected_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions an If-Match allows, or None to allow any ("*" or no header).

    The comparison is strong, so weak tags match nothing, and neither does a tag
    that is not one of ours: an empty set, which no entity's version is in.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    return frozenset(
        int(tag) for weak, tag in _tags(if_match) if not weak and _is_ours(tag)
    )


def _is_ours(tag: str) -> bool:
    """Is `tag` exactly as we write a version? ("02" is another tag than "2".)"""
    return (
        tag.isascii()
        and tag.isdecimal()
        and len(tag) <= 19
        and (tag == "0" or not tag.startswith("0"))
    )


def not_modified(if_none_match: str | None, version: int) -> bool:
    """Does If-None-Match name this version (weakly compared), or "*"?"""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag == str(version) for _, tag in _tags(if_none_match))


def not_modified_response(version: int) -> Response:
    return Response(status_code=304, headers={"ETag": etag(version)})
