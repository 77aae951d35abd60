namespace Btrfs.Core
{
    using System;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// ext4's exchange for <see cref="CopyExchangeDefragmenter"/>: EXT4_IOC_MOVE_EXT (what e4defrag uses)
    /// moves the copy's blocks under the file's data in steps, the kernel copying each page itself under
    /// both files' locks (<see cref="Ext4MoveExtents"/>).
    /// </summary>
    public sealed class Ext4Defragmenter : CopyExchangeDefragmenter
    {
        internal Ext4Defragmenter(OpenFile file, DefragOptions options)
            : base(file, options)
        {
        }

        /// <inheritdoc/>
        public override DefragMethod Method => DefragMethod.Ext4MoveExtents;

        /// <inheritdoc/>
        private protected override long BytesRewritten(FragmentationCounter before) => before.CoveredBytes;

        /// <inheritdoc/>
        private protected override bool CopyKeepsSize => false;

        /// <inheritdoc/>
        private protected override DefragResult Exchange(OpenFile original, TemporaryFile copy, FileStatus status, Action<long>? progress, CancellationToken cancel) =>
            MoveExtents(copy.Handle, original.Handle, status.Size, progress, cancel);

        /// <summary>ext4: moves the mirror's blocks under the file's data, one step at a time; the kernel copies each page.</summary>
        private DefragResult MoveExtents(SafeFileDescriptor donor, SafeFileDescriptor writable, long size, Action<long>? progress, CancellationToken cancel)
        {
            Files.Sync(writable, File.Path, "Cannot flush before defragmenting", "Nothing was changed.");
            long stepBlocks = Math.Max(1, Options.StepSize / BlockSize);
            long moved = 0;
            foreach (RawExtent e in Fiemap.Read(donor, File.Path, 0, (ulong)RoundUp(size), sync: false))
            {
                long first = (long)e.Logical / BlockSize;
                long last = (Math.Min((long)e.End, RoundUp(size)) + BlockSize - 1) / BlockSize;
                for (long block = first; block < last;)
                {
                    cancel.ThrowIfCancellationRequested();
                    long n;
                    try
                    {
                        n = Ext4MoveExtents.Move(writable, donor, block, Math.Min(stepBlocks, last - block), BlockSize, File.Path, "The data is intact; the file may be partly defragmented.");
                    }
                    catch (FileOperationException ex) when (ex.Errno == Errno.EINVAL && File.Restat().Size < size)
                    {
                        throw Truncated(File, size, ex);
                    }

                    block += n;
                    moved += n * BlockSize;
                    progress?.Invoke(Math.Min(moved, BytesToRewrite));
                }
            }

            long movedBytes = Math.Min(moved, BytesToRewrite);
            return Finished(Method, $"moved {SizeFormatter.Format(movedBytes)} into {CopyExtents} new extent(s)", movedBytes, 0);
        }
    }
}
