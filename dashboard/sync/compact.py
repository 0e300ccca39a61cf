"""Both sides' users as a plan holds them while it decides: only what the template and the
match read, packed. Parsed, a OneLogin record and a Workato resource take several KB each,
and a plan of 100,000 users held both sides' at once (README, "Performance"); packed, a
Workato user takes about 200 bytes, its key included, and a OneLogin user about 15.

- `WorkatoUsers`: Workato's users by match key (userName, case-folded), each with the plan's
  marks (decided; taken over by a renamed OneLogin user): the JSON of the ScimUser's fields
  and of the resource's attributes the template sets (for a server without PATCH, all but
  meta and groups: a PUT sends them back), compressed.
- `Ids`: who holds the app, as a sorted array of OneLogin ids.
- `OneLoginUsers`: OneLogin's users in the order read, each page of them compressed JSON of
  the fields the template, the match and the people table read.
"""

from __future__ import annotations

import json
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dashboard.connections.scim_models import ScimUser
from dashboard.sync.compare import NOT_COMPARED
from dashboard.sync.render import user_fields

DECIDED, RENAMED = 1, 2  # a Workato user's marks: decided for; taken over by a rename
# What the planner reads of every OneLogin user, whatever the template says.
ONELOGIN_FIELDS = frozenset({"id", "status", "username", "email", "firstname", "lastname"})
PAGE = 1000  # OneLogin users compressed together


class WorkatoUsers:
    """Workato's users by match key, in the order listed (a later duplicate replaces an
    earlier one, as a dict would), each held as one bytes object: its marks, then its
    packed JSON deflated against the first user's (users look alike: the same attribute
    names, domain and role values, so ~350 bytes of JSON become ~90)."""

    def __init__(self, template: Mapping[str, Any], *, patch: bool) -> None:
        compared = {k.lower() for k in template} - NOT_COMPARED
        self._keep = frozenset(compared | {"name", "emails"})  # a PATCH server's resource
        self._put = not patch
        self._held: dict[str, bytes] = {}
        # Primary emails that are not their user's own key: an orphan is looked up by both.
        self._emails: set[str] = set()
        self._zdict = b""

    @classmethod
    def of(
        cls, users: Iterable[ScimUser], template: Mapping[str, Any], *, patch: bool
    ) -> WorkatoUsers:
        held = cls(template, patch=patch)
        for user in users:
            held.add(user)
        return held

    def add(self, user: ScimUser) -> None:
        key = user.user_name.casefold()
        self._held[key] = b"\0" + self._pack(user)
        email = (user.primary_email or "").casefold()
        if email and email != key:
            self._emails.add(email)

    def __contains__(self, key: str) -> bool:
        return key in self._held

    def __len__(self) -> int:
        return len(self._held)

    def get(self, key: str) -> ScimUser | None:
        held = self._held.get(key)
        return None if held is None else self._unpack(held)

    def marks(self, key: str) -> int:
        held = self._held.get(key)
        return held[0] if held is not None else 0

    def mark(self, key: str, mark: int) -> None:
        held = self._held[key]
        self._held[key] = bytes((held[0] | mark,)) + held[1:]

    def unmarked(self) -> Iterator[ScimUser]:
        """The users no OneLogin user was decided for or took over, in the order listed."""
        for held in self._held.values():
            if not held[0]:
                yield self._unpack(held)

    def wants_alias(self, alias: str) -> bool:
        """Whether an orphan could still be looked up by this name: the key of a user not
        decided for yet, or another's primary email."""
        held = self._held.get(alias)
        return (held is not None and not held[0]) or alias in self._emails

    # --- packing -------------------------------------------------------------------------

    def _pack(self, user: ScimUser) -> bytes:
        """The ScimUser as JSON: its fields (not its version: a plan sends no If-Match) and
        the attributes the planner compares or sends back."""
        raw = user.raw
        if self._put:  # a PUT sends the resource back: all of it but what it may not send
            kept = {k: v for k, v in raw.items() if k not in ("meta", "groups")}
        else:
            kept = {k: v for k, v in raw.items() if k.lower() in self._keep}
        # name and emails are the resource's own (scim_models.read_user): kept once.
        name = None if user.name == (raw.get("name") or {}) else user.name
        emails = None if user.emails == (raw.get("emails") or []) else user.emails
        fields = [user.id, user.user_name, user.active, user.roles, kept, name, emails]
        packed = json.dumps(fields, separators=(",", ":")).encode()
        self._zdict = self._zdict or packed
        deflate = zlib.compressobj(6, zlib.DEFLATED, -11, 4, zlib.Z_DEFAULT_STRATEGY, self._zdict)
        return deflate.compress(packed) + deflate.flush()

    def _unpack(self, held: bytes) -> ScimUser:
        inflate = zlib.decompressobj(-11, self._zdict)
        packed = inflate.decompress(held[1:]) + inflate.flush()
        id_, user_name, active, roles, raw, name, emails = json.loads(packed)
        return ScimUser(
            id=id_,
            user_name=user_name,
            active=active,
            name=raw.get("name") or {} if name is None else name,
            emails=raw.get("emails") or [] if emails is None else emails,
            roles=roles,
            version=None,
            raw=raw,
        )


class Ids:
    """OneLogin ids (who holds the app) as a sorted array: 8 bytes each, where a set of
    ints takes ~80."""

    def __init__(self, ids: Iterable[int]) -> None:
        self._ids = array("q", sorted(set(ids)))

    def __contains__(self, user_id: object) -> bool:
        i = bisect_left(self._ids, user_id)
        return i < len(self._ids) and self._ids[i] == user_id

    def __len__(self) -> int:
        return len(self._ids)


class OneLoginUsers:
    """OneLogin's users as read, kept to the fields named, a page at a time compressed;
    iterating gives them back in order."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Mapping[str, Any]],
        role_fields: Iterable[str] = (),
    ) -> None:
        fields, custom = user_fields(template, parameters)
        self._fields = ONELOGIN_FIELDS | fields
        self._custom = frozenset(custom) | frozenset(role_fields)
        self._pages: list[bytes] = []
        self._page: list[dict[str, Any]] = []

    def add(self, user: Mapping[str, Any]) -> None:
        kept = {k: v for k, v in user.items() if k in self._fields}
        custom = user.get("custom_attributes")
        if isinstance(custom, Mapping):
            kept["custom_attributes"] = {k: v for k, v in custom.items() if k in self._custom}
        elif "custom_attributes" in user:
            kept["custom_attributes"] = custom
        self._page.append(kept)
        if len(self._page) >= PAGE:
            self._close_page()

    def _close_page(self) -> None:
        if self._page:
            packed = json.dumps(self._page, separators=(",", ":")).encode()
            self._pages.append(zlib.compress(packed, 1))
            self._page = []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._close_page()
        for page in self._pages:
            yield from json.loads(zlib.decompress(page))
