"""File metadata, as E2B's envd 0.6.2 keeps it: user-defined key/value pairs stored on the file
itself as `user.e2b.<key>` extended attributes, so they live and die with the file: a rename keeps
them, an overwrite (a new file renamed over the old one) replaces them, a snapshot copies them, and
code in the sandbox may set or read them with os.setxattr/getxattr. files.op_write applies the
metadata of an upload to its temporary file; files.entry reads it back for stat, list, move and
write answers. Both run on the request's thread inside credentials.run_as, so the kernel checks the
sandbox user's rights on the file."""

import os
import re

from .protocol import AgentError

PREFIX = "user.e2b."
MAX_KEY_BYTES = 246     # the VFS's 255-byte xattr name minus the prefix
MAX_TOTAL_BYTES = 4096  # keys (each with the prefix) plus values, per file

_KEY = re.compile(r"[a-z0-9!#$%&'*+\-.^_`|~]+\Z")
_VALUE = re.compile(r"[\x20-\x7e]*\Z")


def size(key, value):
    """What one pair costs against MAX_TOTAL_BYTES."""
    return len(PREFIX) + len(key.encode()) + len(value.encode())


def from_request(req):
    """The write request's "metadata": a dict of lowercase HTTP-token keys to printable-ASCII
    values within the limits (the server checks the same before it sends; this is the agent's own
    guard). An absent or empty one is {}."""
    metadata = req.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise AgentError("invalid_argument", "metadata must be an object")
    total = 0
    for key, value in metadata.items():
        if not _KEY.match(key) or len(key) > MAX_KEY_BYTES:
            raise AgentError("invalid_argument", "metadata key %r must be 1 to %d lowercase HTTP token characters"
                             % (key[:64], MAX_KEY_BYTES))
        if not isinstance(value, str) or not _VALUE.match(value):
            raise AgentError("invalid_argument", "metadata value of %r must be printable US-ASCII" % key)
        total += size(key, value)
    if total > MAX_TOTAL_BYTES:
        raise AgentError("invalid_argument", "metadata takes %d bytes, more than %d" % (total, MAX_TOTAL_BYTES))
    return metadata


def apply(fd, metadata, path):
    """Stores metadata on the (new, still private) file open as fd."""
    for key, value in metadata.items():
        try:
            os.setxattr(fd, PREFIX + key, value.encode())
        except OSError as e:
            if e.errno in (95, 61):  # EOPNOTSUPP, ENODATA: a filesystem without user xattrs (gVisor's gofer)
                raise AgentError("invalid_argument", "cannot store metadata on %s: its filesystem has no user "
                                 "extended attributes (file metadata needs them)" % path)
            if e.errno in (7, 28):  # E2BIG, ENOSPC: the filesystem's own xattr budget
                raise AgentError("invalid_argument", "cannot store metadata on %s: the filesystem refused its "
                                 "size (%s)" % (path, e.strerror))
            raise


def read(path):
    """The `user.e2b.*` attributes of what path leads to, prefix stripped, or None when it has none
    (or they cannot be read: no xattr support, no read permission, a dangling link). Attributes
    set by code in the sandbox are hostile input: names with an empty key are skipped, values are
    decoded leniently, and the whole is capped at MAX_TOTAL_BYTES (pairs past it are left out), so
    an answer's size stays bounded per entry. Names that are not UTF-8 are left out too."""
    try:
        names = os.listxattr(path)
    except OSError:
        return None
    found = None
    total = 0
    for name in sorted(names):
        if not name.startswith(PREFIX) or len(name) == len(PREFIX):
            continue
        try:
            raw = os.getxattr(path, name)
        except OSError:
            continue  # removed meanwhile, or not readable
        if len(raw) > MAX_TOTAL_BYTES:
            continue
        key = name[len(PREFIX):]
        try:
            key.encode()
        except UnicodeEncodeError:
            continue  # a name that is not UTF-8 (surrogate-escaped): no JSON string holds it
        value = raw.decode("utf-8", "replace")
        cost = size(key, value)
        if total + cost > MAX_TOTAL_BYTES:
            continue
        total += cost
        if found is None:
            found = {}
        found[key] = value
    return found
