namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>
    /// xfs extent exchange (fs/xfs/libxfs/xfs_fs.h, reference 3.12): the legacy XFS_IOC_SWAPEXT that
    /// xfs_fsr uses, and on filesystems with the exchange-range feature XFS_IOC_START_COMMIT and
    /// XFS_IOC_COMMIT_RANGE (an exchange that fails with EBUSY if the file changed since the start);
    /// XFS_IOC_FSGEOMETRY says which the filesystem has. No privilege needed for any of them.
    /// </summary>
    internal static partial class Libc
    {
        /// <summary>_IOWR('X', 109, struct xfs_swapext): 192 bytes.</summary>
        internal const uint XFS_IOC_SWAPEXT = 0xC0C0586D;

        /// <summary>_IOR('X', 126, struct xfs_fsop_geom): 256 bytes (the v5 geometry).</summary>
        internal const uint XFS_IOC_FSGEOMETRY = 0x8100587E;

        /// <summary>_IOR('X', 130, struct xfs_commit_range): records the file's freshness.</summary>
        internal const uint XFS_IOC_START_COMMIT = 0x80585882;

        /// <summary>_IOW('X', 131, struct xfs_commit_range): exchanges if the file is still as recorded.</summary>
        internal const uint XFS_IOC_COMMIT_RANGE = 0x40585883;

        /// <summary>xfs_fsop_geom.flags: the filesystem can exchange file ranges (XFS_FSOP_GEOM_FLAGS_EXCHANGE_RANGE).</summary>
        internal const uint XFS_FSOP_GEOM_FLAGS_EXCHANGE_RANGE = 1u << 24;

        /// <summary>xfs_fsop_geom.flags: reverse-mapping btree (XFS_FSOP_GEOM_FLAGS_RMAPBT): extent swaps go through log intents.</summary>
        internal const uint XFS_FSOP_GEOM_FLAGS_RMAPBT = 1u << 19;

        /// <summary>xfs_fsop_geom.flags: shared extents (XFS_FSOP_GEOM_FLAGS_REFLINK, mkfs.xfs -m reflink=1).</summary>
        internal const uint XFS_FSOP_GEOM_FLAGS_REFLINK = 1u << 20;

        /// <summary>Exchange to the end of both files (the length is then ignored) and exchange their sizes.</summary>
        internal const ulong XFS_EXCHANGE_RANGE_TO_EOF = 1;

        /// <summary>The offset of xfs_fsop_geom.flags.</summary>
        internal const int XfsGeometryFlagsOffset = 92;

        /// <summary>Size of struct xfs_fsop_geom (v5).</summary>
        internal const int XfsGeometrySize = 256;

        /// <summary>struct xfs_bstime: seconds and nanoseconds, 16 bytes.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct XfsBsTime
        {
            public long Seconds;
            public int Nanoseconds;
            private readonly int pad;
        }

        /// <summary>struct xfs_bstat, 136 bytes; SWAPEXT compares bs_ctime and bs_mtime with the target's (EBUSY when they differ).</summary>
        [StructLayout(LayoutKind.Explicit, Size = 136)]
        internal struct XfsBstat
        {
            [FieldOffset(0)] public ulong Ino;
            [FieldOffset(8)] public ushort Mode;
            [FieldOffset(32)] public long Size;
            [FieldOffset(40)] public XfsBsTime Atime;
            [FieldOffset(56)] public XfsBsTime Mtime;
            [FieldOffset(72)] public XfsBsTime Ctime;
        }

        /// <summary>struct xfs_swapext, 192 bytes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 192)]
        internal struct XfsSwapExt
        {
            [FieldOffset(0)] public long Version; // XFS_SX_VERSION 0
            [FieldOffset(8)] public long FdTarget;
            [FieldOffset(16)] public long FdTmp;
            [FieldOffset(24)] public long Offset; // must be 0
            [FieldOffset(32)] public long Length; // the file size
            [FieldOffset(56)] public XfsBstat Stat;
        }

        /// <summary>struct xfs_commit_range, 88 bytes; issued on file2 (the original), file1 is the new copy.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal unsafe struct XfsCommitRange
        {
            public int File1Fd;
            public uint Pad;
            public ulong File1Offset;
            public ulong File2Offset;
            public ulong Length;
            public ulong Flags;
            public fixed ulong File2Freshness[6];
        }
    }
}
