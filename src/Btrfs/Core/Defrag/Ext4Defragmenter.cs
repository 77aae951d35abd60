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

        /// <summary>
        /// ext4 moves no extents of a file whose data is journalled (ext4_inode_journal_mode: the mount's data=journal,
        /// or chattr +j on a mount with nodelalloc): the kernel refuses EXT4_IOC_MOVE_EXT with EOPNOTSUPP. Said before
        /// anything is written where the mount options show it (before: an error for every file, after the flush and
        /// the copy's preallocation, naming block maps and bigalloc; found by a hostile review). Where they do not (a
        /// default set by tune2fs -o journal_data), the kernel's refusal says it (<see cref="MoveExtents"/>).
        /// </summary>
        private protected override (DefragSkipReason Kind, string Reason)? RefusalOfThisFileSystem()
        {
            MountEntry? mount = MountTable.Current().For(File);
            if (mount?.Option("data") == "journal")
            {
                return (DefragSkipReason.NotSupportedHere, "on an ext4 mounted with data=journal, which has no online defragmentation (the kernel refuses EXT4_IOC_MOVE_EXT); left as it is. Mount it with data=ordered (the default) to defragment");
            }

            return mount?.HasOption("nodelalloc") == true && (InodeAttributes.Get(File.Handle, File.Path) & InodeFlags.JournalData) != 0
                ? (DefragSkipReason.NotSupportedHere, "a file whose data is journalled (chattr +j, on a mount with nodelalloc), for which ext4 has no online defragmentation (the kernel refuses EXT4_IOC_MOVE_EXT); left as it is")
                : null;
        }

        /// <inheritdoc/>
        private protected override DefragResult Exchange(OpenFile original, TemporaryFile copy, FileStatus status, Action<long>? progress, CancellationToken cancel) =>
            MoveExtents(copy.Handle, original.Handle, status.Size, progress, cancel);

        private const string Busy = "pages of it were being written again and again, so the kernel could not move them (EXT4_IOC_MOVE_EXT: EBUSY; a writer, through write() or a mapping)";

        /// <summary>ext4: moves the mirror's blocks under the file's data, one step at a time; the kernel copies each page.</summary>
        private DefragResult MoveExtents(SafeFileDescriptor donor, SafeFileDescriptor writable, long size, Action<long>? progress, CancellationToken cancel)
        {
            Files.Sync(writable, File.Path, "Cannot flush before defragmenting", "Nothing was changed.");
            Files.AdviseDontNeed(writable, 0, 0);
            long stepBlocks = Math.Max(1, Options.StepSize / BlockSize);
            long moved = 0;
            string? stopped = null; // why the rest stays as it was
            foreach (RawExtent e in Fiemap.Read(donor, File.Path, 0, (ulong)RoundUp(size), sync: false))
            {
                if (stopped is not null)
                {
                    break;
                }

                long first = (long)e.Logical / BlockSize;
                long last = (Math.Min(e.FileEnd, RoundUp(size)) + BlockSize - 1) / BlockSize;
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
                        stopped = Busy;
                        break;
                    }
                    catch (FileOperationException ex) when (ex.Errno == Errno.EOPNOTSUPP && moved == 0)
                    {
                        // Journalled data the mount options did not show (a superblock default), or a file ext4 cannot
                        // move: nothing was moved, and nothing of the file changed.
                        return Skipped(DefragSkipReason.NotSupportedHere, "ext4 refused to move its extents (EXT4_IOC_MOVE_EXT: EOPNOTSUPP): its data is journalled (data=journal, perhaps as the filesystem's default mount option; or chattr +j with nodelalloc), or it is not in extent format; nothing was changed");
                    }
                    catch (FileOperationException ex) when (ex.Errno == Errno.ENODATA)
                    {
                        // Blocks of the step went meanwhile (a truncate and regrow, a punched hole, a collapsed range):
                        // the kernel moves nothing there. A file changed while it was copied, as elsewhere (before: an
                        // error; found by a hostile review).
                        stopped = "blocks of it were truncated, punched out or collapsed meanwhile, so the kernel had nothing to move there (EXT4_IOC_MOVE_EXT: ENODATA)";
                        break;
                    }

                    if (Options.Flush && n > 0)
                    {
                        // The kernel copied the step's pages into the new blocks through the page cache: written back now
                        // (-Flush, and a throttle's small steps), so the disk writes at the rate the steps go (before: the
                        // kernel's writeback took them seconds later, 12-16 MiB at once under a 4 MiB/s limit; a hostile review).
                        Files.StartWriteback(writable, block * BlockSize, n * BlockSize);
                    }

                    block += n;
                    moved += n * BlockSize;
                    BytesRewrittenSoFar = Math.Min(moved, BytesToRewrite);
                    progress?.Invoke(Math.Min(moved, BytesToRewrite));
                }
            }

            long movedBytes = Math.Min(moved, BytesToRewrite);
            if (stopped is not null && moved == 0)
            {
                return Skipped(DefragSkipReason.ChangedWhileCopying, $"changed while copying: {stopped}; the file is as it was, run it again when it is idle");
            }

            return Finished(Method, stopped is not null
                ? $"moved {SizeFormatter.Format(movedBytes)} of {SizeFormatter.Format(BytesToRewrite)} into new extents; then {stopped}, and the rest stayed as it was: run it again when it is idle"
                : $"moved {SizeFormatter.Format(movedBytes)} into {CopyExtents} new extent(s)", movedBytes, 0, incomplete: stopped is not null);
        }
    }
}
