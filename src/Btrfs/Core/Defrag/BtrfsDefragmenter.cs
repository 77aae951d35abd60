namespace Btrfs.Core
{
    using System;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>
    /// Invoke-BtrfsDefrag's Core for btrfs: hands only the planned ranges (small unshared extents that
    /// rewriting can join) to BTRFS_IOC_DEFRAG_RANGE in steps, reporting progress and stopping between
    /// steps.
    /// </summary>
    public sealed class BtrfsDefragmenter : Defragmenter
    {
        private static int levelSupport; // 0 unknown, 1 yes, -1 no

        internal BtrfsDefragmenter(OpenFile file, DefragOptions options)
            : base(file, options)
        {
        }

        /// <inheritdoc/>
        public override DefragMethod Method => DefragMethod.BtrfsDefragRange;

        /// <summary>
        /// Rewrites the planned ranges in steps of <see cref="DefragOptions.StepSize"/>, then fsyncs
        /// and measures again. <paramref name="progress"/> gets the bytes handed to the kernel so far;
        /// cancellation stops after the current step (the file stays consistent: each step is whole).
        /// </summary>
        public override DefragResult Run(Action<long>? progress = null, CancellationToken cancel = default)
        {
            if (SkipReason is not null)
            {
                return Skipped();
            }

            Clock.Restart();
            var planner = new DefragPlanner(Options, File.FileSystem.Kind, File.Size);
            long done = 0;
            foreach (ByteRange range in planner.Plan(RangeExtents()))
            {
                for (long pos = range.Start; pos < range.End;)
                {
                    cancel.ThrowIfCancellationRequested();
                    long len = Math.Min(Options.StepSize, range.End - pos);
                    DefragStep(pos, len);
                    pos += len;
                    done += len;
                    progress?.Invoke(Math.Min(done, BytesToRewrite));
                }
            }

            return Finished(
                DefragMethod.BtrfsDefragRange,
                $"rewrote {SizeFormatter.Format(planner.BytesToRewrite)} in extents below {SizeFormatter.Format(Options.ExtentThreshold)}",
                planner.BytesToRewrite,
                planner.SharedBytesToUnshare);
        }

        /// <summary>Whether the kernel accepts BTRFS_DEFRAG_RANGE_COMPRESS_LEVEL (probed once per process).</summary>
        public override bool CompressionLevelSupported()
        {
            if (levelSupport == 0)
            {
                levelSupport = BtrfsDefrag.KnowsCompressionLevel(File.Handle, File.Size, (uint)DefragCompression.Zstd) ? 1 : -1;
            }

            return levelSupport > 0;
        }

        /// <inheritdoc/>
        private protected override void Plan()
        {
            InodeFlags flags = CheckWritable();

            // One pass: the whole file for the figures, the requested range for the plan.
            Before = new FragmentationCounter(Options.ExtentThreshold, FileSystemKind.Btrfs, File.Size);
            var planner = new DefragPlanner(Options, FileSystemKind.Btrfs, File.Size);
            foreach (ByteRange unused in planner.Plan(Counted(Before)))
            {
                // Counting only: the ranges are planned again, streamed, when the file is rewritten.
            }

            Before.Finish();
            BytesToRewrite = planner.BytesToRewrite;
            SharedBytesSkipped = planner.SharedBytesSkipped;
            SharedBytesToUnshare = planner.SharedBytesToUnshare;
            BytesNeeded = SharedBytesToUnshare; // in place: only what stops being shared needs new space for good

            if (SkipUnchangeable(flags))
            {
                return;
            }

            if (planner.InlineOnly)
            {
                Skip(DefragSkipReason.InlineOnly, "inline-only: its data lives in the metadata, there are no extents to rewrite", warning: true);
            }
            else if (BytesToRewrite == 0)
            {
                string shared = SharedBytesSkipped > 0 ? $"; {SizeFormatter.Format(SharedBytesSkipped)} in small shared extents stays shared (-IncludeShared rewrites it)" : string.Empty;
                string what = Options.Compress is null ? $"no unshared extents below {SizeFormatter.Format(Options.ExtentThreshold)} that rewriting could join" : "no unshared data to recompress";
                Skip(DefragSkipReason.NothingToDo, $"nothing to do: {what}{shared}", warning: false);
            }
        }

        /// <summary>The whole file's extents go to <paramref name="counter"/>; those in the requested range, cut to it, come out.</summary>
        private System.Collections.Generic.IEnumerable<RawExtent> Counted(FragmentationCounter counter)
        {
            ulong start = (ulong)Options.Offset;
            ulong end = (ulong)Options.End;
            foreach (RawExtent e in Fiemap.Read(File, 0, ulong.MaxValue, sync: true))
            {
                counter.Add(e);
                if (e.End > start && e.Logical < end)
                {
                    yield return Fiemap.ClipToRange(e, start, end);
                }
            }
        }

        private System.Collections.Generic.IEnumerable<RawExtent> RangeExtents()
        {
            ulong start = (ulong)Options.Offset;
            ulong length = Options.Length is long l ? (ulong)l : ulong.MaxValue - start;
            return Fiemap.Read(File, start, length, sync: false);
        }

        private void DefragStep(long start, long length)
        {
            uint? compress = Options.Compress is DefragCompression c ? (uint)c : null;
            int? level = compress is not null && Options.CompressionLevel is int l && CompressionLevelSupported() ? l : null;
            int errno = BtrfsDefrag.TryRange(File.Handle, start, length, Options.ExtentThreshold, Options.Flush, compress, level);
            if (errno == Errno.EINVAL && File.Restat().Size < File.Status.Size)
            {
                throw Truncated(File, File.Status.Size, FileOperationException.FromErrno(errno, "BTRFS_IOC_DEFRAG_RANGE", File.Path, "Cannot defragment"));
            }

            if (errno != 0)
            {
                throw FileOperationException.FromErrno(
                    errno,
                    "BTRFS_IOC_DEFRAG_RANGE",
                    File.Path,
                    "Cannot defragment",
                    errno switch
                    {
                        Errno.EPERM or Errno.EACCES => "Defragmenting needs write permission on the file (or root).",
                        Errno.EROFS => "The file is in a read-only snapshot or on a read-only mount.",
                        Errno.ENOSPC => "The filesystem is full; free some space first.",
                        _ => null,
                    });
            }
        }
    }
}
