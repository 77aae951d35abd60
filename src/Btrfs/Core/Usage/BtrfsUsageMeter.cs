namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// Measure-BtrfsUsage's Core: compsize's accounting per file from the file's EXTENT_DATA items
    /// (one TREE_SEARCH pass, as compsize), and for many files merged in input order so every
    /// distinct extent counts once. Memory grows with the distinct extents, not with files or references.
    /// </summary>
    public static class BtrfsUsageMeter
    {
        /// <summary>
        /// One file's figures, with the bytes FIEMAP marks shared. Throws
        /// <see cref="FileOperationException"/> (NotSupported off btrfs, AccessDenied without root).
        /// </summary>
        internal static BtrfsFileUsage Measure(OpenFile file)
        {
            UsageCounters c = Count(file);
            return new BtrfsFileUsage(file.Path, file.Size, c, SharedBytes(file));
        }

        /// <summary>The figures of one file, as `compsize FILE`; the counters can be merged into a summary.</summary>
        internal static UsageCounters Count(OpenFile file)
        {
            BtrfsOnly.Require(file, "measure the btrfs space usage of");
            var c = new UsageCounters();
            c.AddFile(file.Size, BtrfsFileExtents.Read(file));
            return c;
        }

        /// <summary>Counts several files on <paramref name="parallelism"/> threads; outcomes in the order given.</summary>
        internal static FileOutcome<UsageCounters>[] CountAll(IReadOnlyList<FileLocation> files, int parallelism) =>
            FileBatch.Run(files, parallelism, Count);

        /// <summary>Measures several files on <paramref name="parallelism"/> threads; outcomes in the order given.</summary>
        internal static FileOutcome<BtrfsFileUsage>[] MeasureAll(IReadOnlyList<FileLocation> files, int parallelism) =>
            FileBatch.Run(files, parallelism, Measure);

        /// <summary>Bytes of the file in extents FIEMAP flags as shared (FIEMAP_EXTENT_SHARED).</summary>
        internal static long SharedBytes(OpenFile file)
        {
            ulong shared = 0;
            foreach (RawExtent e in Fiemap.Read(file, 0, ulong.MaxValue, sync: false))
            {
                if ((e.Flags & ExtentFlags.Shared) != 0)
                {
                    shared += e.Length;
                }
            }

            return (long)shared;
        }
    }

    /// <summary>
    /// Sums measurements into compsize's totals, in the order they are added (which decides the
    /// category of an extent seen under two: the first reference's, as compsize).
    /// </summary>
    public sealed class BtrfsUsageTotals
    {
        private readonly UsageCounters all = new();

        /// <summary>Files added so far.</summary>
        public long Files => all.Files;

        /// <summary>Adds one file's items (of a file already open).</summary>
        internal void Add(OpenFile file) => all.Merge(BtrfsUsageMeter.Count(file));

        /// <summary>The totals so far.</summary>
        public BtrfsUsageSummary ToSummary() => new(all);

        internal void Add(UsageCounters file) => all.Merge(file);
    }
}
