"""Package files: one file of changes from one origin (see ``writer``, ``reader`` and ``manifest``).

with PackageWriter(path, origin="3615", sequence=7, kind="site", tables=schemas) as w:
    w.write("ventes", "U", row)
reader = open_package(path)          # verifies everything, or PackageError
for change in reader.changes(): ...
"""

from .manifest import FORMAT_VERSION, Change, Manifest, TableSchema
from .reader import PackageReader, open_package, read_manifest, sealed_digest
from .writer import PackageWriter

__all__ = [
    "FORMAT_VERSION",
    "Change",
    "Manifest",
    "PackageReader",
    "PackageWriter",
    "TableSchema",
    "open_package",
    "read_manifest",
    "sealed_digest",
]
