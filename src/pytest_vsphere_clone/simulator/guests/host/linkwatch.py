"""Watching a guest interface's administrative state through rtnetlink.

The simulated NIC driver of an instant clone must notice ``ip link set eth0 down``
inside the guest. A netlink socket opened inside the guest's network namespace
delivers those events to the GuestHost's event loop - no process per guest.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading
from collections.abc import Callable
from functools import cache

from .events import EventLoopThread

_CLONE_NEWNET = 0x40000000
_RTMGRP_LINK = 0x1
_RTM_NEWLINK = 16
_IFF_UP = 0x1
_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def netns_socket(netns_path: str, family: int, type_: int, proto: int = 0) -> socket.socket:
    """Create a socket inside another network namespace.

    setns(CLONE_NEWNET) affects only the calling thread, so a throw-away thread
    enters the namespace, creates the socket (which stays bound to it) and ends.
    """
    sockets: list[socket.socket] = []
    errors: list[OSError] = []

    def create() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc().setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns_path}): {os.strerror(err)}")
            finally:
                os.close(fd)
            sockets.append(socket.socket(family, type_, proto))
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=create, name="pvcs-setns")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return sockets[0]


def link_went_down(data: bytes, ifindex: int) -> bool:
    """True if a batch of rtnetlink messages reports interface ``ifindex`` administratively down."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _, _, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        if msg_type == _RTM_NEWLINK and offset + _NLMSGHDR.size + _IFINFOMSG.size <= len(data):
            _, _, index, flags, _ = _IFINFOMSG.unpack_from(data, offset + _NLMSGHDR.size)
            if index == ifindex and not flags & _IFF_UP:
                return True
        offset += (length + 3) & ~3  # messages are 4-byte aligned
    return False


class LinkDownWatcher:
    """Calls ``on_down`` (in the loop thread) the first time an interface is set down."""

    def __init__(self, events: EventLoopThread, netns_path: str, ifindex: int, on_down: Callable[[], None]):
        self._events = events
        self._ifindex = ifindex
        self._on_down = on_down
        self._sock = netns_socket(netns_path, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.setblocking(False)
        self._sock.bind((0, _RTMGRP_LINK))
        self._events.call(self._events.loop.add_reader, self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:  # e.g. ENOBUFS after an event burst: the state must be re-read
            data = b""
        if link_went_down(data, self._ifindex):
            self._close()
            self._on_down()

    def _close(self) -> None:
        if self._sock.fileno() >= 0:
            self._events.loop.remove_reader(self._sock.fileno())
            self._sock.close()

    def close(self) -> None:
        """Stop watching; callable from any thread."""
        self._events.call(self._close)
