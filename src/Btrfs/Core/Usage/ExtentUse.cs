namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// One distinct data extent seen while measuring (keyed by its filesystem and disk address): its size on disk and
    /// uncompressed, the accounting category of its first reference (compsize's rule), and which parts
    /// of it the references seen so far use, as merged ranges in uncompressed-extent coordinates.
    /// Memory grows with the extent's unused gaps, never with the number of references.
    /// </summary>
    internal sealed class ExtentUse
    {
        private ulong firstStart;
        private ulong firstEnd;
        private List<(ulong Start, ulong End)>? more;

        internal ExtentUse(int fileSystem, ulong diskBytenr, ulong diskNumBytes, ulong ramBytes, int category)
        {
            FileSystem = fileSystem;
            DiskBytenr = diskBytenr;
            DiskNumBytes = diskNumBytes;
            RamBytes = ramBytes;
            Category = category;
        }

        /// <summary>The filesystem's number in this process (<see cref="UsageCounters.For"/>): two filesystems have extents at the same addresses.</summary>
        internal int FileSystem { get; }

        internal ulong DiskBytenr { get; }

        internal ulong DiskNumBytes { get; }

        internal ulong RamBytes { get; }

        internal int Category { get; }

        /// <summary>Records that a reference uses [start, end) of the uncompressed extent.</summary>
        internal void Use(ulong start, ulong end)
        {
            end = System.Math.Min(end, RamBytes);
            if (start >= end)
            {
                return;
            }

            if (more is null)
            {
                if (firstEnd == 0)
                {
                    (firstStart, firstEnd) = (start, end);
                    return;
                }

                if (start <= firstEnd && end >= firstStart)
                {
                    (firstStart, firstEnd) = (System.Math.Min(start, firstStart), System.Math.Max(end, firstEnd));
                    return;
                }

                more = new List<(ulong, ulong)>(4) { (firstStart, firstEnd) };
            }

            Insert(more, start, end);
        }

        /// <summary>Merges the ranges another measurement recorded for the same extent.</summary>
        internal void Merge(ExtentUse other)
        {
            if (other.more is null)
            {
                Use(other.firstStart, other.firstEnd);
                return;
            }

            foreach ((ulong s, ulong e) in other.more)
            {
                Use(s, e);
            }
        }

        /// <summary>The used parts, merged and in order.</summary>
        internal (ulong Start, ulong End)[] Ranges() =>
            more is not null ? more.ToArray() : firstEnd > firstStart ? new[] { (firstStart, firstEnd) } : Array.Empty<(ulong, ulong)>();

        /// <summary>Uncompressed bytes of the extent that some reference uses.</summary>
        internal ulong UsedBytes()
        {
            if (more is null)
            {
                return firstEnd - firstStart;
            }

            ulong sum = 0;
            foreach ((ulong s, ulong e) in more)
            {
                sum += e - s;
            }

            return sum;
        }

        /// <summary>
        /// Disk bytes no recorded reference uses: for an uncompressed extent exactly its unreferenced
        /// bytes; for a compressed one (which must be read whole) the unreferenced share of its
        /// compressed size.
        /// </summary>
        internal ulong WastedBytes()
        {
            ulong used = UsedBytes();
            if (RamBytes == 0 || used >= RamBytes)
            {
                return 0;
            }

            return DiskNumBytes == RamBytes
                ? RamBytes - used
                : (ulong)(((System.UInt128)DiskNumBytes * (RamBytes - used)) / RamBytes);
        }

        private static void Insert(List<(ulong Start, ulong End)> ranges, ulong start, ulong end)
        {
            // Ranges are sorted and disjoint (touching ones merged): find the first that ends at or after start.
            int lo = 0, hi = ranges.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) / 2;
                if (ranges[mid].End < start)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            int i = lo;
            int j = i;
            while (j < ranges.Count && ranges[j].Start <= end)
            {
                start = System.Math.Min(start, ranges[j].Start);
                end = System.Math.Max(end, ranges[j].End);
                j++;
            }

            if (j > i)
            {
                ranges.RemoveRange(i, j - i);
            }

            ranges.Insert(i, (start, end));
        }
    }
}
