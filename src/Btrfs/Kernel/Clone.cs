namespace Btrfs.Kernel
{
    using Btrfs.Interop;

    /// <summary>What the kernel said to one FIDEDUPERANGE request.</summary>
    internal readonly record struct DedupeOutcome(int Errno, bool Differs, long BytesDeduped);

    /// <summary>
    /// Sharing extents between files: a whole-file clone (FICLONE), a range clone (FICLONERANGE)
    /// and a compared range share (FIDEDUPERANGE, one destination). The errno comes back to the caller
    /// (0 for success), which explains it for its cmdlet; the block size the ranges must align to is here too.
    /// </summary>
    internal static class Clone
    {
        /// <summary>FICLONE: <paramref name="destination"/> (empty, open for writing) gets all of the source's extents. 0 or the errno.</summary>
        internal static int TryWhole(SafeFileDescriptor source, SafeFileDescriptor destination) =>
            Libc.IoctlValue(destination, Libc.FICLONE, source.Fd) == 0 ? 0 : Errno.Last;

        /// <summary>FICLONERANGE: <paramref name="length"/> bytes of the source from <paramref name="sourceOffset"/> into the destination at <paramref name="destinationOffset"/> (length 0: to the source's end). 0 or the errno.</summary>
        internal static unsafe int TryRange(SafeFileDescriptor source, long sourceOffset, long length, SafeFileDescriptor destination, long destinationOffset)
        {
            var args = new Libc.FileCloneRange
            {
                SourceFd = source.Fd,
                SourceOffset = (ulong)sourceOffset,
                SourceLength = (ulong)length,
                DestinationOffset = (ulong)destinationOffset,
            };
            return Libc.Ioctl(destination, Libc.FICLONERANGE, &args) == 0 ? 0 : Errno.Last;
        }

        /// <summary>
        /// FIDEDUPERANGE with one destination: the kernel compares the two ranges under both files'
        /// locks and shares them if they are equal (it may take less than asked: BytesDeduped).
        /// </summary>
        internal static unsafe DedupeOutcome Dedupe(SafeFileDescriptor source, long offset, long length, SafeFileDescriptor destination, long destinationOffset)
        {
            var args = new Libc.FileDedupeRangeOne
            {
                SourceOffset = (ulong)offset,
                SourceLength = (ulong)length,
                DestinationCount = 1,
                DestinationFd = destination.Fd,
                DestinationOffset = (ulong)destinationOffset,
            };
            if (Libc.Ioctl(source, Libc.FIDEDUPERANGE, &args) < 0)
            {
                return new DedupeOutcome(Errno.Last, false, 0);
            }

            return args.Status < 0
                ? new DedupeOutcome(-args.Status, false, 0)
                : new DedupeOutcome(0, args.Status == Libc.FILE_DEDUPE_RANGE_DIFFERS, (long)args.BytesDeduped);
        }

        /// <summary>The filesystem's block size (statfs f_bsize), which clone and dedupe ranges align to; 4096 when it cannot be read.</summary>
        internal static long BlockSize(SafeFileDescriptor fd) =>
            Libc.FStatFs(fd, out Libc.StatFs sfs) == 0 && sfs.BlockSize > 0 ? sfs.BlockSize : 4096;
    }
}
