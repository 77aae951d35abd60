namespace Btrfs.Core
{
    using System;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Invoke-BtrfsDefrag's Core for xfs and ext4, the xfs_fsr way: an unnamed file on the same
    /// filesystem is preallocated to mirror the file's layout (holes stay holes, preallocated space
    /// stays preallocated) and kept only if it got fewer extents; then the data is put into it and the
    /// two files' extents are exchanged by the kernel, which refuses if the file changed meanwhile:
    /// <list type="bullet">
    /// <item>xfs with the exchange-range feature: XFS_IOC_START_COMMIT before the copy, XFS_IOC_COMMIT_RANGE after (EBUSY if changed);</item>
    /// <item>xfs with the reverse-mapping btree (rmapbt): XFS_IOC_SWAPEXT with the file's change and modification times from before the copy (EBUSY if changed);</item>
    /// <item>other xfs with reflink (mkfs.xfs's default): no exchange at all. The file's ranges are
    /// remapped onto the copy's contiguous extents with FIDEDUPERANGE in steps: the kernel compares the
    /// bytes under both files' locks (a range a writer changed meanwhile stays as it was), every step is
    /// an ordinary logged remap, and closing the unnamed copy drops its references, so the file keeps
    /// the new extents unshared. XFS_IOC_SWAPEXT is avoided there because on kernels since 5.8 log
    /// recovery of a swap that moved a btree-format fork without rmapbt fails its checksum check
    /// ("Structure needs cleaning", xfs_dinode_verify): a crash after such a swap left the filesystem
    /// unmountable until xfs_repair -L (xfs_fsr has the same problem);</item>
    /// <item>xfs with neither reflink nor rmapbt: no safe way exists, so the file is skipped with a warning;</item>
    /// <item>ext4: EXT4_IOC_MOVE_EXT, which copies each page itself under its locks, in steps.</item>
    /// </list>
    /// The inode stays the same (this is an exchange, not a replacement); the unnamed file ends up with
    /// the old extents and frees them when closed. Whole-file only. This class holds what both share
    /// (the plan, the unnamed copy, its preallocation); <see cref="XfsDefragmenter"/> and
    /// <see cref="Ext4Defragmenter"/> the exchange itself.
    /// </summary>
    public abstract class CopyExchangeDefragmenter : Defragmenter
    {
        private protected CopyExchangeDefragmenter(OpenFile file, DefragOptions options)
            : base(file, options)
        {
            BlockSize = (int)Clone.BlockSize(file.Handle);
        }

        /// <summary>The filesystem's block size (statfs): allocations and steps align to it.</summary>
        private protected int BlockSize { get; }

        /// <summary>Extents the preallocated copy got (fewer than the file's, or the file is left alone).</summary>
        private protected long CopyExtents { get; private set; }

        /// <summary>Bytes the exchange rewrites, from the figures before (all that extents cover, or only written data).</summary>
        private protected abstract long BytesRewritten(FragmentationCounter before);

        /// <summary>The copy keeps the file's size while it is preallocated (xfs) rather than getting it (ext4, whose MOVE_EXT needs it).</summary>
        private protected virtual bool CopyKeepsSize => true;

        /// <summary>A reason this filesystem's kind of exchange leaves the file alone (a warning), or null.</summary>
        private protected virtual (DefragSkipReason Kind, string Reason)? RefusalOfThisFileSystem() => null;

        /// <summary>Gives the empty copy what the exchange needs it to share with the file (identity, allocation hints).</summary>
        private protected virtual void PrepareCopy(OpenFile original, TemporaryFile copy)
        {
        }

        /// <summary>Puts the data into the preallocated copy and has the kernel exchange (or move, or remap) the extents.</summary>
        private protected abstract DefragResult Exchange(OpenFile original, TemporaryFile copy, FileStatus status, Action<long>? progress, CancellationToken cancel);

        /// <inheritdoc/>
        public override DefragResult Run(Action<long>? progress = null, CancellationToken cancel = default)
        {
            if (SkipReason is not null)
            {
                return Skipped();
            }

            Clock.Restart();
            using OpenFile original = File.ReopenForWriting("Cannot open for defragmenting", "Nothing was changed.")
                ?? throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "open", File.Path, $"Cannot defragment '{File.Path}': it was replaced by another file since it was measured. Nothing was changed; run it again.");
            using TemporaryFile copy = CreateDonor();
            FileStatus status = original.Status;

            // 1. What the kernel's exchange needs the two files to share.
            PrepareCopy(original, copy);

            // 2. Allocate the mirror, and give up unless it has fewer extents.
            Mirror(copy.Handle, status.Size);
            CopyExtents = Fiemap.Count(copy.Handle, File.Path, 0, ulong.MaxValue);
            if (CopyExtents >= Before.ExtentCount)
            {
                return Skipped(DefragSkipReason.NoImprovement, $"no improvement: the free space is as fragmented as the file (a new copy would get {CopyExtents} extents, the file has {Before.ExtentCount}); nothing was written");
            }

            cancel.ThrowIfCancellationRequested();
            return Exchange(original, copy, status, progress, cancel);
        }

        /// <inheritdoc/>
        private protected override void Plan()
        {
            string fs = File.FileSystem.DisplayName;
            if (Options.Offset != 0 || Options.Length is not null)
            {
                throw new FileOperationException(
                    FileErrorKind.InvalidArgument,
                    Errno.EINVAL,
                    "defragment",
                    File.Path,
                    $"Cannot defragment a range of '{File.Path}': on {fs} a file is defragmented whole (its extents are exchanged with a new copy's), so -Offset and -Length apply to btrfs only. Run it without them. Nothing was changed.");
            }

            if (Options.Compress is not null)
            {
                throw new FileOperationException(
                    FileErrorKind.NotSupported,
                    Errno.EOPNOTSUPP,
                    "defragment",
                    File.Path,
                    $"Cannot compress '{File.Path}': {fs} has no transparent compression; -Compress applies to btrfs only. Run it without -Compress to defragment. Nothing was changed.");
            }

            InodeFlags flags = CheckWritable();
            Before = FragmentationAnalyzer.Count(File, Options.ExtentThreshold, sync: true);
            BytesToRewrite = BytesRewritten(Before);
            BytesNeeded = RoundUp(Before.CoveredBytes);
            if (SkipUnchangeable(flags))
            {
                return;
            }

            if (RefusalOfThisFileSystem() is (DefragSkipReason kind, string refusal))
            {
                Skip(kind, refusal, warning: true);
            }
            else if (Before.Score == 0 || Before.ExtentCount <= Before.BestExtentCount)
            {
                string why = Before.ExtentCount <= Before.BestExtentCount
                    ? $"it has the fewest extents possible ({Before.ExtentCount}: one per run of data between holes)"
                    : $"no data in fragments shorter than {SizeFormatter.Format(Options.ExtentThreshold)} ({Before.ExtentCount} extents in {Before.FragmentCount} fragments)";
                Skip(DefragSkipReason.NothingToDo, "nothing to do: " + why, warning: false);
            }
            else if (Before.SharedBytes > 0 && !Options.IncludeShared)
            {
                SharedBytesSkipped = Before.SharedBytes;
                Skip(DefragSkipReason.Shared, $"sharing {SizeFormatter.Format(Before.SharedBytes)} with reflink copies: on {fs} the whole file is exchanged, so it would stop sharing; -IncludeShared rewrites it anyway", warning: false);
            }
            else if (BytesNeeded > AvailableBytes)
            {
                throw new FileOperationException(
                    FileErrorKind.InsufficientSpace,
                    Errno.ENOSPC,
                    "statfs",
                    File.Path,
                    $"Cannot defragment '{File.Path}': the new copy needs {SizeFormatter.Format(BytesNeeded)} while it is made, and {SizeFormatter.Format(AvailableBytes)} is free. Free some space and try again. Nothing was changed.");
            }
            else
            {
                SharedBytesToUnshare = Before.SharedBytes;
            }
        }

        /// <summary><paramref name="bytes"/> rounded up to whole blocks.</summary>
        private protected long RoundUp(long bytes) => (bytes + BlockSize - 1) / BlockSize * BlockSize;

        /// <summary>The unnamed donor file, in the file's own directory (the descriptor it was opened relative to).</summary>
        private TemporaryFile CreateDonor()
        {
            string dirPath = System.IO.Path.GetDirectoryName(File.Path) is { Length: > 0 } d ? d : "/";
            SafeFileDescriptor dir = File.Directory ?? throw new InvalidOperationException("the file must be opened relative to its directory");
            return TemporaryFile.Create(dir, dirPath, File.Name, forceNamed: false);
        }

        /// <summary>
        /// Allocates the copy where the file has extents (written or preallocated) up to its size,
        /// one call per logically contiguous run, so the allocator can place each run in one piece.
        /// </summary>
        private void Mirror(SafeFileDescriptor copy, long size)
        {
            long end = RoundUp(size);
            bool keepSize = CopyKeepsSize;
            long runStart = -1, runEnd = -1;
            foreach (RawExtent e in Fiemap.Read(File, 0, (ulong)end, sync: false))
            {
                long s = (long)e.Logical, t = Math.Min((long)e.End, end);
                if (t <= s)
                {
                    continue;
                }

                if (s == runEnd)
                {
                    runEnd = t;
                    continue;
                }

                Allocate(copy, keepSize, runStart, runEnd, size);
                (runStart, runEnd) = (s, t);
            }

            Allocate(copy, keepSize, runStart, runEnd, size);
            if (!keepSize && Files.TryTruncate(copy, size) is int errno and not 0)
            {
                throw DataCopy.Failure(errno, "ftruncate", File.Path, 0, size);
            }
        }

        private void Allocate(SafeFileDescriptor copy, bool keepSize, long start, long end, long size)
        {
            if (start >= 0 && end > start && Files.TryAllocate(copy, start, end - start, keepSize) is int errno and not 0)
            {
                throw DataCopy.Failure(errno, "fallocate", File.Path, 0, size);
            }
        }

    }
}
