"""Typed column values: kinds, canonical form for hashing, JSON form for packages.

Every column has a ``Kind``. Drivers return the same value in different shapes;
``normalise`` (``convert``) maps them to the kind's Python type, ``canonical``
(``canonical``) to one byte string per logical value so that an unchanged row always hashes
the same, ``row_hash``/``row_hasher`` (``hashing``) digest rows, ``to_json``/``from_json``
(``json_form``) carry values exactly through a package. docs/TYPES.md tells the whole story
per kind. This package is layer 0: everything imports its names from ``synchro.values``.
"""

from synchro.values.canonical import canonical, datetime_text, json_canonical
from synchro.values.convert import (
    as_bool,
    as_date,
    as_datetime,
    as_decimal,
    as_time,
    as_uuid,
    normalise,
    row_normaliser,
)
from synchro.values.hashing import row_hash, row_hasher, row_sameness
from synchro.values.json_form import (
    carried_form_is_normal,
    from_json,
    json_text_encoder,
    row_to_json,
    to_json,
)
from synchro.values.kinds import EXACT_CONTEXT, KINDS, Kind

__all__ = [
    "EXACT_CONTEXT",
    "KINDS",
    "Kind",
    "as_bool",
    "as_date",
    "as_datetime",
    "as_decimal",
    "as_time",
    "as_uuid",
    "canonical",
    "carried_form_is_normal",
    "datetime_text",
    "from_json",
    "json_canonical",
    "json_text_encoder",
    "normalise",
    "row_hash",
    "row_hasher",
    "row_normaliser",
    "row_sameness",
    "row_to_json",
    "to_json",
]
