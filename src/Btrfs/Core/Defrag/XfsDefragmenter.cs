namespace Btrfs.Core
{
    using System;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// xfs's exchange for <see cref="CopyExchangeDefragmenter"/>, chosen by the filesystem's features:
    /// XFS_IOC_START_COMMIT/COMMIT_RANGE where it can exchange ranges, XFS_IOC_SWAPEXT with rmapbt, and
    /// otherwise, with reflink, a remap onto the copy with FIDEDUPERANGE (see the base class for why);
    /// an xfs with neither reflink nor rmapbt is left alone. The calls are <see cref="XfsExchange"/> and
    /// <see cref="Clone.Dedupe"/>.
    /// </summary>
    public sealed class XfsDefragmenter : CopyExchangeDefragmenter
    {
        /// <summary>Bytes per FIDEDUPERANGE step: both files stay locked for a step, so not the kernel's 1 GiB.</summary>
        internal const long DedupeStep = 64L << 20;

        private readonly XfsFeatures features;
        private readonly DefragMethod method;

        /// <summary>Set when a remap step was refused because the file's size changed since the copy.</summary>
        private bool resized;

        internal XfsDefragmenter(OpenFile file, DefragOptions options)
            : base(file, options)
        {
            features = XfsExchange.Features(file.Handle);
            method = features.HasFlag(XfsFeatures.ExchangeRange) ? DefragMethod.XfsExchangeRange
                : features.HasFlag(XfsFeatures.ReverseMapping) ? DefragMethod.XfsSwapExtents
                : features.HasFlag(XfsFeatures.Reflink) ? DefragMethod.XfsDedupeRange
                : DefragMethod.XfsSwapExtents;
        }

        /// <inheritdoc/>
        public override DefragMethod Method => method;

        /// <summary>
        /// The remap reports the copy as the first half of its progress and the remap (which writes nothing) as
        /// the second: what was written is twice the progress, up to the whole copy.
        /// </summary>
        internal override long WrittenFor(long progress) =>
            method == DefragMethod.XfsDedupeRange ? Math.Min(2 * progress, Math.Max(1, BytesToRewrite)) : progress;

        /// <inheritdoc/>
        private protected override long BytesRewritten(FragmentationCounter before) => before.WrittenBytes;

        /// <inheritdoc/>
        private protected override bool MovesWrittenDataOnly => method == DefragMethod.XfsDedupeRange;

        /// <inheritdoc/>
        private protected override bool WriterKeepsOldExtents => method == DefragMethod.XfsDedupeRange;

        /// <summary>
        /// No fsync of the file after its extents changed (xfs_fsr makes none either): every exchange or
        /// remap is made of transactions in xfs's log, so the file's bytes are whole at every moment, and
        /// FIEMAP (the in-memory extent tree) already shows the new extents. The data the file now points
        /// to was on disk before the change: the copy is fsynced before an exchange; a remap writes the
        /// copy's pages back first (generic_remap_file_range_prep), their unwritten extents are converted
        /// at I/O completion, before the remap's transaction, and each checkpoint of the log starts with
        /// a cache flush. The log reaches the disk within about 30 s (xfs_syncd_centisecs) or at the next
        /// sync; a crash before then leaves the file's bytes whole, on old extents, new ones, or (swap and
        /// remap: one transaction per step) some of each. Each fsync here cost 90 ms per 128 MiB file of
        /// 8,000 extents (the log of the remap forced to disk), a third of what the copy costs.
        /// </summary>
        internal override bool SyncWhenFinished => false;

        /// <inheritdoc/>
        private protected override (DefragSkipReason Kind, string Reason)? RefusalOfThisFileSystem() =>
            XfsExchange.IsNoDefrag(File.Handle) ? (DefragSkipReason.NoDefragFlag, "marked no-defrag (xfs_io -c 'chattr +f'): left as it is, as xfs_fsr does")
            : method == DefragMethod.XfsSwapExtents && !features.HasFlag(XfsFeatures.ReverseMapping) && Before.ExtentCount > 1
                ? (DefragSkipReason.UnsafeOnThisFileSystem, "on an xfs made without reflink and without rmapbt: the only way to defragment there is XFS_IOC_SWAPEXT (what xfs_fsr does), and on kernels since 5.8 a crash after such a swap can leave the filesystem unmountable (log recovery fails with \"Structure needs cleaning\") until xfs_repair -L; left as it is. An xfs made with reflink=1 (mkfs.xfs's default) or rmapbt=1 is defragmented safely")
            : null;

        /// <inheritdoc/>
        private protected override bool CopyTakesOwner => method is DefragMethod.XfsSwapExtents or DefragMethod.XfsExchangeRange;

        /// <summary>
        /// The same identity the kernel checks (owner, project, extent size hints; for an exchange the
        /// extended attributes too, so both attribute forks start at the same offset). A remap moves only
        /// data extents: the allocation hints are enough.
        /// </summary>
        private protected override void PrepareCopy(OpenFile original, TemporaryFile copy)
        {
            XfsExchange.CopyAllocationHints(File.Handle, copy.Handle, File.Path, "Nothing was changed.");
            if (CopyTakesOwner)
            {
                MetadataCopy.Copy(original, copy.Handle, File.Path, InodeAttributes.Get(copy.Handle, File.Path), InodeAttributes.Get(original.Handle, File.Path));
            }
        }

        /// <summary>
        /// How much of the copy is written before its writeback is started: each step with -Flush or a throttle (which
        /// gives small steps), so the disk writes at the rate the copy is made. (Before: a throttled copy sat in the page
        /// cache and reached the disk in a burst at the end, 12 MiB in one second under a 4 MiB/s limit; a hostile review.)
        /// </summary>
        private long WritebackWindow => Options.Flush ? Math.Max(Options.StepSize, 256 * 1024) : DataCopy.WritebackWindow;

        /// <inheritdoc/>
        private protected override DefragResult Exchange(OpenFile original, TemporaryFile copy, FileStatus status, Action<long>? progress, CancellationToken cancel) =>
            method == DefragMethod.XfsDedupeRange
                ? CopyAndRemap(original, copy, original.Handle, status, progress, cancel)
                : CopyAndExchange(original, copy.Handle, original.Handle, status, progress, cancel);

        /// <summary>xfs: records the file's state, copies the data into the mirror, and has the kernel exchange the extents if the file did not change.</summary>
        private DefragResult CopyAndExchange(OpenFile original, SafeFileDescriptor copy, SafeFileDescriptor writable, FileStatus status, Action<long>? progress, CancellationToken cancel)
        {
            CommitStamp stamp = method == DefragMethod.XfsExchangeRange ? XfsExchange.StartCommit(writable, File.Path, "Nothing was changed.") : default;

            // The written extents, from FIEMAP after writing back what is dirty (now, after the state the
            // kernel checks was taken: whatever is written later makes it refuse the exchange). SEEK_DATA
            // would also report preallocated ranges whose zeros the copy's own read-ahead has cached, and
            // the copy would turn them into written zeros; left out, they stay preallocated in the copy.
            long copied = DataCopy.Copy(original, copy, File.Path, status.Size, progress, cancel, preallocate: false, ranges: () => Runs(writable, status.Size, writtenOnly: true, sync: true), writebackWindow: WritebackWindow);
            if (Files.TrySync(copy) is int syncErrno and not 0)
            {
                throw DataCopy.Failure(syncErrno, "fsync", File.Path, copied, status.Size);
            }

            cancel.ThrowIfCancellationRequested();
            if (BecameShared(0, status.Size))
            {
                // Before: exchanged all the same, the copy's sharing ended (a hostile test). The exchange is not made.
                return SkippedAsBecameShared();
            }

            (string operation, int errno) = method == DefragMethod.XfsExchangeRange
                ? ("XFS_IOC_COMMIT_RANGE", XfsExchange.TryCommit(writable, stamp, copy, status.Size))
                : ("XFS_IOC_SWAPEXT", XfsExchange.TrySwapExtents(writable, copy, status));
            if (errno != 0)
            {
                return errno switch
                {
                    Errno.EBUSY or Errno.EFAULT => Skipped(DefragSkipReason.ChangedWhileCopying, $"changed while copying (the kernel refused the exchange: {Errno.Name(errno)}; {(errno == Errno.EFAULT ? "its size changed: a writer" : "a writer, or a process that has it mapped")}); the file is as it was, run it again when it is idle"),
                    Errno.EINVAL => Skipped(DefragSkipReason.ExchangeRefused, $"the kernel refused the exchange ({operation}: EINVAL; the two inodes' extent formats do not fit each other); the file is as it was"),
                    _ => throw FileOperationException.FromErrno(errno, operation, File.Path, "Cannot exchange the extents of", "The file is as it was."),
                };
            }

            if (method == DefragMethod.XfsExchangeRange)
            {
                // The commit records the exchange like a write (new modification and change times): give the modification and access times back.
                Metadata.SetTimes(writable, status.AccessTime, status.ModifyTime, File.Path, "The extents were exchanged, but cannot restore the modification time of");
            }

            return Finished(method, $"copied {SizeFormatter.Format(copied)} into a new copy of {CopyExtents} extent(s) and exchanged the extents", copied, SharedBytesToUnshare);
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
            // The written extents, from FIEMAP (SEEK_DATA would also report unwritten ones whose zeros
            // happen to be in the page cache; they must stay as they are, see MovesWrittenDataOnly). Data a
            // writer puts into them meanwhile stays in the file: neither copied nor remapped.
            long copied = DataCopy.Copy(original, donor.Handle, File.Path, status.Size, progress is null ? null : c => progress(Math.Min(c, total) / 2), cancel, preallocate: false, ranges: () => Runs(status.Size, writtenOnly: true), writebackWindow: WritebackWindow);
            // Remapped: what the copy holds written (its blocks, synced: the copy's writeback may still be
            // under way) where the file is still written. A range a writer turned from unwritten to written
            // since has no data in the copy, and a remap of it would leave a hole (FIDEDUPERANGE maps no
            // unwritten source): it stays as the writer left it.
            long done = 0, differing = 0, sharedSince = 0;
            foreach (ByteRange range in ExchangeOutcome.Common(Runs(donor.Handle, status.Size, writtenOnly: true, sync: true), Runs(status.Size, writtenOnly: true)))
            {
                for (long at = range.Start; at < range.End;)
                {
                    cancel.ThrowIfCancellationRequested();
                    long n = Math.Min(DedupeStep, range.End - at);
                    if (BecameShared(at, n))
                    {
                        // A reflink copy made meanwhile shares it: left as it was (before: remapped, the copy's sharing
                        // ended. A hostile test). What was remapped before stays remapped.
                        sharedSince += range.End - at;
                        done += range.End - at;
                        break;
                    }

                    differing += Remap(donor.Handle, writable, at, n, done == 0, status.Size);

                    // xfs reports the whole length even when it stopped early: FIEMAP below is the truth.
                    at += n;
                    done += n;
                    BytesRewrittenSoFar = done - differing;
                    progress?.Invoke((total + Math.Min(done, total)) / 2);
                }
            }

            donor.Dispose(); // the unnamed copy's references go: the file holds the new extents alone
            if (sharedSince > 0 && sharedSince + differing >= done)
            {
                return SkippedAsBecameShared();
            }

            if (differing + sharedSince >= done)
            {
                // A writer changed every step while it was copied: nothing was remapped.
                return Skipped(DefragSkipReason.ChangedWhileCopying, resized
                    ? "changed while copying (its size changed, so the kernel refused to remap it); the file is as the writer left it, run it again when it is idle"
                    : "changed while copying (every part differed from the copy when the kernel compared them, so none was remapped); the file is as the writer left it, run it again when it is idle");
            }

            string reason = $"copied {SizeFormatter.Format(copied)} into a new copy of {CopyExtents} extent(s) and remapped the file onto it (FIDEDUPERANGE)"
                + (differing > 0 ? $"; {SizeFormatter.Format(differing)} changed while copying{(resized ? " (its size changed)" : string.Empty)} and stayed as it was" : string.Empty)
                + (sharedSince > 0 ? $"; {SizeFormatter.Format(sharedSince)} became shared while it ran (a reflink copy made meanwhile) and stayed as it was, so it stays shared" : string.Empty);
            SharedBytesSkipped += sharedSince;
            return Finished(method, reason, done - differing - sharedSince, SharedBytesToUnshare, incomplete: differing > 0 || sharedSince > 0);
        }

        /// <summary>
        /// One FIDEDUPERANGE step; where the kernel finds the bytes differ (a writer changed them since
        /// the copy), the step is halved down to 1 MiB so the rest is still remapped. Returns the bytes
        /// left as they were.
        /// </summary>
        private long Remap(SafeFileDescriptor donor, SafeFileDescriptor writable, long at, long n, bool first, long size)
        {
            DedupeOutcome outcome = Clone.Dedupe(donor, at, n, writable, at);
            if (outcome.Errno == Errno.EINVAL && FileStatus.Of(writable) is { } now && now.Size != size)
            {
                resized = true;
                return n; // cut short or grown since the copy: a range past its end (or its new, unaligned end) is refused; it stays as it is
            }

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

            long half = (n / 2 + BlockSize - 1) / BlockSize * BlockSize;
            return Remap(donor, writable, at, half, first, size) + Remap(donor, writable, at + half, n - half, false, size);
        }
    }
}
