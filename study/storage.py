"""The media storage: Django's FileSystemStorage, writing every file whole or not at all.

Every file srmos keeps (candidates, imported datasets and results, uploaded zips and model
files) is written through ``default_storage.save``, so this one class makes them all atomic:
the content goes to a temporary name in the same folder (``.NAME.XXXXXXXX.part``, by Django's
own code, permissions included), is flushed to the disk and only then linked or renamed onto
its name (`sr_models.atomic.publish`). A crash, a killed worker or a full disk leaves no
zero-byte or truncated file at a final path, only at worst a ``.part`` file beside it (safe
to delete).

A full disk (ENOSPC, EDQUOT) raises `DiskFull`, an OSError whose message names the media
folder, the space free and needed, and how to resume; the code that knows the job refines it
(`DiskFull.advise`). Callers catch `DiskFull` and know nothing of files: a storage that keeps
them elsewhere (S3, through django-storages) can stand in ``STORAGES["default"]`` unchanged.
"""

import posixpath

from django.core.files.storage import FileSystemStorage

from sr_models.atomic import DiskFull, discard, is_disk_full, part_name, publish

__all__ = ["AtomicFileSystemStorage", "DiskFull"]


class AtomicFileSystemStorage(FileSystemStorage):
    def _save(self, name, content):
        folder, base = posixpath.split(name)
        part = posixpath.join(folder, part_name(base))
        try:
            part = super()._save(part, content)
            return self._publish(part, name)
        except BaseException as exc:
            discard(self.path(part))
            if is_disk_full(exc):
                raise DiskFull(self.location, name, _size(content), resume="try again") from exc
            raise

    def _publish(self, part, name):
        """Put the complete file `part` at `name`, or at a free variant of it when another
        writer took `name` meanwhile (Django's rule: save() never overwrites unless told)."""
        while True:
            try:
                publish(self.path(part), self.path(name), overwrite=self._allow_overwrite)
            except FileExistsError:
                name = self.get_available_name(name)
            else:
                return name


def _size(content):
    try:
        return content.size
    except (AttributeError, OSError, ValueError):
        return None
