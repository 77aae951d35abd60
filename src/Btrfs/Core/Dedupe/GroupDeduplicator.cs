namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>Invoke-BtrfsDedupe's result for one group from Find-BtrfsDuplicate. Every property is a scalar.</summary>
    public sealed class DedupeGroupResult
    {
        /// <summary>The keeper's file: the other ranges now share its extents.</summary>
        public string Path { get; init; } = string.Empty;

        /// <summary>The keeper's first byte.</summary>
        public long Offset { get; init; }

        /// <summary>Bytes of each range.</summary>
        public long Length { get; init; }

        /// <summary>Ranges in the group (the keeper included).</summary>
        public int Copies { get; init; }

        /// <summary>Bytes the kernel deduplicated.</summary>
        public long BytesDeduped { get; init; }

        /// <summary>Bytes that shared the keeper's extents already.</summary>
        public long BytesAlreadyShared { get; init; }

        /// <summary>Bytes the kernel found different (changed since the search, or a hash collision): left as they are.</summary>
        public long BytesDiffering { get; init; }

        /// <summary>
        /// Free space the filesystem gained, measured before and after (btrfs: synced) a group predicted to
        /// free something (anything else written meanwhile counts too); 0 without measuring for a group
        /// predicted to free nothing (see <see cref="FreedMeasured"/>).
        /// </summary>
        public long DiskBytesFreed { get; init; }

        /// <summary>Whether <see cref="DiskBytesFreed"/> was measured (the group's ReclaimableBytes was above 0).</summary>
        public bool FreedMeasured { get; init; }

        /// <summary>
        /// Ranges left as they are because sharing them would free no disk space (each marked
        /// FreesNothing by Find-BtrfsDuplicate; -IncludeUnreclaimable shares them anyway).
        /// </summary>
        public int RangesSkipped { get; init; }

        /// <summary>Ranges the kernel refused (each also an error record).</summary>
        public int Errors { get; init; }

        /// <summary>What happened to the group as a whole.</summary>
        public DedupeStatus Status { get; init; }
    }

    /// <summary>
    /// The free space of a filesystem as groups are deduplicated one after another: the figure read after one group
    /// is the one before the next, when nothing was shared between them without being measured (one sync per group
    /// measured, not two; a hostile review: 10,000 groups of 8 KiB took 92 s, 20,000 syncs, against duperemove's 12 s).
    /// One per run of a command; not thread safe.
    /// </summary>
    internal sealed class FreeSpaceMeter
    {
        private ulong fileSystem;
        private long? last;

        /// <summary>The free bytes now (after a sync where the count lags), read again only when not known.</summary>
        internal long Before(OpenFile file)
        {
            ulong fs = Files.FileSystemIdOf(file.Handle);
            if (last is long known && fs == fileSystem)
            {
                return known;
            }

            return Read(file, fs);
        }

        /// <summary>The free bytes after a group, which the next group starts from.</summary>
        internal long After(OpenFile file) => Read(file, Files.FileSystemIdOf(file.Handle));

        /// <summary>Something was shared and not measured: the next group reads the free space again.</summary>
        internal void Forget() => last = null;

        private long Read(OpenFile file, ulong fs)
        {
            last = null;
            long now = FreeAfterSync(file);
            (fileSystem, last) = (fs, now);
            return now;
        }

        /// <summary>
        /// The filesystem's available bytes, after a sync where the count lags: btrfs frees extents only at
        /// the transaction commit. xfs counts blocks freed as each remap's transaction commits in memory,
        /// before FIDEDUPERANGE returns, so its count is exact without one (the tests compare each group's
        /// figure with what it was predicted to free); a sync per group there (two per group: before and
        /// after) took half of the deduplication's time (0.63 s of 1.26 s for 704 groups).
        /// </summary>
        private static long FreeAfterSync(OpenFile file)
        {
            if (file.FileSystem.Kind != FileSystemKind.Xfs)
            {
                _ = Files.TrySyncFileSystem(file.Handle);
            }

            return file.AvailableBytes();
        }
    }

    /// <summary>Deduplicates one group: every range against the keeper (the first), through <see cref="Deduplicator"/> and its refusals.</summary>
    internal static class GroupDeduplicator
    {
        /// <summary>
        /// The least a group must be predicted to free for the free space to be measured around it: below it, the
        /// sync a measurement needs on btrfs costs more than the deduplication (thousands of small groups).
        /// </summary>
        internal const long MeasuredFrom = 1L << 20;

        /// <summary>
        /// Deduplicates the group: every range but those marked <see cref="DuplicateRange.FreesNothing"/>
        /// (all of them with <paramref name="includeUnreclaimable"/>). The free space is measured around it
        /// (on btrfs after a sync, which commits) only when the group is predicted to free
        /// <see cref="MeasuredFrom"/> or more: a sync per group of thousands would cost more than the
        /// deduplication. <paramref name="meter"/> carries the figure from one group to the next.
        /// </summary>
        internal static DedupeGroupResult Run(BtrfsDuplicateGroup group, bool includeUnreclaimable, Action<DedupeResult, FileOperationException?> each, CancellationToken cancel, FreeSpaceMeter? meter = null)
        {
            meter ??= new FreeSpaceMeter();
            int skipped = includeUnreclaimable ? 0 : Skipped(group);
            if (skipped == group.Ranges.Length - 1)
            {
                return Result(group, 0, SharedLeft(group, includeUnreclaimable), 0, 0, false, skipped, 0, DedupeStatus.NothingToFree);
            }

            DuplicateRange keeper = group.Ranges[0];
            using OpenFile source = OpenFile.OpenListed(keeper.Path, "It was left as it is; search again.");
            // On xfs a block shared only among the group's other copies is credited nothing, though it goes once they all
            // share the keeper's (a kept copy a file outside the search shares, its reflinked pair the others): such a
            // group is measured too, so what it freed is said (a review: "0 B", not measured, while 4 MiB was freed).
            bool measure = group.ReclaimableBytes >= MeasuredFrom
                || (source.FileSystem.Kind == FileSystemKind.Xfs && !group.FreesNothing && group.DuplicateBytes >= MeasuredFrom);
            long before = measure ? meter.Before(source) : 0;
            long deduped = 0, shared = SharedLeft(group, includeUnreclaimable), differing = 0; // what shares the keeper already counts, asked or not
            int errors = 0;
            ThrowIfReplaced(source, keeper);
            Deduplicator.ThrowIfShrunk(source, keeper.Offset, keeper.Length); // the whole group: one error, not one per range
            SwapTable swaps = SwapTable.Read();
            Files.AdviseWillNeed(source.Handle, keeper.Offset, Math.Min(group.Length, ReadAheadBytes));

            // Each range's file is opened once, up to ReadAheadFiles ahead of the one deduplicated, its bytes
            // asked for when opened (WILLNEED, up to ReadAheadBytes ahead): the kernel's comparison then finds
            // them read, or being read, while it works on the ranges before.
            var ahead = new Queue<(int Index, OpenFile? File, FileOperationException? Failure, long Asked)>();
            bool finished = false, kernelAsked = false;
            int next = 1;
            long asked = Math.Min(group.Length, ReadAheadBytes);
            try
            {
                while (true)
                {
                    while (next < group.Ranges.Length && ahead.Count < ReadAheadFiles)
                    {
                        DuplicateRange r = group.Ranges[next];
                        if (!r.FreesNothing || includeUnreclaimable)
                        {
                            try
                            {
                                OpenFile f = OpenFile.OpenListed(r.Path, "It was left as it is; search again.");
                                long n = Math.Max(0, Math.Min(r.Length, ReadAheadBytes - asked));
                                ahead.Enqueue((next, f, null, n));
                                if (n > 0)
                                {
                                    Files.AdviseWillNeed(f.Handle, r.Offset, n);
                                    asked += n;
                                }
                            }
                            catch (FileOperationException ex)
                            {
                                ahead.Enqueue((next, null, ex, 0));
                            }
                        }

                        next++;
                    }

                    if (ahead.Count == 0)
                    {
                        break;
                    }

                    cancel.ThrowIfCancellationRequested();
                    (int i, OpenFile? dest, FileOperationException? failure, long wasAsked) = ahead.Dequeue();
                    DuplicateRange range = group.Ranges[i];
                    asked -= wasAsked;
                    DedupeResult result;
                    try
                    {
                        using (dest)
                        {
                            kernelAsked |= dest is not null; // the kernel may share part of a range that then fails
                            result = dest is null
                                ? throw failure!
                                : Deduplicator.Dedupe(source, dest, keeper.Offset, range.Length, range.Offset, swaps, cancel: cancel, expected: (range.Device, range.Inode, range.Generation), fromGroup: true);
                        }
                    }
                    catch (FileOperationException ex)
                    {
                        result = new DedupeResult { Source = keeper.Path, Destination = range.Path, BytesRequested = range.Length, Status = DedupeStatus.Error, ErrorMessage = ex.Message };
                        errors++;
                        each(result, ex);
                        continue;
                    }

                    deduped += result.BytesDeduped;
                    shared += result.BytesAlreadyShared;
                    differing += result.BytesDiffering;
                    errors += result.Status == DedupeStatus.Error ? 1 : 0;
                    each(result, result.Error);
                }

                finished = true;
            }
            finally
            {
                foreach ((_, OpenFile? f, _, _) in ahead)
                {
                    f?.Dispose();
                }

                if (!finished)
                {
                    meter.Forget(); // stopped part of the way: what was shared is not measured
                }
            }

            long after = before;
            if (measure)
            {
                try
                {
                    after = meter.After(source);
                }
                catch (FileOperationException)
                {
                    measure = false; // deduplicated, but the free space could not be read
                }
            }
            else if (kernelAsked)
            {
                meter.Forget(); // perhaps shared, not measured: the next group measured reads the free space afresh
            }

            return Result(group, deduped, shared, differing, measure ? after - before : 0, measure, skipped, errors, Deduplicator.StatusOf(errors > 0, differing, deduped));
        }

        /// <summary>
        /// Bytes of a group's ranges asked to be read into the page cache ahead of the kernel's comparison: the
        /// ranges are read side by side instead of each waiting for its own reads. With nothing cached, 413 MiB
        /// deduplicated on xfs in 1,679 groups took 0.97-1.66 s (median 1.08 s, 3 runs) with the whole group
        /// asked for first against 2.06-2.49 s (median 2.17 s) with each range asked for only when its turn came.
        /// </summary>
        private const long ReadAheadBytes = 64L << 20;

        /// <summary>Range files held open ahead of the one deduplicated.</summary>
        private const int ReadAheadFiles = 16;

        /// <summary>The result of a group refused as a whole before any range was asked for (its keeper): one error, nothing done.</summary>
        internal static DedupeGroupResult Refusal(BtrfsDuplicateGroup group, bool includeUnreclaimable) =>
            Result(group, 0, 0, 0, 0, false, includeUnreclaimable ? 0 : Skipped(group), 1, DedupeStatus.Error);

        /// <summary>Of <see cref="Skipped"/>, the ranges that share the keeper's extents whole already.</summary>
        internal static int SharingKeeper(BtrfsDuplicateGroup group)
        {
            int n = 0;
            for (int i = 1; i < group.Ranges.Length; i++)
            {
                n += group.Ranges[i].FreesNothing && group.Ranges[i].SharedWithKeeperBytes >= group.Ranges[i].Length ? 1 : 0;
            }

            return n;
        }

        /// <summary>The bytes of the ranges left as they are (<see cref="DuplicateRange.FreesNothing"/>) that share the keeper's extents already.</summary>
        private static long SharedLeft(BtrfsDuplicateGroup group, bool includeUnreclaimable)
        {
            long n = 0;
            for (int i = 1; !includeUnreclaimable && i < group.Ranges.Length; i++)
            {
                n += group.Ranges[i].FreesNothing ? Math.Clamp(group.Ranges[i].SharedWithKeeperBytes, 0, group.Ranges[i].Length) : 0;
            }

            return n;
        }

        /// <summary>The ranges besides the keeper that sharing would free nothing for.</summary>
        internal static int Skipped(BtrfsDuplicateGroup group)
        {
            int n = 0;
            for (int i = 1; i < group.Ranges.Length; i++)
            {
                n += group.Ranges[i].FreesNothing ? 1 : 0;
            }

            return n;
        }

        private static DedupeGroupResult Result(BtrfsDuplicateGroup group, long deduped, long shared, long differing, long freed, bool measured, int skipped, int errors, DedupeStatus status) => new()
        {
            Path = group.Ranges[0].Path,
            Offset = group.Ranges[0].Offset,
            Length = group.Length,
            Copies = group.Copies,
            BytesDeduped = deduped,
            BytesAlreadyShared = shared,
            BytesDiffering = differing,
            DiskBytesFreed = freed,
            FreedMeasured = measured,
            RangesSkipped = skipped,
            Errors = errors,
            Status = status,
        };

        /// <summary>
        /// For a preview (-WhatIf): the ranges a run would deduplicate that it would refuse before asking the kernel (a
        /// file replaced since the search, an immutable one, one this user may not deduplicate into, an active
        /// swapfile, a range that no longer fits), each with why; nothing is changed. The keeper's own refusal is
        /// thrown: the whole group would be refused.
        /// </summary>
        internal static List<(DuplicateRange Range, FileOperationException Why)> Refused(BtrfsDuplicateGroup group, bool includeUnreclaimable)
        {
            var refused = new List<(DuplicateRange, FileOperationException)>();
            DuplicateRange keeper = group.Ranges[0];
            using OpenFile source = OpenFile.OpenListed(keeper.Path, "It was left as it is; search again.");
            ThrowIfReplaced(source, keeper);
            Deduplicator.ThrowIfShrunk(source, keeper.Offset, keeper.Length); // the whole group: one error, not one per range
            SwapTable swaps = SwapTable.Read();
            for (int i = 1; i < group.Ranges.Length; i++)
            {
                DuplicateRange r = group.Ranges[i];
                if (r.FreesNothing && !includeUnreclaimable)
                {
                    continue;
                }

                try
                {
                    using OpenFile dest = OpenFile.OpenListed(r.Path, "It was left as it is; search again.");
                    Deduplicator.Check(source, dest, keeper.Offset, r.Length, r.Offset, swaps, (r.Device, r.Inode, r.Generation), fromGroup: true);
                }
                catch (FileOperationException ex)
                {
                    refused.Add((r, ex));
                }
            }

            return refused;
        }

        /// <summary>A name that leads to another file than the one searched (another inode or device) is not touched.</summary>
        private static void ThrowIfReplaced(OpenFile file, DuplicateRange r)
        {
            if (Deduplicator.Replaced(file, (r.Device, r.Inode, r.Generation)) is FileOperationException replaced)
            {
                throw replaced;
            }
        }
    }
}
