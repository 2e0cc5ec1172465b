#!/usr/bin/python3
"""lazyfs: a pass-through FUSE filesystem that keeps unsynced file data in memory and drops it on command.

kill -9 of a process keeps everything it wrote: the kernel's page cache holds it and writes it out later.
Only a power loss (or a kernel crash) loses what was written but not fsynced. This filesystem makes that
testable without a machine to unplug, the way Jepsen's LazyFS does (https://github.com/dsrhaslab/lazyfs):
mount it over a backing folder, run the program under test with its data folder on the mount, kill the
program with SIGKILL, then send `drop`: every write that no fsync covered is gone, as after a power cut.

    /usr/bin/python3 lazyfs.py --backing DIR --mount MNT --control SOCKET [--max-pending-bytes N]

Run it with Debian's /usr/bin/python3 (package python3-fusepy, imported as `fusepy`; it needs libfuse2
and /dev/fuse, and root unless /dev/fuse and fusermount are open to the user). It runs in the
foreground until MNT is unmounted (`umount MNT` or `fusermount -u MNT`), it gets SIGTERM/SIGINT, or its
standard input reaches end of file: the parent holds the pipe, so a parent that dies, even by SIGKILL,
takes the mount with it instead of leaving it behind.

Semantics (what survives `drop`)
- File data is page cache: a write() goes into memory, per file (per inode, so a rename keeps it and a
  file opened several times shares it); reads through any handle see it, overlaid on the backing file's
  bytes, at any offset and across synced and unsynced extents; stat shows the size it makes.
- fsync() or fdatasync() of a file (through any handle of it) writes all of that file's pending data to
  the backing file and then fdatasyncs the backing file; only then does the call return. The control
  command `sync` does the same for every file (sync(2) and syncfs(2) do not reach a FUSE filesystem of
  the high-level API, so programs that rely on them get no durability here: a stated limit).
- Growing a file (a write past its end, or a truncate to a larger size) is data: pending until fsync.
  Shrinking a file (truncate to a smaller size) cuts the backing file at once and clips pending data.
- Metadata is durable at once: create, mkdir, rmdir, unlink, rename, link, symlink, chmod, chown and
  utimens pass straight through to the backing folder. A real filesystem may lose an unsynced rename or
  create on power loss; this one never does. That is the stated limit: only file data is cached, so a
  test here shows the loss of unsynced data, not of unsynced directory entries. fsync of a directory
  passes through (and is counted).
- fallocate is not implemented (fusepy 3.0.1 has no hook for it): the kernel answers EOPNOTSUPP, and
  programs fall back to plain writes (RocksDB ignores a failed preallocation).
- mmap of a file is not supported (the mount uses direct_io, so that the kernel's own page cache never
  keeps a copy of dropped data; RocksDB does not mmap by default).
- Memory is bounded: when the pending data of all files exceeds --max-pending-bytes (default 512 MiB),
  the file with the most pending bytes is written back to the backing file (as a kernel flushes dirty
  pages under memory pressure), which can only make more data survive, never less; `written_back_bytes`
  counts it.
- The control socket (a Unix socket at --control, one command per line, one JSON line per answer):
    stats  -> counters: writes, bytes_written, fsyncs, fdatasyncs, dir_fsyncs, bytes_synced,
              written_back_bytes, drops, bytes_dropped, files_dropped, pending_bytes, pending_files,
              open_handles, mounted
    drop   -> drops every unsynced write of every file (the power loss); answers the counters, with
              last_drop_bytes, last_drop_files and last_drop_paths (bytes per file) for this drop
    sync   -> writes every file's pending data back and syncs it (what sync(2) would do)
  Send `drop` only once the program under test is dead and open_handles is 0: a write still in flight
  from a dying process could otherwise land after the drop.
"""

import argparse
import bisect
import errno
import json
import os
import socket
import stat
import subprocess
import sys
import threading

import fusepy


