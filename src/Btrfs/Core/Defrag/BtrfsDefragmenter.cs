namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>
    /// Invoke-BtrfsDefrag's Core for btrfs: hands only the planned ranges (small unshared extents that
    /// rewriting can join) to BTRFS_IOC_DEFRAG_RANGE in steps, reporting progress and stopping between
    /// steps.
    /// </summary>
    public sealed class BtrfsDefragmenter : Defragmenter
    {
        private const long MeasureBatchBytes = 1L << 30;
        private const int MeasureBatchExtents = 128 * 1024;

        private long movedCompressed; // of the bytes rewritten, those stored compressed now
        private int resumedCount; // places the kernel stopped early at (a signal) and was asked again from
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

            // At its turn (after the choices that leave a file alone), with the space free now. Before: it ran, filled the
            // filesystem part way through (old extents still partly in use are not freed at all), and -WhatIf said no
            // space was needed.
            ThrowIfSpaceShort(
                $"rewriting it needs up to {SizeFormatter.Format(BytesNeeded)} of free space while it runs (btrfs writes the new extents before it frees the old ones, a batch of at most {SizeFormatter.Format(MeasureBatchBytes)} at a time; what stops being shared stays used)",
                "Free some space, or defragment a part at a time with -Offset and -Length.");

            Clock.Restart();
            var planner = new DefragPlanner(Options, File.FileSystem.Kind, File.Size);
            long done = 0, moved = 0, unshared = 0, batched = 0, sharedSince = 0;
            movedCompressed = 0;

            // What the kernel really does is measured, not assumed from the plan: it leaves extents it cannot
            // join as they are (across holes, next to each other on disk already). Each batch of steps is mapped
            // before, then written back and mapped again. A batch is large (up to 1 GiB, or 128 Ki extents: the
            // memory stays bounded), since each write-back allocates on its own: 64 MiB batches left a 180 MiB
            // file in 2 to 4 extents where one write-back at the end makes 1. The map before is the one the plan
            // is read from (kept while a range may still need it), not read a second time, unless a range holds
            // too many extents to keep: then each step is mapped on its own.
            var before = new List<RawExtent>();
            var steps = new List<ByteRange>();
            var seen = new List<RawExtent>();
            bool keeping = true;
            IEnumerable<RawExtent> Kept()
            {
                foreach (RawExtent e in RangeExtents())
                {
                    if (keeping)
                    {
                        seen.Add(e);
                        if (seen.Count > MeasureBatchExtents)
                        {
                            long from = planner.StillNeededFrom;
                            seen.RemoveAll(x => x.FileEnd <= from);
                            keeping = seen.Count <= MeasureBatchExtents / 2;
                            if (!keeping)
                            {
                                seen.Clear();
                            }
                        }
                    }

                    yield return e;
                }
            }

            try
            {
                foreach (DefragRange range in planner.Plan(Kept()))
                {
                    // The range's extents as the plan read them (all read: a range is yielded once what ends it is seen).
                    List<RawExtent>? mapped = keeping ? seen.FindAll(e => e.FileEnd > range.Start && (long)e.Logical < range.End) : null;
                    if (keeping)
                    {
                        seen.RemoveAll(e => e.FileEnd <= range.End);
                    }

                    int next = 0;
                    for (long pos = range.Start; pos < range.End;)
                    {
                        cancel.ThrowIfCancellationRequested();
                        // The last call holds the range's last extent in the kernel's first cluster of it (see DefragPlanner).
                        long len = pos < range.FinalCallFrom ? Math.Min(Options.StepSize, range.FinalCallFrom - pos) : range.End - pos;
                        if (SharedNow(pos, len) > 0)
                        {
                            // A snapshot or reflink copy made since the plan shares it now: left as it is, so it stays shared (the
                            // kernel's defrag would unshare it). Before: rewritten all the same, the snapshot's sharing lost and
                            // SharedBytesUnshared 0 (the plan's map said nothing was shared). A hostile test.
                            for (; mapped is not null && next < mapped.Count && mapped[next].FileEnd <= pos + len; next++)
                            {
                            }

                            sharedSince += len;
                            pos += len;
                            done += len;
                            progress?.Invoke(Math.Min(done, BytesToRewrite));
                            continue;
                        }

                        if (mapped is null)
                        {
                            before.AddRange(Fiemap.Read(File, (ulong)pos, (ulong)len, sync: false));
                        }
                        else
                        {
                            for (; next < mapped.Count && (long)mapped[next].Logical < pos + len; next++)
                            {
                                before.Add(Fiemap.ClipToRange(mapped[next], (ulong)pos, (ulong)(pos + len)));
                                if (mapped[next].FileEnd > pos + len)
                                {
                                    break; // goes on into the next step: cut again there
                                }
                            }
                        }

                        DefragStep(pos, len, cancel);

                        steps.Add(new ByteRange(pos, pos + len));
                        pos += len;
                        done += len;
                        batched += len;
                        if (batched >= MeasureBatchBytes || before.Count >= MeasureBatchExtents)
                        {
                            Measure(before, steps, ref moved, ref unshared, cancel);
                            BytesRewrittenSoFar = moved;
                            batched = 0;
                        }

                        progress?.Invoke(Math.Min(done, BytesToRewrite));
                    }
                }

                Measure(before, steps, ref moved, ref unshared, cancel);
            }
            catch (OperationCanceledException) when (steps.Count > 0)
            {
                // Stopped between steps: what the steps since the last measure moved counts too, when asked for (a budget's
                // stop asks; before: 0 B rewritten, though 95 MiB of the file had moved; a hostile test). Read after the
                // batch is written back (until then FIEMAP shows the old extents under the rewritten pages; the kernel
                // writes them within seconds anyway), without asking again for what the kernel left.
                BytesRewrittenSoFar = moved;
                var stoppedBefore = new List<RawExtent>(before);
                var stoppedSteps = new List<ByteRange>(steps);
                unmeasuredSteps = () => ExtentComparison.Moved(stoppedBefore, ReadAfter(stoppedSteps, stoppedBefore.Count)).Moved;
                throw;
            }

            string threshold = FragmentationCounter.ThresholdText(Options.ExtentThreshold, FileSystemKind.Btrfs);
            string reason = moved == 0
                ? $"the kernel left the {SizeFormatter.Format(planner.BytesToRewrite)} in extents below {threshold} as they were (nothing there it could join: holes between them, or already next to each other on disk)"
                : Options.Compress is DefragCompression c
                    ? movedCompressed >= moved
                        ? $"rewrote {SizeFormatter.Format(moved)} compressed with {c.ToString().ToLowerInvariant()}"
                        : $"rewrote {SizeFormatter.Format(moved)} with {c.ToString().ToLowerInvariant()}: {SizeFormatter.Format(movedCompressed)} of it is stored compressed, the rest is not (btrfs stores data that does not shrink as it is, and compresses no file without checksums, as those made while the filesystem was mounted nodatasum)"
                    : $"rewrote {SizeFormatter.Format(moved)} in extents below {threshold}";
            if (PlanNote is not null)
            {
                reason = PlanNote + ": " + reason;
            }

            if (sharedSince > 0)
            {
                SharedBytesSkipped += sharedSince;
                reason += $"; {SizeFormatter.Format(sharedSince)} became shared while it ran (a snapshot or reflink copy made meanwhile) and was left as it was, so it stays shared";
            }

            if (resumedCount > 0)
            {
                reason += $" (the kernel stopped early {resumedCount} time(s), on signals for this process, and was asked again from there: each such place is an extent boundary)";
            }

            return Finished(DefragMethod.BtrfsDefragRange, reason, moved, unshared);
        }

        /// <summary>
        /// Compares the steps' extents before (<paramref name="before"/>) with what they are now, written back:
        /// bytes at another place on disk were rewritten, and of those the ones shared before and not now were
        /// unshared. Clears both lists.
        /// </summary>
        private void Measure(List<RawExtent> before, List<ByteRange> steps, ref long moved, ref long unshared, CancellationToken cancel)
        {
            if (steps.Count == 0)
            {
                return;
            }

            List<RawExtent> after = ReadAfter(steps, before.Count);

            // A signal for the thread (a stop and continue, a suspend, a child's exit) ends the kernel's work on a range
            // early, and it still answers success: the rest of such a step, left exactly where it was, is asked for again
            // (each place once) and read again.
            var resumed = new HashSet<long>();
            for (int round = 0; round < ResumeLimit; round++)
            {
                List<ByteRange> stopped = StoppedEarly(before, after, steps, resumed);
                if (stopped.Count == 0)
                {
                    break;
                }

                foreach (ByteRange rest in stopped)
                {
                    cancel.ThrowIfCancellationRequested();
                    DefragStep(rest.Start, rest.Length, cancel);
                    resumedCount++;
                }

                after = ReadAfter(steps, before.Count);
            }

            (long m, long u, long c) = ExtentComparison.Moved(before, after);
            moved += m;
            unshared += u;
            movedCompressed += c;
            before.Clear();
            steps.Clear();
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

        /// <summary>Why -Compress does not apply to a No_COW file.</summary>
        private const string NoCowCause = "No_COW (chattr +C), which btrfs never compresses";

        /// <inheritdoc/>
        private protected override void Plan()
        {
            InodeFlags flags = CheckWritable();

            // btrfs compresses no No_COW file (btrfs_inode_can_compress): rewritten with -Compress it would be stored as
            // it was, every extent rewritten for nothing. Defragmented as without -Compress instead (a defrag write goes
            // copy-on-write even there, so it does join extents). (Before: every run rewrote it all and the reason blamed
            // the data. Found by a hostile review.)
            if (Options.Compress is not null && (flags & InodeFlags.NoCow) != 0)
            {
                Options = Options with { Compress = null, CompressionLevel = null };
                PlanNote = NoCowCause + ": defragmented as without -Compress";
            }

            // One pass: the whole file for the figures, the requested range for the plan.
            Before = new FragmentationCounter(Options.ExtentThreshold, FileSystemKind.Btrfs, File.Size);
            var planner = new DefragPlanner(Options, FileSystemKind.Btrfs, File.Size);
            foreach (DefragRange unused in planner.Plan(Counted(Before)))
            {
                // Counting only: the ranges are planned again, streamed, when the file is rewritten.
            }

            Before.Finish();
            BytesToRewrite = planner.BytesToRewrite;
            SharedBytesSkipped = planner.SharedBytesSkipped;
            SharedBytesToUnshare = planner.SharedBytesToUnshare;
            // Copy on write: the new extents are written before the old ones are freed, which btrfs does when it commits
            // (at the latest when it runs short of space): a batch's worth at a time, and what stops being shared for good.
            BytesNeeded = Math.Min(BytesToRewrite, SharedBytesToUnshare + MeasureBatchBytes);

            if (SkipUnchangeable(flags))
            {
                return;
            }

            if (planner.InlineOnly)
            {
                Skip(DefragSkipReason.InlineOnly, "inline-only: its data lives in the metadata, there are no extents to rewrite", warning: true);
            }
            else if (BytesToRewrite == 0 && SharedBytesSkipped > 0 && Options.Compress is null && SharedToRewrite() is long sharedBytes and > 0)
            {
                // Only sharing keeps it as it is: said as Shared, as on xfs and ext4 (before: NothingToDo, so a script
                // looking for files kept fragmented by their reflink copies or snapshots missed every btrfs file; a review).
                // What stays shared is what the reason names (before: the plan's count, which leaves out a shared extent that
                // joins only other shared ones, so KeptShared said 512 KiB where the reason said 600; a hostile test).
                SharedBytesSkipped = sharedBytes;
                Skip(DefragSkipReason.Shared, $"shared: {SizeFormatter.Format(sharedBytes)} in extents below {FragmentationCounter.ThresholdText(Options.ExtentThreshold, FileSystemKind.Btrfs)} shared with reflink copies or snapshots is all there is to rewrite; rewriting it would end the sharing (each copy then takes its own space), so it stays shared; -IncludeShared rewrites it anyway", warning: false);
            }
            else if (BytesToRewrite == 0)
            {
                string shared = SharedBytesSkipped > 0 ? $"; {SizeFormatter.Format(SharedBytesSkipped)} in small shared extents stays shared (-IncludeShared rewrites it)" : string.Empty;
                string what = Options.Compress is null ? $"no unshared extents below {FragmentationCounter.ThresholdText(Options.ExtentThreshold, FileSystemKind.Btrfs)} that rewriting could join" : "no unshared data to recompress";
                Skip(DefragSkipReason.NothingToDo, $"nothing to do: {(PlanNote is null ? string.Empty : NoCowCause + ", so -Compress does not apply, and ")}{what}{shared}", warning: false);
            }
            else
            {
                SkippedAsSwapArea();
            }
        }

        /// <summary>
        /// The shared bytes -IncludeShared would rewrite: the plan made again with it (a small shared extent alone between
        /// holes or large extents joins nothing, shared or not, and is no reason to name sharing, nor counted; a review).
        /// </summary>
        private long SharedToRewrite()
        {
            var withShared = new DefragPlanner(Options with { IncludeShared = true }, FileSystemKind.Btrfs, File.Size);
            foreach (DefragRange unused in withShared.Plan(Counted(new FragmentationCounter(Options.ExtentThreshold, FileSystemKind.Btrfs, File.Size))))
            {
                // Counting only.
            }

            return withShared.SharedBytesToUnshare;
        }

        /// <summary>The whole file's extents go to <paramref name="counter"/>; those that overlap the requested range come out whole (the plan leaves out one that reaches past its ends).</summary>
        private System.Collections.Generic.IEnumerable<RawExtent> Counted(FragmentationCounter counter)
        {
            ulong start = (ulong)Options.Offset;
            ulong end = (ulong)Options.End;
            foreach (RawExtent e in Fiemap.Read(File, 0, ulong.MaxValue, sync: true))
            {
                counter.Add(e);
                if (e.End > start && e.Logical < end)
                {
                    yield return e;
                }
            }
        }

        private System.Collections.Generic.IEnumerable<RawExtent> RangeExtents()
        {
            ulong start = (ulong)Options.Offset;
            ulong length = Options.Length is long l ? (ulong)l : ulong.MaxValue - start;
            return Fiemap.ReadOverlapping(File, start, length, sync: false);
        }

        /// <summary>How many rounds of asking again for the rest of steps the kernel stopped early (each place once).</summary>
        private const int ResumeLimit = 4096;

        /// <summary>The extents of <paramref name="steps"/> now; the first read writes the batch back (FIEMAP_FLAG_SYNC): the new extents exist only then.</summary>
        private List<RawExtent> ReadAfter(List<ByteRange> steps, int capacity)
        {
            var after = new List<RawExtent>(capacity);
            for (int k = 0; k < steps.Count; k++)
            {
                after.AddRange(Fiemap.Read(File, (ulong)steps[k].Start, (ulong)steps[k].Length, sync: k == 0));
            }

            return after;
        }

        /// <summary>
        /// The steps the kernel stopped early in, each from where it stopped to its end: the last byte of the step it
        /// moved (<paramref name="before"/>, read before the calls, against <paramref name="after"/>, read since; an
        /// extent rewritten in part counts up to where its rewrite ends) is followed by data still where it was. A place
        /// already asked for again (<paramref name="resumed"/>) is not asked for twice: what the kernel leaves there on its
        /// own it would leave again.
        /// </summary>
        private static List<ByteRange> StoppedEarly(List<RawExtent> before, List<RawExtent> after, List<ByteRange> steps, HashSet<long> resumed)
        {
            var stopped = new List<ByteRange>();
            long page = Environment.SystemPageSize;
            int b = 0, a = 0;
            foreach (ByteRange step in steps)
            {
                (int from, int to) = Overlapping(before, ref b, step);
                (int afterFrom, int afterTo) = Overlapping(after, ref a, step);
                if (to == from)
                {
                    continue;
                }

                long movedEnd = ExtentComparison.LastMovedEnd(before, from, to, after, afterFrom, afterTo, step.Start, step.End);
                long at = movedEnd / page * page;
                long dataEnd = Math.Min(step.End, before[to - 1].FileEnd);
                if (movedEnd > step.Start && at > step.Start && at < dataEnd && resumed.Add(at))
                {
                    stopped.Add(new ByteRange(at, step.End));
                }
            }

            return stopped;
        }

        /// <summary>
        /// The extents of <paramref name="extents"/> (sorted) that overlap <paramref name="step"/>, as [From, To); <paramref name="next"/>
        /// moves on to where the next step's begin (one reaching into it stays).
        /// </summary>
        private static (int From, int To) Overlapping(List<RawExtent> extents, ref int next, ByteRange step)
        {
            while (next < extents.Count && extents[next].FileEnd <= step.Start)
            {
                next++;
            }

            int from = next, to = next;
            while (to < extents.Count && (long)extents[to].Logical < step.End)
            {
                to++;
            }

            next = to > from && extents[to - 1].FileEnd > step.End ? to - 1 : to;
            return (from, to);
        }

        /// <summary>How often a step the kernel gave up on because a signal came (EAGAIN) is asked again.</summary>
        private const int InterruptedRetries = 8;

        private void DefragStep(long start, long length, CancellationToken cancel)
        {
            uint? compress = Options.Compress is DefragCompression c ? (uint)c : null;
            int? level = compress is not null && Options.CompressionLevel is int l && CompressionLevelSupported() ? l : null;
            int errno = BtrfsDefrag.TryRange(File.Handle, start, length, Options.ExtentThreshold, Options.Flush, compress, level);

            // The kernel gives up with EAGAIN, before it rewrote anything in the call, whenever a signal is pending for
            // the thread (btrfs_defrag_cancelled is signal_pending: a stop and continue, a suspend, a child's exit, not
            // only a fatal one): asked again after a moment, unless the user stopped (Ctrl+C) meanwhile.
            for (int retry = 1; errno == Errno.EAGAIN && retry <= InterruptedRetries; retry++)
            {
                _ = cancel.WaitHandle.WaitOne(10 * retry);
                cancel.ThrowIfCancellationRequested();
                errno = BtrfsDefrag.TryRange(File.Handle, start, length, Options.ExtentThreshold, Options.Flush, compress, level);
            }

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
                        Errno.ENOSPC or Errno.EDQUOT => FileOperationException.NoRoom(errno) + " first.",
                        Errno.ETXTBSY => "It is an active swapfile; swapoff first.",
                        Errno.EAGAIN => $"The kernel answered EAGAIN {InterruptedRetries + 1} times in a row (usually signals arriving for this process); run it again.",
                        _ => null,
                    });
            }
        }
    }
}
