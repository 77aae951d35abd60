namespace Btrfs.Kernel
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Text;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>What was seen inside a mount namespace: its mount table, the paths asked about, and the mount namespaces kept (pinned) at paths in it.</summary>
    internal sealed record NamespaceView(string Table, IReadOnlyDictionary<string, FileStatus?> Resolved, IReadOnlyList<(string Path, ulong Id, SafeFileDescriptor Namespace)> Kept);

    /// <summary>Mount namespaces: reading another one without running anything in it.</summary>
    internal static class Namespaces
    {
        /// <summary>
        /// Opens a mount namespace's file (/proc/PID/ns/mnt, or a bind mount of one), and only if it is one: the
        /// path is first only named (O_PATH, not following a final link: nothing is opened, no device, no FIFO)
        /// and proven an nsfs file with the inode number <paramref name="id"/> when given (the N of "mnt:[N]"),
        /// then that very inode is opened for reading (through /proc/self/fd) and proven a mount namespace.
        /// <paramref name="followLink"/>: the path is a process's own link (/proc/PID/ns/mnt) and is followed.
        /// </summary>
        internal static unsafe SafeFileDescriptor? OpenMountNamespace(string path, ulong? id = null, bool followLink = false)
        {
            using SafeFileDescriptor named = Libc.Open(path, Libc.O_PATH | (followLink ? 0 : Libc.O_NOFOLLOW) | Libc.O_CLOEXEC, 0);
            if (named.IsInvalid || Libc.FStatFs(named, out Libc.StatFs fs) != 0 || fs.Type != Libc.NSFS_MAGIC
                || FileStatus.Of(named) is not FileStatus st || (id is not null && st.Inode != id))
            {
                return null;
            }

            SafeFileDescriptor fd = Libc.Open("/proc/self/fd/" + named.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture), Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_NOCTTY | Libc.O_CLOEXEC, 0);
            if (!fd.IsInvalid
                && Libc.Ioctl(fd, Libc.NS_GET_NSTYPE, null) == Libc.CLONE_NEWNS
                && FileStatus.Of(fd) is FileStatus opened && opened.SameInode(st))
            {
                return fd;
            }

            fd.Dispose();
            return null;
        }

        /// <summary>
        /// Enters the mount namespace <paramref name="ns"/> on a thread of this process of its own (unshare
        /// CLONE_FS, setns; this process and its other threads stay where they are, and nothing of that namespace
        /// is run) and reads there: the mount table as the kernel writes it for that namespace's root (opened
        /// relative to the thread's /proc directory opened before, so no path of that namespace is looked up for
        /// it), then what <paramref name="wanted"/> asks of that table: paths to look up there (following links
        /// within that namespace) and paths of namespace files kept there, opened as
        /// <see cref="OpenMountNamespace"/> does. Null when it cannot be entered (not root: CAP_SYS_ADMIN) or
        /// takes longer than <paramref name="timeout"/> (<paramref name="timedOut"/>: a mount there that does not
        /// answer; the thread is left waiting in the kernel).
        /// </summary>
        internal static NamespaceView? ReadInside(SafeFileDescriptor ns, Func<string, (IReadOnlyList<string> Look, IReadOnlyList<(string Path, ulong Id)> Kept)> wanted, TimeSpan timeout, out bool timedOut)
        {
            // Given up on meanwhile (the caller's descriptor closed), or the namespace went away: null.
            return Bounded.Run(() => Read(ns, wanted), timeout, out timedOut);
        }

        private static NamespaceView? Read(SafeFileDescriptor ns, Func<string, (IReadOnlyList<string> Look, IReadOnlyList<(string Path, ulong Id)> Kept)> wanted)
        {
            using SafeFileDescriptor self = Libc.Open("/proc/thread-self", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (self.IsInvalid || Libc.Unshare(Libc.CLONE_FS) != 0 || Libc.SetNamespace(ns, Libc.CLONE_NEWNS) != 0)
            {
                return null;
            }

            using SafeFileDescriptor info = Libc.OpenAt(self, "mountinfo", Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0);
            if (info.IsInvalid)
            {
                return null;
            }

            // All the bytes first, decoded once (a character split between two reads would not survive).
            using var bytes = new MemoryStream();
            byte[] buffer = new byte[1 << 16];
            try
            {
                while (true)
                {
                    int n = Files.ReadFullyAt(info, buffer, bytes.Length, "mountinfo");
                    bytes.Write(buffer, 0, n);
                    if (n < buffer.Length)
                    {
                        break;
                    }
                }
            }
            catch (FileOperationException)
            {
                return null;
            }

            string table = Encoding.UTF8.GetString(bytes.GetBuffer(), 0, (int)bytes.Length);
            (IReadOnlyList<string> look, IReadOnlyList<(string Path, ulong Id)> kept) = wanted(table);
            var resolved = new Dictionary<string, FileStatus?>(StringComparer.Ordinal);
            foreach (string path in look)
            {
                resolved[path] = FileStatus.OfPath(path, followLinks: true);
            }

            var namespaces = new List<(string, ulong, SafeFileDescriptor)>();
            foreach ((string path, ulong id) in kept)
            {
                if (OpenMountNamespace(path, id) is SafeFileDescriptor fd)
                {
                    namespaces.Add((path, id, fd));
                }
            }

            return new NamespaceView(table, resolved, namespaces);
        }
    }
}
