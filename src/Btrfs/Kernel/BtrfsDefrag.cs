namespace Btrfs.Kernel
{
    using System;
    using Btrfs.Interop;

    /// <summary>
    /// BTRFS_IOC_DEFRAG_RANGE: the kernel rewrites the extents of a range that are smaller than a
    /// threshold, in place (the inode stays), optionally compressing them (a type, and a level where the
    /// kernel knows BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL) and starting the writeback.
    /// </summary>
    internal static class BtrfsDefrag
    {
        /// <summary>
        /// One call for [<paramref name="start"/>, + <paramref name="length"/>): extents below
        /// <paramref name="extentThreshold"/> bytes are rewritten; <paramref name="compressType"/> (btrfs's
        /// numbering: 1 zlib, 2 lzo, 3 zstd) recompresses, at <paramref name="compressLevel"/> when given.
        /// 0 or the errno.
        /// </summary>
        internal static unsafe int TryRange(SafeFileDescriptor file, long start, long length, long extentThreshold, bool startWriteback, uint? compressType, int? compressLevel)
        {
            var args = new Libc.BtrfsDefragRangeArgs
            {
                Start = (ulong)start,
                Length = (ulong)length,
                Flags = startWriteback ? Libc.BTRFS_DEFRAG_RANGE_START_IO : 0,
                ExtentThreshold = (uint)Math.Min(extentThreshold, uint.MaxValue),
            };
            if (compressType is uint type)
            {
                args.Flags |= Libc.BTRFS_DEFRAG_RANGE_COMPRESS;
                args.CompressType = type;
                if (compressLevel is int level)
                {
                    args.Flags |= Libc.BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL;
                    args.CompressLevel = (sbyte)Math.Clamp(level, sbyte.MinValue, sbyte.MaxValue);
                }
            }

            return Libc.Ioctl(file, Libc.BTRFS_IOC_DEFRAG_RANGE, &args) < 0 ? Errno.Last : 0;
        }

        /// <summary>
        /// Whether the kernel accepts BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL, asked of the file of size
        /// <paramref name="size"/> without changing it: unknown flags are refused with EOPNOTSUPP before
        /// anything else is looked at; with known flags, a start at the end of the file is refused with EINVAL.
        /// </summary>
        internal static bool KnowsCompressionLevel(SafeFileDescriptor file, long size, uint zstd) =>
            TryRange(file, size, 4096, 0, false, zstd, 1) != Errno.EOPNOTSUPP;
    }
}