class Pending:
    """The unsynced state of one file (one inode): extents of data not yet in the backing file, and the
    size the file has with them. Extents are kept sorted and disjoint (adjacent or overlapping writes
    merge), so an appending writer keeps one extent that grows in place."""

    __slots__ = ("fd", "starts", "bufs", "size", "nbytes")

    def __init__(self, fd, size):
        self.fd = fd  # our own dup of a writable backing fd: keeps the inode alive while data is pending
        self.starts = []
        self.bufs = []
        self.size = size
        self.nbytes = 0

    def write(self, off, data):
        end = off + len(data)
        starts, bufs = self.starts, self.bufs
        if end > self.size:
            self.size = end
        if starts and starts[-1] + len(bufs[-1]) == off:  # an append to the last extent: the common case
            bufs[-1] += data
            self.nbytes += len(data)
            return
        # first extent that ends at or after off (touching counts) .. last extent that starts at or before end
        i = bisect.bisect_right(starts, off) - 1
        if i < 0 or starts[i] + len(bufs[i]) < off:
            i += 1
        j = bisect.bisect_right(starts, end) - 1
        if j < i:
            starts.insert(i, off)
            bufs.insert(i, bytearray(data))
            self.nbytes += len(data)
            return
        if i == j and starts[i] <= off and end <= starts[i] + len(bufs[i]):  # overwrite inside one extent
            s = starts[i]
            bufs[i][off - s:end - s] = data
            return
        new_start = min(starts[i], off)
        new_end = max(starts[j] + len(bufs[j]), end)
        merged = bytearray(new_end - new_start)
        old = 0
        for k in range(i, j + 1):
            s = starts[k] - new_start
            merged[s:s + len(bufs[k])] = bufs[k]
            old += len(bufs[k])
        merged[off - new_start:end - new_start] = data
        starts[i:j + 1] = [new_start]
        bufs[i:j + 1] = [merged]
        self.nbytes += len(merged) - old

    def clip(self, length):
        """Forgets pending data at or beyond length (a truncate)."""
        starts, bufs = self.starts, self.bufs
        k = bisect.bisect_left(starts, length)
        for b in bufs[k:]:
            self.nbytes -= len(b)
        del starts[k:]
        del bufs[k:]
        if k > 0 and starts[k - 1] + len(bufs[k - 1]) > length:
            cut = starts[k - 1] + len(bufs[k - 1]) - length
            del bufs[k - 1][len(bufs[k - 1]) - cut:]
            self.nbytes -= cut
        self.size = length

    def overlay(self, off, buf):
        """Copies the pending extents that intersect [off, off + len(buf)) into buf."""
        end = off + len(buf)
        starts, bufs = self.starts, self.bufs
        k = max(bisect.bisect_right(starts, off) - 1, 0)
        while k < len(starts) and starts[k] < end:
            s, b = starts[k], bufs[k]
            lo, hi = max(s, off), min(s + len(b), end)
            if lo < hi:
                buf[lo - off:hi - off] = b[lo - s:hi - s]
            k += 1

    def write_back(self):
        """Writes every extent to the backing file and sets its size; returns the bytes written."""
        n = 0
        for s, b in zip(self.starts, self.bufs):
            mv = memoryview(b)
            done = 0
            while done < len(b):
                done += os.pwrite(self.fd, mv[done:], s + done)
            n += len(b)
        if os.fstat(self.fd).st_size != self.size:
            os.ftruncate(self.fd, self.size)
        self.starts.clear()
        self.bufs.clear()
        self.nbytes = 0
        return n


class Handle:
    __slots__ = ("fd", "key")

    def __init__(self, fd, key):
        self.fd = fd
        self.key = key


def key_of(st):
    return (st.st_dev, st.st_ino)


ATTRS = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns", "st_mtime_ns",
         "st_ctime_ns", "st_blocks", "st_ino", "st_rdev")


