"""Package files: one file of changes from one origin (see ``format`` and ``manifest``).

with PackageWriter(path, origin="3615", sequence=7, kind="site", tables=schemas) as w:
    w.write("ventes", "U", row)
reader = open_package(path)          # verifies everything, or PackageError
for change in reader.changes(): ...
"""

from .format import PackageReader, PackageWriter, open_package, read_manifest
from .manifest import FORMAT_VERSION, Change, Manifest, TableSchema

__all__ = [
    "FORMAT_VERSION",
    "Change",
    "Manifest",
    "PackageReader",
    "PackageWriter",
    "TableSchema",
    "open_package",
    "read_manifest",
]
