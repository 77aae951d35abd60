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
            Files.AdviseDontNeed(writable, 0, 0);
            long stepBlocks = Math.Max(1, Options.StepSize / BlockSize);
            long moved = 0;
            bool busy = false;
            foreach (RawExtent e in Fiemap.Read(donor, File.Path, 0, (ulong)RoundUp(size), sync: false))
            {
                if (busy)
                {
                    break;
                }

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
                    catch (FileOperationException ex) when (ex.Errno == Errno.EBUSY)
                    {
                        // A writer keeps dirtying pages the kernel must move (written back and asked again, and
                        // again dirty): it gives up that step and changes nothing in it. The rest waits for an
                        // idle file.
                        busy = true;
                        break;
                    }

                    block += n;
                    moved += n * BlockSize;
                    BytesRewrittenSoFar = Math.Min(moved, BytesToRewrite);
                    progress?.Invoke(Math.Min(moved, BytesToRewrite));
                }
            }

            long movedBytes = Math.Min(moved, BytesToRewrite);
            const string Busy = "pages of it were being written again and again, so the kernel could not move them (EXT4_IOC_MOVE_EXT: EBUSY; a writer, through write() or a mapping)";
            if (busy && moved == 0)
            {
                return Skipped(DefragSkipReason.ChangedWhileCopying, $"changed while copying: {Busy}; the file is as it was, run it again when it is idle");
            }

            return Finished(Method, busy
                ? $"moved {SizeFormatter.Format(movedBytes)} of {SizeFormatter.Format(BytesToRewrite)} into new extents; then {Busy}, and the rest stayed as it was: run it again when it is idle"
                : $"moved {SizeFormatter.Format(movedBytes)} into {CopyExtents} new extent(s)", movedBytes, 0);
        }
    }
}