class LazyFs(fusepy.Operations):
    use_ns = True
    flag_nullpath_ok = 1  # ops on an open handle get no path (hard_remove: an unlinked open file has none)
    ioctl = None  # not offered: the kernel answers ENOTTY itself

    def __init__(self, backing, max_pending_bytes):
        self.backing = os.path.realpath(backing)
        self.max_pending_bytes = max_pending_bytes
        self.mutex = threading.Lock()  # guards everything below; reads hold it so an fsync is never half seen
        self.pending = {}  # (st_dev, st_ino) -> Pending
        self.handles = {}  # fh -> Handle
        self.open_count = {}  # (st_dev, st_ino) -> number of open handles
        self.next_fh = 1
        self.pending_bytes = 0
        self.mounted = False
        self.c = dict(writes=0, bytes_written=0, fsyncs=0, fdatasyncs=0, dir_fsyncs=0, bytes_synced=0,
                      written_back_bytes=0, drops=0, bytes_dropped=0, files_dropped=0,
                      discarded_unlinked_bytes=0, last_drop_bytes=0, last_drop_files=0)

    def _p(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    # ---- lifecycle

    def init(self, path):
        self.mounted = True

    def destroy(self, path):
        self.mounted = False

    # ---- control commands (called from the control socket's thread)

    def stats(self):
        with self.mutex:
            return self._stats()

    def _stats(self):
        out = dict(self.c)
        out.update(pending_bytes=self.pending_bytes, pending_files=len(self.pending),
                   open_handles=len(self.handles), mounted=self.mounted)
        return out

    def drop(self):
        with self.mutex:
            dropped = 0
            paths = {}
            for p in self.pending.values():
                if p.nbytes or p.size != os.fstat(p.fd).st_size:
                    dropped += p.nbytes
                    paths[self._name_of(p.fd)] = p.nbytes
                os.close(p.fd)
            files = len(paths)
            self.pending.clear()
            self.pending_bytes = 0
            self.c["drops"] += 1
            self.c["bytes_dropped"] += dropped
            self.c["files_dropped"] += files
            self.c["last_drop_bytes"] = dropped
            self.c["last_drop_files"] = files
            out = self._stats()
            out["last_drop_paths"] = paths
            return out

    def _name_of(self, fd):
        """The file's path under the backing folder (for reports), from the descriptor we hold."""
        try:
            return os.path.relpath(os.readlink("/proc/self/fd/%d" % fd), self.backing)
        except OSError:
            return "fd %d" % fd

    def sync_all(self):
        with self.mutex:
            fds = []
            for key in list(self.pending):
                p = self.pending.pop(key)
                n = p.write_back()
                self.pending_bytes -= n
                self.c["bytes_synced"] += n
                fds.append(p.fd)
        for fd in fds:
            os.fdatasync(fd)
            os.close(fd)
        return self.stats()

    # ---- helpers (lock held)

    def _forget_if_unlinked(self, key):
        p = self.pending.get(key)
        if p is not None and self.open_count.get(key, 0) == 0 and os.fstat(p.fd).st_nlink == 0:
            del self.pending[key]
            self.pending_bytes -= p.nbytes
            self.c["discarded_unlinked_bytes"] += p.nbytes
            os.close(p.fd)

    def _pending_for(self, key, fd):
        p = self.pending.get(key)
        if p is None:
            p = Pending(os.dup(fd), os.fstat(fd).st_size)
            self.pending[key] = p
        return p

    def _bound_memory(self):
        while self.pending_bytes > self.max_pending_bytes and self.pending:
            key = max(self.pending, key=lambda k: self.pending[k].nbytes)
            p = self.pending.pop(key)
            n = p.write_back()
            self.pending_bytes -= n
            self.c["written_back_bytes"] += n
            os.close(p.fd)

    def _attrs(self, st):
        d = {k.replace("_ns", ""): getattr(st, k) for k in ATTRS}
        if stat.S_ISREG(st.st_mode):
            p = self.pending.get(key_of(st))
            if p is not None:
                d["st_size"] = p.size
                d["st_blocks"] = max(st.st_blocks, (p.size + 511) // 512)
        return d

    # ---- metadata: passes through at once

    def getattr(self, path, fh=None):
        with self.mutex:
            if fh and fh.fh in self.handles:  # fusepy passes a NULL pointer (falsy) when there is no handle
                st = os.fstat(self.handles[fh.fh].fd)
            else:
                st = os.lstat(self._p(path))
            return self._attrs(st)

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._p(path))

    def readlink(self, path):
        return os.readlink(self._p(path))

    def mknod(self, path, mode, dev):
        os.mknod(self._p(path), mode, dev)

    def mkdir(self, path, mode):
        os.mkdir(self._p(path), mode)

    def rmdir(self, path):
        os.rmdir(self._p(path))

    def symlink(self, target, source):
        os.symlink(source, self._p(target))

    def link(self, target, source):
        os.link(self._p(source), self._p(target))

    def chmod(self, path, mode):
        os.chmod(self._p(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._p(path), uid, gid)

    def utimens(self, path, times=None):
        os.utime(self._p(path), ns=times) if times else os.utime(self._p(path))

    def statfs(self, path):
        sv = os.statvfs(self._p(path))
        return {k: getattr(sv, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                            "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    def access(self, path, amode):
        if not os.access(self._p(path), amode):
            raise fusepy.FuseOSError(errno.EACCES)

    def unlink(self, path):
        with self.mutex:
            full = self._p(path)
            key = key_of(os.lstat(full))
            os.unlink(full)
            self._forget_if_unlinked(key)

    def rename(self, old, new):
        with self.mutex:
            target = self._p(new)
            try:
                replaced = key_of(os.lstat(target))
            except FileNotFoundError:
                replaced = None
            os.rename(self._p(old), target)
            if replaced is not None:
                self._forget_if_unlinked(replaced)

    def opendir(self, path):
        return 0

    def fsyncdir(self, path, datasync, fh):
        fd = os.open(self._p(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        with self.mutex:
            self.c["dir_fsyncs"] += 1

    # ---- files

    def _open(self, path, flags, mode, fi):
        # Our backing fd is read-write whatever the caller asked (so any handle can write back pending
        # data on fsync), never O_APPEND (pwrite must honour the kernel's offsets), never O_DIRECT
        # (unaligned pread/pwrite). O_TRUNC is applied through truncate() so pending data is clipped.
        backing_flags = (flags & ~(os.O_ACCMODE | os.O_APPEND | os.O_DIRECT | os.O_TRUNC)) | os.O_RDWR
        try:
            fd = os.open(self._p(path), backing_flags, mode)
        except PermissionError:
            fd = os.open(self._p(path), flags & ~(os.O_APPEND | os.O_DIRECT | os.O_TRUNC), mode)
        with self.mutex:
            key = key_of(os.fstat(fd))
            fh = self.next_fh
            self.next_fh += 1
            self.handles[fh] = Handle(fd, key)
            self.open_count[key] = self.open_count.get(key, 0) + 1
            if flags & os.O_TRUNC:
                self._truncate(key, fd, 0)
        fi.fh = fh
        fi.direct_io = 1
        return 0

    def create(self, path, mode, fi):
        return self._open(path, fi.flags | os.O_CREAT, mode, fi)

    def open(self, path, fi):
        return self._open(path, fi.flags & ~os.O_CREAT, 0, fi)

    def release(self, path, fh):
        with self.mutex:
            h = self.handles.pop(fh.fh)
            n = self.open_count[h.key] - 1
            if n:
                self.open_count[h.key] = n
            else:
                del self.open_count[h.key]
            self._forget_if_unlinked(h.key)
            os.close(h.fd)

    def flush(self, path, fh):
        return 0  # close() does not sync: the page cache outlives the descriptor

    def read(self, path, size, offset, fh):
        with self.mutex:
            h = self.handles[fh.fh]
            p = self.pending.get(h.key)
            if p is None:
                return os.pread(h.fd, size, offset)
            if offset >= p.size:
                return b""
            size = min(size, p.size - offset)
            buf = bytearray(os.pread(h.fd, size, offset))
            if len(buf) < size:  # past the backing file's end: a hole until pending data fills it
                buf.extend(bytes(size - len(buf)))
            p.overlay(offset, buf)
            return bytes(buf)

    def write(self, path, data, offset, fh):
        with self.mutex:
            h = self.handles[fh.fh]
            p = self._pending_for(h.key, h.fd)
            before = p.nbytes
            p.write(offset, data)
            self.pending_bytes += p.nbytes - before
            self.c["writes"] += 1
            self.c["bytes_written"] += len(data)
            self._bound_memory()
            return len(data)

    def _truncate(self, key, fd, length):
        p = self.pending.get(key)
        backing_size = os.fstat(fd).st_size
        if length <= backing_size:  # shrinking: metadata, durable at once
            os.ftruncate(fd, length)
            if p is not None:
                before = p.nbytes
                p.clip(length)
                self.pending_bytes += p.nbytes - before
        else:  # growing: data, pending until fsync
            p = p if p is not None else self._pending_for(key, fd)
            before = p.nbytes
            if length < p.size:
                p.clip(length)
            p.size = length
            self.pending_bytes += p.nbytes - before

    def truncate(self, path, length, fh=None):
        with self.mutex:
            if fh and fh.fh in self.handles:
                h = self.handles[fh.fh]
                self._truncate(h.key, h.fd, length)
                return
        fd = os.open(self._p(path), os.O_RDWR)
        try:
            with self.mutex:
                self._truncate(key_of(os.fstat(fd)), fd, length)
        finally:
            os.close(fd)

    def fsync(self, path, datasync, fh):
        with self.mutex:
            h = self.handles[fh.fh]
            self.c["fdatasyncs" if datasync else "fsyncs"] += 1
            p = self.pending.pop(h.key, None)
            if p is not None:
                n = p.write_back()
                self.pending_bytes -= n
                self.c["bytes_synced"] += n
                os.close(p.fd)
            fd = os.dup(h.fd)
        try:  # outside the lock: once written back the data is the backing folder's; this is real I/O
            if datasync:
                os.fdatasync(fd)
            else:
                os.fsync(fd)
        finally:
            os.close(fd)


def unmount(mnt):
    """Unmounts mnt: umount as root, fusermount otherwise; lazily, so a busy mount still goes."""
    for cmd in (["umount", "-l", mnt], ["fusermount", "-u", "-z", mnt], ["fusermount3", "-u", "-z", mnt]):
        try:
            if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                return
        except FileNotFoundError:
            continue


def serve_control(fs, path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    commands = {"stats": fs.stats, "drop": fs.drop, "sync": fs.sync_all}

    def one(conn):
        with conn, conn.makefile("rw", encoding="utf-8", newline="\n") as f:
            for line in f:
                cmd = line.strip()
                if not cmd:
                    continue
                try:
                    answer = commands[cmd]() if cmd in commands else {"error": "unknown command " + cmd}
                except Exception as e:  # report, never kill the filesystem
                    answer = {"error": repr(e)}
                f.write(json.dumps(answer) + "\n")
                f.flush()

    def loop():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True, name="control").start()


def watch_stdin(mnt):
    """Unmounts when standard input closes: the parent died (or asked), so the mount must not outlive it."""
    def loop():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except Exception:
            pass
        unmount(mnt)

    threading.Thread(target=loop, daemon=True, name="stdin-watch").start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backing", required=True, help="folder that holds the durable data")
    ap.add_argument("--mount", required=True, help="empty folder to mount on")
    ap.add_argument("--control", required=True, help="path of the Unix control socket")
    ap.add_argument("--max-pending-bytes", type=int, default=512 << 20,
                    help="unsynced data kept in memory before the largest file is written back")
    ap.add_argument("--no-stdin-watch", action="store_true",
                    help="do not unmount when standard input closes (for use from a shell)")
    a = ap.parse_args()
    fs = LazyFs(a.backing, a.max_pending_bytes)
    serve_control(fs, a.control)
    if not a.no_stdin_watch:
        watch_stdin(a.mount)
    # direct_io: the kernel keeps no page cache of its own, so dropped data cannot linger there;
    # timeouts 0: after a drop, sizes are asked of us again, never taken from the kernel's cache;
    # hard_remove: unlink is unlink (no .fuse_hidden files), handles of unlinked files work without a path.
    try:
        fusepy.FUSE(fs, a.mount, foreground=True, raw_fi=True, fsname="lazyfs", subtype="lazyfs",
                    direct_io=True, attr_timeout=0, entry_timeout=0, negative_timeout=0, hard_remove=True,
                    big_writes=True, max_write=131072, max_read=131072)
    finally:
        try:
            os.unlink(a.control)
        except OSError:
            pass


if __name__ == "__main__":
    main()
