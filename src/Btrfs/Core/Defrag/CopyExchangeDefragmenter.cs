namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Invoke-BtrfsDefrag's Core for xfs and ext4, the xfs_fsr way: an unnamed file on the same
    /// filesystem is preallocated to mirror the file's layout (holes stay holes, preallocated space
    /// stays preallocated) and kept only if the file would end up with fewer extents or fragments and no
    /// more of either (<see cref="ExchangeOutcome"/>); then the data is put into it and the
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

        /// <summary>Extents the preallocated copy got.</summary>
        private protected long CopyExtents { get; private set; }

        /// <summary>Bytes the exchange rewrites, from the figures before (all that extents cover, or only written data).</summary>
        private protected abstract long BytesRewritten(FragmentationCounter before);

        /// <summary>The copy keeps the file's size while it is preallocated (xfs) rather than getting it (ext4, whose MOVE_EXT needs it).</summary>
        private protected virtual bool CopyKeepsSize => true;

        /// <summary>
        /// Only written data reaches the file (a remap: FIDEDUPERANGE maps no unwritten extent), so the copy
        /// mirrors and holds only the written extents, and the file's unwritten (preallocated) ones stay where
        /// they are.
        /// </summary>
        private protected virtual bool MovesWrittenDataOnly => false;

        /// <summary>A reason this filesystem's kind of exchange leaves the file alone (a warning), or null.</summary>
        private protected virtual (DefragSkipReason Kind, string Reason)? RefusalOfThisFileSystem() => null;

        /// <summary>Gives the empty copy what the exchange needs it to share with the file (identity, allocation hints).</summary>
        private protected virtual void PrepareCopy(OpenFile original, TemporaryFile copy)
        {
        }

        /// <summary>Whether <see cref="PrepareCopy"/> gives the copy the file's owner and group (which another user's file, or one of a group this user is not in, refuses).</summary>
        private protected virtual bool CopyTakesOwner => false;

        /// <summary>
        /// Refuses, when planned (also under -WhatIf), a file whose copy this user could not make: the copy is made in the
        /// file's directory, which this user may have to write in (or which is immutable: nobody may), and given the file's
        /// owner where the exchange needs it. As AccessDenied, so a scheduled run leaves such a file alone (NotWritable)
        /// instead of failing it at its turn on every run, which kept the pass from ever completing (a hostile test).
        /// </summary>
        private void ThrowIfCopyCannotBeMade()
        {
            if (File.Directory is not SafeFileDescriptor dir)
            {
                return;
            }

            int refusal = Files.WriteAndSearchRefusal(dir, ".");
            if (refusal is Errno.EACCES or Errno.EPERM)
            {
                string dirPath = System.IO.Path.GetDirectoryName(File.Path) is { Length: > 0 } d ? d : "/";
                string why = refusal == Errno.EPERM
                    ? "that directory is immutable (chattr +i), where nobody, not even root, may create a file"
                    : "this user may not create files there (it needs write and search permission on the directory, not only on the file)";
                throw new FileOperationException(
                    FileErrorKind.AccessDenied,
                    refusal,
                    "faccessat(W_OK)",
                    File.Path,
                    $"Cannot defragment '{File.Path}': on {File.FileSystem.DisplayName} its extents are exchanged with a new copy's, made in its directory '{dirPath}', and {why}. Nothing was changed.");
            }

            if (CopyTakesOwner)
            {
                MetadataCopy.ThrowIfOwnerCannotBeGiven(File, "defragment");
            }
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

            ThrowIfSpaceShort($"the new copy needs {SizeFormatter.Format(BytesNeeded)} while it is made", "Free some space and try again.");

            Clock.Restart();
            using OpenFile original = File.ReopenForWriting("Cannot open for defragmenting", "Nothing was changed.")
                ?? throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "open", File.Path, $"Cannot defragment '{File.Path}': it was replaced by another file since it was measured. Nothing was changed; run it again.");
            using TemporaryFile copy = CreateDonor();
            FileStatus status = original.Status;

            // 1. What the kernel's exchange needs the two files to share.
            PrepareCopy(original, copy);

            // 2. Allocate the mirror, and give up unless the file would end up better: fewer extents or
            // fragments, and no more of either.
            Mirror(copy.Handle, status.Size);
            FragmentationCounter own = Count(Fiemap.Read(copy.Handle, File.Path, 0, ulong.MaxValue, sync: false), status.Size);
            CopyExtents = own.ExtentCount;
            var between = new UnwrittenBetweenData((ulong)status.Size);
            FragmentationCounter after = Count(
                ExchangeOutcome.After(between.Watch(Fiemap.Read(File, 0, ulong.MaxValue, sync: false)), Fiemap.Read(copy.Handle, File.Path, 0, ulong.MaxValue, sync: false), (ulong)RoundUp(status.Size), MovesWrittenDataOnly, FragmentationCounter.MaxExtent(File.FileSystem.Kind, encoded: false)),
                status.Size);
            if (!Improves(after))
            {
                string why = MovesWrittenDataOnly && between.Bytes > 0 && Improves(own)
                    ? $"{SizeFormatter.Format(between.Bytes)} of preallocated (unwritten) space lies between its data, and on this xfs only written data can be moved (a remap), so the preallocated space would stay where it is, apart from the data"
                    : "the free space is as fragmented as the file";
                return Skipped(DefragSkipReason.NoImprovement, $"no improvement: {why} (it would end up with {after.ExtentCount} extents in {after.FragmentCount} fragments; it has {Before.ExtentCount} in {Before.FragmentCount}); nothing was written");
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
                    $"Cannot defragment a range of '{File.Path}': on {fs} a file is defragmented whole (its extents are exchanged with a new copy's), so -Offset and -Length apply to btrfs only. Run it without them. Nothing was changed.")
                {
                    SameForFileSystem = true, // every file of the tree would be refused the same way: one error
                };
            }

            if (Options.Compress is not null)
            {
                throw new FileOperationException(
                    FileErrorKind.NotSupported,
                    Errno.EOPNOTSUPP,
                    "defragment",
                    File.Path,
                    $"Cannot compress '{File.Path}': {fs} has no transparent compression; -Compress applies to btrfs only. Run it without -Compress to defragment. Nothing was changed.")
                {
                    SameForFileSystem = true,
                };
            }

            InodeFlags flags = CheckWritable();
            Before = FragmentationAnalyzer.Count(File, Options.ExtentThreshold, sync: true);
            BytesToRewrite = BytesRewritten(Before);
            BytesNeeded = RoundUp(MovesWrittenDataOnly ? Before.WrittenBytes : Before.CoveredBytes);
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
                    : Before.ShortRunWrittenBytes == 0
                        ? $"no data in fragments shorter than {FragmentationCounter.ThresholdText(Options.ExtentThreshold, File.FileSystem.Kind)} ({Before.ExtentCount} extents in {Before.FragmentCount} fragments)"
                        // Some, but under half a percent (a review: "no data" was said of a file with 8 KiB of 2 MiB in a short fragment).
                        : $"only {SizeFormatter.Format(Before.ShortRunWrittenBytes)} of its {SizeFormatter.Format(Before.WrittenBytes)} of data lies in fragments shorter than {FragmentationCounter.ThresholdText(Options.ExtentThreshold, File.FileSystem.Kind)}, under half a percent (FragmentationScore 0): not worth copying the whole file ({Before.ExtentCount} extents in {Before.FragmentCount} fragments)";
                Skip(DefragSkipReason.NothingToDo, "nothing to do: " + why, warning: false);
            }
            else if (Before.SharedBytes > 0 && !Options.IncludeShared)
            {
                SharedBytesSkipped = Before.SharedBytes;
                Skip(DefragSkipReason.Shared, $"sharing {SizeFormatter.Format(Before.SharedBytes)} with reflink copies: on {fs} the whole file is exchanged, so it would stop sharing; -IncludeShared rewrites it anyway", warning: false);
            }
            else if (SkippedAsSwapArea())
            {
                return;
            }
            else
            {
                // Too little free space is refused at its turn (Run), with the space free then, as on btrfs: -WhatIf says it
                // would be. (Before: refused here, so -WhatIf wrote an error on xfs and ext4; a hostile review.) A copy this
                // user could not make is refused now, for a file that would be copied (one left alone for another reason
                // is left alone as before; a review).
                ThrowIfCopyCannotBeMade();
                SharedBytesToUnshare = Before.SharedBytes;
            }
        }

        /// <summary>
        /// Whether the file holds a shared extent in [<paramref name="start"/>, + <paramref name="length"/>) now, where it
        /// shared nothing when planned (without -IncludeShared a sharing file is skipped): a reflink copy made while it was
        /// copied, whose sharing the exchange would end. Asked just before each exchange or remap (one FIEMAP).
        /// </summary>
        private protected bool BecameShared(long start, long length)
        {
            long shared = SharedNow(start, length);
            sharedSeen = Math.Max(sharedSeen, shared);
            return shared > 0;
        }

        /// <summary>The most bytes <see cref="BecameShared"/> found shared.</summary>
        private long sharedSeen;

        /// <summary>The skip of a file that became shared while it was copied (<see cref="BecameShared"/>).</summary>
        private protected DefragResult SkippedAsBecameShared()
        {
            SharedBytesSkipped = Math.Max(SharedBytesSkipped, sharedSeen);
            return Skipped(DefragSkipReason.Shared, "became shared while it was copied (a reflink copy made meanwhile): left as it was, so it keeps sharing; -IncludeShared rewrites it anyway (and ends the sharing)");
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
        /// The logically contiguous runs of the file's extents below <paramref name="end"/> (holes
        /// separate them; with <paramref name="writtenOnly"/>, unwritten extents too), from FIEMAP, in order.
        /// </summary>
        private protected IEnumerable<ByteRange> Runs(long end, bool writtenOnly) => Runs(File.Handle, end, writtenOnly, sync: false);

        /// <summary>As <see cref="Runs(long, bool)"/>, of the file open as <paramref name="fd"/> (the file, or its copy).</summary>
        private protected IEnumerable<ByteRange> Runs(SafeFileDescriptor fd, long end, bool writtenOnly, bool sync)
        {
            if (end <= 0)
            {
                yield break;
            }

            long runStart = -1, runEnd = -1;
            foreach (RawExtent e in Fiemap.Read(fd, File.Path, 0, (ulong)end, sync))
            {
                long s = (long)e.Logical, t = Math.Min(e.FileEnd, end);
                if (t <= s || (writtenOnly && !ExchangeOutcome.IsWritten(e)))
                {
                    continue;
                }

                if (s == runEnd)
                {
                    runEnd = t;
                    continue;
                }

                if (runEnd > runStart)
                {
                    yield return new ByteRange(runStart, runEnd);
                }

                (runStart, runEnd) = (s, t);
            }

            if (runEnd > runStart)
            {
                yield return new ByteRange(runStart, runEnd);
            }
        }

        /// <summary>Whether a file laid out as <paramref name="after"/> is better than it is: fewer extents or fragments, and no more of either.</summary>
        private bool Improves(FragmentationCounter after) =>
            after.ExtentCount <= Before.ExtentCount && after.FragmentCount <= Before.FragmentCount
            && (after.ExtentCount < Before.ExtentCount || after.FragmentCount < Before.FragmentCount);

        /// <summary>
        /// Unwritten (preallocated) bytes below the file's size with written data after them, counted while
        /// the file's extents pass by: what a remap, which moves written data only, leaves between the data.
        /// </summary>
        private sealed class UnwrittenBetweenData(ulong size)
        {
            private long pending;

            internal long Bytes { get; private set; }

            internal IEnumerable<RawExtent> Watch(IEnumerable<RawExtent> extents)
            {
                foreach (RawExtent e in extents)
                {
                    if (e.Logical < size && (e.Flags & ExtentFlags.Unwritten) != 0)
                    {
                        pending += (long)(Math.Min(e.End, size) - e.Logical);
                    }
                    else if (e.Logical < size && ExchangeOutcome.IsWritten(e))
                    {
                        Bytes += pending;
                        pending = 0;
                    }

                    yield return e;
                }
            }
        }

        /// <summary>Counts <paramref name="extents"/> (in logical order) as the file's.</summary>
        private FragmentationCounter Count(IEnumerable<RawExtent> extents, long size) =>
            FragmentationCounter.Of(extents, Options.ExtentThreshold, File.FileSystem.Kind, size);

        /// <summary>
        /// Allocates the copy where the file has extents (written or preallocated; written only when
        /// only written data moves) up to its size, one call per logically contiguous run, so the
        /// allocator can place each run in one piece.
        /// </summary>
        private void Mirror(SafeFileDescriptor copy, long size)
        {
            bool keepSize = CopyKeepsSize;
            foreach (ByteRange run in Runs(RoundUp(size), MovesWrittenDataOnly))
            {
                if (Files.TryAllocate(copy, run.Start, run.Length, keepSize) is int failed and not 0)
                {
                    throw DataCopy.Failure(failed, "fallocate", File.Path, 0, size);
                }
            }

            if (!keepSize && Files.TryTruncate(copy, size) is int errno and not 0)
            {
                throw DataCopy.Failure(errno, "ftruncate", File.Path, 0, size);
            }
        }

    }
}
