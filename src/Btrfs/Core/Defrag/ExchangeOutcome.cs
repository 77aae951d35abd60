namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>
    /// Pure logic: the extent map a file will have after <see cref="CopyExchangeDefragmenter"/> is done,
    /// from the file's and the preallocated copy's extent maps (each in logical order), so a copy that
    /// would leave the file worse is given up before anything is written; and which ranges a remap
    /// hands to the kernel. Streams: constant memory.
    /// </summary>
    internal static class ExchangeOutcome
    {
        /// <summary>What makes two extents different kinds for the filesystem (it never joins those).</summary>
        private const ExtentFlags State = ExtentFlags.Unwritten | ExtentFlags.Unknown | ExtentFlags.Delalloc | ExtentFlags.Encoded | ExtentFlags.DataInline;

        /// <summary>
        /// The file's extents afterwards. Below <paramref name="end"/> (the size rounded up to a block: what
        /// an exchange, MOVE_EXT or a remap covers) the file's extents get the copy's placement where the
        /// copy has blocks, keeping their own state (ext4's MOVE_EXT keeps the file's unwritten flags; xfs's
        /// copy is written where the file is); a remap (<paramref name="writtenDataOnly"/>: FIDEDUPERANGE,
        /// which maps written data only) moves only the written ones, and the unwritten (preallocated) ones
        /// stay where they are. What lies at or beyond <paramref name="end"/>, and what the copy does not
        /// cover, stays. Moved extents are no longer shared (the copy is closed after) and no longer
        /// delayed. Pieces that end up next to each other on disk, of one kind, are joined as the
        /// filesystem joins them, up to <paramref name="maxExtent"/> bytes.
        /// </summary>
        internal static IEnumerable<RawExtent> After(IEnumerable<RawExtent> file, IEnumerable<RawExtent> copy, ulong end, bool writtenDataOnly, long maxExtent)
        {
            ArgumentNullException.ThrowIfNull(file);
            ArgumentNullException.ThrowIfNull(copy);
            return Joined(Placed(file, copy, end, writtenDataOnly), (ulong)maxExtent);
        }

        /// <summary>Whether an extent holds written data a remap moves (not unwritten, not inline).</summary>
        internal static bool IsWritten(in RawExtent e) => (e.Flags & (ExtentFlags.Unwritten | ExtentFlags.DataInline)) == 0;

        /// <summary>The parts two ascending, non-overlapping sequences of ranges have in common, in order.</summary>
        internal static IEnumerable<ByteRange> Common(IEnumerable<ByteRange> a, IEnumerable<ByteRange> b)
        {
            ArgumentNullException.ThrowIfNull(a);
            ArgumentNullException.ThrowIfNull(b);
            using IEnumerator<ByteRange> x = a.GetEnumerator(), y = b.GetEnumerator();
            bool hasX = x.MoveNext(), hasY = y.MoveNext();
            while (hasX && hasY)
            {
                long start = Math.Max(x.Current.Start, y.Current.Start), stop = Math.Min(x.Current.End, y.Current.End);
                if (start < stop)
                {
                    yield return new ByteRange(start, stop);
                }

                if (x.Current.End <= y.Current.End)
                {
                    hasX = x.MoveNext();
                }
                else
                {
                    hasY = y.MoveNext();
                }
            }
        }

        private static IEnumerable<RawExtent> Placed(IEnumerable<RawExtent> file, IEnumerable<RawExtent> copy, ulong end, bool writtenDataOnly)
        {
            using IEnumerator<RawExtent> c = copy.GetEnumerator();
            bool has = c.MoveNext();
            foreach (RawExtent e in file)
            {
                bool moves = (e.Flags & ExtentFlags.DataInline) == 0 && (!writtenDataOnly || IsWritten(e)) && e.Logical < end;
                if (!moves)
                {
                    yield return e;
                    continue;
                }

                ulong stop = Math.Min(e.End, end);
                ExtentFlags moved = e.Flags & ~(ExtentFlags.Shared | ExtentFlags.Unknown | ExtentFlags.Delalloc);
                ulong at = e.Logical;
                while (at < stop)
                {
                    while (has && c.Current.End <= at)
                    {
                        has = c.MoveNext();
                    }

                    if (!has || c.Current.Logical >= stop)
                    {
                        yield return Piece(e, at, stop); // the copy has nothing here: it stays
                        break;
                    }

                    if (c.Current.Logical > at)
                    {
                        yield return Piece(e, at, c.Current.Logical);
                        at = c.Current.Logical;
                        continue;
                    }

                    ulong to = Math.Min(stop, c.Current.End);
                    yield return new RawExtent(at, c.Current.Physical + (at - c.Current.Logical), to - at, moved);
                    at = to;
                }

                if (stop < e.End)
                {
                    yield return Piece(e, stop, e.End); // beyond the end: the file's own
                }
            }
        }

        private static IEnumerable<RawExtent> Joined(IEnumerable<RawExtent> extents, ulong max)
        {
            RawExtent? pending = null;
            foreach (RawExtent e in extents)
            {
                if (pending is RawExtent p && p.End == e.Logical && p.Physical + p.Length == e.Physical
                    && (p.Flags & State) == (e.Flags & State) && (p.Flags & State & ~ExtentFlags.Unwritten) == 0
                    && p.Length + e.Length <= max)
                {
                    pending = new RawExtent(p.Logical, p.Physical, p.Length + e.Length, p.Flags | (e.Flags & ExtentFlags.Last));
                    continue;
                }

                if (pending is RawExtent done)
                {
                    yield return done;
                }

                pending = e;
            }

            if (pending is RawExtent last)
            {
                yield return last;
            }
        }

        private static RawExtent Piece(in RawExtent e, ulong from, ulong to) => new(from, e.Physical + (from - e.Logical), to - from, e.Flags);
    }
}
