namespace Btrfs.Kernel
{
    using System;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>A point in time as the kernel keeps it: seconds and nanoseconds since the epoch.</summary>
    internal readonly record struct FileTime(long Seconds, uint Nanoseconds);

    /// <summary>What statx(2) says about an inode: identity, links, owner, mode, size and times.</summary>
    internal readonly record struct FileStatus(
        uint DevMajor,
        uint DevMinor,
        ulong Inode,
        uint Links,
        uint Uid,
        uint Gid,
        ushort Mode,
        long Size,
        long Blocks,
        FileTime AccessTime,
        FileTime ModifyTime,
        FileTime ChangeTime,
        ulong MountId,
        ulong Attributes)
    {
        /// <summary>Every field <see cref="From"/> reads.</summary>
        internal const uint Mask = Libc.STATX_BASIC_STATS | Libc.STATX_MNT_ID;

        internal bool IsRegular => (Mode & Libc.S_IFMT) == Libc.S_IFREG;

        internal bool IsDirectory => (Mode & Libc.S_IFMT) == Libc.S_IFDIR;

        internal bool IsSymbolicLink => (Mode & Libc.S_IFMT) == Libc.S_IFLNK;

        /// <summary>What the inode is, as a directory listing says it.</summary>
        internal EntryType Type => (Mode & Libc.S_IFMT) switch
        {
            Libc.S_IFREG => EntryType.File,
            Libc.S_IFDIR => EntryType.Directory,
            Libc.S_IFLNK => EntryType.SymbolicLink,
            _ => EntryType.Other,
        };

        /// <summary>Permission bits with setuid/setgid/sticky (the low 12 bits of the mode).</summary>
        internal uint Permissions => (uint)(Mode & 0xFFF);

        /// <summary>This status with other permission bits (the low 12 of <paramref name="permissions"/>), the file type kept.</summary>
        internal FileStatus WithPermissions(uint permissions) => this with { Mode = (ushort)((Mode & 0xF000u) | (permissions & 0xFFFu)) };

        /// <summary>Bytes allocated (st_blocks × 512).</summary>
        internal long AllocatedBytes => Blocks * 512;

        /// <summary>The device number as stat(2)'s st_dev and `stat -c %d` give it (glibc's makedev).</summary>
        internal ulong Device => ((ulong)(DevMajor & 0xFFFFF000) << 32) | ((ulong)(DevMajor & 0xFFF) << 8) | ((ulong)(DevMinor & 0xFFFFFF00) << 12) | (DevMinor & 0xFF);

        /// <summary>A device number of <see cref="Device"/>'s encoding as major:minor.</summary>
        internal static string DeviceName(ulong device) => $"{((device >> 32) & 0xFFFFF000) | ((device >> 8) & 0xFFF)}:{((device >> 12) & 0xFFFFFF00) | (device & 0xFF)}";

        /// <summary>Same device and inode: the same file.</summary>
        internal bool SameInode(in FileStatus other) => DevMajor == other.DevMajor && DevMinor == other.DevMinor && Inode == other.Inode;

        /// <summary>Size, modification and change time are unchanged: nobody wrote to the file in between.</summary>
        internal bool SameContentStamp(in FileStatus other) => SameInode(other) && Size == other.Size && ModifyTime == other.ModifyTime && ChangeTime == other.ChangeTime;

        internal static FileStatus From(in Libc.StatX st) => new(
            st.DevMajor,
            st.DevMinor,
            st.Ino,
            st.Nlink,
            st.Uid,
            st.Gid,
            st.Mode,
            checked((long)st.Size),
            checked((long)st.Blocks),
            new FileTime(st.Atime.Seconds, st.Atime.Nanoseconds),
            new FileTime(st.Mtime.Seconds, st.Mtime.Nanoseconds),
            new FileTime(st.Ctime.Seconds, st.Ctime.Nanoseconds),
            (st.Mask & Libc.STATX_MNT_ID) != 0 ? st.MountId : 0,
            st.Attributes);

        /// <summary>fstat of a descriptor, or null with errno set.</summary>
        internal static FileStatus? Of(SafeFileDescriptor fd) =>
            Libc.StatXDescriptor(fd, string.Empty, Libc.AT_EMPTY_PATH, Mask, out Libc.StatX st) == 0 ? From(st) : null;

        /// <summary>lstat of a name in an open directory (never following a link), or null with errno set.</summary>
        internal static FileStatus? OfAt(SafeFileDescriptor dir, string name) =>
            Libc.StatXAt(dir, name, Libc.AT_SYMLINK_NOFOLLOW, Mask, out Libc.StatX st) == 0 ? From(st) : null;

        /// <summary>
        /// lstat of a name in an open directory from what the kernel has cached (AT_STATX_DONT_SYNC), without
        /// triggering an automount (AT_NO_AUTOMOUNT): what a walk asks before it opens a directory, because the
        /// directory may be the mount point of a filesystem that no longer answers (a stale sshfs or NFS mount),
        /// where an open would wait forever. Device and mount id are right even then. A FUSE mount this user may
        /// not enter (another user's, without allow_other; root included) refuses a stat (EACCES) but tells its
        /// device when asked for nothing (mask 0): then only the device is known (Mode 0). Null with errno set.
        /// </summary>
        /// <summary>
        /// The inode number, link count and birth time (null where the filesystem keeps none) of <paramref name="name"/> in
        /// <paramref name="dir"/>, from the kernel's cache, no link followed; null when it cannot be examined.
        /// </summary>
        internal static (ulong Inode, uint Links, FileTime? Born)? IdentityAtCached(SafeFileDescriptor dir, string name)
        {
            const int flags = Libc.AT_SYMLINK_NOFOLLOW | Libc.AT_NO_AUTOMOUNT | Libc.AT_STATX_DONT_SYNC;
            if (Libc.StatXAt(dir, name, flags, Libc.STATX_INO | Libc.STATX_NLINK | Libc.STATX_BTIME, out Libc.StatX st) != 0)
            {
                return null;
            }

            FileTime? born = (st.Mask & Libc.STATX_BTIME) != 0 ? new FileTime(st.Btime.Seconds, st.Btime.Nanoseconds) : null;
            return (st.Ino, st.Nlink, born);
        }

        internal static FileStatus? OfAtCached(SafeFileDescriptor dir, string name)
        {
            const int flags = Libc.AT_SYMLINK_NOFOLLOW | Libc.AT_NO_AUTOMOUNT | Libc.AT_STATX_DONT_SYNC;
            if (Libc.StatXAt(dir, name, flags, Mask, out Libc.StatX st) == 0)
            {
                return From(st);
            }

            return Errno.Last == Errno.EACCES && Libc.StatXAt(dir, name, flags, 0, out st) == 0 ? From(st) : null;
        }

        /// <summary>lstat (or stat, following links) of a path; a <see cref="FileOperationException"/> naming it when that fails.</summary>
        internal static FileStatus Require(string path, bool followLinks, string what) =>
            OfPath(path, followLinks) ?? throw Errno.Failure("stat", path, what);

        /// <summary>fstat of an open file; a <see cref="FileOperationException"/> naming <paramref name="path"/> when that fails.</summary>
        internal static FileStatus Require(SafeFileDescriptor fd, string path, string what) =>
            Of(fd) ?? throw Errno.Failure("fstat", path, what);

        /// <summary>lstat of a path, or null with the failure (naming the path) in <paramref name="error"/>.</summary>
        internal static FileStatus? OfPath(string path, string what, out FileOperationException? error)
        {
            FileStatus? st = OfPath(path, followLinks: false);
            error = st is null ? Errno.Failure("stat", path, what) : null;
            return st;
        }

        /// <summary>
        /// stat of what a /proc link (/proc/PID/fd/N, cwd, root, map_files/...) leads to, from what the kernel has
        /// cached (AT_STATX_DONT_SYNC): another process's open file may be on a mount that no longer answers (a
        /// stale sshfs or NFS mount), where asking would wait forever; its device and inode never change.
        /// </summary>
        internal static FileStatus? OfProcLink(string link) =>
            Libc.StatXPath(Libc.AT_FDCWD, link, Libc.AT_STATX_DONT_SYNC, Mask, out Libc.StatX st) == 0 ? From(st) : null;

        /// <summary>The same, with the errno of a failure in <paramref name="errno"/> (0 on success).</summary>
        internal static FileStatus? OfProcLink(string link, out int errno)
        {
            FileStatus? st = OfProcLink(link);
            errno = st is null ? Errno.Last : 0;
            return st;
        }

        /// <summary>stat (following links) or lstat of a path, or null with errno set.</summary>
        internal static FileStatus? OfPath(string path, bool followLinks) =>
            Libc.StatXPath(Libc.AT_FDCWD, path, followLinks ? 0 : Libc.AT_SYMLINK_NOFOLLOW, Mask, out Libc.StatX st) == 0 ? From(st) : null;

        /// <summary>The same, with the errno of a failure in <paramref name="errno"/> (0 on success).</summary>
        internal static FileStatus? OfPath(string path, bool followLinks, out int errno)
        {
            FileStatus? st = OfPath(path, followLinks);
            errno = st is null ? Errno.Last : 0;
            return st;
        }
    }
}
