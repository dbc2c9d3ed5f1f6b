"""Linux Landlock through ctypes: confine file writes and TCP of the calling process for good.

Landlock is an unprivileged Linux security module (kernel 5.13+). Once a process restricts
itself, neither it nor its children can lift the restriction. The sandbox uses it to make file
writes outside the sample's temporary folder fail with ``EACCES`` at the kernel, to refuse TCP
``bind``/``connect`` (ABI 4+), and to forbid signalling processes outside the sandbox (ABI 6+).
Reads are left alone so that Python and the scientific stack can load.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Sequence

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights (uapi/linux/landlock.h).
_WRITE_FILE = 1 << 1
_REMOVE_DIR = 1 << 4
_REMOVE_FILE = 1 << 5
_MAKE_ALL = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The Landlock ABI the kernel offers; 0 when Landlock is missing or disabled."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"):
        return 0
    try:
        version = _libc().syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def restrict_writes(writable: Sequence[str], *, block_tcp: bool = True,
                    scope_signals: bool = True) -> list[str]:
    """Allow file changes only beneath ``writable`` paths, for this process and its children.

    Parameters
    ----------
    writable : sequence of str
        Folders (everything beneath them) or single files (e.g. ``/dev/null``) that stay
        writable.
    block_tcp : bool
        Also refuse every TCP bind and connect (needs ABI 4).
    scope_signals : bool
        Also refuse signals to processes outside this sandbox (needs ABI 6).

    Returns
    -------
    list of str
        What the kernel now enforces, e.g. ``["landlock-fs", "landlock-tcp"]``; empty when
        Landlock is unavailable (the caller falls back to weaker measures).
    """
    abi = abi_version()
    if abi < 1:
        return []
    libc = _libc()
    fs = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_ALL
    if abi >= 2:
        fs |= _REFER
    if abi >= 3:
        fs |= _TRUNCATE
    attr = _RulesetAttr(handled_access_fs=fs)
    size = 8
    enforced = ["landlock-fs"]
    if block_tcp and abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
        enforced.append("landlock-tcp")
    if scope_signals and abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        size = 24
        enforced.append("landlock-signals")
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        return []
    try:
        for path in writable:
            is_dir = os.path.isdir(path)
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                # A rule on a single file may hold only file rights.
                file_rights = _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)
                rule = _PathBeneathAttr(allowed_access=fs if is_dir else file_rights,
                                        parent_fd=fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH,
                                ctypes.byref(rule), 0) != 0:
                    return []
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return []
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
            return []
    finally:
        os.close(ruleset)
    return enforced
