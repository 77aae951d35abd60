namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>What changed between two maps of the same ranges of a file: which bytes now live elsewhere on disk.</summary>
    internal static class ExtentComparison
    {
        /// <summary>
        /// Bytes whose place on disk differs between <paramref name="before"/> and <paramref name="after"/>
        /// (both in file order, not overlapping: FIEMAP maps of the same ranges), and of those the bytes that
        /// were shared before and are not now. Bytes mapped on one side only (a hole filled or punched) are not
        /// counted. A compressed (encoded) extent stays in place when its disk address is the same.
        /// </summary>
        internal static (long Moved, long Unshared, long MovedCompressed) Moved(IReadOnlyList<RawExtent> before, IReadOnlyList<RawExtent> after)
        {
            ArgumentNullException.ThrowIfNull(before);
            ArgumentNullException.ThrowIfNull(after);
            long moved = 0, unshared = 0, compressed = 0;
            int i = 0, j = 0;
            while (i < before.Count && j < after.Count)
            {
                RawExtent b = before[i], a = after[j];
                ulong from = Math.Max(b.Logical, a.Logical), to = Math.Min(b.End, a.End);
                if (from < to && !SamePlace(b, a, from))
                {
                    moved += (long)(to - from);
                    bool wasShared = (b.Flags & ExtentFlags.Shared) != 0, isShared = (a.Flags & ExtentFlags.Shared) != 0;
                    unshared += wasShared && !isShared ? (long)(to - from) : 0;
                    compressed += (a.Flags & ExtentFlags.Encoded) != 0 ? (long)(to - from) : 0;
                }

                if (b.End <= a.End)
                {
                    i++;
                }
                else
                {
                    j++;
                }
            }

            return (moved, unshared, compressed);
        }

        /// <summary>
        /// Where the last byte of [<paramref name="start"/>, <paramref name="end"/>) that is no longer where it was ends:
        /// <paramref name="before"/>[<paramref name="beforeFrom"/>..<paramref name="beforeTo"/>) against
        /// <paramref name="after"/>[<paramref name="afterFrom"/>..<paramref name="afterTo"/>), both sorted, byte by byte
        /// (an extent rewritten in part counts up to where its rewrite ends); 0 when nothing moved.
        /// </summary>
        internal static long LastMovedEnd(List<RawExtent> before, int beforeFrom, int beforeTo, List<RawExtent> after, int afterFrom, int afterTo, long start, long end)
        {
            long last = 0;
            int i = beforeFrom, j = afterFrom;
            while (i < beforeTo && j < afterTo)
            {
                RawExtent b = Fiemap.ClipToRange(before[i], (ulong)start, (ulong)end), a = Fiemap.ClipToRange(after[j], (ulong)start, (ulong)end);
                ulong from = Math.Max(b.Logical, a.Logical), to = Math.Min(b.End, a.End);
                if (from < to && !SamePlace(b, a, from))
                {
                    last = Math.Max(last, (long)to);
                }

                if (b.End <= a.End)
                {
                    i++;
                }
                else
                {
                    j++;
                }
            }

            return last;
        }

        private static bool SamePlace(in RawExtent b, in RawExtent a, ulong at)
        {
            if (((b.Flags | a.Flags) & ExtentFlags.Encoded) != 0)
            {
                return a.Physical == b.Physical && (a.Flags & ExtentFlags.Encoded) == (b.Flags & ExtentFlags.Encoded);
            }

            return b.Physical + (at - b.Logical) == a.Physical + (at - a.Logical);
        }
    }
}
