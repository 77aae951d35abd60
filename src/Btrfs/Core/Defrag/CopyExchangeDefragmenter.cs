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
    /// the old extents and frees them when closed. Whole-file only. The calls themselves are
    /// <see cref="XfsExchange"/>, <see cref="Clone.Dedupe"/> and <see cref="Ext4MoveExtents"/>.
    /// </summary>
    public sealed class CopyExchangeDefragmenter : Defragmenter
    {
        private readonly DefragMethod method;
        private readonly int blockSize;
        private long copyExtents;

        /// <summary>Bytes per FIDEDUPERANGE step: both files stay locked for a step, so not the kernel's 1 GiB.</summary>
        internal const long DedupeStep = 64L << 20;

        private readonly XfsFeatures xfsFeatures;

        internal CopyExchangeDefragmenter(OpenFile file, DefragOptions options)
            : base(file, options)
        {
            xfsFeatures = file.FileSystem.Kind == FileSystemKind.Xfs ? XfsExchange.Features(file.Handle) : XfsFeatures.None;
            method = file.FileSystem.Kind == FileSystemKind.Ext4 ? DefragMethod.Ext4MoveExtents
                : xfsFeatures.HasFlag(XfsFeatures.ExchangeRange) ? DefragMethod.XfsExchangeRange
                : xfsFeatures.HasFlag(XfsFeatures.ReverseMapping) ? DefragMethod.XfsSwapExtents
                : xfsFeatures.HasFlag(XfsFeatures.Reflink) ? DefragMethod.XfsDedupeRange
                : DefragMethod.XfsSwapExtents;
            blockSize = (int)Clone.BlockSize(file.Handle);
        }

        /// <inheritdoc/>
        public override DefragMethod Method => method;

        /// <inheritdoc/>
        public override DefragResult Run(Action<long>? progress = null, CancellationToken cancel = default)
        {
            if (SkipReason is not null)
            {
                return Skipped(SkipReason);
            }

            Clock.Restart();
            using OpenFile original = File.ReopenForWriting("Cannot open for defragmenting", "Nothing was changed.")
                ?? throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "open", File.Path, $"Cannot defragment '{File.Path}': it was replaced by another file since it was measured. Nothing was changed; run it again.");
            using TemporaryFile copy = CreateDonor();
            SafeFileDescriptor writable = original.Handle;
            FileStatus status = original.Status;

            // 1. The same identity the kernel checks (owner, project, extent size hints; xfs: the
            //    extended attributes too, so both attribute forks start at the same offset). A remap
            //    moves only data extents: the allocation hints are enough.
            if (method is DefragMethod.XfsSwapExtents or DefragMethod.XfsExchangeRange)
            {
                XfsExchange.CopyAllocationHints(File.Handle, copy.Handle, File.Path, "Nothing was changed.");
                MetadataCopy.Copy(original, copy.Handle, File.Path, InodeAttributes.Get(copy.Handle, File.Path), InodeAttributes.Get(writable, File.Path));
            }
            else if (method == DefragMethod.XfsDedupeRange)
            {
                XfsExchange.CopyAllocationHints(File.Handle, copy.Handle, File.Path, "Nothing was changed.");
            }

            // 2. Allocate the mirror, and give up unless it has fewer extents.
            Mirror(copy.Handle, status.Size);
            copyExtents = Fiemap.Count(copy.Handle, File.Path, 0, ulong.MaxValue);
            if (copyExtents >= Before.ExtentCount)
            {
                return Skipped($"no improvement: the free space is as fragmented as the file (a new copy would get {copyExtents} extents, the file has {Before.ExtentCount}); nothing was written");
            }

            cancel.ThrowIfCancellationRequested();
            return method switch
            {
                DefragMethod.Ext4MoveExtents => MoveExtents(copy.Handle, writable, status.Size, progress, cancel),
                DefragMethod.XfsDedupeRange => CopyAndRemap(original, copy, writable, status, progress, cancel),
                _ => CopyAndExchange(original, copy.Handle, writable, status, progress, cancel),
            };
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
            BytesToRewrite = method == DefragMethod.Ext4MoveExtents ? Before.CoveredBytes : Before.WrittenBytes;
            BytesNeeded = RoundUp(Before.CoveredBytes);
            if (SkipUnchangeable(flags))
            {
                return;
            }

            if (method != DefragMethod.Ext4MoveExtents && XfsExchange.IsNoDefrag(File.Handle))
            {
                Skip("marked no-defrag (xfs_io -c 'chattr +f'): left as it is, as xfs_fsr does", warning: true);
            }
            else if (method == DefragMethod.XfsSwapExtents && !xfsFeatures.HasFlag(XfsFeatures.ReverseMapping) && Before.ExtentCount > 1)
            {
                Skip("on an xfs made without reflink and without rmapbt: the only way to defragment there is XFS_IOC_SWAPEXT (what xfs_fsr does), and on kernels since 5.8 a crash after such a swap can leave the filesystem unmountable (log recovery fails with \"Structure needs cleaning\") until xfs_repair -L; left as it is. An xfs made with reflink=1 (mkfs.xfs's default) or rmapbt=1 is defragmented safely", warning: true);
            }
            else if (Before.Score == 0 || Before.ExtentCount <= Before.BestExtentCount)
            {
                string why = Before.ExtentCount <= Before.BestExtentCount
                    ? $"it has the fewest extents possible ({Before.ExtentCount}: one per run of data between holes)"
                    : $"no data in fragments shorter than {SizeFormatter.Format(Options.ExtentThreshold)} ({Before.ExtentCount} extents in {Before.FragmentCount} fragments)";
                Skip("nothing to do: " + why, warning: false);
            }
            else if (Before.SharedBytes > 0 && !Options.IncludeShared)
            {
                SharedBytesSkipped = Before.SharedBytes;
                Skip($"sharing {SizeFormatter.Format(Before.SharedBytes)} with reflink copies: on {fs} the whole file is exchanged, so it would stop sharing; -IncludeShared rewrites it anyway", warning: false);
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

        private long RoundUp(long bytes) => (bytes + blockSize - 1) / blockSize * blockSize;

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
            bool keepSize = method != DefragMethod.Ext4MoveExtents;
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
            if (method == DefragMethod.Ext4MoveExtents && Files.TryTruncate(copy, size) is int errno and not 0)
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

        /// <summary>xfs: records the file's state, copies the data into the mirror, and has the kernel exchange the extents if the file did not change.</summary>
        private DefragResult CopyAndExchange(OpenFile original, SafeFileDescriptor copy, SafeFileDescriptor writable, FileStatus status, Action<long>? progress, CancellationToken cancel)
        {
            CommitStamp stamp = method == DefragMethod.XfsExchangeRange ? XfsExchange.StartCommit(writable, File.Path, "Nothing was changed.") : default;
            long copied = DataCopy.Copy(original, copy, File.Path, status.Size, progress, cancel, preallocate: false);
            if (Files.TrySync(copy) is int syncErrno and not 0)
            {
                throw DataCopy.Failure(syncErrno, "fsync", File.Path, copied, status.Size);
            }

            cancel.ThrowIfCancellationRequested();
            (string operation, int errno) = method == DefragMethod.XfsExchangeRange
                ? ("XFS_IOC_COMMIT_RANGE", XfsExchange.TryCommit(writable, stamp, copy, status.Size))
                : ("XFS_IOC_SWAPEXT", XfsExchange.TrySwapExtents(writable, copy, status));
            if (errno != 0)
            {
                return errno switch
                {
                    Errno.EBUSY or Errno.EFAULT => Skipped($"changed while copying (the kernel refused the exchange: {Errno.Name(errno)}; a writer, or a process that has it mapped); the file is as it was, run it again when it is idle"),
                    Errno.EINVAL => Skipped($"the kernel refused the exchange ({operation}: EINVAL; the two inodes' extent formats do not fit each other); the file is as it was"),
                    _ => throw FileOperationException.FromErrno(errno, operation, File.Path, "Cannot exchange the extents of", "The file is as it was."),
                };
            }

            if (method == DefragMethod.XfsExchangeRange)
            {
                // The commit records the exchange like a write (new modification and change times): give the modification and access times back.
                Metadata.SetTimes(writable, status.AccessTime, status.ModifyTime, File.Path, "The extents were exchanged, but cannot restore the modification time of");
            }

            return Finished(method, $"copied {SizeFormatter.Format(copied)} into a new copy of {copyExtents} extent(s) and exchanged the extents", copied, SharedBytesToUnshare);
        }

        /// <summary>
        /// xfs with reflink: copies the data into the contiguous mirror, then has the kernel remap each
        /// step of the file onto it (FIDEDUPERANGE: donor as source, the file as destination), which it
        /// does only where the bytes are still equal, under both files' locks. Each step is an ordinary
        /// logged remap, so a crash at any moment leaves the filesystem recoverable and the file's data
        /// whole (partly on old extents, partly on new ones). The unnamed donor is closed before the
        /// file is measured again: the file then holds the new extents alone.
        /// </summary>
        private DefragResult CopyAndRemap(OpenFile original, TemporaryFile donor, SafeFileDescriptor writable, FileStatus status, Action<long>? progress, CancellationToken cancel)
        {
            // Progress: the copy is the first half of the work, the remap (the kernel reads and compares
            // both) the second.
            long total = Math.Max(1, BytesToRewrite);
            long copied = DataCopy.Copy(original, donor.Handle, File.Path, status.Size, progress is null ? null : c => progress(Math.Min(c, total) / 2), cancel, preallocate: false);
            long done = 0, differing = 0;
            foreach (ByteRange range in DataCopy.DataRanges(writable, status.Size, File.Path))
            {
                for (long at = range.Start; at < range.End;)
                {
                    cancel.ThrowIfCancellationRequested();
                    long n = Math.Min(DedupeStep, range.End - at);
                    differing += Remap(donor.Handle, writable, at, n, done == 0);

                    // xfs reports the whole length even when it stopped early: FIEMAP below is the truth.
                    at += n;
                    done += n;
                    progress?.Invoke((total + Math.Min(done, total)) / 2);
                }
            }

            donor.Dispose(); // the unnamed copy's references go: the file holds the new extents alone
            string reason = $"copied {SizeFormatter.Format(copied)} into a new copy of {copyExtents} extent(s) and remapped the file onto it (FIDEDUPERANGE)"
                + (differing > 0 ? $"; {SizeFormatter.Format(differing)} changed while copying and stayed as it was" : string.Empty);
            return Finished(method, reason, copied, SharedBytesToUnshare);
        }

        /// <summary>
        /// One FIDEDUPERANGE step; where the kernel finds the bytes differ (a writer changed them since
        /// the copy), the step is halved down to 1 MiB so the rest is still remapped. Returns the bytes
        /// left as they were.
        /// </summary>
        private long Remap(SafeFileDescriptor donor, SafeFileDescriptor writable, long at, long n, bool first)
        {
            DedupeOutcome outcome = Clone.Dedupe(donor, at, n, writable, at);
            if (outcome.Errno != 0)
            {
                throw FileOperationException.FromErrno(outcome.Errno, "FIDEDUPERANGE", File.Path, first ? "Cannot remap the new extents into" : "Cannot remap the rest of the new extents into", first ? "The file is as it was." : "The data is intact; the file is partly defragmented.");
            }

            if (!outcome.Differs)
            {
                return 0;
            }

            const long Smallest = 1L << 20;
            if (n <= Smallest)
            {
                return n;
            }

            long half = (n / 2 + blockSize - 1) / blockSize * blockSize;
            return Remap(donor, writable, at, half, first) + Remap(donor, writable, at + half, n - half, false);
        }

        /// <summary>ext4: moves the mirror's blocks under the file's data, one step at a time; the kernel copies each page.</summary>
        private DefragResult MoveExtents(SafeFileDescriptor donor, SafeFileDescriptor writable, long size, Action<long>? progress, CancellationToken cancel)
        {
            Files.Sync(writable, File.Path, "Cannot flush before defragmenting", "Nothing was changed.");
            long stepBlocks = Math.Max(1, Options.StepSize / blockSize);
            long moved = 0;
            foreach (RawExtent e in Fiemap.Read(donor, File.Path, 0, (ulong)RoundUp(size), sync: false))
            {
                long first = (long)e.Logical / blockSize;
                long last = (Math.Min((long)e.End, RoundUp(size)) + blockSize - 1) / blockSize;
                for (long block = first; block < last;)
                {
                    cancel.ThrowIfCancellationRequested();
                    long n = Ext4MoveExtents.Move(writable, donor, block, Math.Min(stepBlocks, last - block), blockSize, File.Path, "The data is intact; the file may be partly defragmented.");
                    block += n;
                    moved += n * blockSize;
                    progress?.Invoke(Math.Min(moved, BytesToRewrite));
                }
            }

            long movedBytes = Math.Min(moved, BytesToRewrite);
            return Finished(method, $"moved {SizeFormatter.Format(movedBytes)} into {copyExtents} new extent(s)", movedBytes, 0);
        }
    }
}
