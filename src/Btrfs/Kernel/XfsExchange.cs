namespace Btrfs.Kernel
{
    using System;
    using Btrfs.Interop;

    /// <summary>What an xfs filesystem can do (xfs_fsop_geom.flags), as far as exchanging extents is concerned.</summary>
    [Flags]
    internal enum XfsFeatures
    {
        /// <summary>None of these, or not xfs, or the geometry could not be read.</summary>
        None = 0,

        /// <summary>Shared extents (mkfs.xfs -m reflink=1, the default): FIDEDUPERANGE works.</summary>
        Reflink = 1,

        /// <summary>The reverse-mapping btree: extent swaps go through log intents.</summary>
        ReverseMapping = 2,

        /// <summary>File range exchange: XFS_IOC_START_COMMIT and XFS_IOC_COMMIT_RANGE.</summary>
        ExchangeRange = 4,
    }

    /// <summary>
    /// The xfs calls of an extent exchange, as xfs_fsr makes them: the filesystem's features
    /// (XFS_IOC_FSGEOMETRY), the extended attributes that steer allocation (FS_IOC_FSGETXATTR and
    /// FS_IOC_FSSETXATTR), an exchange checked against a stamp taken before the copy
    /// (XFS_IOC_START_COMMIT and XFS_IOC_COMMIT_RANGE), and the older XFS_IOC_SWAPEXT, checked against
    /// the file's times. The exchanges return the errno (0 for success): what a refusal means is the caller's.
    /// </summary>
    internal static class XfsExchange
    {
        /// <summary>The features of the xfs holding <paramref name="fd"/>; <see cref="XfsFeatures.None"/> when the geometry cannot be read.</summary>
        internal static XfsFeatures Features(SafeFileDescriptor fd) => TryFeatures(fd) ?? XfsFeatures.None;

        /// <summary>The features of the xfs holding <paramref name="fd"/>; null when the geometry cannot be read (<see cref="XfsFeatures.None"/> is an xfs without any of them).</summary>
        internal static unsafe XfsFeatures? TryFeatures(SafeFileDescriptor fd)
        {
            byte* geometry = stackalloc byte[Libc.XfsGeometrySize];
            if (Libc.Ioctl(fd, Libc.XFS_IOC_FSGEOMETRY, geometry) < 0)
            {
                return null;
            }

            uint flags = *(uint*)(geometry + Libc.XfsGeometryFlagsOffset);
            return ((flags & Libc.XFS_FSOP_GEOM_FLAGS_REFLINK) != 0 ? XfsFeatures.Reflink : 0)
                | ((flags & Libc.XFS_FSOP_GEOM_FLAGS_RMAPBT) != 0 ? XfsFeatures.ReverseMapping : 0)
                | ((flags & Libc.XFS_FSOP_GEOM_FLAGS_EXCHANGE_RANGE) != 0 ? XfsFeatures.ExchangeRange : 0);
        }

        /// <summary>The file is marked no-defrag (FS_XFLAG_NODEFRAG, xfs_io -c 'chattr +f'); false when the attributes cannot be read.</summary>
        internal static bool IsNoDefrag(SafeFileDescriptor fd) => (Get(fd).XFlags & Libc.FS_XFLAG_NODEFRAG) != 0;

        /// <summary>
        /// Gives <paramref name="to"/> the extended attributes of <paramref name="from"/> that steer allocation
        /// and that XFS_IOC_SWAPEXT compares (realtime, extent size hints, project id); not immutable,
        /// append-only or no-defrag. Throws, naming <paramref name="path"/>.
        /// </summary>
        internal static unsafe void CopyAllocationHints(SafeFileDescriptor from, SafeFileDescriptor to, string path, string advice)
        {
            Libc.FsXattr x = Get(from);
            x.XFlags &= ~(Libc.FS_XFLAG_IMMUTABLE | Libc.FS_XFLAG_APPEND | Libc.FS_XFLAG_NODEFRAG);
            x.NExtents = 0;
            if ((x.XFlags != 0 || x.ExtSize != 0 || x.ProjId != 0 || x.CowExtSize != 0) && Libc.Ioctl(to, Libc.FS_IOC_FSSETXATTR, &x) < 0)
            {
                throw Errno.Failure("FS_IOC_FSSETXATTR", path, "Cannot give the new copy the xfs attributes of", advice);
            }
        }

        /// <summary>XFS_IOC_START_COMMIT: the file's state now, which <see cref="TryCommit"/> checks. Throws, naming <paramref name="path"/>.</summary>
        internal static unsafe CommitStamp StartCommit(SafeFileDescriptor file, string path, string advice)
        {
            Libc.XfsCommitRange commit = default;
            if (Libc.Ioctl(file, Libc.XFS_IOC_START_COMMIT, &commit) < 0)
            {
                throw Errno.Failure("XFS_IOC_START_COMMIT", path, "Cannot start an exchange for", advice);
            }

            return new CommitStamp(commit);
        }

        /// <summary>
        /// XFS_IOC_COMMIT_RANGE: exchanges all of <paramref name="file"/>'s extents with <paramref name="donor"/>'s
        /// (to the end of both) if the file is unchanged since <paramref name="stamp"/>. 0, or the errno
        /// (EBUSY: it changed).
        /// </summary>
        internal static unsafe int TryCommit(SafeFileDescriptor file, CommitStamp stamp, SafeFileDescriptor donor, long length)
        {
            Libc.XfsCommitRange commit = stamp.Value;
            commit.File1Fd = donor.Fd;
            commit.Length = (ulong)length;
            commit.Flags = Libc.XFS_EXCHANGE_RANGE_TO_EOF;
            return Libc.Ioctl(file, Libc.XFS_IOC_COMMIT_RANGE, &commit) < 0 ? Errno.Last : 0;
        }

        /// <summary>
        /// XFS_IOC_SWAPEXT: exchanges all extents of <paramref name="file"/> and <paramref name="donor"/> if the
        /// file's change and modification times are still those of <paramref name="before"/>. 0, or the errno
        /// (EBUSY: it changed, or it is mapped; EFAULT: its size is not the length asked; EINVAL: the extent formats do not fit).
        /// </summary>
        internal static unsafe int TrySwapExtents(SafeFileDescriptor file, SafeFileDescriptor donor, in FileStatus before)
        {
            var swap = new Libc.XfsSwapExt
            {
                FdTarget = file.Fd,
                FdTmp = donor.Fd,
                Offset = 0,
                Length = before.Size,
            };
            swap.Stat.Ino = before.Inode;
            swap.Stat.Mode = before.Mode;
            swap.Stat.Size = before.Size;
            swap.Stat.Atime = Time(before.AccessTime);
            swap.Stat.Mtime = Time(before.ModifyTime);
            swap.Stat.Ctime = Time(before.ChangeTime);
            return Libc.Ioctl(file, Libc.XFS_IOC_SWAPEXT, &swap) < 0 ? Errno.Last : 0;
        }

        private static Libc.XfsBsTime Time(FileTime t) => new() { Seconds = t.Seconds, Nanoseconds = (int)t.Nanoseconds };

        private static unsafe Libc.FsXattr Get(SafeFileDescriptor fd)
        {
            Libc.FsXattr x = default;
            _ = Libc.Ioctl(fd, Libc.FS_IOC_FSGETXATTR, &x);
            return x;
        }
    }

    /// <summary>The file's state as XFS_IOC_START_COMMIT recorded it, for <see cref="XfsExchange.TryCommit"/>.</summary>
    internal readonly struct CommitStamp
    {
        internal CommitStamp(Libc.XfsCommitRange value) => Value = value;

        internal Libc.XfsCommitRange Value { get; }
    }
}
